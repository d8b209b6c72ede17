// heddle sync (internal): the untyped half of Channel<T> and select_on,
// defined in src/sync/channel.cpp next to the essay on its protocol.
//
// Owns: a channel's lock, its parked senders and receivers and its closed
// flag (ChannelCore), the outcomes an operation can come to, and the
// type-erased operation the untyped code runs: the typed half
// (sync/detail/channel_impl.hpp) supplies only an attempt, the step that
// decides under the lock what moves where and moves the T.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <variant>

#include "heddle/sync/detail/wait_list.hpp"

namespace heddle {

template <class T>
class Channel;
template <class T>
class ReceiveFrom;
template <class T>
class SendTo;

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

// The untyped state of a channel: everything but its buffer and capacity.
struct ChannelCore {
  mutable SpinLock lock;
  WaitList senders HEDDLE_GUARDED_BY(lock);    // node.payload: the sender's T (moved from when taken)
  WaitList receivers HEDDLE_GUARDED_BY(lock);  // node.payload: the receiver's std::optional<T> slot
  bool closed HEDDLE_GUARDED_BY(lock) = false;

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
  // Parked senders or receivers now (a snapshot). Takes the lock.
  std::size_t waiting(bool senders_side) const noexcept;
};

[[noreturn]] void throw_bad_capacity(std::ptrdiff_t capacity);

// A typed attempt behind a function pointer (ChannelAccess::attempt_send<T>,
// attempt_receive<T>), for a select: called with the channel's lock held,
// it completes the operation if it can, writing kChannelDone or
// kChannelClosed to `outcome`, and leaves the waiter it claimed (if any) in
// `wakeup`. `payload` is the T to send or the std::optional<T> to receive
// into; `own` tags a select's own nodes (0: none).
using AttemptFn = Attempt (*)(void* channel, void* payload, std::uintptr_t& outcome, const SelfClaim& self,
                              std::uintptr_t own, Wakeup& wakeup);

// The parking half of a plain send (`payload`: the T) or receive (the
// std::optional<T>), called with the lock held after the typed attempt
// found nothing ready: parks the caller on the senders or receivers (a
// cancellation point for a task) until a peer completes the operation or
// the channel closes, and returns the outcome. Releases the lock.
std::uintptr_t channel_park(ChannelCore& core, bool is_send, void* payload) HEDDLE_RELEASE(core.lock);

// One operation of a select, as the untyped select loop sees it.
struct SelectOp {
  WaitNode node;  // parked on the channel's list; node.payload as above, node.result the outcome
  ChannelCore* core = nullptr;
  void* channel = nullptr;  // the typed Channel<T>
  bool is_send = false;
  AttemptFn attempt = nullptr;
};

inline constexpr std::size_t kNoOperation = std::numeric_limits<std::size_t>::max();
// Waits until one operation completes; returns its index (a cancellation
// point for tasks: cancelled, it withdraws every operation, having done none).
std::size_t select_wait(SelectOp* ops, std::size_t count);
// Completes the first ready operation in order and returns its index, or
// kNoOperation if none is ready. Never waits.
std::size_t select_try(SelectOp* ops, std::size_t count);

// What select_on accepts, and what it returns.
template <class Op>
inline constexpr bool is_channel_op_v = false;
template <class T>
inline constexpr bool is_channel_op_v<ReceiveFrom<T>> = true;
template <class T>
inline constexpr bool is_channel_op_v<SendTo<T>> = true;

template <class... Ops>
concept ChannelOps = sizeof...(Ops) > 0 && (is_channel_op_v<std::remove_cvref_t<Ops>> && ...);

template <class... Ops>
using SelectResult = std::variant<typename std::remove_cvref_t<Ops>::result_type...>;

// Binds the typed operations to SelectOps and reads their results back
// (sync/detail/channel_impl.hpp); the one friend of the typed classes.
struct ChannelAccess;

}  // namespace detail
}  // namespace heddle
