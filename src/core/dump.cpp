// heddle core: dump_tasks and install_dump_on_signal (include/heddle/core/dump.hpp).
//
// The registry. Control blocks are never freed and every chunk of them is
// linked, once built, into the depot's chunk list (release store under the
// depot's mutex; detail::for_each_control_block walks it from an acquire
// load). A block holds a live task while its state word says so: generation
// 0 is a block never used, phase `finished` a task that ended (or a block
// back on a free list), anything else is live. Spawn registers nothing, so
// it costs nothing; a dump costs O(blocks ever made).
//
// Reading a task that runs on. Only the state word is atomic; the other
// fields are plain and may be rewritten under the reader when the task moves
// on (parks again, finishes, or its block is reused). So each block is read
// like a seqlock:
//   1. s1 = state (acquire). Not live: skip.
//   2. copy the fields into a Snapshot (racy reads; nothing is followed yet);
//      for a parked task also copy the used top of its stack, through
//      process_vm_readv: the kernel copies, so a stack that was unmapped
//      meanwhile yields EFAULT, never a fault.
//   3. acquire fence, s2 = state. s1 == s2: no transition happened in
//      between (every transition changes the word, and the generation only
//      grows, so it cannot come back to s1), so the snapshot is one state
//      of one life of the task: keep it. Otherwise retry, then give up and
//      count it as "changed while read".
// Every pointer kept from a snapshot is either a string literal (name of the
// leaf, spawn file and function) or an address that is only compared or
// symbolised, never dereferenced; the frame walk reads the local copy of the
// stack only, inside its bounds. The one read of task memory in place is the
// high-water scan of a painted stack (heddle::high_water; unpainted stacks
// ask mincore), skipped for a task running on another thread; it could fault
// only if the stack's owner unmapped it during the dump, after the task
// finished (a pool being destroyed, a caller's span freed).
//
// Writers need nothing for this: a task's identity is written before the
// release store that starts its life (acquire_control), its leaf before the
// release RMW that starts a suspension (suspend_current), its registers
// before the CAS that makes it parked (complete_park); running_thread is a
// relaxed store at each switch in and out.
//
// Symbolising. libbacktrace (shipped with GCC: libgcc-<version>-dev, which
// g++ installs) reads the DWARF of the executable and of each shared object
// in-process, with file, line and inlined frames, and is thread-safe with a
// single state; names are demangled with abi::__cxa_demangle. Without it
// (HEDDLE_HAVE_BACKTRACE unset, e.g. a compiler without GCC's runtime),
// dladdr names exported symbols only.
#include "heddle/core/dump.hpp"

#include <cxxabi.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <ostream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/arch/sanitizer.hpp"
#include "heddle/core/detail/control.hpp"

#if HEDDLE_HAVE_BACKTRACE
#include HEDDLE_BACKTRACE_HEADER  // GCC's backtrace.h, by full path (src/CMakeLists.txt)
#endif

// The racy reads of another task's control block and stack: not data races
// that ThreadSanitizer should report (the snapshot is validated by the state
// word before use), nor ASan errors (a parked stack holds poisoned redzones).
#if HEDDLE_TSAN
#define HEDDLE_RACY_READ __attribute__((no_sanitize("thread"))) HEDDLE_NO_SANITIZE_ADDRESS
#else
#define HEDDLE_RACY_READ HEDDLE_NO_SANITIZE_ADDRESS
#endif

