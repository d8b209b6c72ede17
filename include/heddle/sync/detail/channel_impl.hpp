// heddle sync (internal): the typed half of Channel<T> and select_on, the
// templates' definitions (included at the end of heddle/sync/channel.hpp).
//
// Owns: the attempts, the one step of the hand-off that has to know T: under
// the channel's lock, decide whether the operation completes now and move
// the value (to a parked receiver's slot, into the buffer, out of a parked
// sender). Everything around them (locking, parking, select registration,
// withdrawal) is untyped, in src/sync/channel.cpp, reached through
// detail::channel_send / channel_receive / select_wait with the attempt as a
// function pointer.
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
  return detail::channel_send(core_, this, &value, &detail::ChannelAccess::attempt_send<T>, true) ==
         detail::kChannelDone;
}

template <class T>
SendStatus Channel<T>::try_send_impl(T& value) {
  switch (detail::channel_send(core_, this, &value, &detail::ChannelAccess::attempt_send<T>, false)) {
    case detail::kChannelDone:
      return SendStatus::sent;
    case detail::kChannelClosed:
      return SendStatus::closed;
    default:
      return SendStatus::full;
  }
}

template <class T>
std::optional<T> Channel<T>::receive() {
  std::optional<T> slot;
  (void)detail::channel_receive(core_, this, &slot, &detail::ChannelAccess::attempt_receive<T>, true);
  return slot;  // filled, or empty: closed and drained
}

template <class T>
std::optional<T> Channel<T>::try_receive() {
  std::optional<T> slot;
  (void)detail::channel_receive(core_, this, &slot, &detail::ChannelAccess::attempt_receive<T>, false);
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
