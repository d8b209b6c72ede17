// heddle sync (internal): RingBuffer<T>, a channel's buffer.
//
// Owns the buffered values, oldest at head_. Allocated once (a bounded
// channel) or grown by doubling (an unbounded one). Not thread-safe: the
// channel's lock guards it.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace heddle::detail {

template <class T>
class RingBuffer {
 public:
  RingBuffer() = default;
  explicit RingBuffer(std::size_t slots) { if (slots) reallocate(slots); }
  ~RingBuffer() {
    while (size_) pop_front();
    std::allocator<T>().deallocate(data_, slots_);
  }
  RingBuffer(const RingBuffer&) = delete;
  RingBuffer& operator=(const RingBuffer&) = delete;

  bool empty() const noexcept { return size_ == 0; }
  bool full() const noexcept { return size_ == slots_; }
  std::size_t size() const noexcept { return size_; }
  T& front() noexcept { return data_[head_]; }
  void pop_front() noexcept {
    std::destroy_at(data_ + head_);
    if (++head_ == slots_) head_ = 0;
    --size_;
  }
  void push_back(T&& value) noexcept {  // requires !full()
    std::size_t tail = head_ + size_;
    if (tail >= slots_) tail -= slots_;
    std::construct_at(data_ + tail, std::move(value));
    ++size_;
  }
  // Doubles the storage (may throw std::bad_alloc; then nothing changed).
  void grow() { reallocate(slots_ < 8 ? 16 : slots_ * 2); }

 private:
  void reallocate(std::size_t slots) {
    T* fresh = std::allocator<T>().allocate(slots);
    for (std::size_t i = 0; i < size_; ++i) {
      T& from = data_[(head_ + i) % slots_];
      std::construct_at(fresh + i, std::move(from));
      std::destroy_at(&from);
    }
    std::allocator<T>().deallocate(data_, slots_);
    data_ = fresh;
    slots_ = slots;
    head_ = 0;
  }

  T* data_ = nullptr;
  std::size_t slots_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace heddle::detail
