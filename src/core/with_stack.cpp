// heddle core: the segment pools of with_stack (include/heddle/core/with_stack.hpp).
// One StackPool per size class, made on first use and never destroyed (a
// segment may be in use until the process exits).
#include "heddle/core/with_stack.hpp"

#include "heddle/core/detail/stack_profile.hpp"

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
