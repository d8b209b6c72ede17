// memory_per_parked_task: N tasks (a million by default), each parked on an
// Event at the end of a call chain three functions deep; resident memory
// per parked task. One variant per process, so that nothing a previous
// measurement made (control blocks are never freed) is counted as free:
//
//   memory_per_task VARIANT [N]     prints "memory_per_parked_task VARIANT <bytes> bytes"
//
//   heddle_default          the default StackPool (64 KiB stacks, guard pages),
//                           named (spawn would otherwise take the proven bound)
//   heddle_pool_16k_canary  a StackPool of 16 KiB canary stacks (no guard page:
//                           they are carved from shared mappings)
//   heddle_span_2k          2 KiB caller-provided stacks (heddle's minimum),
//                           carved from one mapping: what sub-page placement
//                           can reach once a bound makes it safe
//   heddle_learned          StackPolicy::learned: the first tasks are measured on
//                           default stacks, the rest get the size class learned
//                           (the chain is entered through a function pointer,
//                           so that no proven bound wins over learning)
//   heddle_bounded          the stack tools/heddle-stack proved for the task's
//                           callable (this program is built with
//                           heddle_stack_bounds(); with clang there is no bound
//                           and the variant says so)
//   heddle_slab_1k          1 KiB sub-page slab stacks from a bounded StackPool,
//                           sized BY HAND from the chain's measured use (608
//                           bytes): what a proven bound of that size would give
//   boost_fiber_16k         Boost.Fiber with 16 KiB pooled_fixedsize_stack stacks,
//                           parked on a fibers::condition_variable
// Go's and tokio's figures come from bench/peers ("parkchain"); scripts/bench
// prints them beside these.
#include <sys/mman.h>

#include <boost/fiber/all.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "resident_memory.hpp"

