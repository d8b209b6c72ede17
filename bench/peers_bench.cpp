// heddle bench: the C++ peers heddle's figures are compared with.
//
// The same measurements as the C++ reference peer programs (cpp/ in
// HEDDLE_PEERS_DIR, outside this repository: bench/peers/README.md),
// written as Google Benchmark benchmarks so they run in the same process style, with the same
// repetitions and the same reporter as heddle's own:
//   switch/boost_context       jump_fcontext ping-pong, ns per one-way switch
//   switch/boost_fiber         two fibres yielding to each other, ns per switch
//   switch/cxx20_coroutine     resuming a C++20 generator, ns per switch
//   spawn_join/boost_fiber     spawn + join of an empty fibre on a warm pooled
//                              stack, in batches of 1000, ns per task
//   spawn_join/boost_fiber_default_stack
//                              the same on a fresh default (malloc'd) stack,
//                              one fibre at a time
//   spawn_join/std_thread      spawn + join of a thread running an empty
//                              function, ns per thread
#include <benchmark/benchmark.h>

#include <boost/context/detail/fcontext.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/fixedsize_stack.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/pooled_fixedsize_stack.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <thread>
#include <vector>

#include "line_reporter.hpp"

namespace {

using heddle::bench::set_items_per_iteration;
namespace fcontext = boost::context::detail;
namespace fibers = boost::fibers;

// ---- switch -----------------------------------------------------------------

// The far side of the fcontext ping-pong: sends every switch straight back.
// It never returns; its stack is dropped with it suspended, which is sound
// because nothing on it needs destroying.
[[noreturn]] void bounce_back(fcontext::transfer_t from) {
  fcontext::fcontext_t caller = from.fctx;
  for (;;) caller = fcontext::jump_fcontext(caller, nullptr).fctx;
}

void switch_boost_context(benchmark::State& state) {
  constexpr std::size_t kStackBytes = 64 * 1024;
  auto stack = std::make_unique<char[]>(kStackBytes);
  fcontext::fcontext_t other =
      fcontext::make_fcontext(stack.get() + kStackBytes, kStackBytes, bounce_back);
  other = fcontext::jump_fcontext(other, nullptr).fctx;  // first entry, untimed
  for (auto _ : state) other = fcontext::jump_fcontext(other, nullptr).fctx;
  set_items_per_iteration(state, 2);  // there and back: two one-way switches
}

void switch_boost_fiber(benchmark::State& state) {
  bool stop = false;
  fibers::fiber partner([&stop] {
    while (!stop) boost::this_fiber::yield();
  });
  boost::this_fiber::yield();  // let the partner start, untimed
  // Each yield here runs the partner, whose yield comes straight back.
  for (auto _ : state) boost::this_fiber::yield();
  stop = true;
  partner.join();
  set_items_per_iteration(state, 2);
}

// The smallest useful C++20 generator: each next() runs the coroutine to its
// following co_yield.
class CountingGenerator {
 public:
  struct promise_type;
  using Handle = std::coroutine_handle<promise_type>;

  struct promise_type {
    long current = 0;
    CountingGenerator get_return_object() { return CountingGenerator{Handle::from_promise(*this)}; }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    std::suspend_always yield_value(long value) noexcept {
      current = value;
      return {};
    }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };

  explicit CountingGenerator(Handle handle) : handle_(handle) {}
  CountingGenerator(const CountingGenerator&) = delete;
  CountingGenerator& operator=(const CountingGenerator&) = delete;
  ~CountingGenerator() { handle_.destroy(); }

  long next() {
    handle_.resume();
    return handle_.promise().current;
  }

 private:
  Handle handle_;
};

// noinline: keep the coroutine an opaque frame, as a generator defined in
// another file would be, so the optimiser cannot fold its body into the loop.
__attribute__((noinline)) CountingGenerator count_up() {
  for (long i = 0;; ++i) co_yield i;
}

void switch_cxx20_coroutine(benchmark::State& state) {
  CountingGenerator generator = count_up();
  for (auto _ : state) benchmark::DoNotOptimize(generator.next());
  // A resume and the suspend that comes back count as two switches, as the
  // peer program counts them, so the figure reads like a one-way switch of
  // a stackful context (it is a stackless one: no stack changes hands).
  set_items_per_iteration(state, 2);
}

// ---- spawn + join -------------------------------------------------------------

// Spawns `batch` empty fibres on `stacks`, then joins them all, per iteration.
template <class StackAllocator>
void spawn_join_fibers(benchmark::State& state, StackAllocator& stacks, std::size_t batch) {
  std::vector<fibers::fiber> spawned;
  spawned.reserve(batch);
  auto run_batch = [&] {
    for (std::size_t i = 0; i < batch; ++i) spawned.emplace_back(std::allocator_arg, stacks, [] {});
    for (auto& fiber : spawned) fiber.join();
    spawned.clear();
  };
  run_batch();  // untimed: fills a pool with a batch's worth of stacks
  for (auto _ : state) run_batch();
  set_items_per_iteration(state, static_cast<double>(batch));
}

void spawn_join_boost_fiber(benchmark::State& state) {
  fibers::pooled_fixedsize_stack pool;  // copies share the one pool
  spawn_join_fibers(state, pool, 1000);
}

void spawn_join_boost_fiber_default_stack(benchmark::State& state) {
  fibers::fixedsize_stack stacks;  // allocates and frees each stack
  spawn_join_fibers(state, stacks, 1);
}

// About 50 us a thread: Google Benchmark's iteration count adapts to it.
void spawn_join_std_thread(benchmark::State& state) {
  for (auto _ : state) {
    std::thread thread([] {});
    thread.join();
  }
}

}  // namespace

BENCHMARK(switch_boost_context)->Name("switch/boost_context")->UseRealTime();
BENCHMARK(switch_boost_fiber)->Name("switch/boost_fiber")->UseRealTime();
BENCHMARK(switch_cxx20_coroutine)->Name("switch/cxx20_coroutine")->UseRealTime();
BENCHMARK(spawn_join_boost_fiber)->Name("spawn_join/boost_fiber")->UseRealTime();
BENCHMARK(spawn_join_boost_fiber_default_stack)
    ->Name("spawn_join/boost_fiber_default_stack")
    ->UseRealTime();
BENCHMARK(spawn_join_std_thread)->Name("spawn_join/std_thread")->UseRealTime();
