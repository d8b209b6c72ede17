// The C++ exception state belongs to each task under a Loop and a SimLoop
// too, where a task that stops hands the thread straight to the next
// runnable one (src/core/task.cpp, leave): tasks yielding inside catch
// blocks and while unwinding each keep their own.
#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "exception_messages.hpp"
#include "heddle/heddle.hpp"

namespace heddle {
namespace {

using heddle::support::current_message;
using heddle::support::rethrown_message;

constexpr int kTasks = 16;
constexpr int kYields = 50;

// Spawns kTasks tasks on `scheduler`: odd ones yield inside a handler,
// even ones yield in a destructor while an exception unwinds them. Counts
// every observation that is not the task's own.
template <class Scheduler>
int spawn_mixed_tasks(Scheduler& scheduler) {
  static int wrong;
  wrong = 0;
  struct YieldsWhileUnwinding {
    ~YieldsWhileUnwinding() {
      for (int k = 0; k < kYields; ++k) {
        if (std::uncaught_exceptions() != 1) ++wrong;
        this_task::yield();
      }
    }
  };
  for (int i = 0; i < kTasks; ++i) {
    scheduler
        .spawn([i] {
          if (i % 2 == 0) {
            try {
              YieldsWhileUnwinding guard;
              throw std::runtime_error("unwinding");
            } catch (const std::runtime_error&) {
            }
            return;
          }
          const std::string mine = "task " + std::to_string(i);
          try {
            throw std::runtime_error(mine);
          } catch (...) {
            for (int k = 0; k < kYields; ++k) {
              this_task::yield();
              if (rethrown_message() != mine || std::uncaught_exceptions() != 0) ++wrong;
            }
          }
          if (std::current_exception()) ++wrong;
        })
        .detach();
  }
  scheduler.run();
  return wrong;
}

TEST(LoopExceptionState, YieldingTasksKeepTheirOwnExceptionState) {
  Loop loop;
  EXPECT_EQ(spawn_mixed_tasks(loop), 0);
  EXPECT_EQ(std::uncaught_exceptions(), 0);
  EXPECT_FALSE(std::current_exception());
}

TEST(SimLoopExceptionState, YieldingTasksKeepTheirOwnExceptionState) {
  SimLoop loop(7);
  EXPECT_EQ(spawn_mixed_tasks(loop), 0);
  EXPECT_FALSE(std::current_exception());
}

}  // namespace
}  // namespace heddle
