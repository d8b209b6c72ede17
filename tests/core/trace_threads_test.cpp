// Tracing: the file is valid JSON in the Chrome trace-event format, every
// slice that begins on a thread ends on it, and the known tasks' spawn,
// suspend (with its leaf), cancel and finish are there. Tasks are woken
// from another thread too, so TSan checks the per-thread buffers.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <unistd.h>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <variant>
#include <vector>

#include "heddle/core/suspend.hpp"
#include "heddle/core/task.hpp"
#include "heddle/core/trace.hpp"
#include "heddle/sched/loop.hpp"
#include "heddle/sync/event.hpp"

namespace heddle {
namespace {

// A strict little JSON reader: enough to prove the file parses and to walk it.
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
    std::size_t used = 0;
    double number;
    try {
      number = std::stod(text_.substr(at_, 32), &used);
    } catch (...) {
      fail("not a value");
    }
    at_ += used;
    return Json{number};
  }

  std::string text_;
  std::size_t at_ = 0;
};

std::string temp_path(const char* name) {
  return (::testing::TempDir().empty() ? std::string("/tmp/") : ::testing::TempDir()) + name + "-" +
         std::to_string(getpid()) + ".json";
}

Json read_trace(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return JsonReader(text.str()).document();
}

struct Seen {
  std::map<std::uint64_t, std::vector<std::string>> by_task;  // id -> "spawn", "B", "E:<leaf>", "cancel", "finish"
};

// Checks the structure and returns what each task did.
Seen check_trace(const Json& trace) {
  Seen seen;
  std::map<double, int> open_slices;       // tid -> depth
  std::map<double, double> last_timestamp;  // tid -> ts
  for (const Json& event : trace["traceEvents"].array()) {
    const std::string ph = event["ph"].string();
    EXPECT_TRUE(event.has("pid") && event.has("tid")) << "an event without pid or tid";
    const double tid = event["tid"].number();
    if (ph == "M") continue;
    EXPECT_TRUE(event.has("ts"));
    const double ts = event["ts"].number();
    EXPECT_GE(ts, last_timestamp[tid]) << "timestamps go backwards on thread " << tid;
    last_timestamp[tid] = ts;
    const std::uint64_t id = event.has("args") && event["args"].has("id")
                                 ? static_cast<std::uint64_t>(event["args"]["id"].number())
                                 : 0;
    if (ph == "B") {
      EXPECT_EQ(open_slices[tid], 0) << "a slice began inside another on thread " << tid;
      ++open_slices[tid];
      seen.by_task[id].push_back("B");
    } else if (ph == "E") {
      EXPECT_EQ(open_slices[tid], 1) << "a slice ended that had not begun on thread " << tid;
      --open_slices[tid];
      if (event.has("args") && event["args"].has("leaf")) {
        seen.by_task[id].push_back("E:" + event["args"]["leaf"].string());
      } else if (event.has("args") && event["args"].has("finished")) {
        seen.by_task[id].push_back("finish");
      }
    } else if (ph == "i") {
      const std::string name = event["name"].string();
      seen.by_task[id].push_back(name.substr(0, name.find(' ')));
    } else {
      ADD_FAILURE() << "unexpected phase " << ph;
    }
  }
  for (auto [tid, depth] : open_slices) EXPECT_EQ(depth, 0) << "a slice never ended on thread " << tid;
  return seen;
}

bool contains(const std::vector<std::string>& events, const std::string& what) {
  for (const auto& e : events) {
    if (e == what) return true;
  }
  return false;
}

TEST(Trace, RecordsSpawnSuspendCancelAndFinishAsValidChromeJson) {
  const std::string path = temp_path("heddle-trace");
  trace::start(path);
  EXPECT_TRUE(trace::enabled());
  Event event;
  std::uint64_t waiter_id = 0, victim_id = 0;
  {
    Loop loop;
    auto waiter = loop.spawn([&] { event.wait(); }, {.name = "waiter"});
    auto victim = loop.spawn([] { Event().wait(); }, {.name = "victim"});
    waiter_id = waiter.id();
    victim_id = victim.id();
    std::thread setter([&] { event.set(); });  // a wake from another thread
    setter.join();
    victim.cancel();
    loop.run();
    waiter.join();
    EXPECT_THROW(victim.join(), Cancelled);
  }
  trace::stop();
  EXPECT_FALSE(trace::enabled());
  const Json trace = read_trace(path);
  EXPECT_EQ(trace["otherData"]["producer"].string(), "heddle");
  const Seen seen = check_trace(trace);
  ASSERT_TRUE(seen.by_task.count(waiter_id));
  const auto& waiter = seen.by_task.at(waiter_id);
  EXPECT_TRUE(contains(waiter, "spawn"));
  EXPECT_TRUE(contains(waiter, "E:heddle::sync wait")) << "the suspension names its leaf";
  EXPECT_TRUE(contains(waiter, "finish"));
  const auto& victim = seen.by_task.at(victim_id);
  EXPECT_TRUE(contains(victim, "cancel"));
  EXPECT_TRUE(contains(victim, "finish"));
  std::remove(path.c_str());
}

TEST(Trace, OffRecordsNothingAndStartStopRepeat) {
  const std::string path = temp_path("heddle-trace-off");
  std::uint64_t untraced = 0;
  {
    auto task = spawn([] {});  // tracing off
    untraced = task.id();
    task.join();
  }
  for (int round = 0; round < 2; ++round) {
    trace::start(path);
    EXPECT_THROW(trace::start(path), std::logic_error);
    spawn([] {}).join();
    trace::stop();
    trace::stop();  // a no-op when off
    const Seen seen = check_trace(read_trace(path));
    EXPECT_EQ(seen.by_task.count(untraced), 0u) << "an event recorded while tracing was off";
    EXPECT_EQ(seen.by_task.size(), 1u) << "each start begins afresh";
  }
  std::remove(path.c_str());
}

TEST(Trace, AnUnwritablePathIsAClearError) {
  try {
    trace::start("/nonexistent-directory/heddle-trace.json");
    ADD_FAILURE() << "start should have thrown";
  } catch (const std::system_error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent-directory/heddle-trace.json"), std::string::npos)
        << error.what();
  }
  EXPECT_FALSE(trace::enabled());
}

TEST(Trace, ManyThreadsRecordAtOnce) {
  const std::string path = temp_path("heddle-trace-threads");
  trace::start(path);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 2000; ++i) {
        auto task = spawn([] { this_task::yield(); });
        task.join();
      }
    });
  }
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    trace::stop();  // while the threads still spawn: no record torn, no race
  });
  for (auto& t : threads) t.join();
  stopper.join();
  check_trace(read_trace(path));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace heddle
