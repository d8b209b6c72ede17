// heddle core (internal): writing JSON strings, for the trace
// (src/core/trace.cpp) and the stack report (src/core/stack_report.cpp).
#pragma once

#include <cstdio>

namespace heddle::detail {

// Writes `text` (null: "") as a quoted JSON string. Control characters,
// quotes, backslashes and every non-ASCII byte are escaped (\u00XX per
// byte: a name cut at 31 bytes may end in the middle of a character, so the
// text is not assumed to be UTF-8).
inline void write_json_string(std::FILE* out, const char* text) {
  std::fputc('"', out);
  for (const char* p = text; p && *p; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      std::fputc('\\', out);
      std::fputc(c, out);
    } else if (c < 0x20 || c >= 0x80) {
      std::fprintf(out, "\\u%04x", c);
    } else {
      std::fputc(c, out);
    }
  }
  std::fputc('"', out);
}

}  // namespace heddle::detail
