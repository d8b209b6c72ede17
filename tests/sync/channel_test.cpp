// Channel<T> and select_on between tasks (one thread): each capacity kind,
// FIFO, close, try_*, move-only values, cancellation on both sides of the
// claim, and select.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/channel.hpp"

namespace {

using heddle::Channel;
using heddle::SendStatus;

// A scheduler that queues woken tasks until run() is called, so a test can
// act between a claim and the claimed task running.
class QueueScheduler final : public heddle::Scheduler {
 public:
  void schedule(heddle::detail::TaskControl* claimed) noexcept override { queue_.push_back(claimed); }
  bool on_scheduler_thread() const noexcept override { return true; }
  std::size_t queued() const noexcept { return queue_.size(); }
  void run() {
    while (!queue_.empty()) {
      heddle::detail::TaskControl* task = queue_.front();
      queue_.erase(queue_.begin());
      heddle::detail::run_claimed_here(task);
    }
  }

 private:
  std::vector<heddle::detail::TaskControl*> queue_;
};

// ---- construction

TEST(Channel, NegativeCapacityIsRejected) {
  EXPECT_THROW(Channel<int>(-1), std::invalid_argument);
  Channel<int> rendezvous(0);
  EXPECT_EQ(rendezvous.capacity(), 0u);
  EXPECT_FALSE(rendezvous.is_unbounded());
  auto unbounded = Channel<int>::unbounded();
  EXPECT_TRUE(unbounded.is_unbounded());
}

// ---- bounded

TEST(Channel, BoundedBuffersUpToCapacityThenReportsFull) {
  Channel<int> ch(3);
  EXPECT_EQ(ch.try_send(1), SendStatus::sent);
  EXPECT_EQ(ch.try_send(2), SendStatus::sent);
  EXPECT_EQ(ch.try_send(3), SendStatus::sent);
  EXPECT_EQ(ch.try_send(4), SendStatus::full);
  EXPECT_EQ(ch.size(), 3u);
  EXPECT_EQ(ch.try_receive(), 1);
  EXPECT_EQ(ch.receive(), 2);
  EXPECT_EQ(ch.receive(), 3);
  EXPECT_EQ(ch.try_receive(), std::nullopt);
}

TEST(Channel, BoundedSenderParksWhenFullAndItsValueGoesToTheTail) {
  Channel<int> ch(2);
  std::vector<int> progress;
  auto sender = heddle::spawn([&] {
    for (int i = 1; i <= 5; ++i) {
      EXPECT_TRUE(ch.send(i));
      progress.push_back(i);
    }
  });
  EXPECT_EQ(progress, (std::vector<int>{1, 2}));  // parked sending 3
  EXPECT_EQ(ch.senders_waiting(), 1u);
  // Taking 1 moves the parked 3 behind 2, and the sender runs on to park on 4.
  EXPECT_EQ(ch.receive(), 1);
  EXPECT_EQ(progress, (std::vector<int>{1, 2, 3}));
  std::vector<int> got;
  for (int i = 0; i < 4; ++i) got.push_back(*ch.receive());
  EXPECT_EQ(got, (std::vector<int>{2, 3, 4, 5}));
  sender.join();
}

TEST(Channel, ParkedSendersKeepTheirOrder) {
  Channel<int> ch(1);
  ASSERT_TRUE(ch.send(0));
  std::vector<heddle::Task<void>> senders;
  for (int i = 1; i <= 5; ++i) senders.push_back(heddle::spawn([&ch, i] { EXPECT_TRUE(ch.send(i)); }));
  EXPECT_EQ(ch.senders_waiting(), 5u);
  for (int i = 0; i <= 5; ++i) EXPECT_EQ(ch.receive(), i);
  for (auto& s : senders) s.join();
}

TEST(Channel, ReceiverParksUntilASendAndGetsTheValueDirectly) {
  Channel<std::string> ch(4);
  std::optional<std::string> got;
  auto receiver = heddle::spawn([&] { got = ch.receive(); });
  EXPECT_EQ(ch.receivers_waiting(), 1u);
  EXPECT_TRUE(ch.send(std::string("hello")));  // runs the receiver inline
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(ch.size(), 0u);  // handed over, never buffered
  receiver.join();
}

// ---- rendezvous

TEST(Channel, RendezvousSendCompletesOnlyWhenReceived) {
  Channel<int> ch(0);
  EXPECT_EQ(ch.try_send(1), SendStatus::full);  // nobody receiving
  bool sent = false;
  auto sender = heddle::spawn([&] { sent = ch.send(42); });
  EXPECT_FALSE(sent);
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.senders_waiting(), 1u);
  EXPECT_EQ(ch.try_receive(), 42);
  EXPECT_TRUE(sent);
  sender.join();
  EXPECT_EQ(ch.try_receive(), std::nullopt);
}

