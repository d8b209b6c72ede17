// heddle sync benchmarks, each beside its peers measured in the same run:
//   mutex_uncontended/heddle        heddle::Mutex lock + unlock on a thread, ns per pair
//   mutex_uncontended/heddle_task   the same from inside a task
//   mutex_uncontended/std_mutex     std::mutex lock + unlock
//   mutex_uncontended/boost_fiber   boost::fibers::mutex lock + unlock (main fibre)
//
// Every figure is measured in a multi-threaded process (a thread is started
// and joined before main): while a process has only ever had one thread,
// glibc's pthread_mutex_lock/unlock skip their atomic instructions (about
// 3 ns a pair instead of 15), a mode no program that needs a mutex runs in.
#include <benchmark/benchmark.h>

#include <boost/fiber/all.hpp>
#include <mutex>
#include <thread>

#include "heddle/heddle.hpp"
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

}  // namespace
