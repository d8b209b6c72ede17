// heddle bench: reading one figure out of Google Benchmark's runs.
#include "line_reporter.hpp"

#include <cstdio>
#include <ostream>

namespace heddle::bench {
namespace {

struct FigureName {
  std::string figure;
  std::string implementation;
};

// "switch/heddle" -> {"switch", "heddle"}. Arguments (->Arg(1000)) become
// part of the implementation, "/" turned into "_" so the line keeps four
// space-separated fields.
FigureName split_name(const benchmark::BenchmarkReporter::Run& run) {
  std::string name = run.run_name.function_name;
  if (!run.run_name.args.empty()) name += "/" + run.run_name.args;
  auto slash = name.find('/');
  if (slash == std::string::npos) return {name, "-"};
  FigureName parts{name.substr(0, slash), name.substr(slash + 1)};
  for (char& c : parts.implementation) {
    if (c == '/' || c == ' ') c = '_';
  }
  return parts;
}

// The unit named by a "unit=KiB" label (other words in the label ignored).
std::string unit_from_label(const std::string& label) {
  auto at = label.find("unit=");
  if (at == std::string::npos) return "units";
  at += 5;
  auto end = label.find_first_of(" ,;", at);
  std::string unit = label.substr(at, end == std::string::npos ? std::string::npos : end - at);
  return unit.empty() ? "units" : unit;
}

const benchmark::Counter* find_counter(const benchmark::BenchmarkReporter::Run& run,
                                       const char* name) {
  auto it = run.counters.find(name);
  return it == run.counters.end() ? nullptr : &it->second;
}

}  // namespace

bool LineReporter::ReportContext(const Context& context) {
  std::string program = Context::executable_name ? Context::executable_name : "bench";
  program = program.substr(program.find_last_of('/') + 1);
  auto& out = GetOutputStream();
  out << "# " << program << ": " << context.cpu_info.num_cpus << " cpus, median of each figure\n";
  if (context.cpu_info.scaling == benchmark::CPUInfo::ENABLED) {
    out << "# warning: CPU frequency scaling is enabled; figures will be noisier\n";
  }
  return true;
}

void LineReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.error_occurred) {
      print_error(run);
    } else if (run.run_type == Run::RT_Aggregate) {
      if (run.aggregate_name == "median") print_figure(run);
    } else if (run.repetitions <= 1) {
      // With one repetition Google Benchmark makes no aggregates: the run
      // itself is the figure.
      print_figure(run);
    }
  }
}

void LineReporter::print_figure(const Run& run) {
  FigureName name = split_name(run);
  double value = 0;
  std::string unit = "ns";
  if (const auto* counter = find_counter(run, kValueCounter)) {
    value = counter->value;
    unit = unit_from_label(run.report_label);
  } else {
    // GetAdjustedRealTime is per iteration in the run's time unit; the
    // multiplier is how many of that unit make a second.
    value = run.GetAdjustedRealTime() * 1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit);
    const auto* per_iteration = find_counter(run, kItemsPerIterationCounter);
    const auto* per_second = find_counter(run, "items_per_second");
    if (per_iteration && per_iteration->value > 0) {
      value /= per_iteration->value;
    } else if (per_second && per_second->value > 0) {
      // State::SetItemsProcessed: the rate is per wall-clock second only if
      // the benchmark uses real or manual time (see the header).
      value = 1e9 / per_second->value;
    }
  }
  char text[64];
  std::snprintf(text, sizeof text, value < 10 ? "%.2f" : "%.1f", value);
  GetOutputStream() << name.figure << ' ' << name.implementation << ' ' << text << ' ' << unit
                    << '\n';
  GetOutputStream().flush();
}

void LineReporter::print_error(const Run& run) {
  FigureName name = split_name(run);
  std::string key = name.figure + " " + name.implementation;
  if (!failed_.insert(key).second) return;
  GetOutputStream() << "# " << key << " failed: " << run.error_message << '\n';
}

}  // namespace heddle::bench
