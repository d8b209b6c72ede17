# Channel<T> and select_on: between tasks, and between threads and tasks
# (the stress tests, which also run under TSan).
heddle_add_test(sync_channel_tests SOURCES channel_test.cpp)
heddle_add_test(sync_channel_thread_tests THREADS SOURCES channel_threads_test.cpp)
