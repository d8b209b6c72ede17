// heddle core: join, select and TaskGroup: structured waiting, like threads.
//
// Owns: running several callables as child tasks and waiting for them the
// way a thread waits for threads. None of these returns before every child
// has finished: an arm that throws makes the others cancelled and awaited,
// then its exception is rethrown; a cancelled waiter cancels and awaits all
// its children, then throws heddle::Cancelled itself.
//
// Arms run on pool stacks by default, or on stack carved out of the
// caller's own stack (nested(bytes)), so that structured fan-out allocates
// nothing. A nested arm stack sits inside the caller's frame, which cannot
// return before the arm finishes; overflow is caught by its canary.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "heddle/core/source_location.hpp"
#include "heddle/core/task.hpp"

namespace heddle {

// Where join/select arms run.
struct ArmStacks {
  std::size_t nested_bytes = 0;  // > 0: each arm gets this many bytes of the caller's stack
  StackPool* pool = nullptr;     // otherwise: this pool (default pool when null)
};
// Each arm runs on `bytes_per_arm` bytes carved from the caller's stack.
// join/select throw std::length_error (the request exceeds the room left,
// a size limit) when the caller's stack cannot hold every arm's bytes plus
// a margin for its own calls; no arm has started then.
inline ArmStacks nested(std::size_t bytes_per_arm) noexcept { return ArmStacks{bytes_per_arm, nullptr}; }
// Each arm runs on a stack from `pool`.
inline ArmStacks pooled(StackPool& pool) noexcept { return ArmStacks{0, &pool}; }

// The value an arm produces; void arms produce std::monostate.
template <class F>
using ArmResult = std::conditional_t<std::is_void_v<std::invoke_result_t<std::decay_t<F>&>>, std::monostate,
                                     std::invoke_result_t<std::decay_t<F>&>>;

namespace detail {

template <class F>
struct VoidToMonostate {
  F fn;
  ArmResult<F> operator()() {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      fn();
      return std::monostate{};
    } else {
      return fn();
    }
  }
};

template <class F>
auto arm_callable(F&& f) {
  return VoidToMonostate<std::decay_t<F>>{std::forward<F>(f)};
}

template <class T>
T take_arm_result(TaskControl* arm) {
  return result_slot<T>(arm->frame).take();
}

inline std::size_t nested_stride(std::size_t bytes) noexcept { return (bytes + 63) & ~std::size_t{63}; }

// An arm's task name, "join arm 2" or "select arm 0" (its position), so
// that dump_tasks, stack_report and overflow reports tell arms apart.
struct ArmName {
  char text[32];
  ArmName(bool select_mode, std::size_t index) noexcept;
};

inline SpawnOptions arm_options(const ArmStacks& stacks, std::byte* region, std::size_t index, const char* name) {
  SpawnOptions options;
  options.name = name;  // copied by the spawn
  options.pool = stacks.pool;
  if (region) {
    const std::size_t stride = nested_stride(stacks.nested_bytes);
    options.stack = stack_from_span(std::span<std::byte>(region + index * stride, stride), StackKind::nested);
  }
  return options;
}

// Spawns the arms into `group`, in order, and returns how many it spawned:
// every one for join; for select (`select_mode`), none after an arm has
// finished (arms are eager, so one that does not suspend finishes during
// its own spawn, or an arm may finish an earlier one): the winner exists,
// and a later arm would run for nothing. If a spawn throws, the arms
// already running are cancelled, awaited and released before the
// exception propagates.
template <class... F, std::size_t... I>
std::size_t spawn_arms(GroupLink& group, TaskControl** arms, const ArmStacks& stacks, std::byte* region,
                       const SourceLocation& site, bool select_mode, std::index_sequence<I...>, F&&... fs) {
  std::size_t spawned = 0;
  // A finished arm is on the group's finished list until wait_arms takes it.
  const auto has_winner = [&] {
    return select_mode && group.finished_head.load(std::memory_order_acquire) != nullptr;
  };
  try {
    (void)((has_winner() ||
            (arms[I] = spawn_control(arm_callable(std::forward<F>(fs)),
                                     arm_options(stacks, region, I, ArmName(select_mode, I).text), site, &group, I),
             ++spawned, false)) ||
           ...);
  } catch (...) {
    const GroupOutcome outcome = wait_arms(group, arms, spawned, true);
    (void)outcome;
    release_arms(arms, spawned);
    throw;
  }
  return spawned;
}

}  // namespace detail

