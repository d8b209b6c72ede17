// Test support: what the C++ exception state shows the running code, as
// text, for the tests that check it belongs to each task.
#pragma once

#include <exception>
#include <string>

namespace heddle::support {

// What `throw;` rethrows here (call it only inside a handler).
inline std::string rethrown_message() {
  try {
    throw;
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "not a std::exception";
  }
}

// What std::current_exception holds here, or "none".
inline std::string current_message() {
  std::exception_ptr current = std::current_exception();
  if (!current) return "none";
  try {
    std::rethrow_exception(current);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "not a std::exception";
  }
}

}  // namespace heddle::support
