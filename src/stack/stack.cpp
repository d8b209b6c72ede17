// heddle stack: canaries, painting, high-water marks and caller-provided spans.
//
// Everything here reads or writes stack memory that a task may have used. Under
// AddressSanitizer that memory can still carry the poison of frames that were
// abandoned rather than returned from (a cancelled task, a stack recycled
// after a crash report in a test), so the functions that touch it are
// HEDDLE_NO_SANITIZE_ADDRESS and never call an intercepted libc routine on it
// while it may be poisoned.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "heddle/arch/sanitizer.hpp"
#include "heddle/stack/stack.hpp"

#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace heddle {
namespace {

// Stack memory is raw storage that we view as words; may_alias keeps the
// compiler from assuming these loads cannot see the bytes a task stored.
using StackWord = std::uint64_t __attribute__((may_alias));

constexpr std::uint64_t kPaintWord = 0xA5A5'A5A5'A5A5'A5A5ULL;
static_assert(static_cast<unsigned char>(kPaintByte) == (kPaintWord & 0xFF));

constexpr std::size_t kWordBytes = sizeof(std::uint64_t);
constexpr std::size_t kCanaryWords = kCanaryBytes / kWordBytes;

std::size_t page_bytes() noexcept {
  static const std::size_t bytes = static_cast<std::size_t>(::getpagesize());
  return bytes;
}

bool has_canary_zone(const Stack& stack) noexcept { return !stack.has_guard_page(); }

}  // namespace

const char* to_string(StackKind kind) noexcept {
  switch (kind) {
    case StackKind::guarded: return "guarded";
    case StackKind::canary: return "canary";
    case StackKind::static_storage: return "static_storage";
    case StackKind::span: return "span";
    case StackKind::nested: return "nested";
    case StackKind::slab: return "slab";
  }
  return "unknown";
}

// Volatile stores: the zone may be poisoned, and the compiler must not merge
// them into a memset call that ASan would check.
HEDDLE_NO_SANITIZE_ADDRESS void arm_canary(const Stack& stack) noexcept {
  if (!has_canary_zone(stack)) return;
  auto* zone = reinterpret_cast<volatile StackWord*>(stack.low);
  const std::uint64_t word = canary_word(stack);
  // Written only where it differs: a zero canary on a page nobody wrote
  // must stay unwritten, or the page would be allocated.
  for (std::size_t i = 0; i < kCanaryWords; ++i) {
    if (zone[i] != word) zone[i] = word;
  }
}

HEDDLE_NO_SANITIZE_ADDRESS void paint(Stack& stack, std::size_t keep_top_bytes) noexcept {
  std::byte* begin = stack.usable_low();
  std::byte* end = stack.high() - std::min(keep_top_bytes, stack.size);
  if (end > begin) {
#if HEDDLE_ASAN
    // Nothing lives below the kept top, so stale poison there is meaningless;
    // clearing it lets the (intercepted) memset through.
    __asan_unpoison_memory_region(begin, static_cast<std::size_t>(end - begin));
#endif
    std::memset(begin, static_cast<int>(kPaintByte), static_cast<std::size_t>(end - begin));
  }
  stack.painted = true;
}

