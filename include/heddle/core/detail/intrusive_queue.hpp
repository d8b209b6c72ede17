// heddle core (internal): IntrusiveQueue, the one FIFO of objects linked
// through a pointer member of their own.
//
// Owns nothing but its two ends: the objects live elsewhere (control blocks,
// parkers, timer entries) and an object is on at most one queue per link
// member at a time. No allocation, no locking: a queue belongs to one thread
// or is guarded by its owner's lock. Popping clears the popped object's link,
// so a link is null whenever its object is on no queue of that link.
#pragma once

namespace heddle::detail {

template <class T, T* T::*Next>
class IntrusiveQueue {
 public:
  IntrusiveQueue() = default;
  IntrusiveQueue(const IntrusiveQueue&) = delete;
  IntrusiveQueue& operator=(const IntrusiveQueue&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  T* front() const noexcept { return head_; }

  void push_back(T* item) noexcept {
    item->*Next = nullptr;
    if (tail_) tail_->*Next = item; else head_ = item;
    tail_ = item;
  }

  // Appends a null-terminated chain already linked through Next, keeping
  // its order (a Treiber stack's batch, once reversed). Walks the chain to
  // find its end.
  void append_chain(T* first) noexcept {
    if (!first) return;
    if (tail_) tail_->*Next = first; else head_ = first;
    T* last = first;
    while (last->*Next) last = last->*Next;
    tail_ = last;
  }

  T* pop_front() noexcept {
    T* item = head_;
    if (item) {
      head_ = item->*Next;
      if (!head_) tail_ = nullptr;
      item->*Next = nullptr;
    }
    return item;
  }

  // Empties the queue and returns its chain, oldest first, still linked
  // through Next (for a caller that walks it after releasing a lock).
  T* take_all() noexcept {
    T* first = head_;
    head_ = tail_ = nullptr;
    return first;
  }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace heddle::detail
