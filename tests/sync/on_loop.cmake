# The sync suite under every scheduler: every primitive's core behaviour run
# inside tasks (run_on.hpp), with no scheduler, on a heddle::Loop and on a
# SimLoop; the same source again on Pools of 1, 2 and 8 workers (label
# "threads", also run under TSan); and stress between a Loop's tasks and
# plain threads (label "threads").
heddle_add_test(sync_on_loop_tests SOURCES on_loop_test.cpp)
heddle_add_test(sync_on_pool_thread_tests THREADS SOURCES on_loop_test.cpp)
target_compile_definitions(sync_on_pool_thread_tests PRIVATE HEDDLE_TEST_ON_POOLS)
heddle_add_test(sync_on_loop_thread_tests THREADS SOURCES on_loop_threads_test.cpp)