namespace detail {
// Throws std::length_error when the running stack has less than `bytes`
// (plus a margin for the caller's own calls) left below the caller.
void check_room_for_nested(std::size_t bytes);
inline std::byte* align_arms(void* raw) noexcept {
  return reinterpret_cast<std::byte*>((reinterpret_cast<std::uintptr_t>(raw) + 63) & ~std::uintptr_t{63});
}
}  // namespace detail

// Carves nested arm stacks from the frame of the function it is used in
// (join_impl/select_impl below), which does not return before the arms finish.
#define HEDDLE_DETAIL_CARVE_ARMS(region, stacks, count)                                       \
  if ((stacks).nested_bytes != 0) {                                                           \
    const std::size_t carve_bytes = ::heddle::detail::nested_stride((stacks).nested_bytes) * (count); \
    ::heddle::detail::check_room_for_nested(carve_bytes);                                      \
    region = ::heddle::detail::align_arms(__builtin_alloca(carve_bytes + 64));                 \
  }

namespace detail {

template <class... F>
concept ArmCallables = sizeof...(F) > 0 && (std::is_invocable_v<std::decay_t<F>&> && ...);

template <class... F>
auto join_impl(const ArmStacks& stacks, const SourceLocation& site, F&&... fs) -> std::tuple<ArmResult<F>...> {
  constexpr std::size_t N = sizeof...(F);
  std::byte* region = nullptr;
  HEDDLE_DETAIL_CARVE_ARMS(region, stacks, N)
  GroupLink group;
  group.owner = &current_parker();
  std::array<TaskControl*, N> arms{};
  spawn_arms(group, arms.data(), stacks, region, site, false, std::index_sequence_for<F...>{},
             std::forward<F>(fs)...);
  const GroupOutcome outcome = wait_arms(group, arms.data(), N, false);
  release_arms_and_rethrow(outcome, arms.data(), N, false);
  struct ReleaseAll {
    TaskControl** arms;
    ~ReleaseAll() { release_arms(arms, N); }
  } release{arms.data()};
  return [&]<std::size_t... I>(std::index_sequence<I...>) {
    return std::tuple<ArmResult<F>...>(take_arm_result<ArmResult<F>>(arms[I])...);
  }(std::index_sequence_for<F...>{});
}

template <class... F>
auto select_impl(const ArmStacks& stacks, const SourceLocation& site, F&&... fs) -> std::variant<ArmResult<F>...> {
  constexpr std::size_t N = sizeof...(F);
  std::byte* region = nullptr;
  HEDDLE_DETAIL_CARVE_ARMS(region, stacks, N)
  GroupLink group;
  group.owner = &current_parker();
  std::array<TaskControl*, N> arms{};
  const std::size_t spawned = spawn_arms(group, arms.data(), stacks, region, site, true,
                                         std::index_sequence_for<F...>{}, std::forward<F>(fs)...);
  GroupOutcome outcome = wait_arms(group, arms.data(), spawned, true);
  // The winner is the first arm to finish; if it threw, that is rethrown.
  if (outcome.first_failed != outcome.first_finished) outcome.first_failed = -1;
  release_arms_and_rethrow(outcome, arms.data(), spawned, false);
  struct ReleaseSpawned {
    TaskControl** arms;
    std::size_t count;
    ~ReleaseSpawned() { release_arms(arms, count); }
  } release{arms.data(), spawned};
  std::optional<std::variant<ArmResult<F>...>> result;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (void)((static_cast<std::size_t>(outcome.first_finished) == I
          ? (result.emplace(std::in_place_index<I>, take_arm_result<ArmResult<F>>(arms[I])), true)
          : false) ||
     ...);
  }(std::index_sequence_for<F...>{});
  return std::move(*result);
}

}  // namespace detail

// join and select are class templates used like functions, so that they
// can record the caller's line as their arms' spawn site (dump_tasks,
// stack_report, overflow reports): a function cannot default a parameter
// after a pack of callables, but a constructor reached through a
// deduction guide can (the guide deduces the pack, and the constructor's
// SourceLocation::current() default then names the call). The object is
// its result: a join<F...> is a std::tuple<ArmResult<F>...> and a
// select<F...> a std::variant<ArmResult<F>...> (public bases, with the
// std::tuple_size / variant_size specialisations at the end of this file),
// so structured bindings, std::get, std::visit, index() and conversion to
// the plain tuple or variant work as on those types.
//
// One difference from a function: a statement of a single named argument,
// `heddle::join(f);`, declares a variable f (C++'s declaration rule), a
// compile error; write `(void)heddle::join(f);` or name the result.

