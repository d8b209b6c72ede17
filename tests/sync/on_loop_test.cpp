// The sync suite under each scheduler: every primitive's core behaviour,
// run inside tasks with no scheduler (a wake runs the woken task inline on
// the waker), on a heddle::Loop (a wake queues the task; the loop runs it
// later on its thread), on a SimLoop (queued, run in a seeded random order)
// and, compiled with HEDDLE_TEST_ON_POOLS (sync_on_pool_thread_tests), on
// Pools of 1, 2 and 8 workers (run_on.hpp). The same assertions hold
// everywhere; where the schedulers differ (inline or queued, in wake order
// or not, one thread or parallel) the test says so with a condition on
// `where`. A scenario whose tasks share plain variables runs on one thread
// only: it skips the parallel pools, saying so.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/barrier.hpp"
#include "heddle/sync/channel.hpp"
#include "heddle/sync/cond_var.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/mutex.hpp"
#include "heddle/sync/once.hpp"
#include "heddle/sync/semaphore.hpp"
#include "heddle/sync/shared_mutex.hpp"
#include "heddle/sync/wait_group.hpp"
#include "run_on.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::Channel;
using heddle::Task;
using heddle::test::run_in_task;
using heddle::test::in_parallel;
using heddle::test::settled;
using heddle::test::wake_ordered;
using heddle::test::wakes_in_order;
using heddle::test::wakes_inline;
using heddle::test::Where;
using heddle::test::yield_until;

// For scenarios whose tasks share plain variables: they run on one thread.
#define SKIP_IF_IN_PARALLEL(where) \
  if (in_parallel(where)) GTEST_SKIP() << "its tasks share plain variables: one thread only"

class SyncEverywhere : public ::testing::TestWithParam<Where> {};

// ---- the harness itself

TEST_P(SyncEverywhere, TheBodyRunsWhereItSaysAndWakesFollowThePolicy) {
  const Where where = GetParam();
  const std::thread::id test_thread = std::this_thread::get_id();
  run_in_task(where, [&] {
    EXPECT_TRUE(heddle::this_task::in_task());
    const void* const scheduler = heddle::test::current_scheduler();
    EXPECT_EQ(scheduler != nullptr, where != Where::no_scheduler);
    heddle::Event event;
    const void* child_scheduler = nullptr;
    bool child_ran = false;
    auto child = heddle::spawn([&] {
      child_scheduler = heddle::test::current_scheduler();
      event.wait();
      child_ran = true;
    });
    event.set();
    if (!in_parallel(where)) {
      EXPECT_EQ(child_ran, wakes_inline(where));  // inline, or queued
    }
    child.join();
    EXPECT_EQ(child_scheduler, scheduler);  // children inherit the scheduler
    EXPECT_TRUE(child_ran);
    EXPECT_EQ(std::this_thread::get_id() == test_thread, heddle::test::on_the_test_thread(where));
  });
}

// ---- Event

