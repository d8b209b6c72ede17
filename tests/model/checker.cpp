// heddle tests: the exhaustive interleaving checker's engine (checker.hpp).
//
// One execution runs each logical thread as a fibre (ucontext) on the test's
// own OS thread: a thread runs until its next scheduling point, then
// switches back to the engine, which asks the explorer which enabled thread
// performs the next step and switches to it. Nothing runs concurrently, and
// a switch costs no trip through the OS scheduler (a machine busy with other
// work would otherwise make every hand-over a wake-up latency).
//
// The explorer is a depth-first search over the choices (which thread, and
// whether a weak compare-and-swap fails spuriously): each execution replays
// the choices of the one before up to the deepest choice with an untried
// alternative, takes that alternative, then the first choice at every new
// point. It ends when no choice has an alternative left.
//
// A failed execution abandons its fibres where they stand (never resumed:
// no unwinding, so nothing on their stacks may own memory, checker.hpp).
#include "checker.hpp"

#include <ucontext.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <utility>

#include "heddle/arch/sanitizer.hpp"
#if HEDDLE_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace heddle::model {
namespace {

class Explorer {
 public:
  // A choice among `count` (> 1) outcomes; false if the replay diverged.
  bool choose(std::size_t count, std::size_t& taken) {
    if (depth_ < stack_.size()) {
      const Choice& c = stack_[depth_++];
      if (c.count != count) return false;
      taken = c.taken;
      return true;
    }
    stack_.push_back({count, 0});
    ++depth_;
    taken = 0;
    return true;
  }
  // Moves to the next unexplored execution; false when none is left.
  bool advance() {
    while (!stack_.empty() && stack_.back().taken + 1 == stack_.back().count) stack_.pop_back();
    depth_ = 0;
    if (stack_.empty()) return false;
    ++stack_.back().taken;
    return true;
  }

 private:
  struct Choice {
    std::size_t count;
    std::size_t taken;
  };
  std::vector<Choice> stack_;
  std::size_t depth_ = 0;
};

struct Event {
  std::size_t thread;
  Op op;
  const void* object;
  std::uint64_t before;
  std::uint64_t after;
  std::string text;  // a note's, or a block's reason
};

enum class Status : std::uint8_t { runnable, blocked, finished };

constexpr std::size_t kStackBytes = 64 * 1024;  // ample, with ASan redzones; ASan clears its shadow at every switch

struct LogicalThread {
  std::string name;
  std::function<void()> body;
  ucontext_t context;
  char* stack = nullptr;  // one of g_stacks
  Status status = Status::runnable;
  std::function<bool()> ready;   // while blocked
  const void* futex = nullptr;   // while asleep on a futex
  bool futex_woken = false;
};

// The fibres' stacks, kept from one execution to the next.
std::vector<std::unique_ptr<char[]>> g_stacks;
char* stack_for(std::size_t index) {
  while (g_stacks.size() <= index) g_stacks.push_back(std::make_unique_for_overwrite<char[]>(kStackBytes));
  return g_stacks[index].get();
}

class Run;
Run* g_run = nullptr;              // the execution under way
LogicalThread* g_self = nullptr;   // the running logical thread; null on the test's own stack

class Run {
 public:
  Run(Execution& execution, Explorer& explorer, const Options& options)
      : execution_(execution), explorer_(explorer), spurious_left_(options.spurious_failures),
        max_steps_(options.max_steps) {
    if (execution.threads.size() > kMaxThreads) {
      std::fprintf(stderr, "heddle::model: at most %zu threads\n", kMaxThreads);
      std::abort();
    }
    events_.reserve(256);
    for (auto& [name, body] : execution.threads) {
      auto t = std::make_unique<LogicalThread>();
      t->name = name;
      t->body = body;
      t->stack = stack_for(threads_.size());
      getcontext(&t->context);
      t->context.uc_stack.ss_sp = t->stack;
      t->context.uc_stack.ss_size = kStackBytes;
      t->context.uc_link = nullptr;
      makecontext(&t->context, &Run::entry, 0);
      threads_.push_back(std::move(t));
    }
  }

  ~Run() {
#if HEDDLE_ASAN
    // An abandoned fibre's frames left their redzones poisoned.
    for (auto& t : threads_) __asan_unpoison_memory_region(t->stack, kStackBytes);
#endif
  }

  // Runs the execution to its end (or its failure).
  void run() {
    // Each thread runs alone from its start to its first scheduling point:
    // nothing shared happens before it, so no order of starts is a choice.
    for (std::size_t i = 0; i < threads_.size() && !failed_; ++i) switch_to(i);
    while (!failed_) {
      std::array<std::size_t, kMaxThreads> candidates{};
      std::size_t count = 0;
      if (current_ != kNobody && enabled(*threads_[current_])) candidates[count++] = current_;
      for (std::size_t i = 0; i < threads_.size(); ++i) {
        if (i != current_ && enabled(*threads_[i])) candidates[count++] = i;
      }
      if (count == 0) {
        bool all_finished = true;
        for (auto& t : threads_) all_finished = all_finished && t->status == Status::finished;
        if (!all_finished) set_failure(deadlock_message());
        break;
      }
      const std::size_t next = candidates[decide(count)];
      if (failed_) break;
      switch_to(next);
    }
    if (!failed_ && execution_.end_check) execution_.end_check();
  }

