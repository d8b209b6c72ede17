// StackPool under concurrent acquire and release (run under TSan too).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "heddle/stack/stack.hpp"

namespace heddle {
namespace {

// Each thread stamps every stack it holds with its own id, and checks the
// stamp is still there before giving it back: a stack handed to two owners at
// once shows up as an overwritten stamp.
void churn(StackPool& pool, unsigned id, int rounds, std::atomic<int>& stolen) {
  std::vector<Stack> held;
  for (int round = 0; round < rounds; ++round) {
    for (int i = 0; i < 4; ++i) {
      Stack stack = pool.acquire();
      std::memcpy(stack.high() - sizeof id, &id, sizeof id);
      held.push_back(stack);
    }
    for (const Stack& stack : held) {
      unsigned stamp;
      std::memcpy(&stamp, stack.high() - sizeof stamp, sizeof stamp);
      if (stamp != id || !canary_intact(stack)) stolen.fetch_add(1, std::memory_order_relaxed);
      pool.release(stack);
    }
    held.clear();
  }
}

TEST(StackPoolThreads, NoStackHasTwoOwners) {
  for (StackPool::Guard guard : {StackPool::Guard::automatic, StackPool::Guard::never}) {
    StackPool pool(StackPool::Options{.stack_bytes = 16 * 1024, .max_resident_idle = 3, .guard = guard});
    std::atomic<int> stolen{0};
    std::vector<std::thread> threads;
    for (unsigned id = 1; id <= 4; ++id) threads.emplace_back(churn, std::ref(pool), id, 2000, std::ref(stolen));
    for (std::thread& thread : threads) thread.join();
    EXPECT_EQ(stolen.load(), 0);
    StackPool::Stats stats = pool.stats();
    EXPECT_EQ(stats.live, 0u);
    EXPECT_EQ(stats.idle, stats.guarded_created + stats.canary_created);
    EXPECT_LE(stats.idle, 16u);
  }
}

}  // namespace
}  // namespace heddle
