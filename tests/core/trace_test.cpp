// Tracing on one thread: the file is valid Chrome trace-event JSON whose
// slices nest and match; the known tasks' spawn, suspend (with its leaf),
// resume, cancel and finish are there in order; off records nothing;
// start/stop repeat; a full ring drops its oldest events and says how many;
// bad paths are clear errors; HEDDLE_TRACE works from the environment.
// (trace_threads_test.cpp has the cases with several threads.)
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/core/detail/trace_hooks.hpp"
#include "heddle/core/suspend.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/trace.hpp"
#include "heddle/sync/event.hpp"
#include "trace_checker.hpp"

namespace heddle {
namespace {

using trace_test::check_trace;
using trace_test::joined;
using trace_test::read_trace;
using trace_test::Seen;
using trace_test::temp_path;

#define SKIP_WITHOUT_TRACING() \
  if (!trace::compiled_in) GTEST_SKIP() << "heddle built with HEDDLE_WITH_TRACE=OFF"

TEST(Trace, ABoundedTasksEventsAreRecordedFromOffItsStack) {
  // A task on a bounded stack records its events on the thread's unwind
  // stack (trace_record, through run_off_task_stack): the same events.
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-bounded");
  StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
  trace::start(path);
  Event event;
  auto waiter = spawn([&] { event.wait(); }, {.name = "bounded-waiter", .pool = &bounded});
  const std::uint64_t waiter_id = waiter.id();
  event.set();
  waiter.join();
  trace::stop();
  const Seen seen = check_trace(read_trace(path));
  EXPECT_EQ(joined(seen.by_task.at(waiter_id)), "spawn B E:heddle::sync wait B finish");
  EXPECT_EQ(seen.slice_name.at(waiter_id), "bounded-waiter");
  std::remove(path.c_str());
}

TEST(Trace, RecordsSpawnSuspendResumeCancelAndFinishInOrder) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace");
  trace::start(path);
  EXPECT_TRUE(trace::enabled());
  Event event;
  auto waiter = spawn([&] { event.wait(); }, {.name = "waiter"});
  auto victim = spawn([] { Event().wait(); }, {.name = "victim"});
  Resumer parked;
  auto plain = spawn([&] { suspend([&](const Resumer& r) { parked = r; }); });  // no name, no leaf
  const std::uint64_t waiter_id = waiter.id(), victim_id = victim.id(), plain_id = plain.id();  // join clears them
  event.set();  // resumes the waiter inline, here
  victim.cancel();
  parked.resume();
  waiter.join();
  EXPECT_THROW(victim.join(), Cancelled);
  plain.join();
  trace::stop();
  EXPECT_FALSE(trace::enabled());

  const Seen seen = check_trace(read_trace(path));
  EXPECT_EQ(joined(seen.by_task.at(waiter_id)), "spawn B E:heddle::sync wait B finish");
  EXPECT_EQ(joined(seen.by_task.at(victim_id)), "spawn B E:heddle::sync wait cancel B finish");
  EXPECT_EQ(joined(seen.by_task.at(plain_id)), "spawn B E:parked B finish");
  EXPECT_EQ(seen.slice_name.at(waiter_id), "waiter");
  EXPECT_EQ(seen.slice_name.at(plain_id), "task " + std::to_string(plain_id));
  EXPECT_NE(seen.spawn_site.at(waiter_id).find("trace_test.cpp:"), std::string::npos)
      << seen.spawn_site.at(waiter_id);
  EXPECT_EQ(seen.by_task.size(), 3u);
  std::remove(path.c_str());
}

// A task that spawns a child stays switched in underneath it (eager spawn
// runs the child at once, inline): the child's slice nests in the parent's,
// and the parent's own suspension afterwards is still recorded with its leaf.
TEST(Trace, ASpawnedChildNestsInItsParentsSlice) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-nest");
  trace::start(path);
  Event child_may_finish, parent_may_finish;
  std::uint64_t child_id = 0;
  auto parent = spawn(
      [&] {
        auto child = spawn([&] { child_may_finish.wait(); }, {.name = "child"});
        child_id = child.id();
        parent_may_finish.wait();
        child.join();
      },
      {.name = "parent"});
  const std::uint64_t parent_id = parent.id();
  child_may_finish.set();
  parent_may_finish.set();
  parent.join();
  trace::stop();

  const Seen seen = check_trace(read_trace(path));
  EXPECT_EQ(seen.deepest_nesting, 2);
  EXPECT_EQ(joined(seen.by_task.at(parent_id)), "spawn B E:heddle::sync wait B finish");
  EXPECT_EQ(joined(seen.by_task.at(child_id)), "spawn B E:heddle::sync wait B finish");
  std::remove(path.c_str());
}

TEST(Trace, OffRecordsNothing) {
  EXPECT_FALSE(trace::enabled());
  EXPECT_EQ(detail::trace_events_held(), 0u);
  Event event;
  auto waiter = spawn([&] { event.wait(); }, {.name = "untraced"});
  auto victim = spawn([] { Event().wait(); });
  event.set();
  victim.cancel();
  waiter.join();
  EXPECT_THROW(victim.join(), Cancelled);
  EXPECT_EQ(detail::trace_events_held(), 0u) << "events were recorded while tracing was off";
}

