// heddle sched: Cluster, one Loop per core (thread-per-core).
//
// Owns: N Loops and their threads, each thread pinned to its own CPU. A
// Cluster shares nothing on the hot path: every loop has its own run queue,
// timers and (on its first I/O) its own reactor; tasks stay on the loop
// that spawned them. Work reaches another core only when the program sends
// it: spawn on cluster.loop(i) from anywhere (it starts on that loop's
// thread), or hand values over a heddle::Channel, which works across
// threads. A server binds one listener per loop on the same port with
// SO_REUSEPORT (io::ListenOptions::reuse_port) and the kernel spreads the
// connections.
//
// When to use which: a Loop for one thread; a Cluster when the work splits
// by connection or by key and should never move (the lowest latency, no
// stealing, no locks); a Pool (work stealing) when the work is uneven or
// forks and joins and idle cores should help.
//
//   heddle::Cluster cluster({.threads = 4});
//   cluster.run([](heddle::Loop& loop, std::size_t index) {
//     auto listener = io::TcpListener::bind(address, {.reuse_port = true});
//     server.serve(listener);
//   });
//
// run() starts every loop with f as its first task and returns when every
// loop's run() has returned (a loop returns, as Loop::run does, once none
// of its tasks is left: keep one alive while other cores may still spawn
// onto it). The first exception thrown by any loop's f
// stops every loop (their tasks are cancelled and unwind) and is rethrown
// by run(). stop() (from any thread) stops every loop likewise.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "heddle/sched/loop.hpp"

namespace heddle {

class Cluster {
 public:
  struct Options {
    std::size_t threads = 0;  // 0: one per CPU this process may run on (its affinity mask)
    bool pin = true;          // pin loop i's thread to the i-th CPU of the mask
  };

  // Throws std::invalid_argument when pinning is asked for more threads
  // than there are CPUs to pin them to, or for more than 4096 threads.
  explicit Cluster(Options options);
  Cluster() : Cluster(Options{}) {}
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Runs f(loop, index) as the first task of every loop, each loop on its
  // own thread, and returns when all have finished. Rethrows the first
  // exception any f threw. Throws std::logic_error if already running.
  void run(std::function<void(Loop&, std::size_t)> f);
  // Stops every loop: their tasks are cancelled and unwind, then run()
  // returns. Callable from any thread, also from the cluster's own tasks;
  // before run(), it makes run() return at once.
  void stop() noexcept;

  std::size_t size() const noexcept { return loops_.size(); }
  Loop& loop(std::size_t index) { return *loops_.at(index); }
  // The CPU loop `index` is pinned to, or -1 when not pinned.
  int cpu(std::size_t index) const { return cpus_.empty() ? -1 : cpus_.at(index); }

 private:
  void run_loop(std::size_t index, const std::function<void(Loop&, std::size_t)>& f);
  void fail(std::exception_ptr error) noexcept;

  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<int> cpus_;
  std::mutex mutex_;
  std::exception_ptr first_error_;
  bool running_ = false;
  bool stopping_ = false;
};

}  // namespace heddle
