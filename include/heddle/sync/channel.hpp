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
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

template <class T>
class Channel;

// What try_send did with the value. On `full` and `closed` the value was not
// moved from: the caller still has it.
enum class SendStatus : std::uint8_t { sent, full, closed };

namespace detail {

// The outcome a channel operation writes into its WaitNode::result (under
// the channel's lock) when it completes.
inline constexpr std::uintptr_t kChannelWaiting = 0;
inline constexpr std::uintptr_t kChannelDone = 1;    // value handed over / taken
inline constexpr std::uintptr_t kChannelClosed = 2;  // the channel was closed: nothing moved

// What one attempt at an operation, under the channel's lock, came to.
enum class Attempt : std::uint8_t {
  not_ready,      // nothing can complete now: park
  done,           // completed (the outcome says whether by value or by close)
  lost,           // a select was won by another of its operations meanwhile
  claimed_empty,  // a select claimed itself but every parked peer was leaving: retry
};

// How a select claims itself before it completes an operation (so no other
// of its operations completes too). Plain operations pass an empty one.
struct SelfClaim {
  bool (*claim)(void* context) noexcept = nullptr;
  void* context = nullptr;
  bool active() const noexcept { return claim != nullptr; }
  bool operator()() const noexcept { return claim == nullptr || claim(context); }
};

// The untyped half of a channel (src/sync/channel.cpp).
struct ChannelCore {
  mutable SpinLock lock;
  WaitList senders;    // node.payload: the sender's T (moved from when taken)
  WaitList receivers;  // node.payload: the receiver's std::optional<T> slot
  bool closed = false;

  ChannelCore() = default;
  ~ChannelCore() = default;  // Channel<T>'s destructor checks for waiters, naming the channel
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  // Under the lock: pops nodes off `list` until a claim succeeds, skipping
  // the nodes tagged `own` (a select's own nodes; 0 skips none). Returns the
  // claimed node, its wake-up in `wakeup`; null if every waiter was leaving.
  static WaitNode* claim_next(WaitList& list, std::uintptr_t own, Wakeup& wakeup) noexcept;
  // Under the lock: true when `list` holds a node not tagged `own`.
  static bool has_other(const WaitList& list, std::uintptr_t own) noexcept;
  // Marks the channel closed and wakes every parked waiter with
  // kChannelClosed. Takes the lock. Returns false if it was already closed.
  bool close() noexcept;
  std::size_t count(const WaitList& list) const noexcept;
};

[[noreturn]] void throw_bad_capacity(std::ptrdiff_t capacity);

// A ring of T, allocated once (bounded) or grown by doubling (unbounded).
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

// One operation of a select, as the untyped select loop sees it.
struct SelectOp {
  WaitNode node;  // parked on the channel's list; node.result is the outcome
  ChannelCore* core = nullptr;
  void* channel = nullptr;  // the typed Channel<T>
  bool is_send = false;
  // Under core->lock: tries to complete the operation now.
  Attempt (*attempt)(SelectOp& op, const SelfClaim& self, Wakeup& wakeup) = nullptr;
};

inline constexpr std::size_t kNoOperation = std::numeric_limits<std::size_t>::max();
// Waits until one operation completes; returns its index (a cancellation
// point for tasks: cancelled, it withdraws every operation, having done none).
std::size_t select_wait(SelectOp* ops, std::size_t count);
// Completes the first ready operation in order and returns its index, or
// kNoOperation if none is ready. Never waits.
std::size_t select_try(SelectOp* ops, std::size_t count);

struct ChannelAccess;

}  // namespace detail

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
  ~Channel() { detail::check_no_waiters("heddle::Channel", this, core_.receivers, core_.senders); }
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
  std::size_t senders_waiting() const noexcept { return core_.count(core_.senders); }
  std::size_t receivers_waiting() const noexcept { return core_.count(core_.receivers); }

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

  detail::Attempt attempt_send_locked(T& value, std::uintptr_t& outcome, detail::Wakeup& wakeup);
  SendStatus try_send_impl(T& value);
  detail::Attempt attempt_send(T& value, std::uintptr_t& outcome, const detail::SelfClaim& self,
                               std::uintptr_t own, detail::Wakeup& wakeup);
  detail::Attempt attempt_receive(std::optional<T>& slot, std::uintptr_t& outcome, const detail::SelfClaim& self,
                                  std::uintptr_t own, detail::Wakeup& wakeup) noexcept;

  const std::size_t capacity_;
  detail::ChannelCore core_;
  detail::RingBuffer<T> buffer_;
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