  // A scheduling point of the running thread.
  void point() {
    if (++steps_ > max_steps_) {
      set_failure("livelock: more scheduling points than Options::max_steps");
      abandon();
    }
    to_engine();
    LogicalThread& me = *threads_[current_];
    me.status = Status::runnable;
    me.ready = nullptr;
  }

  void block(std::function<bool()> ready, const char* what) {
    LogicalThread& me = *threads_[current_];
    events_.push_back({current_, Op::note, nullptr, 0, 0, std::string("blocks until ") + what});
    me.status = Status::blocked;
    me.ready = std::move(ready);
    point();
  }

  void futex_wait(const void* object, std::uint64_t value, std::uint64_t expected) {
    if (value != expected) {
      record(Op::futex_wait_returned, object, value, expected);
      return;
    }
    record(Op::futex_slept, object, value, expected);
    LogicalThread& me = *threads_[current_];
    me.futex = object;
    me.futex_woken = false;
    me.status = Status::blocked;
    me.ready = [&me] { return me.futex_woken; };
    point();
    me.futex = nullptr;
    record(Op::futex_woke_up, object, 0, 0);
  }

  void futex_wake(const void* object, std::uint64_t value) {
    record(Op::futex_wake, object, value, value);
    for (auto& t : threads_) {
      if (t->status == Status::blocked && t->futex == object && !t->futex_woken) {
        t->futex_woken = true;
        return;
      }
    }
  }

  std::size_t choose(std::size_t count, const char* what) {
    const std::size_t taken = decide(count);
    events_.push_back({current_, Op::note, nullptr, 0, 0,
                       std::string(what) + ": outcome " + std::to_string(taken) + " of " + std::to_string(count)});
    return taken;
  }

  bool spurious_failure() {
    if (spurious_left_ == 0) return false;
    if (decide(2) == 0) return false;
    --spurious_left_;
    return true;
  }

  void record(Op op, const void* object, std::uint64_t before, std::uint64_t after) {
    events_.push_back({current_, op, object, before, after, {}});
  }
  void note(std::string text) { events_.push_back({current_, Op::note, nullptr, 0, 0, std::move(text)}); }

  // A failed check. The message is set by a statement of its own, so that no
  // temporary with a destructor is alive when abandon switches away.
  void set_failure(const std::string& message) {
    if (failed_) return;
    failed_ = true;
    message_ = message;
    events_.push_back({g_self ? current_ : kNobody, Op::note, nullptr, 0, 0, "FAILED: " + message_});
  }
  // Ends the running thread's part in a failed execution: back to the
  // engine, never to return.
  [[noreturn]] void abandon() {
    to_engine();
    std::abort();  // unreachable: a failed execution resumes no thread
  }

  bool failed() const { return failed_; }
  const std::string& message() const { return message_; }
  std::string trace() const;

 private:
  static constexpr std::size_t kNobody = ~std::size_t{0};
  static constexpr std::size_t kMaxThreads = 8;

  static void entry() {
    Run& run = *g_run;
#if HEDDLE_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &run.engine_stack_bottom_, &run.engine_stack_size_);
#endif
    LogicalThread& me = *run.threads_[run.current_];
    me.body();
    me.status = Status::finished;
    run.to_engine(true);
    std::abort();  // a finished thread is never resumed
  }

  void switch_to(std::size_t index) {
    current_ = index;
    LogicalThread& t = *threads_[index];
    g_self = &t;
#if HEDDLE_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(&fake_stack, t.stack, kStackBytes);
#endif
    swapcontext(&engine_, &t.context);
#if HEDDLE_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
    g_self = nullptr;
  }

  // `finished`: the thread will not be resumed (ASan may drop its fibre).
  void to_engine(bool finished = false) {
    LogicalThread& me = *threads_[current_];
#if HEDDLE_ASAN
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(finished ? nullptr : &fake_stack, engine_stack_bottom_, engine_stack_size_);
#else
    (void)finished;
#endif
    swapcontext(&me.context, &engine_);
#if HEDDLE_ASAN
    __sanitizer_finish_switch_fiber(fake_stack, &engine_stack_bottom_, &engine_stack_size_);
#endif
  }

  // An explorer choice; a replay that diverged is the test's bug (a body
  // that is not deterministic), reported as a failure.
  std::size_t decide(std::size_t count) {
    if (count <= 1) return 0;
    std::size_t taken = 0;
    if (!explorer_.choose(count, taken)) {
      set_failure("the replay diverged: a thread body is not deterministic");
      if (g_self) abandon();
    }
    return taken;
  }

  bool enabled(const LogicalThread& t) const {
    return t.status == Status::runnable || (t.status == Status::blocked && t.ready());
  }

  std::string deadlock_message() const {
    std::string blocked;
    for (auto& t : threads_) {
      if (t->status != Status::finished) blocked += (blocked.empty() ? "" : ", ") + t->name;
    }
    return "deadlock: " + blocked + " blocked for good (a lost wake-up)";
  }

