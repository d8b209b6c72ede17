// The sync primitives under SimLoop: each property runs for many seeds
// (300 by default; HEDDLE_SIM_SEEDS=n for a longer sweep, HEDDLE_SIM_SEED=s
// to replay one), with the ready-task order, timer firing and the tests'
// own choices (what to cancel, when) all drawn from the seed. A failure
// names its seed. The first tests check SimLoop itself: replay, virtual
// time, deadlock detection.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "heddle/sched/sim_loop.hpp"
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
#include "stress_log.hpp"

namespace heddle {
namespace {

using namespace std::chrono_literals;

constexpr std::size_t kSeeds = 300;

std::string replay(std::uint64_t seed) { return "replay with HEDDLE_SIM_SEED=" + std::to_string(seed); }

// Runs body(sim) as the root task of a SimLoop for every seed; stops at
// the first seed that fails (its number is in the failure's trace).
template <class Body>
void for_each_seed(Body&& body, std::size_t seeds = kSeeds) {
  for (std::uint64_t seed : SimLoop::seeds(seeds)) {
    SCOPED_TRACE(replay(seed));
    SimLoop sim(seed);
    auto root = sim.spawn([&] { body(sim); });
    sim.run();
    root.join();
    if (::testing::Test::HasFailure()) return;
  }
}

// Yields a random number of times (0-3): more interleavings per seed.
void jitter(SimLoop& sim) {
  for (auto n = sim.random() % 4; n > 0; --n) this_task::yield();
}

// ---- SimLoop itself

// Two tasks that take a and b in opposite orders, yielding in between:
// a deadlock in some orders.
std::pair<Task<void>, Task<void>> spawn_inverted_lockers(SimLoop& sim, Mutex& a, Mutex& b) {
  auto first = sim.spawn([&] {
    std::lock_guard hold_a(a);
    this_task::yield();
    std::lock_guard hold_b(b);
  });
  auto second = sim.spawn([&] {
    std::lock_guard hold_b(b);
    this_task::yield();
    std::lock_guard hold_a(a);
  });
  return {std::move(first), std::move(second)};
}

struct Outcome {
  std::uint64_t trace = 0;
  std::uint64_t steps = 0;
  std::vector<int> order;
  bool operator==(const Outcome&) const = default;
};

Outcome run_scenario(std::uint64_t seed) {
  SimLoop sim(seed);
  Outcome outcome;
  Channel<int> channel(1);
  std::vector<Task<void>> tasks;
  for (int p = 0; p < 3; ++p) {
    tasks.push_back(sim.spawn([&, p] {
      for (int i = 0; i < 5; ++i) {
        sleep_for(std::chrono::milliseconds(sim.random() % 3));
        (void)channel.send(p * 10 + i);
      }
    }));
  }
  tasks.push_back(sim.spawn([&] {
    for (int i = 0; i < 15; ++i) outcome.order.push_back(*channel.receive());
  }));
  sim.run();
  for (auto& t : tasks) t.join();
  outcome.trace = sim.trace();
  outcome.steps = sim.steps();
  return outcome;
}

TEST(SimLoop, TheSameSeedReplaysTheSameRun) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(replay(seed));
    EXPECT_EQ(run_scenario(seed), run_scenario(seed));
  }
}

TEST(SimLoop, DifferentSeedsExploreDifferentOrders) {
  std::set<std::vector<int>> orders;
  std::set<std::uint64_t> traces;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const Outcome outcome = run_scenario(seed);
    orders.insert(outcome.order);
    traces.insert(outcome.trace);
  }
  EXPECT_GE(orders.size(), 5u) << "20 seeds should give several receive orders";
  EXPECT_GE(traces.size(), 15u);
}

