// heddle core: the stack profile (include/heddle/core/stack_report.hpp).
//
// One table for the process, under a mutex: a record is made once per task,
// when it is released, and only while the profile is on (release_task in
// src/core/task.cpp checks stack_profile_on first). Sites are keyed by the
// addresses of their source location's strings and their line, which the
// compiler makes unique per spawn call; sites that print the same (an
// inline function's spawn in several objects) are merged in the report.
#include "heddle/core/stack_report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>

#include "heddle/core/detail/control.hpp"
#include "heddle/core/detail/stack_profile.hpp"
#include "json.hpp"

namespace heddle {
namespace detail {

std::atomic<bool> stack_profile_on{false};

namespace {

struct SiteKey {
  const char* file;
  unsigned line;
  const char* function;
  std::string name;
  bool operator<(const SiteKey& other) const {
    return std::tie(file, line, function, name) < std::tie(other.file, other.line, other.function, other.name);
  }
};

struct SiteCounts {
  std::uint64_t tasks = 0;
  std::uint64_t unmeasured = 0;
  std::size_t high_water = 0;
  std::size_t granularity = 0;
  std::size_t stack_bytes = 0;
};

struct Profile {
  std::mutex mutex;
  std::map<SiteKey, SiteCounts> sites;
};

Profile& profile() {
  static auto* p = new Profile;  // outlives every thread and the atexit writer
  return *p;
}

}  // namespace

namespace {

void record(SiteKey key, const Stack& stack) noexcept {
  const StackUsage used = high_water(stack);
  try {
    Profile& p = profile();
    std::lock_guard lock(p.mutex);
    SiteCounts& site = p.sites[std::move(key)];
    ++site.tasks;
    site.stack_bytes = std::max(site.stack_bytes, stack.size);
    if (used.granularity == 0) {
      ++site.unmeasured;
      return;
    }
    site.high_water = std::max(site.high_water, used.bytes);
    site.granularity = std::max(site.granularity, used.granularity);
  } catch (...) {
    // Out of memory for a new site: this one task goes unrecorded.
  }
}

}  // namespace

void record_stack_use(const TaskControl* task) noexcept {
  try {
    record(SiteKey{task->spawn_file, task->spawn_line, task->spawn_function, task->name}, task->stack);
  } catch (...) {
    // Out of memory for the name's copy: this one task goes unrecorded.
  }
}

void record_segment_use(const SourceLocation& site, const Stack& segment) noexcept {
  try {
    record(SiteKey{site.file_name(), site.line(), site.function_name(), "with_stack segment"}, segment);
  } catch (...) {
  }
}

namespace {

void write_at_exit();

std::string& exit_path() {
  static auto* path = new std::string;
  return *path;
}

// HEDDLE_STACK_REPORT=<file>: profile from start-up, write at exit (this
// object is always linked: task.cpp calls record_stack_use).
[[maybe_unused]] const bool started_from_environment = [] {
  const char* path = std::getenv("HEDDLE_STACK_REPORT");
  if (!path || !*path) return false;
  exit_path() = path;
  stack_profile_on.store(true, std::memory_order_relaxed);
  std::atexit(&write_at_exit);
  return true;
}();

void write_at_exit() {
  try {
    write_stack_report(exit_path());
  } catch (const std::exception& error) {
    std::fprintf(stderr, "heddle: HEDDLE_STACK_REPORT: %s\n", error.what());
  }
}

void write_json(std::FILE* out, const std::vector<SpawnSiteStack>& sites) {
  std::fprintf(out, "{\"heddle_stack_report\": 1, \"pid\": %ld, \"sites\": [", static_cast<long>(::getpid()));
  const char* separator = "\n";
  for (const SpawnSiteStack& site : sites) {
    std::fprintf(out, "%s  {\"file\": ", separator);
    write_json_string(out, site.file.c_str());
    std::fprintf(out, ", \"line\": %u, \"function\": ", site.line);
    write_json_string(out, site.function.c_str());
    std::fprintf(out, ", \"name\": ");
    write_json_string(out, site.name.c_str());
    std::fprintf(out,
                 ", \"tasks\": %llu, \"unmeasured\": %llu, \"high_water_bytes\": %zu, \"precision\": \"%s\", "
                 "\"granularity_bytes\": %zu, \"stack_bytes\": %zu}",
                 static_cast<unsigned long long>(site.tasks), static_cast<unsigned long long>(site.unmeasured),
                 site.high_water, site.precision(), site.granularity, site.stack_bytes);
    separator = ",\n";
  }
  std::fprintf(out, "\n]}\n");
}

}  // namespace
}  // namespace detail

const char* SpawnSiteStack::precision() const noexcept {
  if (granularity == 0) return "unknown";
  return granularity <= sizeof(void*) ? "bytes" : "pages";
}

void enable_stack_profile(bool on) noexcept { detail::stack_profile_on.store(on, std::memory_order_relaxed); }
bool stack_profile_enabled() noexcept { return detail::stack_profile_on.load(std::memory_order_relaxed); }

void reset_stack_report() noexcept {
  detail::Profile& p = detail::profile();
  std::lock_guard lock(p.mutex);
  p.sites.clear();
}

std::vector<SpawnSiteStack> stack_report() {
  std::vector<SpawnSiteStack> sites;
  {
    detail::Profile& p = detail::profile();
    std::lock_guard lock(p.mutex);
    for (const auto& [key, counts] : p.sites) {
      SpawnSiteStack site;
      site.file = key.file ? key.file : "";
      site.line = key.line;
      site.function = key.function ? key.function : "";
      site.name = key.name;
      site.tasks = counts.tasks;
      site.unmeasured = counts.unmeasured;
      site.high_water = counts.high_water;
      site.granularity = counts.granularity;
      site.stack_bytes = counts.stack_bytes;
      sites.push_back(std::move(site));
    }
  }
  auto order = [](const SpawnSiteStack& s) { return std::tie(s.file, s.line, s.function, s.name); };
  std::sort(sites.begin(), sites.end(), [&](const auto& a, const auto& b) { return order(a) < order(b); });
  // Merge sites that print the same (one spawn call compiled into several objects).
  std::vector<SpawnSiteStack> merged;
  for (SpawnSiteStack& site : sites) {
    if (!merged.empty() && order(merged.back()) == order(site)) {
      SpawnSiteStack& into = merged.back();
      into.tasks += site.tasks;
      into.unmeasured += site.unmeasured;
      into.high_water = std::max(into.high_water, site.high_water);
      into.granularity = std::max(into.granularity, site.granularity);
      into.stack_bytes = std::max(into.stack_bytes, site.stack_bytes);
    } else {
      merged.push_back(std::move(site));
    }
  }
  return merged;
}

void write_stack_report(std::ostream& out) {
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* memory = ::open_memstream(&text, &size);
  if (!memory) throw std::system_error(errno, std::generic_category(), "heddle::write_stack_report: open_memstream");
  detail::write_json(memory, stack_report());
  std::fclose(memory);
  std::unique_ptr<char, decltype(&std::free)> owned(text, &std::free);
  out.write(text, static_cast<std::streamsize>(size));
}

void write_stack_report(const std::string& path) {
  const std::vector<SpawnSiteStack> sites = stack_report();
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (!file) throw std::system_error(errno, std::generic_category(), "heddle::write_stack_report: cannot create " + path);
  detail::write_json(file, sites);
  const bool failed = std::ferror(file) != 0;
  if (std::fclose(file) != 0 || failed) {
    throw std::system_error(errno ? errno : EIO, std::generic_category(),
                            "heddle::write_stack_report: cannot write " + path);
  }
}

}  // namespace heddle
