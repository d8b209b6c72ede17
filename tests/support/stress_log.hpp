// Test support: what producers and consumers of a channel stress test
// record, and the check that nothing was lost, duplicated or reordered.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

namespace heddle::testing {

// A value names its producer and its place in that producer's sequence.
inline std::uint64_t encode(std::uint32_t producer, std::uint32_t seq) { return (std::uint64_t{producer} << 32) | seq; }
inline std::uint32_t producer_of(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }
inline std::uint32_t seq_of(std::uint64_t v) { return static_cast<std::uint32_t>(v); }

struct ProducerLog {
  std::uint32_t id = 0;
  std::vector<std::uint32_t> sent;      // seqs whose send returned true, in order
  std::optional<std::uint64_t> unsent;  // the value a cancelled send still held
  bool cancelled = false;
  bool cancelled_in_send = false;  // while waiting in send (not at a yield)
};

struct ConsumerLog {
  std::vector<std::pair<int, std::uint64_t>> got;  // (channel, value) in the order received
  bool cancelled = false;
  bool cancelled_in_receive = false;  // while waiting in receive (not at a yield)
};

// The values received are exactly the values sent (as multisets, none
// twice), each consumer saw each producer's values in order per channel, and
// a cancelled producer still holds the value it was sending.
inline void check_logs(const std::vector<ProducerLog>& producers, const std::vector<ConsumerLog>& consumers) {
  std::vector<std::uint64_t> sent, received;
  for (const ProducerLog& p : producers) {
    for (std::size_t i = 0; i < p.sent.size(); ++i) {
      ASSERT_EQ(p.sent[i], i) << "producer " << p.id << " sent out of order";
      sent.push_back(encode(p.id, p.sent[i]));
    }
    if (p.unsent) {
      EXPECT_EQ(*p.unsent, encode(p.id, static_cast<std::uint32_t>(p.sent.size())))
          << "a cancelled send must still hold the value it was sending";
    }
  }
  for (const ConsumerLog& c : consumers) {
    std::map<std::pair<int, std::uint32_t>, std::int64_t> last;  // (channel, producer) -> last seq
    for (auto [channel, v] : c.got) {
      received.push_back(v);
      auto [it, fresh] = last.try_emplace({channel, producer_of(v)}, -1);
      EXPECT_LT(it->second, static_cast<std::int64_t>(seq_of(v))) << "reordered value from producer "
                                                                  << producer_of(v);
      it->second = seq_of(v);
    }
  }
  std::sort(sent.begin(), sent.end());
  std::sort(received.begin(), received.end());
  EXPECT_EQ(sent.size(), received.size());
  EXPECT_TRUE(sent == received) << "the values received are not exactly the values sent";
  EXPECT_TRUE(std::adjacent_find(received.begin(), received.end()) == received.end()) << "a value arrived twice";
}

}  // namespace heddle::testing
