// heddle io: the io_uring reactor (through liburing).
//
// Completion-based: perform() fills a submission entry whose user_data is
// the Operation (on the parked task's stack) and parks. Entries queued in
// one loop turn reach the kernel together, in one io_uring_submit, when the
// loop next polls or sleeps. A completion stores the result in its
// Operation and wakes the task through its Resumer.
//
// Sends are tried with a non-blocking system call first (see perform()):
// they rarely find the socket buffer full, and a completion would cost the
// task a park and a loop turn.
//
// Cancellation and deadlines: the kernel may still write into the buffers
// of an operation that was submitted, so a cancelled task does not unwind
// straight away: it submits IORING_OP_ASYNC_CANCEL for its operation and
// parks uninterruptibly until the operation's own completion has arrived
// (with -ECANCELED, or its result if it finished first); only then does
// Cancelled propagate. A deadline is a loop timer whose callback submits the
// same cancellation and marks the operation timed out.
//
// Closing the descriptor (in_flight.cpp) wakes the task parked in an
// operation on it; the task cancels its entry the same way, waits for the
// completion, and returns -ECANCELED (or the result, if the operation
// completed first).
//
// user_data values: 0 = ignore (cancellation requests), kWakeTag = the
// loop's wake eventfd became readable, anything else = an Operation*.
#include <liburing.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <exception>
#include <system_error>

#include "heddle/sched/time.hpp"
#include "heddle/sys/fault.hpp"
#include "in_flight.hpp"
#include "reactor.hpp"
#include "sys/timespec.hpp"

namespace heddle::io::detail {
namespace {

constexpr unsigned kEntries = 1024;
// Completions can outnumber submissions in flight by far (10,000 idle
// connections each with a receive pending); a large completion queue keeps
// them out of the kernel's overflow list, which costs a system call to
// flush (see reap()).
constexpr unsigned kCompletionEntries = 32768;
constexpr std::uint64_t kIgnoreTag = 0;
constexpr std::uint64_t kWakeTag = 1;

class UringReactor final : public Reactor {
 public:
  // Returns false when the kernel refuses a ring.
  bool init() noexcept {
    // COOP_TASKRUN: completions are not pushed at the loop's thread with a
    // signal-like interrupt (costly: it showed as sighand lock contention on
    // every send); they wait until the loop enters the kernel, which it
    // does every turn with work queued or when TASKRUN_FLAG says some is
    // pending (poll()). Kernels before 5.19 refuse the flags: retry without.
    io_uring_params params{};
    params.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    params.cq_entries = kCompletionEntries;
    int r = io_uring_queue_init_params(kEntries, &ring_, &params);
    if (r == -EINVAL) {
      params = io_uring_params{};
      params.flags = IORING_SETUP_CQSIZE;
      params.cq_entries = kCompletionEntries;
      r = io_uring_queue_init_params(kEntries, &ring_, &params);
    }
    if (r < 0) return false;
    initialised_ = true;
    return true;
  }
  ~UringReactor() override {
    if (initialised_) io_uring_queue_exit(&ring_);
  }

  Backend backend() const noexcept override { return Backend::io_uring; }

  int perform(Operation& op) override {
    if (op.kind == OpKind::send || op.kind == OpKind::sendmsg) {
      // A send almost always fits in the socket buffer: try it right away,
      // saving the task a park and a loop turn; queue it only when full.
      const int r = attempt(op);
      if (r != -EAGAIN) return r;
    }
    for (;;) {
      const int r = perform_once(op, op);
      if (r != -EAGAIN || is_file_operation(op.kind)) return r;
      // io_uring answers read/write on an O_NONBLOCK pipe or eventfd with
      // EAGAIN instead of waiting: wait for readiness, then try again.
      Operation readiness;
      readiness.kind = waits_for_writable(op.kind) ? OpKind::poll_writable : OpKind::poll_readable;
      readiness.fd = op.fd;
      readiness.deadline = op.deadline;
      const int ready = perform_once(readiness, op);
      if (ready < 0) return ready;
    }
  }

  void detach_here(Operation& op) noexcept override {
    Operation* entry = op.in_kernel;
    if (!entry) return;
    // Submitting may throw only if the ring is broken; close() is noexcept.
    submit_cancel(*entry);
    while (!entry->done) {
      ++stats_.kernel_calls;
      const int r = io_uring_submit_and_wait(&ring_, 1);
      // A ring that refuses to submit cannot be waited on: the entry could
      // still reach the kernel with a number about to be reused.
      if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) std::terminate();
      reap();
    }
  }

