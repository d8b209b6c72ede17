# The sync suite on a Loop: every primitive's core behaviour run inside
# tasks, once with no scheduler and once on a heddle::Loop (run_on.hpp), and
# stress between a Loop's tasks and plain threads (label "threads", also run
# under TSan).
heddle_add_test(sync_on_loop_tests SOURCES on_loop_test.cpp)
heddle_add_test(sync_on_loop_thread_tests THREADS SOURCES on_loop_threads_test.cpp)
