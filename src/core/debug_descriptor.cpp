// heddle core: the descriptor that lets a debugger list and unwind tasks
// from raw memory (tools/gdb/heddle.py), and the gdb script inlined into
// every program that links heddle.
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "control_depot.hpp"

// heddle_debug_descriptor tells a debugger where the registry of tasks is
// and how a control block is laid out, so tools/gdb/heddle.py lists and
// unwinds tasks from raw memory: it needs no debug information for heddle's
// internals, works on a stripped release build and on a core file, and runs
// no code in the inferior. Every field is 8 bytes, in this order; the script
// checks `magic` and `version` and refuses a layout it does not know. Bump
// `version` whenever a field is added, removed or changes meaning.
namespace heddle::detail {

struct DebugDescriptor {
  std::uint64_t magic;                 // "heddledb" as a little-endian word
  std::uint64_t version;
  std::uint64_t architecture;          // 1: x86-64 (switch_frame_x86_64.h), 2: AArch64
  const void* chunks_head;             // ControlChunk* (newest first), as control_chunks holds it
  std::uint64_t blocks_per_chunk;
  std::uint64_t block_size;            // sizeof(TaskControl): blocks sit at offset 0 of a chunk
  std::uint64_t chunk_next_offset;     // offsetof(ControlChunk, next)
  std::uint64_t state_offset;          // std::uint64_t: the state word (control.hpp)
  std::uint64_t id_offset;             // std::uint64_t
  std::uint64_t name_offset;           // char[name_size], NUL-terminated
  std::uint64_t name_size;
  std::uint64_t leaf_offset;           // const char*, or null
  std::uint64_t saved_sp_offset;       // void*: the switch frame of a parked task
  std::uint64_t running_thread_offset; // std::uint32_t: Linux thread id, 0 when switched out
  std::uint64_t interruptible_offset;  // bool
  std::uint64_t spawn_file_offset;     // const char*
  std::uint64_t spawn_line_offset;     // unsigned (4 bytes)
  std::uint64_t spawn_function_offset; // const char*
  std::uint64_t stack_low_offset;      // std::byte*
  std::uint64_t stack_size_offset;     // std::size_t
  std::uint64_t stack_kind_offset;     // StackKind (1 byte), named by stack_kind_names
  const char* const* stack_kind_names;
  std::uint64_t stack_kind_count;
  std::uint64_t phase_mask;
  std::uint64_t cancel_requested_bit;
  std::uint64_t generation_unit;
};

namespace {

constexpr const char* kStackKindNames[] = {"guarded", "canary", "static", "span", "nested", "slab"};
static_assert(static_cast<int>(StackKind::slab) + 1 == std::size(kStackKindNames));

// offsetof on TaskControl, which is not standard-layout (it has atomics and
// an exception_ptr); both GCC and clang lay it out as written and compute
// these offsets at compile time.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
#define HEDDLE_OFFSET(member) static_cast<std::uint64_t>(offsetof(heddle::detail::TaskControl, member))

}  // namespace
}  // namespace heddle::detail

extern "C" {
// Kept by the linker even when nothing refers to it (`used`, `retain`).
extern const heddle::detail::DebugDescriptor heddle_debug_descriptor;
[[gnu::used, gnu::retain]] constinit const heddle::detail::DebugDescriptor heddle_debug_descriptor = {
    0x6264656c64646568ULL,  // "heddledb"
    1,
#if defined(__x86_64__)
    1,
#elif defined(__aarch64__)
    2,
#endif
    &heddle::detail::control_chunks,
    heddle::detail::kControlChunk,
    sizeof(heddle::detail::TaskControl),
    offsetof(heddle::detail::ControlChunk, next),
    HEDDLE_OFFSET(state),
    HEDDLE_OFFSET(id),
    HEDDLE_OFFSET(name),
    sizeof(heddle::detail::TaskControl::name),
    HEDDLE_OFFSET(leaf),
    HEDDLE_OFFSET(saved_sp),
    HEDDLE_OFFSET(running_thread),
    HEDDLE_OFFSET(interruptible),
    HEDDLE_OFFSET(spawn_file),
    HEDDLE_OFFSET(spawn_line),
    HEDDLE_OFFSET(spawn_function),
    HEDDLE_OFFSET(stack) + offsetof(heddle::Stack, low),
    HEDDLE_OFFSET(stack) + offsetof(heddle::Stack, size),
    HEDDLE_OFFSET(stack) + offsetof(heddle::Stack, kind),
    heddle::detail::kStackKindNames,
    std::size(heddle::detail::kStackKindNames),
    heddle::detail::kPhaseMask,
    heddle::detail::kCancelRequested,
    heddle::detail::kGenerationUnit,
};
}
#undef HEDDLE_OFFSET
#pragma GCC diagnostic pop

// The gdb script itself, inlined into a .debug_gdb_scripts section of every
// program that links heddle, so gdb loads it with the program once the
// program's path is trusted (`add-auto-load-safe-path`; README, "Debugging
// tasks in gdb"). The section is not loaded at run time and `strip` removes it.
#if defined(HEDDLE_GDB_SCRIPT)
asm(".pushsection \".debug_gdb_scripts\", \"MS\",%progbits,1\n"
    ".byte 4\n"  // an inlined Python script: its name on the first line, then its text
    ".ascii \"heddle.py\\n\"\n"
    ".incbin \"" HEDDLE_GDB_SCRIPT "\"\n"
    ".byte 0\n"
    ".popsection\n");
#endif

// Referred to by control_depot.cpp, so that this file is linked wherever
// the registry is (see there).
extern "C" [[gnu::used]] const char heddle_debug_descriptor_anchor = 0;
