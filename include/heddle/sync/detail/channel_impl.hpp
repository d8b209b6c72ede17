// heddle sync (internal): the typed half of Channel<T> and select_on, the
// templates' definitions (included at the end of heddle/sync/channel.hpp).
//
// Owns: the attempts, the one step of the hand-off that has to know T: under
// the channel's lock, decide whether the operation completes now and move
// the value (to a parked receiver's slot, into the buffer, out of a parked
// sender). A plain operation takes the lock and runs its attempt here,
// inline (the fast path, no indirect call); everything else (parking, select
// registration and withdrawal) is untyped, in src/sync/channel.cpp, reached
// through detail::channel_park and detail::select_wait (with the attempt as
// a function pointer).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <utility>

#include "heddle/sync/channel.hpp"

namespace heddle {

namespace detail {

struct ChannelAccess {
  // The attempts behind AttemptFn: the untyped code calls them with the
  // channel's lock held, which the analysis cannot see through the pointer.
  template <class T>
  static Attempt attempt_send(void* channel, void* payload, std::uintptr_t& outcome, const SelfClaim& self,
                              std::uintptr_t own, Wakeup& wakeup) HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
    return static_cast<Channel<T>*>(channel)->attempt_send(*static_cast<T*>(payload), outcome, self, own, wakeup);
  }
  template <class T>
  static Attempt attempt_receive(void* channel, void* payload, std::uintptr_t& outcome, const SelfClaim& self,
                                 std::uintptr_t own, Wakeup& wakeup) HEDDLE_NO_THREAD_SAFETY_ANALYSIS {
    return static_cast<Channel<T>*>(channel)->attempt_receive(*static_cast<std::optional<T>*>(payload), outcome,
                                                              self, own, wakeup);
  }

  template <class T>
  static void bind(ReceiveFrom<T>& op, SelectOp& slot) noexcept {
    slot.core = &op.channel_->core_;
    slot.channel = op.channel_;
    slot.is_send = false;
    slot.node.payload = &op.slot_;
    slot.attempt = &attempt_receive<T>;
  }
  template <class T>
  static void bind(SendTo<T>& op, SelectOp& slot) noexcept {
    if (op.copy_) op.value_ = &*op.copy_;
    slot.core = &op.channel_->core_;
    slot.channel = op.channel_;
    slot.is_send = true;
    slot.node.payload = op.value_;
    slot.attempt = &attempt_send<T>;
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

}  // namespace detail

// ---- select_on

template <class... Ops>
  requires detail::ChannelOps<Ops...>
detail::SelectResult<Ops...> select_on(Ops&&... ops) {
  std::array<detail::SelectOp, sizeof...(Ops)> slots;
  std::size_t i = 0;
  ((detail::ChannelAccess::bind(ops, slots[i]), ++i), ...);
  const std::size_t winner = detail::select_wait(slots.data(), slots.size());
  return detail::ChannelAccess::result_of<detail::SelectResult<Ops...>>(
      winner, slots.data(), std::index_sequence_for<Ops...>{}, ops...);
}

template <class... Ops>
  requires detail::ChannelOps<Ops...>
std::optional<detail::SelectResult<Ops...>> try_select_on(Ops&&... ops) {
  std::array<detail::SelectOp, sizeof...(Ops)> slots;
  std::size_t i = 0;
  ((detail::ChannelAccess::bind(ops, slots[i]), ++i), ...);
  const std::size_t winner = detail::select_try(slots.data(), slots.size());
  if (winner == detail::kNoOperation) return std::nullopt;
  return detail::ChannelAccess::result_of<detail::SelectResult<Ops...>>(
      winner, slots.data(), std::index_sequence_for<Ops...>{}, ops...);
}

// ---- Channel<T>

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

template <class T>
bool Channel<T>::send_impl(T& value) {
  std::uintptr_t outcome = detail::kChannelWaiting;
  detail::Wakeup wakeup;  // declared first: runs after the lock is released
  core_.lock.lock();      // released here, or by channel_park
  detail::Attempt attempt;
  try {
    attempt = attempt_send(value, outcome, detail::SelfClaim{}, 0, wakeup);
  } catch (...) {  // a buffer that could not grow: nothing moved
    core_.lock.unlock();
    throw;
  }
  if (attempt == detail::Attempt::done) {
    core_.lock.unlock();
    return outcome == detail::kChannelDone;
  }
  return detail::channel_park(core_, true, &value) == detail::kChannelDone;
}

template <class T>
SendStatus Channel<T>::try_send_impl(T& value) {
  std::uintptr_t outcome = detail::kChannelWaiting;
  detail::Attempt attempt;
  {
    detail::Wakeup wakeup;  // declared first: runs after the guard releases the lock
    detail::SpinLockGuard guard(core_.lock);
    attempt = attempt_send(value, outcome, detail::SelfClaim{}, 0, wakeup);
  }
  if (attempt != detail::Attempt::done) return SendStatus::full;
  return outcome == detail::kChannelDone ? SendStatus::sent : SendStatus::closed;
}

template <class T>
std::optional<T> Channel<T>::receive() {
  std::optional<T> slot;
  {
    std::uintptr_t outcome = detail::kChannelWaiting;
    detail::Wakeup wakeup;  // declared first: runs after the lock is released
    core_.lock.lock();      // released here, or by channel_park
    if (attempt_receive(slot, outcome, detail::SelfClaim{}, 0, wakeup) == detail::Attempt::done) {
      core_.lock.unlock();
      return slot;
    }
  }
  (void)detail::channel_park(core_, false, &slot);
  return slot;  // filled by the sender that claimed us, or empty: closed
}

template <class T>
std::optional<T> Channel<T>::try_receive() {
  std::optional<T> slot;
  std::uintptr_t outcome = detail::kChannelWaiting;
  detail::Wakeup wakeup;  // declared first: runs after the guard releases the lock
  detail::SpinLockGuard guard(core_.lock);
  (void)attempt_receive(slot, outcome, detail::SelfClaim{}, 0, wakeup);
  return slot;
}

template <class T>
bool Channel<T>::is_closed() const noexcept {
  detail::SpinLockGuard guard(core_.lock);
  return core_.closed;
}

template <class T>
bool Channel<T>::drained() const noexcept {
  detail::SpinLockGuard guard(core_.lock);
  return core_.closed && buffer_.empty();
}

template <class T>
std::size_t Channel<T>::size() const noexcept {
  detail::SpinLockGuard guard(core_.lock);
  return buffer_.size();
}

}  // namespace heddle