TEST(Channel, RendezvousPingPongBetweenTasks) {
  Channel<int> ping(0), pong(0);
  constexpr int kRounds = 1000;
  auto echo = heddle::spawn([&] {
    while (auto v = ping.receive()) EXPECT_TRUE(pong.send(*v + 1));
  });
  auto pinger = heddle::spawn([&] {
    for (int i = 0; i < kRounds; ++i) {
      EXPECT_TRUE(ping.send(i));
      EXPECT_EQ(pong.receive(), i + 1);
    }
    ping.close();
  });
  pinger.join();
  echo.join();
}

// ---- unbounded

TEST(Channel, UnboundedNeverWaitsAndKeepsOrder) {
  auto ch = Channel<int>::unbounded();
  constexpr int kValues = 10000;
  for (int i = 0; i < kValues; ++i) ASSERT_TRUE(ch.send(i));  // a thread: would block forever if it waited
  EXPECT_EQ(ch.size(), static_cast<std::size_t>(kValues));
  for (int i = 0; i < kValues; ++i) ASSERT_EQ(ch.try_receive(), i);
}

TEST(Channel, UnboundedGrowsAroundAWrappedRing) {
  auto ch = Channel<int>::unbounded();
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 50; ++round) {  // interleave so the ring wraps before growing
    for (int i = 0; i < round + 3; ++i) ASSERT_TRUE(ch.send(next_in++));
    for (int i = 0; i < round + 1; ++i) ASSERT_EQ(ch.receive(), next_out++);
  }
  while (auto v = ch.try_receive()) ASSERT_EQ(*v, next_out++);
  EXPECT_EQ(next_in, next_out);
}

// ---- close

TEST(Channel, CloseDrainsBufferedValuesThenGivesNullopt) {
  Channel<int> ch(4);
  ASSERT_TRUE(ch.send(1));
  ASSERT_TRUE(ch.send(2));
  ch.close();
  ch.close();  // idempotent
  EXPECT_TRUE(ch.is_closed());
  EXPECT_FALSE(ch.drained());
  EXPECT_FALSE(ch.send(3));
  EXPECT_EQ(ch.try_send(3), SendStatus::closed);
  EXPECT_EQ(ch.receive(), 1);
  EXPECT_EQ(ch.receive(), 2);
  EXPECT_TRUE(ch.drained());
  EXPECT_EQ(ch.receive(), std::nullopt);
  EXPECT_EQ(ch.try_receive(), std::nullopt);
}

