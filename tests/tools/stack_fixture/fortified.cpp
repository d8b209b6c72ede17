// Formatted output as GCC emits it with -D_FORTIFY_SOURCE (heddle_stack_test
// compiles this file so): the __*_chk variants, which are as input-dependent
// as the functions they check.
#include <cstdio>

#define FIXTURE __attribute__((noinline, used))

extern "C" {
extern volatile int fixture_sink;

FIXTURE void entry_fortified_printf(int precision, double value) { std::printf("%.*f\n", precision, value); }
FIXTURE void entry_fortified_fprintf(int precision, double value) { std::fprintf(stderr, "%.*f\n", precision, value); }
FIXTURE void entry_fortified_snprintf(int precision, double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", precision, value);
  fixture_sink = text[0];
}
}
