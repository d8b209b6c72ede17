// Channel<T> and select_on between threads and tasks, and the stress tests:
// producers and consumers, tasks and threads mixed, a third of the tasks
// cancelled at random moments; every value arrives exactly once and each
// producer's values arrive in order.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "stress_log.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/channel.hpp"
#include "heddle/sync/event.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::Channel;

// ---- the same object between threads and tasks

TEST(ChannelThreads, ThreadSendsTaskReceives) {
  Channel<int> ch(0);
  std::vector<int> got;
  auto receiver = heddle::spawn([&] {
    while (auto v = ch.receive()) got.push_back(*v);
  });
  std::thread sender([&] {  // runs the receiver inline on this thread (no scheduler)
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(ch.send(i));
    ch.close();
  });
  sender.join();
  receiver.join();
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[i], i);
}

TEST(ChannelThreads, TaskSendsThreadReceives) {
  Channel<int> ch(2);
  std::vector<int> got;
  std::thread receiver([&] {
    while (auto v = ch.receive()) got.push_back(*v);
  });
  auto sender = heddle::spawn([&] {
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(ch.send(i));
    ch.close();
  });
  sender.join();
  receiver.join();
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(got[i], i);
}

TEST(ChannelThreads, RendezvousPingPongBetweenThreads) {
  Channel<int> ping(0), pong(0);
  std::thread echo([&] {
    while (auto v = ping.receive()) EXPECT_TRUE(pong.send(*v * 2));
  });
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(ping.send(i));
    ASSERT_EQ(pong.receive(), i * 2);
  }
  ping.close();
  echo.join();
}

TEST(ChannelThreads, CloseWakesABlockedThreadSenderWithItsValue) {
  Channel<std::unique_ptr<int>> ch(0);
  std::unique_ptr<int> kept;
  std::thread sender([&] {
    auto value = std::make_unique<int>(3);
    EXPECT_FALSE(ch.send(std::move(value)));
    kept = std::move(value);
  });
  while (ch.senders_waiting() == 0) std::this_thread::yield();
  ch.close();
  sender.join();
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(*kept, 3);
}

TEST(ChannelThreads, ThreadSelectIsWokenByATask) {
  Channel<int> a(0), b(0);
  std::atomic<int> index{-1};
  std::atomic<int> value{0};
  std::thread selector([&] {
    auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
    value = r.index() == 0 ? *std::get<0>(r) : *std::get<1>(r);
    index = static_cast<int>(r.index());
  });
  while (b.receivers_waiting() == 0) std::this_thread::yield();
  auto sender = heddle::spawn([&] { EXPECT_TRUE(b.send(7)); });
  selector.join();
  sender.join();
  EXPECT_EQ(index.load(), 1);
  EXPECT_EQ(value.load(), 7);
  EXPECT_EQ(a.receivers_waiting(), 0u);
}

TEST(ChannelThreads, ThreadSelectSendIsTakenByATask) {
  Channel<int> in(0), out(0);
  std::atomic<bool> sent{false};
  std::thread selector([&] {
    int v = 12;
    auto r = heddle::select_on(heddle::receive_from(in), heddle::send_to(out, std::move(v)));
    EXPECT_EQ(r.index(), 1u);
    sent = std::get<1>(r);
  });
  while (out.senders_waiting() == 0) std::this_thread::yield();
  std::optional<int> got;
  auto receiver = heddle::spawn([&] { got = out.receive(); });
  selector.join();
  receiver.join();
  EXPECT_TRUE(sent.load());
  EXPECT_EQ(got, 12);
  EXPECT_EQ(in.receivers_waiting(), 0u);
}

