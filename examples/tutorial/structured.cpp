// heddle tutorial 2: structured waiting.
//
// join waits for every arm; select returns the first arm to finish and
// cancels (and awaits) the rest; a TaskGroup holds any number of children;
// cancel() unwinds a parked task from its suspension point.
#include <cstdio>
#include <string>
#include <tuple>
#include <variant>

#include "heddle/heddle.hpp"

namespace {

// Parks until resumed through the Resumer it stores in `slot`.
void park(heddle::Resumer& slot) {
  heddle::suspend([&](const heddle::Resumer& r) { slot = r; });
}

// Records that its destructor ran (the proof that a cancelled stack unwound).
struct Witness {
  bool& flag;
  ~Witness() { flag = true; }
};

}  // namespace

int main() {
  // --- join: both arms, results as a tuple ---
  auto [a, b] = heddle::join([] { return 20; }, [] { return std::string("twenty-two"); });
  if (a != 20 || b != "twenty-two") return 1;

  // nested(bytes): the arms run on stack carved from the caller's own stack
  // (here a task's 64 KiB pool stack), so the fan-out allocates nothing.
  auto nested = heddle::spawn([] {
    auto [x, y] = heddle::join(heddle::nested(8 * 1024), [] { return 1; }, [] { return 2; });
    return x + y;
  });
  if (nested.join() != 3) return 7;

  // --- select: the first to finish wins; the slower arm is cancelled ---
  // select waits for its arms (a thread calling it would block), so it runs
  // inside a task here, leaving main free to wake the "fast" arm.
  heddle::Resumer fast_wake;
  bool slow_unwound = false;
  auto chooser = heddle::spawn([&] {
    return heddle::select(
        [&] {
          park(fast_wake);
          return 1;
        },
        [&] {
          Witness w{slow_unwound};
          heddle::Resumer never;
          park(never);  // nobody resumes this: cancellation unwinds it
          return 2;
        });
  });
  fast_wake.resume();  // the fast arm finishes; select cancels and awaits the slow one
  const auto winner = chooser.join();
  if (winner.index() != 0 || std::get<0>(winner) != 1 || !slow_unwound) return 2;

  // --- TaskGroup: any number of children, all awaited at wait() ---
  int total = 0;
  {
    heddle::TaskGroup group;
    for (int i = 1; i <= 4; ++i) group.spawn([&total, i] { total += i; });
    group.wait();
  }
  if (total != 10) return 3;

  // --- cancel() of a parked task: it unwinds from its suspension point ---
  bool unwound = false;
  heddle::Resumer stale;
  auto sleeper = heddle::spawn([&] {
    Witness w{unwound};
    park(stale);
  });
  sleeper.cancel();        // runs the task now, on this thread: suspend throws heddle::Cancelled
  if (!unwound) return 4;  // its destructors already ran
  if (stale.resume()) return 5;  // the Resumer of a cancelled suspension is stale
  bool rethrown = false;
  try {
    sleeper.join();
  } catch (const heddle::Cancelled&) {  // join reports the cancellation
    rethrown = true;
  }
  if (!rethrown) return 6;

  std::printf("structured: join (%d, %s), select arm %zu (slow arm unwound), group total %d, cancel unwound\n",
              a, b.c_str(), winner.index(), total);
  return 0;
}
