// heddle::blocking(f): f runs on the blocking pool while its task is parked.
//   - values (by value, move-only, by reference), void, and f's exception
//     reach the task, with no scheduler and on a Loop; where the task
//     resumes follows the wake policy;
//   - outside a task f runs inline; a task cancelled before the call never
//     submits f;
//   - 200 Loop tasks block at once: 64 calls run at once, the rest drain far
//     faster than serially, and the loop keeps running its other tasks
//     while their calls are out;
//   - the pool is bounded (never more calls at once than the limit, FIFO
//     beyond it), idle threads exit, the limit and HEDDLE_BLOCKING_THREADS
//     are validated;
//   - cancellation: a queued call is withdrawn and never runs; a running one
//     keeps its task parked until f has returned, then Cancelled.
// Jobs that must stay busy wait on a Gate that the test opens; every wait
// is bounded (a broken implementation fails, it does not hang).
#include <dirent.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/blocking.hpp"
#include "run_on.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using heddle::Task;
using heddle::test::Where;

// Keeps pool jobs busy until the test opens it. Shared (jobs hold a
// shared_ptr), so a test that fails early cannot leave a job waiting on a
// destroyed gate; a job gives up after 10 s.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(mutex_);
    return opened_.wait_for(lock, 10s, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// Polls pred() from a thread for at most 5 s.
template <class Pred>
bool eventually(Pred pred) {
  const auto deadline = Clock::now() + 5s;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(200us);
  }
  return true;
}

// heddle::test::run_in_task, returning the body's result.
template <class F>
auto run_in(Where where, F&& body) -> std::invoke_result_t<std::decay_t<F>&> {
  if (where == Where::no_scheduler) return heddle::spawn(std::forward<F>(body)).join();
  heddle::Loop loop;
  auto task = loop.spawn(std::forward<F>(body));
  loop.run();
  EXPECT_TRUE(task.finished());
  return task.join();
}

// Spawns on `loop` if there is one, else with no scheduler.
template <class F>
auto spawn_on(std::optional<heddle::Loop>& loop, F f) {
  if (loop) return loop->spawn(std::move(f));
  return heddle::spawn(std::move(f));
}

// Threads of this process named like the pool's ("heddle-blocking"), from
// /proc/self/task/*/comm.
int pool_thread_count() {
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + entry->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name) && name == "heddle-blocking") ++count;
  }
  ::closedir(dir);
  return count;
}

// Every test leaves the pool as the next one expects it: default limit, and
// no thread left (each exits as soon as it is idle). A pool that cannot
// shrink back to nothing fails here. Waiting for the exiting threads to be
// really gone also spares each test process under TSan its one-second sleep
// at exit while other threads are alive.
void reset_pool() {
  heddle::set_blocking_threads(64);
  heddle::io::detail::set_blocking_idle_timeout(0s);
  EXPECT_TRUE(eventually([] { return heddle::blocking_pool_stats().threads == 0; }))
      << heddle::blocking_pool_stats().threads << " pool threads still alive after the test";
  EXPECT_TRUE(eventually([] { return pool_thread_count() == 0; }))
      << pool_thread_count() << " pool threads not gone after the test";
  heddle::io::detail::set_blocking_idle_timeout(10s);
}

class BlockingTest : public ::testing::Test {
 protected:
  void TearDown() override { reset_pool(); }
};

class BlockingEverywhere : public ::testing::TestWithParam<Where> {
 protected:
  void TearDown() override { reset_pool(); }
};

TEST_P(BlockingEverywhere, ReturnsTheValueComputedOnAPoolThread) {
  const std::thread::id test_thread = std::this_thread::get_id();
  std::thread::id ran_on;
  const int value = run_in(GetParam(), [&] {
    return heddle::blocking([&] {
      ran_on = std::this_thread::get_id();
      return 42;
    });
  });
  EXPECT_EQ(value, 42);
  EXPECT_NE(ran_on, test_thread) << "f ran inline on the task's thread";
}

