// heddle example: `http demo`, the server under its own load generator.
#pragma once

#include <cstddef>

namespace http_example {

struct DemoOptions {
  double seconds = 10;            // length of the load phase
  int connections = 100;          // keep-alive connections of the load phase
  std::size_t idle = 10'000;      // idle keep-alive connections opened after it
};

// Runs the demo and prints its report; returns the process exit status
// (0 when every request succeeded).
int run_demo(const DemoOptions& options);

}  // namespace http_example