 private:
  // One entry for `op`, on behalf of `listed` (the operation perform() was
  // given: op itself, or the one whose readiness op waits for), which close()
  // knows: a close wakes the task, and the entry is cancelled and awaited
  // like a cancelled task's, but the result is returned (-ECANCELED, or
  // what the operation did if it completed first).
  int perform_once(Operation& op, Operation& listed) {
    if (listed.listed && closing(listed)) return -ECANCELED;
    if (op.reactor != this) op.reactor = this;  // a listed op has it set (close() reads it)
    ++stats_.operations;
    op.done = false;
    op.timed_out = false;
    op.cancel_submitted = false;
    prepare(op);
    listed.in_kernel = &op;
    heddle::Timer timer;
    if (op.deadline != Clock::time_point::max()) timer.arm(op.deadline, &UringReactor::expire, &op);
    const heddle::detail::WakeReason reason = park(op.kind, [&](const Resumer& resumer) {
      op.waiter = resumer;
      if (listed.listed && !note_park(listed, resumer)) resumer.wake();  // closing already: come back at once
    });
    if (!op.done) {
      // Cancelled, or woken by a close: the kernel may still use op's
      // buffers. Cancel it and wait for its completion before leaving.
      submit_cancel(op);
      while (!op.done) park(op.kind, [&](const Resumer& resumer) { op.waiter = resumer; }, false);
    }
    listed.in_kernel = nullptr;
    timer.cancel();
    if (reason != heddle::detail::WakeReason::resumed) {
      discard_result(op);
      heddle::detail::finish_suspension(reason);
    }
    if (op.result == -ECANCELED && op.timed_out) return -ETIMEDOUT;
    return op.result;
  }

 public:
  void poll() override {
    // Enter the kernel when there is something to submit, or completions
    // waiting to be run (TASKRUN) or flushed (CQ_OVERFLOW); io_uring_submit
    // then also asks for events.
    const unsigned flags = IO_URING_READ_ONCE(*ring_.sq.kflags);
    if (io_uring_sq_ready(&ring_) > 0 || (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW))) submit();
    reap();
  }

