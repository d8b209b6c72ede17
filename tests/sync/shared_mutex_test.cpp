// SharedMutex between tasks: readers together, writers alone, writer
// preference with alternating phases, cancellation, misuse.
#include <gtest/gtest.h>

#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "heddle/heddle.hpp"
#include "heddle/sync/event.hpp"
#include "heddle/sync/shared_mutex.hpp"

namespace {

TEST(SharedMutex, ReadersShareWritersExclude) {
  heddle::SharedMutex mutex;
  ASSERT_TRUE(mutex.try_lock_shared());
  ASSERT_TRUE(mutex.try_lock_shared());
  EXPECT_EQ(mutex.readers(), 2u);
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock_shared();
  mutex.unlock_shared();
  ASSERT_TRUE(mutex.try_lock());
  EXPECT_FALSE(mutex.try_lock_shared());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();
  {
    std::shared_lock reader(mutex);
    EXPECT_EQ(mutex.readers(), 1u);
  }
  {
    std::unique_lock writer(mutex);
    EXPECT_FALSE(mutex.try_lock_shared());
  }
  EXPECT_EQ(mutex.readers(), 0u);
}

// A waiting writer stops new readers (they queue behind it), and gets the
// mutex when the readers already in leave.
TEST(SharedMutex, AQueuedWriterGoesBeforeReadersThatCameAfterIt) {
  heddle::SharedMutex mutex;
  std::vector<std::string> log;
  mutex.lock_shared();  // a reader holds it (this thread)
  auto writer = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    log.push_back("writer");
  });
  EXPECT_EQ(mutex.waiting_writers(), 1u);
  EXPECT_FALSE(mutex.try_lock_shared());  // would overtake the writer
  auto late_reader = heddle::spawn([&] {
    std::shared_lock lock(mutex);
    log.push_back("reader");
  });
  EXPECT_EQ(mutex.waiting_readers(), 1u);
  mutex.unlock_shared();
  EXPECT_EQ(log, (std::vector<std::string>{"writer", "reader"}));
  writer.join();
  late_reader.join();
}

// A writer's unlock admits the readers queued meanwhile before the next
// writer: neither side starves.
TEST(SharedMutex, WriterUnlockAdmitsQueuedReadersBeforeTheNextWriter) {
  heddle::SharedMutex mutex;
  heddle::Event readers_done;
  std::vector<std::string> log;
  mutex.lock();
  auto r1 = heddle::spawn([&] {
    std::shared_lock lock(mutex);
    log.push_back("r1");
    readers_done.wait();
  });
  auto w2 = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    log.push_back("w2");
  });
  auto r2 = heddle::spawn([&] {
    std::shared_lock lock(mutex);
    log.push_back("r2");
    readers_done.wait();
  });
  EXPECT_EQ(mutex.waiting_readers(), 2u);
  EXPECT_EQ(mutex.waiting_writers(), 1u);
  mutex.unlock();
  EXPECT_EQ(mutex.readers(), 2u);  // both readers in together
  EXPECT_EQ(log, (std::vector<std::string>{"r1", "r2"}));
  EXPECT_EQ(mutex.waiting_writers(), 1u);
  readers_done.set();
  EXPECT_EQ(log, (std::vector<std::string>{"r1", "r2", "w2"}));
  r1.join();
  w2.join();
  r2.join();
}

TEST(SharedMutex, CancelledWriterLetsTheReadersItHeldBackIn) {
  heddle::SharedMutex mutex;
  bool writer_ran = false;
  bool reader_ran = false;
  mutex.lock_shared();
  auto writer = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    writer_ran = true;
  });
  auto reader = heddle::spawn([&] {
    std::shared_lock lock(mutex);
    reader_ran = true;
  });
  EXPECT_FALSE(reader_ran);  // held back by the queued writer
  writer.cancel();
  EXPECT_TRUE(reader_ran);  // nothing stops it any more
  EXPECT_THROW(writer.join(), heddle::Cancelled);
  EXPECT_FALSE(writer_ran);
  EXPECT_EQ(mutex.waiting_writers(), 0u);
  mutex.unlock_shared();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
  reader.join();
}

TEST(SharedMutex, CancelledWaitersTakeNothingAndTheNextWaiterGetsIt) {
  heddle::SharedMutex mutex;
  int got = 0;
  mutex.lock();
  auto reader = heddle::spawn([&] {
    std::shared_lock lock(mutex);
    got += 1;
  });
  auto writer1 = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    got += 10;
  });
  auto writer2 = heddle::spawn([&] {
    std::unique_lock lock(mutex);
    got += 100;
  });
  reader.cancel();
  writer1.cancel();
  EXPECT_EQ(mutex.waiting_readers(), 0u);
  EXPECT_EQ(mutex.waiting_writers(), 1u);
  mutex.unlock();
  EXPECT_EQ(got, 100);
  EXPECT_EQ(mutex.readers(), 0u);
  EXPECT_THROW(reader.join(), heddle::Cancelled);
  EXPECT_THROW(writer1.join(), heddle::Cancelled);
  writer2.join();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

TEST(SharedMutex, MisuseThrowsLogicError) {
  heddle::SharedMutex mutex;
  try {
    mutex.unlock_shared();
    FAIL() << "unlock_shared with no reader did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("heddle::SharedMutex::unlock_shared"), std::string::npos) << e.what();
  }
  EXPECT_THROW(mutex.unlock(), std::logic_error);
  mutex.lock_shared();
  EXPECT_THROW(mutex.unlock(), std::logic_error);  // a reader cannot unlock the writer side
  mutex.unlock_shared();
  mutex.lock();
  EXPECT_THROW(mutex.lock(), std::logic_error);         // self-deadlock
  EXPECT_THROW(mutex.lock_shared(), std::logic_error);  // would wait for itself
  auto other = heddle::spawn([&] { EXPECT_THROW(mutex.unlock(), std::logic_error); });
  other.join();
  mutex.unlock();
  EXPECT_TRUE(mutex.try_lock_shared());
  mutex.unlock_shared();
}

TEST(SharedMutexDeathTest, DestroyingASharedMutexWithWaitersAborts) {
  EXPECT_DEATH(
      {
        auto* mutex = new heddle::SharedMutex;
        mutex->lock();
        heddle::spawn([mutex] { mutex->lock_shared(); }, {.name = "reader"}).detach();
        delete mutex;
      },
      "heddle::SharedMutex at 0x[0-9a-f]+ destroyed while 1 waiter is parked on it; the first: task [0-9]+ \"reader\" spawned at .*shared_mutex_test.cpp:[0-9]+");
}

}  // namespace
