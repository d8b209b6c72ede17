// A program built against an installed heddle, the way a user builds one.
#include <heddle/heddle.hpp>

#include <cstdio>
#include <sstream>

int main() {
  heddle::Loop loop;
  heddle::Channel<int> numbers(4);
  auto producer = loop.spawn([&] {
    for (int i = 1; i <= 3; ++i) (void)numbers.send(i);
    numbers.close();
  });
  std::ostringstream dump;
  auto consumer = loop.spawn([&] {
    heddle::dump_tasks(dump);  // links the task dump's symboliser (libbacktrace) too
    int sum = 0;
    while (auto n = numbers.receive()) sum += *n;
    return sum;
  });
  loop.run();
  producer.join();
  const int sum = consumer.join();
  std::printf("heddle consumer: sum %d\n", sum);
  if (dump.str().empty()) return 2;
  return sum == 6 ? 0 : 1;
}
