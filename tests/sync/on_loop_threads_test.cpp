// Sync primitives between the tasks of a heddle::Loop (running on the test
// thread) and plain threads: a wake from another thread queues the loop's
// task remotely and the loop runs it; a loop task waking a thread unparks
// its futex. Each test spawns its loop tasks first, starts the threads, and
// runs the loop until every loop task has finished (run() returns), then
// joins the threads.
//   - channel stress: producer and consumer tasks on the loop beside a
//     producer thread and a consumer thread, over bounded, rendezvous and
//     unbounded channels, with a third of the tasks cancelled at random
//     moments from a thread and from a loop task: exactly the values sent
//     arrive (nothing lost, nothing twice), in order per producer, and a
//     cancelled sender keeps its value;
//   - a Mutex-protected counter hammered by loop tasks and threads, with
//     cancellations: the total is exact;
//   - Event and Semaphore ping-pong between a loop task and a thread, and
//     Semaphore permits released in bursts by a thread: nothing lost;
//   - a select_on must not return while its waker still writes to its nodes
//     (fails under TSan today: see SelectReturnsBeforeItsWakerFinishedWithIt).
// Sized to take well under 10 s under ASan and 30 s under TSan.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/time.hpp"
#include "heddle/sync/channel.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/mutex.hpp"
#include "stress_log.hpp"
#include "heddle/sync/semaphore.hpp"
#include "heddle/sync/wait_group.hpp"

