// libFuzzer target: a program of channel operations, run against a model.
//
// The input is a program: its first byte chooses the channel (rendezvous,
// bounded 1-4, or unbounded), each later byte one operation:
//   try_send, try_receive, spawn a task that sends (blocking), spawn a task
//   that receives (blocking), close, cancel a parked task, check counts.
// Tasks have no scheduler, so every spawn and every wake-up runs inline and
// the whole run is deterministic. After every operation each task's outcome
// and the channel's counts are compared with a model (a FIFO buffer and
// FIFO queues of parked senders and receivers); any difference, a value lost
// or duplicated, a crash or a leak (ASan) is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>
#include <optional>
#include <vector>

#include "heddle/heddle.hpp"

namespace {

[[noreturn]] void mismatch(const char* what, long expected, long got) {
  std::fprintf(stderr, "channel_fuzz: %s: the model expected %ld, the channel gave %ld\n", what, expected, got);
  std::abort();
}

void expect(const char* what, long expected, long got) {
  if (expected != got) mismatch(what, expected, got);
}

enum class Outcome { parked, sent, send_failed, received, received_nothing, cancelled };

struct TaskRecord {
  heddle::Task<void> task;
  bool is_sender = false;
  int value = 0;  // the sender's value, or what the receiver got
  Outcome outcome = Outcome::parked;
  // What the model says (checked after every operation).
  Outcome expected = Outcome::parked;
  int expected_value = 0;
};

struct Model {
  std::size_t capacity = 0;  // numeric_limits max: unbounded
  std::deque<int> buffer;
  std::deque<std::size_t> senders;    // parked, oldest first (indexes into tasks)
  std::deque<std::size_t> receivers;  // parked, oldest first
  bool closed = false;
};

class Run {
 public:
  explicit Run(std::size_t capacity)
      : channel_(capacity == kUnbounded ? heddle::Channel<int>::unbounded()
                                        : heddle::Channel<int>(static_cast<std::ptrdiff_t>(capacity))) {
    model_.capacity = capacity;
  }
  static constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

  void step(std::uint8_t op, std::uint8_t argument) {
    switch (op % 7) {
      case 0: try_send(); break;
      case 1: try_receive(); break;
      case 2: spawn_sender(); break;
      case 3: spawn_receiver(); break;
      case 4: close(); break;
      case 5: cancel(argument); break;
      default: break;  // only the checks below
    }
    check();
  }

  // Ends the run: close (freeing every parked task), then join them all.
  void finish() {
    close();
    check();
    for (auto& record : tasks_) {
      try {
        record.task.join();
      } catch (const heddle::Cancelled&) {
        expect("a task that ended cancelled", static_cast<long>(Outcome::cancelled),
               static_cast<long>(record.outcome));
      }
    }
    // Every value sent was received or is still buffered, once.
    while (auto value = channel_.try_receive()) {
      expect("a buffered value at the end", model_.buffer.empty() ? -1 : model_.buffer.front(), *value);
      model_.buffer.pop_front();
    }
    expect("values left in the model at the end", 0, static_cast<long>(model_.buffer.size()));
  }

 private:
  // The model's effect of a value leaving the buffer: the oldest parked
  // sender's value moves in behind it (its send completes).
  void refill_from_senders() {
    if (model_.senders.empty()) return;
    const std::size_t sender = model_.senders.front();
    model_.senders.pop_front();
    model_.buffer.push_back(tasks_[sender].value);
    tasks_[sender].expected = Outcome::sent;
  }

  // A value offered now: to a parked receiver, the buffer, or nowhere.
  heddle::SendStatus model_offer(int value) {
    if (model_.closed) return heddle::SendStatus::closed;
    if (!model_.receivers.empty()) {
      const std::size_t receiver = model_.receivers.front();
      model_.receivers.pop_front();
      tasks_[receiver].expected = Outcome::received;
      tasks_[receiver].expected_value = value;
      return heddle::SendStatus::sent;
    }
    if (model_.buffer.size() < model_.capacity) {
      model_.buffer.push_back(value);
      return heddle::SendStatus::sent;
    }
    return heddle::SendStatus::full;
  }

  // A value asked for now: from the buffer, a parked sender, or none.
  std::optional<int> model_take() {
    if (!model_.buffer.empty()) {
      const int value = model_.buffer.front();
      model_.buffer.pop_front();
      refill_from_senders();
      return value;
    }
    if (!model_.senders.empty()) {  // rendezvous: straight from the sender
      const std::size_t sender = model_.senders.front();
      model_.senders.pop_front();
      tasks_[sender].expected = Outcome::sent;
      return tasks_[sender].value;
    }
    return std::nullopt;
  }