  std::string describe(const Event& e) const;

  Execution& execution_;
  Explorer& explorer_;
  std::vector<std::unique_ptr<LogicalThread>> threads_;
  std::vector<Event> events_;
  ucontext_t engine_;
  const void* engine_stack_bottom_ = nullptr;
  std::size_t engine_stack_size_ = 0;
  std::size_t current_ = kNobody;
  std::size_t steps_ = 0;
  int spurious_left_;
  std::size_t max_steps_;
  bool failed_ = false;
  std::string message_;
};

const char* op_name(Op op) {
  switch (op) {
    case Op::load: return "load";
    case Op::store: return "store";
    case Op::exchange: return "exchange";
    case Op::fetch_add: return "fetch_add";
    case Op::fetch_sub: return "fetch_sub";
    case Op::fetch_or: return "fetch_or";
    case Op::fetch_and: return "fetch_and";
    case Op::cas_succeeded: return "cas";
    case Op::cas_failed: return "cas FAILED";
    case Op::cas_failed_spuriously: return "cas FAILED SPURIOUSLY";
    case Op::futex_wait_returned: return "futex_wait returns at once";
    case Op::futex_slept: return "futex_wait sleeps";
    case Op::futex_woke_up: return "futex_wait woken";
    case Op::futex_wake: return "futex_wake";
    case Op::note: return "";
  }
  return "?";
}

std::string Run::describe(const Event& e) const {
  std::string who = e.thread == kNobody ? "(end)" : threads_[e.thread]->name;
  if (e.op == Op::note) return who + ": " + e.text;
  std::string name = "atomic@" + std::to_string(reinterpret_cast<std::uintptr_t>(e.object) & 0xffff);
  Execution::Format format;
  for (const auto& label : execution_.labels) {
    if (label.object == e.object) {
      name = label.name;
      format = label.format;
    }
  }
  auto show = [&](std::uint64_t v) { return format ? format(v) : std::to_string(v); };
  std::string line = who + ": " + op_name(e.op) + " " + name;
  switch (e.op) {
    case Op::load:
      return line + " = " + show(e.before);
    case Op::cas_failed:
      return line + ": expected " + show(e.after) + ", saw " + show(e.before);
    case Op::futex_wait_returned:
    case Op::futex_slept:
      return line + " (holds " + show(e.before) + ", expected " + show(e.after) + ")";
    case Op::futex_woke_up:
      return line;
    case Op::futex_wake:
      return line + " (holds " + show(e.before) + ")";
    default:
      return line + ": " + show(e.before) + " -> " + show(e.after);
  }
}

std::string Run::trace() const {
  std::ostringstream out;
  for (std::size_t i = 0; i < events_.size(); ++i) out << "  " << i + 1 << ". " << describe(events_[i]) << "\n";
  return out.str();
}

}  // namespace

namespace detail {

bool schedule() noexcept {
  if (g_self == nullptr) return false;
  g_run->point();
  return true;
}

void record(Op op, const void* object, std::uint64_t before, std::uint64_t after) noexcept {
  g_run->record(op, object, before, after);
}

bool spurious_failure() noexcept { return g_run->spurious_failure(); }

void futex_wait(const void* object, std::uint64_t value, std::uint64_t expected) noexcept {
  g_run->futex_wait(object, value, expected);
}

void futex_wake(const void* object, std::uint64_t value) noexcept { g_run->futex_wake(object, value); }

}  // namespace detail

void check(bool ok, const char* what) noexcept {
  if (ok) return;
  g_run->set_failure(what);
  if (g_self) g_run->abandon();
}

void note(std::string text) noexcept {
  if (g_self) g_run->note(std::move(text));
}

void block_until(std::function<bool()> ready, const char* what) noexcept {
  if (g_self) g_run->block(std::move(ready), what);
}

std::size_t choose(std::size_t count, const char* what) noexcept {
  if (!g_self) return 0;
  return g_run->choose(count, what);
}

void Execution::thread(std::string name, std::function<void()> body) {
  threads.emplace_back(std::move(name), std::move(body));
}
void Execution::at_end(std::function<void()> check) { end_check = std::move(check); }
void Execution::label(const void* object, std::string name, Format format) {
  labels.push_back({object, std::move(name), std::move(format)});
}

std::string Result::report() const {
  if (!failed) return "passed after " + std::to_string(executions) + " interleavings";
  return "failed after " + std::to_string(executions) + " interleavings: " + message +
         "\nthe interleaving that failed:\n" + trace;
}

Result explore(const std::function<void(Execution&)>& setup, const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  Result result;
  Explorer explorer;
  do {
    Execution execution;
    setup(execution);
    Run run(execution, explorer, options);
    g_run = &run;
    run.run();
    g_run = nullptr;
    ++result.executions;
    if (run.failed()) {
      result.failed = true;
      result.message = run.message();
      result.trace = run.trace();
      break;
    }
    if (result.executions >= options.max_executions) {
      result.failed = true;
      result.message = "more interleavings than Options::max_executions";
      break;
    }
  } while (explorer.advance());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace heddle::model