TEST(SimLoop, VirtualTimeMakesLongSleepsInstant) {
  const auto real_start = std::chrono::steady_clock::now();
  SimLoop sim(7);
  Clock::time_point woke_at{};
  auto task = sim.spawn([&] {
    const auto start = now();
    EXPECT_EQ(start, sim.now());
    sleep_for(24h);
    woke_at = now();
    EXPECT_GE(woke_at - start, 24h);
    EXPECT_THROW(with_timeout(1h, [] { Event().wait(); }), TimedOut);
    EXPECT_EQ(with_timeout(2h, [] {
      sleep_for(1h);
      return 5;
    }), 5);
  });
  sim.run();
  task.join();
  EXPECT_LT(std::chrono::steady_clock::now() - real_start, 10s) << "virtual hours must not take real time";
}

TEST(SimLoop, ADeadlockThrowsNamingTheSeed) {
  Mutex a, b;
  SimLoop sim(42);
  auto [first, second] = spawn_inverted_lockers(sim, a, b);
  bool deadlocked = false;
  try {
    sim.run();
  } catch (const SimDeadlock& error) {
    deadlocked = true;
    EXPECT_NE(std::string(error.what()).find("HEDDLE_SIM_SEED=42"), std::string::npos) << error.what();
  }
  // Depending on the order the seed picks, the two may also pass each other.
  if (deadlocked) {
    first.cancel();
    second.cancel();
    sim.run();
    EXPECT_THROW(first.join(), Cancelled);
    EXPECT_THROW(second.join(), Cancelled);
  } else {
    first.join();
    second.join();
  }
}

TEST(SimLoop, SomeSeedDeadlocksTheLockOrderInversion) {
  int deadlocks = 0;
  for (std::uint64_t seed = 1; seed <= 50; ++seed) {
    Mutex a, b;
    SimLoop sim(seed);
    sim.dump_on_deadlock(false);
    auto [first, second] = spawn_inverted_lockers(sim, a, b);
    try {
      sim.run();
    } catch (const SimDeadlock&) {
      ++deadlocks;
      first.cancel();  // unwind both, then run the loop until they have
      second.cancel();
      sim.run();
    }
    try {
      first.join();
      second.join();
    } catch (const Cancelled&) {
    }
  }
  EXPECT_GT(deadlocks, 0) << "the simulator must find the lock-order inversion";
}

TEST(SimLoop, SeedsComeFromTheEnvironment) {
  ::setenv("HEDDLE_SIM_SEED", "77", 1);
  EXPECT_EQ(SimLoop::seeds(10), std::vector<std::uint64_t>{77});
  ::setenv("HEDDLE_SIM_SEED", "seventy", 1);
  EXPECT_THROW(SimLoop::seeds(10), std::invalid_argument);
  ::unsetenv("HEDDLE_SIM_SEED");
  const char* saved = std::getenv("HEDDLE_SIM_SEEDS");
  const std::string saved_value = saved ? saved : "";
  ::setenv("HEDDLE_SIM_SEEDS", "3", 1);
  EXPECT_EQ(SimLoop::seeds(10, 5), (std::vector<std::uint64_t>{5, 6, 7}));
  if (saved) ::setenv("HEDDLE_SIM_SEEDS", saved_value.c_str(), 1); else ::unsetenv("HEDDLE_SIM_SEEDS");
}

TEST(SimLoop, DestroyingItCancelsLiveTasks) {
  int unwound = 0;
  {
    Event never;  // outlives the loop: its waiters are cancelled first
    SimLoop sim(3);
    for (int i = 0; i < 10; ++i) {
      sim.spawn([&] {
        struct Count {
          int& n;
          ~Count() { ++n; }
        } count{unwound};
        never.wait();
      }).detach();
    }
  }
  EXPECT_EQ(unwound, 10);
}

// ---- properties of the primitives, over seeds

