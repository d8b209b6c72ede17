// heddle io: the operations in flight on each descriptor number, and
// FileDescriptor::close, which ends them before it releases the number.
//
// Why by number: the kernel reuses a number as soon as close(2) returns, and
// what goes wrong (an epoll waiter retrying its read on the next
// connection's socket, an io_uring entry queued with the number but not yet
// submitted) goes wrong by number. A table indexed by number also survives
// moves of the FileDescriptor (the operations need no pointer into it).
//
// The table: a radix tree (2048 x 4096 x 256) of slots, grown on first use
// and never freed; a slot is a cache line (two numbers used on two workers
// never share one) holding a lock bit, the head of the list of operations
// listed under the number, and the parker of a close() waiting for it.
//
// Per operation (listed = on its number's list; every field under the
// slot's lock):
//
//   state        who moves it, and when
//   unlisted  -> listed      the waiter, enter(): before its first system
//                            call, only if the FileDescriptor still holds
//                            the number (else perform() returns -ECANCELED)
//   listed       +closing    close(), once; then it wakes the Resumer the
//                            waiter last published (note_park): a stale one
//                            does nothing, since the waiter checks `closing`
//                            under the lock each time it parks (and wakes
//                            itself), and between parks before each system
//                            call
//   listed    -> unlisted    the waiter, leave(): when perform() returns;
//                            the last one out unparks the waiting close()
//   listed    -> detached    close() itself, when it runs on the reactor's
//                            thread outside any task (the task cannot run
//                            before close() returns): Reactor::detach_here
//                            takes the operation out of the kernel and
//                            wakes it; it touches the number no more, and
//                            its leave() finds it already off the list
//
// close(): (1) exchanges the FileDescriptor's number with -1, so no new
// operation can be listed under it (enter() re-reads the number after
// taking the lock); (2) if the slot is empty and unlocked, close(2) at once
// (the one check a close with nothing in flight pays); (3) otherwise marks
// and wakes every listed operation, detaches those of its own thread's
// reactor, and parks (uninterruptibly: close() is noexcept, and may run in
// a cancelled task's unwinding) until the list is empty; then close(2).
// Steps (1)-(2) and enter()'s lock-then-read are a Dekker pair (all
// sequentially consistent): either close() sees the slot taken, or enter()
// sees the number gone.
//
// A woken waiter ends its operation on its own thread (the reactor is
// single-threaded; a Pool task is pinned to its worker while in perform()):
// epoll unlinks it and removes the number from the epoll set; io_uring
// cancels the entry and waits for its completion. An operation that had
// completed before the close reached it keeps its result.
#include "in_flight.hpp"

#include <sched.h>
#include <unistd.h>

#include <cstdint>
#include <new>

#include "heddle/arch/cpu_relax.hpp"
#include "heddle/core/detail/control.hpp"
#include "heddle/io/descriptor.hpp"
#include "reactor.hpp"

