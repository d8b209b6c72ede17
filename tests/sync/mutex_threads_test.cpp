// Mutex between threads, and between threads and tasks: exclusion,
// cross-thread hand-off, the fairness bound under a stream of new lockers,
// cancellation from another thread, and tasks of a Loop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/mutex.hpp"

namespace {

using namespace std::chrono_literals;

void wait_for_waiters(const heddle::Mutex& mutex, std::size_t count) {
  while (mutex.waiters() < count) std::this_thread::yield();
}

TEST(MutexThreads, ThreadsExcludeEachOther) {
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  heddle::Mutex mutex;
  long counter = 0;  // plain: the mutex protects it (TSan checks)
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        std::lock_guard guard(mutex);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, long{kThreads} * kIterations);
}

TEST(MutexThreads, ThreadWaitsForATaskThatHoldsTheMutex) {
  heddle::Mutex mutex;
  heddle::Event release_it;
  std::atomic<bool> thread_got_it{false};
  auto holder = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    release_it.wait();
  });
  std::thread waiter([&] {
    std::lock_guard guard(mutex);
    thread_got_it = true;
  });
  wait_for_waiters(mutex, 1);
  EXPECT_FALSE(thread_got_it);
  release_it.set();  // the task unlocks, handing the mutex to the thread
  waiter.join();
  EXPECT_TRUE(thread_got_it);
  holder.join();
}

TEST(MutexThreads, TaskWaitsForAThreadAndRunsOnItWhenHandedTheMutex) {
  heddle::Mutex mutex;
  std::atomic<bool> locked{false};
  std::atomic<bool> go{false};
  std::thread::id holder_id;
  std::thread holder([&] {
    holder_id = std::this_thread::get_id();
    mutex.lock();
    locked = true;
    while (!go) std::this_thread::yield();
    mutex.unlock();  // runs the waiting task inline, here
  });
  while (!locked) std::this_thread::yield();
  std::thread::id ran_on;
  auto task = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    ran_on = std::this_thread::get_id();
  });
  EXPECT_EQ(mutex.waiters(), 1u);
  go = true;
  holder.join();
  task.join();
  EXPECT_EQ(ran_on, holder_id);
}

TEST(MutexThreads, TaskUnlocksOnADifferentThreadThanItLockedOn) {
  heddle::Mutex mutex;
  heddle::Event move_on;
  auto task = heddle::spawn([&] {
    mutex.lock();
    move_on.wait();  // resumed by another thread
    mutex.unlock();  // the owner is the task, wherever it runs
  });
  std::thread other([&] { move_on.set(); });
  other.join();
  task.join();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

// Fairness bound: a queued waiter gets the mutex at the very next unlock,
// although new lockers keep arriving (spinning on try_lock and queueing
// with lock) from several threads all along.
TEST(MutexThreads, AQueuedWaiterGetsTheMutexAtTheNextUnlockUnderAStreamOfLockers) {
  constexpr int kLockers = 3;
  heddle::Mutex mutex;
  std::vector<int> log;  // who got the mutex, in order (under the mutex)
  std::atomic<bool> stop{false};
  std::atomic<int> attempts{0};
  mutex.lock();
  std::thread waiter([&] {
    std::lock_guard guard(mutex);
    log.push_back(-1);
  });
  wait_for_waiters(mutex, 1);
  std::vector<std::thread> lockers;
  for (int id = 0; id < kLockers; ++id) {
    lockers.emplace_back([&, id] {
      while (!stop) {
        bool got = false;
        for (int k = 0; k < 50 && !got; ++k) {
          attempts.fetch_add(1);
          got = mutex.try_lock();
        }
        if (!got) mutex.lock();
        log.push_back(id);
        mutex.unlock();
      }
    });
  }
  while (attempts.load() < 100 || mutex.waiters() < 2) std::this_thread::yield();
  mutex.unlock();
  waiter.join();
  stop = true;
  for (auto& t : lockers) t.join();
  std::lock_guard guard(mutex);
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front(), -1) << "a new locker took the mutex before the queued waiter";
}

TEST(MutexThreads, WaiterCancelledFromAnotherThreadTakesNothing) {
  heddle::Mutex mutex;
  std::atomic<int> got{0};
  mutex.lock();
  auto first = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    got += 1;
  });
  auto second = heddle::spawn([&] {
    std::lock_guard guard(mutex);
    got += 10;
  });
  std::thread canceller([&] { first.cancel(); });  // runs the unwinding task there
  canceller.join();
  EXPECT_EQ(mutex.waiters(), 1u);
  mutex.unlock();
  EXPECT_EQ(got.load(), 10);
  EXPECT_THROW(first.join(), heddle::Cancelled);
  second.join();
}

// The timer thread cancels the waiting arm: it leaves the queue, and the
// mutex stays with its holder.
TEST(MutexThreads, ALockWaitBoundedByATimeoutLeavesNothingBehind) {
  heddle::Mutex mutex;
  mutex.lock();
  auto task = heddle::spawn([&] {
    EXPECT_THROW(heddle::with_timeout(10ms,
                                      [&] {
                                        mutex.lock();
                                        mutex.unlock();
                                      }),
                 heddle::TimedOut);
  });
  task.join();
  EXPECT_EQ(mutex.waiters(), 0u);
  EXPECT_TRUE(mutex.held_by_caller());
  mutex.unlock();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(MutexThreads, UnlockFromAnotherThreadThrows) {
  heddle::Mutex mutex;
  mutex.lock();
  std::thread other([&] { EXPECT_THROW(mutex.unlock(), std::logic_error); });
  other.join();
  EXPECT_TRUE(mutex.held_by_caller());
  mutex.unlock();
}

// Tasks of a Loop (woken through its run queue) and plain threads share one
// mutex-protected counter.
TEST(MutexThreads, LoopTasksAndThreadsShareOneMutex) {
  constexpr int kTasks = 20;
  constexpr int kThreads = 2;
  constexpr int kIterations = 500;
  heddle::Mutex mutex;
  long counter = 0;
  std::thread loop_thread([&] {
    heddle::Loop loop;
    std::vector<heddle::Task<void>> tasks;
    for (int t = 0; t < kTasks; ++t) {
      tasks.push_back(loop.spawn([&] {
        for (int i = 0; i < kIterations; ++i) {
          std::lock_guard guard(mutex);
          ++counter;
          if (i % 50 == 0) heddle::this_task::yield();  // hold it across a switch now and then
        }
      }));
    }
    loop.run();
    for (auto& t : tasks) t.join();
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        std::lock_guard guard(mutex);
        ++counter;
      }
    });
  }
  for (auto& t : threads) t.join();
  loop_thread.join();
  EXPECT_EQ(counter, long{kTasks + kThreads} * kIterations);
}

}  // namespace
