// The raw context switch: register and floating-point control state.
#include <gtest/gtest.h>

#include <array>
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
  // stack after its call (x86-64 SysV: rsp + 8 is a multiple of 16 at entry;
  // AArch64: sp is a multiple of 16 at every instruction).
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

// The raw floating-point control register the switch saves: MXCSR on
// x86-64, FPCR on AArch64. Flush-to-zero is a bit <cfenv> cannot reach.
#if defined(__x86_64__)
constexpr std::uint64_t kFlushToZero = std::uint64_t{1} << 15;  // MXCSR.FTZ
std::uint64_t read_fp_control() {
  std::uint32_t value;
  asm volatile("stmxcsr %0" : "=m"(value));
  return value;
}
void write_fp_control(std::uint64_t value) {
  const auto mxcsr = static_cast<std::uint32_t>(value);
  asm volatile("ldmxcsr %0" : : "m"(mxcsr));
}
#elif defined(__aarch64__)
constexpr std::uint64_t kFlushToZero = std::uint64_t{1} << 24;  // FPCR.FZ
std::uint64_t read_fp_control() {
  std::uint64_t value;
  asm volatile("mrs %0, fpcr" : "=r"(value));
  return value;
}
void write_fp_control(std::uint64_t value) { asm volatile("msr fpcr, %0" : : "r"(value)); }
#endif

TEST(Switch, FloatingPointControlRegisterIsPerContext) {
  // A made context starts with its maker's control register; a change made
  // inside it survives switches and never shows on the other side.
  static std::uint64_t seen_at_entry = 0;
  static std::uint64_t seen_after_resume = 0;
  struct Probe {
    [[noreturn]] static void entry(void*, void*) {
      seen_at_entry = read_fp_control();
      write_fp_control(seen_at_entry | kFlushToZero);
      heddle::arch::switch_context(&other_sp, main_sp, nullptr);
      seen_after_resume = read_fp_control();
      write_fp_control(seen_after_resume & ~kFlushToZero);
      heddle::arch::switch_context(&other_sp, main_sp, nullptr);
      __builtin_unreachable();
    }
  };
  const std::uint64_t original = read_fp_control();
  ASSERT_EQ(original & kFlushToZero, 0u);
  std::vector<std::byte> stack(64 * 1024);
  other_sp = heddle::arch::make_context(stack.data() + stack.size(), &Probe::entry, nullptr);
  heddle::arch::switch_context(&main_sp, other_sp, nullptr);
  EXPECT_EQ(seen_at_entry, original);
  EXPECT_EQ(read_fp_control(), original) << "the context's flush-to-zero leaked into its maker";
  heddle::arch::switch_context(&main_sp, other_sp, nullptr);
  EXPECT_EQ(seen_after_resume, original | kFlushToZero) << "the context lost its flush-to-zero across a switch";
  EXPECT_EQ(read_fp_control(), original);
}