TEST_P(BlockingEverywhere, ReturnsMoveOnlyValuesAndReferences) {
  static int shared = 5;
  run_in(GetParam(), [&] {
    std::unique_ptr<int> owned = heddle::blocking([] { return std::make_unique<int>(7); });
    ASSERT_TRUE(owned);
    EXPECT_EQ(*owned, 7);
    int& ref = heddle::blocking([]() -> int& { return shared; });
    EXPECT_EQ(&ref, &shared);
    std::string text = heddle::blocking([] { return std::string(100, 'x'); });  // heap-allocated, moved out
    EXPECT_EQ(text, std::string(100, 'x'));
  });
}

TEST_P(BlockingEverywhere, VoidCallsRunTheirSideEffectsBeforeReturning) {
  static_assert(std::is_void_v<decltype(heddle::blocking([] {}))>);
  run_in(GetParam(), [&] {
    int calls = 0;
    for (int i = 0; i < 10; ++i) {
      heddle::blocking([&] { ++calls; });
      EXPECT_EQ(calls, i + 1);
    }
  });
}

TEST_P(BlockingEverywhere, FsExceptionIsRethrownInTheTask) {
  run_in(GetParam(), [&] {
    try {
      heddle::blocking([]() -> int { throw std::runtime_error("no such host"); });
      ADD_FAILURE() << "blocking() returned although f threw";
    } catch (const std::runtime_error& error) {
      EXPECT_STREQ(error.what(), "no such host");
    }
    EXPECT_EQ(heddle::blocking([] { return 1; }), 1);  // and the task carries on
  });
}

INSTANTIATE_TEST_SUITE_P(Everywhere, BlockingEverywhere, ::testing::Values(Where::no_scheduler, Where::loop),
                         heddle::test::WhereName{});

// The wake policy: a task with no scheduler resumes on the pool thread that
// ran f (when f returns after the task has parked; an earlier return resumes
// it on the thread it parked on); a Loop's task on the loop's thread.
TEST_F(BlockingTest, ATaskWithNoSchedulerResumesOnThePoolThread) {
  auto gate = std::make_shared<Gate>();
  std::thread::id ran_on, resumed_on;
  auto task = heddle::spawn([&, gate] {
    heddle::blocking([&, gate] {
      gate->wait();  // returns only after spawn() did: the task has parked by then
      ran_on = std::this_thread::get_id();
    });
    resumed_on = std::this_thread::get_id();
  });
  gate->open();
  task.join();
  EXPECT_EQ(resumed_on, ran_on);
  EXPECT_NE(resumed_on, std::this_thread::get_id());
}

TEST_F(BlockingTest, ALoopTaskResumesOnTheLoopThread) {
  std::thread::id ran_on, resumed_on;
  run_in(Where::loop, [&] {
    heddle::blocking([&] { ran_on = std::this_thread::get_id(); });
    resumed_on = std::this_thread::get_id();
  });
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
  EXPECT_NE(ran_on, std::this_thread::get_id());
}

TEST_F(BlockingTest, OutsideATaskFRunsInline) {
  const std::thread::id here = std::this_thread::get_id();
  std::thread::id ran_on;
  const heddle::BlockingPoolStats before = heddle::blocking_pool_stats();
  EXPECT_EQ(heddle::blocking([&] {
              ran_on = std::this_thread::get_id();
              return 3;
            }),
            3);
  EXPECT_EQ(ran_on, here);
  EXPECT_THROW(heddle::blocking([] { throw std::logic_error("inline"); }), std::logic_error);
  // And from a thread that has never met heddle.
  std::thread([] {
    const std::thread::id me = std::this_thread::get_id();
    EXPECT_EQ(heddle::blocking([] { return std::this_thread::get_id(); }), me);
  }).join();
  EXPECT_EQ(heddle::blocking_pool_stats().threads, before.threads) << "an inline call started a pool thread";
}

TEST_F(BlockingTest, ATaskCancelledBeforeTheCallNeverSubmitsF) {
  bool ran = false;
  auto task = heddle::spawn([&] {
    heddle::this_task::cancel();
    heddle::blocking([&] { ran = true; });
  });
  EXPECT_THROW(task.join(), heddle::Cancelled);
  EXPECT_FALSE(ran);
}

// ---- concurrency on a Loop

