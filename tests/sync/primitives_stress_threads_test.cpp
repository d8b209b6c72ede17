// Stress: threads and the tasks they spawn hammer one Mutex-protected
// counter and one Semaphore while a third of the tasks are cancelled at
// random moments, from another thread and from a task. Totals must be
// exact: no increment lost or doubled, no permit lost, duplicated or kept
// by a cancelled waiter.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/mutex.hpp"
#include "heddle/sync/semaphore.hpp"

namespace {

using namespace std::chrono_literals;

constexpr int kThreads = 4;
constexpr int kTasksPerThread = 50;  // 200 tasks
constexpr int kIterations = 300;

enum class Role { counter, producer, consumer };

// What one worker (task or thread) did. Written only by that worker, read
// after it has been joined.
struct Tally {
  Role role = Role::counter;
  long increments = 0;
  long released = 0;
  long acquired = 0;
};

struct Shared {
  heddle::Mutex mutex;
  long counter = 0;  // under mutex
  heddle::Semaphore permits{0};
  std::atomic<int> consumers_left{0};
  std::atomic<int> producers_left{0};
  // Producers release half their permits, then wait here until the
  // cancellations are over: meanwhile consumers run short and wait.
  heddle::Event supply_gate;
};

// Runs one worker; a task first waits for `start` (it may be cancelled
// there too). The role's "left" count drops however the worker ends.
void work(Shared& shared, Tally& tally, int salt, heddle::Event* start) {
  struct Leave {
    Shared& shared;
    Role role;
    ~Leave() {
      if (role == Role::consumer) shared.consumers_left.fetch_sub(1);
      if (role == Role::producer) shared.producers_left.fetch_sub(1);
    }
  } leave{shared, tally.role};
  if (start) start->wait();
  for (int i = 0; i < kIterations; ++i) {
    {
      std::lock_guard guard(shared.mutex);
      ++shared.counter;
      ++tally.increments;  // in the same critical section: counted together or not at all
    }
    if (tally.role == Role::producer) {
      if (i == kIterations / 2) shared.supply_gate.wait();
      shared.permits.release();
      ++tally.released;
    } else if (tally.role == Role::consumer) {
      shared.permits.acquire();
      ++tally.acquired;
    }
    if ((i + salt) % 64 == 0) std::this_thread::yield();
  }
}

Role role_of(int index) {
  switch (index % 3) {
    case 0: return Role::counter;
    case 1: return Role::producer;
    default: return Role::consumer;
  }
}

TEST(PrimitivesStress, MutexAndSemaphoreTotalsAreExactUnderRandomCancellation) {
  Shared shared;
  // Tallies: one per task and one per thread, allocated up front (stable).
  std::vector<Tally> task_tallies(kThreads * kTasksPerThread);
  std::vector<Tally> thread_tallies(kThreads);
  for (int i = 0; i < kThreads * kTasksPerThread; ++i) task_tallies[i].role = role_of(i);
  for (int t = 0; t < kThreads; ++t) thread_tallies[t].role = t % 2 == 0 ? Role::producer : Role::consumer;
  for (const auto& tally : task_tallies) {
    if (tally.role == Role::consumer) shared.consumers_left.fetch_add(1);
    if (tally.role == Role::producer) shared.producers_left.fetch_add(1);
  }
  for (const auto& tally : thread_tallies) {
    if (tally.role == Role::consumer) shared.consumers_left.fetch_add(1);
    if (tally.role == Role::producer) shared.producers_left.fetch_add(1);
  }

  std::vector<std::vector<heddle::Task<void>>> tasks(kThreads);
  for (auto& list : tasks) list.reserve(kTasksPerThread);
  std::atomic<int> spawned_threads{0};
  std::atomic<bool> cancelling_done{false};
  std::atomic<int> task_cancels{0};
  std::atomic<int> thread_cancels{0};

  std::atomic<int> cancelled_joins{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      // The thread's tasks start together, once all are spawned: each runs
      // on this thread until it first has to wait, then wherever it is woken.
      heddle::Event start;
      for (int k = 0; k < kTasksPerThread; ++k) {
        const int index = t * kTasksPerThread + k;
        tasks[t].push_back(heddle::spawn([&, index] { work(shared, task_tallies[index], index, &start); }));
      }
      spawned_threads.fetch_add(1);
      start.set();
      work(shared, thread_tallies[t], t, nullptr);
      // Handles are read by the cancellers until they are done.
      while (!cancelling_done) std::this_thread::yield();
      for (auto& task : tasks[t]) {
        try {
          task.join();
        } catch (const heddle::Cancelled&) {
          cancelled_joins.fetch_add(1);
        }
      }
    });
  }
  while (spawned_threads.load() < kThreads) std::this_thread::yield();

  // Victims: a random third of the tasks, split between a canceller thread
  // and a canceller task (which sleeps between cancels on the timer thread).
  std::vector<heddle::Task<void>*> victims;
  for (auto& list : tasks) {
    for (auto& task : list) victims.push_back(&task);
  }
  std::mt19937 random(2024);
  std::shuffle(victims.begin(), victims.end(), random);
  victims.resize(victims.size() / 3);
  const std::size_t half = victims.size() / 2;
  std::thread canceller_thread([&] {
    std::mt19937 local(7);
    for (std::size_t i = 0; i < half; ++i) {
      std::this_thread::sleep_for(std::chrono::microseconds(local() % 500));
      victims[i]->cancel();
      thread_cancels.fetch_add(1);
    }
  });
  auto canceller_task = heddle::spawn([&] {
    std::mt19937 local(11);
    for (std::size_t i = half; i < victims.size(); ++i) {
      heddle::sleep_for(std::chrono::microseconds(local() % 500));
      victims[i]->cancel();
      task_cancels.fetch_add(1);
    }
  });
  canceller_thread.join();
  canceller_task.join();
  cancelling_done = true;
  shared.supply_gate.set();

  // Producers may have been cancelled: once they are all gone, top up the
  // semaphore until every consumer has finished (or been cancelled).
  long topped_up = 0;
  while (shared.producers_left.load() > 0) std::this_thread::yield();
  while (shared.consumers_left.load() > 0) {
    if (shared.permits.waiters() > 0) {
      shared.permits.release();
      ++topped_up;
    } else {
      std::this_thread::yield();
    }
  }
  for (auto& w : workers) w.join();

  long increments = 0, released = topped_up, acquired = 0;
  for (const auto* list : {&task_tallies, &thread_tallies}) {
    for (const auto& tally : *list) {
      increments += tally.increments;
      released += tally.released;
      acquired += tally.acquired;
    }
  }
  EXPECT_EQ(shared.counter, increments);
  EXPECT_EQ(released, acquired + shared.permits.available());
  EXPECT_EQ(shared.permits.waiters(), 0u);
  EXPECT_EQ(shared.mutex.waiters(), 0u);
  EXPECT_TRUE(shared.mutex.try_lock());  // no cancelled waiter kept it
  shared.mutex.unlock();
  EXPECT_EQ(thread_cancels.load() + task_cancels.load(), static_cast<int>(victims.size()));
  // The stress did stress: some cancellations caught tasks waiting.
  EXPECT_GT(cancelled_joins.load(), 0);
  RecordProperty("cancelled_tasks", cancelled_joins.load());
}

}  // namespace
