# Sockets: every test runs once per backend (test names "epoll:..." and
# "io_uring:...").
heddle_add_test(io_net_tests IO_BACKENDS SOURCES net_test.cpp)
heddle_add_test(io_net_thread_tests IO_BACKENDS THREADS SOURCES net_threads_test.cpp)
heddle_add_test(io_pool_net_thread_tests IO_BACKENDS THREADS SOURCES pool_net_threads_test.cpp)
heddle_add_test(io_cluster_net_thread_tests IO_BACKENDS THREADS SOURCES cluster_net_threads_test.cpp)
# Fault injection (heddle/sys/fault.hpp): only where it is compiled in
# (the dev, dev-clang and tsan presets).
if(HEDDLE_FAULT_INJECTION)
  heddle_add_test(io_fault_tests IO_BACKENDS THREADS SOURCES fault_test.cpp)
endif()
