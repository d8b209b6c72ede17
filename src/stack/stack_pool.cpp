// heddle stack: StackPool, mmap'd stacks recycled on a free list.
//
// Guarded stacks, where the kernel has guard regions (Linux 6.13 and later,
// madvise(MADV_GUARD_INSTALL)): carved from 2 MiB chunks as [guard page |
// stack] units, each guard page a marker in the page tables that faults like
// PROT_NONE but splits no VMA. Guarded stacks then cost no mappings at all,
// and a pool never runs out of them.
//
// Elsewhere a guarded stack is one mapping of [guard page | stack]: the
// guard page is PROT_NONE, so the stack costs two kernel VMAs. Linux caps
// VMAs per process (vm.max_map_count, 65530 by default), which caps guarded
// stacks at about 32,000. Under Guard::automatic the pool keeps a
// process-wide count of guarded stacks and, past a budget that leaves room
// for everything else the process maps (the allocator, ASan's shadow, thread
// stacks), makes canary stacks instead: carved from chunks that the kernel
// merges into a single VMA. The first switch to canaries is announced once
// per process on stderr.
//
// Canary and slab chunks get a guard region at their low end where the
// kernel has them: an overflow that runs down through its neighbours faults
// there at the latest, and the overflow handler names the task by its stack
// pointer (src/stack/overflow.cpp).
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/stack/stack.hpp"
#include "heddle/sys/fault.hpp"
#include "sys/report_line.hpp"

