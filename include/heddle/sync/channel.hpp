// heddle sync: Channel<T>, a FIFO of values between tasks and threads, and
// select_on, which waits for the first of several channel operations.
//
// Owns: a channel's buffer, its parked senders and receivers, and the
// hand-off between them. Three kinds, by capacity: bounded (N > 0 values are
// buffered; a send waits while N are), rendezvous (0: a send completes only
// when a receiver takes the value) and unbounded (the buffer grows; a send
// never waits). The same channel works between tasks (which park, at a
// cancellation point), threads (which block) and both mixed.
//
// Invariants, under the channel's lock:
//   - parked receivers  =>  the buffer is empty and no sender is parked;
//     parked senders    =>  the buffer is full (capacity values; 0 for a
//     rendezvous channel); so values leave in the order they arrived.
//   - a value moves only after the waiter it goes to (or comes from) was
//     claimed (detail::claim), and before the lock is released: a value is
//     either handed over whole or stays with its owner, never both, never
//     lost. A sender that gets false (closed) or heddle::Cancelled still
//     holds its value, untouched.
//   - a select's operations share one claim (the task's Resumer, or one
//     word for a thread), so exactly one of them completes.
// Values are moved under a spin lock after a claim, so T must be nothrow
// move constructible (wrap other types in std::unique_ptr).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>

#include "heddle/sync/detail/channel_core.hpp"
#include "heddle/sync/detail/ring_buffer.hpp"

