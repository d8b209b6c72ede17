// heddle core: task event tracing (include/heddle/core/trace.hpp).
//
// Recording protocol, per thread buffer:
//   recorder: busy = true (seq_cst); if tracing is off, busy = false and
//             return; write the record at index head % capacity; head + 1
//             (release); busy = false (release).
//   stop():   trace_on = false (seq_cst); for every buffer, wait until
//             busy is false (acquire); then read records [head - capacity,
//             head). The seq_cst pair means a recorder either sees tracing
//             off or is seen busy, so no record is read while written.
// Buffers are owned by the registry and never freed while the process
// runs, so a thread that exits leaves its events behind for the file.
#include "heddle/core/trace.hpp"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "heddle/arch/cpu_relax.hpp"
#include "heddle/core/detail/control.hpp"

namespace heddle {
namespace detail {

std::atomic<bool> trace_on{false};

namespace {

constexpr std::size_t kRingEvents = 65536;

struct TraceRecord {
  std::int64_t ns = 0;           // CLOCK_MONOTONIC
  std::uint64_t id = 0;          // task id
  const char* leaf = nullptr;    // suspend: what it waits in (a string literal)
  const char* file = nullptr;    // spawn: the spawn site
  std::uint32_t line = 0;
  TraceKind kind = TraceKind::spawn;
  char name[27] = {};            // the task's name when recorded
};

struct TraceBuffer {
  std::uint32_t thread_id = 0;
  std::atomic<bool> busy{false};
  std::atomic<std::uint64_t> head{0};
  std::unique_ptr<TraceRecord[]> ring{new TraceRecord[kRingEvents]};
};

struct TraceState {
  std::mutex mutex;  // buffers (registration), path, and start/stop
  std::vector<std::unique_ptr<TraceBuffer>> buffers;
  std::string path;
  std::FILE* file = nullptr;  // opened by start(): a bad path fails there, not at exit
  bool exit_hook = false;
};

TraceState& state() {
  static auto* s = new TraceState;  // never destroyed: threads may record during static destruction
  return *s;
}

// Trivially destructible, so no TLS wrapper; the buffer outlives the thread.
thread_local TraceBuffer* t_buffer = nullptr;

__attribute__((noinline)) TraceBuffer* thread_buffer() {
  if (t_buffer) return t_buffer;
  auto buffer = std::make_unique<TraceBuffer>();
  buffer->thread_id = static_cast<std::uint32_t>(syscall(SYS_gettid));
  TraceState& s = state();
  std::lock_guard lock(s.mutex);
  t_buffer = buffer.get();
  s.buffers.push_back(std::move(buffer));
  return t_buffer;
}

std::int64_t monotonic_ns() noexcept {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

void write_string(std::FILE* out, const char* text) {
  std::fputc('"', out);
  for (const char* p = text; p && *p; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      std::fputc('\\', out);
      std::fputc(c, out);
    } else if (c < 0x20) {
      std::fprintf(out, "\\u%04x", c);
    } else {
      std::fputc(c, out);
    }
  }
  std::fputc('"', out);
}

void task_label(const TraceRecord& r, char* out, std::size_t size) {
  if (r.name[0]) {
    std::snprintf(out, size, "%s", r.name);
  } else {
    std::snprintf(out, size, "task %llu", static_cast<unsigned long long>(r.id));
  }
}

// Writes every buffer's events. Slices: a resume opens one ("B") on its
// thread, the next suspend or finish on that thread closes it ("E"); an
// "E" with no open slice (its "B" was overwritten) is skipped, and slices
// still open at the end are closed at the thread's last timestamp.
void write_file(std::FILE* out, std::vector<std::unique_ptr<TraceBuffer>>& buffers) {
  const long pid = static_cast<long>(getpid());
  std::uint64_t dropped = 0;
  std::fprintf(out, "{\"traceEvents\":[\n");
  bool first = true;
  auto begin_event = [&] {
    if (!first) std::fputs(",\n", out);
    first = false;
  };
  for (auto& buffer : buffers) {
    const std::uint64_t head = buffer->head.load(std::memory_order_acquire);
    const std::uint64_t count = head < kRingEvents ? head : kRingEvents;
    dropped += head - count;
    if (count == 0) continue;
    const std::uint32_t tid = buffer->thread_id;
    begin_event();
    std::fprintf(out, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%ld,\"tid\":%u,\"args\":{\"name\":\"thread %u\"}}",
                 pid, tid, tid);
    bool open = false;
    std::int64_t last_ns = 0;
    char label[48];
    for (std::uint64_t i = head - count; i < head; ++i) {
      const TraceRecord& r = buffer->ring[i % kRingEvents];
      const double us = static_cast<double>(r.ns) / 1000.0;
      last_ns = r.ns;
      task_label(r, label, sizeof label);
      switch (r.kind) {
        case TraceKind::resume:
          if (open) {  // its end was overwritten: close it here
            begin_event();
            std::fprintf(out, "{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f}", pid, tid, us);
          }
          begin_event();
          std::fprintf(out, "{\"name\":");
          write_string(out, label);
          std::fprintf(out, ",\"ph\":\"B\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"id\":%llu}}", pid, tid, us,
                       static_cast<unsigned long long>(r.id));
          open = true;
          break;
        case TraceKind::suspend:
        case TraceKind::finish:
          if (!open) break;
          begin_event();
          std::fprintf(out, "{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"id\":%llu,\"%s\":", pid, tid,
                       us, static_cast<unsigned long long>(r.id), r.kind == TraceKind::finish ? "finished" : "leaf");
          if (r.kind == TraceKind::finish) {
            std::fputs("true", out);
          } else {
            write_string(out, r.leaf ? r.leaf : "(unnamed)");
          }
          std::fputs("}}", out);
          open = false;
          break;
        case TraceKind::spawn:
        case TraceKind::cancel: {
          begin_event();
          std::fputs("{\"name\":", out);
          char what[64];
          std::snprintf(what, sizeof what, "%s %s", r.kind == TraceKind::spawn ? "spawn" : "cancel", label);
          write_string(out, what);
          std::fprintf(out, ",\"ph\":\"i\",\"s\":\"t\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"id\":%llu", pid,
                       tid, us, static_cast<unsigned long long>(r.id));
          if (r.kind == TraceKind::spawn && r.file) {
            char site[512];
            std::snprintf(site, sizeof site, "%s:%u", r.file, r.line);
            std::fputs(",\"site\":", out);
            write_string(out, site);
          }
          std::fputs("}}", out);
          break;
        }
      }
    }
    if (open) {
      begin_event();
      std::fprintf(out, "{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f}", pid, tid,
                   static_cast<double>(last_ns) / 1000.0);
    }
    buffer->head.store(0, std::memory_order_relaxed);  // written: the next start() begins afresh
  }
  std::fprintf(out, "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"heddle\",\"dropped_events\":%llu}}\n",
               static_cast<unsigned long long>(dropped));
}

void stop_at_exit() {
  try {
    trace::stop();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "heddle: HEDDLE_TRACE: %s\n", error.what());
  }
}

// HEDDLE_TRACE=<file>: trace from start-up.
[[maybe_unused]] const bool started_from_environment = [] {
  const char* path = std::getenv("HEDDLE_TRACE");
  if (!path || !*path) return false;
  try {
    trace::start(path);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "heddle: HEDDLE_TRACE=%s: %s (not tracing)\n", path, error.what());
    return false;
  }
  return true;
}();

}  // namespace