namespace heddle {
namespace {

using detail::Phase;
using detail::TaskControl;

constexpr int kReadAttempts = 4;
constexpr std::size_t kMaxFrames = 64;
// The most of a parked stack copied for its backtrace, from its saved
// context up: deeper frames beyond this are not shown.
constexpr std::size_t kMaxStackCopy = 1 << 20;

struct Snapshot {
  std::uint64_t state = 0;
  std::uint64_t id = 0;
  char name[sizeof(TaskControl::name)] = {};
  const char* spawn_file = nullptr;
  const char* spawn_function = nullptr;
  unsigned spawn_line = 0;
  const char* leaf = nullptr;
  bool interruptible = true;
  std::uint32_t running_thread = 0;
  Stack stack;
  std::uintptr_t saved_sp = 0;
  StackUsage usage;
  std::vector<std::uintptr_t> frames;  // return addresses, innermost first (parked tasks)
};

Phase phase_of(const Snapshot& s) noexcept { return detail::phase_of(s.state); }

bool is_live(std::uint64_t state) noexcept {
  return detail::generation_of(state) != 0 && detail::phase_of(state) != Phase::finished;
}

// Step 2 of the read (see the top of the file): plain copies, no pointer followed.
HEDDLE_RACY_READ void copy_fields(const TaskControl* t, Snapshot& out) noexcept {
  out.id = t->id;
  const volatile char* name = t->name;  // volatile: a byte loop, never a (sanitizer-intercepted) memcpy
  for (std::size_t i = 0; i + 1 < sizeof out.name; ++i) out.name[i] = name[i];
  out.name[sizeof out.name - 1] = '\0';
  out.spawn_file = t->spawn_file;
  out.spawn_function = t->spawn_function;
  out.spawn_line = t->spawn_line;
  out.leaf = t->leaf;
  out.stack.low = t->stack.low;
  out.stack.size = t->stack.size;
  out.stack.kind = t->stack.kind;
  out.stack.painted = t->stack.painted;
  out.saved_sp = reinterpret_cast<std::uintptr_t>(t->saved_sp);
}

// A fallback copy in place, for kernels that refuse process_vm_readv on the
// process itself (seccomp): bounds were checked by the caller.
HEDDLE_RACY_READ void copy_in_place(std::uintptr_t from, std::size_t bytes, std::byte* to) noexcept {
  const volatile std::byte* source = reinterpret_cast<const volatile std::byte*>(from);
  for (std::size_t i = 0; i < bytes; ++i) to[i] = source[i];
}

// Copies [saved_sp, min(stack top, saved_sp + kMaxStackCopy)) of a parked
// task into `copy`; returns the bytes copied (0: none).
std::size_t copy_stack_top(const Snapshot& s, std::vector<std::byte>& copy) noexcept {
  const auto low = reinterpret_cast<std::uintptr_t>(s.stack.low);
  const std::uintptr_t high = low + s.stack.size;
  if (s.stack.low == nullptr || s.saved_sp < low || s.saved_sp >= high ||
      high - s.saved_sp < sizeof(arch::SwitchFrame) || s.saved_sp % alignof(void*) != 0) {
    return 0;
  }
  const std::size_t bytes = std::min<std::size_t>(high - s.saved_sp, kMaxStackCopy);
  if (copy.size() < bytes) copy.resize(bytes);
  static std::atomic<bool> in_place{false};
  if (!in_place.load(std::memory_order_relaxed)) {
    iovec local{copy.data(), bytes};
    iovec remote{reinterpret_cast<void*>(s.saved_sp), bytes};
    const ssize_t copied = ::process_vm_readv(::getpid(), &local, 1, &remote, 1, 0);
    if (copied >= 0) return static_cast<std::size_t>(copied);
    if (errno != ENOSYS && errno != EPERM) return 0;  // EFAULT: the stack went away
    in_place.store(true, std::memory_order_relaxed);
  }
  copy_in_place(s.saved_sp, bytes, copy.data());
  return bytes;
}

// The frame-pointer walk, on the copy of [base, base + bytes): every read is
// bounds-checked against the copy, frame records must climb strictly up the
// stack, so a corrupt chain ends the walk instead of looping or escaping.
// The switch frame at saved_sp holds the frame pointer and resume address
// of the function that switched out (include/heddle/arch/context.hpp); on
// both x86-64 and AArch64 a frame record is {caller's frame pointer, return
// address}. The entry frame's record links to 0 (arch::make_context).
std::vector<std::uintptr_t> walk_frames(const std::byte* copy, std::uintptr_t base, std::size_t bytes) {
  std::vector<std::uintptr_t> frames;
  if (bytes < sizeof(arch::SwitchFrame)) return frames;
  auto read_word = [&](std::uintptr_t address, std::uintptr_t& value) {
    if (address < base || address % alignof(void*) != 0 || address - base > bytes - sizeof value) return false;
    std::memcpy(&value, copy + (address - base), sizeof value);
    return true;
  };
  arch::SwitchFrame frame;
  std::memcpy(&frame, copy, sizeof frame);
#if defined(__x86_64__)
  std::uintptr_t fp = frame.rbp;
#else
  std::uintptr_t fp = frame.frame_pointer;
#endif
  frames.push_back(reinterpret_cast<std::uintptr_t>(frame.resume_address));
  while (frames.size() < kMaxFrames) {
    std::uintptr_t next_fp = 0;
    std::uintptr_t return_address = 0;
    if (!read_word(fp, next_fp) || !read_word(fp + sizeof(void*), return_address) || return_address == 0) break;
    frames.push_back(return_address);
    if (next_fp <= fp) break;
    fp = next_fp;
  }
  return frames;
}

// Step 3: the state word, read after every read before it.
std::uint64_t state_after_reads(const TaskControl* t) noexcept {
#if HEDDLE_TSAN
  // GCC's ThreadSanitizer has no fences. An RMW that changes nothing orders
  // the reads before it as well (its release half); it only costs the task a
  // contended cache line, in TSan builds.
  return const_cast<TaskControl*>(t)->state.load_by_rmw();
#else
  std::atomic_thread_fence(std::memory_order_acquire);
  return t->state.load(std::memory_order_relaxed);
#endif
}

// Steps 1-3 of the read. False: not live, or it never held still.
bool read_task(const TaskControl* t, Snapshot& out, std::vector<std::byte>& stack_copy, bool& changed) {
  const std::uint32_t self = static_cast<std::uint32_t>(::gettid());
  for (int attempt = 0; attempt < kReadAttempts; ++attempt) {
    const std::uint64_t before = t->state.load(std::memory_order_acquire);
    if (!is_live(before)) return false;
    out.state = before;
    copy_fields(t, out);
    out.interruptible = t->interruptible.load(std::memory_order_relaxed);
    out.running_thread = t->running_thread.load(std::memory_order_relaxed);
    std::size_t copied = 0;
    if (detail::phase_of(before) == Phase::parked) copied = copy_stack_top(out, stack_copy);
    if (state_after_reads(t) != before) continue;
    out.frames = walk_frames(stack_copy.data(), out.saved_sp, copied);
    // Painted stacks are scanned in place: not while another thread runs on it.
    const bool running_elsewhere = out.running_thread != 0 && out.running_thread != self;
    if (!(out.stack.painted && running_elsewhere)) out.usage = high_water(out.stack);
    return true;
  }
  changed = true;
  return false;
}

// ---- symbolising

std::string demangled(const char* name) {
  int status = 0;
  char* text = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string result = status == 0 && text ? text : name;
  std::free(text);
  return result;
}

struct SourceFrame {
  std::string function;
  std::string file;
  int line = 0;
};

#if HEDDLE_HAVE_BACKTRACE
void ignore_backtrace_error(void*, const char*, int) {}

backtrace_state* symbol_state() {
  // One state for the process, never freed (libbacktrace cannot free one);
  // threaded: dumps from several threads share it.
  static backtrace_state* const state = backtrace_create_state(nullptr, 1, &ignore_backtrace_error, nullptr);
  return state;
}

int on_pcinfo(void* data, std::uintptr_t, const char* file, int line, const char* function) {
  if (function || file) {
    static_cast<std::vector<SourceFrame>*>(data)->push_back(
        {function ? demangled(function) : std::string("??"), file ? file : "", line});
  }
  return 0;
}

void on_syminfo(void* data, std::uintptr_t, const char* symbol, std::uintptr_t, std::uintptr_t) {
  if (symbol) static_cast<std::vector<SourceFrame>*>(data)->push_back({demangled(symbol), "", 0});
}
#endif

// What `pc` (a return address: the call is at pc - 1) is, innermost inlined
// function first.
std::vector<SourceFrame> symbolise(std::uintptr_t pc) {
  std::vector<SourceFrame> frames;
  const std::uintptr_t call_site = pc - 1;
#if HEDDLE_HAVE_BACKTRACE
  if (backtrace_state* state = symbol_state()) {
    backtrace_pcinfo(state, call_site, &on_pcinfo, &ignore_backtrace_error, &frames);
    if (frames.empty()) backtrace_syminfo(state, call_site, &on_syminfo, &ignore_backtrace_error, &frames);
  }
#endif
  if (frames.empty()) {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(call_site), &info) != 0 && info.dli_sname) {
      frames.push_back({demangled(info.dli_sname), info.dli_fname ? info.dli_fname : "", 0});
    } else if (info.dli_fname) {
      frames.push_back({"??", info.dli_fname, 0});
    }
  }
  return frames;
}

