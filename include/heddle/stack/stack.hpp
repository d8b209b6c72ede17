// heddle stack: where task storage lives.
//
// Owns: the Stack descriptor, StackPool (mmap'd stacks with a guard page, or
// canary-protected stacks when guarded mappings run short, or sub-page slab
// stacks sized from a proven bound), StaticStack<N>,
// caller-provided spans, nested spans, painting, high-water marks and the
// overflow report.
//
// Invariants:
//  - A Stack's usable bytes are [low, low + size). Stacks of every kind but
//    `guarded` keep a canary zone of kCanaryBytes at `low`; code runs above it.
//  - Overflow is never silent: a stack with a guard page faults there (the
//    SIGSEGV handler, on an alternate signal stack, reports and aborts); a
//    canary stack's whole zone is checked at every switch-out and at the end
//    (core calls canary_intact), and an overflow that runs past it faults
//    further down, where the handler finds the task by its stack pointer.
//    src/stack/README.md says what catches which shape of overflow, and the
//    one that can escape a stack without a guard page.
//  - A pool stack is handed out by at most one owner at a time.
// This layer knows nothing of tasks: core registers a provider that names the
// running task for the overflow report.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/arch/sanitizer.hpp"

namespace heddle {

enum class StackKind : std::uint8_t {
  guarded,         // StackPool stack with a PROT_NONE guard page below it
  canary,          // StackPool stack without guard page (mapping budget spent, or asked for)
  static_storage,  // StaticStack<N>
  span,            // caller-provided std::span<std::byte>
  nested,          // carved from the parent's own stack (join/select/TaskGroup arms)
  slab,            // StackPool stack smaller than a page, carved many to a page from a slab (bounded pools only)
};
const char* to_string(StackKind kind) noexcept;

class StackPool;

inline constexpr std::size_t kCanaryBytes = 64;

// A region a task runs on. A plain value: whoever acquired it gives it back.
struct Stack {
  std::byte* low = nullptr;  // lowest address of the region (the guard page, if any, is below)
  std::size_t size = 0;      // bytes from low to the top
  StackKind kind = StackKind::span;
  bool painted = false;      // filled with kPaintByte: byte-granular high-water mark
  // A guard page lies just below `low` (a pool's guarded stacks; a
  // StaticStack where the kernel has guard regions). Otherwise the region
  // starts with a canary zone of kCanaryBytes.
  bool guard_page = false;
  StackPool* pool = nullptr; // the pool to give it back to, if any

  std::byte* high() const noexcept { return low + size; }
  // Whether `address` is in [low, high()): a frame on this stack, say.
  bool contains(const void* address) const noexcept {
    const auto* byte = static_cast<const std::byte*>(address);
    return byte >= low && byte < high();
  }
  bool has_guard_page() const noexcept { return guard_page; }
  // The lowest address code may use: above the canary zone, if there is one.
  std::byte* usable_low() const noexcept { return guard_page ? low : low + kCanaryBytes; }
  explicit operator bool() const noexcept { return low != nullptr; }
};
inline constexpr std::uint64_t kCanaryWord = 0x6e61'6365'6c64'6465ULL;  // "heddlecan"

// The value a stack's canary zone holds. Pool canary stacks use zero: their
// zone is the end of the page that holds their lower neighbour's top
// (StackPool carves them kCanaryBytes below page boundaries), memory the
// kernel gives as zeros, so arming it writes nothing and checking it reads
// a page that is resident for the neighbour anyway (a parked task keeps one
// page, not two), and a page given back to the kernel still reads as an
// intact zone. Any non-zero write into the zone is caught at switch-out. Caller-provided
// storage (static, span, nested) may hold anything, so it gets a pattern.
constexpr std::uint64_t canary_word(const Stack& stack) noexcept {
  return stack.kind == StackKind::canary ? 0 : kCanaryWord;
}
inline constexpr std::byte kPaintByte{0xA5};
inline constexpr std::size_t kMinimumStackBytes = arch::kMinimumStackBytes;
// The smallest stack a bounded StackPool makes (Options::bounded): its size
// comes from a proof, so it may be far below kMinimumStackBytes, but never
// below the canary zone, the switch frames and one small frame.
inline constexpr std::size_t kMinimumBoundedStackBytes = 256;
// Sub-page stacks are carved at this stride (and alignment): the ABI's
// stack alignment. A cache line apart would waste up to 48 bytes a task;
// neighbours share a line only between one stack's top (its task frame)
// and the next one's canary zone, which is read when that task finishes.
inline constexpr std::size_t kSlabStackAlignment = 16;

// Writes the canary zone (no-op for guarded stacks).
void arm_canary(const Stack& stack) noexcept;
// True when the canary zone is untouched (always true for guarded stacks):
// every word of it, compared at once, since an overflow may write any part
// of it (a frame stepping past the top word). Eight loads and compares.
HEDDLE_NO_SANITIZE_ADDRESS inline bool canary_intact(const Stack& stack) noexcept {
  if (stack.has_guard_page()) return true;
  // Stack memory viewed as words; may_alias: the task stored bytes there.
  using Word = std::uint64_t __attribute__((may_alias));
  const Word* zone = reinterpret_cast<const Word*>(stack.low);
  const std::uint64_t expected = canary_word(stack);
  std::uint64_t differs = 0;
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kCanaryBytes / sizeof(Word); ++i) differs |= zone[i] ^ expected;
  return differs == 0;
}

