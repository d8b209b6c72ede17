// heddle sys: fault injection, for tests of what heddle does when the
// system says no.
//
// Owns: the table of injected faults (heddle::fault::inject) and the hook
// the system-call sites of the stack, sched and io layers consult. A fault
// makes chosen calls at one site fail with an errno, or (for socket reads
// and writes) transfer fewer bytes than asked, as the kernel may. The call
// is not made when an error is injected, so nothing is consumed: a
// connection whose accept failed stays in the backlog, bytes whose read
// failed stay in the socket.
//
// Compiled in only when heddle is configured with
// -DHEDDLE_FAULT_INJECTION=ON (the dev, dev-clang and tsan presets, where
// the fault tests run). Otherwise `compiled_in` is false, every hook is the
// constant "no fault" that the compiler removes, and inject() throws
// std::logic_error saying so.
//
// Sites and what each may inject (inject() rejects anything else with
// std::invalid_argument):
//   stack_map          mmap of StackPool stacks: ENOMEM, EAGAIN
//   stack_release      madvise(MADV_DONTNEED) of idle pool stacks: ENOMEM, EINVAL
//   accept             Listener::accept: EMFILE, ENFILE, ENOBUFS, ENOMEM, ECONNABORTED
//   socket_read        StreamSocket/DatagramSocket reads: ECONNRESET, ETIMEDOUT, EAGAIN, short counts
//   socket_write       StreamSocket/DatagramSocket writes: ECONNRESET, EPIPE, EAGAIN, short counts
//   uring_submit       io_uring_submit: EBUSY, EAGAIN (completion queue pressure)
//   uring_queue_full   io_uring_get_sqe finds the submission queue full
//   wake_write         the eventfd write that wakes a sleeping Loop or Pool worker: EINTR, EAGAIN
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#ifndef HEDDLE_FAULT_INJECTION
#define HEDDLE_FAULT_INJECTION 0
#endif

namespace heddle::fault {

enum class Site : std::uint8_t {
  stack_map,
  stack_release,
  accept,
  socket_read,
  socket_write,
  uring_submit,
  uring_queue_full,
  wake_write,
};
inline constexpr std::size_t kSiteCount = 8;
const char* to_string(Site site) noexcept;

inline constexpr bool compiled_in = HEDDLE_FAULT_INJECTION != 0;

struct Fault {
  int error = 0;                 // the errno to fail with (0: none)
  std::size_t short_length = 0;  // socket_read/socket_write: transfer at most this many bytes (0: none)
  std::uint64_t skip = 0;        // let this many calls through first
  std::uint64_t times = 1;       // then fault this many calls (kAlways: every one, until cleared)
};
inline constexpr std::uint64_t kAlways = ~std::uint64_t{0};

// From now on, at `site`, after fault.skip calls, the next fault.times calls
// get the fault. Replaces what was injected at `site` before. Thread-safe.
void inject(Site site, Fault fault);
// Removes the fault at `site` (or at every site); counts are kept.
void clear(Site site) noexcept;
void clear_all() noexcept;
// How many calls at `site` got a fault since the process started.
std::uint64_t injected(Site site) noexcept;

// Injects in its constructor and clears the site in its destructor.
class Injection {
 public:
  Injection(Site site, Fault fault) : site_(site) { inject(site, fault); }
  ~Injection() { clear(site_); }
  Injection(const Injection&) = delete;
  Injection& operator=(const Injection&) = delete;

 private:
  Site site_;
};

namespace detail {

// What a call site must do: fail with `error`, or shorten its transfer to
// `short_length` bytes (or, for uring_queue_full, act as if the queue were
// full). `hit` false: go on as normal.
struct Decision {
  bool hit = false;
  int error = 0;
  std::size_t short_length = 0;
};

#if HEDDLE_FAULT_INJECTION
extern std::atomic<std::uint32_t> armed_sites;  // bit (1 << site): a fault is injected there
Decision take_slow(Site site) noexcept;
// One relaxed load and a branch at a site with nothing injected.
inline Decision take(Site site) noexcept {
  if ((armed_sites.load(std::memory_order_relaxed) & (1u << static_cast<unsigned>(site))) == 0) return {};
  return take_slow(site);
}
#else
constexpr Decision take(Site) noexcept { return {}; }
#endif

}  // namespace detail
}  // namespace heddle::fault