// One dump's cache: a few thousand parked tasks mostly share their frames.
class Symboliser {
 public:
  const std::string& lines(std::uintptr_t pc, std::size_t& number) {
    auto [it, inserted] = cache_.try_emplace(pc);
    if (inserted) it->second = symbolise(pc);
    text_.clear();
    char address[2 + 2 * sizeof pc + 1];
    std::snprintf(address, sizeof address, "0x%016zx", static_cast<std::size_t>(pc));
    if (it->second.empty()) {
      text_ += "    #" + std::to_string(number++) + "  " + address + " in ??\n";
      return text_;
    }
    bool first = true;
    for (const SourceFrame& frame : it->second) {
      text_ += "    #" + std::to_string(number++) + "  ";
      text_ += first ? address : "(inlined)";
      text_ += " in " + frame.function;
      if (!frame.file.empty()) {
        text_ += " at " + frame.file;
        if (frame.line > 0) text_ += ":" + std::to_string(frame.line);
      }
      text_ += '\n';
      first = false;
    }
    return text_;
  }

 private:
  std::unordered_map<std::uintptr_t, std::vector<SourceFrame>> cache_;
  std::string text_;
};

// ---- the report

struct Collector {
  std::vector<Snapshot> tasks;
  std::vector<std::byte> stack_copy;
  std::size_t changed = 0;
  std::size_t blocks = 0;
};