namespace {

using heddle::support::resident_kib;

// The call chain every task (and fibre) parks at the end of.
template <class Wait>
[[gnu::noinline]] int chain_c(Wait& wait) {
  volatile char locals[64];
  locals[0] = 1;
  wait();
  return locals[0];
}
template <class Wait>
[[gnu::noinline]] int chain_b(Wait& wait) {
  return chain_c(wait) + 1;
}
template <class Wait>
[[gnu::noinline]] int chain_a(Wait& wait) {
  return chain_b(wait) + 1;
}

// The heddle task: named types (not lambdas), so that heddle_bounded can
// ask for the bound of exactly the callable type it spawns.
struct EventWait {
  heddle::Event* event;
  void operator()() const { event->wait(); }
};
struct ChainTask {
  EventWait* wait;
  int operator()() const { return chain_a(*wait); }
};
// The same chain entered through a function pointer, which the tool cannot
// bound: the learned variant's tasks (a proven bound would win over learning).
struct LearnedChainTask {
  EventWait* wait;
  int operator()() const {
    int (*volatile chain)(EventWait&) = &chain_a<EventWait>;
    return chain(*wait);
  }
};

// Spawns n tasks with `options_for(i)` on a Loop, each parking at the end of
// the chain; returns resident bytes per parked task.
template <class Chain = ChainTask, class OptionsFor>
double heddle_parked(std::size_t n, OptionsFor options_for) {
  heddle::Loop loop;
  heddle::Event event;
  EventWait wait{&event};
  const long before = resident_kib();
  long during = before;
  auto owner = loop.spawn([&] {
    // The handles' vector is made (and its pages touched) before the
    // measurement starts: it is the benchmark's, not the tasks' memory.
    std::vector<heddle::Task<int>> tasks(n);
    const long handles = resident_kib() - before;
    for (std::size_t i = 0; i < n; ++i) tasks[i] = heddle::spawn(Chain{&wait}, options_for(i));
    during = resident_kib() - handles;
    event.set();
    for (auto& task : tasks) {
      if (task.join() != 3) std::abort();
    }
  });
  loop.run();
  owner.join();
  return static_cast<double>(during - before) * 1024.0 / static_cast<double>(n);
}

// The chain's task with the default options: spawn takes its proven bound,
// if tools/heddle-stack found one. Says what it got on stderr; negative when
// there is no bound to measure.
double heddle_parked_bounded(std::size_t n) {
  const heddle::StackBoundUse use = heddle::stack_bound_for<ChainTask>();
  if (use.bound_bytes == 0) {
    std::fprintf(stderr, "memory_per_task: no proven bound for the chain's task (build with GCC: heddle_stack_bounds)\n");
    return -1;
  }
  std::fprintf(stderr, "memory_per_task: heddle_bounded: bound %zu bytes, stack %zu bytes\n", use.bound_bytes,
               use.stack_bytes);
  return heddle_parked(n, [](std::size_t) { return heddle::SpawnOptions{}; });
}

double boost_fiber_parked(std::size_t n) {
  boost::fibers::pooled_fixedsize_stack stacks(16 * 1024);
  boost::fibers::mutex mutex;
  boost::fibers::condition_variable released;
  bool go = false;
  auto wait = [&] {
    std::unique_lock lock(mutex);
    released.wait(lock, [&] { return go; });
  };
  std::vector<boost::fibers::fiber> fibers(n);  // made first: not the fibres' memory
  const long before = resident_kib();
  for (std::size_t i = 0; i < n; ++i) fibers[i] = boost::fibers::fiber(std::allocator_arg, stacks, [&wait] { chain_a(wait); });
  boost::this_fiber::yield();  // every fibre runs to its wait
  const long during = resident_kib();
  {
    std::unique_lock lock(mutex);
    go = true;
  }
  released.notify_all();
  for (auto& fiber : fibers) fiber.join();
  return static_cast<double>(during - before) * 1024.0 / static_cast<double>(n);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string variant = argc > 1 ? argv[1] : "";
  const std::size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1'000'000;
  if (n == 0) {
    std::fprintf(stderr, "memory_per_task: N must be a positive number\n");
    return 2;
  }
  double bytes = 0;
  if (variant == "heddle_default") {
    // Named: with no pool named, spawn would take the chain's proven bound.
    bytes = heddle_parked(n, [](std::size_t) { return heddle::SpawnOptions{.pool = &heddle::StackPool::default_pool()}; });
  } else if (variant == "heddle_pool_16k_canary") {
    heddle::StackPool pool({.stack_bytes = 16 * 1024, .guard = heddle::StackPool::Guard::never});
    bytes = heddle_parked(n, [&pool](std::size_t) { return heddle::SpawnOptions{.pool = &pool}; });
  } else if (variant == "heddle_span_2k") {
    constexpr std::size_t kStack = 2048;
    void* region = ::mmap(nullptr, n * kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) {
      std::perror("memory_per_task: mmap");
      return 1;
    }
    auto* base = static_cast<std::byte*>(region);
    bytes = heddle_parked(n, [base](std::size_t i) {
      return heddle::SpawnOptions{.stack = heddle::stack_from_span(std::span(base + i * kStack, kStack))};
    });
    ::munmap(region, n * kStack);
  } else if (variant == "heddle_learned") {
    bytes = heddle_parked<LearnedChainTask>(
        n, [](std::size_t) { return heddle::SpawnOptions{.stack_policy = heddle::StackPolicy::learned}; });
  } else if (variant == "heddle_bounded") {
    bytes = heddle_parked_bounded(n);
    if (bytes < 0) return 1;
  } else if (variant == "heddle_slab_1k") {
    heddle::StackPool pool({.stack_bytes = 1024, .bounded = true});
    bytes = heddle_parked(n, [&pool](std::size_t) { return heddle::SpawnOptions{.pool = &pool}; });
  } else if (variant == "boost_fiber_16k") {
    bytes = boost_fiber_parked(n);
  } else {
    std::fprintf(stderr,
                 "usage: memory_per_task {heddle_default|heddle_pool_16k_canary|heddle_span_2k|heddle_learned|"
                 "heddle_bounded|heddle_slab_1k|boost_fiber_16k} [N]\n");
    return 2;
  }
  std::printf("memory_per_parked_task %s %.0f bytes\n", variant.c_str(), bytes);
  return 0;
}
