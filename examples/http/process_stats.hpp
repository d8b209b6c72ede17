// heddle example: what the demo and the soak read about their own process.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>

namespace http_example {

// Resident memory of this process, in bytes (/proc/self/statm), or 0.
inline std::size_t resident_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int fields = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return fields == 2 ? resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

// How many descriptors this process has open (/proc/self/fd), or -1.
inline int open_descriptors() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;
  }
  ::closedir(dir);
  return count - 1;  // opendir's own
}

}  // namespace http_example
