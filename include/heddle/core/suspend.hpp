// heddle core: leaf suspension and resume handles.
//
// Owns: suspend() and Resumer. A primitive (a wait list, an I/O request, a
// timer) parks the running task with suspend(on_suspend[, on_cancel]):
// on_suspend receives a one-shot Resumer naming the task *and* this exact
// suspension, and stores it. on_suspend runs after the task's registers are
// saved, on the stack of whoever the task switched to (never a task on a
// bounded stack: that one's host stack instead), so a Resumer is never
// used before the task has finished switching out; a resume that arrives
// while on_suspend is still running is remembered and performed as soon as
// it returns. on_cancel runs when the task is cancelled while parked here and
// must withdraw the stored Resumer (so no wait list keeps a dangling entry).
//
// Invariant: of all resumes and cancels aimed at one suspension, exactly one
// wins; every other one returns false and does nothing.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "heddle/core/cancelled.hpp"
#include "heddle/core/detail/control.hpp"

namespace heddle {

// A one-shot handle to resume one task at one suspension point. Copyable (a
// copy names the same suspension and compares equal to it; only one resume
// can succeed), 16 bytes, always safe to use: stale, duplicate or
// after-cancellation resumes return false. Control blocks are never freed,
// so even a handle to a task that finished long ago reads valid memory.
class Resumer {
 public:
  Resumer() = default;

  // Switches into the task now, on this thread, and returns true when it
  // next suspends or finishes; returns false and does nothing if the handle
  // is empty or stale (already used, task cancelled or finished, or the task
  // has moved on to a later suspension).
  // (From a thread that does not run the task's scheduler, the resume goes
  // through that scheduler instead: a task only runs on its scheduler's threads.)
  bool resume() const { return control_ != nullptr && detail::resume_task(control_, generation_); }

  // Wakes the task by the wake policy (core/scheduler.hpp): inline with no
  // scheduler, otherwise queued on the task's scheduler. Returns false and
  // does nothing if the handle is empty or stale. What primitives use.
  bool wake() const noexcept { return control_ != nullptr && detail::wake_task(control_, generation_); }

  explicit operator bool() const noexcept { return control_ != nullptr; }
  std::uint64_t task_id() const noexcept { return control_ ? control_->id : 0; }

  // Equal when both name the same suspension of the same task: a copy
  // equals its original (before and after either is used); the handles of
  // two suspensions of one task differ, as do those of two tasks (even two
  // that ran on one recycled control block: its generation only grows);
  // empty handles equal each other and nothing else.
  friend bool operator==(const Resumer& a, const Resumer& b) noexcept = default;

  // Internal: made by the core for the suspension it names.
  Resumer(detail::TaskControl* control, std::uint64_t generation) noexcept
      : control_(control), generation_(generation) {}
  detail::TaskControl* control() const noexcept { return control_; }
  std::uint64_t generation() const noexcept { return generation_; }

 private:
  detail::TaskControl* control_ = nullptr;
  std::uint64_t generation_ = 0;
};

namespace detail {

template <class OnSuspend, class OnCancel>
struct SuspendHooks {
  OnSuspend& on_suspend;
  OnCancel* on_cancel;
  static void call_suspend(void* self, const Resumer& r) { static_cast<SuspendHooks*>(self)->on_suspend(r); }
  static void call_cancel(void* self) noexcept { (*static_cast<SuspendHooks*>(self)->on_cancel)(); }
};

struct NoCancelHook {
  void operator()() const noexcept {}
};

// `leaf` names the suspension in dump_tasks ("heddle::sleep_until"): a
// string literal, or null.
template <class OnSuspend, class OnCancel>
WakeReason suspend_with_hooks(OnSuspend& on_suspend, OnCancel* on_cancel, bool interruptible,
                              const char* leaf = nullptr) {
  static_assert(std::is_invocable_v<OnSuspend&, const Resumer&>, "on_suspend must accept a heddle::Resumer");
  SuspendHooks<OnSuspend, OnCancel> hooks{on_suspend, on_cancel};
  return suspend_current(&SuspendHooks<OnSuspend, OnCancel>::call_suspend,
                         on_cancel ? &SuspendHooks<OnSuspend, OnCancel>::call_cancel : nullptr, &hooks,
                         interruptible, leaf);
}

// For heddle's own leaves: one object that is both hooks (invocable with a
// Resumer when the task has switched out, and with nothing when it is
// cancelled there) is the suspension's context itself, so the waiting
// frame holds no SuspendHooks beside it. That frame is on every waiting
// task's stack, and a bounded task's stack is sized to its deepest frame.
template <class Hooks>
struct SuspendHookObject {
  static void call_suspend(void* self, const Resumer& r) { (*static_cast<Hooks*>(self))(r); }
  static void call_cancel(void* self) noexcept { (*static_cast<Hooks*>(self))(); }
};

template <class Hooks>
WakeReason suspend_with_hook_object(Hooks& hooks, bool interruptible, const char* leaf) {
  static_assert(std::is_nothrow_invocable_v<Hooks&>, "the cancel hook must be noexcept");
  return suspend_current(&SuspendHookObject<Hooks>::call_suspend,
                         interruptible ? &SuspendHookObject<Hooks>::call_cancel : nullptr, &hooks, interruptible,
                         leaf);
}

[[noreturn]] void throw_cancelled();
void rethrow_hook_error();

inline void finish_suspension(WakeReason reason) {
  if (reason == WakeReason::cancelled) throw_cancelled();
  if (reason == WakeReason::hook_failed) rethrow_hook_error();
}

// heddle::suspend(on_suspend, on_cancel) for leaves inside heddle, naming the
// suspension for dump_tasks: `leaf` must be a string literal.
template <class OnSuspend, class OnCancel>
void suspend_named(const char* leaf, OnSuspend&& on_suspend, OnCancel&& on_cancel) {
  static_assert(std::is_nothrow_invocable_v<OnCancel&>, "on_cancel must be noexcept");
  finish_suspension(suspend_with_hooks(on_suspend, &on_cancel, true, leaf));
}

}  // namespace detail

// Parks the running task until the Resumer handed to on_suspend is used.
// A cancellation point: throws heddle::Cancelled if the task is (or gets)
// cancelled. Throws std::logic_error outside a task. If on_suspend throws,
// the task is resumed at once and the exception propagates from suspend().
template <class OnSuspend>
void suspend(OnSuspend&& on_suspend) {
  detail::finish_suspension(
      detail::suspend_with_hooks(on_suspend, static_cast<detail::NoCancelHook*>(nullptr), true));
}

// As above; on_cancel() runs (on the cancelling thread, while the task is
// still parked) when the task is cancelled at this suspension, and must
// withdraw the Resumer that on_suspend stored.
template <class OnSuspend, class OnCancel>
void suspend(OnSuspend&& on_suspend, OnCancel&& on_cancel) {
  static_assert(std::is_nothrow_invocable_v<OnCancel&>, "on_cancel must be noexcept");
  detail::finish_suspension(detail::suspend_with_hooks(on_suspend, &on_cancel, true));
}

// A suspension cancellation cannot interrupt (cleanup that must wait, e.g.
// for an I/O cancellation to complete). Cancellation stays pending and is
// delivered at the next interruptible suspension.
template <class OnSuspend>
void suspend_uninterruptible(OnSuspend&& on_suspend) {
  detail::finish_suspension(
      detail::suspend_with_hooks(on_suspend, static_cast<detail::NoCancelHook*>(nullptr), false));
}

}  // namespace heddle
