// heddle bench: the reporter every bench binary prints with, one line per figure.
//
// Owns the convention heddle's benchmarks follow, so that scripts/bench can
// put heddle and its peers side by side without parsing Google Benchmark's
// console table:
//  - a benchmark is registered as "<figure>/<implementation>", e.g.
//    "switch/heddle" or "spawn_join/boost_fiber";
//  - it is timed by the wall clock: register it with ->UseRealTime(), or with
//    ->UseManualTime() and State::SetIterationTime();
//  - an iteration that does several units of the figure (two switches, a
//    batch of 1000 spawns) says so with set_items_per_iteration(), and the
//    figure is wall-clock ns per unit;
//  - a figure that is not a time (memory per task) is set with report_value(),
//    which stores the counter "value" and the label "unit=<unit>".
// Invariants: only the median over repetitions is printed (a single run is
// printed as is when there is only one repetition); every output line is
// either "<figure> <implementation> <value> <unit>" or a comment starting
// with '#', so scripts can pass comments through untouched.
#pragma once

#include <benchmark/benchmark.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace heddle::bench {

// Names of the user counters the reporter reads.
inline constexpr const char* kItemsPerIterationCounter = "items_per_iteration";
inline constexpr const char* kValueCounter = "value";

// Declares that each iteration of the benchmark does `items` units of its
// figure; the reporter divides the wall-clock time per iteration by it.
inline void set_items_per_iteration(benchmark::State& state, double items) {
  state.counters[kItemsPerIterationCounter] = items;
}

// Reports `value` in `unit` (e.g. 2.7, "KiB") as this benchmark's figure in
// place of its time.
inline void report_value(benchmark::State& state, double value, std::string_view unit) {
  state.counters[kValueCounter] = value;
  state.SetLabel("unit=" + std::string(unit));
}

class LineReporter final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context& context) override;
  void ReportRuns(const std::vector<Run>& runs) override;

 private:
  void print_figure(const Run& run);
  void print_error(const Run& run);

  std::set<std::string> failed_;  // names already reported as failed
};

}  // namespace heddle::bench
