// heddle::fault in either build: with fault injection compiled in, a fault
// is injected and counted; without it (the check preset, users' builds),
// inject() refuses with a logic_error that says how to turn it on, and the
// hooks cost nothing (take() is a constant). The fault sites themselves are
// tested in tests/io/fault_test.cpp.
#include <gtest/gtest.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "heddle/sys/fault.hpp"
#include "heddle/stack/stack.hpp"

namespace {

using heddle::fault::Site;

TEST(FaultInjection, WorksWhenCompiledInAndSaysHowToTurnItOnWhenNot) {
  if constexpr (heddle::fault::compiled_in) {
    heddle::StackPool pool({.guard = heddle::StackPool::Guard::always});
    const auto before = heddle::fault::injected(Site::stack_map);
    {
      heddle::fault::Injection no_memory(Site::stack_map, {.error = ENOMEM});
      EXPECT_THROW((void)pool.acquire(), std::system_error);
    }
    EXPECT_EQ(heddle::fault::injected(Site::stack_map) - before, 1u);
    pool.release(pool.acquire());
  } else {
    EXPECT_FALSE(heddle::fault::detail::take(Site::stack_map).hit);  // compiled out: a constant
    try {
      heddle::fault::inject(Site::stack_map, {.error = ENOMEM});
      ADD_FAILURE() << "inject() succeeded without fault injection compiled in";
    } catch (const std::logic_error& e) {
      EXPECT_NE(std::string(e.what()).find("HEDDLE_FAULT_INJECTION=ON"), std::string::npos) << e.what();
    }
    EXPECT_EQ(heddle::fault::injected(Site::stack_map), 0u);
  }
}

}  // namespace