// A select under with_timeout: when time runs out the select is cancelled,
// withdraws from every channel and takes nothing; in time, it completes.
TEST(ChannelThreads, SelectUnderATimeout) {
  Channel<int> a(0), b(0);
  int value = 5;
  auto select = [&] { return heddle::select_on(heddle::receive_from(a), heddle::send_to(b, std::move(value))); };
  EXPECT_THROW((void)heddle::with_timeout(20ms, select), heddle::TimedOut);
  EXPECT_EQ(value, 5);
  EXPECT_EQ(a.receivers_waiting(), 0u);
  EXPECT_EQ(b.senders_waiting(), 0u);
  EXPECT_EQ(b.try_receive(), std::nullopt);

  std::thread sender([&] { EXPECT_TRUE(a.send(9)); });  // blocks until the select takes it
  auto r = heddle::with_timeout(10s, select);
  sender.join();
  ASSERT_EQ(r.index(), 0u);
  EXPECT_EQ(std::get<0>(r), 9);
  EXPECT_EQ(value, 5);
  EXPECT_EQ(b.senders_waiting(), 0u);
}

// Two threads send K values each on two rendezvous channels; a third takes
// 2K values through select. If a select ever completed two operations, a
// value would be lost and the counts would not match.
TEST(ChannelThreads, EachSelectCompletesExactlyOneOperation) {
  constexpr int kValues = 3000;
  Channel<int> a(0), b(0);
  std::thread sa([&] {
    for (int i = 0; i < kValues; ++i) EXPECT_TRUE(a.send(i));
  });
  std::thread sb([&] {
    for (int i = 0; i < kValues; ++i) EXPECT_TRUE(b.send(kValues + i));
  });
  std::vector<int> from_a, from_b;
  for (int i = 0; i < 2 * kValues; ++i) {
    auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
    if (r.index() == 0) from_a.push_back(*std::get<0>(r)); else from_b.push_back(*std::get<1>(r));
  }
  sa.join();
  sb.join();
  ASSERT_EQ(from_a.size(), static_cast<std::size_t>(kValues));
  ASSERT_EQ(from_b.size(), static_cast<std::size_t>(kValues));
  for (int i = 0; i < kValues; ++i) {
    EXPECT_EQ(from_a[i], i);
    EXPECT_EQ(from_b[i], kValues + i);
  }
  EXPECT_EQ(a.receivers_waiting() + b.receivers_waiting(), 0u);
}

// ---- stress

using Value = std::unique_ptr<std::uint64_t>;  // move-only: a lost value leaks, a duplicate double-frees
using heddle::testing::check_logs;
using heddle::testing::ConsumerLog;
using heddle::testing::encode;
using heddle::testing::ProducerLog;

struct StressShape {
  int producer_threads;
  int consumer_threads;
  int producer_tasks;
  int consumer_tasks;
  std::uint32_t values_per_producer;
};


// How far a stress run has got, so cancellations can be spread over it.
struct Progress {
  std::atomic<std::size_t> received{0};
  std::atomic<int> producers_running{0};
};

// Marks a producer finished however it leaves (cancelled before it started too).
struct ProducerDone {
  Progress& progress;
  ~ProducerDone() { progress.producers_running.fetch_sub(1); }
};

// Joins a task that may have been cancelled.
void join_task(heddle::Task<void>& task) {
  try {
    task.join();
  } catch (const heddle::Cancelled&) {
  }
}

// How many cancellations landed while the task was waiting (the others
// found it already claimed by a waker, and the operation completed).
struct StressStats {
  int producers_cancelled = 0;  // each kept its unsent value
  int consumers_cancelled = 0;
};

// Runs the producers and consumers of one stress test, threads and tasks,
// and cancels a third of the tasks, each when the run reaches a random point
// (a number of values received). Every task first waits at a gate; each
// worker thread opens its share of the gates before its own loop, so the
// tasks start on all the threads at once (with no scheduler a woken task
// runs on its waker's thread) rather than one after another on this one.
class StressRun {
 public:
  StressRun(const StressShape& shape, unsigned seed)
      : producers(shape.producer_threads + shape.producer_tasks),
        consumers(shape.consumer_threads + shape.consumer_tasks),
        shape_(shape),
        rng_(seed) {
    for (std::size_t i = 0; i < producers.size(); ++i) producers[i].id = static_cast<std::uint32_t>(i);
    progress.producers_running = static_cast<int>(producers.size());
  }

