// heddle core (internal): TreiberStack, a lock-free stack that many threads
// push onto and one consumer empties whole, linked through a pointer member
// of the pushed objects.
//
// Protocol (one atomic word, `head_`):
//   states:  empty (null)  |  a chain, newest first, linked through Next
//   push     (any thread):     chain -> item:chain   CAS, release: the
//            pusher's writes to the item (and its link) happen before the
//            consumer's take.
//   take_all (the owner only): chain -> empty        exchange, acquire.
// Nothing is ever popped singly, so the ABA problem of a Treiber pop does
// not arise: an item is pushed again only after the owner took it. The
// owner gets the batch newest first; take_all_in_arrival_order() reverses
// it. A pushed item belongs to the stack until taken: the pusher must not
// touch it (or the stack, if the stack may be destroyed once it sees the
// item) after its push.
#pragma once

#include <atomic>

namespace heddle::detail {

template <class T, T* T::*Next>
class TreiberStack {
 public:
  TreiberStack() = default;
  TreiberStack(const TreiberStack&) = delete;
  TreiberStack& operator=(const TreiberStack&) = delete;

  // Any thread.
  void push(T* item) noexcept {
    T* head = head_.load(std::memory_order_relaxed);
    do {
      item->*Next = head;
    } while (!head_.compare_exchange_weak(head, item, std::memory_order_release, std::memory_order_relaxed));
  }

  // A look, for the consumer's "is there anything?" and for sleep protocols
  // that order it with their own fences (pass the order they need).
  bool empty(std::memory_order order = std::memory_order_relaxed) const noexcept {
    return head_.load(order) == nullptr;
  }

  // The owner: takes everything pushed so far, newest first.
  T* take_all() noexcept { return head_.exchange(nullptr, std::memory_order_acquire); }

  // The owner: takes everything pushed so far, oldest first (linked through Next).
  T* take_all_in_arrival_order() noexcept {
    T* head = take_all();
    T* out = nullptr;
    while (head) {
      T* next = head->*Next;
      head->*Next = out;
      out = head;
      head = next;
    }
    return out;
  }

 private:
  std::atomic<T*> head_{nullptr};
};

}  // namespace heddle::detail