TEST_P(SyncEverywhere, EventManualResetWakesEveryWaiterInOrderAndStaysSet) {
  const Where where = GetParam();
  SKIP_IF_IN_PARALLEL(where);
  run_in_task(where, [&] {
    heddle::Event event;
    std::vector<int> woken;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(heddle::spawn([&, i] {
        event.wait();
        woken.push_back(i);
      }));
    }
    EXPECT_EQ(event.waiters(), 5u);
    EXPECT_TRUE(woken.empty());
    event.set();
    EXPECT_EQ(event.waiters(), 0u);
    EXPECT_EQ(woken.size(), wakes_inline(where) ? 5u : 0u);
    for (auto& t : tasks) t.join();
    EXPECT_EQ(wake_ordered(where, woken), (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_TRUE(event.is_set());
    event.wait();  // set: returns at once
    auto late = heddle::spawn([&] { event.wait(); });
    EXPECT_TRUE(late.finished());  // did not park
    late.join();
    event.reset();
    auto parked = heddle::spawn([&] { event.wait(); });
    EXPECT_EQ(event.waiters(), 1u);
    event.set();
    parked.join();
  });
}

TEST_P(SyncEverywhere, EventAutomaticResetHandsEachSetToOneWaiter) {
  SKIP_IF_IN_PARALLEL(GetParam());
  run_in_task(GetParam(), [&] {
    heddle::Event event(heddle::Event::Reset::automatic);
    std::string woken;
    auto a = heddle::spawn([&] {
      event.wait();
      woken += 'a';
    });
    auto b = heddle::spawn([&] {
      event.wait();
      woken += 'b';
    });
    event.set();
    ASSERT_TRUE(yield_until([&] { return !woken.empty(); }));
    EXPECT_EQ(woken, "a");
    EXPECT_EQ(event.waiters(), 1u);  // one set, one waiter
    EXPECT_FALSE(event.is_set());
    event.set();
    a.join();
    b.join();
    EXPECT_EQ(woken, "ab");
    EXPECT_FALSE(event.is_set());
    event.set();  // nobody waits: kept for the next wait
    EXPECT_TRUE(event.is_set());
    auto c = heddle::spawn([&] {
      event.wait();
      woken += 'c';
    });
    EXPECT_TRUE(c.finished());
    EXPECT_FALSE(event.is_set());  // consumed
    c.join();
    EXPECT_EQ(woken, "abc");
  });
}

TEST_P(SyncEverywhere, EventCancelledWaiterLeavesAndTakesNoSet) {
  const Where where = GetParam();
  run_in_task(where, [&] {
    heddle::Event event(heddle::Event::Reset::automatic);
    std::string woken;
    auto victim = heddle::spawn([&] {
      event.wait();
      woken += 'v';
    });
    auto other = heddle::spawn([&] {
      event.wait();
      woken += 'o';
    });
    ASSERT_TRUE(settled(where, [&] { return event.waiters() == 2; }));
    victim.cancel();
    EXPECT_EQ(event.waiters(), 1u);  // withdrawn by the cancel itself
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    event.set();  // goes to `other`, not lost on the victim
    other.join();
    EXPECT_EQ(woken, "o");
    EXPECT_FALSE(event.is_set());
  });
}

// ---- Mutex

// N tasks contend for the mutex, each yielding while it holds it (so the
// others queue). Each gets it in arrival order, never two at once; on a loop
// every unlock hands it to the longest waiter, so the rounds interleave
// exactly. (With no scheduler an unlock runs the next owner inline, inside
// the unlocking task's unlock(), so the unlocker's own next round comes later
// than a strict rotation.)
TEST_P(SyncEverywhere, MutexHandsOverInArrivalOrderAmongContendingTasks) {
  constexpr int kTasks = 8;
  constexpr int kRounds = 3;
  const Where where = GetParam();
  run_in_task(where, [&] {
    heddle::Mutex mutex;
    std::vector<int> order;
    bool inside = false;
    bool overlapped = false;
    std::vector<Task<void>> tasks;
    mutex.lock();
    for (int i = 0; i < kTasks; ++i) {
      tasks.push_back(heddle::spawn([&, i] {
        for (int round = 0; round < kRounds; ++round) {
          std::lock_guard guard(mutex);
          if (inside) overlapped = true;
          inside = true;
          order.push_back(i);
          heddle::this_task::yield();  // still holding it
          inside = false;
        }
      }));
      ASSERT_TRUE(settled(where, [&] { return mutex.waiters() == static_cast<std::size_t>(i + 1); }));  // arrival order
    }
    EXPECT_EQ(mutex.waiters(), static_cast<std::size_t>(kTasks));
    EXPECT_TRUE(order.empty());
    mutex.unlock();
    if (wakes_inline(where)) {
      ASSERT_FALSE(order.empty());
    } else if (!in_parallel(where)) {
      EXPECT_TRUE(order.empty());  // task 0 was handed the mutex but has not run yet ...
      EXPECT_FALSE(mutex.try_lock());  // ... and it is not free meanwhile
    }
    for (auto& t : tasks) t.join();
    EXPECT_FALSE(overlapped);
    ASSERT_EQ(order.size(), static_cast<std::size_t>(kTasks * kRounds));
    for (int i = 0; i < kTasks; ++i) {
      EXPECT_EQ(order[i], i) << "first acquisitions out of arrival order";
      EXPECT_EQ(std::count(order.begin(), order.end(), i), kRounds);
    }
    if (where == Where::loop) {
      for (std::size_t k = 0; k < order.size(); ++k) EXPECT_EQ(order[k], static_cast<int>(k % kTasks)) << k;
    }
    EXPECT_EQ(mutex.waiters(), 0u);
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
  });
}

TEST_P(SyncEverywhere, MutexCancelledWaiterLeavesTheQueueWithoutIt) {
  const Where where = GetParam();
  run_in_task(where, [&] {
    heddle::Mutex mutex;
    std::string got;
    auto locker = [&](char name) {
      return heddle::spawn([&, name] {
        std::lock_guard guard(mutex);
        got += name;
      });
    };
    mutex.lock();
    auto a = locker('a');
    ASSERT_TRUE(settled(where, [&] { return mutex.waiters() == 1; }));  // arrival order
    auto victim = locker('v');
    ASSERT_TRUE(settled(where, [&] { return mutex.waiters() == 2; }));
    auto c = locker('c');
    ASSERT_TRUE(settled(where, [&] { return mutex.waiters() == 3; }));
    victim.cancel();
    EXPECT_EQ(mutex.waiters(), 2u);
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    EXPECT_TRUE(mutex.held_by_caller());
    mutex.unlock();
    a.join();
    c.join();
    EXPECT_EQ(got, "ac");
    EXPECT_EQ(mutex.waiters(), 0u);
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
  });
}

// A waiter already handed the mutex keeps it when cancelled before it runs
// (on a scheduler: it is queued; the cancel comes at its next suspension,
// with the mutex released by its guard). With no scheduler it ran inline at
// the unlock, so the cancel finds it finished; in parallel it may be either.
TEST_P(SyncEverywhere, MutexAWaiterHandedTheMutexKeepsItIfCancelledBeforeItRuns) {
  const Where where = GetParam();
  run_in_task(where, [&] {
    heddle::Mutex mutex;
    bool got = false;
    mutex.lock();
    auto waiter = heddle::spawn([&] {
      std::lock_guard guard(mutex);
      got = true;
      heddle::this_task::yield();  // a cancellation point, holding the mutex
    });
    mutex.unlock();  // claims the waiter and makes it the owner
    waiter.cancel();
    if (wakes_inline(where)) {
      waiter.join();
    } else if (!in_parallel(where)) {
      EXPECT_THROW(waiter.join(), heddle::Cancelled);
    } else {
      try {
        waiter.join();
      } catch (const heddle::Cancelled&) {
      }
    }
    EXPECT_TRUE(got) << "the hand-over was lost to the cancel";
    EXPECT_EQ(mutex.waiters(), 0u);
    EXPECT_TRUE(mutex.try_lock());  // released by the waiter's guard
    mutex.unlock();
  });
}

// ---- SharedMutex

TEST_P(SyncEverywhere, SharedMutexReadersTogetherAWriterAlone) {
  const Where where = GetParam();
  SKIP_IF_IN_PARALLEL(where);
  run_in_task(where, [&] {
    heddle::SharedMutex rw;
    heddle::Event readers_go;
    std::vector<std::string> log;
    int readers_inside = 0;
    int most_readers_inside = 0;
    auto reader = [&](int i) {
      return heddle::spawn([&, i] {
        std::shared_lock lock(rw);
        log.push_back("r" + std::to_string(i) + "+");
        most_readers_inside = std::max(most_readers_inside, ++readers_inside);
        readers_go.wait();  // holding it
        --readers_inside;
        log.push_back("r" + std::to_string(i) + "-");
      });
    };
    rw.lock();
    std::vector<Task<void>> readers;
    for (int i = 0; i < 3; ++i) readers.push_back(reader(i));
    auto writer = heddle::spawn([&] {
      std::lock_guard lock(rw);
      log.push_back("w+");
      EXPECT_EQ(readers_inside, 0);
      EXPECT_EQ(rw.readers(), 0u);
      heddle::this_task::yield();
      log.push_back("w-");
    });
    EXPECT_EQ(rw.waiting_readers(), 3u);
    EXPECT_EQ(rw.waiting_writers(), 1u);
    rw.unlock();  // a writer's unlock admits the readers queued meanwhile, all at once
    EXPECT_EQ(rw.readers(), 3u);
    ASSERT_TRUE(yield_until([&] { return readers_inside == 3; }));
    readers.push_back(reader(3));  // a writer waits: this reader queues behind it
    EXPECT_EQ(rw.waiting_readers(), 1u);
    EXPECT_EQ(rw.waiting_writers(), 1u);
    readers_go.set();
    for (auto& r : readers) r.join();
    writer.join();
    EXPECT_EQ(most_readers_inside, 3);
    if (wakes_in_order(where)) {
      EXPECT_EQ(log, (std::vector<std::string>{"r0+", "r1+", "r2+", "r0-", "r1-", "r2-", "w+", "w-", "r3+", "r3-"}));
    } else {  // the readers admitted together come and go in the scheduler's order
      ASSERT_EQ(log.size(), 10u);
      EXPECT_EQ(std::vector<std::string>(log.begin() + 6, log.end()),
                (std::vector<std::string>{"w+", "w-", "r3+", "r3-"}));
    }
    EXPECT_TRUE(rw.try_lock());
    rw.unlock();
  });
}

// ---- CondVar

TEST_P(SyncEverywhere, CondVarProducerConsumerWithAPredicate) {
  constexpr int kItems = 40;
  constexpr int kConsumers = 3;
  const Where where = GetParam();
  run_in_task(where, [&] {
    heddle::Mutex mutex;
    heddle::CondVar cv;
    std::deque<int> queue;  // under mutex
    bool done = false;      // under mutex
    std::vector<std::vector<int>> got(kConsumers);
    std::vector<Task<void>> consumers;
    for (int c = 0; c < kConsumers; ++c) {
      consumers.push_back(heddle::spawn([&, c] {
        std::unique_lock lock(mutex);
        for (;;) {
          cv.wait(lock, [&] { return !queue.empty() || done; });
          EXPECT_TRUE(mutex.held_by_caller());
          if (queue.empty()) return;  // done, and drained
          got[c].push_back(queue.front());
          queue.pop_front();
        }
      }));
    }
    ASSERT_TRUE(settled(where, [&] { return cv.waiters() == static_cast<std::size_t>(kConsumers); }));
    auto producer = heddle::spawn([&] {
      for (int i = 0; i < kItems; ++i) {
        {
          std::lock_guard guard(mutex);
          queue.push_back(i);
        }
        cv.notify_one();
        if (i % 3 == 0) heddle::this_task::yield();
      }
      {
        std::lock_guard guard(mutex);
        done = true;
        cv.notify_all();  // under the mutex: the woken wait for it
      }
    });
    producer.join();
    for (auto& c : consumers) c.join();
    std::vector<int> all;
    for (const auto& mine : got) {
      EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
      all.insert(all.end(), mine.begin(), mine.end());
    }
    std::sort(all.begin(), all.end());
    std::vector<int> expected(kItems);
    for (int i = 0; i < kItems; ++i) expected[i] = i;
    EXPECT_EQ(all, expected);
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(cv.waiters(), 0u);
  });
}

TEST_P(SyncEverywhere, CondVarNotifyOneIsFifoAndNotifyAllWakesTheRest) {
  const Where where = GetParam();
  SKIP_IF_IN_PARALLEL(where);
  run_in_task(where, [&] {
    heddle::Mutex mutex;
    heddle::CondVar cv;
    int tickets = 0;  // under mutex
    std::vector<int> woken;
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(heddle::spawn([&, i] {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return tickets > 0; });
        EXPECT_TRUE(mutex.held_by_caller());
        --tickets;
        woken.push_back(i);
      }));
    }
    EXPECT_EQ(cv.waiters(), 3u);
    {
      std::lock_guard guard(mutex);
      tickets = 1;
    }
    cv.notify_one();
    ASSERT_TRUE(yield_until([&] { return !woken.empty(); }));
    EXPECT_EQ(woken, (std::vector<int>{0}));
    EXPECT_EQ(cv.waiters(), 2u);
    {
      std::lock_guard guard(mutex);
      tickets = 2;
      cv.notify_all();
    }
    for (auto& w : waiters) w.join();
    EXPECT_EQ(wake_ordered(where, woken), (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(tickets, 0);
    EXPECT_EQ(cv.waiters(), 0u);
  });
}

