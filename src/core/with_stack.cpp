// heddle core: with_stack (include/heddle/core/with_stack.hpp): running a
// function on an auxiliary stack segment (run_on_stack, also how host
// stacks are entered), and the segment pools: one StackPool per size class,
// made on first use and never destroyed (a segment may be in use until the
// process exits).
#include "heddle/core/with_stack.hpp"

#include "heddle/arch/context.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/core/detail/stack_profile.hpp"
#include "sys/report_line.hpp"
#include "thread_state.hpp"

#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <array>
#include <bit>
#include <mutex>
#include <stdexcept>
#include <string>

namespace heddle::detail {
namespace {

constexpr std::size_t kSmallestClassShift = 14;  // 16 KiB
constexpr std::size_t kClasses = 30 - kSmallestClassShift + 1;

StackPool& pool_for(std::size_t bytes) {
  if (bytes == 0 || bytes > kMaxSegmentBytes) {
    throw std::invalid_argument("heddle::with_stack: a segment of " + std::to_string(bytes) +
                                " bytes (it must be 1 byte to 1 GiB)");
  }
  const std::size_t rounded = std::max(std::bit_ceil(bytes), std::size_t{1} << kSmallestClassShift);
  const std::size_t index = static_cast<std::size_t>(std::countr_zero(rounded)) - kSmallestClassShift;
  static std::mutex mutex;
  static std::array<StackPool*, kClasses> pools{};
  std::lock_guard lock(mutex);
  if (!pools[index]) {
    StackPool::Options options;
    options.stack_bytes = rounded;
    options.max_resident_idle = 16;  // a deep recursion's segments go back to the kernel soon
    pools[index] = new StackPool(options);  // never freed: see above
  }
  return *pools[index];
}

}  // namespace

Segment::Segment(std::size_t bytes, const SourceLocation& site) : site_(site) {
  StackPool& pool = pool_for(bytes);
  stack_ = pool.acquire();
}

Segment::~Segment() {
  if (stack_profile_on.load(std::memory_order_relaxed)) [[unlikely]] record_segment_use(site_, stack_);
  if (stack_.pool) stack_.pool->release(stack_);
}

}  // namespace heddle::detail

namespace heddle::detail {

// ---- with_stack: running a function on an auxiliary stack segment
//
// The running task (or plain thread) switches to a context made on the
// segment, runs the function there and switches back: the same task, its
// TaskLocals and its cancellation state. While it is on the segment, the
// task's `stack` (or the thread's recorded stack bounds) names the segment,
// so that every check that uses them stays true there: the canary check at
// each switch-out, the overflow handler, the sanitizer fibre annotations of
// suspensions and resumes, nested arm stacks. The original is put back before
// the call returns, on every path (the function's exceptions are caught on
// the segment and rethrown on the original stack: nothing unwinds across the
// switch).

namespace {

struct SegmentCall {
  void (*run)(void*) = nullptr;
  void* context = nullptr;
  std::exception_ptr error;
  void* caller_sp = nullptr;    // the original stack, while on the segment
  const void* caller_bottom = nullptr;  // its bounds, for AddressSanitizer
  std::size_t caller_size = 0;
};

// ThreadSanitizer: this frame never returns (it switches back instead), so it
// must not push a frame on TSan's shadow call stack that nothing pops.
[[noreturn]] __attribute__((no_sanitize("thread"))) void segment_entry(void*, void* argument) noexcept {
  auto* call = static_cast<SegmentCall*>(argument);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  try {
    call->run(call->context);
  } catch (...) {
    call->error = std::current_exception();
  }
#if HEDDLE_ASAN
  __sanitizer_start_switch_fiber(nullptr, call->caller_bottom, call->caller_size);
#endif
  void* unused = nullptr;
  arch::switch_context(&unused, call->caller_sp, nullptr);
  __builtin_unreachable();
}

}  // namespace

void run_on_stack(const Stack& segment, void (*run)(void*), void* context) {
  ThreadState& ts = thread_state();
  if (!ts.initialized) init_thread(ts);
  TaskControl* t = t_current;
  SegmentCall call;
  call.run = run;
  call.context = context;
  const Stack original = t ? t->stack : Stack{};
  call.caller_bottom = t ? static_cast<const void*>(original.low) : ts.stack_bottom;
  call.caller_size = t ? original.size : ts.stack_size;
  if (t) {
    t->stack = segment;
  } else {
    ts.stack_bottom = segment.low;
    ts.stack_size = segment.size;
  }
  void* segment_sp = arch::make_context(segment.high(), &segment_entry, &call);
#if HEDDLE_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, segment.low, segment.size);
#endif
  arch::switch_context(&call.caller_sp, segment_sp, nullptr);
#if HEDDLE_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  // Possibly on another thread now (the task moved while on the segment).
  TaskControl* now = t_current;
  const bool intact = canary_intact(segment);
  if (now) {
    if (!intact) report_canary_overflow(now);  // names the segment: now->stack is still it
    now->stack = original;
  } else {
    ThreadState& here = thread_state();
    here.stack_bottom = call.caller_bottom;
    here.stack_size = call.caller_size;
    if (!intact) {
      ReportLine()
          .append("heddle: stack overflow in with_stack on a thread: the ")
          .append_decimal(segment.size)
          .append("-byte segment's canary was overwritten")
          .write_line();
      std::abort();
    }
  }
  if (call.error) std::rethrow_exception(call.error);
}

}  // namespace heddle::detail
