// heddle sched: Cluster (semantics in include/heddle/sched/cluster.hpp).
#include "heddle/sched/cluster.hpp"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace heddle {

namespace {
constexpr std::size_t kMaxThreads = 4096;

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    throw std::system_error(errno, std::generic_category(), "heddle::Cluster: sched_getaffinity");
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}
}  // namespace

Cluster::Cluster(Options options) {
  const std::vector<int> cpus = allowed_cpus();
  std::size_t threads = options.threads == 0 ? cpus.size() : options.threads;
  if (threads == 0) threads = 1;
  if (threads > kMaxThreads) {
    throw std::invalid_argument("heddle::Cluster: " + std::to_string(threads) + " threads requested; at most " +
                                std::to_string(kMaxThreads));
  }
  if (options.pin) {
    if (threads > cpus.size()) {
      throw std::invalid_argument("heddle::Cluster: " + std::to_string(threads) + " pinned threads requested but " +
                                  "this process may run on " + std::to_string(cpus.size()) +
                                  " CPUs (pass pin = false to run more threads than CPUs)");
    }
    cpus_.assign(cpus.begin(), cpus.begin() + static_cast<std::ptrdiff_t>(threads));
  }
  loops_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) loops_.push_back(std::make_unique<Loop>());
}

Cluster::~Cluster() = default;  // each ~Loop cancels and drains what is left on it

void Cluster::fail(std::exception_ptr error) noexcept {
  {
    std::lock_guard lock(mutex_);
    if (!first_error_) first_error_ = error;
  }
  stop();
}

void Cluster::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  for (auto& loop : loops_) loop->stop();  // a stop before a loop runs is kept for its run()
}

void Cluster::run_loop(std::size_t index, const std::function<void(Loop&, std::size_t)>& f) {
  if (!cpus_.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpus_[index], &set);
    if (const int error = pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
      fail(std::make_exception_ptr(std::system_error(
          error, std::generic_category(), "heddle::Cluster: pinning loop " + std::to_string(index) + " to CPU " +
                                              std::to_string(cpus_[index]))));
      return;
    }
  }
  const std::string name = "heddle-loop-" + std::to_string(index);
  pthread_setname_np(pthread_self(), name.c_str());
  Loop& loop = *loops_[index];
  auto root = loop.spawn([&] {
    try {
      f(loop, index);
    } catch (const Cancelled&) {
      throw;
    } catch (...) {
      fail(std::current_exception());
      throw;
    }
  });
  try {
    loop.run();
    bool stopping;
    {
      std::lock_guard lock(mutex_);
      stopping = stopping_;
    }
    if (stopping) {
      // Stopped: unwind everything still alive on this loop, here.
      loop.cancel_all();
      loop.run();
    }
  } catch (...) {
    fail(std::current_exception());  // the loop itself failed (its reactor, say)
  }
  if (!root.finished()) {
    loop.cancel_all();
    try {
      loop.run();
    } catch (...) {
    }
  }
  if (!root.finished()) {
    root.detach();  // cannot unwind here: ~Loop tries again when the cluster goes
    return;
  }
  try {
    root.join();
  } catch (...) {
    // Reported through fail() already, or a cancellation from stop().
  }
}

void Cluster::run(std::function<void(Loop&, std::size_t)> f) {
  {
    std::lock_guard lock(mutex_);
    if (running_) throw std::logic_error("heddle::Cluster::run: the cluster is already running");
    running_ = true;  // stopping_ stays: a stop() before run() makes it return at once
    first_error_ = nullptr;
  }
  std::vector<std::thread> threads;
  threads.reserve(loops_.size());
  try {
    for (std::size_t i = 0; i < loops_.size(); ++i) threads.emplace_back([this, i, &f] { run_loop(i, f); });
  } catch (...) {
    fail(std::current_exception());  // could not start a thread: stop the others
  }
  for (auto& thread : threads) thread.join();
  std::exception_ptr error;
  {
    std::lock_guard lock(mutex_);
    running_ = false;
    stopping_ = false;  // the cluster may run again
    error = first_error_;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace heddle
