// heddle sync benchmarks, each beside its peers measured in the same run:
//   mutex_uncontended/heddle        heddle::Mutex lock + unlock on a thread, ns per pair
//   mutex_uncontended/heddle_task   the same from inside a task
//   mutex_uncontended/std_mutex     std::mutex lock + unlock
//   mutex_uncontended/boost_fiber   boost::fibers::mutex lock + unlock (main fibre)
//   mutex_contended/heddle_loop_8_tasks    8 tasks on one Loop share a heddle::Mutex
//   mutex_contended/boost_fiber_8_fibers   8 fibres on one thread share a boost::fibers::mutex
//   mutex_contended/std_mutex_2_threads    2 threads share a std::mutex
//     (ns per lock + unlock pair, over all contenders; shapes below)
//
// Every figure is measured in a multi-threaded process (a thread is started
// and joined before main): while a process has only ever had one thread,
// glibc's pthread_mutex_lock/unlock skip their atomic instructions (about
// 3 ns a pair instead of 15), a mode no program that needs a mutex runs in.
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>
#include <mutex>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sync/mutex.hpp"
#include "line_reporter.hpp"

namespace {

[[maybe_unused]] const bool multi_threaded = [] {
  std::thread([] {}).join();
  return true;
}();

// ---- mutex_uncontended: one lock + unlock pair with nobody else around.

template <class Mutex>
void lock_unlock_loop(benchmark::State& state, Mutex& mutex) {
  for (auto _ : state) {
    mutex.lock();
    benchmark::ClobberMemory();  // the critical section: keep it ordered
    mutex.unlock();
  }
}

void mutex_uncontended_heddle(benchmark::State& state) {
  heddle::Mutex mutex;
  lock_unlock_loop(state, mutex);
}
BENCHMARK(mutex_uncontended_heddle)->Name("mutex_uncontended/heddle")->UseRealTime();

void mutex_uncontended_heddle_task(benchmark::State& state) {
  heddle::Mutex mutex;
  heddle::spawn([&] { lock_unlock_loop(state, mutex); }).join();
}
BENCHMARK(mutex_uncontended_heddle_task)->Name("mutex_uncontended/heddle_task")->UseRealTime();

void mutex_uncontended_std_mutex(benchmark::State& state) {
  std::mutex mutex;
  lock_unlock_loop(state, mutex);
}
BENCHMARK(mutex_uncontended_std_mutex)->Name("mutex_uncontended/std_mutex")->UseRealTime();

void mutex_uncontended_boost_fiber(benchmark::State& state) {
  boost::fibers::mutex mutex;
  lock_unlock_loop(state, mutex);
}
BENCHMARK(mutex_uncontended_boost_fiber)->Name("mutex_uncontended/boost_fiber")->UseRealTime();

// ---- mutex_contended: one mutex, many lockers, the same total work each
// iteration: kContendedPairs lock + unlock pairs around a tiny critical
// section (one increment). The figure is wall-clock ns per pair, overall.
//
//   heddle_loop_8_tasks   8 tasks on one heddle::Loop, kContendedPairs / 8 pairs
//                         each. Every kYieldEvery-th pair the holder yields
//                         inside the critical section, so the others run and
//                         queue on the mutex (on one thread, with no yield,
//                         each task would run all its pairs alone). heddle's
//                         unlock hands the mutex to the first waiter (FIFO),
//                         and the unlocker's next lock queues behind the
//                         others, so from the first yield on every pair is
//                         contended: a park, a hand-off and a switch per pair.
//   boost_fiber_8_fibers  the same shape with 8 fibres on this thread and
//                         boost::fibers::mutex. Its unlock frees the mutex and
//                         makes one waiter ready, so the unlocker relocks at
//                         once (barging) and most pairs take the uncontended
//                         path; the woken waiter finds it taken and waits again.
//   std_mutex_2_threads   2 threads on a std::mutex, kContendedPairs / 2 pairs
//                         each, no yield (the threads run in parallel). The
//                         iteration includes starting and joining the two
//                         threads (tens of µs, about 1% of it).
// Each iteration also checks the counter, so a lost update would stop the run.
constexpr int kContenders = 8;
constexpr long kContendedPairs = 80'000;
constexpr long kYieldEvery = 16;

template <class Mutex, class Yield>
void contend(Mutex& mutex, long& counter, long pairs, Yield yield) {
  for (long i = 0; i < pairs; ++i) {
    mutex.lock();
    ++counter;
    benchmark::ClobberMemory();
    if (i % kYieldEvery == 0) yield();
    mutex.unlock();
  }
}

bool check_counter(benchmark::State& state, long counter, long expected) {
  if (counter == expected) return true;
  state.SkipWithError("mutex_contended: the counter lost updates");
  return false;
}

void mutex_contended_heddle_loop(benchmark::State& state) {
  heddle::Mutex mutex;
  for (auto _ : state) {
    long counter = 0;
    {
      heddle::Loop loop;
      std::vector<heddle::Task<void>> tasks;
      tasks.reserve(kContenders);
      for (int t = 0; t < kContenders; ++t) {
        tasks.push_back(loop.spawn(
            [&] { contend(mutex, counter, kContendedPairs / kContenders, [] { heddle::this_task::yield(); }); }));
      }
      loop.run();
      for (auto& task : tasks) task.join();
    }
    if (!check_counter(state, counter, kContendedPairs)) break;
  }
  heddle::bench::set_items_per_iteration(state, kContendedPairs);
}
BENCHMARK(mutex_contended_heddle_loop)->Name("mutex_contended/heddle_loop_8_tasks")->UseRealTime();

void mutex_contended_boost_fiber(benchmark::State& state) {
  boost::fibers::mutex mutex;
  for (auto _ : state) {
    long counter = 0;
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(kContenders);
    for (int t = 0; t < kContenders; ++t) {
      fibers.emplace_back(
          [&] { contend(mutex, counter, kContendedPairs / kContenders, [] { boost::this_fiber::yield(); }); });
    }
    for (auto& fiber : fibers) fiber.join();
    if (!check_counter(state, counter, kContendedPairs)) break;
  }
  heddle::bench::set_items_per_iteration(state, kContendedPairs);
}
BENCHMARK(mutex_contended_boost_fiber)->Name("mutex_contended/boost_fiber_8_fibers")->UseRealTime();

void mutex_contended_std_mutex(benchmark::State& state) {
  std::mutex mutex;
  for (auto _ : state) {
    long counter = 0;
    std::thread a([&] { contend(mutex, counter, kContendedPairs / 2, [] {}); });
    std::thread b([&] { contend(mutex, counter, kContendedPairs / 2, [] {}); });
    a.join();
    b.join();
    if (!check_counter(state, counter, kContendedPairs)) break;
  }
  heddle::bench::set_items_per_iteration(state, kContendedPairs);
}
BENCHMARK(mutex_contended_std_mutex)->Name("mutex_contended/std_mutex_2_threads")->UseRealTime();

}  // namespace
