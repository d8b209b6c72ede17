// heddle core: how spawn sizes a task's stack when no pool or stack is
// named: a compiler-proven bound, or a size learned from measurement.
//
// Owns: the registry of StackBound entries, and the learned size classes.
//
// Proven bounds. tools/heddle-stack computes, for each callable type a
// program spawns, the deepest its task's stack can go (from GCC's
// -fcallgraph-info=su call graph), and the CMake helper
// heddle_stack_bounds(target) compiles the result into the target as a
// StackBoundsRegistration. From then on spawn(f) of a bounded callable runs
// it on a stack of exactly its bound plus the callable's own frame, from a
// bounded StackPool: a bound below a page gets a sub-page slab stack (many
// tasks to a page, canary-checked). A callable is identified by
// typeid(detail::TaskFrame<F, T>).name(), the name the tool derives from
// the symbol of TaskFrame<F, T>::run(); builds without RTTI find no bound.
// A bound counts the red zone where the code has one (x86-64 code compiled
// without -mno-red-zone) but not a signal frame: a handler installed
// without SA_ONSTACK runs on whatever stack is running, and its frame
// (over 3 KiB with AVX-512 state) would overflow a tight stack. Install
// handlers with SA_ONSTACK (heddle gives every thread that runs tasks an
// alternate signal stack) or block signals on those threads.
//
// Learned sizes (SpawnOptions::stack_policy = StackPolicy::learned). For a
// callable with no proven bound, the first kLearnedSamples tasks run on the
// default pool's stacks, painted, and their high-water marks are recorded
// per callable type (for a lambda, that is its spawn site); while those are
// out, further tasks run on unpainted default stacks (a painted stack is
// resident whole, and long-lived tasks would otherwise all be painted before
// the first sample came back). After that each
// task gets a stack from a size class: the smallest power of two from 4 KiB
// to 1 MiB that holds the deepest use seen plus a margin (a quarter of it,
// at least 1 KiB). One spawn in kLearnedSampleEvery per thread is painted
// and measured again, so a site that goes deeper moves up a class; no class
// is ever chosen below what was seen plus the margin. Learned sizes are
// never below a page: a sub-page stack needs a proof. Its pool is a bounded
// one, so its tasks host no other task's switch work (which is in no
// sample), as tasks with proven bounds do. A learned class has a
// guard page while the process's mapping budget lasts (StackPool's
// Guard::automatic), so a task that goes deeper than anything seen before
// is still caught.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <typeinfo>

namespace heddle {

class StackPool;

enum class StackPolicy : std::uint8_t {
  proven,   // a registered bound if the callable has one, else the default pool (the default)
  learned,  // a registered bound if any, else a size class learned from measured use
};

struct StackBound {
  const char* frame_type;  // typeid(detail::TaskFrame<F, T>).name()
  std::size_t bytes;       // proven depth below the task's frame: frames, entry slot, red zone if any
  const char* callable;    // what the tool called it, for reports
};

// Registers a table for the rest of the process (the generated source
// holds one as a namespace-scope object). The table must outlive the
// process's last spawn: it is never copied.
class StackBoundsRegistration {
 public:
  template <std::size_t N>
  explicit StackBoundsRegistration(const StackBound (&bounds)[N]) noexcept : StackBoundsRegistration(bounds, N) {}
  StackBoundsRegistration(const StackBound* bounds, std::size_t count) noexcept;
};

// How a spawn of a callable is sized by its bound.
struct StackBoundUse {
  std::size_t bound_bytes = 0;  // the registered bound, 0 when there is none
  std::size_t stack_bytes = 0;  // the stack spawn takes: canary zone + frame + bound (0 when unbounded)
  StackPool* pool = nullptr;    // the bounded pool spawn takes it from (nullptr when unbounded)
};

namespace detail {

inline constexpr std::uint32_t kLearnedSamples = 8;
inline constexpr std::uint32_t kLearnedSampleEvery = 64;

// What has been learned about one callable type's stack use. Written with
// relaxed atomics from whichever thread releases a measured task: the
// figures only grow, and a stale read only means one more task on the
// previous class.
struct LearnedStack {
  std::atomic<std::size_t> high_water{0};  // deepest painted use seen, in bytes from the top
  std::atomic<std::uint32_t> samples{0};   // tasks measured
  // Measured tasks not yet released. While learning, at most
  // kLearnedSamples are measured at once: a painted default stack is
  // resident whole, and long-lived tasks (a million parked ones) would
  // otherwise all be spawned painted before the first sample came back.
  std::atomic<std::uint32_t> measuring{0};
};

struct LearnedChoice {
  StackPool* pool = nullptr;  // nullptr: the default pool
  bool measure = false;       // paint this task's stack and record its use at release
};
LearnedChoice choose_learned_stack(LearnedStack& learned) noexcept;
// Called by release_task for a task spawned with measure set.
void record_learned_stack(LearnedStack& learned, std::size_t high_water) noexcept;
// The size class for a use of `high_water` bytes (4 KiB to 1 MiB).
std::size_t learned_class_bytes(std::size_t high_water) noexcept;

// Bumped by every registration; 0 while nothing is registered, so an
// unbounded program pays one relaxed load per spawn.
extern std::atomic<std::uint64_t> stack_bounds_generation;
StackBoundUse lookup_stack_bound(const char* frame_type, std::size_t frame_bytes) noexcept;

// The bound of the task frame type Frame, looked up once per registry
// generation. Two threads may both look it up the first time; they find
// the same answer.
template <class Frame>
StackBoundUse stack_bound_of_frame() noexcept {
#if defined(__GXX_RTTI) || defined(__cpp_rtti)
  const std::uint64_t generation = stack_bounds_generation.load(std::memory_order_acquire);
  if (generation == 0) return {};
  static std::atomic<std::uint64_t> seen{0};
  static std::atomic<std::size_t> bound{0}, stack{0};
  static std::atomic<StackPool*> pool{nullptr};
  if (seen.load(std::memory_order_acquire) != generation) {
    // The frame's room at the top: a bounded stack's top is 16-aligned, so a
    // frame aligned to 16 or less takes its size rounded to 16 (make_context
    // aligns the context below it to 16); a more aligned one may need up to
    // align - 1 more.
    constexpr std::size_t frame_room = alignof(Frame) <= 16 ? sizeof(Frame) : sizeof(Frame) + alignof(Frame) - 1;
    const StackBoundUse found = lookup_stack_bound(typeid(Frame).name(), frame_room);
    bound.store(found.bound_bytes, std::memory_order_relaxed);
    stack.store(found.stack_bytes, std::memory_order_relaxed);
    pool.store(found.pool, std::memory_order_relaxed);
    seen.store(generation, std::memory_order_release);
    return found;
  }
  return {bound.load(std::memory_order_relaxed), stack.load(std::memory_order_relaxed),
          pool.load(std::memory_order_relaxed)};
#else
  return {};
#endif
}

}  // namespace detail
}  // namespace heddle
