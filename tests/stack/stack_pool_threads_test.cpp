// StackPool under concurrent acquire and release (run under TSan too), and
// the default pool's per-thread caches across thread exit.
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

// The default pool's per-thread caches: a thread's cached stacks count as
// idle while it lives and go back to the free list when it exits, so the
// stacks counted live after a thread is joined are those still handed out.
std::size_t live_default_stacks() { return StackPool::default_pool().stats().live; }

// Fills the default pool's free list with resident stacks, so that the
// next thread to acquire one refills its cache from there.
void warm_default_pool() {
  std::thread([] {
    std::vector<Stack> held;
    for (int i = 0; i < 32; ++i) held.push_back(StackPool::default_pool().acquire());
    for (const Stack& stack : held) StackPool::default_pool().release(stack);
  }).join();
}

// Starts and joins a few threads that do nothing. glibc gives a new thread
// the stack, and so the static TLS, of one joined before: a cache that a
// dead thread left registered would then read as empty (or worse).
void reuse_dead_threads_tls() {
  for (int i = 0; i < 4; ++i) std::thread([] {}).join();
}

TEST(DefaultPoolThreadCache, ThreadThatOnlyAcquiresLeavesNothingBehind) {
  warm_default_pool();
  const std::size_t before = live_default_stacks();
  // The thread's first acquire refills its cache from the free list; the
  // stack it took is released here, so the thread itself never releases.
  Stack taken;
  std::thread([&taken] { taken = StackPool::default_pool().acquire(); }).join();
  StackPool::default_pool().release(taken);
  reuse_dead_threads_tls();
  EXPECT_EQ(live_default_stacks(), before);
}

// Built before the thread's stack cache is first used, so destroyed after
// the cache's thread-exit flush has run; it then acquires and releases
// default-pool stacks, as a thread_local that holds tasks or stacks may.
struct ReleasesAtThreadExit {
  std::vector<Stack> held;
  ~ReleasesAtThreadExit() {
    StackPool& pool = StackPool::default_pool();
    held.push_back(pool.acquire());
    held.push_back(pool.acquire());
    for (const Stack& stack : held) pool.release(stack);
  }
};

TEST(DefaultPoolThreadCache, ReleasesAfterTheExitFlushLeaveNoCacheBehind) {
  warm_default_pool();
  const std::size_t before = live_default_stacks();
  for (int round = 0; round < 3; ++round) {
    std::thread([] {
      static thread_local ReleasesAtThreadExit late;
      StackPool& pool = StackPool::default_pool();
      late.held.push_back(pool.acquire());
      Stack cached = pool.acquire();
      pool.release(cached);  // arms the flush: after `late`, so it runs first
    }).join();
    reuse_dead_threads_tls();
    EXPECT_EQ(live_default_stacks(), before) << "after thread " << round;
  }
}

}  // namespace
}  // namespace heddle