  void wait(int wake_fd, Clock::time_point deadline) override {
    if (!wake_armed_) {
      io_uring_sqe* sqe = get_sqe();
      io_uring_prep_poll_add(sqe, wake_fd, POLLIN);
      io_uring_sqe_set_data64(sqe, kWakeTag);
      wake_armed_ = true;
    }
    wake_fd_ = wake_fd;
    io_uring_cqe* cqe = nullptr;
    int r;
    ++stats_.kernel_calls;
    if (deadline == Clock::time_point::max()) {
      r = io_uring_submit_and_wait(&ring_, 1);
    } else {
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count();
      __kernel_timespec timeout = heddle::detail::to_timespec<__kernel_timespec>(left > 0 ? left : 0);
      r = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &timeout, nullptr);
    }
    if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      throw std::system_error(-r, std::system_category(), "heddle io: io_uring_submit_and_wait");
    }
    reap();
  }

 private:
  static void expire(void* context) {
    auto& op = *static_cast<Operation*>(context);
    if (op.done) return;
    op.timed_out = true;
    static_cast<UringReactor*>(op.reactor)->submit_cancel(op);
  }

  io_uring_sqe* get_sqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe && fault::detail::take(fault::Site::uring_queue_full).hit) {
      // Fault injection: act as if the queue were full. The entry already
      // taken becomes a no-op whose completion reap() ignores.
      io_uring_prep_nop(sqe);
      io_uring_sqe_set_data64(sqe, kIgnoreTag);
      sqe = nullptr;
    }
    while (!sqe) {
      // Submission queue full: hand the batch to the kernel and retry.
      submit();
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  void submit() {
    for (;;) {
      ++stats_.kernel_calls;
      const fault::detail::Decision fault = fault::detail::take(fault::Site::uring_submit);
      const int r = fault.hit ? -fault.error : io_uring_submit(&ring_);
      if (r >= 0) return;
      if (r == -EINTR) continue;
      if (r == -EAGAIN || r == -EBUSY) {
        // Completion queue pressure: take completions, then retry.
        reap();
        continue;
      }
      throw std::system_error(-r, std::system_category(), "heddle io: io_uring_submit");
    }
  }

  void submit_cancel(Operation& op) {
    if (op.cancel_submitted || op.done) return;
    op.cancel_submitted = true;
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(&op), 0);
    io_uring_sqe_set_data64(sqe, kIgnoreTag);
  }

  // A cancelled operation that completed anyway: give back what it made.
  static void discard_result(Operation& op) noexcept {
    if (op.result >= 0 && (op.kind == OpKind::accept || op.kind == OpKind::openat)) ::close(op.result);
  }

  void prepare(Operation& op) {
    io_uring_sqe* sqe = get_sqe();
    switch (op.kind) {
      case OpKind::read:
        io_uring_prep_read(sqe, op.fd, op.buffer, static_cast<unsigned>(op.length), ~0ULL);
        break;
      case OpKind::write:
        io_uring_prep_write(sqe, op.fd, op.buffer, static_cast<unsigned>(op.length), ~0ULL);
        break;
      case OpKind::recv:
        io_uring_prep_recv(sqe, op.fd, op.buffer, op.length, op.flags);
        break;
      case OpKind::send:
        io_uring_prep_send(sqe, op.fd, op.buffer, op.length, op.flags | MSG_NOSIGNAL);
        break;
      case OpKind::recvmsg:
        io_uring_prep_recvmsg(sqe, op.fd, op.message, static_cast<unsigned>(op.flags));
        break;
      case OpKind::sendmsg:
        io_uring_prep_sendmsg(sqe, op.fd, op.message, static_cast<unsigned>(op.flags | MSG_NOSIGNAL));
        break;
      case OpKind::accept:
        io_uring_prep_accept(sqe, op.fd, op.address, op.address ? &op.address_length : nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
        break;
      case OpKind::connect:
        io_uring_prep_connect(sqe, op.fd, op.address, op.address_length);
        break;
      case OpKind::poll_readable:
        io_uring_prep_poll_add(sqe, op.fd, POLLIN);
        break;
      case OpKind::poll_writable:
        io_uring_prep_poll_add(sqe, op.fd, POLLOUT);
        break;
      case OpKind::pread:
        io_uring_prep_read(sqe, op.fd, op.buffer, static_cast<unsigned>(op.length), op.offset);
        break;
      case OpKind::pwrite:
        io_uring_prep_write(sqe, op.fd, op.buffer, static_cast<unsigned>(op.length), op.offset);
        break;
      case OpKind::fsync:
        io_uring_prep_fsync(sqe, op.fd, 0);
        break;
      case OpKind::fdatasync:
        io_uring_prep_fsync(sqe, op.fd, IORING_FSYNC_DATASYNC);
        break;
      case OpKind::openat:
        io_uring_prep_openat(sqe, op.fd, op.path, op.flags | O_CLOEXEC, static_cast<mode_t>(op.mode));
        break;
      case OpKind::statx:
        io_uring_prep_statx(sqe, op.fd, op.path, op.flags, op.mode, op.stat);
        break;
    }
    io_uring_sqe_set_data(sqe, &op);
  }

  void reap() {
    io_uring_cqe* cqe;
    unsigned head;
    unsigned seen = 0;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const std::uint64_t tag = io_uring_cqe_get_data64(cqe);
      if (tag == kIgnoreTag) continue;
      if (tag == kWakeTag) {
        std::uint64_t value;
        [[maybe_unused]] ssize_t got = ::read(wake_fd_, &value, sizeof value);
        wake_armed_ = false;
        continue;
      }
      auto* op = reinterpret_cast<Operation*>(static_cast<std::uintptr_t>(tag));
      ++stats_.completions;
      op->result = cqe->res;
      op->done = true;
      op->waiter.wake();
    }
    if (seen) io_uring_cq_advance(&ring_, seen);
    // Completions the queue had no room for wait in the kernel until a
    // system call flushes them: do it now rather than at the next sleep.
    if (io_uring_cq_has_overflow(&ring_)) {
      io_uring_get_events(&ring_);
      reap();
    }
  }

  io_uring ring_{};
  bool initialised_ = false;
  bool wake_armed_ = false;
  int wake_fd_ = -1;
};

}  // namespace

std::unique_ptr<Reactor> make_uring_reactor() {
  auto reactor = std::make_unique<UringReactor>();
  if (!reactor->init()) return nullptr;
  return reactor;
}

}  // namespace heddle::io::detail
