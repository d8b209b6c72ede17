// heddle arch: sanitizer fibre annotations.
//
// Owns: telling AddressSanitizer and ThreadSanitizer that the running stack
// changes at every context switch. Without this ASan reports false stack
// buffer overflows when an exception unwinds on a task stack, and TSan loses
// track of which "thread" is running. Every switch in heddle goes through
// core/switch.hpp, which calls these hooks; when no sanitizer is enabled they
// compile to nothing.
#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define HEDDLE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEDDLE_ASAN 1
#endif
#endif
#ifndef HEDDLE_ASAN
#define HEDDLE_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define HEDDLE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HEDDLE_TSAN 1
#endif
#endif
#ifndef HEDDLE_TSAN
#define HEDDLE_TSAN 0
#endif

#if HEDDLE_ASAN
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, std::size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, std::size_t* size_old);
}
#define HEDDLE_NO_SANITIZE_ADDRESS __attribute__((no_sanitize_address))
#else
#define HEDDLE_NO_SANITIZE_ADDRESS
#endif

#if HEDDLE_TSAN
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
}
#endif
