// heddle core: running a function on an auxiliary stack segment.
//
// Owns: with_stack and maybe_grow, the escape hatch for code whose stack
// need is not bounded where it is called: recursion, or a library call with
// no known frame size (as Rust's `stacker` crate is). The function runs in
// the same task (same id, TaskLocals, cancellation, scheduler) on a segment
// taken from a process-wide StackPool of its size class (a power of two,
// 16 KiB up to 1 GiB, with a guard page), and its result or exception comes
// back to the caller. It may suspend there like anywhere else; a task
// cancelled there gets heddle::Cancelled there, and it propagates out of
// with_stack as any exception does. For heddle's stack bound tool
// (tools/heddle-stack), a with_stack call is a boundary: the caller's bound
// stops at it, and the function gets a figure of its own (reported, not
// registered: its segment's size is chosen at run time).
//
// While the function runs on the segment, the task's stack is the segment:
// an overflow there is caught (guard page, or canary) and reported naming
// the task; dump_tasks shows the frames on the segment; stack_report still
// measures the task's own stack, and, while the profile is on, each
// segment too: it is given back as a site of its own, the with_stack (or
// maybe_grow) call, named "with_stack segment", so that the function
// beyond the boundary gets its own figure. Outside a task (a plain thread)
// it works the same, for the thread.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

#include "heddle/core/source_location.hpp"
#include "heddle/stack/stack.hpp"

namespace heddle {

namespace detail {
// Runs run(context) on `segment` (see src/core/with_stack.cpp); rethrows.
void run_on_stack(const Stack& segment, void (*run)(void*), void* context);
// Bytes left below the caller's frame on the running task's stack (above
// its canary zone), or on the thread's own stack outside a task.
std::size_t stack_left_here() noexcept;
// A segment of at least `bytes` from the pool of its size class; gives it
// back on destruction (adding its use to the stack profile under `site`
// while the profile is on). Throws std::invalid_argument for 0 or more than
// kMaxSegmentBytes, std::system_error when memory runs out.
class Segment {
 public:
  Segment(std::size_t bytes, const SourceLocation& site);
  ~Segment();
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  const Stack& stack() const noexcept { return stack_; }

 private:
  Stack stack_;
  SourceLocation site_;
};
}  // namespace detail

inline constexpr std::size_t kMaxSegmentBytes = std::size_t{1} << 30;

// Bytes of stack left below the caller (what maybe_grow compares).
inline std::size_t stack_left() noexcept { return detail::stack_left_here(); }

// Runs f() on a segment of at least `bytes` and returns what it returns (or
// throws what it throws).
template <class F>
auto with_stack(std::size_t bytes, F&& f, SourceLocation site = SourceLocation::current())
    -> std::invoke_result_t<F&> {
  using Result = std::invoke_result_t<F&>;
  using Function = std::remove_reference_t<F>;
  detail::Segment segment(bytes, site);
  if constexpr (std::is_void_v<Result>) {
    detail::run_on_stack(segment.stack(), [](void* c) { (*static_cast<Function*>(c))(); },
                         const_cast<void*>(static_cast<const void*>(std::addressof(f))));
  } else if constexpr (std::is_reference_v<Result>) {
    struct Call {
      Function* f;
      std::remove_reference_t<Result>* result = nullptr;
    } call{std::addressof(f)};
    detail::run_on_stack(segment.stack(), [](void* c) {
      auto* call = static_cast<Call*>(c);
      call->result = std::addressof((*call->f)());
    }, &call);
    return static_cast<Result>(*call.result);
  } else {
    struct Call {
      Function* f;
      std::optional<Result> result;
    } call{std::addressof(f), std::nullopt};
    detail::run_on_stack(segment.stack(), [](void* c) {
      auto* call = static_cast<Call*>(c);
      call->result.emplace((*call->f)());
    }, &call);
    return std::move(*call.result);
  }
}

// Runs f() where it is when at least `red_zone` bytes of stack are left
// below the caller, and on a segment of `bytes` (with_stack) otherwise: the
// cheap guard for each level of a deep recursion.
template <class F>
auto maybe_grow(std::size_t red_zone, std::size_t bytes, F&& f, SourceLocation site = SourceLocation::current())
    -> std::invoke_result_t<F&> {
  if (stack_left() >= red_zone) return f();
  return with_stack(bytes, std::forward<F>(f), site);
}

}  // namespace heddle