namespace heddle::io::detail {
namespace {

constexpr unsigned kSlotBits = 8;
constexpr unsigned kMiddleBits = 12;
constexpr unsigned kTopBits = 31 - kSlotBits - kMiddleBits;
constexpr std::uintptr_t kLocked = 1;  // in Slot::word, beside the head (Operation is aligned)

struct alignas(64) Slot {
  std::atomic<std::uintptr_t> word{0};  // head Operation* | kLocked
  heddle::detail::Parker* closer = nullptr;  // under the lock
};
struct Chunk {
  Slot slots[1u << kSlotBits];
};
struct Middle {
  std::atomic<Chunk*> chunks[1u << kMiddleBits] = {};
};
std::atomic<Middle*> top_level[1u << kTopBits];

unsigned top_index(int fd) noexcept { return static_cast<unsigned>(fd) >> (kSlotBits + kMiddleBits); }
unsigned middle_index(int fd) noexcept {
  return (static_cast<unsigned>(fd) >> kSlotBits) & ((1u << kMiddleBits) - 1);
}
unsigned slot_index(int fd) noexcept { return static_cast<unsigned>(fd) & ((1u << kSlotBits) - 1); }

// The slot of `fd`, or null if none was ever made. Sequentially consistent
// loads: a null here is part of close()'s Dekker check.
Slot* find_slot(int fd) noexcept {
  Middle* middle = top_level[top_index(fd)].load(std::memory_order_seq_cst);
  if (!middle) return nullptr;
  Chunk* chunk = middle->chunks[middle_index(fd)].load(std::memory_order_seq_cst);
  return chunk ? &chunk->slots[slot_index(fd)] : nullptr;
}

template <class Node>
Node* install(std::atomic<Node*>& link) {
  Node* node = link.load(std::memory_order_acquire);
  if (node) return node;
  auto* made = new Node();
  if (link.compare_exchange_strong(node, made, std::memory_order_seq_cst, std::memory_order_acquire)) return made;
  delete made;  // another thread made it first
  return node;
}

Slot& make_slot(int fd) {
  Middle* middle = install(top_level[top_index(fd)]);
  Chunk* chunk = install(middle->chunks[middle_index(fd)]);
  return chunk->slots[slot_index(fd)];
}

[[gnu::noinline]] Operation* lock_slow(Slot& slot) noexcept {
  std::uintptr_t word = slot.word.load(std::memory_order_relaxed);
  for (int spins = 0;; ++spins) {
    if (!(word & kLocked) &&
        slot.word.compare_exchange_weak(word, word | kLocked, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      return reinterpret_cast<Operation*>(word);
    }
    if (word & kLocked) {
      if (spins < 100) {
        heddle::arch::cpu_relax();
      } else {
        ::sched_yield();
      }
      word = slot.word.load(std::memory_order_relaxed);
    }
  }
}

// Takes the slot's lock and returns the list's head. Critical sections are
// a few pointer moves (and a wake-up queued on a scheduler): spin, then
// yield the thread (the holder may have been preempted).
inline Operation* lock(Slot& slot) noexcept {
  std::uintptr_t word = slot.word.load(std::memory_order_relaxed);
  if (!(word & kLocked) &&
      slot.word.compare_exchange_strong(word, word | kLocked, std::memory_order_seq_cst, std::memory_order_relaxed)) {
    return reinterpret_cast<Operation*>(word);
  }
  return lock_slow(slot);
}

void unlock(Slot& slot, Operation* head) noexcept {
  slot.word.store(reinterpret_cast<std::uintptr_t>(head), std::memory_order_release);
}

void unlink(Operation*& head, Operation& op) noexcept {
  if (op.in_flight_prev) op.in_flight_prev->in_flight_next = op.in_flight_next; else head = op.in_flight_next;
  if (op.in_flight_next) op.in_flight_next->in_flight_prev = op.in_flight_prev;
  op.in_flight_prev = op.in_flight_next = nullptr;
}

void set_closing(Operation& op) noexcept {
  std::atomic_ref<bool>(op.closing).store(true, std::memory_order_release);
}

// Only called outside any task (so never on a bounded task's stack, where
// its indirect call could not be bounded: tools/heddle-stack/rules.json).
[[gnu::noinline]] void detach_outside_tasks(Operation& op) noexcept { op.reactor->detach_here(op); }

[[gnu::cold, gnu::noinline]] void end_listed(Slot& slot) noexcept {
  const bool in_task = heddle::detail::current_task() != nullptr;
  for (;;) {
    Operation* head = lock(slot);
    if (!head) {
      slot.closer = nullptr;
      unlock(slot, nullptr);
      return;
    }
    // One operation at a time, each step out of the lock: a wake-up may
    // run a task inline (one with no scheduler), and that task's leave()
    // takes this lock.
    Operation* to_wake = nullptr;
    Operation* to_detach = nullptr;
    for (Operation* op = head; op; op = op->in_flight_next) {
      set_closing(*op);
      if (!op->close_woken) {
        to_wake = op;
        break;
      }
      if (!in_task && op->reactor->runs_here()) {
        to_detach = op;
        break;
      }
    }
    if (to_wake) {
      to_wake->close_woken = true;
      const Resumer resumer = to_wake->close_waker;
      unlock(slot, head);
      resumer.wake();
      continue;
    }
    if (to_detach) {
      unlink(head, *to_detach);
      to_detach->detached = true;
      unlock(slot, head);
      // Its task cannot run before this returns (this thread is the only
      // one that runs it, and runs no task now), so *to_detach stays put.
      detach_outside_tasks(*to_detach);
      continue;
    }
    heddle::detail::Parker& parker = heddle::detail::current_parker();
    slot.closer = &parker;
    unlock(slot, head);
    parker.park(false, "heddle::io close");  // the last leave() unparks it; spurious wake-ups loop
  }
}

}  // namespace

bool enter(Operation& op) {
  Slot& slot = make_slot(op.fd);
  op.in_flight_slot = &slot;
  Operation* head = lock(slot);
  if (op.descriptor->number_for_close_protocol() != op.fd) {  // after the lock: see the Dekker pair above
    unlock(slot, head);
    return false;
  }
  op.in_flight_prev = nullptr;
  op.in_flight_next = head;
  if (head) head->in_flight_prev = &op;
  op.listed = true;
  op.closing = false;
  op.close_woken = false;
  op.detached = false;
  op.close_waker = Resumer();
  unlock(slot, &op);
  return true;
}

void leave(Operation& op) noexcept {
  Slot& slot = *static_cast<Slot*>(op.in_flight_slot);
  Operation* head = lock(slot);
  if (!op.detached) unlink(head, op);
  op.listed = false;
  heddle::detail::Parker* closer = head ? nullptr : slot.closer;
  unlock(slot, head);
  // Parkers are never freed: if the close() already left (it re-checks the
  // list), this is a spurious wake-up of its next park, which loops.
  if (closer) closer->unpark();
}

bool note_park(Operation& op, const Resumer& resumer) noexcept {
  Slot& slot = *static_cast<Slot*>(op.in_flight_slot);
  Operation* head = lock(slot);
  op.close_waker = resumer;
  const bool open = !op.closing;
  unlock(slot, head);
  return open;
}

bool detached(Operation& op) noexcept {
  Slot& slot = *static_cast<Slot*>(op.in_flight_slot);
  Operation* head = lock(slot);
  const bool result = op.detached;
  unlock(slot, head);
  return result;
}

void end_operations_on(int fd) noexcept {
  Slot* slot = find_slot(fd);
  if (!slot || slot->word.load(std::memory_order_seq_cst) == 0) return;
  end_listed(*slot);
}

std::size_t operations_in_flight(int fd) noexcept {
  if (fd < 0) return 0;
  Slot* slot = find_slot(fd);
  if (!slot) return 0;
  std::size_t count = 0;
  Operation* head = lock(*slot);
  for (Operation* op = head; op; op = op->in_flight_next) ++count;
  unlock(*slot, head);
  return count;
}

}  // namespace heddle::io::detail

namespace heddle::io {

int FileDescriptor::release() noexcept {
  const int fd = fd_.exchange(-1, std::memory_order_seq_cst);
  registered_ = nullptr;
  return fd;
}

void FileDescriptor::close_owned() noexcept {
  const int fd = fd_.exchange(-1, std::memory_order_seq_cst);
  if (fd < 0) return;  // closed meanwhile by another thread (which is still at work)
  detail::end_operations_on(fd);
  // Closing drops the descriptor from any epoll set (heddle never dups it).
  ::close(fd);
  registered_ = nullptr;
}

}  // namespace heddle::io
