// heddle Pool benchmarks (issue 6): a fork/join tree and cross-thread
// wake-ups on a work-stealing Pool of 2 workers, beside the C++ peers of the
// same figures (Boost.Fiber's work_stealing algorithm, oneTBB's task_group
// when Debian's libtbb-dev is installed, plain threads). scripts/bench runs
// the Go and tokio peers (bench/pool/) in the same run.
//   fib_tree/heddle           fib(27) with a task per call (both children
//                             spawned, then joined): ms per fib(27)
//   wake_cross_thread/heddle  two tasks pinned to different workers
//                             ping-pong through unbuffered channels: ns per
//                             round trip
//   wake_cross_thread/heddle_unpinned  the same, placed by the Pool (which
//                             keeps them on one worker)
//   fib_tree/boost_fiber_work_stealing  a fiber per call (16 KiB stacks),
//                             2 threads sharing work through work_stealing
//   fib_tree/tbb_task_group   tbb::task_group per call, 2 threads
//   wake_cross_thread/boost_fiber  one fiber on each of two threads, over
//                             buffered_channels
//   wake_cross_thread/threads two threads, a mutex and a condition variable
#include <benchmark/benchmark.h>

#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if HEDDLE_BENCH_HAVE_TBB
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_group.h>
#endif

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

// pinned: each side pinned to its own worker (a true cross-thread wake-up
// per message); unpinned: the Pool places them (the LIFO slot then keeps
// both on one worker, as tokio and Go without LockOSThread do).
void wake_ping_pong(benchmark::State& state, bool pinned) {
  constexpr int kRounds = 100'000;
  heddle::Pool pool(2);
  double total_ns = 0;
  for (auto _ : state) {
    heddle::Channel<int> ping(0), pong(0);
    std::atomic<int> ping_worker{-1};
    const auto start = std::chrono::steady_clock::now();
    pool.run([&] {
      if (pinned) heddle::Pool::pin();
      ping_worker = heddle::Pool::current_worker();
      auto echo = heddle::spawn([&] {
        // Off the pinger's worker before pinning (the spawn ran it there).
        while (pinned && heddle::Pool::current_worker() == ping_worker.load()) {
          heddle::Pool::unpin();
          heddle::this_task::yield();
        }
        if (pinned) heddle::Pool::pin();
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
void wake_cross_thread(benchmark::State& state) { wake_ping_pong(state, true); }
void wake_same_worker(benchmark::State& state) { wake_ping_pong(state, false); }
BENCHMARK(wake_same_worker)->Name("wake_cross_thread/heddle_unpinned")->Iterations(1)->UseRealTime();
BENCHMARK(wake_cross_thread)->Name("wake_cross_thread/heddle")->Iterations(1)->UseRealTime();

// ---- peers

// Reports the median of the iterations' times (for benchmarks that can
// only run one repetition per process, the median is taken here).
template <class Run>
void report_ms(benchmark::State& state, Run&& run) {
  std::vector<double> times;
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    if (run() != kFibExpected) {
      state.SkipWithError("fib(27) gave the wrong sum");
      return;
    }
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  const std::size_t n = times.size();
  heddle::bench::report_value(state, n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2, "ms");
}

long fib_fibers(long n) {
  if (n < 2) return n;
  long a = 0, b = 0;
  // fixedsize_stack: thread-safe (a pooled allocator is not, and fibers
  // move between the two threads).
  boost::fibers::fiber left(std::allocator_arg, boost::fibers::fixedsize_stack(16 * 1024),
                            [&] { a = fib_fibers(n - 1); });
  boost::fibers::fiber right(std::allocator_arg, boost::fibers::fixedsize_stack(16 * 1024),
                             [&] { b = fib_fibers(n - 2); });
  left.join();
  right.join();
  return a + b;
}

void fib_tree_boost_fiber(benchmark::State& state) {
  // Two threads of their own both use work_stealing(2) (never the main
  // thread: a thread's scheduling algorithm cannot be changed back). The
  // first runs the benchmark; the second idles in the scheduler, stealing,
  // until it is done.
  std::atomic<bool> done{false};
  boost::fibers::barrier ready(2);
  std::thread helper([&] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(2);
    ready.wait();
    while (!done.load()) boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
  });
  std::thread runner([&] {
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(2);
    ready.wait();
    if (fib_fibers(kFibN) != kFibExpected) std::abort();
    report_ms(state, [] { return fib_fibers(kFibN); });
    done = true;
  });
  runner.join();
  helper.join();
}
// One repetition of 5 iterations (median taken in report_ms): Boost.Fiber's
// work_stealing sets itself up once per process and crashes when threads
// of a second repetition register again.
BENCHMARK(fib_tree_boost_fiber)
    ->Name("fib_tree/boost_fiber_work_stealing")
    ->Repetitions(1)
    ->Iterations(5)
    ->UseRealTime();

#if HEDDLE_BENCH_HAVE_TBB
long fib_tbb(long n) {
  if (n < 2) return n;
  long a = 0, b = 0;
  tbb::task_group group;
  group.run([&] { a = fib_tbb(n - 1); });
  group.run([&] { b = fib_tbb(n - 2); });
  group.wait();
  return a + b;
}

void fib_tree_tbb(benchmark::State& state) {
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, 2);
  if (fib_tbb(kFibN) != kFibExpected) std::abort();
  report_ms(state, [] { return fib_tbb(kFibN); });
}
BENCHMARK(fib_tree_tbb)->Name("fib_tree/tbb_task_group")->Iterations(3)->UseRealTime();
#endif

void wake_cross_thread_boost_fiber(benchmark::State& state) {
  constexpr int kRounds = 100'000;
  double total_ns = 0;
  for (auto _ : state) {
    boost::fibers::buffered_channel<int> ping(2), pong(2);
    std::thread echo([&] {
      boost::fibers::fiber([&] {
        int v;
        while (ping.pop(v) == boost::fibers::channel_op_status::success) pong.push(v);
      }).join();
    });
    const auto start = std::chrono::steady_clock::now();
    boost::fibers::fiber([&] {
      int v;
      for (int i = 0; i < kRounds; ++i) {
        ping.push(i);
        pong.pop(v);
      }
    }).join();
    total_ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    ping.close();
    echo.join();
  }
  heddle::bench::report_value(state, total_ns / static_cast<double>(state.iterations()) / kRounds, "ns");
}
BENCHMARK(wake_cross_thread_boost_fiber)->Name("wake_cross_thread/boost_fiber")->Iterations(1)->UseRealTime();

void wake_cross_thread_threads(benchmark::State& state) {
  constexpr int kRounds = 100'000;
  double total_ns = 0;
  for (auto _ : state) {
    std::mutex mutex;
    std::condition_variable changed;
    int turn = 0;  // even: the pinger's move, odd: the echo's
    std::thread echo([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return turn % 2 == 1; });
        ++turn;
        changed.notify_one();
      }
    });
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kRounds; ++i) {
      std::unique_lock lock(mutex);
      ++turn;
      changed.notify_one();
      changed.wait(lock, [&] { return turn % 2 == 0; });
    }
    total_ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    echo.join();
  }
  heddle::bench::report_value(state, total_ns / static_cast<double>(state.iterations()) / kRounds, "ns");
}
BENCHMARK(wake_cross_thread_threads)->Name("wake_cross_thread/threads")->Iterations(1)->UseRealTime();

}  // namespace
