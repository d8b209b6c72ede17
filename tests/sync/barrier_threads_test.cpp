// Barrier between threads and tasks: phases across threads, and the
// cancellation rule under random cancels racing with phase completion.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/barrier.hpp"

namespace {

using namespace std::chrono_literals;

void pass_phases_together(int thread_count, int task_count) {
  constexpr int kPhases = 100;
  heddle::Barrier barrier(thread_count + task_count);
  std::atomic<int> arrivals[kPhases] = {};
  std::atomic<int> early{0};
  auto run = [&] {
    for (int phase = 0; phase < kPhases; ++phase) {
      arrivals[phase].fetch_add(1);
      barrier.arrive_and_wait();
      if (arrivals[phase].load() != thread_count + task_count) early.fetch_add(1);
    }
  };
  std::vector<heddle::Task<void>> tasks;
  for (int i = 0; i < task_count; ++i) tasks.push_back(heddle::spawn(run));
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_count; ++i) threads.emplace_back(run);
  for (auto& t : threads) t.join();
  for (auto& t : tasks) t.join();
  EXPECT_EQ(early.load(), 0);
  EXPECT_EQ(barrier.phase(), static_cast<std::uint64_t>(kPhases));
}

TEST(BarrierThreads, ThreadsPassPhasesTogether) { pass_phases_together(4, 0); }
TEST(BarrierThreads, ThreadsAndTasksPassPhasesTogether) { pass_phases_together(3, 5); }

// Two threads and one "seat" filled by a task pass kPhases phases. The
// seat's task is often cancelled while it waits, at random moments, also
// just as a thread's arrival completes the phase (the retry path in
// Barrier::release_phase); a cancelled one is replaced by a new task. Every phase must have been released with a live
// seat task in it: exactly kPhases seat tasks return normally.
TEST(BarrierThreads, RandomCancellationsNeverReleaseAPhaseWithAWithdrawnArrival) {
  constexpr int kPhases = 300;
  heddle::Barrier barrier(3);
  std::atomic<int> released_seats{0};
  std::atomic<int> threads_done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      for (int phase = 0; phase < kPhases; ++phase) {
        // The seat usually arrives first, and waits: on every other phase
        // long enough for a cancel to catch it there, otherwise briefly so
        // that cancels race with the threads' arrivals.
        std::this_thread::sleep_for(phase % 2 == 0 ? 300us : 20us);
        barrier.arrive_and_wait();
      }
      threads_done.fetch_add(1);
    });
  }
  std::mt19937 random(12345);
  int cancelled = 0;
  while (released_seats.load() < kPhases) {
    auto seat = heddle::spawn([&] {
      barrier.arrive_and_wait();
      released_seats.fetch_add(1);
    });
    switch (random() % 4) {
      case 0: {  // at a random moment
        const int spins = static_cast<int>(random() % 20000);
        for (int s = 0; s < spins; ++s) std::atomic_signal_fence(std::memory_order_seq_cst);
        seat.cancel();
        break;
      }
      case 1:  // just as the first thread has arrived: races with the second
        while (barrier.waiters() < 2 && !seat.finished()) {
        }
        seat.cancel();
        break;
      default:
        break;
    }
    // Had a phase been released without its seat, the threads would finish
    // early and this seat would wait for ever: stop it and fail instead.
    while (!seat.finished() && threads_done.load() < 2) std::this_thread::yield();
    if (!seat.finished()) {
      seat.cancel();
      ADD_FAILURE() << "the threads finished their phases with only " << released_seats.load() << " seats released";
    }
    try {
      seat.join();
    } catch (const heddle::Cancelled&) {
      ++cancelled;
    }
    if (threads_done.load() == 2 && released_seats.load() < kPhases) break;
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(released_seats.load(), kPhases);
  EXPECT_EQ(barrier.phase(), static_cast<std::uint64_t>(kPhases));
  EXPECT_EQ(barrier.waiters(), 0u);
  EXPECT_GT(cancelled, 0);
}

}  // namespace