namespace {

using namespace std::chrono_literals;
using heddle::Channel;
using heddle::Task;

// Joins a task that may have been cancelled; true if it was.
bool join_task(Task<void>& task) {
  try {
    task.join();
    return false;
  } catch (const heddle::Cancelled&) {
    return true;
  }
}

// Picks a random third of `victims` and cancels them when `progress` reaches
// random points (or once `running()` turns false): half from a plain thread,
// half from a task of `loop`. Returns the canceller task; the canceller
// thread is started in `thread` (join it after the loop has run).
template <class Running>
Task<void> cancel_a_third(heddle::Loop& loop, std::vector<Task<void>*> victims, const std::atomic<long>& progress,
                          long last_point, Running running, unsigned seed, std::thread& thread) {
  std::mt19937 rng(seed);
  std::shuffle(victims.begin(), victims.end(), rng);
  victims.resize(victims.size() / 3);
  std::uniform_int_distribution<long> point(0, last_point);
  struct Cancel {
    Task<void>* victim;
    long at;
  };
  std::vector<Cancel> from_thread, from_task;
  for (std::size_t i = 0; i < victims.size(); ++i) (i % 2 ? from_task : from_thread).push_back({victims[i], point(rng)});
  auto by_point = [](const Cancel& a, const Cancel& b) { return a.at < b.at; };
  std::sort(from_thread.begin(), from_thread.end(), by_point);
  std::sort(from_task.begin(), from_task.end(), by_point);
  auto reached = [&progress, running](long at) { return progress.load(std::memory_order_relaxed) >= at || !running(); };
  thread = std::thread([from_thread, reached] {
    for (const Cancel& c : from_thread) {
      while (!reached(c.at)) std::this_thread::sleep_for(20us);
      c.victim->cancel();
    }
  });
  return loop.spawn([from_task, reached] {
    for (const Cancel& c : from_task) {
      while (!reached(c.at)) heddle::sleep_for(20us);
      c.victim->cancel();
    }
  });
}

// ---- (a) channel stress

using Value = std::unique_ptr<std::uint64_t>;  // move-only: a lost value leaks, a duplicate double-frees
using heddle::testing::check_logs;
using heddle::testing::ConsumerLog;
using heddle::testing::encode;
using heddle::testing::ProducerLog;

struct Shape {
  int producer_tasks;
  int consumer_tasks;
  std::uint32_t values_per_producer;
  std::uint32_t producer_yield_every;  // producer tasks yield (a cancellation point) every this many sends
};

struct Outcome {
  int producers_cancelled_in_send = 0;
  int consumers_cancelled_in_receive = 0;
  int cancelled_tasks = 0;
  long received_by_threads = 0;
};


// One producer thread and one consumer thread beside shape's tasks on a
// loop run by this thread; a third of the tasks cancelled (a third plain
// thread cancels half of them, a loop task the other half).
Outcome stress_on_loop(Channel<Value>& ch, const Shape& shape, unsigned seed) {
  constexpr int kProducerThreads = 1;
  constexpr int kConsumerThreads = 1;
  std::vector<ProducerLog> producers(kProducerThreads + shape.producer_tasks);
  std::vector<ConsumerLog> consumers(kConsumerThreads + shape.consumer_tasks);
  for (std::size_t i = 0; i < producers.size(); ++i) producers[i].id = static_cast<std::uint32_t>(i);
  std::atomic<long> received{0};
  heddle::WaitGroup producing(static_cast<std::int64_t>(producers.size()));

  auto produce = [&](ProducerLog& log, bool in_task) {
    struct Done {
      heddle::WaitGroup& producing;
      ~Done() { producing.done(); }  // however the producer ends
    } done{producing};
    for (std::uint32_t seq = 0; seq < shape.values_per_producer; ++seq) {
      Value value = std::make_unique<std::uint64_t>(encode(log.id, seq));
      bool sending = false;
      try {
        if (in_task && seq % shape.producer_yield_every == 0) heddle::this_task::yield();
        sending = true;
        if (!ch.send(std::move(value))) {
          ADD_FAILURE() << "closed while producing";
          return;
        }
      } catch (const heddle::Cancelled&) {
        EXPECT_NE(value, nullptr) << "a cancelled send moved its value";
        if (value) log.unsent = *value;
        log.cancelled = true;
        log.cancelled_in_send = sending;
        throw;
      }
      EXPECT_EQ(value, nullptr);
      log.sent.push_back(seq);
    }
  };
  auto consume = [&](ConsumerLog& log, bool in_task) {
    bool receiving = false;
    try {
      for (;;) {
        receiving = true;
        std::optional<Value> v = ch.receive();
        receiving = false;
        if (!v) return;
        log.got.emplace_back(0, **v);
        received.fetch_add(1, std::memory_order_relaxed);
        if (in_task && log.got.size() % 16 == 0) heddle::this_task::yield();
      }
    } catch (const heddle::Cancelled&) {
      log.cancelled = true;
      log.cancelled_in_receive = receiving;
      throw;
    }
  };

  heddle::Loop loop;
  // Loop tasks first, each running at once on this thread until it waits.
  std::vector<Task<void>> consumer_tasks, producer_tasks;
  for (int i = 0; i < std::max(shape.producer_tasks, shape.consumer_tasks); ++i) {
    if (i < shape.consumer_tasks) {
      consumer_tasks.push_back(loop.spawn([&, i] { consume(consumers[kConsumerThreads + i], true); }));
    }
    if (i < shape.producer_tasks) {
      producer_tasks.push_back(loop.spawn([&, i] { produce(producers[kProducerThreads + i], true); }));
    }
  }
  auto closer = loop.spawn([&] {
    producing.wait();  // every producer finished or was cancelled
    ch.close();        // the consumers drain what is left, then stop
  });
  std::vector<Task<void>*> victims;
  for (auto& t : producer_tasks) victims.push_back(&t);
  for (auto& t : consumer_tasks) victims.push_back(&t);
  const long values = static_cast<long>(shape.values_per_producer) * static_cast<long>(producers.size());
  std::thread canceller_thread;
  auto canceller = cancel_a_third(
      loop, victims, received, values * 3 / 4, [&producing] { return producing.count() > 0; }, seed,
      canceller_thread);

  std::vector<std::thread> threads;
  for (int i = 0; i < kConsumerThreads; ++i) threads.emplace_back([&, i] { consume(consumers[i], false); });
  for (int i = 0; i < kProducerThreads; ++i) threads.emplace_back([&, i] { produce(producers[i], false); });

  loop.run();  // until every loop task has finished
  for (auto& t : threads) t.join();
  canceller_thread.join();

  Outcome outcome;
  for (auto& t : producer_tasks) outcome.cancelled_tasks += join_task(t);
  for (auto& t : consumer_tasks) outcome.cancelled_tasks += join_task(t);
  closer.join();
  canceller.join();
  EXPECT_EQ(ch.senders_waiting(), 0u);
  EXPECT_EQ(ch.receivers_waiting(), 0u);
  EXPECT_TRUE(ch.drained());
  check_logs(producers, consumers);
  for (int i = 0; i < kConsumerThreads; ++i) outcome.received_by_threads += static_cast<long>(consumers[i].got.size());
  int logged_cancels = 0;
  for (const ProducerLog& p : producers) {
    outcome.producers_cancelled_in_send += p.cancelled_in_send;
    logged_cancels += p.cancelled;
  }
  for (const ConsumerLog& c : consumers) {
    outcome.consumers_cancelled_in_receive += c.cancelled_in_receive;
    logged_cancels += c.cancelled;
  }
  EXPECT_EQ(outcome.cancelled_tasks, logged_cancels);
  EXPECT_GT(outcome.cancelled_tasks, 0);
  EXPECT_LE(outcome.cancelled_tasks, (shape.producer_tasks + shape.consumer_tasks) / 3);
  return outcome;
}

constexpr Shape kShape{.producer_tasks = 30, .consumer_tasks = 30, .values_per_producer = 300,
                       .producer_yield_every = 16};
// Unbounded sends never wait, so producers yield more often: the buffer then
// runs dry now and then and consumer tasks park in receive.
constexpr Shape kUnboundedShape{.producer_tasks = 30, .consumer_tasks = 30, .values_per_producer = 300,
                                .producer_yield_every = 4};

template <class MakeChannel>
Outcome stress_twice(MakeChannel make_channel, const Shape& shape, unsigned seed) {
  Outcome total;
  for (int run = 0; run < 2; ++run) {
    std::unique_ptr<Channel<Value>> ch = make_channel();
    const Outcome outcome = stress_on_loop(*ch, shape, seed + run);
    total.producers_cancelled_in_send += outcome.producers_cancelled_in_send;
    total.consumers_cancelled_in_receive += outcome.consumers_cancelled_in_receive;
    total.cancelled_tasks += outcome.cancelled_tasks;
    total.received_by_threads += outcome.received_by_threads;
  }
  ::testing::Test::RecordProperty("cancelled_tasks", total.cancelled_tasks);
  ::testing::Test::RecordProperty("cancelled_in_send", total.producers_cancelled_in_send);
  ::testing::Test::RecordProperty("cancelled_in_receive", total.consumers_cancelled_in_receive);
  ::testing::Test::RecordProperty("received_by_threads", std::to_string(total.received_by_threads));
  return total;
}

TEST(SyncOnLoopThreads, BoundedChannelStressWithCancellation) {
  const Outcome outcome = stress_twice([] { return std::make_unique<Channel<Value>>(4); }, kShape, 1);
  EXPECT_GT(outcome.producers_cancelled_in_send, 0);
  EXPECT_GT(outcome.consumers_cancelled_in_receive, 0);
}

TEST(SyncOnLoopThreads, RendezvousChannelStressWithCancellation) {
  const Outcome outcome = stress_twice([] { return std::make_unique<Channel<Value>>(0); }, kShape, 11);
  EXPECT_GT(outcome.producers_cancelled_in_send, 0);
  EXPECT_GT(outcome.consumers_cancelled_in_receive, 0);
}

TEST(SyncOnLoopThreads, UnboundedChannelStressWithCancellation) {
  // Sends never wait: producers are cancelled only at their yields.
  const Outcome outcome = stress_twice(
      [] { return std::unique_ptr<Channel<Value>>(new Channel<Value>(Channel<Value>::unbounded())); },
      kUnboundedShape, 21);
  EXPECT_GT(outcome.consumers_cancelled_in_receive, 0);
}

// ---- (b) a Mutex-protected counter

TEST(SyncOnLoopThreads, MutexCounterIsExactUnderLoopTasksThreadsAndCancellation) {
  constexpr int kTasks = 60;
  constexpr int kTaskIterations = 200;
  constexpr int kThreads = 2;
  constexpr int kThreadIterations = 3000;
  struct Tally {
    long increments = 0;  // in the same critical section as the counter
    bool cancelled_in_lock = false;
  };
  heddle::Mutex mutex;
  long counter = 0;  // under mutex
  std::atomic<long> progress{0};
  std::atomic<int> tasks_running{kTasks};
  std::vector<Tally> tallies(kTasks + kThreads);

  auto work = [&](Tally& tally, int iterations, bool in_task, int salt) {
    for (int i = 0; i < iterations; ++i) {
      if (in_task) {
        try {
          mutex.lock();
        } catch (const heddle::Cancelled&) {
          tally.cancelled_in_lock = true;
          throw;
        }
      } else {
        mutex.lock();
      }
      std::lock_guard guard(mutex, std::adopt_lock);
      ++counter;
      ++tally.increments;
      progress.fetch_add(1, std::memory_order_relaxed);
      if (in_task && (i + salt) % 4 == 0) heddle::this_task::yield();  // holding it: the others queue
      if (!in_task && (i + salt) % 64 == 0) std::this_thread::yield();
    }
  };

  heddle::Loop loop;
  std::vector<Task<void>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(loop.spawn([&, i] {
      struct Leave {
        std::atomic<int>& running;
        ~Leave() { running.fetch_sub(1); }
      } leave{tasks_running};
      work(tallies[i], kTaskIterations, true, i);
    }));
  }
  std::vector<Task<void>*> victims;
  for (auto& t : tasks) victims.push_back(&t);
  const long total = long{kTasks} * kTaskIterations + long{kThreads} * kThreadIterations;
  std::thread canceller_thread;
  auto canceller = cancel_a_third(
      loop, victims, progress, total / 2, [&tasks_running] { return tasks_running.load() > 0; }, 5,
      canceller_thread);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] { work(tallies[kTasks + t], kThreadIterations, false, t); });
  }
  loop.run();
  for (auto& t : threads) t.join();
  canceller_thread.join();
  int cancelled = 0;
  for (auto& t : tasks) cancelled += join_task(t);
  canceller.join();

  long increments = 0;
  int cancelled_in_lock = 0;
  for (const Tally& tally : tallies) {
    increments += tally.increments;
    cancelled_in_lock += tally.cancelled_in_lock;
  }
  EXPECT_EQ(counter, increments);
  EXPECT_EQ(mutex.waiters(), 0u);
  EXPECT_TRUE(mutex.try_lock());  // no cancelled waiter kept it
  mutex.unlock();
  EXPECT_GT(cancelled, 0);
  EXPECT_LE(cancelled, kTasks / 3);
  EXPECT_GT(cancelled_in_lock, 0) << "no cancellation caught a task waiting for the mutex";
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(tallies[kTasks + t].increments, kThreadIterations);
  RecordProperty("cancelled_in_lock", cancelled_in_lock);
}

