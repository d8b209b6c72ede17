// heddle sync: SharedMutex, one writer or many readers, for tasks and threads.
//
// Owns: the holders (one writer, identified; or a count of readers) and two
// FIFOs of waiters, writers and readers, all under one SpinLock. Works with
// std::unique_lock / std::lock_guard (writer) and std::shared_lock (reader).
// A task that has to wait parks (a cancellation point: a cancelled waiter
// leaves its queue holding nothing); a thread blocks.
//
// Policy: writer preference with alternating phases.
//   - A reader may enter only when no writer holds the mutex *and none is
//     queued*: once a writer waits, new readers queue behind it, so a stream
//     of readers cannot starve a writer.
//   - When the last reader leaves, the mutex is handed to the first queued
//     writer (FIFO hand-off: it never becomes free in between).
//   - When a writer unlocks, every reader that queued meanwhile is admitted
//     in one batch before the next writer goes, so writers cannot starve
//     readers either. With no reader queued, the next writer gets it.
//   - A writer that is cancelled while queued may be what held readers back:
//     its leaving re-runs the policy, so they are admitted if nothing else
//     stops them.
// Misuse throws std::logic_error: unlock() by anyone but the writer that
// holds it, unlock_shared() with no reader holding it, and lock() or
// lock_shared() by the writer that holds it (self-deadlock). A reader that
// takes the shared lock again while a writer waits deadlocks, as with any
// writer-preferring lock: readers are counted, not identified.
#pragma once

#include <cstddef>
#include <cstdint>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

class SharedMutex : private detail::GuardedWaiters {
 public:
  SharedMutex() noexcept = default;
  // Destroying a SharedMutex that still has waiters aborts (every build), naming it and one waiter.
  ~SharedMutex();
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  // Exclusive (writer) side.
  void lock();
  bool try_lock();
  void unlock();

  // Shared (reader) side.
  void lock_shared();
  bool try_lock_shared();
  void unlock_shared();

  // Snapshots, for tests and diagnostics.
  std::size_t readers() const;          // readers holding it now
  std::size_t waiting_writers() const;
  std::size_t waiting_readers() const;

 private:
  std::size_t admit_readers(detail::WakeBatch& batch) noexcept HEDDLE_REQUIRES(lock_);
  bool hand_to_writer(detail::WakeBatch& batch) noexcept HEDDLE_REQUIRES(lock_);
  void dispatch(detail::WakeBatch& batch, bool readers_first) noexcept HEDDLE_REQUIRES(lock_);

  // Queued writers are the base's waiters_.
  bool writer_held_ HEDDLE_GUARDED_BY(lock_) = false;
  std::uint64_t writer_ HEDDLE_GUARDED_BY(lock_) = 0;  // identity of the writer holding it
  std::size_t readers_ HEDDLE_GUARDED_BY(lock_) = 0;
  detail::WaitList waiting_readers_ HEDDLE_GUARDED_BY(lock_);
};

}  // namespace heddle