// 200 Loop tasks each block 5 ms in f (1 s one at a time). The first 64
// calls each get a thread and hold it until all 64 are in f at once and the
// loop has run another task (a ticker) a few times while they are out,
// which it cannot if f runs on the loop's thread; then the rest drain
// through the 64 threads.
TEST_F(BlockingTest, ManyLoopTasksBlockAtOnceWhileTheLoopKeepsRunning) {
  constexpr int kTasks = 200;
  constexpr int kThreads = 64;
  constexpr int kTicks = 3;
  constexpr auto kEach = 5ms;
  std::atomic<int> in_f{0}, most_in_f{0};
  std::atomic<int> ticks_while_blocked{0};  // ticks of the ticker while some f was running
  int finished = 0;                         // loop thread only
  std::atomic<Clock::rep> released{0};        // when the first held call was let go (since the epoch)
  const auto give_up = Clock::now() + 10s;    // bounds the failure of an implementation that blocks the loop
  heddle::Loop loop;
  auto ticker = loop.spawn([&] {
    while (finished < kTasks) {
      heddle::sleep_for(500us);
      if (in_f.load() > 0) ticks_while_blocked.fetch_add(1);
    }
  });
  std::vector<Task<int>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(loop.spawn([&, i] {
      const int value = heddle::blocking([&, i] {
        const int now = in_f.fetch_add(1) + 1;
        int seen = most_in_f.load();
        while (now > seen && !most_in_f.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(kEach);
        while ((most_in_f.load() < kThreads || ticks_while_blocked.load() < kTicks) && Clock::now() < give_up) {
          std::this_thread::sleep_for(100us);
        }
        Clock::rep unset = 0;
        released.compare_exchange_strong(unset, Clock::now().time_since_epoch().count());
        in_f.fetch_sub(1);
        return i;
      });
      ++finished;
      return value;
    }));
  }
  loop.run();
  const auto end = Clock::now();
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(tasks[i].join(), i);
  ticker.join();
  ASSERT_GE(ticks_while_blocked.load(), kTicks) << "the loop did not run its other task while calls were out";
  // All 64 were in f at once (the release waited for it), never more.
  EXPECT_EQ(most_in_f.load(), kThreads);
  // After the release, 136 calls of 5 ms were still to start: 680 ms one at a time.
  const auto serial = (kTasks - kThreads) * kEach;
  const auto drained = end - Clock::time_point(Clock::duration(released.load()));
  EXPECT_LT(drained, serial / 2) << "the last " << kTasks - kThreads << " calls took "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(drained).count()
                                 << " ms: not run concurrently";
  EXPECT_LE(heddle::blocking_pool_stats().threads, static_cast<std::size_t>(kThreads));
}

TEST_F(BlockingTest, NeverMoreCallsAtOnceThanTheLimit) {
  heddle::set_blocking_threads(4);
  constexpr int kJobs = 32;
  auto gate = std::make_shared<Gate>();
  std::atomic<int> running{0}, most{0}, started{0}, over_limit{0};
  heddle::Loop loop;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < kJobs; ++i) {
    tasks.push_back(loop.spawn([&, gate] {
      heddle::blocking([&, gate] {
        const int now = running.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        if (heddle::blocking_pool_stats().threads > 4) over_limit.fetch_add(1);
        if (started.fetch_add(1) < 4) {
          gate->wait();  // the first four hold their threads until the test has looked
        } else {
          std::this_thread::sleep_for(100us);
        }
        running.fetch_sub(1);
      });
    }));
  }
  // Every task was spawned eagerly and has submitted its call by now.
  EXPECT_TRUE(eventually([&] { return running.load() == 4; }));
  heddle::BlockingPoolStats stats = heddle::blocking_pool_stats();
  EXPECT_EQ(stats.threads, 4u);
  EXPECT_EQ(stats.idle, 0u);
  EXPECT_EQ(stats.queued, static_cast<std::size_t>(kJobs - 4));
  EXPECT_EQ(stats.max_threads, 4u);
  std::this_thread::sleep_for(20ms);  // a window for a fifth call to start wrongly
  EXPECT_EQ(running.load(), 4);
  EXPECT_EQ(heddle::blocking_pool_stats().queued, static_cast<std::size_t>(kJobs - 4));
  gate->open();
  loop.run();
  for (auto& task : tasks) task.join();
  EXPECT_EQ(started.load(), kJobs);
  EXPECT_EQ(most.load(), 4);
  EXPECT_EQ(over_limit.load(), 0);
  EXPECT_EQ(heddle::blocking_pool_stats().queued, 0u);
}

