// heddle bench: I/O figures.
//   file_read:  4 KiB reads at random offsets of a cached 64 MiB file, by 64
//               concurrent readers, ns per read: heddle on io_uring, heddle on
//               epoll (pread on the loop's thread), and std::thread readers
//               calling pread (the peer: what a thread-per-request server does).
// The network figures (http_hello, echo_pingpong) run as separate servers
// under load from wrk and bench/net/echo_client (scripts/bench).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/io/backend.hpp"
#include "heddle/io/file.hpp"
#include "line_reporter.hpp"

namespace {

constexpr std::uint64_t kFileSize = 64 << 20;
constexpr std::size_t kBlock = 4096;
constexpr int kReaders = 64;
constexpr int kReadsPerReader = 256;

const std::string& test_file() {
  static const std::string path = [] {
    std::string name = "/tmp/heddle-file-read-bench-" + std::to_string(::getpid());
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::vector<char> chunk(1 << 20, 'h');
    for (std::uint64_t at = 0; at < kFileSize; at += chunk.size()) {
      if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) std::abort();
    }
    ::close(fd);
    // Read it once so that it is cached.
    const int in = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
    while (::read(in, chunk.data(), chunk.size()) > 0) {
    }
    ::close(in);
    std::atexit([] { ::unlink(test_file().c_str()); });
    return name;
  }();
  return path;
}

std::uint64_t random_offset(std::mt19937_64& random) { return (random() % (kFileSize / kBlock)) * kBlock; }

void file_read_heddle(benchmark::State& state, heddle::io::Backend backend) {
  if (backend == heddle::io::Backend::io_uring && !heddle::io::io_uring_available()) {
    state.SkipWithError("io_uring unavailable");
    return;
  }
  const std::string& path = test_file();
  for (auto _ : state) {
    heddle::Loop loop;
    heddle::io::use_backend(loop, backend);
    auto main = loop.spawn([&] {
      auto file = heddle::io::File::open(path);
      heddle::TaskGroup readers;
      for (int r = 0; r < kReaders; ++r) {
        readers.spawn([&file, r] {
          std::mt19937_64 random(static_cast<std::uint64_t>(r));
          char buffer[kBlock];
          for (int i = 0; i < kReadsPerReader; ++i) {
            if (file.read_at(buffer, kBlock, random_offset(random)) != kBlock) std::abort();
          }
        });
      }
      readers.wait();
    });
    loop.run();
    main.join();
  }
  heddle::bench::set_items_per_iteration(state, kReaders * kReadsPerReader);
}

void file_read_threads(benchmark::State& state) {
  const std::string& path = test_file();
  for (auto _ : state) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    std::vector<std::thread> readers;
    for (int r = 0; r < kReaders; ++r) {
      readers.emplace_back([fd, r] {
        std::mt19937_64 random(static_cast<std::uint64_t>(r));
        char buffer[kBlock];
        for (int i = 0; i < kReadsPerReader; ++i) {
          if (::pread(fd, buffer, kBlock, static_cast<off_t>(random_offset(random))) != kBlock) std::abort();
        }
      });
    }
    for (auto& reader : readers) reader.join();
    ::close(fd);
  }
  heddle::bench::set_items_per_iteration(state, kReaders * kReadsPerReader);
}

BENCHMARK_CAPTURE(file_read_heddle, io_uring, heddle::io::Backend::io_uring)
    ->Name("file_read/heddle_io_uring")
    ->UseRealTime();
BENCHMARK_CAPTURE(file_read_heddle, epoll, heddle::io::Backend::epoll)->Name("file_read/heddle_epoll")->UseRealTime();
BENCHMARK(file_read_threads)->Name("file_read/pread_threads")->UseRealTime();

}  // namespace
