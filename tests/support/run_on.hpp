// heddle tests: run one scenario as a task under each kind of scheduler.
//
// The sync primitives must behave the same whatever runs their tasks; only
// *when* and *where* a woken task runs differs (core/scheduler.hpp):
//   Where::no_scheduler  a wake runs the woken task inline, on the waker's
//                        thread, before the wake returns;
//   Where::loop          a wake queues the task on its heddle::Loop, which
//                        runs it later on the loop's thread (here: the
//                        test's), in the order the wakes came;
//   Where::sim_loop      a heddle::SimLoop on the test's thread: queued too,
//                        but run in a seeded random order, on virtual time
//                        (HEDDLE_SIM_SEED picks the seed; default 1);
//   Where::pool_N        a heddle::Pool of N workers: queued, run on the
//                        workers (a woken task usually next, from the
//                        waker's LIFO slot); from 2 workers the scenario's
//                        tasks run in parallel.
// A parameterized test runs its body with run_in_task(GetParam(), body) and
// asserts what must hold everywhere; where the difference itself is the
// point it asserts it under a condition: wakes_inline(where),
// wakes_in_order(where), in_parallel(where).
//
// The pools start threads, so a test program runs either the test-thread
// kinds or the pools: a source compiled with HEDDLE_TEST_ON_POOLS defined
// (its program labelled "threads", so that TSan runs it too) instantiates
// the pools, otherwise the rest:
//
//   class MyTest : public ::testing::TestWithParam<heddle::test::Where> {};
//   TEST_P(MyTest, Something) {
//     heddle::test::run_in_task(GetParam(), [&] { ... });
//   }
//   HEDDLE_TEST_EVERYWHERE(MyTest);
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/pool.hpp"
#include "heddle/sched/sim_loop.hpp"
#include "leak_check.hpp"