void collect(TaskControl* block, void* context) {
  auto& collector = *static_cast<Collector*>(context);
  ++collector.blocks;
  Snapshot snapshot;
  bool changed = false;
  if (read_task(block, snapshot, collector.stack_copy, changed)) collector.tasks.push_back(std::move(snapshot));
  if (changed) ++collector.changed;
}

void write_state(std::ostream& out, const Snapshot& s, std::uint32_t self) {
  switch (phase_of(s)) {
    case Phase::running:
      if (s.running_thread == 0) {
        out << "runnable";
      } else {
        out << "running on thread " << s.running_thread;
        if (s.running_thread == self) out << " (this thread: the one dumping)";
      }
      break;
    case Phase::parking:
      out << "parking";
      if (s.leaf) out << " at " << s.leaf;
      break;
    case Phase::parked:
      out << "parked";
      if (s.leaf) out << " at " << s.leaf;
      break;
    case Phase::finished:
      out << "finished";
      break;
  }
  if (s.state & detail::kCancelRequested) out << ", cancel requested";
  if (phase_of(s) != Phase::running && !s.interruptible) out << ", uninterruptible";
}

void write_task(std::ostream& out, const Snapshot& s, std::uint32_t self, Symboliser& symbols) {
  out << "task " << s.id << " \"" << s.name << "\": ";
  write_state(out, s, self);
  out << "\n  spawned at " << (s.spawn_file ? s.spawn_file : "(unknown)") << ':' << s.spawn_line;
  if (s.spawn_function && *s.spawn_function) out << " in " << s.spawn_function;
  out << "\n  stack: " << to_string(s.stack.kind) << ", " << s.stack.size << " bytes, high water ";
  if (s.usage.granularity == 0) {
    out << "unknown";
  } else {
    out << s.usage.bytes << " bytes" << (s.usage.granularity > 8 ? " (whole pages)" : " (painted)");
  }
  out << '\n';
  if (phase_of(s) == Phase::parked && s.frames.empty()) out << "    (no backtrace: saved context unreadable)\n";
  std::size_t number = 0;
  for (std::uintptr_t pc : s.frames) out << symbols.lines(pc, number);
}

