// The overflow report: a guard-page hit names the task; other faults pass on.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "heddle/arch/context.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/stack/stack.hpp"

namespace heddle {
namespace {

using detail::OverflowReportInfo;

Stack running_task_stack;

bool report_a_task_named_deep(OverflowReportInfo* out) noexcept {
  out->task_name = "deep";
  out->file = "x.cpp";
  out->line = 42;
  out->stack = &running_task_stack;
  return true;
}

volatile std::size_t recursion_limit = SIZE_MAX;  // never reached: the stack runs out first

std::size_t recurse(std::size_t depth) {
  volatile char frame[1024];
  frame[depth % sizeof frame] = 1;
  if (depth >= recursion_limit) return frame[0];
  return recurse(depth + 1) + frame[depth % sizeof frame];
}

void* spawner_context = nullptr;

[[noreturn]] void run_until_overflow(void* /*transfer*/, void* /*argument*/) {
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  recurse(0);
  std::abort();
}

void overflow_a_guarded_stack() {
  detail::install_overflow_handler(report_a_task_named_deep);
  detail::ensure_alternate_signal_stack();
  static StackPool pool;
  running_task_stack = pool.acquire();
  void* task_context = arch::make_context(running_task_stack.high(), run_until_overflow, nullptr);
#if HEDDLE_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, running_task_stack.low, running_task_stack.size);
#endif
  arch::switch_context(&spawner_context, task_context, nullptr);
}

TEST(OverflowDeathTest, GuardPageHitNamesTheTaskAndItsSpawnSite) {
  EXPECT_DEATH(overflow_a_guarded_stack(),
               "heddle: stack overflow in task \"deep\" spawned at x\\.cpp:42, stack 65536 bytes");
}

TEST(OverflowDeathTest, ReportIsOneExactLine) {
  Stack stack{nullptr, 12345, StackKind::guarded, false, true, nullptr};
  OverflowReportInfo info{"worker", "server.cpp", 7, &stack};
  EXPECT_DEATH(detail::report_stack_overflow(info),
               "^heddle: stack overflow in task \"worker\" spawned at server\\.cpp:7, stack 12345 bytes\n$");
}

TEST(OverflowDeathTest, ReportNamesWhatIsMissing) {
  OverflowReportInfo info{};
  EXPECT_DEATH(detail::report_stack_overflow(info),
               "heddle: stack overflow in task \"\\(unnamed\\)\" spawned at \\(unknown\\):0, stack of unknown size");
}

// The fault hits the lowest byte of a 1 MiB inaccessible mapping made before
// the task stack, so it can never be mistaken for the stack's guard page
// whichever way mmap places mappings (Linux maps downwards, qemu-user
// upwards): a stack above the mapping is more than the handler's reach (a
// guard page plus 64 KiB) away, a stack below it lies under the fault.
void fault_outside_any_guard_page() {
  constexpr std::size_t kFarBeyondTheReach = 1024 * 1024;
  void* region = ::mmap(nullptr, kFarBeyondTheReach, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  static StackPool pool;
  running_task_stack = pool.acquire();
  detail::install_overflow_handler(report_a_task_named_deep);
  detail::ensure_alternate_signal_stack();
  *static_cast<volatile char*>(region) = 1;
}

TEST(OverflowDeathTest, OtherFaultsReachTheDefaultAction) {
#if HEDDLE_ASAN || HEDDLE_TSAN
  // The sanitizer's handler came first; it reports the fault and exits.
  EXPECT_EXIT(fault_outside_any_guard_page(), [](int status) { return status != 0; },
              "Sanitizer: SEGV on unknown address");
#else
  EXPECT_EXIT(fault_outside_any_guard_page(), testing::KilledBySignal(SIGSEGV), "^$");
#endif
}

void earlier_handler(int /*signal*/, siginfo_t* /*info*/, void* /*context*/) {
  constexpr char kMessage[] = "the earlier handler saw the fault\n";
  [[maybe_unused]] ssize_t written = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  ::_exit(3);
}

void fault_with_an_earlier_handler() {
  struct sigaction action {};
  action.sa_sigaction = earlier_handler;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGSEGV, &action, nullptr);
  fault_outside_any_guard_page();
}

TEST(OverflowDeathTest, OtherFaultsReachAnEarlierHandler) {
  EXPECT_EXIT(fault_with_an_earlier_handler(), testing::ExitedWithCode(3), "the earlier handler saw the fault");
}

}  // namespace
}  // namespace heddle
