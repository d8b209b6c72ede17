// Pool and the default StackPool: once a Pool has shut down, every stack its
// tasks used is back in the default pool (on its free list, or in the cache
// of a thread that is still alive), whatever the tasks did and however many
// workers ran them.
#include <gtest/gtest.h>

#include <cstddef>

#include "heddle/sched/pool.hpp"
#include "heddle/stack/stack.hpp"
#include "heddle/sync/event.hpp"

namespace heddle {
namespace {

long fib_tasks(long n) {
  if (n < 2) return n;
  auto a = spawn([n] { return fib_tasks(n - 1); });
  auto b = spawn([n] { return fib_tasks(n - 2); });
  return a.join() + b.join();
}

std::size_t live_default_stacks() { return StackPool::default_pool().stats().live; }

class PoolStacks : public ::testing::TestWithParam<int> {};

// Stacks cached by a worker when it exits go back to the free list: none is
// counted live after shutdown. Repeated, since a stack stranded by one pool
// showed up only as a count that grew with every pool after it.
TEST_P(PoolStacks, AllStacksReturnAfterShutdown) {
  const std::size_t before = live_default_stacks();
  for (int round = 0; round < 5; ++round) {
    {
      Pool pool(static_cast<std::size_t>(GetParam()));
      EXPECT_EQ(pool.run([] { return fib_tasks(14); }), 377);
      // Detached tasks finish on the workers, and tasks still parked at
      // shutdown are cancelled and unwind there.
      for (int i = 0; i < 32; ++i) pool.spawn([] { return fib_tasks(6); }).detach();
      Event never;
      for (int i = 0; i < 8; ++i) pool.spawn([&never] { never.wait(); }).detach();
      pool.shutdown();
    }
    EXPECT_EQ(live_default_stacks(), before) << "after pool " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, PoolStacks, ::testing::Values(2, 8));

}  // namespace
}  // namespace heddle
