// heddle sys: a distinct address per thread.
//
// Owns this_thread_marker(): the address of a thread_local, so each live
// thread has its own and comparing two is one load and a compare, cheaper
// than pthread_self() and std::this_thread::get_id(). A scheduler records
// its thread's marker to answer "am I on my thread?" (Loop, SimLoop, the io
// reactors). A marker may be reused by a thread started after its owner
// exited, as thread ids are.
#pragma once

namespace heddle::detail {

inline const void* this_thread_marker() noexcept {
  static thread_local const char marker = 0;
  return &marker;
}

}  // namespace heddle::detail
