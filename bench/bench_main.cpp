// heddle bench: the main() every bench binary shares.
//
// Runs the registered benchmarks with LineReporter and these defaults, which
// flags on the command line override (they come later, and the last wins):
//   --benchmark_repetitions=$REPS (7 when REPS is unset): machines are noisy,
//       so every figure is the median of several repetitions;
//   --benchmark_report_aggregates_only=true: only the median is wanted;
//   --benchmark_min_time=0.2: about 0.2 s per repetition.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "line_reporter.hpp"

namespace {

std::string repetitions_from_environment() {
  const char* reps = std::getenv("REPS");
  if (reps == nullptr || *reps == '\0') return "7";
  std::string text = reps;
  if (text.find_first_not_of("0123456789") != std::string::npos || std::atoi(reps) < 1) {
    std::fprintf(stderr, "heddle bench: REPS must be a positive integer, got '%s'\n", reps);
    std::exit(2);
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> defaults = {
      "--benchmark_repetitions=" + repetitions_from_environment(),
      "--benchmark_report_aggregates_only=true",
      "--benchmark_min_time=0.2",
  };
  std::vector<char*> args{argv[0]};
  for (auto& flag : defaults) args.push_back(flag.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  int count = static_cast<int>(args.size());
  args.push_back(nullptr);

  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  heddle::bench::LineReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
