// heddle core (internal): ResultSlot<T>, where a callable's result waits
// for whoever collects it: a task's result until join(), a blocking() call's
// until the parked task resumes. References are kept as pointers (the
// referent outlives the call by the callable's own contract).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <utility>

namespace heddle::detail {

template <class T>
struct ResultSlot {
  std::optional<T> value;
  template <class F>
  void run(F& f) { value.emplace(std::invoke(f)); }
  T take() { return std::move(*value); }
};
template <class T>
struct ResultSlot<T&> {
  T* value = nullptr;
  template <class F>
  void run(F& f) { value = std::addressof(std::invoke(f)); }
  T& take() { return *value; }
};
template <class T>
struct ResultSlot<T&&> {
  T* value = nullptr;
  template <class F>
  void run(F& f) {
    T&& returned = std::invoke(f);  // named, so an lvalue whose address can be kept
    value = std::addressof(returned);
  }
  T&& take() { return std::move(*value); }
};
template <>
struct ResultSlot<void> {
  template <class F>
  void run(F& f) { std::invoke(f); }
  void take() {}
};

}  // namespace heddle::detail