// With one thread, queued calls run in the order they were submitted.
TEST_F(BlockingTest, QueuedCallsRunFirstInFirstOut) {
  heddle::set_blocking_threads(1);
  constexpr int kJobs = 10;
  auto gate = std::make_shared<Gate>();
  std::atomic<bool> blocker_started{false};
  std::vector<int> order;  // written by the one pool thread, read after the loop ran
  heddle::Loop loop;
  auto blocker = loop.spawn([&, gate] {
    heddle::blocking([&, gate] {
      blocker_started = true;
      gate->wait();
    });
  });
  EXPECT_TRUE(eventually([&] { return blocker_started.load(); }));
  std::vector<Task<void>> tasks;
  for (int i = 0; i < kJobs; ++i) {
    tasks.push_back(loop.spawn([&, i] { heddle::blocking([&, i] { order.push_back(i); }); }));
  }
  EXPECT_EQ(heddle::blocking_pool_stats().queued, static_cast<std::size_t>(kJobs));
  gate->open();
  loop.run();
  blocker.join();
  for (auto& task : tasks) task.join();
  std::vector<int> expected(kJobs);
  for (int i = 0; i < kJobs; ++i) expected[i] = i;
  EXPECT_EQ(order, expected);
}

TEST_F(BlockingTest, IdleThreadsExitAndTheNextCallStartsOneAgain) {
  heddle::io::detail::set_blocking_idle_timeout(20ms);
  heddle::spawn([] { heddle::blocking([] {}); }).join();
  EXPECT_TRUE(eventually([] { return heddle::blocking_pool_stats().threads == 0; }))
      << heddle::blocking_pool_stats().threads << " threads still alive";
  EXPECT_EQ(heddle::spawn([] { return heddle::blocking([] { return 9; }); }).join(), 9);
}

TEST_F(BlockingTest, TheLimitMustBePositive) {
  try {
    heddle::set_blocking_threads(0);
    ADD_FAILURE() << "set_blocking_threads(0) was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find(": 0 "), std::string::npos) << error.what();
  }
  EXPECT_EQ(heddle::blocking_pool_stats().max_threads, 64u);  // unchanged
}

// HEDDLE_BLOCKING_THREADS is read once, when the pool is first used: checked
// in a fresh process (the "threadsafe" death-test style re-executes the test).
TEST(BlockingDeathTest, TheEnvironmentVariableIsValidatedAndUsed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        for (const char* bad : {"12x", "0", "-3", ""}) {
          ::setenv("HEDDLE_BLOCKING_THREADS", bad, 1);
          try {
            heddle::blocking_pool_stats();
            std::fprintf(stderr, "accepted \"%s\"\n", bad);
            std::_Exit(1);
          } catch (const std::invalid_argument& error) {
            std::fprintf(stderr, "%s\n", error.what());
          }
        }
        ::setenv("HEDDLE_BLOCKING_THREADS", "3", 1);
        std::_Exit(heddle::blocking_pool_stats().max_threads == 3 ? 0 : 2);
      },
      ::testing::ExitedWithCode(0), "HEDDLE_BLOCKING_THREADS=\"12x\" is not a thread count");
}

// ---- cancellation

// A call still queued is withdrawn by the cancel itself and never runs.
void cancel_while_queued(Where where) {
  heddle::set_blocking_threads(1);
  auto gate = std::make_shared<Gate>();
  std::atomic<bool> blocker_started{false}, victim_ran{false};
  std::optional<heddle::Loop> loop;
  if (where == Where::loop) loop.emplace();
  auto blocker = spawn_on(loop, [&, gate] {
    heddle::blocking([&, gate] {
      blocker_started = true;
      gate->wait();
    });
  });
  EXPECT_TRUE(eventually([&] { return blocker_started.load(); }));
  // Spawned eagerly: it has parked and submitted; the only thread is busy.
  auto victim = spawn_on(loop, [&] { heddle::blocking([&] { victim_ran = true; }); });
  EXPECT_EQ(heddle::blocking_pool_stats().queued, 1u);
  victim.cancel();
  EXPECT_EQ(heddle::blocking_pool_stats().queued, 0u) << "the cancel did not withdraw the queued call";
  if (where == Where::no_scheduler) {
    EXPECT_TRUE(victim.finished()) << "a withdrawn call kept its task waiting";
  }
  gate->open();
  if (loop) {
    loop->run();
  }
  EXPECT_THROW(victim.join(), heddle::Cancelled);
  blocker.join();
  // One thread, FIFO: had the victim's call stayed queued, it would have run
  // before this one.
  heddle::spawn([] { heddle::blocking([] {}); }).join();
  EXPECT_FALSE(victim_ran.load());
}