// Fills [low, high - keep_top_bytes) with kPaintByte (never the canary zone)
// and marks the stack painted. keep_top_bytes protects what is already live
// at the top (a task's frame written before painting).
void paint(Stack& stack, std::size_t keep_top_bytes = 0) noexcept;

// How deep a stack has ever been used, measured from its top.
struct StackUsage {
  std::size_t bytes = 0;        // deepest use seen, in bytes from the top
  std::size_t granularity = 0;  // 8: painted; page size: resident pages (mincore); 0: unknown
};
StackUsage high_water(const Stack& stack) noexcept;

// heddle cannot put a guard page into memory it does not own: a span's
// overflow is caught at its canary zone, or where it faults below. Map an
// inaccessible page just below the region (PROT_NONE) and every overflow of
// it is caught there, as on a pool stack; without one, a deep overflow runs
// into whatever the program keeps below (docs/misuse.md).
// Checks a caller-provided region and turns it into a Stack: throws
// std::invalid_argument naming the size and the minimum when it is smaller
// than kMinimumStackBytes, or naming the address when it is not 16-aligned.
Stack stack_from_span(std::span<std::byte> region, StackKind kind = StackKind::span);

namespace detail {
// A StaticStack of at least this many bytes gets a guard page of its own.
inline constexpr std::size_t kGuardedStaticStackBytes = 16 * 1024;
inline constexpr std::size_t kStaticGuardBytes = 4096;
// How a StaticStack's guard page was made (StaticStack::guard_).
enum class StaticGuard : std::uint8_t { none, region, protected_page };
// The Stack of a StaticStack's storage: `guard_bytes` at its low end become
// its guard page the first time (a guard region where the kernel has them,
// else mprotect(PROT_NONE); `guard` records which), and the stack is the
// rest. If neither works (a page size other than guard_bytes) the stack is
// the same bytes with a canary zone. remove_static_guard gives the page back
// to ordinary use.
Stack static_stack(std::byte* storage, std::size_t bytes, std::size_t guard_bytes,
                   std::atomic<StaticGuard>& guard) noexcept;
void remove_static_guard(std::byte* storage, std::size_t guard_bytes, StaticGuard guard) noexcept;
}  // namespace detail

// Storage for one stack in static or automatic memory: Bytes of stack, and,
// from 16 KiB up, one page more below them that becomes the stack's guard
// page (a guard region where the kernel has them, Linux 6.13+, which costs
// no mapping; else an mprotect'ed page), so that an overflow faults there
// as it does on a pool's guarded stack. Smaller ones keep a canary zone.
// stack() may be called from one thread at a time.
template <std::size_t Bytes>
class StaticStack {
  static_assert(Bytes >= kMinimumStackBytes, "StaticStack is smaller than the smallest stack a task can use");
  static constexpr std::size_t kGuardBytes = Bytes >= detail::kGuardedStaticStackBytes ? detail::kStaticGuardBytes : 0;

 public:
  StaticStack() = default;
  ~StaticStack() {
    const detail::StaticGuard guard = guard_.load(std::memory_order_relaxed);
    if (guard != detail::StaticGuard::none) detail::remove_static_guard(storage_, kGuardBytes, guard);
  }
  StaticStack(const StaticStack&) = delete;
  StaticStack& operator=(const StaticStack&) = delete;

  Stack stack() noexcept { return detail::static_stack(storage_, sizeof storage_, kGuardBytes, guard_); }

 private:
  alignas(kGuardBytes != 0 ? kGuardBytes : 64) std::byte storage_[kGuardBytes + Bytes];
  std::atomic<detail::StaticGuard> guard_{detail::StaticGuard::none};
};

