// heddle-stack: measures how much stack the libc and C++ runtime functions in
// known_functions.json use, on this machine. Each call runs in a task on a
// painted stack; the figure is the task's high-water mark minus that of the
// same task calling an empty function. These are measurements of the paths
// taken here, not proofs: the table says so, and heddle-stack reports every
// bound that relies on one as "measured".
//
// Each function is measured cold, in a fresh process of its own (this program
// runs itself once per function): the first call of a libc function through
// the PLT runs the dynamic linker's resolver on the caller's stack, and the
// first exception a process throws sets up the unwinder's caches there too.
// Either may happen on any task's stack, so the cold figure is the one that
// counts.
//
// Only functions with a bound are measured: those whose stack use does not
// depend on their input, and those bounded for all inputs, measured at the
// limit the table states (known_functions.json, "basis"). A function whose
// use grows with its input (the printf family, strtod, ...) has no figure.
//
// Prints {"functions": {"<symbol>": <bytes>, ...}} on stdout.
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <bits/functexcept.h>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"

#ifdef HEDDLE_MEASURE_WRAPPED_UNWINDER
// Linked as heddle_stack_bounds() links: -z now, the static C++ runtime, and
// the unwinder wrapped so that it runs on the thread's unwind stack.
#include "heddle/core/detail/unwinder_wrappers.hpp"
#endif

namespace {

volatile int sink;
char buffer_a[4096], buffer_b[4096];

__attribute__((noinline)) void nothing() { sink = 0; }

struct Guard {
  ~Guard() { sink = 1; }
};
__attribute__((noinline)) void throw_through_cleanup() {
  Guard guard;
  throw std::runtime_error("measured");
}

// Every measurement runs on this one painted region, so that a function that
// never returns (abort) can be measured from the SIGABRT handler,
// which runs on heddle's alternate signal stack.
alignas(64) std::byte storage[256 * 1024];
heddle::Stack measured_stack;
std::size_t baseline = 0;

std::size_t used_by(const std::function<void()>& body) {
  measured_stack = heddle::stack_from_span(storage);
  auto task = heddle::spawn([&] { body(); }, {.stack = measured_stack, .paint = true});
  measured_stack.painted = true;  // spawn painted it
  const std::size_t bytes = heddle::high_water(measured_stack).bytes;
  task.join();
  return bytes;
}

// Where a measuring child writes its figure: stdout, moved aside so that the
// stdio output functions it measures write to /dev/null.
int result_fd = STDOUT_FILENO;

void print_used(std::size_t used) {
  char text[32];
  const int length = std::snprintf(text, sizeof text, "%zu\n", used > baseline ? used - baseline : 0);
  if (write(result_fd, text, static_cast<std::size_t>(length)) != length) _exit(3);
}

// SIGABRT, on the alternate stack: the deepest the aborting call went.
void on_abort(int) {
  measured_stack.painted = true;
  print_used(heddle::high_water(measured_stack).bytes);
  _exit(0);
}

// Made in main, outside the measurement, for the functions that copy or rethrow it
// (made at static initialisation, it would warm other functions' bindings).
std::exception_ptr made_earlier;

struct WithDestructor {
  ~WithDestructor() { sink = 2; }
  int value = 1;
};

}  // namespace