TEST(SimSync, MutexExcludesAndCountsExactlyUnderRandomCancellation) {
  for_each_seed([](SimLoop& sim) {
    Mutex mutex;
    bool inside = false;
    int counter = 0, increments = 0;
    std::vector<Task<void>> tasks;
    for (int t = 0; t < 6; ++t) {
      tasks.push_back(spawn([&] {
        for (int i = 0; i < 20; ++i) {
          jitter(sim);
          std::lock_guard lock(mutex);
          ASSERT_FALSE(inside);
          inside = true;
          struct Leave {
            bool& inside;
            ~Leave() { inside = false; }  // also when cancelled while holding the mutex
          } leave{inside};
          const int before = counter;
          jitter(sim);  // cancellation points while holding it: nobody else may get in
          counter = before + 1;
          ++increments;
        }
      }));
    }
    const std::size_t victim = sim.random() % tasks.size();
    for (auto n = sim.random() % 10; n > 0; --n) this_task::yield();
    tasks[victim].cancel();
    for (auto& t : tasks) {
      try {
        t.join();
      } catch (const Cancelled&) {
      }
    }
    EXPECT_EQ(counter, increments);
    EXPECT_FALSE(inside);
    EXPECT_TRUE(mutex.try_lock()) << "a cancelled task left the mutex locked";
    mutex.unlock();
  });
}

TEST(SimSync, SemaphoreNeverAdmitsMoreThanItsPermits) {
  for_each_seed([](SimLoop& sim) {
    const std::ptrdiff_t permits = 1 + static_cast<std::ptrdiff_t>(sim.random() % 3);
    Semaphore semaphore(permits);
    std::ptrdiff_t inside = 0, most = 0;
    std::vector<Task<void>> tasks;
    for (int t = 0; t < 6; ++t) {
      tasks.push_back(spawn([&] {
        for (int i = 0; i < 10; ++i) {
          semaphore.acquire();
          most = std::max(most, ++inside);
          jitter(sim);
          --inside;
          semaphore.release();
        }
      }));
    }
    for (auto& t : tasks) t.join();
    EXPECT_LE(most, permits);
    EXPECT_EQ(semaphore.available(), permits);
  });
}

TEST(SimSync, ChannelsLoseNothingWithCloseAndCancellation) {
  for_each_seed([](SimLoop& sim) {
    const int kinds[] = {0, 1, 3, -1};  // rendezvous, bounded, unbounded
    const int kind = kinds[sim.random() % 4];
    auto channel = kind < 0 ? Channel<std::uint64_t>::unbounded() : Channel<std::uint64_t>(kind);
    std::vector<testing::ProducerLog> producers(3);
    std::vector<testing::ConsumerLog> consumers(2);
    std::vector<Task<void>> tasks;
    for (std::uint32_t p = 0; p < producers.size(); ++p) {
      producers[p].id = p;
      tasks.push_back(spawn([&, p] {
        testing::ProducerLog& log = producers[p];
        for (std::uint32_t i = 0; i < 15; ++i) {
          std::uint64_t value = testing::encode(p, i);
          try {
            if (!channel.send(std::move(value))) return;  // closed
          } catch (const Cancelled&) {
            log.unsent = value;
            log.cancelled = log.cancelled_in_send = true;
            throw;
          }
          log.sent.push_back(i);
          jitter(sim);
        }
      }));
    }
    for (auto& consumer : consumers) {
      tasks.push_back(spawn([&] {
        try {
          while (auto v = channel.receive()) {
            consumer.got.emplace_back(0, *v);
            jitter(sim);
          }
        } catch (const Cancelled&) {
          consumer.cancelled = true;
          throw;
        }
      }));
    }
    // Chaos: cancel one producer, then close, at seeded moments.
    for (auto n = sim.random() % 20; n > 0; --n) this_task::yield();
    tasks[sim.random() % producers.size()].cancel();
    for (auto n = sim.random() % 40; n > 0; --n) this_task::yield();
    channel.close();
    for (auto& t : tasks) {
      try {
        t.join();
      } catch (const Cancelled&) {
      }
    }
    // What was sent but not received is still buffered: drain it.
    testing::ConsumerLog rest;
    while (auto v = channel.try_receive()) rest.got.emplace_back(0, *v);
    consumers.push_back(rest);
    testing::check_logs(producers, consumers);
  });
}

