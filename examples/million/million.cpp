// heddle demo: one million eager tasks with no scheduler at all.
//
// Spawns N tasks (default 1,000,000); each runs at once, calls a few
// functions, and parks at a leaf suspension point, handing its Resumer to a
// plain vector. main() then resumes every one of them, joins them, and
// prints the time per spawn, park and resume, the memory each parked task
// cost, and the stack high-water marks it saw.
//
//   million [tasks]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

long resident_kib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) {
      kib = std::atol(line + 6);
      break;
    }
  }
  std::fclose(f);
  return kib;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void progress(const char* phase, long done, long total) {
  if (!isatty(STDOUT_FILENO) && done != total) return;
  std::printf("\r  %-8s %9ld / %ld tasks", phase, done, total);
  if (done == total) std::printf("\n");
  std::fflush(stdout);
}

// A small call chain, so each task has a real stack before it parks.
__attribute__((noinline)) long checksum(long seed, int depth, heddle::Resumer& slot) {
  volatile char scratch[128];
  scratch[0] = static_cast<char>(seed);
  if (depth == 0) {
    heddle::suspend([&](const heddle::Resumer& r) { slot = r; });
    return seed + scratch[0] * 0;
  }
  return checksum(seed * 31 + depth, depth - 1, slot) + 1;
}

}  // namespace

int main(int argc, char** argv) {
  long tasks = 1'000'000;
  if (argc > 1) {
    char* end = nullptr;
    tasks = std::strtol(argv[1], &end, 10);
    if (!end || *end != '\0' || tasks <= 0 || tasks > 50'000'000) {
      std::fprintf(stderr, "usage: %s [tasks]   (tasks: 1 .. 50000000, got \"%s\")\n", argv[0], argv[1]);
      return 2;
    }
  }

  heddle::StackPool pool;  // 64 KiB stacks: guard pages while the mapping budget lasts, then canaries
  std::vector<heddle::Resumer> parked(static_cast<std::size_t>(tasks));
  std::vector<heddle::Task<long>> handles;
  handles.reserve(static_cast<std::size_t>(tasks));

  std::printf("heddle demo: %ld eager tasks, no scheduler\n", tasks);
  const long base_kib = resident_kib();
  const long step = std::max(1L, tasks / 100);

  auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < tasks; ++i) {
    handles.push_back(heddle::spawn([&parked, i] { return checksum(i, 3, parked[i]); },
                                    heddle::SpawnOptions{.name = "parked", .pool = &pool}));
    if (i % step == 0) progress("spawn", i, tasks);
  }
  progress("spawn", tasks, tasks);
  const double spawn_seconds = seconds_since(start);
  const long parked_kib = resident_kib();

  // Stack use of a sample of parked tasks (page-granular: pool stacks are not painted).
  std::size_t high_water_max = 0;
  std::size_t high_water_sum = 0;
  long sampled = 0;
  for (long i = 0; i < tasks; i += step) {
    const auto usage = handles[i].stack_high_water();
    high_water_max = std::max(high_water_max, usage.bytes);
    high_water_sum += usage.bytes;
    ++sampled;
  }

  start = std::chrono::steady_clock::now();
  for (long i = 0; i < tasks; ++i) {
    if (!parked[i].resume()) {
      std::fprintf(stderr, "heddle demo: task %ld could not be resumed\n", i);
      return 1;
    }
    if (i % step == 0) progress("resume", i, tasks);
  }
  progress("resume", tasks, tasks);
  const double resume_seconds = seconds_since(start);

  start = std::chrono::steady_clock::now();
  long sum = 0;
  for (auto& h : handles) sum += h.join();
  const double join_seconds = seconds_since(start);

  // A painted task measures its stack to the byte.
  heddle::Resumer painted_slot;
  auto painted = heddle::spawn([&] { return checksum(1, 3, painted_slot); },
                               heddle::SpawnOptions{.name = "painted", .pool = &pool, .paint = true});
  const auto painted_usage = painted.stack_high_water();
  painted_slot.resume();
  sum += painted.join();

  const auto stats = pool.stats();
  std::printf("spawn + run to first suspension: %8.1f ns per task\n", spawn_seconds * 1e9 / tasks);
  std::printf("resume + run to finish:          %8.1f ns per task\n", resume_seconds * 1e9 / tasks);
  std::printf("join + release:                  %8.1f ns per task\n", join_seconds * 1e9 / tasks);
  std::printf("memory per parked task:          %8.0f bytes (resident %ld MiB for %ld tasks)\n",
              (parked_kib - base_kib) * 1024.0 / tasks, (parked_kib - base_kib) / 1024, tasks);
  std::printf("stacks: %zu with guard pages, %zu with canaries (%zu KiB each)\n", stats.guarded_created,
              stats.canary_created, pool.options().stack_bytes / 1024);
  std::printf("stack high-water, pool stacks (page-granular, %ld sampled): max %zu bytes, mean %zu bytes\n",
              sampled, high_water_max, sampled ? high_water_sum / static_cast<std::size_t>(sampled) : 0);
  std::printf("stack high-water, painted stack (byte-granular): %zu bytes\n", painted_usage.bytes);
  std::printf("checksum %ld\n", sum);
  return 0;
}
