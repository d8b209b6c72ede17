// heddle core: wrappers that run libgcc's unwinder off a task's stack.
//
// Owns: __wrap__Unwind_RaiseException, __wrap__Unwind_Resume and
// __wrap__Unwind_Resume_or_Rethrow. A program linked with
//   -Wl,--wrap=_Unwind_RaiseException,--wrap=_Unwind_Resume,--wrap=_Unwind_Resume_or_Rethrow
// (heddle_stack_bounds() links so, and its generated source includes this
// header: exactly one translation unit of a program may) sends every throw,
// rethrow and cleanup resume through these. On a task's stack each runs the
// real function on its thread's unwind stack (run_on_unwind_stack in
// src/core/task.cpp), through heddle_call_on_stack, whose call frame
// information chains the unwind stack's frames back to the task's: the
// unwinder walks from there into the task's frames as if it ran in place, and
// lands on the handler with the task's own stack pointer. What a throw then
// leaves on the task's stack is __cxa_throw, its allocation and these few
// frames, not the unwinder's 2 to 5 KiB.
//
// None of these frames may be noexcept or hold a cleanup: the exception
// being raised unwinds through them.
#pragma once

#include <unwind.h>

extern "C" {
_Unwind_Reason_Code __real__Unwind_RaiseException(_Unwind_Exception* exception);
_Unwind_Reason_Code __real__Unwind_Resume_or_Rethrow(_Unwind_Exception* exception);
[[noreturn]] void __real__Unwind_Resume(_Unwind_Exception* exception);
}  // extern "C"

namespace heddle::detail {

bool run_on_unwind_stack(void (*function)(void*), void* argument);

// Runs Real(exception) on the unwind stack when on a task's stack, in place
// otherwise. Returns only when it does (no handler was found, or an error):
// on success the unwinder lands on the handler, on the task's stack.
template <_Unwind_Reason_Code (*Real)(_Unwind_Exception*)>
_Unwind_Reason_Code unwind_off_task_stack(_Unwind_Exception* exception) {
  struct Call {
    _Unwind_Exception* exception;
    _Unwind_Reason_Code code;
  } call{exception, _URC_NO_REASON};
  auto run = [](void* context) {
    auto* call = static_cast<Call*>(context);
    call->code = Real(call->exception);
  };
  if (!run_on_unwind_stack(run, &call)) return Real(exception);
  return call.code;
}

}  // namespace heddle::detail

extern "C" {
_Unwind_Reason_Code __wrap__Unwind_RaiseException(_Unwind_Exception* exception) {
  return heddle::detail::unwind_off_task_stack<&__real__Unwind_RaiseException>(exception);
}

_Unwind_Reason_Code __wrap__Unwind_Resume_or_Rethrow(_Unwind_Exception* exception) {
  return heddle::detail::unwind_off_task_stack<&__real__Unwind_Resume_or_Rethrow>(exception);
}

[[noreturn]] void __wrap__Unwind_Resume(_Unwind_Exception* exception) {
  auto resume = [](void* context) { __real__Unwind_Resume(static_cast<_Unwind_Exception*>(context)); };
  heddle::detail::run_on_unwind_stack(resume, exception);
  __real__Unwind_Resume(exception);  // not on a task (_Unwind_Resume never returns)
}
}  // extern "C"