TEST(Channel, CloseWakesBlockedSendersWithTheirValuesIntact) {
  Channel<std::unique_ptr<int>> ch(1);
  ASSERT_TRUE(ch.send(std::make_unique<int>(0)));
  std::vector<int> kept;
  std::vector<heddle::Task<void>> senders;
  for (int i = 1; i <= 3; ++i) {
    senders.push_back(heddle::spawn([&, i] {
      auto value = std::make_unique<int>(i);
      EXPECT_FALSE(ch.send(std::move(value)));
      ASSERT_NE(value, nullptr);  // not moved from
      kept.push_back(*value);
    }));
  }
  EXPECT_EQ(ch.senders_waiting(), 3u);
  ch.close();
  EXPECT_EQ(kept, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(ch.senders_waiting(), 0u);
  EXPECT_EQ(*ch.receive().value(), 0);  // what was buffered before close still arrives
  EXPECT_EQ(ch.receive(), std::nullopt);
  for (auto& s : senders) s.join();
}

TEST(Channel, CloseWakesBlockedReceiversWithNullopt) {
  Channel<int> ch(0);
  int ended = 0;
  std::vector<heddle::Task<void>> receivers;
  for (int i = 0; i < 3; ++i) {
    receivers.push_back(heddle::spawn([&] {
      EXPECT_EQ(ch.receive(), std::nullopt);
      ++ended;
    }));
  }
  ch.close();
  EXPECT_EQ(ended, 3);
  for (auto& r : receivers) r.join();
}

TEST(Channel, SendOnAClosedChannelGivesTheValueBack) {
  Channel<std::unique_ptr<int>> ch(2);
  ch.close();
  auto value = std::make_unique<int>(5);
  EXPECT_FALSE(ch.send(std::move(value)));
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(ch.try_send(std::move(value)), SendStatus::closed);
  ASSERT_NE(value, nullptr);
  EXPECT_EQ(*value, 5);
}

// ---- try_* and move-only values

TEST(Channel, TrySendGivesTheValueBackWhenFull) {
  Channel<std::unique_ptr<int>> ch(1);
  EXPECT_EQ(ch.try_send(std::make_unique<int>(1)), SendStatus::sent);
  auto second = std::make_unique<int>(2);
  EXPECT_EQ(ch.try_send(std::move(second)), SendStatus::full);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(*ch.try_receive().value(), 1);
  EXPECT_EQ(ch.try_send(std::move(second)), SendStatus::sent);
  EXPECT_EQ(second, nullptr);
}

TEST(Channel, MoveOnlyValuesThroughEveryKind) {
  Channel<std::unique_ptr<int>> rendezvous(0), bounded(2);
  auto unbounded = Channel<std::unique_ptr<int>>::unbounded();
  for (Channel<std::unique_ptr<int>>* ch : {&rendezvous, &bounded, &unbounded}) {
    auto producer = heddle::spawn([ch] {
      for (int i = 0; i < 10; ++i) EXPECT_TRUE(ch->send(std::make_unique<int>(i)));
      ch->close();
    });
    int expected = 0;
    auto consumer = heddle::spawn([&] {
      while (auto v = ch->receive()) EXPECT_EQ(**v, expected++);
    });
    producer.join();
    consumer.join();
    EXPECT_EQ(expected, 10);
  }
}

TEST(Channel, SendOfAnLvalueCopiesIt) {
  Channel<std::string> ch(1);
  const std::string text = "kept";
  EXPECT_TRUE(ch.send(text));
  EXPECT_EQ(text, "kept");
  EXPECT_EQ(ch.receive(), "kept");
}

// ---- cancellation

TEST(Channel, CancelledParkedSendKeepsItsValue) {
  Channel<std::unique_ptr<int>> ch(0);
  bool kept = false;
  auto sender = heddle::spawn([&] {
    auto value = std::make_unique<int>(7);
    try {
      (void)ch.send(std::move(value));
    } catch (const heddle::Cancelled&) {
      kept = value != nullptr && *value == 7;
      throw;
    }
  });
  EXPECT_EQ(ch.senders_waiting(), 1u);
  sender.cancel();
  EXPECT_THROW(sender.join(), heddle::Cancelled);
  EXPECT_TRUE(kept);
  EXPECT_EQ(ch.senders_waiting(), 0u);
  EXPECT_EQ(ch.try_receive(), std::nullopt);  // nothing was delivered
}

TEST(Channel, SendCancelledAfterItsValueWasTakenCompletes) {
  QueueScheduler scheduler;
  Channel<std::unique_ptr<int>> ch(0);
  bool sent = false;
  bool moved_from = false;
  heddle::SpawnOptions options;
  options.scheduler = &scheduler;
  auto sender = heddle::spawn(
      [&] {
        auto value = std::make_unique<int>(7);
        sent = ch.send(std::move(value));
        moved_from = value == nullptr;
      },
      options);
  auto got = ch.try_receive();  // claims the sender: it is queued, not yet run
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(**got, 7);
  EXPECT_EQ(scheduler.queued(), 1u);
  sender.cancel();  // too late: the claim won
  scheduler.run();
  EXPECT_TRUE(sent);
  EXPECT_TRUE(moved_from);
  sender.join();  // finished normally (no later suspension delivered the cancel)
}

TEST(Channel, CancelledParkedReceiveTakesNothing) {
  Channel<int> ch(0);
  std::optional<int> other_got;
  auto cancelled = heddle::spawn([&] { (void)ch.receive(); ADD_FAILURE() << "received after cancel"; });
  auto other = heddle::spawn([&] { other_got = ch.receive(); });
  EXPECT_EQ(ch.receivers_waiting(), 2u);
  cancelled.cancel();
  EXPECT_THROW(cancelled.join(), heddle::Cancelled);
  EXPECT_EQ(ch.receivers_waiting(), 1u);
  EXPECT_EQ(ch.try_send(9), SendStatus::sent);  // goes to `other`, not lost on the cancelled one
  EXPECT_EQ(other_got, 9);
  other.join();
}

TEST(Channel, ReceiveCancelledAfterItGotAValueReturnsIt) {
  QueueScheduler scheduler;
  Channel<int> ch(0);
  std::optional<int> got;
  heddle::SpawnOptions options;
  options.scheduler = &scheduler;
  auto receiver = heddle::spawn([&] { got = ch.receive(); }, options);
  EXPECT_EQ(ch.try_send(11), SendStatus::sent);  // claims and fills the receiver; it is queued
  receiver.cancel();
  scheduler.run();
  EXPECT_EQ(got, 11);
  receiver.join();
}

TEST(Channel, ReceiveIsACancellationPointWhenItMustWait) {
  Channel<int> ch(1);
  ASSERT_TRUE(ch.send(1));
  std::vector<int> got;
  auto receiver = heddle::spawn([&] {
    heddle::this_task::cancel();
    got.push_back(*ch.receive());  // ready: completes
    (void)ch.receive();            // must wait: throws
    ADD_FAILURE() << "received after cancel";
  });
  EXPECT_THROW(receiver.join(), heddle::Cancelled);
  EXPECT_EQ(got, (std::vector<int>{1}));
  EXPECT_EQ(ch.receivers_waiting(), 0u);
}

// ---- select

TEST(ChannelSelect, FirstReadyOperationInArgumentOrderWins) {
  Channel<int> a(1), b(1);
  ASSERT_TRUE(a.send(1));
  ASSERT_TRUE(b.send(2));
  auto r = heddle::select_on(heddle::receive_from(b), heddle::receive_from(a));
  ASSERT_EQ(r.index(), 0u);
  EXPECT_EQ(std::get<0>(r), 2);
  EXPECT_EQ(a.size(), 1u);  // the other took nothing
  auto s = heddle::select_on(heddle::receive_from(b), heddle::receive_from(a));
  ASSERT_EQ(s.index(), 1u);
  EXPECT_EQ(std::get<1>(s), 1);
}

TEST(ChannelSelect, UnchosenSendKeepsItsValue) {
  Channel<std::unique_ptr<int>> in(1), out(1);
  ASSERT_TRUE(in.send(std::make_unique<int>(1)));
  auto value = std::make_unique<int>(2);
  auto r = heddle::select_on(heddle::receive_from(in), heddle::send_to(out, std::move(value)));
  ASSERT_EQ(r.index(), 0u);
  EXPECT_EQ(*std::get<0>(r).value(), 1);
  ASSERT_NE(value, nullptr);  // not moved from: the send was not selected
  EXPECT_EQ(out.size(), 0u);
  auto s = heddle::select_on(heddle::receive_from(in), heddle::send_to(out, std::move(value)));
  ASSERT_EQ(s.index(), 1u);
  EXPECT_TRUE(std::get<1>(s));
  EXPECT_EQ(value, nullptr);
  EXPECT_EQ(*out.receive().value(), 2);
}

TEST(ChannelSelect, ParkedSelectIsWokenByTheSecondChannel) {
  Channel<int> a(0), b(0);
  std::optional<heddle::detail::SelectResult<heddle::ReceiveFrom<int>, heddle::ReceiveFrom<int>>> result;
  auto selector = heddle::spawn([&] { result = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b)); });
  EXPECT_EQ(a.receivers_waiting(), 1u);
  EXPECT_EQ(b.receivers_waiting(), 1u);
  EXPECT_EQ(b.try_send(5), SendStatus::sent);
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(result->index(), 1u);
  EXPECT_EQ(std::get<1>(*result), 5);
  EXPECT_EQ(a.receivers_waiting(), 0u);  // withdrawn from the other channel
  EXPECT_EQ(a.try_send(6), SendStatus::full);
  selector.join();
}

