// heddle Pool benchmarks (issue 6): a fork/join tree and cross-thread
// wake-ups on a work-stealing Pool of 2 workers. The peers for the same
// figures (Go, tokio, Boost.Fiber work_stealing, oneTBB, threads) are run by
// scripts/bench in the same run.
//   fib_tree/heddle           fib(27) with a task per call (both children
//                             spawned, then joined): ms per fib(27)
//   wake_cross_thread/heddle  two tasks pinned to different workers
//                             ping-pong through unbuffered channels: ns per
//                             round trip
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "heddle/core/task.hpp"
#include "heddle/sched/pool.hpp"
#include "heddle/sync/channel.hpp"
#include "line_reporter.hpp"

namespace {

constexpr int kFibN = 27;
constexpr long kFibExpected = 196418;

long fib_tasks(long n) {
  if (n < 2) return n;
  auto a = heddle::spawn([n] { return fib_tasks(n - 1); });
  auto b = heddle::spawn([n] { return fib_tasks(n - 2); });
  return a.join() + b.join();
}

void fib_tree(benchmark::State& state) {
  heddle::Pool pool(2);
  if (pool.run([] { return fib_tasks(kFibN); }) != kFibExpected) std::abort();  // warm-up and check
  double total_ms = 0;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const long result = pool.run([] { return fib_tasks(kFibN); });
    total_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (result != kFibExpected) {
      state.SkipWithError("fib(27) gave the wrong sum");
      return;
    }
  }
  heddle::bench::report_value(state, total_ms / static_cast<double>(state.iterations()), "ms");
}
BENCHMARK(fib_tree)->Name("fib_tree/heddle")->Iterations(3)->UseRealTime();

void wake_cross_thread(benchmark::State& state) {
  constexpr int kRounds = 100'000;
  heddle::Pool pool(2);
  double total_ns = 0;
  for (auto _ : state) {
    heddle::Channel<int> ping(0), pong(0);
    std::atomic<int> ping_worker{-1};
    const auto start = std::chrono::steady_clock::now();
    pool.run([&] {
      heddle::Pool::pin();
      ping_worker = heddle::Pool::current_worker();
      auto echo = heddle::spawn([&] {
        // Off the pinger's worker before pinning (the spawn ran it there).
        while (heddle::Pool::current_worker() == ping_worker.load()) {
          heddle::Pool::unpin();
          heddle::this_task::yield();
        }
        heddle::Pool::pin();
        while (auto v = ping.receive()) (void)pong.send(*v);
      });
      for (int i = 0; i < kRounds; ++i) {
        (void)ping.send(i);
        (void)pong.receive();
      }
      ping.close();
      echo.join();
    });
    total_ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  }
  heddle::bench::report_value(state, total_ns / static_cast<double>(state.iterations()) / kRounds, "ns");
}
BENCHMARK(wake_cross_thread)->Name("wake_cross_thread/heddle")->Iterations(1)->UseRealTime();

}  // namespace
