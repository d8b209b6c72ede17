// heddle core (internal): Clang's thread-safety attributes, spelled as
// macros that expand to nothing elsewhere (g++ has no such analysis).
//
// heddle's own sources are compiled with -Wthread-safety under Clang (see
// CMakeLists.txt), so a field marked HEDDLE_GUARDED_BY(lock_) read or
// written without lock_ held, or a lock left held on some path, fails the
// dev-clang build. The vocabulary is Clang's (capability, acquire, release);
// https://clang.llvm.org/docs/ThreadSafetyAnalysis.html describes it.
#pragma once

#if defined(__clang__)
#define HEDDLE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define HEDDLE_THREAD_ANNOTATION(x)
#endif

// On a lock type: it is a capability, named `name` in diagnostics.
#define HEDDLE_CAPABILITY(name) HEDDLE_THREAD_ANNOTATION(capability(name))
// On an RAII guard type: it holds a capability for its scope.
#define HEDDLE_SCOPED_CAPABILITY HEDDLE_THREAD_ANNOTATION(scoped_lockable)
// On a field: read and written only with `lock` held.
#define HEDDLE_GUARDED_BY(lock) HEDDLE_THREAD_ANNOTATION(guarded_by(lock))
// On a function: it takes, gives back, or tries to take the capability
// (`this`, when no argument is given).
#define HEDDLE_ACQUIRE(...) HEDDLE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define HEDDLE_RELEASE(...) HEDDLE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define HEDDLE_TRY_ACQUIRE(...) HEDDLE_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function: the caller must hold (or must not hold) the capability.
#define HEDDLE_REQUIRES(...) HEDDLE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define HEDDLE_EXCLUDES(...) HEDDLE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On a function whose locking the analysis cannot follow (a lock handed
// across a context switch, or taken on one object and released through
// another path); each use says why.
#define HEDDLE_NO_THREAD_SAFETY_ANALYSIS HEDDLE_THREAD_ANNOTATION(no_thread_safety_analysis)
