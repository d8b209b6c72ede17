// heddle core (internal): writing JSON strings, for the trace
// (src/core/trace.cpp) and the stack report (src/core/stack_report.cpp).
#pragma once

#include <cstdio>

namespace heddle::detail {

// The length (1 to 4) of the well-formed UTF-8 sequence at the start of the
// null-terminated `p`, or 0 when none starts there: a stray continuation
// byte, an overlong form, a surrogate, a code point past U+10FFFF, or a
// sequence cut short (the terminator is no continuation byte, so nothing
// past it is read).
inline int utf8_sequence_length(const unsigned char* p) {
  const unsigned lead = p[0];
  if (lead < 0x80) return 1;
  int length;
  unsigned code;
  unsigned smallest;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2, code = lead & 0x1f, smallest = 0x80;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3, code = lead & 0x0f, smallest = 0x800;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4, code = lead & 0x07, smallest = 0x10000;
  } else {
    return 0;
  }
  for (int i = 1; i < length; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    code = (code << 6) | (p[i] & 0x3f);
  }
  if (code < smallest || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

// Writes `text` (null: "") as a quoted JSON string. Quotes, backslashes and
// control characters are escaped; well-formed UTF-8 is written as it is; any
// other byte becomes U+FFFD, the replacement character. Names are not known
// to be UTF-8, and one cut at a fixed length (a task's name, 31 bytes) may
// end in the middle of a character: JSON must be UTF-8, so a reader would
// reject the raw byte, and writing it as \u00XX would make it a different
// character.
inline void write_json_string(std::FILE* out, const char* text) {
  std::fputc('"', out);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(text ? text : "");
  while (*p) {
    const unsigned char c = *p;
    if (c == '"' || c == '\\') {
      std::fputc('\\', out);
      std::fputc(c, out);
      ++p;
    } else if (c < 0x20) {
      std::fprintf(out, "\\u%04x", c);
      ++p;
    } else if (const int length = utf8_sequence_length(p); length > 0) {
      std::fwrite(p, 1, static_cast<std::size_t>(length), out);
      p += length;
    } else {
      std::fputs("\\ufffd", out);
      ++p;
    }
  }
  std::fputc('"', out);
}

}  // namespace heddle::detail
