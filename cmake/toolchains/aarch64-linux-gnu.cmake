# Cross-compiling heddle for 64-bit Arm Linux with Debian's cross toolchain
# (apt-get install g++-aarch64-linux-gnu qemu-user). Test programs run under
# qemu-user: ctest and gtest_discover_tests prefix every command with
# CMAKE_CROSSCOMPILING_EMULATOR. The `aarch64` preset uses this file.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# -L: where qemu finds the arm64 dynamic loader and libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR "qemu-aarch64;-L;/usr/aarch64-linux-gnu")

# Libraries, headers and packages only from the arm64 sysroot, never the
# host's (an x86-64 libgtest.a or liburing.so would be found and fail to
# link); programs (ninja, the host's tools) only from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
