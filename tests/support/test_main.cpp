// heddle tests: the main of every test program (GoogleTest's, plus the
// leak check of leak_check.hpp).
#include <gtest/gtest.h>

#include "leak_check.hpp"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  heddle::test::install_leak_check();
  return RUN_ALL_TESTS();
}