namespace heddle::test {

enum class Where { no_scheduler, loop, sim_loop, pool_1, pool_2, pool_8 };

// Everything runs on the test's thread, one task at a time.
inline constexpr Where kOnTheTestThread[] = {Where::no_scheduler, Where::loop, Where::sim_loop};
// Tasks run on a Pool's worker threads.
inline constexpr Where kOnPools[] = {Where::pool_1, Where::pool_2, Where::pool_8};

#ifdef HEDDLE_TEST_ON_POOLS
inline constexpr auto& kWhereThisProgramRuns = kOnPools;
#else
inline constexpr auto& kWhereThisProgramRuns = kOnTheTestThread;
#endif

inline const char* name_of(Where where) noexcept {
  switch (where) {
    case Where::no_scheduler: return "no_scheduler";
    case Where::loop: return "loop";
    case Where::sim_loop: return "sim_loop";
    case Where::pool_1: return "pool_1";
    case Where::pool_2: return "pool_2";
    case Where::pool_8: return "pool_8";
  }
  return "unknown";
}

// A wake runs the woken task before the wake returns.
inline bool wakes_inline(Where where) noexcept { return where == Where::no_scheduler; }
// Woken tasks run in the order they were woken (inline, or a Loop's FIFO).
inline bool wakes_in_order(Where where) noexcept { return where == Where::no_scheduler || where == Where::loop; }
// The scenario's tasks may run at the same time, on different threads.
inline bool in_parallel(Where where) noexcept { return where == Where::pool_2 || where == Where::pool_8; }
// The body runs on the test's thread.
inline bool on_the_test_thread(Where where) noexcept {
  return where == Where::no_scheduler || where == Where::loop || where == Where::sim_loop;
}

// The scheduler running the caller's task, as an address, or null.
inline const void* current_scheduler() noexcept {
  if (const void* loop = heddle::Loop::current()) return loop;
  if (const void* sim = heddle::SimLoop::current()) return sim;
  return heddle::Pool::current();
}

// gtest prints parameters with PrintTo (found by argument-dependent lookup).
inline void PrintTo(Where where, std::ostream* os) { *os << name_of(where); }

// Names the instantiated tests ".../no_scheduler", ".../loop", ...
struct WhereName {
  std::string operator()(const ::testing::TestParamInfo<Where>& info) const { return name_of(info.param); }
};

namespace detail {
// Runs the scheduler until the body's task finished (cancelling it if the
// scheduler stopped early, rather than hang) and returns its result.
template <class Scheduler, class Task>
auto run_until_finished(Scheduler& scheduler, Task& task) {
  scheduler.run();
  if (!task.finished()) {  // run() returned early (someone called stop()): unwind it rather than hang
    ADD_FAILURE() << "the scheduler's run() returned before the test's task finished";
    task.cancel();
    scheduler.run();
  }
  return task.join();
}
}  // namespace detail

// Runs `body` as a task and returns its result (rethrowing its exception):
//   no_scheduler: heddle::spawn(body).join() on the calling thread;
//   loop, sim_loop: a fresh Loop or SimLoop owned by the calling thread
//                 spawns it (eagerly: it runs at once until it first waits)
//                 and runs until every task of the loop, the body's
//                 children included, has finished and no timer is armed;
//   pool_N:       a fresh Pool of N workers runs it; the calling thread
//                 waits for it, then shuts the pool down.
// Children the body spawns inherit its scheduler (none, the loop, the pool).
template <class F>
auto run_in_task(Where where, F&& body) -> std::invoke_result_t<std::decay_t<F>&> {
  switch (where) {
    case Where::no_scheduler: return heddle::spawn(std::forward<F>(body)).join();
    case Where::loop: {
      heddle::Loop loop;
      auto task = loop.spawn(std::forward<F>(body));
      return detail::run_until_finished(loop, task);
    }
    case Where::sim_loop: {
      heddle::SimLoop sim(heddle::SimLoop::seeds(1).front());
      auto task = sim.spawn(std::forward<F>(body));
      return detail::run_until_finished(sim, task);
    }
    case Where::pool_1: return heddle::Pool(1).run(std::forward<F>(body));
    case Where::pool_2: return heddle::Pool(2).run(std::forward<F>(body));
    case Where::pool_8: return heddle::Pool(8).run(std::forward<F>(body));
  }
  throw std::logic_error("heddle::test::run_in_task: unknown Where");
}

// From a task: yields until pred() holds, at most `max_yields` times; true
// if it holds. With no scheduler woken tasks have already run, so pred()
// usually holds at once; on a loop each yield lets every task queued before
// the caller run one step. For waiting on what other tasks were woken to do
// (under in_parallel, pred must read what they write atomically).
template <class Pred>
bool yield_until(Pred&& pred, int max_yields = 100'000) {
  while (!pred()) {
    if (max_yields-- <= 0) return false;
    heddle::this_task::yield();
  }
  return true;
}

// pred() now, from a task that just spawned the tasks pred() looks at: on
// one thread an eager spawn returns once the task got to its first wait; in
// parallel the spawner may go on sooner, so this yields until pred() holds.
template <class Pred>
bool settled(Where where, Pred&& pred) {
  return in_parallel(where) ? yield_until(std::forward<Pred>(pred)) : pred();
}

// What woken tasks recorded, in the order to compare: as it is where they
// run in the order they were woken, sorted elsewhere (there the order is
// the scheduler's choice, not the primitive's).
template <class Sequence>
Sequence wake_ordered(Where where, Sequence recorded) {
  if (!wakes_in_order(where)) std::sort(recorded.begin(), recorded.end());
  return recorded;
}

}  // namespace heddle::test

// Instantiates a TestWithParam<Where> suite for every Where this program
// runs (kWhereThisProgramRuns).
#define HEDDLE_TEST_EVERYWHERE(suite)                                                               \
  INSTANTIATE_TEST_SUITE_P(Everywhere, suite, ::testing::ValuesIn(::heddle::test::kWhereThisProgramRuns), \
                           ::heddle::test::WhereName{})
