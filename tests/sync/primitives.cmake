# Mutex, SharedMutex, CondVar, Semaphore, WaitGroup, Barrier, Once: one test
# file per primitive; the *_threads_test files start threads (label
# "threads", also run under TSan).
heddle_add_test(sync_primitive_tests SOURCES
  mutex_test.cpp
  shared_mutex_test.cpp
  cond_var_test.cpp
  semaphore_test.cpp
  wait_group_test.cpp
  barrier_test.cpp
  once_test.cpp)
heddle_add_test(sync_primitive_thread_tests THREADS SOURCES
  mutex_threads_test.cpp
  shared_mutex_threads_test.cpp
  cond_var_threads_test.cpp
  semaphore_threads_test.cpp
  wait_group_threads_test.cpp
  barrier_threads_test.cpp
  once_threads_test.cpp
  primitives_stress_threads_test.cpp)
