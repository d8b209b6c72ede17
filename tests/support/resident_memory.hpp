// heddle test and bench support: the process's resident memory (VmRSS), for
// the memory figures (bench/) and the scale tests (tests/core/scale_test.cpp).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace heddle::support {

// Resident set size in KiB, from /proc/self/status; -1 if unreadable.
inline long resident_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
  }
  if (f) std::fclose(f);
  return kib;
}

}  // namespace heddle::support
