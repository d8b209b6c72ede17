// heddle core: task event tracing (include/heddle/core/trace.hpp; the event
// sites are in core/detail/trace_hooks.hpp).
//
// Recording protocol, per thread buffer (one writer: its thread):
//   recorder: busy = true (seq_cst); if tracing is off (seq_cst load),
//             busy = false and return; write the record at index
//             head % capacity; head + 1 (release); busy = false (release).
//   stop():   trace_on = false (seq_cst); for every buffer, wait until
//             busy is false (seq_cst load); then read records
//             [head - capacity, head). The four seq_cst operations form a
//             Dekker pair: a recorder either sees tracing off or is seen
//             busy, so no record is read while it is written.
// A full ring overwrites its oldest records (the newest are what explains
// the end of a run); the file counts them in otherData.dropped_events.
// Buffers are owned by the registry and never freed while the process
// runs, so a thread that exits leaves its events behind for the file.
#include "heddle/core/trace.hpp"

#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "heddle/arch/cpu_relax.hpp"
#include "heddle/core/detail/control.hpp"
#include "heddle/core/detail/trace_hooks.hpp"
#include "json.hpp"
#include "sys/timespec.hpp"


namespace heddle {
namespace detail {

#if HEDDLE_WITH_TRACE

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
  char thread_name[16] = {};  // the thread's name when its ring was made
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

// A thread's first event: makes its ring and registers it (the only lock).
__attribute__((noinline)) TraceBuffer* thread_buffer() {
  if (t_buffer) return t_buffer;
  auto buffer = std::make_unique<TraceBuffer>();
  buffer->thread_id = static_cast<std::uint32_t>(syscall(SYS_gettid));
  if (pthread_getname_np(pthread_self(), buffer->thread_name, sizeof buffer->thread_name) != 0) {
    buffer->thread_name[0] = '\0';
  }
  TraceState& s = state();
  std::lock_guard lock(s.mutex);
  t_buffer = buffer.get();
  s.buffers.push_back(std::move(buffer));
  return t_buffer;
}

std::int64_t monotonic_ns() noexcept {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return to_nanoseconds(now);
}

void task_label(const TraceRecord& r, char* out, std::size_t size) {
  if (r.name[0]) {
    std::snprintf(out, size, "%s", r.name);
  } else {
    std::snprintf(out, size, "task %llu", static_cast<unsigned long long>(r.id));
  }
}

// Writes one thread's events. Slices: a resume opens one ("B") on its
// thread, the next suspend or finish of the same task there closes it
// ("E"). They nest: a task that spawns a child or resumes another inline
// stays switched in underneath it (its stack is paused inside the switch),
// so a thread's switches are last-in first-out. An "E" with no open slice
// (its "B" was overwritten, or came before start()) is skipped, and slices
// still open at the end are closed at the thread's last timestamp.
void write_thread(std::FILE* out, TraceBuffer& buffer, long pid, bool& first) {
  auto begin_event = [&] {
    if (!first) std::fputs(",\n", out);
    first = false;
  };
  const std::uint64_t head = buffer.head.load(std::memory_order_acquire);
  const std::uint64_t count = head < kRingEvents ? head : kRingEvents;
  const std::uint32_t tid = buffer.thread_id;
  begin_event();
  char thread_label[48];
  std::snprintf(thread_label, sizeof thread_label, "%s %u", buffer.thread_name[0] ? buffer.thread_name : "thread",
                tid);
  std::fprintf(out, "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%ld,\"tid\":%u,\"args\":{\"name\":", pid, tid);
  write_json_string(out, thread_label);
  std::fprintf(out, ",\"dropped_events\":%llu}}", static_cast<unsigned long long>(head - count));
  std::vector<std::uint64_t> open;  // ids of the slices open on this thread, innermost last
  std::int64_t last_ns = 0;
  char label[48];
  for (std::uint64_t i = head - count; i < head; ++i) {
    const TraceRecord& r = buffer.ring[i % kRingEvents];
    const double us = static_cast<double>(r.ns) / 1000.0;
    last_ns = r.ns;
    task_label(r, label, sizeof label);
    switch (r.kind) {
      case TraceKind::resume:
        begin_event();
        std::fprintf(out, "{\"name\":");
        write_json_string(out, label);
        std::fprintf(out, ",\"ph\":\"B\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"id\":%llu}}", pid, tid, us,
                     static_cast<unsigned long long>(r.id));
        open.push_back(r.id);
        break;
      case TraceKind::suspend:
      case TraceKind::finish:
        if (open.empty() || open.back() != r.id) break;
        open.pop_back();
        begin_event();
        std::fprintf(out, "{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"id\":%llu,\"%s\":", pid, tid,
                     us, static_cast<unsigned long long>(r.id), r.kind == TraceKind::finish ? "finished" : "leaf");
        if (r.kind == TraceKind::finish) {
          std::fputs("true", out);
        } else {
          write_json_string(out, r.leaf ? r.leaf : "parked");  // a plain suspend, as dump_tasks says
        }
        std::fputs("}}", out);
        break;
      case TraceKind::spawn:
      case TraceKind::cancel: {
        begin_event();
        std::fputs("{\"name\":", out);
        char what[64];
        std::snprintf(what, sizeof what, "%s %s", r.kind == TraceKind::spawn ? "spawn" : "cancel", label);
        write_json_string(out, what);
        std::fprintf(out, ",\"ph\":\"i\",\"s\":\"t\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"id\":%llu", pid,
                     tid, us, static_cast<unsigned long long>(r.id));
        if (r.kind == TraceKind::spawn && r.file) {
          char site[512];
          std::snprintf(site, sizeof site, "%s:%u", r.file, r.line);
          std::fputs(",\"site\":", out);
          write_json_string(out, site);
        }
        std::fputs("}}", out);
        break;
      }
    }
  }
  while (!open.empty()) {
    open.pop_back();
    begin_event();
    std::fprintf(out, "{\"ph\":\"E\",\"pid\":%ld,\"tid\":%u,\"ts\":%.3f,\"args\":{\"still_running\":true}}", pid, tid,
                 static_cast<double>(last_ns) / 1000.0);
  }
}

// The whole file; empties every ring.
void write_file(std::FILE* out, std::vector<std::unique_ptr<TraceBuffer>>& buffers) {
  const long pid = static_cast<long>(getpid());
  std::uint64_t dropped = 0;
  std::fprintf(out, "{\"traceEvents\":[\n");
  bool first = true;
  for (auto& buffer : buffers) {
    const std::uint64_t head = buffer->head.load(std::memory_order_acquire);
    if (head == 0) continue;
    dropped += head > kRingEvents ? head - kRingEvents : 0;
    write_thread(out, *buffer, pid, first);
    buffer->head.store(0, std::memory_order_relaxed);  // written: the next start() begins afresh
  }
  std::fprintf(out, "\n],\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"heddle\",\"dropped_events\":%llu}}\n",
               static_cast<unsigned long long>(dropped));
}

}  // namespace

namespace {

// The event, packed into the one pointer run_off_task_stack passes: the
// control block's address with the kind in its low bits (control blocks
// are 8-aligned and there are fewer than 8 kinds). One word, not a struct
// on the caller's frame, so trace_record's call is a tail call: the
// recording then costs a bounded task's stack no frame of trace_record's.
constexpr std::uintptr_t kTraceKindBits = 7;
static_assert(alignof(TaskControl) > kTraceKindBits, "the kind is packed into a control block's low bits");
static_assert(static_cast<std::uintptr_t>(TraceKind::cancel) <= kTraceKindBits, "a kind fits in the low bits");

void record_here(void* packed) noexcept {
  const auto word = reinterpret_cast<std::uintptr_t>(packed);
  const auto kind = static_cast<TraceKind>(word & kTraceKindBits);
  const auto* task = reinterpret_cast<const TaskControl*>(word & ~kTraceKindBits);
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
    switch (task->switch_request) {
      case SwitchRequest::yield_to_child: r.leaf = "heddle::spawn (continuation queued)"; break;
      case SwitchRequest::yield: r.leaf = "heddle::this_task::yield"; break;
      default: r.leaf = task->leaf; break;
    }
  }
  r.file = kind == TraceKind::spawn ? task->spawn_file : nullptr;
  r.line = kind == TraceKind::spawn ? task->spawn_line : 0;
  std::memcpy(r.name, task->name, sizeof r.name - 1);
  r.name[sizeof r.name - 1] = '\0';
  buffer->head.store(head + 1, std::memory_order_release);
  buffer->busy.store(false, std::memory_order_release);
}

}  // namespace

