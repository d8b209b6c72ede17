// heddle channel benchmarks, beside their C++ peer:
//   chan_pingpong/heddle       one round trip between two tasks over two
//                              rendezvous channels (ping, then pong), ns per
//                              round trip
//   chan_pingpong/heddle_cap1  the same over capacity-1 channels
//   chan_pingpong/boost_fiber  the same between two fibres over
//                              boost::fibers::buffered_channel (capacity 2,
//                              the smallest it takes; it holds one value)
// Go's figure (unbuffered channels, GOMAXPROCS=1) and tokio's (mpsc with
// capacity 1, current-thread runtime) are printed by scripts/bench.
//
// With no scheduler a woken task runs inline on its waker's thread: the
// pinger's send runs the echo task until it parks again, so each round trip
// is a chain of direct hand-offs on one thread, as in the peers.
#include <benchmark/benchmark.h>

#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/operations.hpp>

#include "heddle/heddle.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sync/channel.hpp"
#include "line_reporter.hpp"

namespace {

// The timed loop runs in the pinger task; the echo task sends back whatever
// arrives until the ping channel is closed. `spawn` starts each task: with
// no scheduler, or on a Loop (then `run` runs the loop until both finish).
template <class Spawn, class Run>
void pingpong_heddle(benchmark::State& state, std::ptrdiff_t capacity, Spawn spawn, Run run) {
  heddle::Channel<long> ping(capacity), pong(capacity);
  auto echo = spawn([&] {
    while (auto v = ping.receive()) {
      if (!pong.send(*v)) break;
    }
  });
  auto pinger = spawn([&] {
    long i = 0;
    for (auto _ : state) {
      if (!ping.send(i)) state.SkipWithError("ping closed");
      auto back = pong.receive();
      benchmark::DoNotOptimize(back);
      ++i;
    }
    ping.close();
  });
  run();
  pinger.join();
  echo.join();
}

void pingpong_heddle(benchmark::State& state, std::ptrdiff_t capacity) {
  pingpong_heddle(state, capacity, [](auto&& f) { return heddle::spawn(f); }, [] {});
}

// On a Loop: a wake queues the woken task, and a task that parks hands over
// directly to the next runnable one.
void pingpong_heddle_loop(benchmark::State& state, std::ptrdiff_t capacity) {
  heddle::Loop loop;
  pingpong_heddle(state, capacity, [&](auto&& f) { return loop.spawn(f); }, [&] { loop.run(); });
}

void chan_pingpong_heddle_loop(benchmark::State& state) { pingpong_heddle_loop(state, 0); }
BENCHMARK(chan_pingpong_heddle_loop)->Name("chan_pingpong/heddle_loop")->UseRealTime();

void chan_pingpong_heddle_loop_cap1(benchmark::State& state) { pingpong_heddle_loop(state, 1); }
BENCHMARK(chan_pingpong_heddle_loop_cap1)->Name("chan_pingpong/heddle_loop_cap1")->UseRealTime();

void chan_pingpong_heddle(benchmark::State& state) { pingpong_heddle(state, 0); }
BENCHMARK(chan_pingpong_heddle)->Name("chan_pingpong/heddle")->UseRealTime();

void chan_pingpong_heddle_cap1(benchmark::State& state) { pingpong_heddle(state, 1); }
BENCHMARK(chan_pingpong_heddle_cap1)->Name("chan_pingpong/heddle_cap1")->UseRealTime();

// The same shape with Boost.Fiber: the timed loop on the main fibre, the
// echo in a second fibre of the same thread's scheduler.
void chan_pingpong_boost_fiber(benchmark::State& state) {
  namespace fibers = boost::fibers;
  fibers::buffered_channel<long> ping(2), pong(2);  // capacity must be a power of two; holds capacity - 1
  fibers::fiber echo([&] {
    long v = 0;
    while (ping.pop(v) == fibers::channel_op_status::success) {
      if (pong.push(v) != fibers::channel_op_status::success) break;
    }
  });
  long i = 0;
  for (auto _ : state) {
    if (ping.push(i) != fibers::channel_op_status::success) state.SkipWithError("ping closed");
    long back = 0;
    pong.pop(back);
    benchmark::DoNotOptimize(back);
    ++i;
  }
  ping.close();
  echo.join();
}
BENCHMARK(chan_pingpong_boost_fiber)->Name("chan_pingpong/boost_fiber")->UseRealTime();

}  // namespace