int main(int argc, char** argv) {
  baseline = used_by([] { nothing(); });
  std::vector<std::pair<std::string, std::function<void()>>> calls = {
      {"memcpy", [] { std::memcpy(buffer_a, buffer_b, sizeof buffer_a); }},
      {"memmove", [] { std::memmove(buffer_a, buffer_a + 1, sizeof buffer_a - 1); }},
      {"memset", [] { std::memset(buffer_a, sink, sizeof buffer_a); }},
      {"memcmp", [] { sink = std::memcmp(buffer_a, buffer_b, sizeof buffer_a); }},
      {"memchr", [] { sink = std::memchr(buffer_a, 7, sizeof buffer_a) != nullptr; }},
      {"strlen", [] { sink = static_cast<int>(std::strlen(buffer_a)); }},
      {"strnlen", [] { sink = static_cast<int>(strnlen(buffer_a, 100)); }},
      {"strcmp", [] { sink = std::strcmp(buffer_a, buffer_b); }},
      {"strncpy", [] { std::strncpy(buffer_a, "measured", 32); }},
      {"__errno_location", [] { sink = errno; }},
      {"clock_gettime", [] { timespec now; clock_gettime(CLOCK_MONOTONIC, &now); sink = static_cast<int>(now.tv_nsec); }},
      {"_ZNSt6chrono3_V212steady_clock3nowEv", [] { sink = static_cast<int>(std::chrono::steady_clock::now().time_since_epoch().count()); }},
      {"sched_yield", [] { sched_yield(); }},
      {"gettid", [] { sink = gettid(); }},
      {"getpid", [] { sink = getpid(); }},
      {"pthread_self", [] { sink = static_cast<int>(pthread_self() & 1); }},
      {"pthread_mutex_lock", [] { static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_mutex_lock(&m); pthread_mutex_unlock(&m); }},
      {"pthread_mutex_unlock", [] { static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER; pthread_mutex_lock(&m); pthread_mutex_unlock(&m); }},
      {"write", [] { static int fd = open("/dev/null", O_WRONLY | O_CLOEXEC); sink = static_cast<int>(write(fd, buffer_a, 16)); }},
      {"read", [] { static int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC); sink = static_cast<int>(read(fd, buffer_a, 16)); }},
      {"close", [] { close(dup(0)); }},
      {"open", [] { close(open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC)); }},
      {"strtol", [] { sink = static_cast<int>(std::strtol("65530", nullptr, 10)); }},
      {"strtoull", [] { sink = static_cast<int>(std::strtoull("65530", nullptr, 10)); }},
      {"getenv", [] { sink = std::getenv("HEDDLE_MEASURE_NOTHING") != nullptr; }},
      {"mmap", [] { void* p = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); munmap(p, 4096); }},
      {"munmap", [] { void* p = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); munmap(p, 4096); }},
      {"madvise", [] { sink = madvise(buffer_a + (4096 - reinterpret_cast<std::uintptr_t>(buffer_a) % 4096), 0, MADV_NORMAL); }},
      {"mincore", [] { unsigned char v; void* p = reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(buffer_a) & ~std::uintptr_t{4095}); sink = mincore(p, 1, &v); }},
      {"mprotect", [] { void* p = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0); mprotect(p, 4096, PROT_NONE); munmap(p, 4096); }},
      {"getpagesize", [] { sink = getpagesize(); }},
      {"sigfillset", [] { sigset_t s; sigfillset(&s); sink = sigismember(&s, 1); }},
      {"sigemptyset", [] { sigset_t s; sigemptyset(&s); sink = sigismember(&s, 1); }},
      {"sigaddset", [] { sigset_t s; sigemptyset(&s); sigaddset(&s, SIGUSR1); sink = sigismember(&s, 1); }},
      {"sigdelset", [] { sigset_t s; sigfillset(&s); sigdelset(&s, SIGUSR1); sink = sigismember(&s, 1); }},
      {"pthread_sigmask", [] { sigset_t s; pthread_sigmask(SIG_SETMASK, nullptr, &s); }},
      {"malloc", [] { void* p = std::malloc(200); sink = p != nullptr; std::free(p); }},
      {"free", [] { void* p = std::malloc(200); sink = p != nullptr; std::free(p); }},
      {"_Znwm", [] { auto* p = new char[200]; sink = p[0] = 1; delete[] p; }},
      {"_Znam", [] { auto* p = new char[200]; sink = p[0] = 1; delete[] p; }},
      {"_ZdlPvm", [] { auto* p = new std::string(100, 'x'); sink = (*p)[0]; delete p; }},
      {"_ZdaPv", [] { auto* p = new char[200]; sink = p[0] = 1; delete[] p; }},
      {"_ZnwmSt11align_val_t", [] { struct alignas(64) A { char c[64]; }; auto* p = new A; sink = p->c[0] = 1; delete p; }},
      {"_ZdlPvmSt11align_val_t", [] { struct alignas(64) A { char c[64]; }; auto* p = new A; sink = p->c[0] = 1; delete p; }},
      {"__cxa_guard_acquire", [] { static std::string s(40, 'x'); sink = s[0]; }},
      {"__cxa_guard_release", [] { static std::string s(40, 'x'); sink = s[0]; }},
      {"__cxa_guard_abort", [] { static std::string s(40, 'x'); sink = s[0]; }},
      // Exceptions: the unwinder is the deepest thing a task ever calls.
      {"__cxa_allocate_exception", [] { try { throw std::runtime_error("measured"); } catch (...) { sink = 1; } }},
      {"__cxa_free_exception", [] { try { throw std::runtime_error("measured"); } catch (...) { sink = 1; } }},
      {"__cxa_throw", [] { try { throw std::runtime_error("measured"); } catch (...) { sink = 1; } }},
      {"__cxa_begin_catch", [] { try { throw std::runtime_error("measured"); } catch (...) { sink = 1; } }},
      {"__cxa_end_catch", [] { try { throw std::runtime_error("measured"); } catch (...) { sink = 1; } }},
      {"__cxa_rethrow", [] { try { try { throw 1; } catch (...) { throw; } } catch (...) { sink = 1; } }},
      {"_Unwind_Resume", [] { try { throw_through_cleanup(); } catch (...) { sink = 1; } }},
      {"_ZSt17current_exceptionv", [] { try { throw 1; } catch (...) { auto e = std::current_exception(); sink = e != nullptr; } }},
      // The rethrow and its catch: the exception was made before the measurement.
      {"_ZSt17rethrow_exceptionNSt15__exception_ptr13exception_ptrE", [] { try { std::rethrow_exception(made_earlier); } catch (...) { sink = 1; } }},
      // The last reference: the exception is destroyed and freed (made before the measurement).
      {"_ZNSt15__exception_ptr13exception_ptr10_M_releaseEv", [] { auto e = std::move(made_earlier); sink = e != nullptr; }},
      // A copy's reference count only: the exception was made before the measurement.
      {"_ZNSt15__exception_ptr13exception_ptr9_M_addrefEv", [] { auto f = made_earlier; sink = f != nullptr; }},
      {"_ZNSt15__exception_ptr13exception_ptrC1EPv", [] { auto e = std::make_exception_ptr(1); sink = e != nullptr; }},
      {"__cxa_init_primary_exception", [] { auto e = std::make_exception_ptr(1); sink = e != nullptr; }},
      {"_ZSt19uncaught_exceptionsv", [] { sink = std::uncaught_exceptions(); }},
      {"_ZNSt11logic_errorC1EPKc", [] { std::logic_error e("measured"); sink = e.what()[0]; }},
      {"_ZNSt11logic_errorD2Ev", [] { std::logic_error e("measured"); sink = e.what()[0]; }},
      {"_ZNSt13runtime_errorC1EPKc", [] { std::runtime_error e("measured"); sink = e.what()[0]; }},
      {"_ZNSt13runtime_errorC2ERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE", [] { std::string text(40, 'x'); std::runtime_error e(text); sink = e.what()[0]; }},
      {"_ZNSt13runtime_errorC2ERKS_", [] { std::runtime_error e("measured"); std::runtime_error f(e); sink = f.what()[0]; }},
      {"_ZNSt16invalid_argumentC1EPKc", [] { std::invalid_argument e("measured"); sink = e.what()[0]; }},
      {"_ZNSt3_V216generic_categoryEv", [] { sink = std::generic_category().name()[0]; }},
      {"_ZNSt3_V215system_categoryEv", [] { sink = std::system_category().name()[0]; }},
      {"_ZNSt12system_errorD1Ev", [] { std::system_error e(EINVAL, std::generic_category(), "measured"); sink = e.what()[0]; }},
      {"_ZSt18_Rb_tree_incrementPSt18_Rb_tree_node_base", [] { static std::map<int, int> m{{1, 1}, {2, 2}, {3, 3}}; for (auto& [k, v] : m) sink = k + v; }},
      {"_ZSt18_Rb_tree_decrementPSt18_Rb_tree_node_base", [] { static std::map<int, int> m{{1, 1}, {2, 2}, {3, 3}}; for (auto i = m.rbegin(); i != m.rend(); ++i) sink = i->first; }},
      {"_ZSt29_Rb_tree_insert_and_rebalancebPSt18_Rb_tree_node_baseS0_RS_", [] { std::map<int, int> m; for (int i = 0; i < 64; ++i) m[i * 7 % 64] = i; sink = m[3]; }},
      {"_ZNSt18condition_variable10notify_oneEv", [] { static std::condition_variable c; c.notify_one(); }},
      // Error paths heddle takes (they end the program or throw).
      {"abort", [] { std::abort(); }},
      // Unformatted output, each the first use of stdout (fully buffered to
      // /dev/null: its buffer is allocated here, after fstat and isatty).
      {"puts", [] { std::puts("heddle measure_known: puts"); }},
      {"fputs", [] { std::fputs("heddle measure_known: fputs\n", stdout); }},
      {"fwrite", [] { sink = static_cast<int>(std::fwrite(buffer_a, 1, sizeof buffer_a, stdout)); }},
      {"putchar", [] { std::putchar('\n'); }},
      {"fputc", [] { std::fputc('\n', stdout); }},
      {"_ZSt20__throw_system_errori", [] { try { std::__throw_system_error(EINVAL); } catch (...) { sink = 1; } }},
      {"_ZSt20__throw_length_errorPKc", [] { try { std::__throw_length_error("measured"); } catch (...) { sink = 1; } }},
      {"_ZSt17__throw_bad_allocv", [] { try { std::__throw_bad_alloc(); } catch (...) { sink = 1; } }},
      {"_ZSt19__throw_logic_errorPKc", [] { try { std::__throw_logic_error("measured"); } catch (...) { sink = 1; } }},
      {"_ZSt25__throw_bad_function_callv", [] { try { std::__throw_bad_function_call(); } catch (...) { sink = 1; } }},
      {"_ZSt28__throw_bad_array_new_lengthv", [] { try { std::__throw_bad_array_new_length(); } catch (...) { sink = 1; } }},
      // At its limit: the longest format libstdc++ 12 passes (stl_bvector.h), the largest numbers.
      {"_ZSt24__throw_out_of_range_fmtPKcz", [] { try { std::__throw_out_of_range_fmt("vector<bool>::_M_range_check: __n (which is %zu) >= this->size() (which is %zu)", SIZE_MAX, SIZE_MAX); } catch (...) { sink = 1; } }},
      {"_ZNSt11logic_errorC2ERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE", [] { std::string text(40, 'x'); std::logic_error e(text); sink = e.what()[0]; }},
      {"_ZNSt16invalid_argumentC1ERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE", [] { std::string text(40, 'x'); std::invalid_argument e(text); sink = e.what()[0]; }},
      {"_ZNSt12length_errorC1ERKNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE", [] { std::string text(40, 'x'); std::length_error e(text); sink = e.what()[0]; }},
      {"std::error_category::message", [] { sink = std::generic_category().message(EINVAL)[0] + std::system_category().message(EINVAL)[0]; }},
      // Thread set-up heddle does the first time a thread runs a task.
      {"pthread_getattr_np", [] { pthread_attr_t a; pthread_getattr_np(pthread_self(), &a); void* p; std::size_t n; pthread_attr_getstack(&a, &p, &n); pthread_attr_destroy(&a); sink = n != 0; }},
      {"pthread_attr_getstack", [] { pthread_attr_t a; pthread_getattr_np(pthread_self(), &a); void* p; std::size_t n; pthread_attr_getstack(&a, &p, &n); pthread_attr_destroy(&a); sink = n != 0; }},
      {"pthread_attr_destroy", [] { pthread_attr_t a; pthread_getattr_np(pthread_self(), &a); pthread_attr_destroy(&a); }},
      {"pthread_getname_np", [] { char name[16]; pthread_getname_np(pthread_self(), name, sizeof name); sink = name[0]; }},
      {"sigaltstack", [] { stack_t old; sigaltstack(nullptr, &old); sink = old.ss_flags; }},
      {"__cxa_thread_atexit", [] { thread_local WithDestructor value; sink = value.value; }},
      {"_ZNSt6thread15_M_start_threadESt10unique_ptrINS_6_StateESt14default_deleteIS1_EEPFvvE", [] { std::thread t([] { sink = 4; }); t.join(); }},
      {"_ZNSt6thread6_StateD2Ev", [] { std::thread t([] { sink = 4; }); t.join(); }},
      {"_ZNSt6thread4joinEv", [] { std::thread t([] { sink = 4; }); t.join(); }},
      {"_ZNSt6thread6detachEv", [] { std::thread([] { sink = 4; }).detach(); }},
      {"syscall", [] { static int word = 0; sink = static_cast<int>(syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0)); }},
      // System calls of the io layer (each a thin wrapper; the lazy figure is the resolver's).
      {"socket", [] { close(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }},
      {"eventfd", [] { close(eventfd(0, EFD_CLOEXEC)); }},
      {"fcntl", [] { sink = fcntl(0, F_GETFL); }},
      {"poll", [] { pollfd p{0, POLLIN, 0}; sink = poll(&p, 1, 0); }},
      {"epoll_ctl", [] { static int e = epoll_create1(EPOLL_CLOEXEC); epoll_event ev{}; sink = epoll_ctl(e, EPOLL_CTL_DEL, 0, &ev); }},
      {"recv", [] { sink = static_cast<int>(recv(-1, buffer_a, 1, MSG_DONTWAIT)); }},
      {"send", [] { sink = static_cast<int>(send(-1, buffer_a, 1, MSG_DONTWAIT)); }},
      {"recvmsg", [] { msghdr m{}; sink = static_cast<int>(recvmsg(-1, &m, MSG_DONTWAIT)); }},
      {"sendmsg", [] { msghdr m{}; sink = static_cast<int>(sendmsg(-1, &m, MSG_DONTWAIT)); }},
      {"accept4", [] { sink = accept4(-1, nullptr, nullptr, SOCK_CLOEXEC); }},
      {"connect", [] { sockaddr_in a{}; sink = connect(-1, reinterpret_cast<sockaddr*>(&a), sizeof a); }},
      {"shutdown", [] { sink = shutdown(-1, SHUT_RDWR); }},
      {"getsockopt", [] { int v; socklen_t n = sizeof v; sink = getsockopt(-1, SOL_SOCKET, SO_ERROR, &v, &n); }},
      {"setsockopt", [] { int v = 1; sink = setsockopt(-1, SOL_SOCKET, SO_REUSEADDR, &v, sizeof v); }},
      {"pread", [] { sink = static_cast<int>(pread(-1, buffer_a, 1, 0)); }},
      {"pwrite", [] { sink = static_cast<int>(pwrite(-1, buffer_a, 1, 0)); }},
      {"fsync", [] { sink = fsync(-1); }},
      {"fdatasync", [] { sink = fdatasync(-1); }},
      {"nanosleep", [] { timespec t{0, 1}; sink = nanosleep(&t, nullptr); }},
  };
  if (argc == 2) {  // one function, cold
    for (auto& [name, call] : calls) {
      if (name != argv[1]) continue;
      if (name == "_ZNSt15__exception_ptr13exception_ptr9_M_addrefEv" ||
          name == "_ZNSt15__exception_ptr13exception_ptr10_M_releaseEv" ||
          name == "_ZSt17rethrow_exceptionNSt15__exception_ptr13exception_ptrE") {
        made_earlier = std::make_exception_ptr(1);
      }
#ifdef HEDDLE_MEASURE_WRAPPED_UNWINDER
      {
        // A bounded task entered on this thread makes its unwind stack, as in
        // a program whose bounded tasks throw. It throws nothing, so the
        // unwinder's caches stay cold.
        heddle::StackPool bounded({.stack_bytes = 16 * 1024, .bounded = true});
        heddle::spawn([] { nothing(); }, {.pool = &bounded}).join();
      }
#endif
      heddle::detail::ensure_alternate_signal_stack();
      struct sigaction action {};
      action.sa_handler = on_abort;
      action.sa_flags = SA_ONSTACK;
      sigaction(SIGABRT, &action, nullptr);
      const int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);  // stderr stays unbuffered
      dup2(null_fd, STDERR_FILENO);
      result_fd = dup(STDOUT_FILENO);
      dup2(null_fd, STDOUT_FILENO);  // stdout: fully buffered, its buffer not yet allocated
      print_used(used_by(call));
      return 0;
    }
    std::fprintf(stderr, "measure_known: no function %s\n", argv[1]);
    return 2;
  }
  std::printf("{\"baseline_bytes\": %zu, \"functions\": {", baseline);
  const char* separator = "";
  for (auto& [name, call] : calls) {
    const std::string command = std::string(argv[0]) + " '" + name + "'";
    FILE* child = popen(command.c_str(), "r");
    std::size_t bytes = 0;
    if (!child || std::fscanf(child, "%zu", &bytes) != 1 || pclose(child) != 0) {
      std::fprintf(stderr, "measure_known: measuring %s failed\n", name.c_str());
      return 1;
    }
    std::printf("%s\n  \"%s\": %zu", separator, name.c_str(), bytes);
    separator = ",";
  }
  std::printf("\n}}\n");
}