TEST_P(SyncEverywhere, CondVarCancelledWaiterUnwindsHoldingTheMutexAndTakesNoNotification) {
  const Where where = GetParam();
  run_in_task(where, [&] {
    heddle::Mutex mutex;
    heddle::CondVar cv;
    bool go = false;
    bool victim_held_it = false;
    std::string woken;
    auto victim = heddle::spawn([&] {
      std::unique_lock lock(mutex);
      try {
        cv.wait(lock, [&] { return go; });
      } catch (const heddle::Cancelled&) {
        victim_held_it = mutex.held_by_caller();
        throw;
      }
      woken += 'v';
    });
    auto other = heddle::spawn([&] {
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return go; });
      woken += 'o';
    });
    ASSERT_TRUE(settled(where, [&] { return cv.waiters() == 2; }));
    victim.cancel();
    EXPECT_EQ(cv.waiters(), 1u);
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    EXPECT_TRUE(victim_held_it);
    {
      std::lock_guard guard(mutex);
      go = true;
    }
    cv.notify_one();  // must reach `other`
    other.join();
    EXPECT_EQ(woken, "o");
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
  });
}

// ---- Semaphore

TEST_P(SyncEverywhere, SemaphoreHandsPermitsToWaitersInFifoOrder) {
  const Where where = GetParam();
  SKIP_IF_IN_PARALLEL(where);
  run_in_task(where, [&] {
    heddle::Semaphore semaphore(0);
    std::vector<int> got;
    std::vector<Task<void>> tasks;
    auto acquirer = [&](int i) {
      return heddle::spawn([&, i] {
        semaphore.acquire();
        got.push_back(i);
      });
    };
    for (int i = 0; i < 4; ++i) tasks.push_back(acquirer(i));
    EXPECT_EQ(semaphore.waiters(), 4u);
    semaphore.release(1);
    EXPECT_EQ(semaphore.available(), 0);  // handed straight to waiter 0, never counted
    ASSERT_TRUE(yield_until([&] { return got.size() == 1; }));
    EXPECT_EQ(got, (std::vector<int>{0}));
    semaphore.release(2);
    EXPECT_EQ(semaphore.available(), 0);
    EXPECT_EQ(semaphore.waiters(), 1u);
    ASSERT_TRUE(yield_until([&] { return got.size() == 3; }));
    EXPECT_EQ(wake_ordered(where, got), (std::vector<int>{0, 1, 2}));
    // Waiter 3 is owed the next permit: a newcomer cannot take it.
    EXPECT_FALSE(semaphore.try_acquire());
    tasks.push_back(acquirer(9));
    EXPECT_EQ(semaphore.waiters(), 2u);
    semaphore.release(1);
    ASSERT_TRUE(yield_until([&] { return got.size() == 4; }));
    EXPECT_EQ(wake_ordered(where, got), (std::vector<int>{0, 1, 2, 3}));
    semaphore.release(2);  // one for the newcomer, one counted
    for (auto& t : tasks) t.join();
    EXPECT_EQ(wake_ordered(where, got), (std::vector<int>{0, 1, 2, 3, 9}));
    EXPECT_EQ(semaphore.available(), 1);
    EXPECT_EQ(semaphore.waiters(), 0u);
  });
}