  // Starts everything; returns once every producer has finished or was cancelled.
  template <class Produce, class Consume>
  void run_producers(Produce& produce, Consume& consume) {
    const int threads = shape_.producer_threads + shape_.consumer_threads;
    gates_ = std::make_unique<heddle::Event[]>(threads);
    producer_tasks_.reserve(shape_.producer_tasks);
    consumer_tasks_.reserve(shape_.consumer_tasks);
    for (int i = 0; i < std::max(shape_.producer_tasks, shape_.consumer_tasks); ++i) {
      heddle::Event& gate = gates_[i % threads];
      if (i < shape_.consumer_tasks) {
        ConsumerLog& log = consumers[shape_.consumer_threads + i];
        consumer_tasks_.push_back(heddle::spawn([&gate, &consume, &log] {
          gate.wait();
          consume(log);
        }));
      }
      if (i < shape_.producer_tasks) {
        ProducerLog& log = producers[shape_.producer_threads + i];
        producer_tasks_.push_back(heddle::spawn([this, &gate, &produce, &log] {
          ProducerDone done{progress};
          gate.wait();
          produce(log);
        }));
      }
    }
    for (int i = 0; i < shape_.consumer_threads; ++i) {
      consumer_threads_.emplace_back([this, &consume, i] {
        gates_[i].set();
        consume(consumers[i]);
      });
    }
    for (int i = 0; i < shape_.producer_threads; ++i) {
      producer_threads_.emplace_back([this, &produce, i] {
        ProducerDone done{progress};
        gates_[shape_.consumer_threads + i].set();
        produce(producers[i]);
      });
    }
    cancel_a_third();
    for (auto& t : producer_threads_) t.join();
    for (auto& t : producer_tasks_) join_task(t);
  }

  // After the channels were closed: waits for every consumer.
  void join_consumers() {
    for (auto& t : consumer_threads_) t.join();
    for (auto& t : consumer_tasks_) join_task(t);
  }

  StressStats stats() const {
    StressStats stats;
    for (const ProducerLog& p : producers) stats.producers_cancelled += p.cancelled;
    for (const ConsumerLog& c : consumers) stats.consumers_cancelled += c.cancelled;
    return stats;
  }

  std::vector<ProducerLog> producers;
  std::vector<ConsumerLog> consumers;
  Progress progress;

 private:
  void cancel_a_third() {
    std::vector<heddle::Task<void>*> victims;
    for (auto& t : producer_tasks_) victims.push_back(&t);
    for (auto& t : consumer_tasks_) victims.push_back(&t);
    std::shuffle(victims.begin(), victims.end(), rng_);
    victims.resize(victims.size() / 3);
    const std::size_t values = std::size_t{shape_.values_per_producer} * producers.size();
    std::uniform_int_distribution<std::size_t> point(0, values * 3 / 4);
    std::vector<std::size_t> points(victims.size());
    for (std::size_t& p : points) p = point(rng_);
    std::sort(points.begin(), points.end());
    for (std::size_t i = 0; i < victims.size(); ++i) {
      while (progress.received.load(std::memory_order_relaxed) < points[i] &&
             progress.producers_running.load(std::memory_order_relaxed) > 0) {
        std::this_thread::yield();
      }
      victims[i]->cancel();
    }
  }

  StressShape shape_;
  std::mt19937 rng_;
  std::unique_ptr<heddle::Event[]> gates_;
  std::vector<std::thread> producer_threads_, consumer_threads_;
  std::vector<heddle::Task<void>> producer_tasks_, consumer_tasks_;
};

StressStats stress_one_channel(Channel<Value>& ch, const StressShape& shape, unsigned seed) {
  StressRun run(shape, seed);
  auto produce = [&](ProducerLog& log) {
    for (std::uint32_t seq = 0; seq < shape.values_per_producer; ++seq) {
      const std::uint64_t v = encode(log.id, seq);
      Value value = std::make_unique<std::uint64_t>(v);
      try {
        if (!ch.send(std::move(value))) {
          ADD_FAILURE() << "closed while producing";
          return;
        }
      } catch (const heddle::Cancelled&) {
        EXPECT_NE(value, nullptr) << "a cancelled send moved its value";
        if (value) log.unsent = *value;
        log.cancelled = true;
        throw;
      }
      EXPECT_EQ(value, nullptr);
      log.sent.push_back(seq);
    }
  };
  auto consume = [&](ConsumerLog& log) {
    try {
      while (auto v = ch.receive()) {
        log.got.emplace_back(0, **v);
        run.progress.received.fetch_add(1, std::memory_order_relaxed);
      }
    } catch (const heddle::Cancelled&) {
      log.cancelled = true;
      throw;
    }
  };
  run.run_producers(produce, consume);
  ch.close();  // every producer is done: consumers drain, then stop
  run.join_consumers();
  EXPECT_EQ(ch.senders_waiting(), 0u);
  EXPECT_EQ(ch.receivers_waiting(), 0u);
  EXPECT_TRUE(ch.drained());
  check_logs(run.producers, run.consumers);
  return run.stats();
}