// ---- the signal

std::atomic<int> dump_pipe_write{-1};  // lock-free: read by the signal handler
std::mutex install_mutex;

extern "C" void on_dump_signal(int) {
  const int saved_errno = errno;
  const char byte = 1;
  // Non-blocking: a full pipe means a dump is already pending.
  [[maybe_unused]] const ssize_t written = ::write(dump_pipe_write.load(std::memory_order_relaxed), &byte, 1);
  errno = saved_errno;
}

void write_all(int fd, const std::string& text) noexcept {
  const char* data = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    left -= static_cast<std::size_t>(n);
  }
}

void dump_thread(int read_end) noexcept {
  char bytes[64];
  for (;;) {
    const ssize_t n = ::read(read_end, bytes, sizeof bytes);  // one dump for every burst of signals
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    try {
      std::ostringstream out;
      dump_tasks(out);
      write_all(STDERR_FILENO, out.str());
    } catch (...) {
      write_all(STDERR_FILENO, "heddle: task dump failed (out of memory?)\n");
    }
  }
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), std::string("heddle::install_dump_on_signal: ") + what);
}

void start_dump_thread() {
  int ends[2];
  if (::pipe2(ends, O_CLOEXEC) != 0) throw_errno("pipe2");
  if (::fcntl(ends[1], F_SETFL, O_NONBLOCK) != 0) {
    const int error = errno;
    ::close(ends[0]);
    ::close(ends[1]);
    errno = error;
    throw_errno("fcntl");
  }
  // The thread starts with every signal blocked, so it never takes one the
  // application meant for its own threads (a sigwait loop, say).
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    std::thread(dump_thread, ends[0]).detach();
  } catch (const std::system_error&) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    ::close(ends[0]);
    ::close(ends[1]);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  dump_pipe_write.store(ends[1], std::memory_order_release);
}

}  // namespace

std::size_t dump_tasks(std::ostream& out) {
  Collector collector;
  detail::for_each_control_block(&collect, &collector);
  std::sort(collector.tasks.begin(), collector.tasks.end(),
            [](const Snapshot& a, const Snapshot& b) { return a.id < b.id; });
  const auto self = static_cast<std::uint32_t>(::gettid());
  out << "heddle: " << collector.tasks.size() << " live task" << (collector.tasks.size() == 1 ? "" : "s")
      << " (pid " << ::getpid() << ", dumped by thread " << self << ")\n";
  Symboliser symbols;
  for (const Snapshot& s : collector.tasks) write_task(out, s, self, symbols);
  if (collector.changed > 0) {
    out << "heddle: " << collector.changed << " more task" << (collector.changed == 1 ? "" : "s")
        << " changed state while read, not shown\n";
  }
  out << "heddle: end of task dump\n";
  out.flush();
  return collector.tasks.size();
}

void install_dump_on_signal(int signal) {
  std::lock_guard lock(install_mutex);
  if (dump_pipe_write.load(std::memory_order_acquire) < 0) start_dump_thread();
  struct sigaction action {};
  action.sa_handler = &on_dump_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(signal, &action, nullptr) != 0) throw_errno("sigaction");
}

}  // namespace heddle