TEST(SimSync, TimedReceiveNeverLosesAValue) {
  for_each_seed([](SimLoop& sim) {
    Channel<int> channel(2);
    int received = 0, sent = 0, timeouts = 0;
    auto producer = spawn([&] {
      for (int i = 0; i < 20; ++i) {
        sleep_for(std::chrono::milliseconds(sim.random() % 5));
        if (channel.send(i)) ++sent;
      }
      channel.close();
    });
    for (;;) {
      try {
        auto v = with_timeout(std::chrono::milliseconds(1 + sim.random() % 4), [&] { return channel.receive(); });
        if (!v) break;
        EXPECT_EQ(*v, received) << "values out of order or lost";
        ++received;
      } catch (const TimedOut&) {
        ++timeouts;
      }
    }
    producer.join();
    EXPECT_EQ(received, sent);
    EXPECT_EQ(sent, 20);
  });
}

TEST(SimSync, EventBarrierWaitGroupAndOnce) {
  for_each_seed([](SimLoop& sim) {
    constexpr int kTasks = 5;
    Event start;
    Barrier barrier(kTasks);
    WaitGroup done(kTasks);
    Once once;
    int once_runs = 0, arrived = 0, phase_errors = 0;
    std::vector<Task<void>> tasks;
    for (int t = 0; t < kTasks; ++t) {
      tasks.push_back(spawn([&] {
        start.wait();
        once.call_once([&] {
          jitter(sim);
          ++once_runs;
        });
        for (int phase = 0; phase < 3; ++phase) {
          jitter(sim);
          ++arrived;
          barrier.arrive_and_wait();
          if (arrived < (phase + 1) * kTasks) ++phase_errors;  // left before everyone arrived
        }
        done.done();
      }));
    }
    jitter(sim);
    start.set();
    done.wait();
    for (auto& t : tasks) t.join();
    EXPECT_EQ(once_runs, 1);
    EXPECT_EQ(phase_errors, 0);
    EXPECT_EQ(arrived, 3 * kTasks);
  });
}

TEST(SimSync, CondVarAndSharedMutex) {
  for_each_seed([](SimLoop& sim) {
    Mutex mutex;
    CondVar cv;
    std::vector<int> queue;
    int consumed = 0;
    SharedMutex shared;
    int writers_inside = 0, readers_inside = 0, violations = 0;
    std::vector<Task<void>> tasks;
    for (int p = 0; p < 2; ++p) {
      tasks.push_back(spawn([&, p] {
        for (int i = 0; i < 10; ++i) {
          jitter(sim);
          std::lock_guard lock(mutex);
          queue.push_back(p * 100 + i);
          cv.notify_one();
        }
      }));
    }
    for (int c = 0; c < 2; ++c) {
      tasks.push_back(spawn([&] {
        for (int i = 0; i < 10; ++i) {
          std::unique_lock lock(mutex);
          cv.wait(lock, [&] { return !queue.empty(); });
          queue.erase(queue.begin());
          ++consumed;
        }
      }));
    }
    for (int r = 0; r < 4; ++r) {
      tasks.push_back(spawn([&, r] {
        for (int i = 0; i < 8; ++i) {
          if ((r + i) % 3 == 0) {
            std::unique_lock lock(shared);
            if (writers_inside++ != 0 || readers_inside != 0) ++violations;
            jitter(sim);
            --writers_inside;
          } else {
            std::shared_lock lock(shared);
            ++readers_inside;
            if (writers_inside != 0) ++violations;
            jitter(sim);
            --readers_inside;
          }
        }
      }));
    }
    for (auto& t : tasks) t.join();
    EXPECT_EQ(consumed, 20);
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(violations, 0);
  });
}

}  // namespace
}  // namespace heddle
