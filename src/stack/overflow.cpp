// heddle stack: the overflow report for guarded stacks.
//
// A task that runs off the bottom of a guarded stack faults on the guard page
// (SIGSEGV). The fault cannot be handled on the exhausted stack, so the
// handler runs on an alternate signal stack. It asks core's provider which
// task is running; when the fault address is just below that task's stack,
// or the interrupted stack pointer is below it (an overflow that ran past a
// canary zone or out of a nested region before something faulted), it
// reports the task and aborts. Any other fault belongs to whoever handled
// SIGSEGV/SIGBUS before us (AddressSanitizer, a JIT, the default action) and
// is passed on, so installing heddle changes nothing for them.
//
// Everything reachable from the handler is async-signal-safe: no malloc, no
// stdio, no locks; the page size is read before the handler is installed.
#include <errno.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/stack/stack.hpp"
#include "sys/report_line.hpp"

namespace heddle::detail {
namespace {

// A frame larger than the guard page steps over it; such a fault still
// belongs to the stack when it lands within this distance below the guard.
constexpr std::uintptr_t kSkippedFrameReach = 64 * 1024;
constexpr std::size_t kAlternateStackBytes = 64 * 1024;

std::atomic<OverflowInfoProvider> overflow_info_provider{nullptr};
std::uintptr_t guard_page_bytes = 0;
struct sigaction previous_segv_action;
struct sigaction previous_bus_action;

struct sigaction& previous_action(int signal) noexcept {
  return signal == SIGBUS ? previous_bus_action : previous_segv_action;
}

bool is_guard_page_hit(const Stack& stack, const void* fault_address) noexcept {
  if (!stack.has_guard_page()) return false;
  auto address = reinterpret_cast<std::uintptr_t>(fault_address);
  auto low = reinterpret_cast<std::uintptr_t>(stack.low);
  return address < low && low - address <= guard_page_bytes + kSkippedFrameReach;
}

// The stack pointer of the code the fault interrupted.
std::uintptr_t interrupted_stack_pointer(const void* context) noexcept {
  const auto* machine = &static_cast<const ucontext_t*>(context)->uc_mcontext;
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(machine->gregs[REG_RSP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(machine->sp);
#endif
}

bool on_alternate_signal_stack(std::uintptr_t address) noexcept {
  stack_t current{};
  if (::sigaltstack(nullptr, &current) != 0 || (current.ss_flags & SS_DISABLE)) return false;
  const auto low = reinterpret_cast<std::uintptr_t>(current.ss_sp);
  return address >= low && address - low < current.ss_size;
}

// An overflow that did not fault on the stack's own guard page: the task ran
// past its canary zone (or out of a nested arm's region) and on into memory
// below until something faulted. Its stack pointer is then below the stack's
// usable part, and the fault is near the stack pointer (a push, a probe, a
// frame's locals), never above the stack. A task's code runs elsewhere only
// on its thread's unwind stack and, for a nested signal, on the alternate
// signal stack: a fault there is not this task's overflow.
bool ran_below_its_stack(const OverflowReportInfo& report, const void* fault_address,
                         std::uintptr_t stack_pointer) noexcept {
  const Stack& stack = *report.stack;
  const auto usable = reinterpret_cast<std::uintptr_t>(stack.usable_low());
  const auto fault = reinterpret_cast<std::uintptr_t>(fault_address);
  if (stack_pointer >= usable || fault >= usable) return false;
  // Near the stack pointer (a push, a probe, a frame's locals), or it is
  // not the stack that faulted.
  if (fault + kSkippedFrameReach < stack_pointer || fault > stack_pointer + kSkippedFrameReach) return false;
  if (report.borrowed_stack != nullptr && report.borrowed_stack->contains(reinterpret_cast<void*>(stack_pointer))) {
    return false;
  }
  return !on_alternate_signal_stack(stack_pointer);
}

// Called in place rather than reinstalled, so that heddle's handler stays
// installed when the earlier one recovers from its own faults and returns.
void pass_to_previous_handler(int signal, siginfo_t* info, void* context) noexcept {
  const struct sigaction& previous = previous_action(signal);
  if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    ::pthread_sigmask(SIG_BLOCK, &previous.sa_mask, nullptr);  // undone by the return from this handler
    if (previous.sa_flags & SA_SIGINFO) {
      previous.sa_sigaction(signal, info, context);
    } else {
      previous.sa_handler(signal);
    }
    return;
  }
  // The default action (a fault cannot be ignored): restore it and let the
  // faulting instruction run again, so the process dies of the real signal
  // with the kernel's own fault information.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  sigemptyset(&default_action.sa_mask);
  ::sigaction(signal, &default_action, nullptr);
  if (info->si_code <= 0) ::raise(signal);  // sent by a process: nothing would repeat it
}

// Not instrumented: it runs after a stack was exhausted, when ASan's idea of
// the thread's stack bounds is no longer to be trusted.
HEDDLE_NO_SANITIZE_ADDRESS void handle_fault(int signal, siginfo_t* info, void* context) {
  int saved_errno = errno;
  OverflowInfoProvider provider = overflow_info_provider.load(std::memory_order_acquire);
  OverflowReportInfo report;
  if (provider != nullptr && provider(&report) && report.stack != nullptr &&
      (is_guard_page_hit(*report.stack, info->si_addr) ||
       ran_below_its_stack(report, info->si_addr, interrupted_stack_pointer(context)))) {
    report_stack_overflow(report);
  }
  pass_to_previous_handler(signal, info, context);
  errno = saved_errno;
}

bool is_installed(int signal) noexcept {
  struct sigaction current {};
  return ::sigaction(signal, nullptr, &current) == 0 && (current.sa_flags & SA_SIGINFO) &&
         current.sa_sigaction == handle_fault;
}

void install_fault_handler(int signal) {
  // A retry after a failed first attempt must not chain heddle to itself.
  if (is_installed(signal)) return;
  // Read the earlier handler before replacing it: once ours is in place a
  // fault on another thread may need it.
  if (::sigaction(signal, nullptr, &previous_action(signal)) != 0) {
    throw std::system_error(errno, std::generic_category(), "heddle: sigaction reading the earlier handler");
  }
  struct sigaction action {};
  action.sa_sigaction = handle_fault;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  if (::sigaction(signal, &action, nullptr) != 0) {
    throw std::system_error(errno, std::generic_category(), "heddle: sigaction installing the overflow handler");
  }
  if (!is_installed(signal)) {
    // AddressSanitizer with handle_segv=2 (or allow_user_segv_handler=0)
    // silently keeps the signal for itself; overflows then go unreported.
    bool bus = signal == SIGBUS;
    std::fprintf(stderr, "heddle: could not install the stack overflow handler for %s; overflows will not be "
                 "reported (under AddressSanitizer, set ASAN_OPTIONS=%s=1)\n", bus ? "SIGBUS" : "SIGSEGV",
                 bus ? "handle_sigbus" : "handle_segv");
  }
}

void install_fault_handlers() {
  guard_page_bytes = static_cast<std::uintptr_t>(::getpagesize());
  install_fault_handler(SIGSEGV);
  install_fault_handler(SIGBUS);
}

// One per thread that may run tasks. An alternate stack somebody else already
// gave the thread (AddressSanitizer gives every thread one) is kept as it is.
class AlternateSignalStack {
 public:
  AlternateSignalStack() = default;
  AlternateSignalStack(const AlternateSignalStack&) = delete;
  AlternateSignalStack& operator=(const AlternateSignalStack&) = delete;

  ~AlternateSignalStack() {
    if (memory_ == nullptr) return;
    stack_t current{};
    // Replaced since: whoever did it may still switch back to ours.
    if (::sigaltstack(nullptr, &current) != 0 || current.ss_sp != memory_) return;
    stack_t disabled{};
    disabled.ss_flags = SS_DISABLE;
    if (::sigaltstack(&disabled, nullptr) == 0) ::munmap(static_cast<std::byte*>(memory_) - page_, bytes_ + 2 * page_);
  }

  void ensure() {
    if (ready_) return;
    if (!already_has_one()) install();
    ready_ = true;
  }

 private:
  static bool already_has_one() noexcept {
    stack_t current{};
    return ::sigaltstack(nullptr, &current) == 0 && !(current.ss_flags & SS_DISABLE) &&
           current.ss_size >= static_cast<std::size_t>(SIGSTKSZ);
  }

  // [guard page | alternate stack | guard page]. The guard pages keep an
  // overflow of a neighbouring stack from running onto the alternate stack:
  // a fault taken while the stack pointer is already there has no room for
  // the signal frame, and the kernel kills the process with no report.
  void install() {
    std::size_t page = static_cast<std::size_t>(::getpagesize());
    std::size_t wanted = std::max(static_cast<std::size_t>(SIGSTKSZ), kAlternateStackBytes);
    std::size_t bytes = (wanted + page - 1) / page * page;
    void* mapping = ::mmap(nullptr, bytes + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mapping == MAP_FAILED) {
      throw std::system_error(errno, std::generic_category(),
                              "heddle: mmap of " + std::to_string(bytes) + " bytes for an alternate signal stack");
    }
    void* memory = static_cast<std::byte*>(mapping) + page;
    if (::mprotect(memory, bytes, PROT_READ | PROT_WRITE) != 0) {
      int error = errno;
      ::munmap(mapping, bytes + 2 * page);
      throw std::system_error(error, std::generic_category(), "heddle: mprotect of an alternate signal stack");
    }
    stack_t ours{};
    ours.ss_sp = memory;
    ours.ss_size = bytes;
    if (::sigaltstack(&ours, nullptr) != 0) {
      int error = errno;
      ::munmap(mapping, bytes + 2 * page);
      throw std::system_error(error, std::generic_category(), "heddle: sigaltstack");
    }
    memory_ = memory;
    bytes_ = bytes;
    page_ = page;
  }

  void* memory_ = nullptr;  // the usable stack, between its guard pages
  std::size_t bytes_ = 0;
  std::size_t page_ = 0;
  bool ready_ = false;
};


}  // namespace

void install_overflow_handler(OverflowInfoProvider provider) {
  overflow_info_provider.store(provider, std::memory_order_release);
  static std::once_flag installed;
  std::call_once(installed, install_fault_handlers);
}

void ensure_alternate_signal_stack() {
  thread_local AlternateSignalStack alternate_stack;
  alternate_stack.ensure();
}

HEDDLE_NO_SANITIZE_ADDRESS void report_stack_overflow(const OverflowReportInfo& info) noexcept {
  ReportLine line;
  line.append("heddle: stack overflow in task \"");
  line.append(info.task_name != nullptr ? info.task_name : "(unnamed)");
  line.append("\" spawned at ");
  line.append(info.file != nullptr ? info.file : "(unknown)");
  line.append(":");
  line.append_decimal(info.line);
  if (info.stack != nullptr) {
    line.append(", stack ");
    line.append_decimal(info.stack->size);
    line.append(" bytes");
  } else {
    line.append(", stack of unknown size");
  }
  line.write_line(STDERR_FILENO);
  std::abort();
}

}  // namespace heddle::detail