// mmap'd stacks recycled on a free list. Acquire from a warm pool makes no
// system call. Thread-safe: a mutex guards the free list, and the default
// pool also keeps a per-thread cache of up to 16 stacks, refilled and
// drained half at a time under one lock.
class StackPool {
 public:
  enum class Guard : std::uint8_t {
    automatic,  // guard pages (always, where the kernel has guard regions; else while the mapping budget lasts), then canaries
    always,     // guard pages only; acquire throws std::system_error when none can be made
    never,      // canaries only (millions of stacks)
  };
  struct Options {
    std::size_t stack_bytes = 64 * 1024;  // usable bytes, rounded up to whole pages (see bounded)
    std::size_t max_resident_idle = 1024; // idle stacks kept resident; the rest are madvise(DONTNEED)'d
    bool paint = false;                   // paint every stack at acquire (byte-granular high water)
    Guard guard = Guard::automatic;
    // stack_bytes is a proven bound (tools/heddle-stack), not a guess: it
    // may go down to kMinimumBoundedStackBytes, spawn reserves no room
    // beyond it, and below a page the stacks are sub-page slab stacks:
    // carved kSlabStackAlignment apart, many to a page, each with a canary
    // zone and no guard page (Guard::always is refused), never given back
    // to the kernel one by one (max_resident_idle does not apply). Without
    // bounded, a size below kMinimumStackBytes is refused: a sub-page stack
    // needs a bound.
    bool bounded = false;
  };
  struct Stats {
    std::size_t live = 0;            // handed out now
    std::size_t idle = 0;            // on the free list
    std::size_t guarded_created = 0; // stacks ever made with a guard page
    std::size_t canary_created = 0;  // stacks ever made without one
    // Idle stacks whose memory madvise could not give back: it stayed
    // resident, and the stack is reused as it is.
    std::size_t release_failures = 0;
  };

  StackPool();
  explicit StackPool(Options options);
  ~StackPool();  // unmaps idle stacks; live stacks are reported (a leak) and left mapped
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // Throws std::invalid_argument for a stack_bytes below kMinimumStackBytes
  // (kMinimumBoundedStackBytes when bounded), std::system_error (naming mmap
  // and the size) when memory runs out.
  Stack acquire();
  void release(const Stack& stack) noexcept;

  const Options& options() const noexcept { return options_; }
  Stats stats() const;

  // The pool spawn uses when none is named (64 KiB stacks, automatic guard).
  // It also keeps a small cache of stacks per thread (up to 16), exchanged
  // with the shared free list in batches, so that threads that spawn and
  // finish tasks at once (a work-stealing Pool) rarely meet on its lock.
  static StackPool& default_pool();

 private:
  friend struct StackPoolAccess;
  bool take_shared(Stack& stack);       // under the lock; false when the idle lists are empty
  void release_shared(const Stack& stack) noexcept;
  void prepare(Stack& stack) noexcept;  // what every acquired stack gets before use
  bool thread_cached_ = false;
  bool sub_page_ = false;  // bounded and smaller than a page: slab stacks
  Stack make_guarded();
  Stack make_guarded_in_chunk();
  Stack make_canary();

  Options options_;
  mutable std::mutex mutex_;
  std::vector<Stack> idle_;  // free list: [0, cold_) memory given back, then resident ones (taken first)
  std::size_t cold_ = 0;
  Stats stats_;
  std::vector<std::pair<std::byte*, std::size_t>> chunks_;  // canary, slab and guarded chunks: unmapped at destruction
  std::vector<Stack> canary_fresh_;                          // carved, never used yet
  std::vector<Stack> guarded_fresh_;                         // likewise, where guard regions carve guarded stacks
  // Released stacks past max_resident_idle wait here until a batch of them
  // is given back to the kernel at once (neighbours merged into one call).
  std::vector<Stack> to_trim_;
  void trim_batch() noexcept;
  void push_cold(const Stack& stack) noexcept;
};

namespace detail {

// What the overflow report names. Filled by core for the running task.
struct OverflowReportInfo {
  const char* task_name = nullptr;
  const char* file = nullptr;
  unsigned line = 0;
  const Stack* stack = nullptr;
  // A stack of the thread where the task's code runs on its behalf without
  // it being the task's stack (the unwind stack: throws, reports), or null.
  // A fault with the stack pointer there is not the task's overflow.
  const Stack* borrowed_stack = nullptr;
};
// Returns false when no task is running on this thread. Must be
// async-signal-safe (it is called from the SIGSEGV handler).
using OverflowInfoProvider = bool (*)(OverflowReportInfo* out) noexcept;

// Installs the SIGSEGV/SIGBUS handler once per process (later calls only
// replace the provider). A fault is the running task's overflow when it
// hits the task's guard page (or lands just below it: a frame that stepped
// over), or when the interrupted stack pointer is below the task's usable
// stack with the fault near it (an overflow that ran past a canary zone, or
// out of a nested arm's region, into whatever lies below: a neighbour's
// guard page, a chunk's guard region, unmapped memory). Every other fault is
// passed to the handler that was installed before.
void install_overflow_handler(OverflowInfoProvider provider);
// Gives the calling thread an alternate signal stack (once per thread), so
// the handler can run when the faulting stack is exhausted.
void ensure_alternate_signal_stack();
// Whether the kernel has guard regions (madvise(MADV_GUARD_INSTALL), Linux
// 6.13 and later): then every guarded pool stack's guard page is one, and
// StackPool never runs out of guarded stacks.
bool guard_regions_supported() noexcept;
// Prints `heddle: stack overflow in task "<name>" spawned at <file>:<line>,
// stack <size> bytes` to stderr with write(2) and aborts. Async-signal-safe.
[[noreturn]] void report_stack_overflow(const OverflowReportInfo& info) noexcept;

}  // namespace detail
}  // namespace heddle