TEST_P(SyncEverywhere, SemaphoreCancelledWaiterTakesNoPermit) {
  const Where where = GetParam();
  SKIP_IF_IN_PARALLEL(where);
  run_in_task(where, [&] {
    heddle::Semaphore semaphore(0);
    std::string got;
    auto acquirer = [&](char name) {
      return heddle::spawn([&, name] {
        semaphore.acquire();
        got += name;
      });
    };
    auto a = acquirer('a');
    auto victim = acquirer('v');
    auto c = acquirer('c');
    victim.cancel();
    EXPECT_EQ(semaphore.waiters(), 2u);
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    semaphore.release(3);
    a.join();
    c.join();
    EXPECT_EQ(wake_ordered(where, got), "ac");
    EXPECT_EQ(semaphore.available(), 1);  // the victim's share was not kept

    // Cancelled after it was handed a permit: it keeps it (the acquire
    // completed); the cancel comes at its next suspension.
    heddle::Event hold;
    bool acquired = false;
    auto late = heddle::spawn([&] {
      EXPECT_TRUE(semaphore.try_acquire());  // takes the counted one
      semaphore.acquire();                   // parks
      acquired = true;
      hold.wait();
    });
    EXPECT_EQ(semaphore.waiters(), 1u);
    semaphore.release(1);
    late.cancel();
    EXPECT_THROW(late.join(), heddle::Cancelled);
    EXPECT_TRUE(acquired);
    EXPECT_EQ(semaphore.available(), 0);
  });
}

