// The stack profile (heddle/core/stack_report.hpp): each spawn site's tasks
// and the deepest stack they used, at the precision their stacks allow; the
// JSON report read back equals stack_report(); HEDDLE_STACK_REPORT in a
// child process writes it at exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "heddle/heddle.hpp"
#include "trace_checker.hpp"  // JsonReader, read_trace (any JSON file), temp_path

namespace {

using heddle::trace_test::Json;
using heddle::trace_test::JsonReader;

// Uses about `bytes` of stack below the caller's frame: a recursion of
// 1 KiB frames (small frames, so sanitizer builds add little to each).
[[gnu::noinline]] int use_stack(std::size_t bytes) {
  volatile char frame[1024];
  frame[0] = 1;
  frame[sizeof frame - 1] = 1;
  if (bytes <= sizeof frame) return frame[0];
  return use_stack(bytes - sizeof frame) + frame[sizeof frame - 1];
}

// Turns the profile on, empty, for one test, and off again after it.
class StackReport : public ::testing::Test {
 protected:
  void SetUp() override {
    heddle::reset_stack_report();
    heddle::enable_stack_profile(true);
  }
  void TearDown() override {
    heddle::enable_stack_profile(false);
    heddle::reset_stack_report();
  }
  static const heddle::SpawnSiteStack* find(const std::vector<heddle::SpawnSiteStack>& sites, const char* name) {
    for (const auto& site : sites) {
      if (site.name == name) return &site;
    }
    return nullptr;
  }
};

TEST_F(StackReport, EachSiteGetsItsDeepestUseToTheByteOnPaintedStacks) {
  heddle::StackPool pool({.stack_bytes = 128 * 1024, .paint = true});
  for (int i = 0; i < 3; ++i) {
    heddle::spawn([i] { use_stack(static_cast<std::size_t>(i + 1) * 10 * 1024); }, {.name = "deep", .pool = &pool})
        .join();
  }
  heddle::spawn([] { use_stack(256); }, {.name = "shallow", .pool = &pool}).join();
  const auto sites = heddle::stack_report();
  const auto* deep = find(sites, "deep");
  const auto* shallow = find(sites, "shallow");
  ASSERT_NE(deep, nullptr);
  ASSERT_NE(shallow, nullptr);
  EXPECT_EQ(deep->tasks, 3u);
  EXPECT_EQ(shallow->tasks, 1u);
  EXPECT_STREQ(deep->precision(), "bytes");
  EXPECT_EQ(deep->granularity, 8u);
  // The deepest of the three (30 KiB of locals), not the last or the sum;
  // frames carry more than their locals (twice as much under sanitizers).
  EXPECT_GE(deep->high_water, 30u * 1024);
  EXPECT_LT(deep->high_water, 2 * 30u * 1024 + 8 * 1024);
  EXPECT_LT(shallow->high_water, 8u * 1024);
  EXPECT_GT(shallow->high_water, 0u);
  EXPECT_EQ(deep->stack_bytes, 128u * 1024);
  EXPECT_NE(deep->file.find("stack_report_test.cpp"), std::string::npos);
  EXPECT_GT(deep->line, 0u);
  EXPECT_LT(deep->line, shallow->line);
}

TEST_F(StackReport, UnpaintedPoolStacksAreMeasuredInWholePages) {
  heddle::StackPool pool({.stack_bytes = 128 * 1024});
  heddle::spawn([] { use_stack(20 * 1024); }, {.name = "paged", .pool = &pool}).join();
  const auto sites = heddle::stack_report();
  const auto* paged = find(sites, "paged");
  ASSERT_NE(paged, nullptr);
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  EXPECT_STREQ(paged->precision(), "pages");
  EXPECT_EQ(paged->granularity, page);
  EXPECT_EQ(paged->high_water % page, 0u);
  EXPECT_GE(paged->high_water, 20u * 1024);
}

TEST_F(StackReport, CallerStorageThatIsNotPaintedIsCountedNotSized) {
  heddle::StaticStack<64 * 1024> storage;
  heddle::spawn([] { use_stack(1024); }, {.name = "static", .stack = storage.stack()}).join();
  const auto sites = heddle::stack_report();
  const auto* site = find(sites, "static");
  ASSERT_NE(site, nullptr);
  EXPECT_EQ(site->tasks, 1u);
  EXPECT_EQ(site->unmeasured, 1u);
  EXPECT_STREQ(site->precision(), "unknown");
}

TEST_F(StackReport, AWithStackSegmentIsASiteOfItsOwn) {
  heddle::StackPool pool({.stack_bytes = 64 * 1024, .paint = true});
  heddle::spawn(
      [] {
        use_stack(512);
        // Beyond the boundary: 24 KiB on a 64 KiB segment, and twice.
        for (int i = 0; i < 2; ++i) heddle::with_stack(64 * 1024, [] { return use_stack(24 * 1024); });
      },
      {.name = "caller", .pool = &pool})
      .join();
  const auto sites = heddle::stack_report();
  const auto* caller = find(sites, "caller");
  const auto* segment = find(sites, "with_stack segment");
  ASSERT_NE(caller, nullptr);
  ASSERT_NE(segment, nullptr);
  EXPECT_EQ(segment->tasks, 2u);
  EXPECT_EQ(segment->stack_bytes, 64u * 1024);
  EXPECT_STREQ(segment->precision(), "pages");  // segment pools do not paint
  EXPECT_GE(segment->high_water, 24u * 1024);
  EXPECT_NE(segment->file.find("stack_report_test.cpp"), std::string::npos);
  EXPECT_GT(segment->line, caller->line) << "the with_stack call's line, not the spawn's";
  // The caller's own stack does not count what ran on the segment.
  EXPECT_LT(caller->high_water, 16u * 1024);
}

TEST_F(StackReport, NothingIsRecordedWhileTheProfileIsOff) {
  heddle::enable_stack_profile(false);
  EXPECT_FALSE(heddle::stack_profile_enabled());
  heddle::spawn([] { use_stack(1024); }, {.name = "unseen"}).join();
  EXPECT_EQ(find(heddle::stack_report(), "unseen"), nullptr);
}

TEST_F(StackReport, TheJsonReportReadsBackAsTheSameSites) {
  heddle::StackPool pool({.paint = true});
  heddle::spawn([] { use_stack(5000); }, {.name = "json \"quoted\" \xc3\xa9", .pool = &pool}).join();
  heddle::spawn([] { use_stack(100); }, {.pool = &pool}).join();  // no name
  const auto sites = heddle::stack_report();
  std::ostringstream text;
  heddle::write_stack_report(text);
  const Json document = JsonReader(text.str()).document();
  EXPECT_EQ(document["heddle_stack_report"].number(), 1);
  EXPECT_EQ(document["pid"].number(), getpid());
  const auto& read = document["sites"].array();
  ASSERT_EQ(read.size(), sites.size());
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const Json& site = read[i];
    EXPECT_EQ(site["file"].string(), sites[i].file);
    EXPECT_EQ(site["line"].number(), sites[i].line);
    EXPECT_EQ(site["function"].string(), sites[i].function);
    EXPECT_EQ(site["name"].string(), sites[i].name);
    EXPECT_EQ(site["tasks"].number(), sites[i].tasks);
    EXPECT_EQ(site["unmeasured"].number(), sites[i].unmeasured);
    EXPECT_EQ(site["high_water_bytes"].number(), sites[i].high_water);
    EXPECT_EQ(site["precision"].string(), sites[i].precision());
    EXPECT_EQ(site["granularity_bytes"].number(), sites[i].granularity);
    EXPECT_EQ(site["stack_bytes"].number(), sites[i].stack_bytes);
  }
  EXPECT_NE(find(sites, "json \"quoted\" \xc3\xa9"), nullptr);
}