namespace heddle {

// What try_send did with the value. On `full` and `closed` the value was not
// moved from: the caller still has it.
enum class SendStatus : std::uint8_t { sent, full, closed };

template <class T>
class Channel {
  static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_array_v<T>,
                "heddle::Channel<T>: T must be a non-const object type");
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "heddle::Channel<T>: T must be nothrow move constructible (values are handed over under a lock)");

 public:
  // capacity > 0: bounded; 0: rendezvous. Throws std::invalid_argument when
  // negative. A bounded channel allocates its buffer here, once.
  explicit Channel(std::ptrdiff_t capacity) : capacity_(checked(capacity)), buffer_(capacity_) {}
  // A channel whose buffer grows as needed (doubling, under the channel's
  // lock; std::bad_alloc leaves the value with the sender): send never waits.
  static Channel unbounded() { return Channel(UnboundedTag{}); }

  // Destroying a channel with parked senders or receivers aborts (every
  // build), naming it and one waiter. Buffered values are destroyed.
  ~Channel() HEDDLE_NO_THREAD_SAFETY_ANALYSIS {  // nobody may hold the lock now
    detail::check_no_waiters("heddle::Channel", this, core_.receivers, core_.senders);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Sends `value`, waiting while the channel is full (rendezvous: until a
  // receiver takes it). From a task, waiting is a cancellation point.
  // Returns true once the value is in the channel (buffered, or taken by a
  // receiver). Returns false if the channel is closed (before or while
  // waiting): the value is then not moved from.
  // If the waiting task is cancelled, either the value was already taken
  // (send returns true, the cancellation comes at the next suspension) or
  // heddle::Cancelled is thrown and `value` was not moved from.
  [[nodiscard]] bool send(T&& value) { return send_impl(value); }
  [[nodiscard]] bool send(const T& value)
    requires std::is_copy_constructible_v<T>
  {
    T copy(value);
    return send_impl(copy);
  }

  // Never waits. On `full` or `closed` the value was not moved from.
  [[nodiscard]] SendStatus try_send(T&& value) { return try_send_impl(value); }
  [[nodiscard]] SendStatus try_send(const T& value)
    requires std::is_copy_constructible_v<T>
  {
    T copy(value);
    return try_send_impl(copy);
  }

  // Takes the oldest value, waiting while the channel is empty. From a task,
  // waiting is a cancellation point. Returns nullopt once the channel is
  // closed and every value sent before close() was received. If the waiting
  // task is cancelled, either it already got a value (returned normally; the
  // cancellation comes at the next suspension) or heddle::Cancelled is thrown
  // and nothing was taken from the channel.
  [[nodiscard]] std::optional<T> receive();
  // Never waits: nullopt when nothing is ready (empty, or closed and
  // drained: tell them apart with drained()).
  [[nodiscard]] std::optional<T> try_receive();

  // Closes the channel: sends fail from now on (returning false with the
  // value intact, parked senders included); receivers get what is buffered,
  // then nullopt. Idempotent.
  void close() noexcept { core_.close(); }

  bool is_closed() const noexcept;
  // Closed and empty: every receive returns nullopt from now on.
  bool drained() const noexcept;
  std::size_t size() const noexcept;  // values buffered now
  // Values it can buffer (0: rendezvous; SIZE_MAX: unbounded).
  std::size_t capacity() const noexcept { return capacity_; }
  bool is_unbounded() const noexcept { return capacity_ == kUnbounded; }
  std::size_t senders_waiting() const noexcept { return core_.waiting(true); }
  std::size_t receivers_waiting() const noexcept { return core_.waiting(false); }

 private:
  friend struct detail::ChannelAccess;
  struct UnboundedTag {};
  static constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();
  explicit Channel(UnboundedTag) : capacity_(kUnbounded) {}
  static std::size_t checked(std::ptrdiff_t capacity) {
    if (capacity < 0) detail::throw_bad_capacity(capacity);
    return static_cast<std::size_t>(capacity);
  }

  bool send_impl(T& value);
  SendStatus try_send_impl(T& value);
  // Under core_.lock: the typed step of the hand-off (sync/detail/channel_impl.hpp).
  detail::Attempt attempt_send(T& value, std::uintptr_t& outcome, const detail::SelfClaim& self,
                               std::uintptr_t own, detail::Wakeup& wakeup) HEDDLE_REQUIRES(core_.lock);
  detail::Attempt attempt_receive(std::optional<T>& slot, std::uintptr_t& outcome, const detail::SelfClaim& self,
                                  std::uintptr_t own, detail::Wakeup& wakeup) noexcept HEDDLE_REQUIRES(core_.lock);

  const std::size_t capacity_;
  detail::ChannelCore core_;
  detail::RingBuffer<T> buffer_ HEDDLE_GUARDED_BY(core_.lock);
};

// ---- select over channel operations
//
//   auto r = heddle::select_on(heddle::receive_from(requests),
//                              heddle::send_to(replies, std::move(reply)));
//   if (r.index() == 0) { std::optional<Request> req = std::get<0>(r); ... }
//   else                { bool sent = std::get<1>(r); ... }
//
// select_on waits until exactly one of its operations completes and returns
// that operation's result as a std::variant whose index is the operation's
// position: receive_from gives std::optional<T> (nullopt: closed and
// drained), send_to gives bool (false: closed). The other operations take
// and give nothing: a send_to that did not complete leaves its value
// untouched, even if passed with std::move. When several are ready at once,
// the first in argument order wins (order them by priority; rotate them to
// be fair). A closed channel is always ready: its receive yields nullopt,
// its send false. From a task, waiting is a cancellation point: cancelled,
// select_on withdraws every operation and throws heddle::Cancelled having
// done none of them, so a timeout composes: with_timeout(d, [&] { return
// select_on(...); }). try_select_on never waits: nullopt when none is ready.
//
// Operations hold references (to the channel, and to the value to send):
// make them inside the select_on call.

// Receives from `channel` when selected.
template <class T>
class ReceiveFrom {
 public:
  using result_type = std::optional<T>;
  explicit ReceiveFrom(Channel<T>& channel) noexcept : channel_(&channel) {}
  ReceiveFrom(const ReceiveFrom&) = delete;
  ReceiveFrom& operator=(const ReceiveFrom&) = delete;

 private:
  friend struct detail::ChannelAccess;
  Channel<T>* channel_;
  std::optional<T> slot_;
};

// Sends a value to `channel` when selected; moves (or, from an lvalue,
// copies) it only then.
template <class T>
class SendTo {
 public:
  using result_type = bool;
  SendTo(Channel<T>& channel, T&& value) noexcept : channel_(&channel), value_(&value) {}
  SendTo(Channel<T>& channel, const T& value)
    requires std::is_copy_constructible_v<T>
      : channel_(&channel), copy_(value) {}
  SendTo(const SendTo&) = delete;
  SendTo& operator=(const SendTo&) = delete;

 private:
  friend struct detail::ChannelAccess;
  Channel<T>* channel_;
  T* value_ = nullptr;
  std::optional<T> copy_;  // the copy an lvalue is sent as (made up front, off the lock)
};

template <class T>
[[nodiscard]] ReceiveFrom<T> receive_from(Channel<T>& channel) noexcept {
  return ReceiveFrom<T>(channel);
}
template <class T>
[[nodiscard]] SendTo<T> send_to(Channel<T>& channel, std::type_identity_t<T>&& value) noexcept {
  return SendTo<T>(channel, std::move(value));
}
template <class T>
  requires std::is_copy_constructible_v<T>
[[nodiscard]] SendTo<T> send_to(Channel<T>& channel, const std::type_identity_t<T>& value) {
  return SendTo<T>(channel, value);
}

// Waits for the first of the operations to complete; see above.
template <class... Ops>
  requires detail::ChannelOps<Ops...>
[[nodiscard]] detail::SelectResult<Ops...> select_on(Ops&&... ops);

// Completes the first ready operation, if any; never waits.
template <class... Ops>
  requires detail::ChannelOps<Ops...>
[[nodiscard]] std::optional<detail::SelectResult<Ops...>> try_select_on(Ops&&... ops);

}  // namespace heddle

// The templates' definitions.
#include "heddle/sync/detail/channel_impl.hpp"
