// heddle arch: the C++ runtime's per-thread exception state, as a context
// switch must carry it.
//
// Owns: CxxExceptionState, a copy of what the Itanium C++ ABI's runtime
// (libsupc++ with libstdc++, libc++abi with libc++) keeps per thread in
// __cxa_eh_globals: the chain of caught exceptions (what `throw;` and
// std::current_exception read; it grows at every catch and shrinks when the
// handler ends) and the count of exceptions thrown but not yet caught (what
// std::uncaught_exceptions reads; it is non-zero while destructors run
// during unwinding).
//
// Both describe *the code that is running*, which the runtime assumes is one
// thread's. A task that parks inside a catch block, or in a destructor while
// unwinding, must take its state with it and leave the thread's as it was
// before the task ran; so every switch saves the outgoing context's state and
// installs the incoming one's (core, src/core/task.cpp: enter and leave).
// Invariant: while a context is switched out, its CxxExceptionState holds
// exactly what the runtime held for it when it left; while it runs, the
// thread's __cxa_eh_globals does.
#pragma once

namespace heddle::arch {

// The layout both runtimes give __cxa_eh_globals on x86-64 and AArch64
// (only 32-bit ARM EHABI adds a third field): the head of the caught chain,
// then the uncaught count.
struct CxxExceptionState {
  void* caught_exceptions = nullptr;
  unsigned int uncaught_exceptions = 0;
};

// The running thread's runtime state (__cxa_get_globals()). Its address is
// fixed for the thread's life, so callers look it up once per thread; it
// must not be cached across a switch after which the caller may run on
// another thread.
CxxExceptionState* thread_exception_state() noexcept;

}  // namespace heddle::arch