#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace heddle {
namespace {

// A stack must never get a transparent huge page: one touched byte would make
// 2 MiB resident and hide the stack's real depth from mincore.
constexpr std::size_t kHugePageBytes = 2 * 1024 * 1024;
// Canary stacks are mapped this many bytes at a time.
constexpr std::size_t kCanaryChunkBytes = kHugePageBytes;
// Idle stacks past the resident budget are given back this many at a time:
// each madvise flushes the TLB, and sorted neighbours merge into one call.
constexpr std::size_t kTrimBatch = 64;
// Mappings left for the rest of the process when budgeting guarded stacks.
constexpr long kMappingsKeptForProcess = 16384;
constexpr long kDefaultMaxMapCount = 65530;

std::size_t page_bytes() noexcept {
  static const std::size_t bytes = static_cast<std::size_t>(::getpagesize());
  return bytes;
}

std::byte* page_aligned_up(std::byte* address) noexcept {
  const auto value = reinterpret_cast<std::uintptr_t>(address);
  return address + ((page_bytes() - value % page_bytes()) % page_bytes());
}

std::size_t round_up_to_pages(std::size_t bytes) noexcept {
  return (bytes + page_bytes() - 1) / page_bytes() * page_bytes();
}

long read_max_map_count() noexcept {
  int file = ::open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (file < 0) return kDefaultMaxMapCount;
  char text[32] = {};
  ssize_t length = ::read(file, text, sizeof text - 1);
  ::close(file);
  long value = length > 0 ? std::strtol(text, nullptr, 10) : 0;
  return value > 0 ? value : kDefaultMaxMapCount;
}

long max_map_count() noexcept {
  static const long count = read_max_map_count();
  return count;
}

long guarded_stack_budget() noexcept {
  static const long budget = max_map_count() > 2 * kMappingsKeptForProcess
                                 ? (max_map_count() - kMappingsKeptForProcess) / 2
                                 : max_map_count() / 4;
  return budget;
}

// Guarded stacks mapped by every pool of the process, idle ones included.
std::atomic<long> guarded_stacks_mapped{0};

bool reserve_guarded_slot() noexcept {
  long mapped = guarded_stacks_mapped.load(std::memory_order_relaxed);
  do {
    if (mapped >= guarded_stack_budget()) return false;
  } while (!guarded_stacks_mapped.compare_exchange_weak(mapped, mapped + 1, std::memory_order_relaxed));
  return true;
}

void announce_canary_fallback() noexcept {
  static std::atomic<bool> announced{false};
  if (announced.exchange(true, std::memory_order_relaxed)) return;
  detail::ReportLine()
      .append("heddle: guarded stack mappings exhausted (vm.max_map_count=")
      .append_signed(max_map_count())
      .append("); new stacks use canaries")
      .write_line();
}

// Linux's guard regions (include/uapi/asm-generic/mman-common.h), which
// Debian 12's headers predate.
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

// Whether madvise(MADV_GUARD_INSTALL) works here: asked once per process,
// on a mapping of its own. Older kernels answer EINVAL; an emulator (qemu's
// user mode) may answer 0 and install nothing, so the page must then also
// refuse a system call's write into it (mincore's vector: EFAULT).
bool probe_guard_regions() noexcept {
  const std::size_t bytes = 2 * page_bytes();
  auto* memory = static_cast<unsigned char*>(
      ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (memory == MAP_FAILED) return false;
  const bool works = ::madvise(memory, page_bytes(), MADV_GUARD_INSTALL) == 0 &&
                     ::mincore(memory + page_bytes(), page_bytes(), memory) != 0 && errno == EFAULT;
  ::munmap(memory, bytes);
  return works;
}

}  // namespace

bool detail::guard_regions_supported() noexcept {
  static const bool supported = probe_guard_regions();
  return supported;
}

namespace {

// Installs a guard region on the page at `page`: false (errno set) if the
// kernel refuses.
bool install_guard_page(std::byte* page) noexcept { return ::madvise(page, page_bytes(), MADV_GUARD_INSTALL) == 0; }

// Canary chunks always: the kernel merges neighbouring chunks into one VMA,
// which can span an aligned huge page even when no single chunk does.
void forbid_huge_pages(void* memory, std::size_t bytes) noexcept { ::madvise(memory, bytes, MADV_NOHUGEPAGE); }

// mmap through the fault hook (heddle/sys/fault.hpp).
void* map_memory(std::size_t bytes, int protection) noexcept {
  if (const fault::detail::Decision fault = fault::detail::take(fault::Site::stack_map); fault.error != 0) {
    errno = fault.error;
    return MAP_FAILED;
  }
  return ::mmap(nullptr, bytes, protection, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
}

// Gives idle stack memory back to the kernel; false if madvise refused (the
// memory then stays resident, and the stack is still fine to reuse).
bool release_memory(void* begin, std::size_t bytes) noexcept {
  if (const fault::detail::Decision fault = fault::detail::take(fault::Site::stack_release); fault.error != 0) {
    return false;
  }
  return ::madvise(begin, bytes, MADV_DONTNEED) == 0;
}

[[noreturn]] void throw_mapping_error(int error, const char* operation, std::size_t bytes, const char* what) {
  throw std::system_error(error, std::generic_category(),
                          std::string("heddle: ") + operation + " of " + std::to_string(bytes) + " bytes for " + what);
}

// Maps [guard page | stack_bytes]. Returns the stack's low end, or nullptr
// with errno set and nothing left mapped. *failed_operation names the call.
std::byte* map_guarded(std::size_t stack_bytes, const char** failed_operation) noexcept {
  // Reserve everything inaccessible first, then open up the stack: the guard
  // page never exists writable, not even for an instant.
  std::size_t total = page_bytes() + stack_bytes;
  void* base = map_memory(total, PROT_NONE);
  if (base == MAP_FAILED) {
    *failed_operation = "mmap";
    return nullptr;
  }
  std::byte* low = static_cast<std::byte*>(base) + page_bytes();
  if (::mprotect(low, stack_bytes, PROT_READ | PROT_WRITE) != 0) {
    int error = errno;
    ::munmap(base, total);
    errno = error;
    *failed_operation = "mprotect";
    return nullptr;
  }
  // Each guarded stack is a VMA of its own, so only a big one could get a huge page.
  if (stack_bytes >= kHugePageBytes) forbid_huge_pages(low, stack_bytes);
  return low;
}

// Grows geometrically: a plain reserve(n + 1) per new stack would copy the
// whole vector every time.
template <typename Element>
void reserve_at_least(std::vector<Element>& elements, std::size_t count) {
  if (elements.capacity() < count) elements.reserve(std::max(count, 2 * elements.capacity()));
}

// A stack being handed out holds no frames, so any ASan poison on it is left
// over: from a task that never returned through its frames, or from whatever
// was mapped at these addresses before (munmap does not clear the shadow).
void forget_earlier_frames([[maybe_unused]] const Stack& stack) noexcept {
#if HEDDLE_ASAN
  __asan_unpoison_memory_region(stack.low, stack.size);
#endif
}

void unmap_guarded(const Stack& stack) noexcept {
  ::munmap(stack.low - page_bytes(), page_bytes() + stack.size);
  guarded_stacks_mapped.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace

StackPool::StackPool() : StackPool(Options{}) {}

StackPool::StackPool(Options options) : options_(options) {
  const std::size_t minimum = options_.bounded ? kMinimumBoundedStackBytes : kMinimumStackBytes;
  if (options_.stack_bytes < minimum) {
    throw std::invalid_argument("heddle: StackPool stack of " + std::to_string(options_.stack_bytes) +
                                " bytes is smaller than the minimum of " + std::to_string(minimum) + " bytes" +
                                (options_.bounded ? "" : " (a smaller stack needs a proven bound: Options::bounded)"));
  }
  if (options_.bounded && options_.stack_bytes < page_bytes()) {
    if (options_.guard == Guard::always) {
      throw std::invalid_argument("heddle: StackPool stack of " + std::to_string(options_.stack_bytes) +
                                  " bytes is smaller than a page, so it cannot have a guard page (Guard::always)");
    }
    sub_page_ = true;
    options_.guard = Guard::never;
    options_.stack_bytes = (options_.stack_bytes + kSlabStackAlignment - 1) / kSlabStackAlignment * kSlabStackAlignment;
  } else {
    options_.stack_bytes = round_up_to_pages(options_.stack_bytes);
  }
  to_trim_.reserve(4 * kTrimBatch);
}

StackPool::~StackPool() {
  std::lock_guard lock(mutex_);
  // Guarded stacks are mappings of their own only where the kernel has no
  // guard regions; otherwise they are in chunks_, like canary stacks.
  if (!detail::guard_regions_supported()) {
    for (const auto* list : {&idle_, &to_trim_}) {
      for (const Stack& stack : *list) {
        if (stack.kind == StackKind::guarded) unmap_guarded(stack);
      }
    }
  }
  const std::size_t live = stats_.guarded_created + stats_.canary_created - idle_.size() - to_trim_.size();
  if (live != 0) {
    // A live stack shares its chunk with idle ones, so no chunk can go.
    std::fprintf(stderr, "heddle: StackPool destroyed with %zu stacks still in use; their memory stays mapped\n",
                 live);
    return;
  }
  for (auto [memory, bytes] : chunks_) ::munmap(memory, bytes);
}

namespace {

// The per-thread cache of the default pool. Trivially destructible, so its
// access needs no TLS wrapper; the thread-exit flush is armed separately,
// when the cache is registered. A task may move between threads, so the
// cache is only reached through thread_stack_cache() (not inlined: no
// caller keeps a thread-local's address across a switch).
//
// Who may put stacks into a thread's cache: its own thread only, in acquire
// (a refill from the free list) and in release, and only while the cache
// is registered. Whichever of the two would put the first stack in
// registers the cache (enlist_thread_cache) before it does: stats() then
// counts what the cache holds as idle, and the thread-exit flush is armed
// to give it all back. A cache holding stacks unregistered is a leak: they
// are counted live, and are lost when the thread exits.
//
// When the cache is retired: the flush runs among the thread's
// thread_local destructors, in reverse order of their construction, so
// those of objects made before the cache was first registered run after
// it, and may still acquire and release stacks (a thread_local holding a
// task, a Stack, a WithStack). So the flush gives every stack back,
// deregisters the cache and retires it, for good: acquire and release then
// go straight to the shared free list on that thread. A retired cache is
// never registered again, so the registry never points into a dead
// thread's TLS (the flush would not run a second time to take it out).
//
//   state       enters by                            stacks in it  registry
//   unused      thread start                         none          absent
//   registered  first refill or release (enlist)     0 to 16       present
//   retired     the thread-exit flush                none          absent
constexpr std::size_t kThreadCacheStacks = 16;
enum class CacheState : std::uint8_t { unused, registered, retired };
struct ThreadStackCache {
  Stack stacks[kThreadCacheStacks];
  // Written by the owning thread only (plain load + store, no locked
  // instruction); read racily by StackPool::stats() through the registry.
  std::atomic<std::size_t> count{0};
  CacheState state = CacheState::unused;  // owner only
  std::size_t size() const noexcept { return count.load(std::memory_order_relaxed); }
  void set_size(std::size_t n) noexcept { count.store(n, std::memory_order_relaxed); }
};
thread_local ThreadStackCache t_stack_cache;

__attribute__((noinline)) ThreadStackCache& thread_stack_cache() noexcept { return t_stack_cache; }

// Every registered thread cache (one that may hold stacks), for stats():
// the number of stacks in use is derived (made - idle - cached), so acquire
// and release touch no shared counter.
struct CacheRegistry {
  std::mutex mutex;
  std::vector<ThreadStackCache*> caches;
};
CacheRegistry& cache_registry() {
  static auto* registry = new CacheRegistry;  // outlives every thread's exit
  return *registry;
}

}  // namespace

struct StackPoolAccess {
  static void flush(ThreadStackCache& cache) noexcept {
    for (std::size_t i = 0; i < cache.size(); ++i) cache.stacks[i].pool->release_shared(cache.stacks[i]);
    CacheRegistry& registry = cache_registry();
    std::lock_guard lock(registry.mutex);
    cache.set_size(0);
    std::erase(registry.caches, &cache);
    cache.state = CacheState::retired;
  }
};

namespace {
struct ThreadStackCacheFlush {
  bool armed = false;
  ~ThreadStackCacheFlush() { StackPoolAccess::flush(t_stack_cache); }
};
thread_local ThreadStackCacheFlush t_stack_cache_flush;

// Registers an unused cache; false for a retired one, which the caller
// must then leave alone. Out of line: once per thread. The registry lock is
// taken before the pool's, never under it, so callers hold no pool lock.
__attribute__((noinline)) bool enlist_thread_cache(ThreadStackCache& cache) noexcept {
  if (cache.state == CacheState::retired) return false;
  t_stack_cache_flush.armed = true;  // registers the flush at thread exit
  CacheRegistry& registry = cache_registry();
  std::lock_guard lock(registry.mutex);
  registry.caches.push_back(&cache);  // may throw bad_alloc: then we terminate, as for any noexcept
  cache.state = CacheState::registered;
  return true;
}
}  // namespace

// Inlined into acquire(): returning a Stack through memory from an
// out-of-line call cost spawn_join 6 ns in a store-forwarding stall.
inline bool StackPool::take_shared(Stack& stack) {
  std::lock_guard lock(mutex_);
  // Resident idle stacks first; then those still waiting to be trimmed
  // (their memory is resident too).
  for (auto* list : {&idle_, &to_trim_}) {
    if (list->empty()) continue;
    stack = list->back();
    list->pop_back();
    cold_ = std::min(cold_, idle_.size());
    return true;
  }
  return false;
}

Stack StackPool::acquire() {
  Stack stack;
  if (thread_cached_) {
    ThreadStackCache& cache = thread_stack_cache();
    std::size_t count = cache.size();
    // Refill half the cache under one lock (resident stacks only), into a
    // registered cache: a thread that only acquires (its tasks finish on
    // other threads) must give these back when it exits too.
    if (count == 0 && (cache.state == CacheState::registered || enlist_thread_cache(cache))) {
      std::lock_guard lock(mutex_);
      while (count < kThreadCacheStacks / 2 && idle_.size() > cold_) {
        cache.stacks[count++] = idle_.back();
        idle_.pop_back();
      }
      cache.set_size(count);  // under the lock: stats() never counts a stack twice
    }
    if (count != 0) {
      stack = cache.stacks[count - 1];
      cache.set_size(count - 1);
    }
  }
  if (!stack) take_shared(stack);
  if (!stack) stack = options_.guard == Guard::never ? make_canary() : make_guarded();
  prepare(stack);
  return stack;
}

void StackPool::prepare(Stack& stack) noexcept {
  forget_earlier_frames(stack);
  // Re-armed every time: a stack whose memory was given back reads as zeros.
  arm_canary(stack);
  // An earlier tenant's paint is stale: its marks would read as this task's.
  if (options_.paint) {
    paint(stack);
  } else {
    stack.painted = false;
  }
}

// Every stack gets a slot on the free list when it is made, so that release,
// which cannot fail, never allocates.
Stack StackPool::make_guarded() {
  if (detail::guard_regions_supported()) return make_guarded_in_chunk();
  bool automatic = options_.guard == Guard::automatic;
  if (automatic && !reserve_guarded_slot()) {
    announce_canary_fallback();
    return make_canary();
  }
  if (!automatic) guarded_stacks_mapped.fetch_add(1, std::memory_order_relaxed);
  const char* failed_operation = nullptr;
  std::byte* low = map_guarded(options_.stack_bytes, &failed_operation);
  if (low == nullptr) {
    int error = errno;
    guarded_stacks_mapped.fetch_sub(1, std::memory_order_relaxed);
    if (automatic && error == ENOMEM) {
      announce_canary_fallback();
      return make_canary();
    }
    throw_mapping_error(error, failed_operation, page_bytes() + options_.stack_bytes, "a guarded stack");
  }
  Stack stack{low, options_.stack_bytes, StackKind::guarded, false, true, this};
  std::lock_guard lock(mutex_);
  try {
    reserve_at_least(idle_, stats_.guarded_created + stats_.canary_created + 1);
  } catch (...) {
    unmap_guarded(stack);
    throw;
  }
  ++stats_.guarded_created;
  return stack;
}

// A guarded stack carved from a chunk of [guard page | stack] units, the
// guard pages installed when the chunk is made (one madvise each).
Stack StackPool::make_guarded_in_chunk() {
  std::lock_guard lock(mutex_);
  reserve_at_least(idle_, stats_.guarded_created + stats_.canary_created + 1);
  if (guarded_fresh_.empty()) {
    const std::size_t unit = page_bytes() + options_.stack_bytes;
    const std::size_t count = std::max<std::size_t>(1, kCanaryChunkBytes / unit);
    const std::size_t bytes = count * unit;
    guarded_fresh_.reserve(count);
    reserve_at_least(chunks_, chunks_.size() + 1);
    void* chunk = map_memory(bytes, PROT_READ | PROT_WRITE);
    if (chunk == MAP_FAILED) throw_mapping_error(errno, "mmap", bytes, "guarded stacks");
    forbid_huge_pages(chunk, bytes);
    auto* base = static_cast<std::byte*>(chunk);
    for (std::size_t i = 0; i < count; ++i) {
      if (!install_guard_page(base + i * unit)) {
        const int error = errno;
        ::munmap(chunk, bytes);
        guarded_fresh_.clear();
        throw_mapping_error(error, "madvise(MADV_GUARD_INSTALL)", page_bytes(), "a stack's guard page");
      }
      guarded_fresh_.push_back(Stack{base + i * unit + page_bytes(), options_.stack_bytes, StackKind::guarded, false, true, this});
    }
    chunks_.emplace_back(base, bytes);
  }
  Stack stack = guarded_fresh_.back();
  guarded_fresh_.pop_back();
  ++stats_.guarded_created;
  return stack;
}

Stack StackPool::make_canary() {
  std::lock_guard lock(mutex_);
  reserve_at_least(idle_, stats_.guarded_created + stats_.canary_created + 1);
  if (canary_fresh_.empty()) {
    // Page-sized stacks are carved kCanaryBytes below page boundaries, so
    // that each one's canary zone is the end of the page that holds its
    // lower neighbour's top: a page a neighbour in use keeps resident
    // anyway. Reading the canary (at every switch-out) then costs no page of
    // its own, also on kernels where reading a never-written page allocates
    // one rather than mapping the shared zero page. The chunk's first page
    // holds only the first stack's zone. Sub-page stacks are many to a page
    // already and are carved from the start.
    // Where the kernel has guard regions, the chunk's first page is one:
    // an overflow running down through the stacks below its own faults
    // there at the latest, instead of running on into whatever is mapped
    // below the chunk.
    const std::size_t floor = detail::guard_regions_supported() ? page_bytes() : 0;
    const std::size_t shift = floor + (sub_page_ ? 0 : page_bytes() - kCanaryBytes);
    const std::size_t lead = floor + (sub_page_ ? 0 : page_bytes());
    std::size_t count = std::max<std::size_t>(1, (kCanaryChunkBytes - lead) / options_.stack_bytes);
    std::size_t bytes = count * options_.stack_bytes + lead;
    canary_fresh_.reserve(count);
    reserve_at_least(chunks_, chunks_.size() + 1);
    void* chunk = map_memory(bytes, PROT_READ | PROT_WRITE);
    if (chunk == MAP_FAILED) throw_mapping_error(errno, "mmap", bytes, "canary stacks");
    forbid_huge_pages(chunk, bytes);
    if (floor != 0 && !install_guard_page(static_cast<std::byte*>(chunk))) {
      const int error = errno;
      ::munmap(chunk, bytes);
      throw_mapping_error(error, "madvise(MADV_GUARD_INSTALL)", page_bytes(), "a chunk's guard page");
    }
    chunks_.emplace_back(static_cast<std::byte*>(chunk), bytes);
    for (std::size_t i = 0; i < count; ++i) {
      canary_fresh_.push_back(Stack{static_cast<std::byte*>(chunk) + shift + i * options_.stack_bytes, options_.stack_bytes,
                                    sub_page_ ? StackKind::slab : StackKind::canary, false, false, this});
    }
  }
  Stack stack = canary_fresh_.back();
  canary_fresh_.pop_back();
  ++stats_.canary_created;
  return stack;
}

void StackPool::release(const Stack& stack) noexcept {
  if (!stack) return;
  assert(stack.pool == this && "heddle: stack released to a pool that did not make it");
  if (thread_cached_) {
    ThreadStackCache& cache = thread_stack_cache();
    std::size_t count = cache.size();
    if (count == kThreadCacheStacks) {
      // Full: give half back under one lock, within the resident budget.
      std::lock_guard lock(mutex_);
      while (count > kThreadCacheStacks / 2 && idle_.size() - cold_ + to_trim_.size() < options_.max_resident_idle) {
        idle_.push_back(cache.stacks[--count]);  // never allocates: room was reserved when it was made
      }
      cache.set_size(count);
    }
    if (count < kThreadCacheStacks) {
      if (cache.state != CacheState::registered && !enlist_thread_cache(cache)) [[unlikely]] {
        release_shared(stack);  // retired: the thread is exiting
        return;
      }
      cache.stacks[count] = stack;
      cache.set_size(count + 1);
      return;
    }
  }
  release_shared(stack);
}

void StackPool::release_shared(const Stack& stack) noexcept {
  Stack single = stack;
  {
    std::lock_guard lock(mutex_);
    // Slab stacks share pages with their neighbours: none is given back alone.
    if (sub_page_ || idle_.size() - cold_ + to_trim_.size() < options_.max_resident_idle) {
      idle_.push_back(stack);  // never allocates: room was reserved when the stack was made
      return;
    }
    if (to_trim_.size() < to_trim_.capacity()) {
      to_trim_.push_back(stack);  // never allocates: reserved in the constructor
      if (to_trim_.size() < kTrimBatch) return;
      single = Stack{};
    }
  }
  if (single) {
    // Many threads are releasing at once and the batch is full: give this
    // one back on its own rather than allocate in a noexcept path.
    const bool released = release_memory(single.low, single.size);
    single.painted = false;
    std::lock_guard lock(mutex_);
    if (!released) ++stats_.release_failures;
    push_cold(single);
    return;
  }
  trim_batch();
}

// Gives a batch of idle stacks' memory back to the kernel. The stacks go on
// the free list only afterwards: once there, another thread may take one
// and start using the memory this call throws away.
void StackPool::trim_batch() noexcept {
  // Thread-local, not on the stack: this runs wherever a task is released,
  // often on another task's stack, and 64 stacks' descriptors would be the
  // deepest frame there (tools/heddle-stack counts it in every bound).
  // Nothing here suspends, so one buffer per thread is enough.
  static thread_local std::array<Stack, kTrimBatch> batch;
  std::size_t count = 0;
  std::size_t failures = 0;
  {
    std::lock_guard lock(mutex_);
    count = std::min(to_trim_.size(), kTrimBatch);
    std::copy(to_trim_.end() - static_cast<std::ptrdiff_t>(count), to_trim_.end(), batch.begin());
    to_trim_.resize(to_trim_.size() - count);
  }
  std::sort(batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(count),
            [](const Stack& a, const Stack& b) { return a.low < b.low; });
  for (std::size_t first = 0; first < count;) {
    std::byte* begin = batch[first].low;
    std::byte* end = batch[first].high();
    std::size_t next = first + 1;
    // Neighbours in a chunk: canary stacks touch, guarded ones have a guard
    // page between them (madvise keeps guard regions: MADV_DONTNEED over
    // one leaves it in place).
    const std::size_t gap = batch[first].kind == StackKind::guarded && detail::guard_regions_supported() ? page_bytes() : 0;
    while (next < count && batch[next].low == end + gap) end = batch[next++].high();
    // A canary stack starts kCanaryBytes below a page (make_canary): its
    // own pages run from there up to the page that holds its top and its
    // upper neighbour's canary zone. That zone is zero (canary_word), which
    // is what a page given back reads as, so the neighbour's canary holds.
    begin = page_aligned_up(begin);
    end = page_aligned_up(end);
    if (!release_memory(begin, static_cast<std::size_t>(end - begin))) failures += next - first;
    first = next;
  }
  std::lock_guard lock(mutex_);
  stats_.release_failures += failures;
  for (std::size_t i = 0; i < count; ++i) {
    batch[i].painted = false;
    push_cold(batch[i]);
  }
}

// Puts a stack whose memory was given back at the cold end of the free list,
// so that resident stacks are handed out before it. Caller holds mutex_.
void StackPool::push_cold(const Stack& stack) noexcept {
  idle_.push_back(stack);  // never allocates: room was reserved when the stack was made
  std::swap(idle_[cold_], idle_.back());
  ++cold_;
}

StackPool::Stats StackPool::stats() const {
  std::lock_guard lock(mutex_);
  Stats stats = stats_;
  std::size_t cached = 0;
  if (thread_cached_) {
    CacheRegistry& registry = cache_registry();
    std::lock_guard registry_lock(registry.mutex);
    for (const ThreadStackCache* cache : registry.caches) cached += cache->size();
  }
  stats.idle = idle_.size() + to_trim_.size() + cached;
  const std::size_t made = stats_.guarded_created + stats_.canary_created;
  stats.live = made >= stats.idle ? made - stats.idle : 0;  // racy reads of other threads' caches
  return stats;
}

StackPool& StackPool::default_pool() {
  // Leaked on purpose: a task may finish, and give its stack back, while
  // static destructors run.
  static StackPool* pool = [] {
    auto* made = new StackPool();
    made->thread_cached_ = true;
    return made;
  }();
  return *pool;
}

}  // namespace heddle