// ---- (c) ping-pong between a loop task and a thread

// `shared` is a plain int handed back and forth: only the primitives order
// the two sides' accesses (TSan checks they do). Each phase has its own
// pair of primitives: with one semaphore serving both directions, the
// thread could take back the permit it had just released for the task.
TEST(SyncOnLoopThreads, EventAndSemaphorePingPongBetweenALoopTaskAndAThread) {
  constexpr int kRounds = 20000;
  // Phase 1: the task pings with an Event, the thread pongs with a Semaphore.
  heddle::Event ping1(heddle::Event::Reset::automatic);
  heddle::Semaphore pong1(0);
  // Phase 2: the task pings with a Semaphore, the thread pongs with an Event.
  heddle::Semaphore ping2(0);
  heddle::Event pong2(heddle::Event::Reset::automatic);
  int shared = 0;
  std::atomic<int> mismatches{0};
  auto expect = [&](int want) {
    if (shared != want) mismatches.fetch_add(1);
  };

  heddle::Loop loop;
  auto task = loop.spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      expect(2 * i);
      ++shared;
      ping1.set();
      pong1.acquire();
    }
    for (int i = 0; i < kRounds; ++i) {
      expect(2 * kRounds + 2 * i);
      ++shared;
      ping2.release();
      pong2.wait();
    }
  });
  std::thread peer([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping1.wait();
      expect(2 * i + 1);
      ++shared;
      pong1.release();
    }
    for (int i = 0; i < kRounds; ++i) {
      ping2.acquire();
      expect(2 * kRounds + 2 * i + 1);
      ++shared;
      pong2.set();
    }
  });
  loop.run();
  peer.join();
  task.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(shared, 4 * kRounds);
  EXPECT_FALSE(ping1.is_set());
  EXPECT_FALSE(pong2.is_set());
  EXPECT_EQ(pong1.available() + ping2.available(), 0);
}