TEST(ChannelSelect, ParkedSendIsTakenByAReceiver) {
  Channel<int> in(0), out(0);
  int index = -1;
  auto selector = heddle::spawn([&] {
    int value = 3;
    auto r = heddle::select_on(heddle::receive_from(in), heddle::send_to(out, std::move(value)));
    index = static_cast<int>(r.index());
    EXPECT_TRUE(std::get<1>(r));
  });
  EXPECT_EQ(out.senders_waiting(), 1u);
  EXPECT_EQ(out.try_receive(), 3);
  EXPECT_EQ(index, 1);
  EXPECT_EQ(in.receivers_waiting(), 0u);
  selector.join();
}

TEST(ChannelSelect, ExactlyOneCompletesWhenTwoWakersRace) {
  // Two parked senders on the two channels the selector waits on: the
  // selector takes one value, the other sender stays parked with its value.
  Channel<int> a(0), b(0);
  std::optional<std::size_t> index;
  auto selector = heddle::spawn([&] {
    auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
    index = r.index();
  });
  bool a_sent = false, b_sent = false;
  auto sa = heddle::spawn([&] { a_sent = a.send(1); });  // wakes the selector inline
  auto sb = heddle::spawn([&] { b_sent = b.send(2); });  // the selector is gone: parks
  ASSERT_EQ(index, 0u);
  EXPECT_TRUE(a_sent);
  EXPECT_FALSE(b_sent);
  EXPECT_EQ(b.senders_waiting(), 1u);
  EXPECT_EQ(b.receivers_waiting(), 0u);
  EXPECT_EQ(b.try_receive(), 2);
  EXPECT_TRUE(b_sent);
  selector.join();
  sa.join();
  sb.join();
}

