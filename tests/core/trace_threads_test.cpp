// Tracing with several threads (labelled "threads": TSan checks the
// per-thread rings): a Loop's tasks woken from another thread; a task with
// no scheduler that another thread wakes moves there, and its events go to
// the ring of whichever thread switches it; threads recording while stop()
// writes the file. trace_test.cpp has the one-thread cases.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "heddle/core/suspend.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/trace.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sync/event.hpp"
#include "trace_checker.hpp"

namespace heddle {
namespace {

using trace_test::check_trace;
using trace_test::joined;
using trace_test::read_trace;
using trace_test::Seen;
using trace_test::temp_path;

#define SKIP_WITHOUT_TRACING() \
  if (!trace::compiled_in) GTEST_SKIP() << "heddle built with HEDDLE_WITH_TRACE=OFF"

TEST(TraceThreads, ALoopsTasksWokenAndCancelledFromAnotherThread) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-loop");
  trace::start(path);
  Event event;
  std::uint64_t waiter_id = 0, victim_id = 0;
  {
    Loop loop;
    auto waiter = loop.spawn([&] { event.wait(); }, {.name = "waiter"});
    auto victim = loop.spawn([] { Event().wait(); }, {.name = "victim"});
    waiter_id = waiter.id();
    victim_id = victim.id();
    std::thread other([&] {
      event.set();  // queued on the loop's remote queue
      victim.cancel();
    });
    other.join();
    loop.run();
    waiter.join();
    EXPECT_THROW(victim.join(), Cancelled);
  }
  trace::stop();
  const Seen seen = check_trace(read_trace(path));
  EXPECT_EQ(joined(seen.by_task.at(waiter_id)), "spawn B E:heddle::sync wait B finish");
  // The cancel is recorded on the cancelling thread, the rest on the loop's:
  // per thread, the file keeps each ring's order.
  const auto& victim = seen.by_task.at(victim_id);
  EXPECT_EQ(joined(victim), "spawn B E:heddle::sync wait B finish cancel") << "this thread's ring, then the other's";
  std::remove(path.c_str());
}

// With no scheduler a wake runs the task on the waking thread: it parks on
// this thread and finishes on the other, each switch recorded where it was
// made.
TEST(TraceThreads, ATaskWokenByAnotherThreadRunsOnItsTrack) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-move");
  trace::start(path);
  Event event;
  auto task = spawn([&] { event.wait(); }, {.name = "mover"});
  const std::uint64_t id = task.id();
  std::thread waker([&] { event.set(); });
  waker.join();
  task.join();
  trace::stop();
  const Seen seen = check_trace(read_trace(path));
  EXPECT_EQ(seen.threads_of.at(id).size(), 2u) << "its slices are on both threads' tracks";
  const std::string events = joined(seen.by_task.at(id));
  // Threads' events are in registration order in the file: this thread's
  // ring was made first (the spawn).
  EXPECT_EQ(events, "spawn B E:heddle::sync wait B finish");
  std::remove(path.c_str());
}

TEST(TraceThreads, ManyThreadsRecordWhileStopWrites) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-threads");
  trace::start(path);
  std::atomic<int> done{0};  // spawn-joins finished, over all threads
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&done] {
      for (int i = 0; i < 2000; ++i) {
        auto task = spawn([] { this_task::yield(); });  // no scheduler: a cancellation point only
        task.join();
        done.fetch_add(1, std::memory_order_release);  // its events are in its ring
      }
    });
  }
  std::thread stopper([&] {
    while (done.load(std::memory_order_acquire) < 400) std::this_thread::yield();
    trace::stop();  // while the threads still spawn: no record torn, no race
  });
  for (auto& t : threads) t.join();
  stopper.join();
  const Seen seen = check_trace(read_trace(path));
  EXPECT_GE(seen.events, 400u * 3) << "each spawn-join before the stop records three events";
  std::remove(path.c_str());
}

}  // namespace
}  // namespace heddle