// Runs every callable as a child task (each eager, in order) and waits for
// all; the result is the tuple of their values (void arms give
// std::monostate): auto [a, b] = heddle::join(f, g). If an arm throws, the
// others are cancelled and awaited and the first exception is rethrown.
// Arm stacks may come first: heddle::join(heddle::nested(16 * 1024), f, g).
// Each arm's task is named "join arm <i>" and spawned at the caller's line.
template <class... F>
  requires detail::ArmCallables<F...>
class join : public std::tuple<ArmResult<F>...> {
 public:
  using result_type = std::tuple<ArmResult<F>...>;
  join(F&&... fs, SourceLocation site = SourceLocation::current())
      : result_type(detail::join_impl(ArmStacks{}, site, std::forward<F>(fs)...)) {}
  join(ArmStacks stacks, F&&... fs, SourceLocation site = SourceLocation::current())
      : result_type(detail::join_impl(stacks, site, std::forward<F>(fs)...)) {}
};
template <class... F>
  requires detail::ArmCallables<F...>
join(F&&...) -> join<F...>;
template <class... F>
  requires detail::ArmCallables<F...>
join(ArmStacks, F&&...) -> join<F...>;

// Runs the callables as child tasks (each eager, in order); the result is
// the first to finish, as a variant whose index is the arm's position. Once an
// arm has finished (even during its own start, or an earlier one's), no
// further arm starts: their callables never run. The arms that did start
// are cancelled and awaited before select returns. If the first arm to
// finish threw, its exception is rethrown (after the others are awaited).
// Arm stacks may come first, as for join; each arm's task is named
// "select arm <i>" and spawned at the caller's line.
template <class... F>
  requires detail::ArmCallables<F...>
class select : public std::variant<ArmResult<F>...> {
 public:
  using result_type = std::variant<ArmResult<F>...>;
  select(F&&... fs, SourceLocation site = SourceLocation::current())
      : result_type(detail::select_impl(ArmStacks{}, site, std::forward<F>(fs)...)) {}
  select(ArmStacks stacks, F&&... fs, SourceLocation site = SourceLocation::current())
      : result_type(detail::select_impl(stacks, site, std::forward<F>(fs)...)) {}
};
template <class... F>
  requires detail::ArmCallables<F...>
select(F&&...) -> select<F...>;
template <class... F>
  requires detail::ArmCallables<F...>
select(ArmStacks, F&&...) -> select<F...>;

// A nursery: holds any number of child tasks and waits for all of them.
// Spawn only from the task or thread that made the group. At scope exit it
// waits for every child; if the scope is left by an exception the children
// are cancelled first. A child's exception cancels the other children and is
// rethrown by wait() (or by the destructor, when wait() was not called and
// no other exception is in flight).
class TaskGroup {
 public:
  explicit TaskGroup(StackPool* pool = nullptr);
  ~TaskGroup() noexcept(false);
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  template <class F>
  void spawn(F&& f, SpawnOptions options = {}, SourceLocation site = SourceLocation::current()) {
    check_owner();
    reap();
    if (!options.pool) options.pool = pool_;
    detail::TaskControl* child = detail::spawn_control(std::forward<F>(f), options, site, &link_, 0);
    link_child(child);
    if (cancelling_) cancel_child(child);
  }

  // Waits for every child. Rethrows the first child exception (the others
  // were cancelled), or heddle::Cancelled if the waiting task was cancelled.
  void wait();
  // Cancels every child still running.
  void cancel() noexcept;
  // Children spawned and not yet reaped (finished children are reaped at
  // spawn and wait).
  std::size_t size() const noexcept { return live_; }

 private:
  void check_owner() const;
  void reap() noexcept;
  void link_child(detail::TaskControl* child) noexcept;
  void cancel_child(detail::TaskControl* child) noexcept;
  void wait_all(bool interruptible);

  detail::GroupLink link_;
  StackPool* pool_;
  detail::TaskControl* live_head_ = nullptr;
  std::size_t live_ = 0;
  std::exception_ptr first_error_;
  bool cancelling_ = false;
  bool owner_cancelled_ = false;
  int uncaught_at_start_;
};

}  // namespace heddle

// join and select are their results: tuple-like and variant-like for the
// standard library, as their bases are.
template <class... F>
struct std::tuple_size<heddle::join<F...>> : std::integral_constant<std::size_t, sizeof...(F)> {};
template <std::size_t I, class... F>
struct std::tuple_element<I, heddle::join<F...>> : std::tuple_element<I, typename heddle::join<F...>::result_type> {};
template <class... F>
struct std::variant_size<heddle::select<F...>> : std::integral_constant<std::size_t, sizeof...(F)> {};
template <std::size_t I, class... F>
struct std::variant_alternative<I, heddle::select<F...>>
    : std::variant_alternative<I, typename heddle::select<F...>::result_type> {};
