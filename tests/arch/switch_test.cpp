// The raw context switch: register and floating-point control state.
#include <gtest/gtest.h>

#include <cfenv>
#include <cstdint>
#include <vector>

#include "heddle/arch/context.hpp"
#include "heddle/heddle.hpp"

namespace {

void* main_sp = nullptr;
void* other_sp = nullptr;
int bounces = 0;

[[noreturn]] void bounce_entry(void* transfer, void* argument) {
  EXPECT_EQ(transfer, reinterpret_cast<void*>(0x1234));
  EXPECT_EQ(argument, reinterpret_cast<void*>(0x5678));
  for (;;) {
    ++bounces;
    void* value = heddle::arch::switch_context(&other_sp, main_sp, reinterpret_cast<void*>(bounces));
    EXPECT_EQ(value, reinterpret_cast<void*>(0xabc));
  }
}

TEST(Switch, TransfersValuesBothWays) {
  std::vector<std::byte> stack(64 * 1024);
  bounces = 0;
  other_sp = heddle::arch::make_context(stack.data() + stack.size(), &bounce_entry, reinterpret_cast<void*>(0x5678));
  void* got = heddle::arch::switch_context(&main_sp, other_sp, reinterpret_cast<void*>(0x1234));
  EXPECT_EQ(got, reinterpret_cast<void*>(1));
  for (int i = 2; i < 100; ++i) {
    got = heddle::arch::switch_context(&main_sp, other_sp, reinterpret_cast<void*>(0xabc));
    EXPECT_EQ(got, reinterpret_cast<void*>(static_cast<std::intptr_t>(i)));
  }
}

TEST(Switch, MakeContextAlignsTheEntryStack) {
  // Whatever the top address, the entry function sees a 16-byte aligned
  // stack after its call (SysV: rsp + 8 is a multiple of 16 at entry).
  static std::uintptr_t seen_frame = 0;
  struct Probe {
    [[noreturn]] static void entry(void*, void*) {
      seen_frame = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
      heddle::arch::switch_context(&other_sp, main_sp, nullptr);
      __builtin_unreachable();
    }
  };
  std::vector<std::byte> stack(64 * 1024 + 64);
  for (std::size_t skew = 0; skew < 16; ++skew) {
    other_sp = heddle::arch::make_context(stack.data() + 64 * 1024 + skew, &Probe::entry, nullptr);
    heddle::arch::switch_context(&main_sp, other_sp, nullptr);
    EXPECT_EQ(seen_frame % 16, 0u) << "skew " << skew;
  }
}

TEST(Switch, FloatingPointControlIsPerTask) {
  // A task that changes the rounding mode keeps it across switches and does
  // not leak it into whoever resumes it.
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  heddle::Resumer parked;
  int rounding_after_resume = -1;
  auto task = heddle::spawn([&] {
    std::fesetround(FE_UPWARD);
    heddle::suspend([&](const heddle::Resumer& r) { parked = r; });
    rounding_after_resume = std::fegetround();
    std::fesetround(FE_TONEAREST);
  });
  EXPECT_EQ(std::fegetround(), FE_TONEAREST) << "the task's rounding mode leaked into the spawner";
  std::fesetround(FE_DOWNWARD);
  parked.resume();
  EXPECT_EQ(rounding_after_resume, FE_UPWARD);
  EXPECT_EQ(std::fegetround(), FE_DOWNWARD);
  std::fesetround(FE_TONEAREST);
  task.join();
}

TEST(Switch, CalleeSavedRegistersSurviveSuspension) {
  // Many live values across a suspension force the compiler to keep them
  // in callee-saved registers; they must come back intact.
  heddle::Resumer parked;
  auto task = heddle::spawn([&] {
    volatile std::uint64_t seed = 0x9e3779b97f4a7c15ULL;
    std::uint64_t a = seed, b = a * 3, c = b ^ 0x55, d = c + 7, e = d * 11, f = e ^ a;
    heddle::suspend([&](const heddle::Resumer& r) { parked = r; });
    return a + 2 * b + 3 * c + 5 * d + 7 * e + 11 * f;
  });
  // Clobber registers on this side between the switches.
  volatile std::uint64_t noise = 0;
  for (int i = 0; i < 100; ++i) noise = noise * 31 + static_cast<std::uint64_t>(i);
  parked.resume();
  const std::uint64_t a = 0x9e3779b97f4a7c15ULL, b = a * 3, c = b ^ 0x55, d = c + 7, e = d * 11, f = e ^ a;
  EXPECT_EQ(task.join(), a + 2 * b + 3 * c + 5 * d + 7 * e + 11 * f);
}

}  // namespace
