// dump_tasks: every live task with its state, leaf, spawn site, stack and a
// symbolised backtrace; finished tasks gone; corrupt frame chains survived;
// ten thousand parked tasks. (The signal and the threads: dump_signal_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/core/dump.hpp"
#include "heddle/heddle.hpp"

namespace {

using heddle::Resumer;

std::string dump() {
  std::ostringstream out;
  heddle::dump_tasks(out);
  return out.str();
}

// The block of one task in a dump, found by its (unique) name; "" if absent.
std::string section(const std::string& text, const std::string& name) {
  const std::size_t start = text.find("\"" + name + "\": ");
  if (start == std::string::npos) return "";
  const std::size_t line = text.rfind('\n', start);
  const std::size_t from = line == std::string::npos ? 0 : line + 1;
  std::size_t end = text.find("\ntask ", start);
  const std::size_t footer = text.find("\nheddle: ", start);
  end = std::min(end, footer);
  return text.substr(from, end == std::string::npos ? std::string::npos : end + 1 - from);
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t count = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++count;
  return count;
}

// Not inlined, with a name nothing else has: the backtrace must show it.
__attribute__((noinline)) void dump_test_distinctive_waiting_function(heddle::Event& event) {
  event.wait();
  asm volatile("");  // keeps the call above from becoming a tail call
}

__attribute__((noinline)) void dump_test_parks_plainly(Resumer& slot) {
  heddle::suspend([&](const Resumer& r) { slot = r; });
  asm volatile("");
}

TEST(Dump, ParkedTaskShowsNameStateLeafSpawnSiteStackAndBacktrace) {
  heddle::Event event;
  const unsigned spawn_line = __LINE__ + 1;
  auto task = heddle::spawn([&] { dump_test_distinctive_waiting_function(event); }, {.name = "dump-parked"});
  const std::string text = dump();
  const std::string block = section(text, "dump-parked");
  ASSERT_FALSE(block.empty()) << text;
  EXPECT_NE(block.find("task " + std::to_string(task.id()) + " \"dump-parked\": parked at heddle::sync wait\n"),
            std::string::npos)
      << block;
  EXPECT_NE(block.find("spawned at "), std::string::npos) << block;
  EXPECT_NE(block.find("dump_test.cpp:" + std::to_string(spawn_line)), std::string::npos) << block;
  EXPECT_NE(block.find("stack: guarded, 65536 bytes, high water "), std::string::npos) << block;
  EXPECT_NE(block.find("dump_test_distinctive_waiting_function"), std::string::npos) << block;
  EXPECT_NE(block.find("heddle::Event::wait"), std::string::npos) << block;
  EXPECT_NE(block.find("#0  0x"), std::string::npos) << block;
  event.set();
  task.join();
}

TEST(Dump, PlainSuspendIsParkedWithoutALeaf) {
  Resumer parked;
  auto task = heddle::spawn([&] { dump_test_parks_plainly(parked); }, {.name = "dump-plain"});
  const std::string block = section(dump(), "dump-plain");
  EXPECT_NE(block.find("\"dump-plain\": parked\n"), std::string::npos) << block;
  EXPECT_NE(block.find("dump_test_parks_plainly"), std::string::npos) << block;
  ASSERT_TRUE(parked.resume());
  task.join();
}

TEST(Dump, JoinAndTaskGroupWaitsNameTheirLeaves) {
  heddle::Event event;
  auto child = heddle::spawn([&] { event.wait(); }, {.name = "dump-child"});
  auto joiner = heddle::spawn([&] { child.join(); }, {.name = "dump-joiner"});
  auto group_owner = heddle::spawn(
      [&] {
        heddle::TaskGroup group;
        group.spawn([&] { event.wait(); });
        group.wait();
      },
      {.name = "dump-group-owner"});
  const std::string text = dump();
  EXPECT_NE(section(text, "dump-joiner").find("parked at heddle::Task::join\n"), std::string::npos) << text;
  EXPECT_NE(section(text, "dump-group-owner").find("parked at heddle::TaskGroup::wait\n"), std::string::npos)
      << text;
  event.set();
  joiner.join();
  group_owner.join();
}

TEST(Dump, JoinArmsShowTheirNamesAndTheCallersSite) {
  heddle::Event event;
  unsigned join_line = 0;
  auto owner = heddle::spawn(
      [&] {
        join_line = __LINE__ + 1;
        heddle::join([&] { event.wait(); }, [&] { event.wait(); });
      },
      {.name = "dump-join-owner"});
  const std::string text = dump();
  for (const char* arm : {"join arm 0", "join arm 1"}) {
    const std::string block = section(text, arm);
    ASSERT_FALSE(block.empty()) << arm << " missing:\n" << text;
    const std::size_t at = block.find("spawned at ");
    ASSERT_NE(at, std::string::npos) << block;
    const std::string spawned = block.substr(at, block.find('\n', at) - at);
    EXPECT_NE(spawned.find("dump_test.cpp:" + std::to_string(join_line) + " "), std::string::npos) << spawned;
  }
  event.set();
  owner.join();
}

TEST(Dump, FinishedTaskNoLongerAppears) {
  Resumer parked;
  auto task = heddle::spawn([&] { dump_test_parks_plainly(parked); }, {.name = "dump-finishes"});
  EXPECT_FALSE(section(dump(), "dump-finishes").empty());
  ASSERT_TRUE(parked.resume());
  ASSERT_TRUE(task.finished());
  EXPECT_TRUE(section(dump(), "dump-finishes").empty()) << "finished but not yet joined: not live";
  task.join();
  EXPECT_TRUE(section(dump(), "dump-finishes").empty());
}

TEST(Dump, CancelRequestedShowsOnAnUninterruptiblyParkedTask) {
  Resumer parked;
  auto task = heddle::spawn([&] { heddle::suspend_uninterruptible([&](const Resumer& r) { parked = r; }); },
                            {.name = "dump-cancelled"});
  task.cancel();  // uninterruptible: it stays parked, the request is recorded
  const std::string block = section(dump(), "dump-cancelled");
  EXPECT_NE(block.find("\"dump-cancelled\": parked, cancel requested, uninterruptible\n"), std::string::npos)
      << block;
  ASSERT_TRUE(parked.resume());
  task.join();
}

TEST(Dump, RunningTaskIsOnThisThreadAndHasNoBacktrace) {
  std::string block;
  auto task = heddle::spawn(
      [&] {
        heddle::this_task::cancel();
        block = section(dump(), "dump-running");
      },
      {.name = "dump-running"});
  task.join();
  EXPECT_NE(block.find("\"dump-running\": running on thread "), std::string::npos) << block;
  EXPECT_NE(block.find("(this thread: the one dumping), cancel requested\n"), std::string::npos) << block;
  EXPECT_EQ(block.find("#0"), std::string::npos) << block;
}

TEST(Dump, YieldedLoopTaskIsRunnable) {
  heddle::Loop loop;
  bool stop = false;
  // The loop belongs to this thread until run(): the spawn runs the task at
  // once, and its yield puts it back on the loop's queue.
  auto task = loop.spawn(
      [&] {
        while (!stop) heddle::this_task::yield();
      },
      {.name = "dump-runnable"});
  const std::string block = section(dump(), "dump-runnable");
  EXPECT_NE(block.find("\"dump-runnable\": runnable\n"), std::string::npos) << block;
  stop = true;
  loop.run();
  task.join();
}

TEST(Dump, SpawnThatFailsBeforeStartingLeavesNoTask) {
  alignas(16) static std::byte storage[4096];
  struct TooBig {
    std::array<char, 8192> bytes{};
    void operator()() const {}
  };
  EXPECT_THROW(
      (void)heddle::spawn(TooBig{}, {.name = "dump-never-started", .stack = heddle::stack_from_span(storage)}),
      std::invalid_argument);
  EXPECT_TRUE(section(dump(), "dump-never-started").empty());
}

TEST(Dump, CorruptFrameChainsEndTheWalkWithoutACrash) {
  Resumer parked;
  auto task = heddle::spawn([&] { dump_test_parks_plainly(parked); }, {.name = "dump-corrupt"});
  auto* frame = static_cast<heddle::arch::SwitchFrame*>(task.control()->saved_sp);
#if defined(__x86_64__)
  std::uint64_t& fp = frame->rbp;
#else
  std::uint64_t& fp = frame->frame_pointer;
#endif
  const std::uint64_t saved = fp;
  const auto self_loop = reinterpret_cast<std::uint64_t>(frame);  // a record that points at itself
  for (std::uint64_t bad : {std::uint64_t{0xdead'beef'0000}, std::uint64_t{8}, self_loop, ~std::uint64_t{0} - 7,
                            reinterpret_cast<std::uint64_t>(task.stack().low) - 64, saved + 1}) {
    fp = bad;
    const std::string block = section(dump(), "dump-corrupt");
    EXPECT_NE(block.find("\"dump-corrupt\": parked\n"), std::string::npos) << block;
    EXPECT_NE(block.find("#0  0x"), std::string::npos) << block;
  }
  fp = saved;
  EXPECT_NE(section(dump(), "dump-corrupt").find("dump_test_parks_plainly"), std::string::npos);
  ASSERT_TRUE(parked.resume());
  task.join();
}

TEST(Dump, TenThousandParkedTasks) {
  constexpr int kTasks = 10'000;
  heddle::StackPool pool(
      heddle::StackPool::Options{.stack_bytes = 32 * 1024, .guard = heddle::StackPool::Guard::never});
  heddle::Event event;
  std::vector<heddle::Task<void>> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(heddle::spawn([&] { dump_test_distinctive_waiting_function(event); },
                                  {.name = "dump-many", .pool = &pool}));
  }
  const auto start = std::chrono::steady_clock::now();
  std::ostringstream out;
  const std::size_t shown = heddle::dump_tasks(out);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string text = out.str();
  EXPECT_GE(shown, static_cast<std::size_t>(kTasks));
  EXPECT_EQ(count_of(text, "\"dump-many\": parked at heddle::sync wait\n"), static_cast<std::size_t>(kTasks));
  EXPECT_EQ(count_of(text, "dump_test_distinctive_waiting_function"), static_cast<std::size_t>(kTasks));
  EXPECT_LT(seconds, 30.0) << "dumping " << kTasks << " parked tasks took " << seconds << " s";
  std::printf("dumped %d parked tasks in %.3f s (%zu bytes of text)\n", kTasks, seconds, text.size());
  event.set();
  for (auto& task : tasks) task.join();
}

}  // namespace
