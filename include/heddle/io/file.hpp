// heddle io: files and signals.
//
// File owns one open regular file. On io_uring every operation (open
// included) is an io_uring request and parks only the calling task; on
// epoll (regular files are never "not ready") the system call runs on the
// loop's thread. Errors are std::system_error naming the operation and the
// path; reading at the end of the file returns 0.
//
// SignalSet owns a signalfd: the signals it names are blocked in the
// calling thread and delivered to a task waiting in wait(). Create it before
// starting other threads (they inherit the blocked mask), or a signal sent
// to the process may go to a thread that does not block it. It is the way
// to react to a signal with heddle calls: no heddle call but Loop::stop()
// is async-signal-safe, so a signal handler must not spawn, resume, cancel
// or touch a primitive (docs/misuse.md, "Signal handlers").
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "heddle/io/descriptor.hpp"

namespace heddle::io {

struct FileStatus {
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // type and permission bits, as st_mode
  std::chrono::system_clock::time_point modified;
  bool is_regular() const noexcept;
  bool is_directory() const noexcept;
};

class File {
 public:
  File() = default;
  // flags as open(2) (O_CLOEXEC is always added).
  static File open(const std::string& path, int flags = O_RDONLY, mode_t mode = 0644);
  // Opens for writing, creating or truncating it.
  static File create(const std::string& path, mode_t mode = 0644);

  // At the file position (which moves on); 0 at the end of the file.
  std::size_t read(void* data, std::size_t size);
  // At `offset` (the file position does not move).
  std::size_t read_at(void* data, std::size_t size, std::uint64_t offset);
  // Every byte, at the file position.
  void write(const void* data, std::size_t size);
  void write(const std::string& text) { write(text.data(), text.size()); }
  // Every byte, at `offset`.
  void write_at(const void* data, std::size_t size, std::uint64_t offset);
  void sync();       // fsync
  void sync_data();  // fdatasync
  FileStatus status();
  void close() noexcept { fd_.close(); }

  int native_handle() const noexcept { return fd_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  const std::string& path() const noexcept { return path_; }

 private:
  FileDescriptor fd_;
  std::string path_;
};

// The status of the file at `path` (statx).
FileStatus status(const std::string& path);

class SignalSet {
 public:
  // Blocks `signals` in the calling thread and opens a signalfd for them.
  // Throws std::invalid_argument for a signal number that is not one.
  SignalSet(std::initializer_list<int> signals);
  ~SignalSet();
  SignalSet(const SignalSet&) = delete;
  SignalSet& operator=(const SignalSet&) = delete;
  // Parks until one of the signals arrives and returns its number.
  int wait();

 private:
  FileDescriptor fd_;
  std::uint64_t mask_ = 0;  // the signals this set blocked (and unblocks when destroyed)
};

}  // namespace heddle::io
