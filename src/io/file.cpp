// heddle io: File, status(), SignalSet (see include/heddle/io/file.hpp).
#include "heddle/io/file.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "heddle/io/detail/operation.hpp"
#include "sys/timespec.hpp"

namespace heddle::io {

namespace {

using detail::OpKind;
using detail::Operation;

constexpr std::size_t kMaxTransfer = std::size_t{1} << 30;

[[noreturn]] void fail(int error, const char* what, const std::string& path) {
  std::string message = std::string(what) + " " + path;
  if (error == ECANCELED) message += " (descriptor closed while waiting)";
  throw std::system_error(error, std::system_category(), message);
}

// `descriptor`: the owner of dirfd, when the status is that of an open file.
FileStatus status_of(int dirfd, FileDescriptor* descriptor, const char* path, int flags, const std::string& name) {
  struct statx buffer {};
  Operation op;
  op.kind = OpKind::statx;
  op.descriptor = descriptor;
  op.fd = dirfd;
  op.path = path;
  op.flags = flags;
  op.mode = STATX_SIZE | STATX_MODE | STATX_MTIME;
  op.stat = &buffer;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::status", name);
  FileStatus status;
  status.size = buffer.stx_size;
  status.mode = buffer.stx_mode;
  status.modified = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(heddle::detail::to_nanoseconds(buffer.stx_mtime))));
  return status;
}

}  // namespace

bool FileStatus::is_regular() const noexcept { return S_ISREG(mode); }
bool FileStatus::is_directory() const noexcept { return S_ISDIR(mode); }

File File::open(const std::string& path, int flags, mode_t mode) {
  Operation op;
  op.kind = OpKind::openat;
  op.fd = AT_FDCWD;
  op.path = path.c_str();
  op.flags = flags;
  op.mode = mode;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::File::open", path);
  File file;
  file.fd_ = FileDescriptor(r);
  file.path_ = path;
  return file;
}

File File::create(const std::string& path, mode_t mode) { return open(path, O_WRONLY | O_CREAT | O_TRUNC, mode); }

std::size_t File::read(void* data, std::size_t size) {
  Operation op;
  op.kind = OpKind::read;
  op.descriptor = &fd_;
  op.fd = fd_.get();
  op.buffer = data;
  op.length = std::min(size, kMaxTransfer);
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::File::read", path_);
  return static_cast<std::size_t>(r);
}

std::size_t File::read_at(void* data, std::size_t size, std::uint64_t offset) {
  Operation op;
  op.kind = OpKind::pread;
  op.descriptor = &fd_;
  op.fd = fd_.get();
  op.buffer = data;
  op.length = std::min(size, kMaxTransfer);
  op.offset = offset;
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::File::read_at", path_);
  return static_cast<std::size_t>(r);
}

void File::write(const void* data, std::size_t size) {
  std::size_t done = 0;
  while (done < size) {
    Operation op;
    op.kind = OpKind::write;
    op.descriptor = &fd_;
    op.fd = fd_.get();
    op.buffer = const_cast<std::byte*>(static_cast<const std::byte*>(data) + done);
    op.length = std::min(size - done, kMaxTransfer);
    const int r = detail::perform(op);
    if (r < 0) fail(-r, "heddle::io::File::write", path_);
    if (r == 0) fail(EIO, "heddle::io::File::write (no progress)", path_);
    done += static_cast<std::size_t>(r);
  }
}

void File::write_at(const void* data, std::size_t size, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < size) {
    Operation op;
    op.kind = OpKind::pwrite;
    op.descriptor = &fd_;
    op.fd = fd_.get();
    op.buffer = const_cast<std::byte*>(static_cast<const std::byte*>(data) + done);
    op.length = std::min(size - done, kMaxTransfer);
    op.offset = offset + done;
    const int r = detail::perform(op);
    if (r < 0) fail(-r, "heddle::io::File::write_at", path_);
    if (r == 0) fail(EIO, "heddle::io::File::write_at (no progress)", path_);
    done += static_cast<std::size_t>(r);
  }
}

void File::sync() {
  Operation op;
  op.kind = OpKind::fsync;
  op.descriptor = &fd_;
  op.fd = fd_.get();
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::File::sync", path_);
}

void File::sync_data() {
  Operation op;
  op.kind = OpKind::fdatasync;
  op.descriptor = &fd_;
  op.fd = fd_.get();
  const int r = detail::perform(op);
  if (r < 0) fail(-r, "heddle::io::File::sync_data", path_);
}

FileStatus File::status() { return status_of(fd_.get(), &fd_, "", AT_EMPTY_PATH, path_); }

FileStatus status(const std::string& path) { return status_of(AT_FDCWD, nullptr, path.c_str(), 0, path); }

// ---- SignalSet ----

SignalSet::SignalSet(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (const int signal : signals) {
    if (signal <= 0 || signal >= 64 || sigaddset(&set, signal) < 0 || signal == SIGKILL || signal == SIGSTOP) {
      throw std::invalid_argument("heddle::io::SignalSet: " + std::to_string(signal) +
                                  " is not a signal that can be waited for");
    }
    mask_ |= std::uint64_t{1} << signal;
  }
  const int fd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "heddle::io::SignalSet: signalfd");
  fd_ = FileDescriptor(fd);
  // Blocked after the signalfd exists, so that none is delivered the old
  // way in between (a pending one is read from the signalfd).
  ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

SignalSet::~SignalSet() {
  sigset_t set;
  sigemptyset(&set);
  for (int signal = 1; signal < 64; ++signal) {
    if (mask_ & (std::uint64_t{1} << signal)) sigaddset(&set, signal);
  }
  fd_.close();
  ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

int SignalSet::wait() {
  for (;;) {
    signalfd_siginfo info;
    const ssize_t got = ::read(fd_.get(), &info, sizeof info);
    if (got == sizeof info) return static_cast<int>(info.ssi_signo);
    if (got < 0 && errno != EAGAIN && errno != EINTR) {
      throw std::system_error(errno, std::system_category(), "heddle::io::SignalSet::wait");
    }
    Operation op;
    op.kind = OpKind::poll_readable;
    op.descriptor = &fd_;
    op.fd = fd_.get();
    const int r = detail::perform(op);
    if (r < 0) {
      throw std::system_error(-r, std::system_category(),
                              r == -ECANCELED ? "heddle::io::SignalSet::wait (descriptor closed while waiting)"
                                              : "heddle::io::SignalSet::wait");
    }
  }
}

}  // namespace heddle::io
