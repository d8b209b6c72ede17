// The stack profile (heddle/core/stack_report.hpp): each spawn site's tasks
// and the deepest stack they used, at the precision their stacks allow; the
// JSON report read back equals stack_report(); HEDDLE_STACK_REPORT in a
// child process writes it at exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "heddle/heddle.hpp"
#include "json_document.hpp"
#include "trace_checker.hpp"  // temp_path

namespace {

using heddle::support::Json;

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
  const Json document = heddle::support::parse_json_document(text.str());
  EXPECT_EQ(document.at("heddle_stack_report").get<std::uint64_t>(), 1u);
  EXPECT_EQ(document.at("pid").get<long>(), getpid());
  const auto& read = document.at("sites");
  ASSERT_EQ(read.size(), sites.size());
  for (std::size_t i = 0; i < sites.size(); ++i) {
    const Json& site = read[i];
    EXPECT_EQ(site.at("file").get<std::string>(), sites[i].file);
    EXPECT_EQ(site.at("line").get<std::uint64_t>(), sites[i].line);
    EXPECT_EQ(site.at("function").get<std::string>(), sites[i].function);
    EXPECT_EQ(site.at("name").get<std::string>(), sites[i].name);
    EXPECT_EQ(site.at("tasks").get<std::uint64_t>(), sites[i].tasks);
    EXPECT_EQ(site.at("unmeasured").get<std::uint64_t>(), sites[i].unmeasured);
    EXPECT_EQ(site.at("high_water_bytes").get<std::uint64_t>(), sites[i].high_water);
    EXPECT_EQ(site.at("precision").get<std::string>(), sites[i].precision());
    EXPECT_EQ(site.at("granularity_bytes").get<std::uint64_t>(), sites[i].granularity);
    EXPECT_EQ(site.at("stack_bytes").get<std::uint64_t>(), sites[i].stack_bytes);
  }
  EXPECT_NE(find(sites, "json \"quoted\" \xc3\xa9"), nullptr);
}

// JSON is UTF-8: a name's well-formed UTF-8 is written as it is, every other
// byte as U+FFFD (names are any bytes, and a task's name may be cut in the
// middle of a character), so strict readers accept the report. nlohmann-json
// rejects a document with bytes that are not UTF-8.
TEST_F(StackReport, NamesThatAreNotUtf8ReadBackWithReplacementCharacters) {
  const std::string replacement = "\xef\xbf\xbd";
  const std::vector<std::pair<std::string, std::string>> written_and_read = {
      {"cut \xc3", "cut " + replacement},                          // a sequence cut short
      {"\xff\xfe stray", replacement + replacement + " stray"},     // bytes UTF-8 never has
      {"slash \xc0\xaf", "slash " + replacement + replacement},     // an overlong '/'
      {"surrogate \xed\xa0\x80", "surrogate " + replacement + replacement + replacement},
      {"tab\there \xf0\x9f\x99\x82 \xc3\xa9", "tab\there \xf0\x9f\x99\x82 \xc3\xa9"},  // kept
  };
  for (const auto& [written, read] : written_and_read) {
    heddle::spawn([] { use_stack(100); }, {.name = written.c_str()}).join();
  }
  std::ostringstream text;
  heddle::write_stack_report(text);
  const Json document = heddle::support::parse_json_document(text.str());
  std::vector<std::string> names;
  for (const Json& site : document.at("sites")) names.push_back(site.at("name").get<std::string>());
  for (const auto& [written, read] : written_and_read) {
    EXPECT_NE(std::find(names.begin(), names.end(), read), names.end()) << "no site named " << Json(read).dump();
  }
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
  const Json document = heddle::support::read_json_document(path);
  bool found = false;
  for (const Json& site : document.at("sites")) {
    if (site.at("name").get<std::string>() != "env-waiter") continue;
    found = true;
    EXPECT_EQ(site.at("tasks").get<std::uint64_t>(), 1u);
    EXPECT_NE(site.at("file").get<std::string>().find("trace_env_helper.cpp"), std::string::npos);
    EXPECT_GT(site.at("high_water_bytes").get<std::uint64_t>(), 0u);
  }
  EXPECT_TRUE(found) << "the helper's spawn site is not in the report";
  std::remove(path.c_str());
}

}  // namespace