// ---- WaitGroup

TEST_P(SyncEverywhere, WaitGroupReleasesEveryWaiterWhenTheCountReachesZero) {
  constexpr int kJobs = 5;
  SKIP_IF_IN_PARALLEL(GetParam());
  run_in_task(GetParam(), [&] {
    heddle::WaitGroup group;
    heddle::Event go;
    int done = 0;
    std::vector<int> seen_by_waiters;
    std::vector<Task<void>> tasks;
    group.add(kJobs);
    for (int w = 0; w < 2; ++w) {
      tasks.push_back(heddle::spawn([&] {
        group.wait();
        seen_by_waiters.push_back(done);
      }));
    }
    for (int i = 0; i < kJobs; ++i) {
      tasks.push_back(heddle::spawn([&, i] {
        go.wait();
        for (int k = 0; k < i; ++k) heddle::this_task::yield();
        ++done;
        group.done();
      }));
    }
    EXPECT_EQ(group.waiters(), 2u);
    EXPECT_EQ(group.count(), kJobs);
    go.set();
    group.wait();
    EXPECT_EQ(done, kJobs);
    for (auto& t : tasks) t.join();
    EXPECT_EQ(seen_by_waiters, (std::vector<int>{kJobs, kJobs}));

    // Reusable; a cancelled waiter just leaves.
    group.add(1);
    bool released = false;
    auto waiter = heddle::spawn([&] {
      group.wait();
      released = true;
    });
    auto victim = heddle::spawn([&] { group.wait(); });
    EXPECT_EQ(group.waiters(), 2u);
    victim.cancel();
    EXPECT_EQ(group.waiters(), 1u);
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    EXPECT_FALSE(released);
    group.done();
    waiter.join();
    EXPECT_TRUE(released);
    EXPECT_EQ(group.count(), 0);
  });
}

// ---- Barrier

TEST_P(SyncEverywhere, BarrierReleasesEachPhaseOnlyWhenEveryoneArrived) {
  constexpr int kParticipants = 4;
  constexpr int kPhases = 5;
  SKIP_IF_IN_PARALLEL(GetParam());
  run_in_task(GetParam(), [&] {
    heddle::Barrier barrier(kParticipants);
    std::vector<int> arrivals(kPhases, 0);
    std::vector<int> passed(kPhases, 0);
    bool early = false;
    std::vector<Task<void>> tasks;
    for (int p = 0; p < kParticipants; ++p) {
      tasks.push_back(heddle::spawn([&, p] {
        for (int phase = 0; phase < kPhases; ++phase) {
          for (int k = 0; k < (p + phase) % 3; ++k) heddle::this_task::yield();  // arrive in varying order
          ++arrivals[phase];
          barrier.arrive_and_wait();
          if (arrivals[phase] != kParticipants) early = true;
          ++passed[phase];
        }
      }));
    }
    for (auto& t : tasks) t.join();
    EXPECT_FALSE(early);
    EXPECT_EQ(barrier.phase(), static_cast<std::uint64_t>(kPhases));
    EXPECT_EQ(arrivals, std::vector<int>(kPhases, kParticipants));
    EXPECT_EQ(passed, std::vector<int>(kPhases, kParticipants));
    EXPECT_EQ(barrier.waiters(), 0u);
  });
}

