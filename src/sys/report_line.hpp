// heddle sys (internal): one line of a diagnostic, built in fixed storage
// and written with write(2).
//
// Every report heddle prints from a place a task can reach (an overflow, a
// swallowed cancellation, a failed wake-up, a primitive destroyed with
// waiters) uses this rather than fprintf: it is async-signal-safe, never
// allocates, and needs about 600 bytes of stack, where fprintf to the
// unbuffered stderr needs about 10 KiB (glibc formats through an 8 KiB
// buffer on the caller's stack). tools/heddle-stack counts every function a
// task may call, error paths included, so this keeps task stack bounds small.
#pragma once

#include <errno.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace heddle::detail {

class ReportLine {
 public:
  ReportLine& append(const char* text) noexcept {
    if (text == nullptr) text = "(null)";
    while (*text != '\0' && length_ < kCapacity) text_[length_++] = *text++;
    return *this;
  }

  ReportLine& append_decimal(std::uint64_t value) noexcept {
    char digits[20];
    std::size_t count = 0;
    do {
      digits[count++] = static_cast<char>('0' + value % 10);
      value /= 10;
    } while (value != 0);
    while (count > 0 && length_ < kCapacity) text_[length_++] = digits[--count];
    return *this;
  }

  // "0x" and lowercase hex digits, no leading zeros: an address.
  ReportLine& append_hex(std::uint64_t value) noexcept {
    char digits[16];
    std::size_t count = 0;
    do {
      digits[count++] = "0123456789abcdef"[value % 16];
      value /= 16;
    } while (value != 0);
    append("0x");
    while (count > 0 && length_ < kCapacity) text_[length_++] = digits[--count];
    return *this;
  }

  ReportLine& append_signed(std::int64_t value) noexcept {
    if (value < 0) {
      append("-");
      return append_decimal(static_cast<std::uint64_t>(0) - static_cast<std::uint64_t>(value));
    }
    return append_decimal(static_cast<std::uint64_t>(value));
  }

  // Ends the line (there is always room for the newline) and writes it out
  // whole, retrying short writes and EINTR.
  void write_line(int file = STDERR_FILENO) noexcept {
    const int saved_errno = errno;
    text_[length_++] = '\n';
    for (std::size_t written = 0; written < length_;) {
      const ssize_t result = ::write(file, text_ + written, length_ - written);
      if (result > 0) {
        written += static_cast<std::size_t>(result);
      } else if (result < 0 && errno != EINTR) {
        break;
      }
    }
    length_ = 0;
    errno = saved_errno;
  }

 private:
  static constexpr std::size_t kCapacity = 511;
  char text_[kCapacity + 1];
  std::size_t length_ = 0;
};

}  // namespace heddle::detail
