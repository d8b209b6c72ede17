// The exception that ends a detached task (core/unhandled_exception.hpp):
// the default handler's line on stderr, a replaced handler, Cancelled
// never reported. With no scheduler here; on a Loop in tests/sched.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/core/suspend.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/unhandled_exception.hpp"

namespace {

struct Seen {
  std::uint64_t task_id;
  std::string task_name;
  std::string spawn_file;
  unsigned spawn_line;
  std::string what;
};

std::vector<Seen>& seen() {
  static std::vector<Seen> reports;
  return reports;
}

void record(const heddle::UnhandledException& unhandled) {
  Seen s{unhandled.task_id, unhandled.task_name, unhandled.spawn_site.file_name(), unhandled.spawn_site.line(),
         "(not a std::exception)"};
  try {
    std::rethrow_exception(unhandled.exception);
  } catch (const std::exception& error) {
    s.what = error.what();
  } catch (...) {
  }
  seen().push_back(s);
}

// Installs `record` for one test and puts the previous handler back.
class UnhandledException : public ::testing::Test {
 protected:
  void SetUp() override {
    seen().clear();
    previous_ = heddle::set_unhandled_exception_handler(&record);
  }
  void TearDown() override { heddle::set_unhandled_exception_handler(previous_); }
  heddle::UnhandledExceptionHandler previous_ = nullptr;
};

// Parks the running task until the returned Resumer is used.
void park(heddle::Resumer& slot) {
  heddle::suspend([&](const heddle::Resumer& r) { slot = r; });
}

TEST(UnhandledExceptionDefault, WritesOneLineNamingTheTaskAndWhat) {
  EXPECT_EQ(heddle::unhandled_exception_handler(), &heddle::default_unhandled_exception_handler);
  heddle::Resumer later;
  testing::internal::CaptureStderr();
  // Finished before detach(): reported by detach().
  const unsigned line = __LINE__ + 1;
  heddle::spawn([] { throw std::runtime_error("boom"); }, {.name = "thrower"}).detach();
  // Detached while parked, then ends: reported when it finishes.
  heddle::spawn(
      [&] {
        park(later);
        throw 42;
      },
      {.name = "later"})
      .detach();
  later.resume();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("heddle: detached task "), std::string::npos) << err;
  EXPECT_NE(err.find("\"thrower\" spawned at " + std::string(__FILE__) + ":" + std::to_string(line) +
                     " ended with an exception: boom\n"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("\"later\" spawned at " + std::string(__FILE__) + ":"), std::string::npos) << err;
  EXPECT_NE(err.find(" ended with an unknown exception\n"), std::string::npos) << err;
}

TEST_F(UnhandledException, AReplacedHandlerReceivesTheTaskAndTheException) {
  EXPECT_EQ(previous_, &heddle::default_unhandled_exception_handler);
  EXPECT_EQ(heddle::unhandled_exception_handler(), &record);
  heddle::Resumer later;
  auto body = [&] {
    park(later);
    throw std::logic_error("after the resume");
  };
  const unsigned line = __LINE__ + 1;
  auto task = heddle::spawn(body, {.name = "parked thrower"});
  const std::uint64_t id = task.id();
  task.detach();
  EXPECT_TRUE(seen().empty());
  later.resume();
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0].task_id, id);
  EXPECT_EQ(seen()[0].task_name, "parked thrower");
  EXPECT_EQ(seen()[0].spawn_file, __FILE__);
  EXPECT_EQ(seen()[0].spawn_line, line);
  EXPECT_EQ(seen()[0].what, "after the resume");
}

TEST_F(UnhandledException, NullPutsTheDefaultBack) {
  EXPECT_EQ(heddle::set_unhandled_exception_handler(nullptr), &record);
  EXPECT_EQ(heddle::unhandled_exception_handler(), &heddle::default_unhandled_exception_handler);
}

TEST_F(UnhandledException, CancelledIsNotReportedNorAreJoinedOrSuccessfulTasks) {
  heddle::Resumer parked;
  // Detached, then cancels itself: ends with Cancelled.
  heddle::spawn([&] {
    heddle::this_task::cancel();
    park(parked);
  }).detach();
  // Cancelled through its handle while parked, then detached.
  heddle::Resumer unused;
  auto cancelled = heddle::spawn([&] { park(unused); });
  cancelled.cancel();
  cancelled.detach();
  // A joined task's exception goes to join(), not to the handler.
  auto joined = heddle::spawn([] { throw std::runtime_error("joined"); });
  EXPECT_THROW(joined.join(), std::runtime_error);
  heddle::spawn([] {}).detach();
  EXPECT_TRUE(seen().empty());
}

TEST_F(UnhandledException, AnotherExceptionThrownWhileUnwindingFromCancelledIsReported) {
  heddle::Resumer unused;
  auto task = heddle::spawn(
      [&] {
        try {
          park(unused);
        } catch (const heddle::Cancelled&) {
          throw std::runtime_error("cleanup failed");
        }
      },
      {.name = "cleanup"});
  task.cancel();
  task.detach();
  ASSERT_EQ(seen().size(), 1u);
  EXPECT_EQ(seen()[0].task_name, "cleanup");
  EXPECT_EQ(seen()[0].what, "cleanup failed");
}

}  // namespace
