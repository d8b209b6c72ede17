// heddle io: the epoll reactor.
//
// Readiness, edge-triggered: a descriptor is registered once (for input and
// output) the first time an operation on it finds it not ready; from then
// on every operation first tries its system call and parks only on EAGAIN.
// Parked operations sit on per-descriptor wait lists (readers, writers); an
// event wakes the whole list it concerns and each woken task retries. No
// wake-up is lost because events are only collected while the tasks that
// found "not ready" are parked: a loop runs tasks and polls epoll in turns,
// on one thread.
//
// Regular files are always "ready" (the kernel blocks instead), so file
// operations run their system call directly on the loop's thread.
//
// Closing a descriptor (in_flight.cpp) wakes its parked operations; each
// sees `closing` before trying its system call again, leaves the wait list
// and the epoll set, and returns -ECANCELED.
#include <sys/epoll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <vector>

#include "heddle/io/descriptor.hpp"
#include "heddle/sched/time.hpp"
#include "in_flight.hpp"
#include "reactor.hpp"

namespace heddle::io::detail {
namespace {

constexpr int kMaxEvents = 256;
// poll() (called every loop turn with runnable tasks) looks at epoll only
// every this many turns: a busy loop still sees new readiness, without a
// system call per turn.
constexpr int kTurnsBetweenPolls = 8;

struct WaitList {
  Operation* head = nullptr;
  Operation* tail = nullptr;
};

void link(WaitList& list, Operation& op) noexcept {
  op.prev = list.tail;
  op.next = nullptr;
  if (list.tail) list.tail->next = &op; else list.head = &op;
  list.tail = &op;
  op.linked = true;
}

void unlink(WaitList& list, Operation& op) noexcept {
  if (op.prev) op.prev->next = op.next; else list.head = op.next;
  if (op.next) op.next->prev = op.prev; else list.tail = op.prev;
  op.prev = op.next = nullptr;
  op.linked = false;
}

class EpollReactor final : public Reactor {
 public:
  EpollReactor() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::system_error(errno, std::system_category(), "heddle io: epoll_create1");
  }
  ~EpollReactor() override { ::close(epoll_fd_); }

  Backend backend() const noexcept override { return Backend::epoll; }

  int perform(Operation& op) override {
    if (is_file_operation(op.kind)) return attempt(op);
    if (op.reactor != this) op.reactor = this;  // a listed op has it set (close() reads it)
    for (;;) {
      if (op.listed && closing(op)) return closed(op);
      const int r = attempt(op);
      if (r != -EAGAIN) return r;
      if (op.deadline != Clock::time_point::max() && op.deadline <= Clock::now()) return -ETIMEDOUT;
      register_descriptor(op);
      ++stats_.operations;
      WaitList& list = waiters(op);
      heddle::Timer timer;
      if (op.deadline != Clock::time_point::max()) timer.arm(op.deadline, &EpollReactor::expire, &op);
      op.timed_out = false;
      const heddle::detail::WakeReason reason = park(op.kind, [&](const Resumer& resumer) {
        op.waiter = resumer;
        link(list, op);
        if (op.listed && !note_park(op, resumer)) resumer.wake();  // closing already: come back at once
      });
      timer.cancel();
      if (op.linked) unlink(waiters(op), op);  // cancelled or closed: nobody else woke it
      heddle::detail::finish_suspension(reason);
      if (op.timed_out) return -ETIMEDOUT;
    }
  }

  void detach_here(Operation& op) noexcept override {
    if (op.linked) unlink(waiters(op), op);
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, op.fd, nullptr);
    op.waiter.wake();
  }

  void poll() override {
    if (++turns_ < kTurnsBetweenPolls) return;
    collect(0, -1);
  }

  void wait(int wake_fd, Clock::time_point deadline) override {
    if (!wake_registered_) {
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.fd = wake_fd;
      if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd, &event) < 0) {
        throw std::system_error(errno, std::system_category(), "heddle io: epoll_ctl(wake eventfd)");
      }
      wake_registered_ = true;
    }
    int timeout_ms = -1;
    if (deadline != Clock::time_point::max()) {
      // Rounded up: a timer must never fire early.
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      timeout_ms = left <= 0 ? 0 : (left > 0x7fffffff ? 0x7fffffff : static_cast<int>(left));
    }
    collect(timeout_ms, wake_fd);
  }

 private:
  static void expire(void* context) {
    auto& op = *static_cast<Operation*>(context);
    auto& self = *static_cast<EpollReactor*>(op.reactor);
    if (!op.linked) return;
    self.unlink_op(op);
    op.timed_out = true;
    op.waiter.wake();
  }

  // op's descriptor is being closed: off this epoll set (its number is
  // still ours: close(2) waits for this operation), unless close() did it.
  int closed(Operation& op) noexcept {
    if (!detached(op)) ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, op.fd, nullptr);
    return -ECANCELED;
  }

  WaitList& waiters(Operation& op) {
    const auto fd = static_cast<std::size_t>(op.fd);
    if (fd >= lists_.size()) lists_.resize(fd + 1 + fd / 2);
    return waits_for_writable(op.kind) ? lists_[fd].writers : lists_[fd].readers;
  }

  void unlink_op(Operation& op) noexcept { unlink(waiters(op), op); }

  void register_descriptor(Operation& op) {
    if (op.descriptor && op.descriptor->registered_with() == this) return;
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    event.data.fd = op.fd;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, op.fd, &event) < 0 && errno != EEXIST) {
      check(-errno, "heddle io: epoll_ctl(EPOLL_CTL_ADD)");
    }
    if (op.descriptor) op.descriptor->set_registered_with(this);
  }

  void wake_all(WaitList& list) noexcept {
    while (Operation* op = list.head) {
      unlink(list, *op);
      op->waiter.wake();
    }
  }

  void collect(int timeout_ms, int wake_fd) {
    turns_ = 0;
    epoll_event events[kMaxEvents];
    ++stats_.kernel_calls;
    const int count = ::epoll_wait(epoll_fd_, events, kMaxEvents, timeout_ms);
    if (count < 0) {
      if (errno == EINTR) return;
      throw std::system_error(errno, std::system_category(), "heddle io: epoll_wait");
    }
    for (int i = 0; i < count; ++i) {
      const int fd = events[i].data.fd;
      if (fd == wake_fd) {
        std::uint64_t value;
        [[maybe_unused]] ssize_t got = ::read(wake_fd, &value, sizeof value);
        continue;
      }
      ++stats_.completions;
      if (static_cast<std::size_t>(fd) >= lists_.size()) continue;
      const std::uint32_t what = events[i].events;
      Lists& lists = lists_[static_cast<std::size_t>(fd)];
      if (what & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) wake_all(lists.readers);
      if (what & (EPOLLOUT | EPOLLHUP | EPOLLERR)) wake_all(lists.writers);
    }
  }

  struct Lists {
    WaitList readers;
    WaitList writers;
  };
  int epoll_fd_ = -1;
  bool wake_registered_ = false;
  int turns_ = 0;
  std::vector<Lists> lists_;  // by descriptor number
};

}  // namespace

std::unique_ptr<Reactor> make_epoll_reactor() { return std::make_unique<EpollReactor>(); }

}  // namespace heddle::io::detail
