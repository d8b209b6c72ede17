# The HTTP example server (examples/http), on each backend. Skipped when the
# example is (no http-parser, or examples not built).
if(TARGET heddle_http_example)
  heddle_add_test(io_http_tests IO_BACKENDS SOURCES http_test.cpp)
  target_link_libraries(io_http_tests PRIVATE heddle_http_example)
endif()