TEST_P(SyncEverywhere, BarrierCancelledWaiterWithdrawsItsArrival) {
  SKIP_IF_IN_PARALLEL(GetParam());
  run_in_task(GetParam(), [&] {
    heddle::Barrier barrier(3);
    int released = 0;
    auto arriver = [&] {
      return heddle::spawn([&] {
        barrier.arrive_and_wait();
        ++released;
      });
    };
    auto a = arriver();
    auto victim = arriver();
    EXPECT_EQ(barrier.waiters(), 2u);
    victim.cancel();
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    EXPECT_EQ(barrier.waiters(), 1u);
    auto c = arriver();  // the second real arrival: the phase still needs a third
    EXPECT_EQ(barrier.waiters(), 2u);
    EXPECT_EQ(barrier.phase(), 0u);
    barrier.arrive_and_wait();  // the third: releases the others and does not wait
    EXPECT_EQ(barrier.phase(), 1u);
    a.join();
    c.join();
    EXPECT_EQ(released, 2);
  });
}

// ---- Once

TEST_P(SyncEverywhere, OnceOneRunsOthersWaitAFailedRunPassesToTheFirstWaiter) {
  SKIP_IF_IN_PARALLEL(GetParam());
  run_in_task(GetParam(), [&] {
    heddle::Once once;
    heddle::Event gate;
    std::vector<int> runners;
    std::vector<int> returned;
    auto caller = [&](int i, bool fail) {
      return heddle::spawn([&, i, fail] {
        once.call_once([&] {
          runners.push_back(i);
          gate.wait();  // the others arrive while this runs
          if (fail) throw std::runtime_error("init failed");
        });
        EXPECT_TRUE(once.is_done());
        returned.push_back(i);
      });
    };
    auto first = caller(0, true);
    std::vector<Task<void>> others;
    for (int i = 1; i < 4; ++i) others.push_back(caller(i, false));
    auto victim = caller(4, false);
    EXPECT_EQ(runners, (std::vector<int>{0}));
    EXPECT_EQ(once.waiters(), 4u);
    victim.cancel();  // leaves without being owed the run
    EXPECT_EQ(once.waiters(), 3u);
    EXPECT_THROW(victim.join(), heddle::Cancelled);
    gate.set();
    EXPECT_THROW(first.join(), std::runtime_error);
    for (auto& t : others) t.join();
    EXPECT_EQ(runners, (std::vector<int>{0, 1}));  // handed to the first waiter
    std::sort(returned.begin(), returned.end());
    EXPECT_EQ(returned, (std::vector<int>{1, 2, 3}));
    EXPECT_TRUE(once.is_done());
    once.call_once([&] { runners.push_back(99); });
    EXPECT_EQ(runners.size(), 2u);
  });
}

// ---- Channel

enum class Kind { rendezvous, bounded, unbounded };
constexpr Kind kKinds[] = {Kind::rendezvous, Kind::bounded, Kind::unbounded};

const char* name_of(Kind kind) {
  switch (kind) {
    case Kind::rendezvous: return "rendezvous";
    case Kind::bounded: return "bounded(2)";
    case Kind::unbounded: return "unbounded";
  }
  return "?";
}

template <class T>
std::unique_ptr<Channel<T>> make_channel(Kind kind) {
  switch (kind) {
    case Kind::rendezvous: return std::make_unique<Channel<T>>(0);
    case Kind::bounded: return std::make_unique<Channel<T>>(2);
    case Kind::unbounded: return std::unique_ptr<Channel<T>>(new Channel<T>(Channel<T>::unbounded()));
  }
  return nullptr;
}

TEST_P(SyncEverywhere, ChannelPingPongOverEveryKind) {
  constexpr int kRounds = 300;
  const Where where = GetParam();
  run_in_task(where, [&] {
    if (!heddle::test::on_the_test_thread(where)) heddle::Pool::pin();  // SCOPED_TRACE is its thread's
    for (Kind kind : kKinds) {
      SCOPED_TRACE(name_of(kind));
      auto ping = make_channel<int>(kind);
      auto pong = make_channel<int>(kind);
      auto echo = heddle::spawn([&] {
        while (auto v = ping->receive()) EXPECT_TRUE(pong->send(*v * 2));
        pong->close();
      });
      for (int i = 0; i < kRounds; ++i) {
        ASSERT_TRUE(ping->send(i));
        ASSERT_EQ(pong->receive(), std::optional<int>(i * 2));
      }
      ping->close();
      EXPECT_EQ(pong->receive(), std::nullopt);  // the echo drained ping and closed pong
      echo.join();
      EXPECT_TRUE(ping->drained());
    }
  });
}

