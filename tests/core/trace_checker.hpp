// The trace tests' reader of heddle::trace files: a strict little JSON
// parser (no dependency) and a checker of the Chrome trace-event rules the
// writer promises: every event has ph, pid, tid (and ts unless metadata),
// "B"/"E" nest per thread with each "E" closing its own task's "B",
// timestamps never go backwards on a thread. It returns what each task did.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace heddle::trace_test {

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
struct Json {
  std::variant<std::nullptr_t, bool, double, std::string, std::shared_ptr<JsonArray>, std::shared_ptr<JsonObject>> v;
  const JsonObject& object() const { return *std::get<std::shared_ptr<JsonObject>>(v); }
  const JsonArray& array() const { return *std::get<std::shared_ptr<JsonArray>>(v); }
  const std::string& string() const { return std::get<std::string>(v); }
  double number() const { return std::get<double>(v); }
  bool has(const std::string& key) const { return object().count(key) != 0; }
  const Json& operator[](const std::string& key) const { return object().at(key); }
};

class JsonReader {
 public:
  explicit JsonReader(std::string text) : text_(std::move(text)) {}
  Json document() {
    Json value = parse();
    skip();
    if (at_ < text_.size()) fail("text after the document");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("JSON: " + what + " at offset " + std::to_string(at_));
  }
  void skip() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }
  char next() {
    skip();
    if (at_ >= text_.size()) fail("unexpected end");
    return text_[at_];
  }
  void expect(char c) {
    if (next() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    while (at_ < text_.size() && text_[at_] != '"') {
      char c = text_[at_++];
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in a string");
      if (c == '\\') {
        if (at_ >= text_.size()) fail("unfinished escape");
        const char e = text_[at_++];
        if (e == 'u') {
          if (at_ + 4 > text_.size()) fail("short \\u escape");
          for (std::size_t i = 0; i < 4; ++i) {
            if (!std::isxdigit(static_cast<unsigned char>(text_[at_ + i]))) fail("bad \\u escape");
          }
          out += static_cast<char>(std::stoi(text_.substr(at_, 4), nullptr, 16));
          at_ += 4;
          continue;
        }
        if (std::string("\"\\/bfnrt").find(e) == std::string::npos) fail("bad escape");
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
      }
      out += c;
    }
    if (at_ >= text_.size()) fail("unterminated string");
    ++at_;
    return out;
  }
  double parse_number() {
    // JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const std::size_t start = at_;
    auto digits = [&] {
      const std::size_t from = at_;
      while (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) ++at_;
      if (at_ == from) fail("a digit expected");
    };
    if (text_[at_] == '-') ++at_;
    if (at_ < text_.size() && text_[at_] == '0') {
      ++at_;
    } else {
      digits();
    }
    if (at_ < text_.size() && text_[at_] == '.') {
      ++at_;
      digits();
    }
    if (at_ < text_.size() && (text_[at_] == 'e' || text_[at_] == 'E')) {
      ++at_;
      if (at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      digits();
    }
    return std::stod(text_.substr(start, at_ - start));
  }
  Json parse() {
    const char c = next();
    if (c == '{') {
      ++at_;
      auto object = std::make_shared<JsonObject>();
      if (next() == '}') {
        ++at_;
        return Json{object};
      }
      for (;;) {
        std::string key = parse_string();
        if (object->count(key)) fail("duplicate key " + key);
        expect(':');
        (*object)[key] = parse();
        if (next() == ',') {
          ++at_;
          continue;
        }
        expect('}');
        return Json{object};
      }
    }
    if (c == '[') {
      ++at_;
      auto array = std::make_shared<JsonArray>();
      if (next() == ']') {
        ++at_;
        return Json{array};
      }
      for (;;) {
        array->push_back(parse());
        if (next() == ',') {
          ++at_;
          continue;
        }
        expect(']');
        return Json{array};
      }
    }
    if (c == '"') return Json{parse_string()};
    for (const char* word : {"true", "false", "null"}) {
      if (text_.compare(at_, std::strlen(word), word) == 0) {
        at_ += std::strlen(word);
        if (word[0] == 'n') return Json{nullptr};
        return Json{word[0] == 't'};
      }
    }
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) return Json{parse_number()};
    fail("not a value");
  }

  std::string text_;
  std::size_t at_ = 0;
};

inline std::string temp_path(const char* name) {
  const std::string dir = ::testing::TempDir().empty() ? std::string("/tmp/") : ::testing::TempDir();
  return dir + name + "-" + std::to_string(getpid()) + ".json";
}

inline Json read_trace(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return JsonReader(text.str()).document();
}

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
  return event.has("args") && event["args"].has("id") ? static_cast<std::uint64_t>(event["args"]["id"].number()) : 0;
}

// Checks the structure (each broken rule is a test failure) and returns
// what each task did. Events are grouped per thread in the file, so order
// within a thread is file order. `pid`: the process that wrote the file (0:
// any, as long as every event has the same).
inline Seen check_trace(const Json& trace, long pid = getpid()) {
  Seen seen;
  EXPECT_EQ(trace["otherData"]["producer"].string(), "heddle");
  EXPECT_GE(trace["otherData"]["dropped_events"].number(), 0);
  std::map<double, std::vector<std::uint64_t>> open_slices;  // tid -> ids of open slices
  std::map<double, double> last_timestamp;                   // tid -> ts
  for (const Json& event : trace["traceEvents"].array()) {
    const std::string ph = event["ph"].string();
    EXPECT_TRUE(event.has("pid") && event.has("tid")) << "an event without pid or tid";
    if (pid == 0) pid = static_cast<long>(event["pid"].number());
    EXPECT_EQ(event["pid"].number(), static_cast<double>(pid));
    const double tid = event["tid"].number();
    if (ph == "M") {
      EXPECT_EQ(event["name"].string(), "thread_name");
      EXPECT_FALSE(event["args"]["name"].string().empty());
      continue;
    }
    ++seen.events;
    EXPECT_TRUE(event.has("ts"));
    const double ts = event["ts"].number();
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
      seen.slice_name[id] = event["name"].string();
    } else if (ph == "E") {
      if (open.empty()) {
        ADD_FAILURE() << "a slice ended that had not begun on thread " << tid;
        continue;
      }
      if (event["args"].has("still_running")) {  // closed by the writer at the end of the file
        open.pop_back();
        continue;
      }
      EXPECT_EQ(id, open.back()) << "a slice ended that was not the innermost on thread " << tid;
      open.pop_back();
      if (event["args"].has("leaf")) {
        seen.by_task[id].push_back("E:" + event["args"]["leaf"].string());
      } else if (event["args"].has("finished")) {
        seen.by_task[id].push_back("finish");
      } else {
        ADD_FAILURE() << "an \"E\" says neither its leaf nor that the task finished";
      }
    } else if (ph == "i") {
      const std::string name = event["name"].string();
      const std::string what = name.substr(0, name.find(' '));
      EXPECT_TRUE(what == "spawn" || what == "cancel") << name;
      seen.by_task[id].push_back(what);
      if (what == "spawn" && event["args"].has("site")) seen.spawn_site[id] = event["args"]["site"].string();
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
