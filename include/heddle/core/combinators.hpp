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
#include <cstddef>
#include <exception>
#include <optional>
#include "heddle/core/source_location.hpp"
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

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
// (join/select below), which does not return before the arms finish.
#define HEDDLE_DETAIL_CARVE_ARMS(region, stacks, count)                                       \
  if ((stacks).nested_bytes != 0) {                                                           \
    const std::size_t carve_bytes = ::heddle::detail::nested_stride((stacks).nested_bytes) * (count); \
    ::heddle::detail::check_room_for_nested(carve_bytes);                                      \
    region = ::heddle::detail::align_arms(__builtin_alloca(carve_bytes + 64));                 \
  }

namespace detail {
template <class... F>
auto join_impl(const ArmStacks& stacks, std::byte* region, const SourceLocation& site, F&&... fs)
    -> std::tuple<ArmResult<F>...> {
  constexpr std::size_t N = sizeof...(F);
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
auto select_impl(const ArmStacks& stacks, std::byte* region, const SourceLocation& site, F&&... fs)
    -> std::variant<ArmResult<F>...> {
  constexpr std::size_t N = sizeof...(F);
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

// Runs every callable as a child task (each eager, in order) and waits for
// all. Returns their results as a tuple (void arms give std::monostate).
// If an arm throws, the others are cancelled and awaited and the first
// exception is rethrown.
template <class... F>
  requires(sizeof...(F) > 0 && (std::is_invocable_v<std::decay_t<F>&> && ...))
inline auto join(F&&... fs) -> std::tuple<ArmResult<F>...> {
  return detail::join_impl(ArmStacks{}, nullptr, SourceLocation::current(), std::forward<F>(fs)...);
}

// join with a choice of arm stacks: heddle::join(heddle::nested(16 * 1024), f, g).
template <class... F>
  requires(sizeof...(F) > 0 && (std::is_invocable_v<std::decay_t<F>&> && ...))
inline auto join(ArmStacks stacks, F&&... fs) -> std::tuple<ArmResult<F>...> {
  std::byte* region = nullptr;
  HEDDLE_DETAIL_CARVE_ARMS(region, stacks, sizeof...(F))
  return detail::join_impl(stacks, region, SourceLocation::current(), std::forward<F>(fs)...);
}

// Runs the callables as child tasks (each eager, in order) and returns the
// first to finish, as a variant whose index is the arm's position. Once an
// arm has finished (even during its own start, or an earlier one's), no
// further arm starts: their callables never run. The arms that did start
// are cancelled and awaited before select returns. If the first arm to
// finish threw, its exception is rethrown (after the others are awaited).
template <class... F>
  requires(sizeof...(F) > 0 && (std::is_invocable_v<std::decay_t<F>&> && ...))
inline auto select(F&&... fs) -> std::variant<ArmResult<F>...> {
  return detail::select_impl(ArmStacks{}, nullptr, SourceLocation::current(), std::forward<F>(fs)...);
}

template <class... F>
  requires(sizeof...(F) > 0 && (std::is_invocable_v<std::decay_t<F>&> && ...))
inline auto select(ArmStacks stacks, F&&... fs) -> std::variant<ArmResult<F>...> {
  std::byte* region = nullptr;
  HEDDLE_DETAIL_CARVE_ARMS(region, stacks, sizeof...(F))
  return detail::select_impl(stacks, region, SourceLocation::current(), std::forward<F>(fs)...);
}

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
