# heddle::blocking(f) and its pool (starts threads: label "threads", run under TSan too).
heddle_add_test(io_blocking_tests THREADS SOURCES blocking_test.cpp)
