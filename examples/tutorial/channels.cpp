// heddle tutorial 4: channels on a Loop, select_on, and a Mutex shared with
// a plain thread.
#include <cstdio>
#include <mutex>
#include <optional>
#include <thread>
#include <variant>

#include "heddle/heddle.hpp"

int main() {
  // --- producer / consumer, close() and drain ---
  {
    heddle::Loop loop;
    heddle::Channel<int> numbers(4);  // bounded: send parks while 4 values wait
    auto producer = loop.spawn([&] {
      for (int i = 1; i <= 10; ++i) {
        if (!numbers.send(i)) return;  // false: the channel was closed
      }
      numbers.close();  // receivers drain what is buffered, then get nullopt
    });
    auto consumer = loop.spawn([&] {
      int sum = 0;
      while (std::optional<int> n = numbers.receive()) sum += *n;
      return sum;
    });
    loop.run();
    producer.join();
    const int sum = consumer.join();
    if (sum != 55 || !numbers.drained()) return 1;
    std::printf("channels: sum of 1..10 through a channel of 4 is %d\n", sum);
  }

  // --- select_on: whichever of two channels is ready first ---
  {
    heddle::Loop loop;
    heddle::Channel<int> small(0);  // rendezvous
    heddle::Channel<int> large(0);
    auto a = loop.spawn([&] {
      for (int i = 0; i < 3; ++i) (void)small.send(i);
      small.close();
    });
    auto b = loop.spawn([&] {
      for (int i = 100; i < 103; ++i) (void)large.send(i);
      large.close();
    });
    auto merger = loop.spawn([&] {
      int smalls = 0, larges = 0;
      // Until one channel closes, take from whichever is ready first.
      for (;;) {
        auto got = heddle::select_on(heddle::receive_from(small), heddle::receive_from(large));
        if (got.index() == 0) {
          if (!std::get<0>(got)) break;  // nullopt: `small` is closed and drained
          ++smalls;
        } else {
          if (!std::get<1>(got)) break;
          ++larges;
        }
      }
      // A closed channel is always ready, so drain the other one directly.
      while (small.receive()) ++smalls;
      while (large.receive()) ++larges;
      return smalls * 10 + larges;
    });
    loop.run();
    a.join();
    b.join();
    const int counts = merger.join();
    if (counts != 33) return 2;
    std::printf("channels: select_on took 3 from each channel until both closed\n");
  }

  // --- a Mutex shared by a task and a plain std::thread ---
  {
    heddle::Mutex mutex;
    long counter = 0;
    constexpr int kRounds = 10000;
    heddle::Loop loop;
    auto task = loop.spawn([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard guard(mutex);  // a task that must wait parks (the loop runs on)
        ++counter;
        if (i % 1000 == 0) heddle::this_task::yield();
      }
    });
    std::thread thread([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard guard(mutex);  // a thread that must wait blocks
        ++counter;
      }
    });
    loop.run();
    thread.join();
    task.join();
    if (counter != 2L * kRounds) return 3;
    std::printf("channels: a task and a thread shared one Mutex, counter %ld\n", counter);
  }
  return 0;
}