TEST(Trace, StartAndStopRepeat) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-repeat");
  std::uint64_t previous = 0;
  for (int round = 0; round < 2; ++round) {
    trace::start(path);
    EXPECT_THROW(trace::start(path), std::logic_error);
    auto task = spawn([] {});
    const std::uint64_t id = task.id();
    task.join();
    trace::stop();
    trace::stop();  // a no-op when off
    EXPECT_FALSE(trace::enabled());
    EXPECT_EQ(detail::trace_events_held(), 0u) << "writing the file empties the rings";
    const Seen seen = check_trace(read_trace(path));
    EXPECT_EQ(seen.by_task.size(), 1u) << "each start begins afresh";
    EXPECT_EQ(joined(seen.by_task.at(id)), "spawn B finish");
    EXPECT_EQ(seen.by_task.count(previous), 0u);
    previous = id;
  }
  std::remove(path.c_str());
}

TEST(Trace, AnUncreatablePathIsAClearErrorAndTracingStaysOff) {
  SKIP_WITHOUT_TRACING();
  const std::string bad = "/nonexistent-directory/heddle-trace.json";
  try {
    trace::start(bad);
    ADD_FAILURE() << "start should have thrown";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find(bad), std::string::npos) << error.what();
    EXPECT_EQ(error.code(), std::errc::no_such_file_or_directory) << error.what();
  }
  EXPECT_FALSE(trace::enabled());
  spawn([] {}).join();
  EXPECT_EQ(detail::trace_events_held(), 0u);
}

TEST(Trace, AFailedWriteIsAClearError) {
  SKIP_WITHOUT_TRACING();
  if (std::FILE* full = std::fopen("/dev/full", "w")) {
    std::fclose(full);
  } else {
    GTEST_SKIP() << "no /dev/full";
  }
  trace::start("/dev/full");  // opens; every write fails with ENOSPC
  spawn([] {}).join();
  try {
    trace::stop();
    ADD_FAILURE() << "stop should have thrown";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("/dev/full"), std::string::npos) << error.what();
  }
  EXPECT_FALSE(trace::enabled());
  EXPECT_EQ(detail::trace_events_held(), 0u);
}

// The ring keeps the newest 65,536 events of a thread. An empty task's
// spawn + join records exactly three (spawn, resume, finish), so the count
// dropped is known.
TEST(Trace, AFullRingDropsTheOldestEventsAndSaysHowMany) {
  SKIP_WITHOUT_TRACING();
  constexpr std::uint64_t kRing = 65536;
  constexpr std::uint64_t kTasks = 25000;
  const std::string path = temp_path("heddle-trace-full");
  trace::start(path);
  std::uint64_t first = 0, last = 0;
  for (std::uint64_t i = 0; i < kTasks; ++i) {
    auto task = spawn([] {});
    if (i == 0) first = task.id();
    last = task.id();
    task.join();
  }
  EXPECT_EQ(detail::trace_events_held(), kRing);
  trace::stop();
  const trace_test::Json trace = read_trace(path);
  EXPECT_EQ(trace.at("otherData").at("dropped_events").get<std::uint64_t>(), 3 * kTasks - kRing);
  const Seen seen = check_trace(trace);
  EXPECT_EQ(seen.events, kRing - 1) << "all but the oldest kept event, a finish whose begin was dropped";
  EXPECT_EQ(seen.by_task.count(first), 0u) << "the oldest events are the ones dropped";
  EXPECT_EQ(joined(seen.by_task.at(last)), "spawn B finish");
  std::remove(path.c_str());
}

// HEDDLE_TRACE=<file>, in a child process (trace_env_helper.cpp): tracing
// starts at load and the file is written at exit; a bad path is reported on
// stderr, naming it, and the program runs on.
struct ChildRun {
  int status = -1;
  std::string output;  // stdout and stderr
};

ChildRun run_helper(const std::string& trace_value) {
  std::string command = "HEDDLE_TRACE='" + trace_value + "' " + HEDDLE_TRACE_ENV_EMULATOR + " '" +
                        HEDDLE_TRACE_ENV_HELPER + "' 2>&1";
  ChildRun run;
  std::FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) throw std::system_error(errno, std::generic_category(), "popen");
  char chunk[512];
  while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) run.output.append(chunk, n);
  run.status = pclose(pipe);
  return run;
}

TEST(Trace, TheEnvironmentVariableTracesAWholeRun) {
  SKIP_WITHOUT_TRACING();
  const std::string path = temp_path("heddle-trace-env");
  std::remove(path.c_str());
  const ChildRun run = run_helper(path);
  ASSERT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.output;
  const Seen seen = check_trace(read_trace(path), 0);
  bool found = false;
  for (const auto& [id, name] : seen.slice_name) {
    if (name != "env-waiter") continue;
    found = true;
    EXPECT_EQ(joined(seen.by_task.at(id)), "spawn B E:heddle::sync wait B finish");
  }
  EXPECT_TRUE(found) << "the helper's task is not in the file";
  std::remove(path.c_str());
}

TEST(Trace, ABadEnvironmentPathIsReportedAndTheProgramRunsOn) {
  SKIP_WITHOUT_TRACING();
  const std::string bad = "/nonexistent-directory/heddle-env-trace.json";
  const ChildRun run = run_helper(bad);
  EXPECT_TRUE(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0) << run.output;
  EXPECT_NE(run.output.find("HEDDLE_TRACE=" + bad), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("not tracing"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("helper done"), std::string::npos) << run.output;
}

TEST(Trace, WithoutTracingStartSaysSo) {
  if (trace::compiled_in) GTEST_SKIP() << "tracing is built in";
  EXPECT_THROW(trace::start(temp_path("heddle-trace-none")), std::runtime_error);
  EXPECT_FALSE(trace::enabled());
}

}  // namespace
}  // namespace heddle
