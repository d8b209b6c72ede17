// heddle core: where something happened in the source (a spawn site).
//
// SourceLocation needs __builtin_source_location, which clang 14 lacks
// when it builds against libstdc++ 12; these builtins work on every compiler
// heddle supports. As a defaulted argument, current() names the caller's line.
#pragma once

namespace heddle {

class SourceLocation {
 public:
  constexpr SourceLocation() noexcept = default;
  static constexpr SourceLocation current(const char* file = __builtin_FILE(), unsigned line = __builtin_LINE(),
                                          const char* function = __builtin_FUNCTION()) noexcept {
    return SourceLocation(file, line, function);
  }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr unsigned line() const noexcept { return line_; }
  constexpr const char* function_name() const noexcept { return function_; }

 private:
  constexpr SourceLocation(const char* file, unsigned line, const char* function) noexcept
      : file_(file), line_(line), function_(function) {}
  const char* file_ = "(unknown)";
  unsigned line_ = 0;
  const char* function_ = "";
};

}  // namespace heddle