// 3 threads and 300 tasks on both sides. With no scheduler a woken task runs
// inline on its waker's thread, so here most cancellations find their task
// already claimed (queued to run) and lose: the operation completes.
constexpr StressShape kMixed{.producer_threads = 1, .consumer_threads = 2, .producer_tasks = 150,
                             .consumer_tasks = 150, .values_per_producer = 150};
// Producer tasks against consumer threads: cancellations find producers parked in send.
constexpr StressShape kTaskProducers{.producer_threads = 1, .consumer_threads = 2, .producer_tasks = 150,
                                     .consumer_tasks = 0, .values_per_producer = 150};
// Consumer tasks against producer threads: cancellations find consumers parked in receive.
constexpr StressShape kTaskConsumers{.producer_threads = 2, .consumer_threads = 1, .producer_tasks = 0,
                                     .consumer_tasks = 150, .values_per_producer = 3000};

// Cancellations land at random moments, so a whole run can (rarely, and
// more often in an optimised build) see none land on a parked producer or
// consumer. Runs are repeated, each fully checked, until the cancellations
// the test needs have landed, at most kMaxRounds times.
constexpr int kMaxRounds = 8;

template <class RunOnce>
StressStats repeat_until_cancellations_land(RunOnce run_once, bool need_producers, bool need_consumers) {
  StressStats total;
  for (int round = 0; round < kMaxRounds; ++round) {
    const StressStats stats = run_once(round);
    total.producers_cancelled += stats.producers_cancelled;
    total.consumers_cancelled += stats.consumers_cancelled;
    if ((!need_producers || total.producers_cancelled > 0) && (!need_consumers || total.consumers_cancelled > 0)) break;
  }
  return total;
}

template <class MakeChannel>
StressStats stress_every_shape(MakeChannel make_channel, unsigned seed, bool need_producers = true) {
  return repeat_until_cancellations_land(
      [&](int round) {
        StressStats total;
        unsigned shape_seed = seed + 100 * static_cast<unsigned>(round);
        for (const StressShape& shape : {kMixed, kTaskProducers, kTaskConsumers}) {
          std::unique_ptr<Channel<Value>> ch = make_channel();
          const StressStats stats = stress_one_channel(*ch, shape, shape_seed++);
          total.producers_cancelled += stats.producers_cancelled;
          total.consumers_cancelled += stats.consumers_cancelled;
        }
        return total;
      },
      need_producers, true);
}

TEST(ChannelStress, BoundedTasksAndThreadsWithCancellation) {
  const StressStats stats = stress_every_shape([] { return std::make_unique<Channel<Value>>(4); }, 1);
  EXPECT_GT(stats.producers_cancelled, 0);
  EXPECT_GT(stats.consumers_cancelled, 0);
}

TEST(ChannelStress, RendezvousTasksAndThreadsWithCancellation) {
  const StressStats stats = stress_every_shape([] { return std::make_unique<Channel<Value>>(0); }, 11);
  EXPECT_GT(stats.producers_cancelled, 0);
  EXPECT_GT(stats.consumers_cancelled, 0);
}

TEST(ChannelStress, UnboundedTasksAndThreadsWithCancellation) {
  // Unbounded sends never wait, so only consumers can be cancelled waiting.
  const StressStats stats = stress_every_shape(
      [] { return std::unique_ptr<Channel<Value>>(new Channel<Value>(Channel<Value>::unbounded())); }, 21, false);
  EXPECT_EQ(stats.producers_cancelled, 0);
  EXPECT_GT(stats.consumers_cancelled, 0);
}