// Several producers and consumers on one channel: every value arrives once,
// and each consumer sees each producer's values in the order they were sent.
TEST_P(SyncEverywhere, ChannelManyProducersAndConsumersEveryValueOnceInOrder) {
  constexpr int kProducers = 3;
  constexpr int kConsumers = 2;
  constexpr int kValues = 80;  // per producer
  const Where where = GetParam();
  run_in_task(where, [&] {
    if (!heddle::test::on_the_test_thread(where)) heddle::Pool::pin();  // SCOPED_TRACE is its thread's
    for (Kind kind : kKinds) {
      SCOPED_TRACE(name_of(kind));
      auto ch = make_channel<int>(kind);
      std::vector<std::vector<int>> got(kConsumers);
      std::vector<Task<void>> consumers, producers;
      for (int c = 0; c < kConsumers; ++c) {
        consumers.push_back(heddle::spawn([&, c] {
          while (auto v = ch->receive()) {
            got[c].push_back(*v);
            if (*v % 7 == 0) heddle::this_task::yield();
          }
        }));
      }
      for (int p = 0; p < kProducers; ++p) {
        producers.push_back(heddle::spawn([&, p] {
          for (int s = 0; s < kValues; ++s) {
            EXPECT_TRUE(ch->send(p * 1000 + s));
            if (s % 5 == 0) heddle::this_task::yield();
          }
        }));
      }
      for (auto& t : producers) t.join();
      ch->close();
      for (auto& t : consumers) t.join();
      std::vector<int> all;
      for (const auto& mine : got) {
        std::map<int, int> last;  // producer -> last seq seen
        for (int v : mine) {
          auto [it, fresh] = last.try_emplace(v / 1000, -1);
          EXPECT_LT(it->second, v % 1000) << "reordered";
          it->second = v % 1000;
        }
        all.insert(all.end(), mine.begin(), mine.end());
      }
      std::sort(all.begin(), all.end());
      std::vector<int> expected;
      for (int p = 0; p < kProducers; ++p) {
        for (int s = 0; s < kValues; ++s) expected.push_back(p * 1000 + s);
      }
      EXPECT_EQ(all, expected);
      EXPECT_TRUE(ch->drained());
    }
  });
}

TEST_P(SyncEverywhere, ChannelCloseDrainsThenWakesEveryoneWithNothing) {
  const Where where = GetParam();
  run_in_task(where, [&] {
    using Box = std::unique_ptr<int>;
    Channel<Box> buffered(4);
    for (int i = 1; i <= 3; ++i) ASSERT_TRUE(buffered.send(std::make_unique<int>(i)));
    buffered.close();
    Box refused = std::make_unique<int>(9);
    EXPECT_FALSE(buffered.send(std::move(refused)));
    ASSERT_NE(refused, nullptr);  // given back
    EXPECT_EQ(*refused, 9);
    for (int i = 1; i <= 3; ++i) {
      auto v = buffered.receive();
      ASSERT_TRUE(v && *v);
      EXPECT_EQ(**v, i);
    }
    EXPECT_FALSE(buffered.receive().has_value());
    EXPECT_TRUE(buffered.drained());

    // Parked waiters: a sender keeps its value, a receiver gets nullopt.
    Channel<Box> rendezvous(0);
    Channel<Box> empty(1);
    Box kept;
    bool receiver_done = false;
    auto sender = heddle::spawn([&] {
      Box value = std::make_unique<int>(7);
      EXPECT_FALSE(rendezvous.send(std::move(value)));
      kept = std::move(value);
    });
    auto receiver = heddle::spawn([&] {
      EXPECT_FALSE(empty.receive().has_value());
      receiver_done = true;
    });
    ASSERT_TRUE(settled(where, [&] { return rendezvous.senders_waiting() == 1 && empty.receivers_waiting() == 1; }));
    rendezvous.close();
    empty.close();
    if (!in_parallel(where)) {
      EXPECT_EQ(receiver_done, wakes_inline(where));
    }
    sender.join();
    receiver.join();
    ASSERT_NE(kept, nullptr);
    EXPECT_EQ(*kept, 7);
    EXPECT_TRUE(receiver_done);
    EXPECT_EQ(rendezvous.senders_waiting() + empty.receivers_waiting(), 0u);
  });
}