// A thread releases permits in bursts while a loop task takes them one by
// one (parking whenever it runs short): every permit arrives once.
TEST(SyncOnLoopThreads, SemaphoreBurstsFromAThreadAreNeverLost) {
  constexpr long kPermits = 20000;
  heddle::Semaphore semaphore(0);
  long taken = 0;
  heddle::Loop loop;
  auto task = loop.spawn([&] {
    for (long i = 0; i < kPermits; ++i) semaphore.acquire();
    taken = kPermits;
  });
  std::thread peer([&] {
    std::mt19937 rng(3);
    long released = 0;
    while (released < kPermits) {
      const long burst = std::min<long>(kPermits - released, 1 + static_cast<long>(rng() % 64));
      semaphore.release(burst);
      released += burst;
      if (rng() % 4 == 0) std::this_thread::yield();
    }
  });
  loop.run();
  peer.join();
  task.join();
  EXPECT_EQ(taken, kPermits);
  EXPECT_EQ(semaphore.available(), 0);
  EXPECT_EQ(semaphore.waiters(), 0u);
}

// ---- select_on returns while its waker still writes to it (fails under TSan)
//
// A waker claims a waiter under the channel's lock, hands the value over,
// unlocks, and only then runs its Wakeup, whose first act is to store
// `true` into the waiter's WaitNode::handed_over (src/sync/wait_list.cpp,
// Wakeup::run). wait_on() waits for that flag before it returns; a select
// does not: park_thread and park_task (src/sync/channel.cpp) return through
// finish() -> withdraw(), which only takes each channel's lock in turn, and
// the waker's unlock comes before its store. So a select that learns of its
// claim other than through its Wakeup (a thread whose park returns
// spuriously and finds its state word claimed; a task claimed while still
// parking, Claim::pending, which its parking side runs at once) can return
// before the waker's store, which then lands in select_on's dead frame (its
// std::array<SelectOp>): in whatever the caller keeps there next. Nothing
// orders the store before the caller's next use of that stack, so TSan
// reports a data race every time (and sometimes in
// ChannelThreads.EachSelectCompletesExactlyOneOperation); without TSan the
// corruption needs the waker to be preempted between its unlock and its
// store, so late_writes below rarely sees it.
//   1. the victim thread selects on (receive y, receive z) and parks;
//   2. the waker sends on y: it claims the victim's node (the victim's state
//      word is now 1) and moves its value in, slowly, under y's lock;
//   3. meanwhile the victim's parker is unparked: a spurious wake-up, which
//      a Parker allows; park_thread re-checks its state word, finds it
//      claimed, and goes on to finish();
//   4. the victim withdraws from y once the waker unlocks it, and from z,
//      and select_on returns the value; the waker's Wakeup has not been
//      waited for; the victim then writes over the stack select_on used.

