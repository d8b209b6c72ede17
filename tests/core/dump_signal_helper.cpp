// A child process for dump_signal_test.cpp: parks two tasks at known leaves
// (a sleep and an Event wait), installs the dump on SIGQUIT, prints "ready"
// on stdout and waits to be killed. Every SIGQUIT should write a task dump
// to stderr and leave the process running.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "heddle/core/dump.hpp"
#include "heddle/heddle.hpp"

namespace {

__attribute__((noinline)) void dump_helper_sleeps_for_an_hour() {
  heddle::sleep_for(std::chrono::hours(1));
  asm volatile("");  // no tail call: this frame stays in the backtrace
}

__attribute__((noinline)) void dump_helper_waits_for_an_event(heddle::Event& event) {
  event.wait();
  asm volatile("");
}

}  // namespace

int main() {
  heddle::Event never;
  auto sleeper = heddle::spawn([] { dump_helper_sleeps_for_an_hour(); }, {.name = "helper-sleeper"});
  auto waiter = heddle::spawn([&] { dump_helper_waits_for_an_event(never); }, {.name = "helper-waiter"});
  heddle::install_dump_on_signal(SIGQUIT);
  std::printf("ready\n");
  std::fflush(stdout);
  for (;;) pause();  // the parent kills this process; the tasks never finish
}
