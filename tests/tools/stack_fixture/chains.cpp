// The fixture heddle-stack is tested on: call chains of known shape. Every
// function is noinline with a buffer the optimiser must keep, so each has a
// frame of its own, and the test checks the tool's bound against the sum of
// the frames GCC reports along the chain it expects to be deepest.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#define FIXTURE __attribute__((noinline, used))

extern "C" {
volatile int fixture_sink;

FIXTURE void leaf_small() { volatile char buffer[48]; buffer[0] = 1; fixture_sink = buffer[0]; }
FIXTURE void leaf_large() { volatile char buffer[400]; buffer[0] = 1; fixture_sink = buffer[0]; }

// Straight line: entry_straight -> straight_middle -> leaf_small.
FIXTURE void straight_middle() { volatile char buffer[100]; buffer[0] = 2; leaf_small(); fixture_sink = buffer[0]; }
FIXTURE void entry_straight() { volatile char buffer[32]; buffer[0] = 3; straight_middle(); fixture_sink = buffer[0]; }

// Branching: the deeper branch (through leaf_large) decides the bound.
FIXTURE void branch_shallow() { volatile char buffer[16]; buffer[0] = 1; leaf_small(); fixture_sink = buffer[0]; }
FIXTURE void branch_deep() { volatile char buffer[64]; buffer[0] = 1; leaf_large(); fixture_sink = buffer[0]; }
FIXTURE void entry_branching(int which) {
  volatile char buffer[24];
  buffer[0] = 1;
  if (which) branch_shallow(); else branch_deep();
  fixture_sink = buffer[0];
}

// Recursion.
FIXTURE int recurse(int n) { volatile char buffer[40]; buffer[0] = static_cast<char>(n); return n ? recurse(n - 1) + buffer[0] : 0; }
FIXTURE void entry_recursion() { fixture_sink = recurse(fixture_sink); }

// A call through a function pointer.
void (*volatile fixture_pointer)() = leaf_small;
FIXTURE void entry_pointer() { fixture_pointer(); }

// A libc call in the known table, and one that is not.
FIXTURE void entry_known_libc(char* out) { std::memmove(out, out + 1, static_cast<std::size_t>(fixture_sink)); }
FIXTURE void entry_unknown_libc() { fixture_sink = std::rand(); }

// Formatted output, whose stack use grows with its input: %.*f of 1e-300
// at precision 2000 needs far more than the same call at precision 6.
FIXTURE void entry_fprintf_precision(int precision, double value) { std::fprintf(stderr, "%.*f\n", precision, value); }
FIXTURE void entry_printf_precision(int precision, double value) { std::printf("%.*f\n", precision, value); }

// Output and string functions whose stack use does not depend on their input.
FIXTURE void entry_puts(const char* text) { std::puts(text); }
FIXTURE void entry_strlen(const char* text) { fixture_sink = static_cast<int>(std::strlen(text)); }
}

// A virtual call.
struct Shape {
  virtual int area() const = 0;
  virtual ~Shape() = default;
};
extern "C" FIXTURE int entry_virtual(const Shape& shape) { return shape.area(); }
