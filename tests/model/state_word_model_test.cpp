// heddle tests: the state word's protocol (core/detail/state_word.hpp),
// through every interleaving of two or three parties (checker.hpp).
//
// The code under test is the production BasicStateWord, instantiated over
// model::Atomic. "Running the task" is modelled as the code the task itself
// runs: whoever wins a suspension counts a run of it and goes on with the
// task's next step on its own thread (suspending again, or finishing), as
// run_claimed switches to the task in heddle.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "checker.hpp"
#include "heddle/core/detail/state_word.hpp"

namespace heddle::detail {
namespace {

using ModelStateWord = BasicStateWord<model::Atomic>;

std::string show_state(std::uint64_t s) {
  static const char* const phases[] = {"running", "parking", "parked", "finished"};
  std::string out = "[gen " + std::to_string(generation_of(s)) + " " + phases[s & kPhaseMask];
  if (s & kResumePending) out += " +resume_pending";
  if (s & kCancelRequested) out += " +cancel_requested";
  if (s & kJoinerWaiting) out += " +joiner_waiting";
  if (s & kDetached) out += " +detached";
  return out + "]";
}

const char* name_of(Claim c) {
  return c == Claim::claimed ? "claimed" : c == Claim::pending ? "pending" : "lost";
}
const char* name_of(ParkEnd e) {
  return e == ParkEnd::parked ? "parked" : e == ParkEnd::resumed ? "resumed" : "cancelled";
}
const char* name_of(CancelEnd e) {
  return e == CancelEnd::claimed ? "claimed" : e == CancelEnd::flagged ? "flagged" : "none";
}

// The first suspension's generation: begin_life makes 1, begin_park 2.
constexpr std::uint64_t kFirst = 2;

// One task's state, shared by the threads of one execution. Plain fields
// are safe: one logical thread runs at a time.
template <class Word>
struct Task {
  Word state;
  model::Atomic<bool> interruptible{true};
  int runs[8] = {};       // runs of each suspension, by generation
  int suspensions = 1;    // how many times the task suspends before it finishes
  int released = 0;       // releases of the control block
  bool finished = false;

  explicit Task(bool can_be_interrupted) : interruptible(can_be_interrupted) { state.begin_life(); }