// select_on over two channels under with_timeout: the timer (the loop's, on
// a loop) fires, the select withdraws from both channels and takes nothing;
// given something in time, it completes that operation only.
TEST_P(SyncEverywhere, ChannelSelectUnderATimeoutTimesOutTakingNothing) {
  run_in_task(GetParam(), [&] {
    Channel<int> a(0);
    Channel<int> b(1);
    ASSERT_EQ(b.try_send(100), heddle::SendStatus::sent);  // full: the select's send must wait
    int value = 5;
    auto select = [&] { return heddle::select_on(heddle::receive_from(a), heddle::send_to(b, std::move(value))); };
    const auto start = heddle::now();  // virtual under a SimLoop
    EXPECT_THROW((void)heddle::with_timeout(20ms, select), heddle::TimedOut);
    EXPECT_GE(heddle::now() - start, 20ms);
    EXPECT_EQ(value, 5);
    EXPECT_EQ(a.receivers_waiting(), 0u);
    EXPECT_EQ(b.senders_waiting(), 0u);
    EXPECT_EQ(a.try_send(1), heddle::SendStatus::full);  // no receiver left behind on `a`
    EXPECT_EQ(b.try_receive(), std::optional<int>(100));
    EXPECT_EQ(b.try_receive(), std::nullopt);  // `value` was never added
    ASSERT_EQ(b.try_send(101), heddle::SendStatus::sent);

    auto sender = heddle::spawn([&] {
      heddle::sleep_for(5ms);
      EXPECT_TRUE(a.send(9));
    });
    auto r = heddle::with_timeout(10s, select);
    ASSERT_EQ(r.index(), 0u);
    EXPECT_EQ(std::get<0>(r), std::optional<int>(9));
    EXPECT_EQ(value, 5);  // the send that was not selected kept its value
    EXPECT_EQ(b.size(), 1u);
    sender.join();
    EXPECT_EQ(a.receivers_waiting() + b.senders_waiting(), 0u);
  });
}

// ---- waiting under a timeout leaves nothing behind

TEST_P(SyncEverywhere, MutexLockUnderATimeoutTimesOutCleanly) {
  run_in_task(GetParam(), [&] {
    heddle::Mutex mutex;
    bool got = false;
    mutex.lock();
    const auto start = heddle::now();  // virtual under a SimLoop
    EXPECT_THROW(heddle::with_timeout(20ms,
                                      [&] {
                                        std::lock_guard guard(mutex);
                                        got = true;
                                      }),
                 heddle::TimedOut);
    EXPECT_GE(heddle::now() - start, 20ms);
    EXPECT_FALSE(got);
    EXPECT_EQ(mutex.waiters(), 0u);
    EXPECT_TRUE(mutex.held_by_caller());
    mutex.unlock();  // nobody is handed it: free
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();

    // In time: the holder lets go before the deadline.
    auto holder = heddle::spawn([&] {
      std::lock_guard guard(mutex);
      heddle::sleep_for(5ms);
    });
    heddle::with_timeout(10s, [&] {
      std::lock_guard guard(mutex);
      got = true;
    });
    EXPECT_TRUE(got);
    holder.join();
    EXPECT_EQ(mutex.waiters(), 0u);
    EXPECT_TRUE(mutex.try_lock());
    mutex.unlock();
  });
}

TEST_P(SyncEverywhere, ChannelSendAndReceiveUnderATimeoutTimeOutCleanly) {
  run_in_task(GetParam(), [&] {
    Channel<int> rendezvous(0);
    EXPECT_THROW((void)heddle::with_timeout(20ms, [&] { return rendezvous.receive(); }), heddle::TimedOut);
    EXPECT_EQ(rendezvous.receivers_waiting(), 0u);
    EXPECT_EQ(rendezvous.try_send(1), heddle::SendStatus::full);  // nobody left to take it

    using Box = std::unique_ptr<int>;
    Channel<Box> full(1);
    ASSERT_EQ(full.try_send(std::make_unique<int>(1)), heddle::SendStatus::sent);
    Box value = std::make_unique<int>(2);
    EXPECT_THROW((void)heddle::with_timeout(20ms, [&] { return full.send(std::move(value)); }), heddle::TimedOut);
    ASSERT_NE(value, nullptr);  // the timed-out sender kept its value
    EXPECT_EQ(*value, 2);
    EXPECT_EQ(full.senders_waiting(), 0u);
    EXPECT_EQ(full.size(), 1u);
    auto head = full.try_receive();
    ASSERT_TRUE(head && *head);
    EXPECT_EQ(**head, 1);
    EXPECT_FALSE(full.try_receive().has_value());

    // In time: a receiver under a timeout gets a value sent later.
    auto sender = heddle::spawn([&] {
      heddle::sleep_for(5ms);
      EXPECT_TRUE(rendezvous.send(42));
    });
    EXPECT_EQ(heddle::with_timeout(10s, [&] { return rendezvous.receive(); }), std::optional<int>(42));
    sender.join();
  });
}

HEDDLE_TEST_EVERYWHERE(SyncEverywhere);

}  // namespace