void trace_record(TraceKind kind, const TaskControl* task) noexcept {
  TraceBuffer* buffer;
  try {
    buffer = thread_buffer();
  } catch (...) {
    return;  // no memory for a ring: this event is lost, not the program
  }
  buffer->busy.store(true, std::memory_order_seq_cst);
  if (!trace_on.load(std::memory_order_seq_cst)) {
    buffer->busy.store(false, std::memory_order_release);
    return;
  }
  const std::uint64_t head = buffer->head.load(std::memory_order_relaxed);
  TraceRecord& r = buffer->ring[head % kRingEvents];
  r.ns = monotonic_ns();
  r.kind = kind;
  r.id = task->id;
  r.leaf = nullptr;
  if (kind == TraceKind::suspend) {
    r.leaf = task->spawning   ? "heddle::spawn (continuation queued)"
             : task->yielding ? "heddle::this_task::yield"
                              : task->leaf;
  }
  r.file = kind == TraceKind::spawn ? task->spawn_file : nullptr;
  r.line = kind == TraceKind::spawn ? task->spawn_line : 0;
  std::memcpy(r.name, task->name, sizeof r.name - 1);
  r.name[sizeof r.name - 1] = '\0';
  buffer->head.store(head + 1, std::memory_order_release);
  buffer->busy.store(false, std::memory_order_release);
}

}  // namespace detail

namespace trace {

void start(const std::string& path) {
  detail::TraceState& s = detail::state();
  std::lock_guard lock(s.mutex);
  if (detail::trace_on.load(std::memory_order_relaxed)) {
    throw std::logic_error("heddle::trace::start: tracing is already on (to " + s.path + ")");
  }
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (!file) throw std::system_error(errno, std::generic_category(), "heddle::trace::start: cannot create " + path);
  s.file = file;
  s.path = path;
  for (auto& buffer : s.buffers) buffer->head.store(0, std::memory_order_relaxed);
  if (!s.exit_hook) {
    s.exit_hook = true;
    std::atexit(&detail::stop_at_exit);
  }
  detail::trace_on.store(true, std::memory_order_seq_cst);
}

void stop() {
  detail::TraceState& s = detail::state();
  std::lock_guard lock(s.mutex);
  if (!detail::trace_on.load(std::memory_order_relaxed)) return;
  detail::trace_on.store(false, std::memory_order_seq_cst);
  for (auto& buffer : s.buffers) {
    while (buffer->busy.load(std::memory_order_acquire)) arch::cpu_relax();  // a record in flight
  }
  std::FILE* file = std::exchange(s.file, nullptr);
  detail::write_file(file, s.buffers);
  const bool failed = std::ferror(file) != 0;
  if (std::fclose(file) != 0 || failed) {
    throw std::system_error(errno ? errno : EIO, std::generic_category(), "heddle::trace::stop: writing " + s.path);
  }
}

bool enabled() noexcept { return detail::trace_on.load(std::memory_order_relaxed); }

}  // namespace trace
}  // namespace heddle