// Select stress: producers offer each value to whichever of two channels
// takes it first; consumers take from whichever has one.
StressStats stress_select(Channel<Value>& a, Channel<Value>& b, const StressShape& shape, unsigned seed) {
  StressRun run(shape, seed);
  auto produce = [&](ProducerLog& log) {
    for (std::uint32_t seq = 0; seq < shape.values_per_producer; ++seq) {
      const std::uint64_t v = encode(log.id, seq);
      Value value = std::make_unique<std::uint64_t>(v);
      try {
        // Both operations offer the same object: only the one selected moves it.
        auto r = heddle::select_on(heddle::send_to(a, std::move(value)), heddle::send_to(b, std::move(value)));
        const bool sent = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
        if (!sent) {
          ADD_FAILURE() << "closed while producing";
          return;
        }
      } catch (const heddle::Cancelled&) {
        EXPECT_NE(value, nullptr) << "a cancelled select moved its value";
        if (value) log.unsent = *value;
        log.cancelled = true;
        throw;
      }
      EXPECT_EQ(value, nullptr);
      log.sent.push_back(seq);
    }
  };
  auto consume = [&](ConsumerLog& log) {
    auto record = [&](int channel, const Value& v) {
      log.got.emplace_back(channel, *v);
      run.progress.received.fetch_add(1, std::memory_order_relaxed);
    };
    bool open[2] = {true, true};
    try {
      while (open[0] || open[1]) {
        if (open[0] && open[1]) {
          auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
          const int channel = static_cast<int>(r.index());
          auto& got = channel == 0 ? std::get<0>(r) : std::get<1>(r);
          if (got) record(channel, *got); else open[channel] = false;
        } else {
          const int channel = open[0] ? 0 : 1;
          if (auto v = (channel == 0 ? a : b).receive()) record(channel, *v); else open[channel] = false;
        }
      }
    } catch (const heddle::Cancelled&) {
      log.cancelled = true;
      throw;
    }
  };
  run.run_producers(produce, consume);
  a.close();
  b.close();
  run.join_consumers();
  EXPECT_EQ(a.senders_waiting() + b.senders_waiting(), 0u);
  EXPECT_EQ(a.receivers_waiting() + b.receivers_waiting(), 0u);
  check_logs(run.producers, run.consumers);
  return run.stats();
}

constexpr StressShape kSelectShapes[] = {
    {.producer_threads = 1, .consumer_threads = 2, .producer_tasks = 100, .consumer_tasks = 100,
     .values_per_producer = 100},
    {.producer_threads = 1, .consumer_threads = 2, .producer_tasks = 100, .consumer_tasks = 0,
     .values_per_producer = 100},
    {.producer_threads = 2, .consumer_threads = 1, .producer_tasks = 0, .consumer_tasks = 100,
     .values_per_producer = 2000},
};

TEST(ChannelStress, SelectOverTwoRendezvousChannels) {
  const StressStats total = repeat_until_cancellations_land(
      [](int round) {
        StressStats sum;
        unsigned seed = 41 + 100 * static_cast<unsigned>(round);
        for (const StressShape& shape : kSelectShapes) {
          Channel<Value> a(0), b(0);
          const StressStats stats = stress_select(a, b, shape, seed++);
          sum.producers_cancelled += stats.producers_cancelled;
          sum.consumers_cancelled += stats.consumers_cancelled;
        }
        return sum;
      },
      false, true);
  // Producers that select on rendezvous channels are matched so fast in an
  // optimised build that a cancellation seldom finds one parked; that case
  // is tested deterministically (ChannelSelect.CancelledParkedSelect...).
  EXPECT_GT(total.consumers_cancelled, 0);
}

TEST(ChannelStress, SelectOverABoundedAndAnUnboundedChannel) {
  unsigned seed = 51;
  for (const StressShape& shape : kSelectShapes) {
    Channel<Value> a(2);
    auto b = Channel<Value>::unbounded();
    (void)stress_select(a, b, shape, seed++);
  }
}

}  // namespace
