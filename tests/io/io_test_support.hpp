// heddle io tests: helpers shared by the io test programs.
#pragma once

#include <dirent.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <system_error>
#include <utility>

#include "heddle/io/backend.hpp"
#include "heddle/sched/loop.hpp"

namespace heddle::test {

// How many descriptors this process has open (entries of /proc/self/fd,
// minus the one opendir itself holds).
inline int open_descriptor_count() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;
}

// The error code f throws as std::system_error, or 0 if it returns.
inline int error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e.code().value();
  }
  return 0;
}

// A test fixture that fails the test if it leaves a descriptor open.
class NoDescriptorLeak : public ::testing::Test {
 protected:
  void SetUp() override { descriptors_before_ = open_descriptor_count(); }
  void TearDown() override { EXPECT_EQ(open_descriptor_count(), descriptors_before_) << "descriptor leak"; }

 private:
  int descriptors_before_ = 0;
};

// The backend the test program was started for (HEDDLE_IO), checked
// against the one the loop really got: a silent fallback would make the
// io_uring half of the suite test epoll twice.
inline void expect_requested_backend() {
  const char* requested = std::getenv("HEDDLE_IO");
  if (!requested) return;
  EXPECT_EQ(std::string(heddle::io::to_string(heddle::io::current_backend())), requested);
}

// Runs body as a task of a fresh Loop until the loop has nothing left;
// rethrows what the body threw.
template <class F>
void run_in_loop(F&& body) {
  heddle::Loop loop;
  auto task = loop.spawn([&] {
    expect_requested_backend();
    body();
  });
  loop.run();
  task.join();
}

}  // namespace heddle::test
