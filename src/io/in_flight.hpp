// heddle io (internal): the operations in flight on each descriptor number,
// and closing a descriptor under them. The protocol is in in_flight.cpp.
#pragma once

#include <atomic>

#include "heddle/io/detail/operation.hpp"

namespace heddle::io::detail {

// Lists `op` under op.fd (op.descriptor and op.reactor set, op.fd >= 0).
// Returns false, listing nothing, when the descriptor no longer holds op.fd
// (a close has begun): the operation must not touch the number. May throw
// std::bad_alloc (the table grows by 16 KiB per 256 numbers).
bool enter(Operation& op);
// Takes op off the list (if close() has not) and wakes a close() waiting
// for the list to empty. Every listed operation calls it before perform()
// returns.
void leave(Operation& op) noexcept;
// Called by each interruptible park's on_suspend (the task has switched
// out): publishes `resumer` for close(). Returns false when op is closing:
// the caller wakes `resumer` at once.
bool note_park(Operation& op, const Resumer& resumer) noexcept;
// Whether close() has begun on op's descriptor (the waiter's checkpoints).
inline bool closing(const Operation& op) noexcept {
  return std::atomic_ref<bool>(const_cast<bool&>(op.closing)).load(std::memory_order_acquire);
}
// Whether close() took op out of the kernel itself (Reactor::detach_here).
bool detached(Operation& op) noexcept;

// close(): ends every operation listed under `fd`, returns once none is
// listed. The caller has taken `fd` out of its FileDescriptor already.
void end_operations_on(int fd) noexcept;

}  // namespace heddle::io::detail
