// Canaries, caller-provided spans and StaticStack.
#include <gtest/gtest.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "heddle/stack/stack.hpp"

namespace heddle {
namespace {

alignas(64) std::byte span_storage[8192];

std::string rejection_of(std::span<std::byte> region) {
  try {
    stack_from_span(region);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(accepted)";
}

TEST(Canary, StackFromSpanArmsTheCanary) {
  std::memset(span_storage, 0, sizeof span_storage);
  Stack stack = stack_from_span(span_storage);
  EXPECT_EQ(stack.kind, StackKind::span);
  EXPECT_TRUE(canary_intact(stack));
  std::uint64_t bottom_word;
  std::memcpy(&bottom_word, stack.low, sizeof bottom_word);
  EXPECT_EQ(bottom_word, kCanaryWord);
}

TEST(Canary, ClobberingTheTopWordIsDetected) {
  Stack stack = stack_from_span(span_storage);
  std::memset(stack.low + kCanaryBytes - 8, 0, 8);
  EXPECT_FALSE(canary_intact(stack));
  arm_canary(stack);
  EXPECT_TRUE(canary_intact(stack));
}

TEST(Canary, ClobberingTheBottomWordIsDetected) {
  Stack stack = stack_from_span(span_storage);
  stack.low[0] = std::byte{0};
  EXPECT_FALSE(canary_intact(stack));
}

TEST(Canary, GuardedStacksHaveNoCanaryZone) {
  StackPool pool;
  Stack stack = pool.acquire();
  ASSERT_EQ(stack.kind, StackKind::guarded);
  std::memset(stack.low, 0x11, kCanaryBytes);
  arm_canary(stack);
  EXPECT_EQ(stack.low[0], std::byte{0x11});
  EXPECT_EQ(stack.low[kCanaryBytes - 1], std::byte{0x11});
  EXPECT_TRUE(canary_intact(stack));
  pool.release(stack);
}

TEST(StackFromSpan, RejectsAStackBelowTheMinimum) {
  std::string message = rejection_of(std::span(span_storage, 1000));
  EXPECT_NE(message.find("stack of 1000 bytes"), std::string::npos) << message;
  EXPECT_NE(message.find("minimum of 2048 bytes"), std::string::npos) << message;
}

TEST(StackFromSpan, RejectsAMisalignedStack) {
  std::string message = rejection_of(std::span(span_storage + 8, 4096));
  EXPECT_NE(message.find("is not 16-byte aligned"), std::string::npos) << message;
  EXPECT_NE(message.find("0x"), std::string::npos) << message;
}

TEST(StackFromSpan, RejectsTheGuardedKind) {
  EXPECT_THROW(stack_from_span(span_storage, StackKind::guarded), std::invalid_argument);
}

TEST(StackFromSpan, KeepsTheRegionAndKind) {
  Stack stack = stack_from_span(std::span(span_storage, 4096), StackKind::nested);
  EXPECT_EQ(stack.low, span_storage);
  EXPECT_EQ(stack.size, 4096u);
  EXPECT_EQ(stack.kind, StackKind::nested);
  EXPECT_EQ(stack.pool, nullptr);
  EXPECT_FALSE(stack.painted);
}

TEST(StaticStack, IsAStaticStorageStackWithAnArmedCanary) {
  static StaticStack<8192> storage;
  Stack stack = storage.stack();
  EXPECT_EQ(stack.kind, StackKind::static_storage);
  EXPECT_EQ(stack.size, 8192u);
  EXPECT_TRUE(canary_intact(stack));
}

TEST(StackKind, HasReadableNames) {
  EXPECT_STREQ(to_string(StackKind::guarded), "guarded");
  EXPECT_STREQ(to_string(StackKind::canary), "canary");
  EXPECT_STREQ(to_string(StackKind::static_storage), "static_storage");
  EXPECT_STREQ(to_string(StackKind::span), "span");
  EXPECT_STREQ(to_string(StackKind::nested), "nested");
}

}  // namespace
}  // namespace heddle