TEST(ChannelSelect, ClosedChannelIsAlwaysReady) {
  Channel<int> open(0), closed(0);
  closed.close();
  auto r = heddle::select_on(heddle::receive_from(open), heddle::receive_from(closed));
  ASSERT_EQ(r.index(), 1u);
  EXPECT_EQ(std::get<1>(r), std::nullopt);
  int value = 4;
  auto s = heddle::select_on(heddle::receive_from(open), heddle::send_to(closed, std::move(value)));
  ASSERT_EQ(s.index(), 1u);
  EXPECT_FALSE(std::get<1>(s));
  EXPECT_EQ(value, 4);
}

TEST(ChannelSelect, CloseWakesAParkedSelect) {
  Channel<int> a(0), b(0);
  std::size_t index = 9;
  std::optional<int> got = 0;
  auto selector = heddle::spawn([&] {
    auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
    index = r.index();
    got = index == 0 ? std::get<0>(r) : std::get<1>(r);
  });
  b.close();
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(got, std::nullopt);
  EXPECT_EQ(a.receivers_waiting(), 0u);
  selector.join();
}

TEST(ChannelSelect, TrySelectNeverWaits) {
  Channel<int> a(0), b(1);
  int value = 1;
  auto none = heddle::try_select_on(heddle::receive_from(a), heddle::send_to(a, std::move(value)));
  EXPECT_FALSE(none.has_value());
  EXPECT_EQ(value, 1);
  auto some = heddle::try_select_on(heddle::receive_from(a), heddle::send_to(b, std::move(value)));
  ASSERT_TRUE(some.has_value());
  EXPECT_EQ(some->index(), 1u);
  EXPECT_EQ(b.receive(), 1);
}

TEST(ChannelSelect, CancelledParkedSelectWithdrawsEverythingAndTakesNothing) {
  Channel<std::unique_ptr<int>> a(0), b(0), c(0);
  bool kept = false;
  auto selector = heddle::spawn([&] {
    auto value = std::make_unique<int>(8);
    try {
      (void)heddle::select_on(heddle::receive_from(a), heddle::send_to(b, std::move(value)),
                              heddle::receive_from(c));
    } catch (const heddle::Cancelled&) {
      kept = value != nullptr && *value == 8;
      throw;
    }
  });
  EXPECT_EQ(a.receivers_waiting(), 1u);
  EXPECT_EQ(b.senders_waiting(), 1u);
  EXPECT_EQ(c.receivers_waiting(), 1u);
  selector.cancel();
  EXPECT_THROW(selector.join(), heddle::Cancelled);
  EXPECT_TRUE(kept);
  EXPECT_EQ(a.receivers_waiting(), 0u);
  EXPECT_EQ(b.senders_waiting(), 0u);
  EXPECT_EQ(c.receivers_waiting(), 0u);
  EXPECT_EQ(b.try_receive(), std::nullopt);
  EXPECT_EQ(a.try_send(std::make_unique<int>(1)), SendStatus::full);  // nobody receives any more
}

