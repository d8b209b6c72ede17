// heddle tests: the leak check every test program runs (leak_check.hpp).
#include "leak_check.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#include "heddle/core/detail/control.hpp"
#include "heddle/core/dump.hpp"
#include "heddle/stack/stack.hpp"

namespace heddle::test {
namespace {

// A task that finishes on another thread (a Pool worker, heddle::blocking's
// threads) may still be giving its stack back when the test returns.
constexpr auto kSettleTime = std::chrono::seconds(2);

bool within(const Leftovers& now, const Leftovers& allowed) noexcept {
  return now.live_tasks <= allowed.live_tasks && now.lent_stacks <= allowed.lent_stacks;
}

// The running test's opt-out, set by ~LeftoverTasks.
struct Allowance {
  bool given = false;
  Leftovers leftovers;
  std::string why;
};
Allowance allowance;

class LeakCheck final : public ::testing::EmptyTestEventListener {
 public:
  LeakCheck() : before_(leftovers_now()) {}

  void OnTestStart(const ::testing::TestInfo&) override { allowance = {}; }

  // GoogleTest calls OnTestEnd on the listeners in reverse order, so this
  // runs before the result printer, and a failure added here is the test's.
  void OnTestEnd(const ::testing::TestInfo& test) override {
    Leftovers allowed = before_;
    if (allowance.given) {
      allowed.live_tasks = std::max(allowed.live_tasks, allowance.leftovers.live_tasks);
      allowed.lent_stacks = std::max(allowed.lent_stacks, allowance.leftovers.lent_stacks);
    }
    Leftovers now = leftovers_now();
    const auto deadline = std::chrono::steady_clock::now() + kSettleTime;
    while (!within(now, allowed) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      now = leftovers_now();
    }
    if (!within(now, allowed)) {
      std::ostringstream dump;
      heddle::dump_tasks(dump);
      ADD_FAILURE_AT(test.file(), test.line())
          << "heddle: the test left " << now.live_tasks << " live task(s) and " << now.lent_stacks
          << " lent stack(s) of the default StackPool (allowed: " << allowed.live_tasks << " and "
          << allowed.lent_stacks << "). Join, cancel or finish them, or declare a heddle::test::LeftoverTasks "
          << "saying why they stay (tests/support/leak_check.hpp).\n"
          << dump.str();
    } else if (allowance.given && (now.live_tasks > before_.live_tasks || now.lent_stacks > before_.lent_stacks)) {
      std::cout << "heddle: leaves " << now.live_tasks - before_.live_tasks << " task(s) and "
                << now.lent_stacks - before_.lent_stacks << " stack(s) on purpose: " << allowance.why << '\n';
    }
    before_ = now;  // what this test left is reported once, here
    allowance = {};
  }

 private:
  Leftovers before_;
};

}  // namespace

Leftovers leftovers_now() {
  Leftovers counts;
  detail::for_each_control_block(
      [](detail::TaskControl* block, void* context) {
        const std::uint64_t state = block->state.load(std::memory_order_acquire);
        if (detail::generation_of(state) != 0 && detail::phase_of(state) != detail::Phase::finished) {
          ++static_cast<Leftovers*>(context)->live_tasks;
        }
      },
      &counts);
  counts.lent_stacks = StackPool::default_pool().stats().live;
  return counts;
}

LeftoverTasks::LeftoverTasks(std::string why) : why_(std::move(why)) {}

LeftoverTasks::~LeftoverTasks() {
  allowance.given = true;
  allowance.leftovers = leftovers_now();
  allowance.why = std::move(why_);
}

void install_leak_check() {
  ::testing::UnitTest::GetInstance()->listeners().Append(new LeakCheck);  // owned by GoogleTest
}

}  // namespace heddle::test
