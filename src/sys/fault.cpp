// heddle sys: the table of injected faults (include/heddle/sys/fault.hpp).
//
// A mutex guards the table: faults are for tests, and a site with nothing
// injected never reaches it (armed_sites, one relaxed load). `armed_sites`
// bits are set and cleared under the mutex; a site that sees its bit set
// takes the mutex and decides from the table, so a racing clear() at worst
// lets one call through that would have failed.
#include "heddle/sys/fault.hpp"

#include <cerrno>
#include <initializer_list>
#include <mutex>
#include <stdexcept>
#include <string>

namespace heddle::fault {
namespace {

struct Entry {
  Fault fault;
  bool active = false;
  std::uint64_t seen = 0;      // calls since inject()
  std::uint64_t injected = 0;  // total, never reset
};

struct Table {
  std::mutex mutex;
  Entry entries[kSiteCount];
};

Table& table() {
  static Table t;
  return t;
}

constexpr const char* kNames[kSiteCount] = {"stack_map",   "stack_release", "accept",           "socket_read",
                                            "socket_write", "uring_submit",  "uring_queue_full", "wake_write"};

bool allowed(Site site, int error) {
  auto any = [error](std::initializer_list<int> errors) {
    for (int e : errors) {
      if (e == error) return true;
    }
    return false;
  };
  switch (site) {
    case Site::stack_map: return any({ENOMEM, EAGAIN});
    case Site::stack_release: return any({ENOMEM, EINVAL});
    case Site::accept: return any({EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED});
    case Site::socket_read: return any({ECONNRESET, ETIMEDOUT, EAGAIN});
    case Site::socket_write: return any({ECONNRESET, EPIPE, EAGAIN});
    case Site::uring_submit: return any({EBUSY, EAGAIN});
    case Site::uring_queue_full: return false;
    case Site::wake_write: return any({EINTR, EAGAIN});
  }
  return false;
}

}  // namespace

const char* to_string(Site site) noexcept {
  const auto index = static_cast<std::size_t>(site);
  return index < kSiteCount ? kNames[index] : "unknown";
}

void inject(Site site, Fault fault) {
  const auto index = static_cast<std::size_t>(site);
  if (index >= kSiteCount) throw std::invalid_argument("heddle::fault::inject: no such site");
  const std::string where = std::string("heddle::fault::inject(") + kNames[index] + ")";
  if (!compiled_in) {
    throw std::logic_error(where + ": fault injection is not compiled in (configure heddle with "
                                   "-DHEDDLE_FAULT_INJECTION=ON)");
  }
  const bool shortens = site == Site::socket_read || site == Site::socket_write;
  if (fault.short_length != 0 && !shortens) {
    throw std::invalid_argument(where + ": only socket_read and socket_write take short counts");
  }
  if (fault.short_length != 0 && fault.error != 0) {
    throw std::invalid_argument(where + ": an error or a short count, not both");
  }
  if (fault.error == 0 && fault.short_length == 0 && site != Site::uring_queue_full) {
    throw std::invalid_argument(where + ": the fault has no error and no short count");
  }
  if (fault.error != 0 && !allowed(site, fault.error)) {
    throw std::invalid_argument(where + ": errno " + std::to_string(fault.error) +
                                " is not one this site can meet (see heddle/sys/fault.hpp)");
  }
  if (fault.times == 0) throw std::invalid_argument(where + ": times must be at least 1");
  if (fault.times == kAlways && (site == Site::uring_submit || site == Site::uring_queue_full)) {
    throw std::invalid_argument(where + ": heddle retries this site until it succeeds, so `times` must be finite");
  }
#if HEDDLE_FAULT_INJECTION
  Table& t = table();
  std::lock_guard lock(t.mutex);
  Entry& e = t.entries[index];
  e.fault = fault;
  e.active = true;
  e.seen = 0;
  detail::armed_sites.fetch_or(1u << index, std::memory_order_relaxed);
#endif
}

void clear(Site site) noexcept {
  const auto index = static_cast<std::size_t>(site);
  if (index >= kSiteCount) return;
  Table& t = table();
  std::lock_guard lock(t.mutex);
  t.entries[index].active = false;
#if HEDDLE_FAULT_INJECTION
  detail::armed_sites.fetch_and(~(1u << index), std::memory_order_relaxed);
#endif
}

void clear_all() noexcept {
  for (std::size_t i = 0; i < kSiteCount; ++i) clear(static_cast<Site>(i));
}

std::uint64_t injected(Site site) noexcept {
  const auto index = static_cast<std::size_t>(site);
  if (index >= kSiteCount) return 0;
  Table& t = table();
  std::lock_guard lock(t.mutex);
  return t.entries[index].injected;
}

#if HEDDLE_FAULT_INJECTION
namespace detail {

std::atomic<std::uint32_t> armed_sites{0};

Decision take_slow(Site site) noexcept {
  const auto index = static_cast<std::size_t>(site);
  Table& t = table();
  std::lock_guard lock(t.mutex);
  Entry& e = t.entries[index];
  if (!e.active) return {};
  const std::uint64_t call = e.seen++;
  if (call < e.fault.skip) return {};
  if (e.fault.times != kAlways && call - e.fault.skip >= e.fault.times) {
    e.active = false;  // spent
    armed_sites.fetch_and(~(1u << index), std::memory_order_relaxed);
    return {};
  }
  ++e.injected;
  return {true, e.fault.error, e.fault.short_length};
}

}  // namespace detail
#endif

}  // namespace heddle::fault