// Off the task's stack (the thread's unwind stack, where a bounded task ran
// on this thread): a bounded task's proof then holds none of it, neither the
// clock read nor the first event's ring allocation and lock. Only while
// tracing is on: trace_event checks that first.
void trace_record(TraceKind kind, const TaskControl* task) noexcept {
  const auto packed = reinterpret_cast<std::uintptr_t>(task) | static_cast<std::uintptr_t>(kind);
  run_off_task_stack(&record_here, reinterpret_cast<void*>(packed));
}

std::uint64_t trace_events_held() noexcept {
  TraceState& s = state();
  std::lock_guard lock(s.mutex);
  std::uint64_t held = 0;
  for (auto& buffer : s.buffers) {
    const std::uint64_t head = buffer->head.load(std::memory_order_acquire);
    held += head < kRingEvents ? head : kRingEvents;
  }
  return held;
}

#else  // HEDDLE_WITH_TRACE

std::uint64_t trace_events_held() noexcept { return 0; }

#endif  // HEDDLE_WITH_TRACE

namespace {

#if HEDDLE_WITH_TRACE
void stop_at_exit() {
  try {
    trace::stop();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "heddle: HEDDLE_TRACE: %s\n", error.what());
  }
}
#endif

// HEDDLE_TRACE=<file>: trace from start-up (this object is always linked:
// task.cpp calls into it).
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
}  // namespace detail

namespace trace {

#if HEDDLE_WITH_TRACE

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
    while (buffer->busy.load(std::memory_order_seq_cst)) arch::cpu_relax();  // a record in flight
  }
  std::FILE* file = std::exchange(s.file, nullptr);
  errno = 0;
  detail::write_file(file, s.buffers);
  const bool failed = std::ferror(file) != 0;
  const int write_error = errno;
  if (std::fclose(file) != 0 || failed) {
    const int error = errno ? errno : write_error ? write_error : EIO;
    throw std::system_error(error, std::generic_category(), "heddle::trace::stop: writing " + s.path);
  }
}

bool enabled() noexcept { return detail::trace_on.load(std::memory_order_relaxed); }

#else  // HEDDLE_WITH_TRACE

void start(const std::string& path) {
  throw std::runtime_error("heddle::trace::start(" + path + "): heddle was built with HEDDLE_WITH_TRACE=OFF");
}
void stop() {}
bool enabled() noexcept { return false; }

#endif  // HEDDLE_WITH_TRACE

}  // namespace trace
}  // namespace heddle