namespace {

// Scans upward from the bottom for the first word a task has written.
HEDDLE_NO_SANITIZE_ADDRESS StackUsage painted_high_water(const Stack& stack) noexcept {
  const std::byte* cursor = stack.usable_low();
  const std::byte* high = stack.high();
  while (cursor + kWordBytes <= high && *reinterpret_cast<const StackWord*>(cursor) == kPaintWord) {
    cursor += kWordBytes;
  }
  return {static_cast<std::size_t>(high - cursor), kWordBytes};
}

// Index of the lowest resident page in [first, pages), or `pages` if none.
std::size_t lowest_resident_page(std::byte* base, std::size_t pages, std::size_t first) noexcept {
  constexpr std::size_t kBatch = 256;
  unsigned char resident[kBatch];
  for (std::size_t index = first; index < pages; index += kBatch) {
    std::size_t count = std::min(kBatch, pages - index);
    if (::mincore(base + index * page_bytes(), count * page_bytes(), resident) != 0) return pages;
    for (std::size_t i = 0; i < count; ++i) {
      if (resident[i] & 1) return index + i;
    }
  }
  return pages;
}

// Without paint, the kernel's record of which pages were ever touched is the
// next best thing. A pool's canary stack starts kCanaryBytes below a page
// (StackPool::make_canary), its canary zone on its lower neighbour's top
// page: its own pages start above the zone and end with the page that holds
// its top.
StackUsage resident_high_water(std::byte* first_page, std::size_t pages) noexcept {
  std::size_t lowest = lowest_resident_page(first_page, pages, 0);
  return {(pages - lowest) * page_bytes(), page_bytes()};
}

// The stack's first own page when a pool mapped it (guarded: its low end;
// a pool's canary stack: just above its canary zone), or null.
std::byte* first_mapped_page(const Stack& stack) noexcept {
  if (stack.size % page_bytes() != 0) return nullptr;
  std::byte* first = stack.kind == StackKind::guarded  ? stack.low
                     : stack.kind == StackKind::canary ? stack.low + kCanaryBytes
                                                       : nullptr;
  return first && reinterpret_cast<std::uintptr_t>(first) % page_bytes() == 0 ? first : nullptr;
}

std::string address_text(const void* address) {
  char text[2 + 2 * sizeof(void*) + 1];
  std::snprintf(text, sizeof text, "%p", address);
  return text;
}

}  // namespace

StackUsage high_water(const Stack& stack) noexcept {
  if (!stack) return {};
  if (stack.painted) return painted_high_water(stack);
  if (std::byte* first = first_mapped_page(stack)) return resident_high_water(first, stack.size / page_bytes());
  return {};
}

Stack stack_from_span(std::span<std::byte> region, StackKind kind) {
  if (kind == StackKind::guarded) {
    throw std::invalid_argument("heddle: only a StackPool makes guarded stacks; a span has no guard page");
  }
  if (region.size() < kMinimumStackBytes) {
    throw std::invalid_argument("heddle: stack of " + std::to_string(region.size()) +
                                " bytes is smaller than the minimum of " + std::to_string(kMinimumStackBytes) +
                                " bytes");
  }
  if (reinterpret_cast<std::uintptr_t>(region.data()) % 16 != 0) {
    throw std::invalid_argument("heddle: stack at " + address_text(region.data()) + " is not 16-byte aligned");
  }
  Stack stack{region.data(), region.size(), kind, false, false, nullptr};
  arm_canary(stack);
  return stack;
}

namespace detail {

#ifndef MADV_GUARD_INSTALL  // Linux 6.13's guard regions; Debian 12's headers predate them
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

Stack static_stack(std::byte* storage, std::size_t bytes, std::size_t guard_bytes,
                   std::atomic<StaticGuard>& guard) noexcept {
  if (guard_bytes != 0 && guard.load(std::memory_order_relaxed) == StaticGuard::none && guard_bytes == page_bytes() &&
      reinterpret_cast<std::uintptr_t>(storage) % page_bytes() == 0) {
    if (guard_regions_supported() && ::madvise(storage, guard_bytes, MADV_GUARD_INSTALL) == 0) {
      guard.store(StaticGuard::region, std::memory_order_relaxed);
    } else if (::mprotect(storage, guard_bytes, PROT_NONE) == 0) {
      guard.store(StaticGuard::protected_page, std::memory_order_relaxed);
    }
  }
  // The stack is the same bytes either way: what the program asked for.
  const bool guarded = guard.load(std::memory_order_relaxed) != StaticGuard::none;
  Stack stack{storage + guard_bytes, bytes - guard_bytes, StackKind::static_storage, false, guarded, nullptr};
  arm_canary(stack);  // nothing to do when guarded
  return stack;
}

void remove_static_guard(std::byte* storage, std::size_t guard_bytes, StaticGuard guard) noexcept {
  if (guard == StaticGuard::region) {
    ::madvise(storage, guard_bytes, MADV_GUARD_REMOVE);
  } else {
    ::mprotect(storage, guard_bytes, PROT_READ | PROT_WRITE);
  }
}

}  // namespace detail

}  // namespace heddle