namespace detail {

template <class Op>
inline constexpr bool is_channel_op_v = false;
template <class T>
inline constexpr bool is_channel_op_v<ReceiveFrom<T>> = true;
template <class T>
inline constexpr bool is_channel_op_v<SendTo<T>> = true;

struct ChannelAccess {
  template <class T>
  static void bind(ReceiveFrom<T>& op, SelectOp& slot) noexcept {
    slot.core = &op.channel_->core_;
    slot.channel = op.channel_;
    slot.is_send = false;
    slot.node.payload = &op.slot_;
    slot.attempt = [](SelectOp& self_op, const SelfClaim& self, Wakeup& wakeup) {
      return static_cast<Channel<T>*>(self_op.channel)
          ->attempt_receive(*static_cast<std::optional<T>*>(self_op.node.payload), self_op.node.result, self,
                            self_op.node.tag, wakeup);
    };
  }
  template <class T>
  static void bind(SendTo<T>& op, SelectOp& slot) noexcept {
    if (op.copy_) op.value_ = &*op.copy_;
    slot.core = &op.channel_->core_;
    slot.channel = op.channel_;
    slot.is_send = true;
    slot.node.payload = op.value_;
    slot.attempt = [](SelectOp& self_op, const SelfClaim& self, Wakeup& wakeup) {
      return static_cast<Channel<T>*>(self_op.channel)
          ->attempt_send(*static_cast<T*>(self_op.node.payload), self_op.node.result, self, self_op.node.tag,
                         wakeup);
    };
  }
  template <class T>
  static std::optional<T> take(ReceiveFrom<T>& op, const SelectOp&) noexcept {
    return std::move(op.slot_);
  }
  template <class T>
  static bool take(SendTo<T>&, const SelectOp& slot) noexcept {
    return slot.node.result == kChannelDone;
  }

  template <class Result, class... Ops, std::size_t... I>
  static Result result_of(std::size_t winner, SelectOp* slots, std::index_sequence<I...>, Ops&... ops) {
    std::optional<Result> result;
    (void)((winner == I ? (result.emplace(std::in_place_index<I>, take(ops, slots[I])), true) : false) || ...);
    return std::move(*result);
  }
};

template <class... Ops>
using SelectResult = std::variant<typename std::remove_cvref_t<Ops>::result_type...>;

template <class... Ops>
concept ChannelOps = sizeof...(Ops) > 0 && (is_channel_op_v<std::remove_cvref_t<Ops>> && ...);

}  // namespace detail

// Waits for the first of the operations to complete; see above.
template <class... Ops>
  requires detail::ChannelOps<Ops...>
[[nodiscard]] detail::SelectResult<Ops...> select_on(Ops&&... ops) {
  std::array<detail::SelectOp, sizeof...(Ops)> slots;
  std::size_t i = 0;
  ((detail::ChannelAccess::bind(ops, slots[i]), ++i), ...);
  const std::size_t winner = detail::select_wait(slots.data(), slots.size());
  return detail::ChannelAccess::result_of<detail::SelectResult<Ops...>>(
      winner, slots.data(), std::index_sequence_for<Ops...>{}, ops...);
}

// Completes the first ready operation, if any; never waits.
template <class... Ops>
  requires detail::ChannelOps<Ops...>
[[nodiscard]] std::optional<detail::SelectResult<Ops...>> try_select_on(Ops&&... ops) {
  std::array<detail::SelectOp, sizeof...(Ops)> slots;
  std::size_t i = 0;
  ((detail::ChannelAccess::bind(ops, slots[i]), ++i), ...);
  const std::size_t winner = detail::select_try(slots.data(), slots.size());
  if (winner == detail::kNoOperation) return std::nullopt;
  return detail::ChannelAccess::result_of<detail::SelectResult<Ops...>>(
      winner, slots.data(), std::index_sequence_for<Ops...>{}, ops...);
}

// ---- Channel<T> implementation

template <class T>
detail::Attempt Channel<T>::attempt_send(T& value, std::uintptr_t& outcome, const detail::SelfClaim& self,
                                         std::uintptr_t own, detail::Wakeup& wakeup) {
  using detail::Attempt;
  if (core_.closed) {
    if (!self()) return Attempt::lost;
    outcome = detail::kChannelClosed;
    return Attempt::done;
  }
  bool claimed_self = false;
  if (detail::ChannelCore::has_other(core_.receivers, own)) {
    // Receivers park only on an empty buffer: hand the value straight over.
    if (!self()) return Attempt::lost;
    claimed_self = true;
    if (detail::WaitNode* receiver = detail::ChannelCore::claim_next(core_.receivers, own, wakeup)) {
      static_cast<std::optional<T>*>(receiver->payload)->emplace(std::move(value));
      receiver->result = detail::kChannelDone;
      outcome = detail::kChannelDone;
      return Attempt::done;
    }
  }
  if (capacity_ == kUnbounded && buffer_.full()) buffer_.grow();  // may throw; nothing moved yet
  if (buffer_.size() < capacity_) {
    if (!claimed_self && !self()) return Attempt::lost;
    buffer_.push_back(std::move(value));
    outcome = detail::kChannelDone;
    return Attempt::done;
  }
  return claimed_self && self.active() ? Attempt::claimed_empty : Attempt::not_ready;
}

