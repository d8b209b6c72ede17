# Closing a descriptor while tasks wait on it: every test runs once per
# backend.
heddle_add_test(io_close_tests IO_BACKENDS SOURCES close_test.cpp)
