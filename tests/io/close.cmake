# Closing a descriptor while tasks wait on it: every test runs once per
# backend; the Pool and plain-thread closers also under TSan.
heddle_add_test(io_close_tests IO_BACKENDS SOURCES close_test.cpp)
heddle_add_test(io_close_thread_tests IO_BACKENDS THREADS SOURCES close_threads_test.cpp)
