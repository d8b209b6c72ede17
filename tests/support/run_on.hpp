// heddle tests: run one scenario as a task under each kind of scheduler.
//
// The sync primitives must behave the same whatever runs their tasks; only
// *when* a woken task runs differs (core/scheduler.hpp):
//   Where::no_scheduler  a wake runs the woken task inline, on the waker's
//                        thread, before the wake returns;
//   Where::loop          a wake queues the task on its heddle::Loop, which
//                        runs it later on the loop's thread (here: the test's).
// A parameterized test runs its body with run_in_task(GetParam(), body) and
// asserts what must hold in both; where the difference itself is the point
// it asserts it with `where == Where::loop`.
//
//   class MyTest : public ::testing::TestWithParam<heddle::test::Where> {};
//   TEST_P(MyTest, Something) {
//     heddle::test::run_in_task(GetParam(), [&] { ... });
//   }
//   INSTANTIATE_TEST_SUITE_P(Everywhere, MyTest, ::testing::ValuesIn(heddle::test::kEverywhere),
//                            heddle::test::WhereName{});
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"

namespace heddle::test {

enum class Where { no_scheduler, loop };

inline constexpr Where kEverywhere[] = {Where::no_scheduler, Where::loop};

inline const char* name_of(Where where) noexcept {
  switch (where) {
    case Where::no_scheduler: return "no_scheduler";
    case Where::loop: return "loop";
  }
  return "unknown";
}

// gtest prints parameters with PrintTo (found by argument-dependent lookup).
inline void PrintTo(Where where, std::ostream* os) { *os << name_of(where); }

// Names the instantiated tests ".../no_scheduler" and ".../loop".
struct WhereName {
  std::string operator()(const ::testing::TestParamInfo<Where>& info) const { return name_of(info.param); }
};

// Runs `body` as a task and returns its result (rethrowing its exception):
//   no_scheduler: heddle::spawn(body).join() on the calling thread;
//   loop:         a fresh heddle::Loop owned by the calling thread spawns it
//                 (eagerly: it runs at once until it first waits) and runs
//                 until every task of the loop, the body's children
//                 included, has finished and no timer is armed.
// Children the body spawns inherit its scheduler (none, or the loop).
template <class F>
auto run_in_task(Where where, F&& body) -> std::invoke_result_t<std::decay_t<F>&> {
  if (where == Where::no_scheduler) return heddle::spawn(std::forward<F>(body)).join();
  heddle::Loop loop;
  auto task = loop.spawn(std::forward<F>(body));
  loop.run();
  if (!task.finished()) {  // run() returned early (someone called stop()): unwind it rather than hang
    ADD_FAILURE() << "heddle::Loop::run returned before the test's task finished";
    task.cancel();
    loop.run();
  }
  return task.join();
}

// From a task: yields until pred() holds, at most `max_yields` times; true
// if it holds. With no scheduler woken tasks have already run, so pred()
// usually holds at once; on a loop each yield lets every task queued before
// the caller run one step. For waiting on what other tasks were woken to do.
template <class Pred>
bool yield_until(Pred&& pred, int max_yields = 100'000) {
  while (!pred()) {
    if (max_yields-- <= 0) return false;
    heddle::this_task::yield();
  }
  return true;
}

}  // namespace heddle::test
