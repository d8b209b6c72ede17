heddle_add_test(io_file_tests IO_BACKENDS SOURCES file_test.cpp)
