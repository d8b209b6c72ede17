// heddle tutorial 3: a Loop, sleeping, timeouts and yield.
//
// A Loop is a one-thread scheduler: a task woken anywhere is queued and runs
// on the loop's thread. run() returns when no task and no timer is left.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"

using namespace std::chrono_literals;

int main() {
  heddle::Loop loop;
  std::vector<std::string> order;

  // --- tasks that sleep: they wake in deadline order ---
  auto slow = loop.spawn([&] {
    heddle::sleep_for(30ms);
    order.push_back("slow");
  });
  auto quick = loop.spawn([&] {
    heddle::sleep_for(10ms);
    order.push_back("quick");
  });

  // --- with_timeout: the work is cancelled and TimedOut is thrown ---
  auto impatient = loop.spawn([&] {
    try {
      heddle::with_timeout(20ms, [] { heddle::sleep_for(10s); });
      return std::string("finished?!");
    } catch (const heddle::TimedOut&) {  // a std::runtime_error
      return std::string("timed out");
    }
  });
  auto in_time = loop.spawn([] { return heddle::with_timeout(1s, [] { return 7; }); });

  // --- yield: let the other runnable tasks of the loop go first ---
  std::string turns;
  auto ping = loop.spawn([&] {
    for (int i = 0; i < 3; ++i) {
      turns += 'a';
      heddle::this_task::yield();
    }
  });
  auto pong = loop.spawn([&] {
    for (int i = 0; i < 3; ++i) {
      turns += 'b';
      heddle::this_task::yield();
    }
  });

  const auto start = heddle::Clock::now();
  loop.run();  // returns when no task and no timer is left
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(heddle::Clock::now() - start);

  slow.join();
  quick.join();
  const std::string verdict = impatient.join();
  const int seven = in_time.join();
  ping.join();
  pong.join();

  if (order != std::vector<std::string>{"quick", "slow"}) return 1;
  if (verdict != "timed out" || seven != 7) return 2;
  if (turns != "ababab") return 3;
  if (elapsed < 25ms) return 4;  // timers never fire early

  std::printf("loop_and_time: order %s,%s; %s; in time %d; turns %s; run took %lld ms\n", order[0].c_str(),
              order[1].c_str(), verdict.c_str(), seven, turns.c_str(), static_cast<long long>(elapsed.count()));
  return 0;
}
