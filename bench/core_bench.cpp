// heddle core benchmarks: switch, spawn_join, spawn_join_nested, suspend_resume.
// Peers for the same figures are in peers_bench.cpp; scripts/bench runs both.
#include <benchmark/benchmark.h>

#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/heddle.hpp"
#include "heddle/core/trace.hpp"
#include "line_reporter.hpp"

namespace {

// ---- switch: the raw context switch, A -> B -> A ping-pong, ns per switch.

void* main_sp = nullptr;
void* partner_sp = nullptr;

[[noreturn]] void partner_entry(void*, void*) {
  for (;;) heddle::arch::switch_context(&partner_sp, main_sp, nullptr);
}

void switch_heddle(benchmark::State& state) {
  std::vector<std::byte> stack(64 * 1024);
  partner_sp = heddle::arch::make_context(stack.data() + stack.size(), &partner_entry, nullptr);
  heddle::arch::switch_context(&main_sp, partner_sp, nullptr);  // first entry
  for (auto _ : state) heddle::arch::switch_context(&main_sp, partner_sp, nullptr);
  heddle::bench::set_items_per_iteration(state, 2);
  // The partner is parked forever inside its loop; its stack is just dropped.
}
BENCHMARK(switch_heddle)->Name("switch/heddle")->UseRealTime();

// ---- spawn_join: spawn an empty task from a warm pool and join it.

void spawn_join_heddle(benchmark::State& state) {
  heddle::StackPool pool;
  heddle::SpawnOptions options{.pool = &pool};
  heddle::spawn([] {}, options).join();  // warm the pool
  for (auto _ : state) heddle::spawn([] {}, options).join();
}
BENCHMARK(spawn_join_heddle)->Name("spawn_join/heddle")->UseRealTime();

// The same on sub-page slab stacks: a bounded StackPool of 1 KiB stacks,
// carved 64 bytes apart, many to a page, canary-checked (what spawn uses for
// a callable whose proven bound is that small).
void spawn_join_heddle_subpage(benchmark::State& state) {
  heddle::spawn([] {}).join();  // the thread's first task takes the cold paths, on a default stack
  heddle::StackPool pool({.stack_bytes = 1024, .bounded = true});
  heddle::SpawnOptions options{.pool = &pool};
  heddle::spawn([] {}, options).join();  // warm the pool
  for (auto _ : state) heddle::spawn([] {}, options).join();
}
BENCHMARK(spawn_join_heddle_subpage)->Name("spawn_join/heddle_subpage_1k")->UseRealTime();

void spawn_join_heddle_batch(benchmark::State& state) {
  constexpr int kBatch = 1000;
  heddle::StackPool pool;
  heddle::SpawnOptions options{.pool = &pool};
  std::vector<heddle::Task<void>> tasks;
  tasks.reserve(kBatch);
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) tasks.push_back(heddle::spawn([] {}, options));
    for (auto& t : tasks) t.join();
    tasks.clear();
  }
  heddle::bench::set_items_per_iteration(state, kBatch);
}
BENCHMARK(spawn_join_heddle_batch)->Name("spawn_join/heddle_batch1000")->UseRealTime();

// ---- spawn_join_nested: the same on stack carved from the caller's own
// stack (no pool at all), beside the pooled figure measured the same way.

void spawn_join_nested(benchmark::State& state) {
  alignas(64) std::byte region[16 * 1024];
  heddle::SpawnOptions options;
  options.stack = heddle::stack_from_span(region, heddle::StackKind::nested);
  for (auto _ : state) heddle::spawn([] {}, options).join();
}
BENCHMARK(spawn_join_nested)->Name("spawn_join_nested/heddle_nested")->UseRealTime();

void spawn_join_pooled(benchmark::State& state) {
  heddle::StackPool pool;
  heddle::SpawnOptions options{.pool = &pool};
  heddle::spawn([] {}, options).join();
  for (auto _ : state) heddle::spawn([] {}, options).join();
}
BENCHMARK(spawn_join_pooled)->Name("spawn_join_nested/heddle_pooled")->UseRealTime();

// join() of two empty arms on nested stacks: structured fan-out, no pool.
void join_two_nested(benchmark::State& state) {
  for (auto _ : state) {
    auto result = heddle::join(heddle::nested(8 * 1024), [] { return 1; }, [] { return 2; });
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(join_two_nested)->Name("join2/heddle_nested")->UseRealTime();

// ---- suspend_resume: park a task through suspend() and resume it through
// its Resumer, the full leaf protocol; ns per park+resume round trip.

void suspend_resume_heddle(benchmark::State& state) {
  heddle::Resumer parked;
  bool stop = false;
  auto task = heddle::spawn([&] {
    while (!stop) heddle::suspend([&](const heddle::Resumer& r) { parked = r; });
  });
  for (auto _ : state) parked.resume();
  stop = true;
  parked.resume();
  task.join();
}
BENCHMARK(suspend_resume_heddle)->Name("suspend_resume/heddle")->UseRealTime();

// ---- tracing: the same figures with heddle::trace on (recording into the
// rings; the file goes to /dev/null). The figures above are the cost when
// off: one load and a not-taken branch per event site (nothing at all in a
// build with HEDDLE_WITH_TRACE=OFF). switch/heddle_loop_yield_trace_on is
// in sched_bench.cpp, beside its figure.

template <void (*Figure)(benchmark::State&)>
void with_tracing(benchmark::State& state) {
  if (!heddle::trace::compiled_in) {
    state.SkipWithError("heddle built with HEDDLE_WITH_TRACE=OFF");
    return;
  }
  heddle::trace::start("/dev/null");
  Figure(state);
  heddle::trace::stop();
}
BENCHMARK(with_tracing<spawn_join_heddle>)->Name("spawn_join/heddle_trace_on")->UseRealTime();
BENCHMARK(with_tracing<suspend_resume_heddle>)->Name("suspend_resume/heddle_trace_on")->UseRealTime();

}  // namespace