// heddle_test_switch_with_pattern(save_sp, target_sp, pattern, seen) loads
// pattern[] into every callee-saved register, switches to target_sp, and when
// switched back stores the registers into seen[]. Written in assembly so that
// every register is tested whatever the compiler keeps in them (at -O0,
// nothing); it preserves the registers for its own caller as the ABI asks.
#if defined(__x86_64__)
// rbx, rbp, r12, r13, r14, r15
constexpr std::size_t kCalleeSavedRegisters = 6;
asm(R"(
    .pushsection .text
    .globl  heddle_test_switch_with_pattern
    .hidden heddle_test_switch_with_pattern
    .type   heddle_test_switch_with_pattern,@function
heddle_test_switch_with_pattern:
    pushq   %rbx
    pushq   %rbp
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    pushq   %rcx
    movq    0(%rdx), %rbx
    movq    8(%rdx), %rbp
    movq    16(%rdx), %r12
    movq    24(%rdx), %r13
    movq    32(%rdx), %r14
    movq    40(%rdx), %r15
    xorl    %edx, %edx
    callq   heddle_switch_context
    popq    %rcx
    movq    %rbx, 0(%rcx)
    movq    %rbp, 8(%rcx)
    movq    %r12, 16(%rcx)
    movq    %r13, 24(%rcx)
    movq    %r14, 32(%rcx)
    movq    %r15, 40(%rcx)
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbp
    popq    %rbx
    retq
    .size   heddle_test_switch_with_pattern, .-heddle_test_switch_with_pattern
    .popsection
)");
#elif defined(__aarch64__)
// x19-x28, x29 (frame pointer), then d8-d15 as bit patterns
constexpr std::size_t kCalleeSavedRegisters = 19;
asm(R"(
    .pushsection .text
    .globl  heddle_test_switch_with_pattern
    .hidden heddle_test_switch_with_pattern
    .type   heddle_test_switch_with_pattern,%function
heddle_test_switch_with_pattern:
    stp     x29, x30, [sp, #-176]!
    stp     x19, x20, [sp, #16]
    stp     x21, x22, [sp, #32]
    stp     x23, x24, [sp, #48]
    stp     x25, x26, [sp, #64]
    stp     x27, x28, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    str     x3, [sp, #160]
    ldp     x19, x20, [x2, #0]
    ldp     x21, x22, [x2, #16]
    ldp     x23, x24, [x2, #32]
    ldp     x25, x26, [x2, #48]
    ldp     x27, x28, [x2, #64]
    ldr     x29, [x2, #80]
    ldp     d8, d9, [x2, #88]
    ldp     d10, d11, [x2, #104]
    ldp     d12, d13, [x2, #120]
    ldp     d14, d15, [x2, #136]
    mov     x2, #0
    bl      heddle_switch_context
    ldr     x3, [sp, #160]
    stp     x19, x20, [x3, #0]
    stp     x21, x22, [x3, #16]
    stp     x23, x24, [x3, #32]
    stp     x25, x26, [x3, #48]
    stp     x27, x28, [x3, #64]
    str     x29, [x3, #80]
    stp     d8, d9, [x3, #88]
    stp     d10, d11, [x3, #104]
    stp     d12, d13, [x3, #120]
    stp     d14, d15, [x3, #136]
    ldp     x19, x20, [sp, #16]
    ldp     x21, x22, [sp, #32]
    ldp     x23, x24, [sp, #48]
    ldp     x25, x26, [sp, #64]
    ldp     x27, x28, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldp     x29, x30, [sp], #176
    ret
    .size   heddle_test_switch_with_pattern, .-heddle_test_switch_with_pattern
    .popsection
)");
#endif

}  // namespace

extern "C" void heddle_test_switch_with_pattern(void** save_sp, void* target_sp, const std::uint64_t* pattern,
                                                std::uint64_t* seen);

namespace {

using RegisterValues = std::array<std::uint64_t, kCalleeSavedRegisters>;

RegisterValues pattern_of(std::uint64_t seed) {
  RegisterValues values{};
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = seed ^ ((i + 1) * 0x9e3779b97f4a7c15ULL);
  return values;
}

RegisterValues other_pattern;
RegisterValues other_seen;

[[noreturn]] void clobbering_entry(void*, void*) {
  heddle_test_switch_with_pattern(&other_sp, main_sp, other_pattern.data(), other_seen.data());
  heddle::arch::switch_context(&other_sp, main_sp, nullptr);
  __builtin_unreachable();
}

TEST(Switch, EveryCalleeSavedRegisterSurvivesASwitch) {
  // Both sides fill every callee-saved register with their own pattern and
  // switch to the other; each must find its own pattern when it resumes.
  const RegisterValues main_pattern = pattern_of(0x1111111111111111ULL);
  other_pattern = pattern_of(0x2222222222222222ULL);
  RegisterValues main_seen{};
  other_seen = {};
  std::vector<std::byte> stack(64 * 1024);
  other_sp = heddle::arch::make_context(stack.data() + stack.size(), &clobbering_entry, nullptr);
  heddle_test_switch_with_pattern(&main_sp, other_sp, main_pattern.data(), main_seen.data());
  EXPECT_EQ(main_seen, main_pattern);
  heddle::arch::switch_context(&main_sp, other_sp, nullptr);
  EXPECT_EQ(other_seen, other_pattern);
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
