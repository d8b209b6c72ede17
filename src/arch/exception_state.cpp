// heddle arch: where the C++ runtime keeps the thread's exception state.
#include "heddle/arch/exception_state.hpp"

#include <cxxabi.h>

#include <cstddef>

namespace heddle::arch {

// __cxa_eh_globals is opaque in <cxxabi.h>; its first two fields are those
// of CxxExceptionState in libsupc++ and libc++abi alike (the ABI's
// "Exception Handling Globals"). The checks in tests/core/exception_state_test.cpp
// (`throw;`, std::current_exception and std::uncaught_exceptions seen from
// tasks parked in handlers and mid-unwind) fail if the layout ever differs.
CxxExceptionState* thread_exception_state() noexcept {
  return reinterpret_cast<CxxExceptionState*>(abi::__cxa_get_globals());
}

}  // namespace heddle::arch
