// heddle sched benchmarks: scheduler-level switches, timer churn, and
// parking/waking a million tasks on one Event. Peers for the same figures:
// Boost.Fiber yield (peers_bench), Go and tokio (scripts/bench).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "heddle/core/trace.hpp"
#include "heddle/heddle.hpp"
#include "resident_memory.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/event.hpp"
#include "line_reporter.hpp"

namespace {

using namespace std::chrono_literals;

using heddle::support::resident_kib;

// Two tasks on one Loop yielding to each other: ns per switch, the figure
// Go's Gosched, tokio's yield_now and Boost.Fiber's yield report.
void loop_yield(benchmark::State& state) {
  heddle::Loop loop;
  std::int64_t iterations = state.max_iterations;
  bool stop = false;
  auto yielder = [&] {
    while (!stop) heddle::this_task::yield();
  };
  auto a = loop.spawn(yielder);
  auto b = loop.spawn([&] {
    for (auto _ : state) heddle::this_task::yield();
    stop = true;
  });
  (void)iterations;
  loop.run();
  a.join();
  b.join();
  heddle::bench::set_items_per_iteration(state, 2);  // each iteration: b -> a -> b
}
BENCHMARK(loop_yield)->Name("switch/heddle_loop_yield")->UseRealTime();

// The same with heddle::trace recording (core/trace.hpp): each switch
// records a suspend and a resume.
void loop_yield_traced(benchmark::State& state) {
  if (!heddle::trace::compiled_in) return state.SkipWithError("heddle built with HEDDLE_WITH_TRACE=OFF");
  heddle::trace::start("/dev/null");
  loop_yield(state);
  heddle::trace::stop();
}
BENCHMARK(loop_yield_traced)->Name("switch/heddle_loop_yield_trace_on")->UseRealTime();

// Arm a timer and cancel it before it fires, on a Loop: Go's
// time.AfterFunc + Stop, tokio's sleep + drop.
void timer_churn(benchmark::State& state) {
  heddle::Loop loop;
  auto task = loop.spawn([&] {
    heddle::Timer timer;
    int fired = 0;
    auto callback = [&] { ++fired; };
    const auto far = heddle::Clock::now() + 1h;
    for (auto _ : state) {
      timer.arm(far, callback);
      timer.cancel();
    }
    benchmark::DoNotOptimize(fired);
  });
  loop.run();
  task.join();
}
BENCHMARK(timer_churn)->Name("timer_churn/heddle")->UseRealTime();

// The same with a million timers armed at once (distinct deadlines), then
// all cancelled: the heap at depth.
void timer_churn_1m(benchmark::State& state) {
  constexpr int kTimers = 1'000'000;
  heddle::Loop loop;  // before the timers: a Timer must not outlive the loop it was armed on
  std::vector<heddle::Timer> timers(kTimers);
  for (auto _ : state) {
    auto task = loop.spawn([&] {
      const auto base = heddle::Clock::now() + 1h;
      int fired = 0;
      auto callback = [&] { ++fired; };
      for (int i = 0; i < kTimers; ++i) timers[i].arm(base + std::chrono::microseconds(std::int64_t{i} * 7919 % kTimers), callback);
      for (int i = 0; i < kTimers; ++i) timers[i].cancel();
    });
    loop.run();
    task.join();
  }
  heddle::bench::set_items_per_iteration(state, kTimers);
}
BENCHMARK(timer_churn_1m)->Name("timer_churn/heddle_1m_armed")->UseRealTime()->Iterations(1);

// Park a million tasks on one Event and wake them all: ns per task (spawn,
// park, wake, finish) and resident memory per parked task.
constexpr int kParked = 1'000'000;

void park_wake_1m(benchmark::State& state) {
  heddle::StackPool pool;  // the default: 64 KiB stacks
  for (auto _ : state) {
    heddle::Loop loop;
    heddle::Event event;
    heddle::TaskGroup* group_ptr = nullptr;
    auto owner = loop.spawn([&] {
      heddle::TaskGroup group(&pool);
      group_ptr = &group;
      for (int i = 0; i < kParked; ++i) group.spawn([&] { event.wait(); });
      event.set();
      group.wait();
    });
    loop.run();
    owner.join();
    (void)group_ptr;
  }
  heddle::bench::set_items_per_iteration(state, kParked);
}
BENCHMARK(park_wake_1m)->Name("park_wake_1m/heddle")->UseRealTime()->Iterations(1)->Repetitions(3);

void memory_per_parked_task(benchmark::State& state) {
  for (auto _ : state) {
    heddle::StackPool pool;
    heddle::Loop loop;
    heddle::Event event;
    const long before = resident_kib();
    long during = before;
    auto owner = loop.spawn([&] {
      heddle::TaskGroup group(&pool);
      for (int i = 0; i < kParked; ++i) group.spawn([&] { event.wait(); });
      during = resident_kib();
      event.set();
      group.wait();
    });
    loop.run();
    owner.join();
    heddle::bench::report_value(state, (during - before) * 1024.0 / kParked, "bytes");
  }
}
BENCHMARK(memory_per_parked_task)->Name("park_wake_1m_memory/heddle")->Iterations(1)->Repetitions(1);

}  // namespace