TEST_F(BlockingTest, CancelWhileQueuedWithdrawsTheCall) { cancel_while_queued(Where::no_scheduler); }
TEST_F(BlockingTest, CancelWhileQueuedWithdrawsTheCallOnALoop) { cancel_while_queued(Where::loop); }

// A call already running keeps its task parked until f returns (f may use
// the task's stack); then the task unwinds with Cancelled, whatever f did.
struct RunningCancel {
  std::shared_ptr<Gate> gate = std::make_shared<Gate>();
  std::atomic<bool> f_started{false};
  std::atomic<bool> f_returned{false};
  std::atomic<bool> unwound{false};             // the task's stack is unwinding
  std::atomic<bool> f_returned_at_unwind{false};

  // The task: a local that f writes to, and a probe that records, when the
  // stack unwinds, whether f had returned.
  void body(bool f_throws) {
    struct Probe {
      RunningCancel& test;
      ~Probe() {
        test.f_returned_at_unwind = test.f_returned.load();
        test.unwound = true;
      }
    } probe{*this};
    int on_task_stack = 0;
    const int result = heddle::blocking([this, f_throws, gate = gate, &on_task_stack] {
      f_started = true;
      gate->wait();
      std::this_thread::sleep_for(2ms);  // a late write into the task's stack
      on_task_stack = 1;
      f_returned = true;
      if (f_throws) throw std::runtime_error("discarded");
      return 5;
    });
    ADD_FAILURE() << "blocking() returned " << result << " in a cancelled task";
  }
};

void cancel_while_running(Where where, bool f_throws) {
  RunningCancel test;
  std::optional<heddle::Loop> loop;
  if (where == Where::loop) loop.emplace();
  auto victim = spawn_on(loop, [&] { test.body(f_throws); });
  if (where == Where::no_scheduler) {
    EXPECT_TRUE(eventually([&] { return test.f_started.load(); }));
    victim.cancel();  // runs the task here until it parks again
    std::this_thread::sleep_for(10ms);  // a window for a wrong implementation to unwind anyway
    EXPECT_FALSE(test.unwound.load()) << "the task unwound while f was running";
    EXPECT_FALSE(victim.finished());
    test.gate->open();
  } else {
    auto canceller = loop->spawn([&] {
      const auto deadline = Clock::now() + 5s;
      while (!test.f_started.load() && Clock::now() < deadline) heddle::sleep_for(100us);
      EXPECT_TRUE(test.f_started.load());
      victim.cancel();
      heddle::sleep_for(10ms);  // the loop runs meanwhile: a wrong implementation unwinds the victim now
      EXPECT_FALSE(test.unwound.load()) << "the task unwound while f was running";
      EXPECT_FALSE(victim.finished());
      test.gate->open();
    });
    loop->run();
    canceller.join();
  }
  EXPECT_THROW(victim.join(), heddle::Cancelled);
  EXPECT_TRUE(test.unwound.load());
  EXPECT_TRUE(test.f_returned_at_unwind.load()) << "the task unwound before f returned";
}

TEST_F(BlockingTest, CancelWhileRunningWaitsForFThenThrowsCancelled) {
  cancel_while_running(Where::no_scheduler, false);
}
TEST_F(BlockingTest, CancelWhileRunningWaitsForFThenThrowsCancelledOnALoop) {
  cancel_while_running(Where::loop, false);
}
TEST_F(BlockingTest, CancelWhileRunningDiscardsFsException) { cancel_while_running(Where::no_scheduler, true); }
TEST_F(BlockingTest, CancelWhileRunningDiscardsFsExceptionOnALoop) { cancel_while_running(Where::loop, true); }

}  // namespace