  void try_send() {
    const int value = next_value_++;
    const heddle::SendStatus expected = model_offer(value);
    expect("try_send", static_cast<long>(expected), static_cast<long>(channel_.try_send(value)));
  }

  void try_receive() {
    const std::optional<int> expected = model_take();
    const std::optional<int> got = channel_.try_receive();
    expect("try_receive found a value", expected.has_value(), got.has_value());
    if (expected) expect("try_receive's value", *expected, *got);
  }

  void spawn_sender() {
    const std::size_t index = tasks_.size();
    TaskRecord& record = tasks_.emplace_back();
    record.is_sender = true;
    record.value = next_value_++;
    switch (model_offer(record.value)) {
      case heddle::SendStatus::sent: record.expected = Outcome::sent; break;
      case heddle::SendStatus::closed: record.expected = Outcome::send_failed; break;
      case heddle::SendStatus::full:
        record.expected = Outcome::parked;
        model_.senders.push_back(index);
        break;
    }
    record.task = heddle::spawn([this, index] {
      TaskRecord& self = tasks_[index];
      try {
        self.outcome = channel_.send(self.value) ? Outcome::sent : Outcome::send_failed;
      } catch (const heddle::Cancelled&) {
        self.outcome = Outcome::cancelled;
        throw;  // a task must not swallow its cancellation (heddle aborts, naming it)
      }
    });
  }

  void spawn_receiver() {
    const std::size_t index = tasks_.size();
    TaskRecord& record = tasks_.emplace_back();
    if (std::optional<int> value = model_take()) {
      record.expected = Outcome::received;
      record.expected_value = *value;
    } else if (model_.closed) {
      record.expected = Outcome::received_nothing;
    } else {
      record.expected = Outcome::parked;
      model_.receivers.push_back(index);
    }
    record.task = heddle::spawn([this, index] {
      TaskRecord& self = tasks_[index];
      try {
        if (std::optional<int> value = channel_.receive()) {
          self.value = *value;
          self.outcome = Outcome::received;
        } else {
          self.outcome = Outcome::received_nothing;
        }
      } catch (const heddle::Cancelled&) {
        self.outcome = Outcome::cancelled;
        throw;  // a task must not swallow its cancellation (heddle aborts, naming it)
      }
    });
  }

  void close() {
    if (!model_.closed) {
      model_.closed = true;
      for (std::size_t sender : model_.senders) tasks_[sender].expected = Outcome::send_failed;
      for (std::size_t receiver : model_.receivers) tasks_[receiver].expected = Outcome::received_nothing;
      model_.senders.clear();
      model_.receivers.clear();
    }
    channel_.close();
  }

  void cancel(std::uint8_t which) {
    if (tasks_.empty()) return;
    const std::size_t index = which % tasks_.size();
    TaskRecord& record = tasks_[index];
    if (record.expected == Outcome::parked) {
      record.expected = Outcome::cancelled;
      auto& queue = record.is_sender ? model_.senders : model_.receivers;
      for (auto it = queue.begin(); it != queue.end(); ++it) {
        if (*it == index) {
          queue.erase(it);
          break;
        }
      }
    }
    record.task.cancel();  // a finished task: nothing happens
  }

  void check() {
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      const TaskRecord& record = tasks_[i];
      expect(record.is_sender ? "a sending task's outcome" : "a receiving task's outcome",
             static_cast<long>(record.expected), static_cast<long>(record.outcome));
      if (record.outcome == Outcome::received) expect("a received value", record.expected_value, record.value);
    }
    expect("size()", static_cast<long>(model_.buffer.size()), static_cast<long>(channel_.size()));
    expect("senders_waiting()", static_cast<long>(model_.senders.size()),
           static_cast<long>(channel_.senders_waiting()));
    expect("receivers_waiting()", static_cast<long>(model_.receivers.size()),
           static_cast<long>(channel_.receivers_waiting()));
    expect("is_closed()", model_.closed, channel_.is_closed());
  }

  heddle::Channel<int> channel_;
  Model model_;
  std::deque<TaskRecord> tasks_;  // a deque: records never move while tasks point at them
  int next_value_ = 1;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  constexpr std::size_t kCapacities[] = {0, 1, 2, 3, 4, Run::kUnbounded};
  Run run(kCapacities[data[0] % std::size(kCapacities)]);
  // At most 512 operations: long programs add time, not new behaviour.
  for (std::size_t i = 1; i < size && i < 1024; i += 2) run.step(data[i], i + 1 < size ? data[i + 1] : 0);
  run.finish();
  return 0;
}