  std::uint64_t generation() const { return generation_of(state.peek_word()); }
};

// Adds peek_word (no scheduling point) to any state word type.
template <class Base>
struct Peekable : Base {
  std::uint64_t peek_word() const { return this->word_.peek(); }
};

template <class Word>
void label(model::Execution& x, Task<Word>& task) {
  x.label(&task.state, "state", show_state);
  x.label(&task.interruptible, "interruptible");
}

template <class Word>
void run_task(Task<Word>& task);

// The task suspends (suspend_current: it does not park if it sees a cancel
// it must deliver), and the context it switched to completes the park.
template <class Word>
void suspend(Task<Word>& task) {
  const std::uint64_t s = task.state.load(std::memory_order_relaxed);
  if (task.interruptible.peek() && (s & kCancelRequested)) {
    model::note("task: sees its cancel request, does not park");
    run_task(task);
    return;
  }
  task.state.begin_park();
  const ParkEnd end = task.state.complete_park(task.interruptible);
  model::note(std::string("complete_park: ") + name_of(end));
  if (end != ParkEnd::parked) run_task(task);
}

// Whoever won the task runs it: one more run of the suspension it was in.
template <class Word>
void run_task(Task<Word>& task) {
  const std::uint64_t g = task.generation();
  model::note("runs the task (suspension " + std::to_string(g) + ")");
  model::check(g < 8 && ++task.runs[g] == 1, "a suspension ran twice");
  if (--task.suspensions > 0) {
    suspend(task);
    return;
  }
  const std::uint64_t before = task.state.finish();
  task.finished = true;
  if (before & kDetached) ++task.released;
}

template <class Word>
void claim(Task<Word>& task, std::uint64_t generation) {
  const Claim c = task.state.claim(generation);
  model::note(std::string("claim ") + std::to_string(generation) + ": " + name_of(c));
  // No scheduling point since the claim's compare-and-swap: the word is
  // still what it made.
  if (c != Claim::lost) model::check(task.generation() == generation, "a stale claim won a later suspension");
  if (c == Claim::claimed) run_task(task);
}

template <class Word>
CancelEnd cancel(Task<Word>& task, std::uint64_t generation = ModelStateWord::kAnyGeneration) {
  const CancelEnd end = task.state.cancel(task.interruptible, generation);
  model::note(std::string("cancel: ") + name_of(end));
  if (end == CancelEnd::none) {
    // Lost only if nobody needs it: no scheduling point since its last
    // read of the word, which said so.
    const std::uint64_t s = task.state.peek_word();
    model::check(phase_of(s) == Phase::finished || (s & kCancelRequested) ||
                     (generation != ModelStateWord::kAnyGeneration && generation_of(s) != generation),
                 "a cancel of a live task did nothing");
  }
  if (end == CancelEnd::claimed) run_task(task);
  return end;
}

void expect_passes(const model::Result& result, const char* property) {
  std::printf("[model] %-58s %7zu interleavings, %.2f s\n", property, result.executions, result.seconds);
  EXPECT_FALSE(result.failed) << result.report();
}

using Word = Peekable<ModelStateWord>;

// claim vs cancel vs complete_park on one parking task: exactly one of them
// runs it, once.
void parked_task_runs_once(bool interruptible, const char* property) {
  const auto result = model::explore([interruptible](model::Execution& x) {
    auto task = std::make_shared<Task<Word>>(interruptible);
    task->state.begin_park();
    label(x, *task);
    x.thread("parker", [task] {
      const ParkEnd end = task->state.complete_park(task->interruptible);
      model::note(std::string("complete_park: ") + name_of(end));
      if (end != ParkEnd::parked) run_task(*task);
    });
    x.thread("waker", [task] { claim(*task, kFirst); });
    x.thread("canceller", [task] { cancel(*task); });
    x.at_end([task] {
      model::check(task->runs[kFirst] == 1, "the suspension was not run exactly once");
    });
  });
  expect_passes(result, property);
}

TEST(StateWordModel, ParkedTaskRunsExactlyOncePerSuspension) {
  parked_task_runs_once(true, "run once: complete_park/claim/cancel, interruptible");
}

TEST(StateWordModel, ParkedUninterruptibleTaskRunsExactlyOnce) {
  parked_task_runs_once(false, "run once: complete_park/claim/cancel, uninterruptible");
}

// A claim that arrives while the task is still parking sets resume_pending,
// and complete_park runs the task: the resume is never lost. Two wakers
// with the same Resumer: exactly one wins.
TEST(StateWordModel, ResumeWhileParkingIsNeverLost) {
  const auto result = model::explore([](model::Execution& x) {
    auto task = std::make_shared<Task<Word>>(true);
    task->state.begin_park();
    label(x, *task);
    x.thread("parker", [task] {
      const ParkEnd end = task->state.complete_park(task->interruptible);
      model::note(std::string("complete_park: ") + name_of(end));
      if (end != ParkEnd::parked) run_task(*task);
    });
    x.thread("waker 1", [task] { claim(*task, kFirst); });
    x.thread("waker 2", [task] { claim(*task, kFirst); });
    x.at_end([task] {
      model::check(task->runs[kFirst] == 1, "the resume was lost, or ran the task twice");
      model::check(task->finished, "the task did not finish");
    });
  });
  expect_passes(result, "resume while parking: never lost (2 wakers)");
}

// A parked task that suspends again once run: a second holder of the first
// suspension's Resumer (a timer, say) must lose against the second
// suspension, which only its own Resumer wins.
template <class W>
model::Result stale_claims() {
  return model::explore([](model::Execution& x) {
    auto task = std::make_shared<Task<W>>(true);
    task->suspensions = 2;
    task->state.begin_park();
    task->state.complete_park(task->interruptible);
    label(x, *task);
    x.thread("waker", [task] { claim(*task, kFirst); });
    x.thread("stale waker", [task] { claim(*task, kFirst); });
    x.thread("second waker", [task] {
      // Its Resumer exists once the task has begun its second suspension.
      model::block_until([task] { return task->generation() > kFirst; }, "the second suspension begins");
      claim(*task, kFirst + 1);
    });
    x.at_end([task] {
      model::check(task->runs[kFirst] == 1 && task->runs[kFirst + 1] == 1,
                   "a suspension was not run exactly once");
    });
  });
}

TEST(StateWordModel, StaleGenerationClaimNeverWins) {
  expect_passes(stale_claims<Word>(), "stale claim never wins (3 claimers, 2 suspensions)");
}

// Two cancels racing on a parked interruptible task: exactly one claims it,
// and the other finds the request made (or the task finished). Cancel
// against claim and complete_park is ParkedTaskRunsExactlyOncePerSuspension.
TEST(StateWordModel, CancelClaimsParkedInterruptibleTaskOnce) {
  const auto result = model::explore([](model::Execution& x) {
    auto task = std::make_shared<Task<Word>>(true);
    task->state.begin_park();
    task->state.complete_park(task->interruptible);
    label(x, *task);
    x.thread("canceller", [task] { cancel(*task); });
    x.thread("canceller of gen 2", [task] { cancel(*task, kFirst); });  // as cancel_if_scheduler
    x.at_end([task] {
      model::check(task->runs[kFirst] == 1, "the parked task was not run exactly once");
    });
  });
  expect_passes(result, "cancel claims a parked interruptible task once");
}

// finish against detach: exactly one of them releases the block.
TEST(StateWordModel, FinishAndDetachReleaseOnce) {
  const auto result = model::explore([](model::Execution& x) {
    auto task = std::make_shared<Task<Word>>(true);
    label(x, *task);
    x.thread("task", [task] {
      const std::uint64_t before = task->state.finish();
      if (before & kDetached) ++task->released;
    });
    x.thread("owner", [task] {
      if (task->state.detach()) ++task->released;
    });
    x.at_end([task] { model::check(task->released == 1, "the block was not released exactly once"); });
  });
  expect_passes(result, "finish vs detach: one release");
}

// The checker can fail: a claim that skips the generation check (in this
// test only) lets the stale waker win the second suspension, and the
// exploration must find that interleaving.
struct ClaimWithoutGeneration : Word {
  Claim claim(std::uint64_t) noexcept {
    std::uint64_t s = word_.load(std::memory_order_acquire);
    for (;;) {
      const Phase phase = phase_of(s);
      if (phase == Phase::parked) {
        if (move(s, running(s))) return Claim::claimed;
      } else if (phase == Phase::parking && !(s & kResumePending)) {
        if (move(s, s | kResumePending)) return Claim::pending;
      } else {
        return Claim::lost;
      }
    }
  }
};

TEST(StateWordModel, CheckerFindsAClaimThatSkipsTheGeneration) {
  const model::Result result = stale_claims<ClaimWithoutGeneration>();
  std::printf("[model] %-58s %7zu interleavings, %.2f s\n", "broken claim (no generation check): found",
              result.executions, result.seconds);
  ASSERT_TRUE(result.failed) << "the checker missed a claim that ignores generations";
  EXPECT_EQ(result.message, "a stale claim won a later suspension");
  std::printf("%s", result.report().c_str());
}

}  // namespace
}  // namespace heddle::detail