template <class T>
detail::Attempt Channel<T>::attempt_receive(std::optional<T>& slot, std::uintptr_t& outcome,
                                            const detail::SelfClaim& self, std::uintptr_t own,
                                            detail::Wakeup& wakeup) noexcept {
  using detail::Attempt;
  if (!buffer_.empty()) {
    if (!self()) return Attempt::lost;
    slot.emplace(std::move(buffer_.front()));
    buffer_.pop_front();
    // A sender parked on the full buffer: its value goes to the tail, after
    // every value already buffered (FIFO), and it is done.
    if (detail::WaitNode* sender = detail::ChannelCore::claim_next(core_.senders, own, wakeup)) {
      buffer_.push_back(std::move(*static_cast<T*>(sender->payload)));
      sender->result = detail::kChannelDone;
    }
    outcome = detail::kChannelDone;
    return Attempt::done;
  }
  bool claimed_self = false;
  if (detail::ChannelCore::has_other(core_.senders, own)) {  // rendezvous: take from a parked sender
    if (!self()) return Attempt::lost;
    claimed_self = true;
    if (detail::WaitNode* sender = detail::ChannelCore::claim_next(core_.senders, own, wakeup)) {
      slot.emplace(std::move(*static_cast<T*>(sender->payload)));
      sender->result = detail::kChannelDone;
      outcome = detail::kChannelDone;
      return Attempt::done;
    }
  }
  if (core_.closed) {
    if (!claimed_self && !self()) return Attempt::lost;
    outcome = detail::kChannelClosed;
    return Attempt::done;
  }
  return claimed_self && self.active() ? Attempt::claimed_empty : Attempt::not_ready;
}

// Takes the lock and tries to send now; returns still holding the lock
// (releases it only if the attempt throws, e.g. a buffer that cannot grow).
template <class T>
detail::Attempt Channel<T>::attempt_send_locked(T& value, std::uintptr_t& outcome, detail::Wakeup& wakeup) {
  core_.lock.lock();
  try {
    return attempt_send(value, outcome, detail::SelfClaim{}, 0, wakeup);
  } catch (...) {
    core_.lock.unlock();
    throw;
  }
}

template <class T>
bool Channel<T>::send_impl(T& value) {
  std::uintptr_t outcome = detail::kChannelWaiting;
  detail::Wakeup wakeup;  // declared first: runs after the lock is released
  const detail::Attempt attempt = attempt_send_locked(value, outcome, wakeup);  // returns holding the lock
  if (attempt == detail::Attempt::done) {
    core_.lock.unlock();
    return outcome == detail::kChannelDone;
  }
  detail::WaitNode node;
  node.payload = &value;
  detail::wait_on(core_.lock, core_.senders, node);  // releases the lock
  return node.result == detail::kChannelDone;
}

template <class T>
SendStatus Channel<T>::try_send_impl(T& value) {
  std::uintptr_t outcome = detail::kChannelWaiting;
  detail::Wakeup wakeup;
  const detail::Attempt attempt = attempt_send_locked(value, outcome, wakeup);  // returns holding the lock
  core_.lock.unlock();
  if (attempt != detail::Attempt::done) return SendStatus::full;
  return outcome == detail::kChannelDone ? SendStatus::sent : SendStatus::closed;
}

template <class T>
std::optional<T> Channel<T>::receive() {
  std::optional<T> slot;
  {
    std::uintptr_t outcome = detail::kChannelWaiting;
    detail::Wakeup wakeup;
    core_.lock.lock();
    const detail::Attempt attempt = attempt_receive(slot, outcome, detail::SelfClaim{}, 0, wakeup);
    if (attempt == detail::Attempt::done) {
      core_.lock.unlock();
      return slot;
    }
  }
  detail::WaitNode node;
  node.payload = &slot;
  detail::wait_on(core_.lock, core_.receivers, node);  // releases the lock
  return slot;  // filled by the sender that claimed us, or empty: closed
}

template <class T>
std::optional<T> Channel<T>::try_receive() {
  std::optional<T> slot;
  std::uintptr_t outcome = detail::kChannelWaiting;
  detail::Wakeup wakeup;
  core_.lock.lock();
  (void)attempt_receive(slot, outcome, detail::SelfClaim{}, 0, wakeup);
  core_.lock.unlock();
  return slot;
}

template <class T>
bool Channel<T>::is_closed() const noexcept {
  core_.lock.lock();
  const bool closed = core_.closed;
  core_.lock.unlock();
  return closed;
}

template <class T>
bool Channel<T>::drained() const noexcept {
  core_.lock.lock();
  const bool drained = core_.closed && buffer_.empty();
  core_.lock.unlock();
  return drained;
}

template <class T>
std::size_t Channel<T>::size() const noexcept {
  core_.lock.lock();
  const std::size_t size = buffer_.size();
  core_.lock.unlock();
  return size;
}

}  // namespace heddle
