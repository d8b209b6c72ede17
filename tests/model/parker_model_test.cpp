// heddle tests: the Parker's protocol (core/detail/parker_protocol.hpp),
// alone for threads and with the state word for tasks, through every
// interleaving (checker.hpp).
//
// A thread's futex is model::futex_wait/futex_wake: a waiter that nobody
// wakes stays asleep, so a lost unpark shows as a deadlock. The task path
// repeats Parker::park's few lines of glue (src/core/parker.cpp) around the
// production protocol and state word.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "checker.hpp"
#include "heddle/core/detail/parker_protocol.hpp"
#include "heddle/core/detail/state_word.hpp"

namespace heddle::detail {
namespace {

namespace protocol = parker_protocol;
using Word = model::Atomic<std::uint32_t>;
using ModelStateWord = BasicStateWord<model::Atomic>;

std::string show_parker(std::uint64_t s) {
  return s == 0 ? "empty" : s == 1 ? "token" : s == 2 ? "waiter" : std::to_string(s);
}

void expect_passes(const model::Result& result, const char* property) {
  std::printf("[model] %-58s %7zu interleavings, %.2f s\n", property, result.executions, result.seconds);
  EXPECT_FALSE(result.failed) << result.report();
}

struct ThreadParker {
  Word state{0};
  int wakes = 0;      // futex wakes the unparkers made
  bool returned = false;
  bool timed_out = false;
};

void unpark(ThreadParker& p) {
  if (protocol::post(p.state)) {
    ++p.wakes;
    model::futex_wake(p.state);
  }
}

// One park, two unparks: the owner always returns (an unpark is never
// lost), and at most one unpark wakes it.
TEST(ParkerModel, ThreadUnparkIsNeverLostNorWakesTwice) {
  const auto result = model::explore([](model::Execution& x) {
    auto p = std::make_shared<ThreadParker>();
    x.label(&p->state, "parker", show_parker);
    x.thread("owner", [p] {
      protocol::park_thread(p->state, [p] { model::futex_wait(p->state, protocol::kWaiter); });
      p->returned = true;
    });
    x.thread("unparker 1", [p] { unpark(*p); });
    x.thread("unparker 2", [p] { unpark(*p); });
    x.at_end([p] {
      model::check(p->returned, "the owner never returned");
      model::check(p->wakes <= 1, "a park was woken twice");
    });
  });
  expect_passes(result, "thread parker: unpark never lost, never twice");
}

// park_until against an unpark: the deadline may pass at any wait. Either
// the park ends by the unpark, or it times out and the unpark stays as a
// token for the next park: never lost.
TEST(ParkerModel, ThreadParkUntilKeepsAnUnparkThatMissedIt) {
  const auto result = model::explore([](model::Execution& x) {
    auto p = std::make_shared<ThreadParker>();
    x.label(&p->state, "parker", show_parker);
    x.thread("owner", [p] {
      const bool unparked = protocol::park_thread_until(p->state, [p] {
        if (model::choose(2, "the deadline passes") == 1) return true;
        model::futex_wait(p->state, protocol::kWaiter);
        return false;
      });
      p->timed_out = !unparked;
      p->returned = true;
    });
    x.thread("unparker", [p] { unpark(*p); });
    x.at_end([p] {
      model::check(p->returned, "the owner never returned");
      model::check(!p->timed_out || p->state.peek() == protocol::kToken, "a timed-out park lost the unpark");
      model::check(p->timed_out || p->state.peek() == protocol::kEmpty, "an unpark was consumed twice or left");
    });
  });
  expect_passes(result, "thread park_until: a missed unpark stays a token");
}

// A task's Parker: its park suspends the task (begin_park), the context it
// switched to runs the hook (begin_wait, or resume at once) and completes
// the park; an unparker posts and claims the suspension it saw waiting; a
// canceller may claim it too (and withdraws the waiter, as on_cancel).
struct TaskParker {
  ModelStateWord state;
  model::Atomic<bool> interruptible{true};
  Word parker{0};
  std::uint64_t waiting_generation = 0;
  int continued = 0;  // times the task went on after its park: must be 1