// A value whose first move sleeps for `delay`, after raising `moving`.
struct SlowToMove {
  std::chrono::milliseconds delay{0};
  std::atomic<bool>* moving = nullptr;
  explicit SlowToMove(std::chrono::milliseconds d, std::atomic<bool>* flag = nullptr) : delay(d), moving(flag) {}
  SlowToMove(SlowToMove&& other) noexcept
      : delay(std::exchange(other.delay, 0ms)), moving(std::exchange(other.moving, nullptr)) {
    if (moving) moving->store(true);
    if (delay > 0ms) std::this_thread::sleep_for(delay);
    delay = 0ms;
    moving = nullptr;
  }
  SlowToMove& operator=(SlowToMove&&) = delete;
};

constexpr std::size_t kScannedStack = 16 * 1024;

[[gnu::noinline]] int victim_select(Channel<SlowToMove>& y, Channel<SlowToMove>& z) {
  auto r = heddle::select_on(heddle::receive_from(y), heddle::receive_from(z));
  return static_cast<int>(r.index());
}

// Called right after victim_select from the same frame, so its array covers
// the stack select_on used: zeroes it, waits for the waker to finish, and
// counts the bytes someone else wrote into it meanwhile.
[[gnu::noinline]] std::size_t late_writes(const std::atomic<bool>& waker_done) {
  volatile unsigned char area[kScannedStack];
  for (auto& b : area) b = 0;
  while (!waker_done.load()) std::this_thread::sleep_for(1ms);
  std::size_t written = 0;
  for (auto& b : area) written += b != 0;
  return written;
}

[[gnu::noinline]] std::size_t victim(Channel<SlowToMove>& y, Channel<SlowToMove>& z,
                                     const std::atomic<bool>& waker_done) {
  EXPECT_EQ(victim_select(y, z), 0);
  return late_writes(waker_done);
}

TEST(SyncOnLoopThreads, SelectReturnsBeforeItsWakerFinishedWithIt) {
  Channel<SlowToMove> y(0), z(1);
  std::atomic<heddle::detail::Parker*> victim_parker{nullptr};
  std::atomic<bool> waker_moving{false}, waker_done{false};
  std::size_t written = 0;
  std::thread victim_thread([&] {
    victim_parker = &heddle::detail::current_parker();
    written = victim(y, z, waker_done);
  });
  while (y.receivers_waiting() == 0 || z.receivers_waiting() == 0) std::this_thread::sleep_for(100us);
  std::thread waker([&] {
    EXPECT_TRUE(y.send(SlowToMove(100ms, &waker_moving)));
    waker_done = true;
  });
  while (!waker_moving.load()) std::this_thread::sleep_for(100us);  // the victim is claimed
  victim_parker.load()->unpark();                                     // a spurious wake-up
  victim_thread.join();
  waker.join();
  EXPECT_EQ(written, 0u) << "the waker's Wakeup wrote into select_on's frame after select_on had returned";
}

}  // namespace