TEST(ChannelSelect, SelectCancelledAfterAWakerClaimedItReturnsTheValue) {
  QueueScheduler scheduler;
  Channel<int> a(0), b(0);
  std::optional<std::size_t> index;
  std::optional<int> got;
  heddle::SpawnOptions options;
  options.scheduler = &scheduler;
  auto selector = heddle::spawn(
      [&] {
        auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
        index = r.index();
        got = std::get<1>(r);
      },
      options);
  EXPECT_EQ(b.try_send(3), SendStatus::sent);
  EXPECT_EQ(a.try_send(4), SendStatus::full);  // its node is still listed, but the claim is taken
  selector.cancel();
  scheduler.run();
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(got, 3);
  EXPECT_EQ(a.receivers_waiting(), 0u);
  selector.join();
}

TEST(ChannelSelect, BothEndsOfOneChannelDoNotMatchThemselves) {
  Channel<int> ch(0);
  std::optional<std::size_t> index;
  auto selector = heddle::spawn([&] {
    int value = 1;
    auto r = heddle::select_on(heddle::receive_from(ch), heddle::send_to(ch, std::move(value)));
    index = r.index();
  });
  EXPECT_FALSE(index.has_value());  // parked on both lists, not matched with itself
  EXPECT_EQ(ch.receivers_waiting(), 1u);
  EXPECT_EQ(ch.senders_waiting(), 1u);
  EXPECT_EQ(ch.try_receive(), 1);  // takes the select's send
  EXPECT_EQ(index, 1u);
  EXPECT_EQ(ch.receivers_waiting(), 0u);
  selector.join();
}

TEST(ChannelSelect, SelectOnBufferedSendAndReceiveOfOneChannel) {
  Channel<int> ch(1);
  int value = 5;
  auto r = heddle::select_on(heddle::receive_from(ch), heddle::send_to(ch, std::move(value)));
  EXPECT_EQ(r.index(), 1u);  // the receive was not ready, the send was
  auto s = heddle::select_on(heddle::receive_from(ch), heddle::send_to(ch, 6));
  ASSERT_EQ(s.index(), 0u);
  EXPECT_EQ(std::get<0>(s), 5);
}

TEST(ChannelSelect, ManySelectorsShareTwoChannels) {
  Channel<int> a(0), b(2);
  constexpr int kSelectors = 50;
  std::vector<int> got;
  std::vector<heddle::Task<void>> selectors;
  for (int i = 0; i < kSelectors; ++i) {
    selectors.push_back(heddle::spawn([&] {
      auto r = heddle::select_on(heddle::receive_from(a), heddle::receive_from(b));
      got.push_back(r.index() == 0 ? *std::get<0>(r) : *std::get<1>(r));
    }));
  }
  for (int i = 0; i < kSelectors; ++i) ASSERT_TRUE(i % 2 ? a.send(i) : b.send(i));
  EXPECT_EQ(got.size(), static_cast<std::size_t>(kSelectors));
  std::sort(got.begin(), got.end());
  for (int i = 0; i < kSelectors; ++i) EXPECT_EQ(got[i], i);
  EXPECT_EQ(a.receivers_waiting(), 0u);
  EXPECT_EQ(b.receivers_waiting(), 0u);
  for (auto& s : selectors) s.join();
}

// ---- bad use

TEST(ChannelDeathTest, DestroyingAChannelWithParkedWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* ch = new Channel<int>(0);
        auto receiver = heddle::spawn([ch] { (void)ch->receive(); }, {.name = "receiver"});
        delete ch;
        receiver.detach();
      },
      "heddle::Channel at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"receiver\" spawned at .*channel_test.cpp:[0-9]+");
}

}  // namespace