  TaskParker() { state.begin_life(); }
};

// The task runs again, after its suspension (Parker::park's tail).
void task_continues(TaskParker& t, const char* how) {
  model::note(std::string("the task continues (") + how + ")");
  model::check(++t.continued == 1, "the task was woken twice from one park");
  protocol::take_token(t.parker);
}

void claim_and_run(TaskParker& t, std::uint64_t generation, const char* who) {
  if (t.state.claim(generation) == Claim::claimed) task_continues(t, who);
}

model::Result task_park(bool with_canceller, const model::Options& options) {
  return model::explore([with_canceller](model::Execution& x) {
    auto t = std::make_shared<TaskParker>();
    x.label(&t->parker, "parker", show_parker);
    x.label(&t->state, "state");
    x.label(&t->interruptible, "interruptible");
    x.thread("task", [t] {
      if (protocol::take_token(t->parker)) {
        task_continues(*t, "a token: no park");
        return;
      }
      t->state.begin_park();
      // The context the task switched to: the hook, then complete_park.
      const std::uint64_t g = t->state.load(std::memory_order_relaxed) / kGenerationUnit;
      t->waiting_generation = g;
      if (!protocol::begin_wait(t->parker)) claim_and_run(*t, g, "resumed by its own hook");
      const ParkEnd end = t->state.complete_park(t->interruptible);
      if (end == ParkEnd::cancelled) protocol::withdraw(t->parker, std::memory_order_relaxed);
      if (end != ParkEnd::parked) task_continues(*t, end == ParkEnd::resumed ? "resume pending" : "cancelled");
    });
    x.thread("unparker", [t] {
      if (protocol::post(t->parker)) claim_and_run(*t, t->waiting_generation, "unparked");
    });
    if (with_canceller) {
      x.thread("canceller", [t] {
        if (t->state.cancel(t->interruptible) == CancelEnd::claimed) {
          protocol::withdraw(t->parker, std::memory_order_relaxed);
          task_continues(*t, "cancelled while parked");
        }
      });
    }
    x.at_end([t] { model::check(t->continued == 1, "the park never ended: an unpark was lost"); });
  }, options);
}

TEST(ParkerModel, TaskUnparkIsNeverLostNorRunsTwice) {
  expect_passes(task_park(false, {}), "task parker: unpark never lost, never runs twice");
}

// With a canceller as third party. Without spurious CAS failures: they
// add no new outcome here (every loop retries from the value it saw, as the
// two-party test checks) but multiply the interleavings tenfold.
TEST(ParkerModel, TaskUnparkAgainstCancelRunsOnce) {
  model::Options options;
  options.spurious_failures = 0;
  expect_passes(task_park(true, options), "task parker + cancel: runs once (no spurious CAS)");
}

// finalize against wait_finished (src/core/task.cpp) with a thread joiner:
// the joiner is woken or sees "finished", and exactly one party releases
// the block (the joiner, as its handle does after join).
TEST(ParkerModel, JoinerIsWokenOrSeesFinished) {
  struct Join {
    ModelStateWord state;
    Word joiner{0};  // TaskControl::joiner: 1 once the joiner's parker is there
    ThreadParker parker;
    int released = 0;
    Join() { state.begin_life(); }
  };
  const auto result = model::explore([](model::Execution& x) {
    auto j = std::make_shared<Join>();
    x.label(&j->state, "state");
    x.label(&j->joiner, "joiner");
    x.label(&j->parker.state, "joiner's parker", show_parker);
    x.thread("task", [j] {
      const std::uint64_t before = j->state.finish();
      if (before & kDetached) {
        ++j->released;
      } else if (before & kJoinerWaiting) {
        if (j->joiner.load(std::memory_order_relaxed)) unpark(j->parker);
      }
    });
    x.thread("joiner", [j] {
      j->joiner.store(1, std::memory_order_relaxed);
      if (!j->state.register_joiner()) {
        while (phase_of(j->state.load()) != Phase::finished) {
          protocol::park_thread(j->parker.state, [j] { model::futex_wait(j->parker.state, protocol::kWaiter); });
        }
      }
      ++j->released;
    });
    x.at_end([j] { model::check(j->released == 1, "the block was not released exactly once"); });
  });
  expect_passes(result, "finish vs join: joiner woken or sees finished");
}

}  // namespace
}  // namespace heddle::detail
