// heddle io: performing one operation, on a Loop's reactor or on a plain
// thread; the choice of reactor.
#include "heddle/io/detail/operation.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <optional>
#include <string>
#include <system_error>

#include "heddle/io/backend.hpp"
#include "heddle/io/descriptor.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sched/pool.hpp"
#include "heddle/sys/fault.hpp"
#include "in_flight.hpp"
#include "reactor.hpp"

namespace heddle::io {

std::string_view to_string(Backend backend) noexcept {
  return backend == Backend::io_uring ? "io_uring" : "epoll";
}

namespace {

enum class Choice { automatic, io_uring, epoll };

Choice process_choice() {
  static const Choice choice = [] {
    const char* value = std::getenv("HEDDLE_IO");
    if (!value || !*value || std::strcmp(value, "auto") == 0) return Choice::automatic;
    if (std::strcmp(value, "io_uring") == 0) return Choice::io_uring;
    if (std::strcmp(value, "epoll") == 0) return Choice::epoll;
    throw std::invalid_argument(std::string("heddle io: HEDDLE_IO=") + value +
                                " is not one of io_uring, epoll, auto");
  }();
  return choice;
}

std::unique_ptr<detail::Reactor> make_chosen_reactor() {
  const Choice choice = process_choice();
#if HEDDLE_HAVE_URING
  if (choice != Choice::epoll) {
    if (auto reactor = detail::make_uring_reactor()) return reactor;
    if (choice == Choice::io_uring) {
      throw std::runtime_error("heddle io: HEDDLE_IO=io_uring, but the kernel refused to set up an io_uring");
    }
  }
#else
  if (choice == Choice::io_uring) {
    throw std::runtime_error("heddle io: HEDDLE_IO=io_uring, but heddle was built without liburing");
  }
#endif
  return detail::make_epoll_reactor();
}

}  // namespace

bool io_uring_available() noexcept {
#if HEDDLE_HAVE_URING
  static const bool available = detail::make_uring_reactor() != nullptr;
  return available;
#else
  return false;
#endif
}

Backend current_backend() {
  if (Loop* loop = Loop::current()) return detail::reactor_of(*loop).backend();
  if (Pool::worker_here()) return detail::reactor_of_worker().backend();
  const Choice choice = process_choice();
  if (choice == Choice::epoll) return Backend::epoll;
  if (choice == Choice::io_uring || io_uring_available()) {
    if (!io_uring_available()) throw std::runtime_error("heddle io: HEDDLE_IO=io_uring, but io_uring is unavailable");
    return Backend::io_uring;
  }
  return Backend::epoll;
}

void use_backend(Loop& loop, Backend backend) {
  if (loop.driver()) throw std::logic_error("heddle::io::use_backend: the loop already has a reactor");
  std::unique_ptr<detail::Reactor> reactor;
  if (backend == Backend::epoll) {
    reactor = detail::make_epoll_reactor();
  } else {
#if HEDDLE_HAVE_URING
    reactor = detail::make_uring_reactor();
#endif
    if (!reactor) throw std::runtime_error("heddle::io::use_backend: io_uring is unavailable here");
  }
  reactor->bind_to(&loop);
  loop.set_driver(std::move(reactor));
}

ReactorStats reactor_stats(const Loop& loop) noexcept {
  if (auto* driver = loop.driver()) return static_cast<const detail::Reactor*>(driver)->stats();
  return {};
}

namespace detail {

Reactor& reactor_of(Loop& loop) {
  if (auto* driver = loop.driver()) return *static_cast<Reactor*>(driver);  // only the io layer sets drivers
  auto reactor = make_chosen_reactor();
  reactor->bind_to(&loop);
  Reactor& result = *reactor;
  loop.set_driver(std::move(reactor));
  return result;
}

Reactor& reactor_of_worker() {
  if (auto* driver = Pool::driver_here()) return *static_cast<Reactor*>(driver);  // only the io layer sets drivers
  auto reactor = make_chosen_reactor();
  reactor->bind_to(nullptr);  // this worker's thread
  Reactor& result = *reactor;
  Pool::set_driver_here(std::move(reactor));
  return result;
}

long check(long result, const char* what) {
  if (result < 0) throw std::system_error(static_cast<int>(-result), std::system_category(), what);
  return result;
}

int attempt(Operation& op) noexcept {
  for (;;) {
    long r = -1;
    switch (op.kind) {
      case OpKind::read:
        r = ::read(op.fd, op.buffer, op.length);
        break;
      case OpKind::write:
        r = ::write(op.fd, op.buffer, op.length);
        break;
      case OpKind::recv:
        r = ::recv(op.fd, op.buffer, op.length, op.flags | MSG_DONTWAIT);
        break;
      case OpKind::send:
        r = ::send(op.fd, op.buffer, op.length, op.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
      case OpKind::recvmsg:
        r = ::recvmsg(op.fd, op.message, op.flags | MSG_DONTWAIT);
        break;
      case OpKind::sendmsg:
        r = ::sendmsg(op.fd, op.message, op.flags | MSG_DONTWAIT | MSG_NOSIGNAL);
        break;
      case OpKind::accept:
        r = ::accept4(op.fd, op.address, op.address ? &op.address_length : nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (r < 0 && errno == EWOULDBLOCK) errno = EAGAIN;
        break;
      case OpKind::connect:
        if (!op.connect_started) {
          r = ::connect(op.fd, op.address, op.address_length);
          if (r < 0 && errno == EINPROGRESS) {
            op.connect_started = true;
            return -EAGAIN;
          }
        } else {
          // Writable after EINPROGRESS: the connection attempt is over;
          // SO_ERROR says how it went (0 while still in progress is not
          // possible once writable, but EINPROGRESS-style answers retry).
          pollfd fd{op.fd, POLLOUT, 0};
          if (::poll(&fd, 1, 0) == 0) return -EAGAIN;
          int error = 0;
          socklen_t length = sizeof error;
          if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0) return -errno;
          return -error;
        }
        break;
      case OpKind::poll_readable:
      case OpKind::poll_writable: {
        pollfd fd{op.fd, static_cast<short>(op.kind == OpKind::poll_readable ? POLLIN : POLLOUT), 0};
        r = ::poll(&fd, 1, 0);
        if (r == 0) return -EAGAIN;
        if (r > 0) r = fd.revents;
        break;
      }
      case OpKind::pread:
        r = ::pread(op.fd, op.buffer, op.length, static_cast<off_t>(op.offset));
        break;
      case OpKind::pwrite:
        r = ::pwrite(op.fd, op.buffer, op.length, static_cast<off_t>(op.offset));
        break;
      case OpKind::fsync:
        r = ::fsync(op.fd);
        break;
      case OpKind::fdatasync:
        r = ::fdatasync(op.fd);
        break;
      case OpKind::openat:
        r = ::openat(op.fd, op.path, op.flags | O_CLOEXEC, static_cast<mode_t>(op.mode));
        break;
      case OpKind::statx:
        r = ::statx(op.fd, op.path, op.flags, op.mode, op.stat);
        break;
    }
    if (r >= 0) return static_cast<int>(r);
    if (errno == EINTR) continue;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
  }
}

namespace {

// A plain thread: the system call, waiting in poll(2) while not ready.
int perform_on_thread(Operation& op) {
  for (;;) {
    const int r = attempt(op);
    if (r != -EAGAIN || is_file_operation(op.kind)) return r;
    int timeout_ms = -1;
    if (op.deadline != Clock::time_point::max()) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(op.deadline - Clock::now()).count();
      if (left <= 0) return -ETIMEDOUT;
      timeout_ms = left > 0x7fffffff ? 0x7fffffff : static_cast<int>(left);
    }
    pollfd fd{op.fd, static_cast<short>(waits_for_writable(op.kind) ? POLLOUT : POLLIN), 0};
    const int ready = ::poll(&fd, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) return -errno;
  }
}

bool is_stream_socket(int fd) noexcept {
  int type = 0;
  socklen_t length = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM;
}

// The fault hook (heddle/sys/fault.hpp) for accepts and socket
// transfers. An injected error is returned without making the call, so
// nothing is consumed; a short count shortens the request. EAGAIN is "not
// ready yet": the caller first waits for readiness through its backend (as
// after a real EAGAIN), then makes the call. It is not delivered as a bare
// EAGAIN with the data already there: the kernel never answers so, and an
// edge-triggered reactor rightly waits for the next edge after an EAGAIN.
std::optional<int> injected_fault(Operation& op, bool& wait_first) noexcept {
  fault::Site site;
  switch (op.kind) {
    case OpKind::accept:
      site = fault::Site::accept;
      break;
    case OpKind::recv:
    case OpKind::recvmsg:
      site = fault::Site::socket_read;
      break;
    case OpKind::send:
    case OpKind::sendmsg:
      site = fault::Site::socket_write;
      break;
    default:
      return std::nullopt;
  }
  const fault::detail::Decision fault = fault::detail::take(site);
  if (fault.error == EAGAIN) {
    wait_first = true;
  } else if (fault.error != 0) {
    return -fault.error;
  } else if (fault.short_length != 0 && op.length > fault.short_length && is_stream_socket(op.fd)) {
    op.length = fault.short_length;  // a datagram is never cut short: all or nothing
  }
  return std::nullopt;
}

// On `reactor`, listed under op's descriptor number for the whole call,
// so that closing the descriptor ends it first (in_flight.cpp).
int perform_listed(Reactor& reactor, Operation& op) {
  if (!op.descriptor || op.fd < 0) return reactor.perform(op);
  op.reactor = &reactor;
  if (!enter(op)) return -ECANCELED;  // closed since op.fd was read
  struct Leave {
    Operation& op;
    ~Leave() { leave(op); }
  } leave_when_done{op};
  return reactor.perform(op);
}

}  // namespace

int perform(Operation& op) {
  if constexpr (fault::compiled_in) {
    bool wait_first = false;
    if (const std::optional<int> failed = injected_fault(op, wait_first)) return *failed;
    if (wait_first) {
      Operation readiness;
      readiness.kind = waits_for_writable(op.kind) ? OpKind::poll_writable : OpKind::poll_readable;
      readiness.descriptor = op.descriptor;
      readiness.fd = op.fd;
      readiness.deadline = op.deadline;
      if (const int ready = perform(readiness); ready < 0) return ready;
    }
  }
  if (Loop* loop = Loop::current(); loop && heddle::detail::current_task()) {
    return perform_listed(reactor_of(*loop), op);
  }
  if (Pool::worker_here()) {
    // The worker's reactor owns the operation until it completes: keep the
    // task on this worker meanwhile, so that its completion, timeout and
    // cancellation are all handled on the reactor's thread.
    struct PinForOperation {
      bool was_pinned = Pool::pinned();
      PinForOperation() {
        if (!was_pinned) Pool::pin();
      }
      ~PinForOperation() {
        if (!was_pinned) Pool::unpin();
      }
    } pin;
    return perform_listed(reactor_of_worker(), op);
  }
  if (heddle::detail::TaskControl* task = heddle::detail::current_task()) {
    if (task->scheduler) {
      throw std::logic_error("heddle io: I/O in a task needs a heddle::Loop or heddle::Pool (this task's "
                             "scheduler does not drive I/O)");
    }
    throw std::logic_error("heddle io: I/O in a task needs a heddle::Loop or heddle::Pool (this task has no "
                           "scheduler)");
  }
  return perform_on_thread(op);
}

}  // namespace detail
}  // namespace heddle::io
