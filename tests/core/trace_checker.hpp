// The trace tests' reader of heddle::trace files (strict JSON, through
// tests/support/json_document.hpp) and a checker of the Chrome trace-event
// rules the writer promises: every event has ph, pid, tid (and ts unless metadata),
// "B"/"E" nest per thread with each "E" closing its own task's "B",
// timestamps never go backwards on a thread. It returns what each task did.
#pragma once

#include <gtest/gtest.h>

#include "json_document.hpp"

#include <unistd.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace heddle::trace_test {

using support::Json;

inline std::string temp_path(const char* name) {
  const std::string dir = ::testing::TempDir().empty() ? std::string("/tmp/") : ::testing::TempDir();
  return dir + name + "-" + std::to_string(getpid()) + ".json";
}

inline Json read_trace(const std::string& path) { return support::read_json_document(path); }

struct Seen {
  // id -> what the task did, in order per thread: "spawn", "B", "E:<leaf>",
  // "cancel", "finish" (an "E" that finished it).
  std::map<std::uint64_t, std::vector<std::string>> by_task;
  std::map<std::uint64_t, std::set<double>> threads_of;  // id -> tids its slices ran on
  std::map<std::uint64_t, std::string> slice_name;       // id -> the name of its "B"
  std::map<std::uint64_t, std::string> spawn_site;       // id -> args.site of its spawn
  int deepest_nesting = 0;                               // of slices on one thread
  std::size_t events = 0;                                // "B", "E", "i"
};

inline std::uint64_t id_of(const Json& event) {
  return event.contains("args") && event.at("args").contains("id") ? event.at("args").at("id").get<std::uint64_t>() : 0;
}

// Checks the structure (each broken rule is a test failure) and returns
// what each task did. Events are grouped per thread in the file, so order
// within a thread is file order. `pid`: the process that wrote the file (0:
// any, as long as every event has the same).
inline Seen check_trace(const Json& trace, long pid = getpid()) {
  Seen seen;
  EXPECT_EQ(trace.at("otherData").at("producer").get<std::string>(), "heddle");
  EXPECT_GE(trace.at("otherData").at("dropped_events").get<double>(), 0);
  std::map<double, std::vector<std::uint64_t>> open_slices;  // tid -> ids of open slices
  std::map<double, double> last_timestamp;                   // tid -> ts
  for (const Json& event : trace.at("traceEvents")) {
    const std::string ph = event.at("ph").get<std::string>();
    EXPECT_TRUE(event.contains("pid") && event.contains("tid")) << "an event without pid or tid";
    if (pid == 0) pid = static_cast<long>(event.at("pid").get<double>());
    EXPECT_EQ(event.at("pid").get<double>(), static_cast<double>(pid));
    const double tid = event.at("tid").get<double>();
    if (ph == "M") {
      EXPECT_EQ(event.at("name").get<std::string>(), "thread_name");
      EXPECT_FALSE(event.at("args").at("name").get<std::string>().empty());
      continue;
    }
    ++seen.events;
    EXPECT_TRUE(event.contains("ts"));
    const double ts = event.at("ts").get<double>();
    EXPECT_GE(ts, last_timestamp[tid]) << "timestamps go backwards on thread " << tid;
    last_timestamp[tid] = ts;
    const std::uint64_t id = id_of(event);
    auto& open = open_slices[tid];
    if (ph == "B") {
      EXPECT_NE(id, 0u) << "a slice without its task id";
      open.push_back(id);
      if (static_cast<int>(open.size()) > seen.deepest_nesting) seen.deepest_nesting = static_cast<int>(open.size());
      seen.by_task[id].push_back("B");
      seen.threads_of[id].insert(tid);
      seen.slice_name[id] = event.at("name").get<std::string>();
    } else if (ph == "E") {
      if (open.empty()) {
        ADD_FAILURE() << "a slice ended that had not begun on thread " << tid;
        continue;
      }
      if (event.at("args").contains("still_running")) {  // closed by the writer at the end of the file
        open.pop_back();
        continue;
      }
      EXPECT_EQ(id, open.back()) << "a slice ended that was not the innermost on thread " << tid;
      open.pop_back();
      if (event.at("args").contains("leaf")) {
        seen.by_task[id].push_back("E:" + event.at("args").at("leaf").get<std::string>());
      } else if (event.at("args").contains("finished")) {
        seen.by_task[id].push_back("finish");
      } else {
        ADD_FAILURE() << "an \"E\" says neither its leaf nor that the task finished";
      }
    } else if (ph == "i") {
      const std::string name = event.at("name").get<std::string>();
      const std::string what = name.substr(0, name.find(' '));
      EXPECT_TRUE(what == "spawn" || what == "cancel") << name;
      seen.by_task[id].push_back(what);
      if (what == "spawn" && event.at("args").contains("site")) seen.spawn_site[id] = event.at("args").at("site").get<std::string>();
    } else {
      ADD_FAILURE() << "unexpected phase " << ph;
    }
  }
  for (const auto& [tid, open] : open_slices) {
    EXPECT_TRUE(open.empty()) << open.size() << " slices never ended on thread " << tid;
  }
  return seen;
}

inline std::string joined(const std::vector<std::string>& events) {
  std::string out;
  for (const auto& e : events) out += (out.empty() ? "" : " ") + e;
  return out;
}

}  // namespace heddle::trace_test