TEST_F(StackReport, AFileThatCannotBeWrittenIsAClearError) {
  try {
    heddle::write_stack_report(std::string("/nonexistent-directory/report.json"));
    FAIL() << "wrote to a directory that does not exist";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), ENOENT);
    EXPECT_NE(std::string(e.what()).find("/nonexistent-directory/report.json"), std::string::npos) << e.what();
  }
}

// HEDDLE_STACK_REPORT=<file> profiles a whole run of another program (the
// trace tests' helper, which spawns "env-waiter") and writes at its exit.
TEST(StackReportEnvironment, TheVariableWritesTheReportAtExit) {
  const std::string path = heddle::trace_test::temp_path("heddle-stack-report-env");
  std::remove(path.c_str());
  const std::string command = "HEDDLE_STACK_REPORT='" + path + "' " + HEDDLE_STACK_REPORT_ENV_EMULATOR + " '" +
                              HEDDLE_STACK_REPORT_ENV_HELPER + "' 2>&1";
  std::FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr) << std::strerror(errno);
  std::string output;
  char chunk[512];
  while (std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe)) output.append(chunk, n);
  const int status = pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << output;
  const Json document = heddle::trace_test::read_trace(path);
  bool found = false;
  for (const Json& site : document["sites"].array()) {
    if (site["name"].string() != "env-waiter") continue;
    found = true;
    EXPECT_EQ(site["tasks"].number(), 1);
    EXPECT_NE(site["file"].string().find("trace_env_helper.cpp"), std::string::npos);
    EXPECT_GT(site["high_water_bytes"].number(), 0);
  }
  EXPECT_TRUE(found) << "the helper's spawn site is not in the report";
  std::remove(path.c_str());
}

}  // namespace
