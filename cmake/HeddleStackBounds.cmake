# heddle_stack_bounds(<target>): spawn sizes <target>'s task stacks from
# proven bounds (GCC).
#
# The target is compiled with -fcallgraph-info=su (a .ci call graph beside
# each object) and, on x86-64 as heddle is, -mno-red-zone (so GCC's frame
# sizes are each function's whole use: no leaf writes below its stack
# pointer, and the bound needs no red-zone margin), and linked with -z now, -static-libstdc++ and -static-libgcc:
# then no lazy-binding resolver ever runs on a task's stack (it needs about
# 3 KiB there, and libstdc++'s and libgcc's own calls into libc would go
# through it even in a -z now program), and the tool may use its "now"
# figures. The target must link heddle's static library (heddle::heddle),
# not libheddle.so, which brings the shared C++ runtime. Before the target
# links, tools/heddle-stack reads its call graph and heddle's, bounds every
# task entry (each callable type the target spawns), and writes
# <binary dir>/<target>_stack_bounds/stack_bounds.cpp, a registration of
# the bounds that is compiled and linked into the target (with the unwinder
# wrappers: see HEDDLE_UNWINDER_WRAP_OPTIONS below); the tool's full
# report, with the reason for each entry it could not bound, is
# stack_bounds.json beside it. At run time spawn(f) of a bounded callable,
# with no pool or stack named, takes a stack of exactly its bound (below a
# page: a sub-page slab stack).
#
# Clang has no -fcallgraph-info: the helper then says so and does nothing;
# HEDDLE_STACK_REPORT=<file> measures what the tasks use instead.

# The unwinder's entry points, wrapped (include/heddle/core/detail/
# unwinder_wrappers.hpp, which the generated source includes) so that an
# exception thrown on a task's stack is unwound from the thread's unwind
# stack: the bounds then need not hold libgcc's unwinder.
set(HEDDLE_UNWINDER_WRAP_OPTIONS
    -Wl,--wrap=_Unwind_RaiseException -Wl,--wrap=_Unwind_Resume -Wl,--wrap=_Unwind_Resume_or_Rethrow)

function(heddle_stack_bounds target)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    message(STATUS "heddle_stack_bounds(${target}): ${CMAKE_CXX_COMPILER_ID} has no -fcallgraph-info, so there are "
                   "no static stack bounds; tasks keep their pools (HEDDLE_STACK_REPORT=<file> measures them)")
    return()
  endif()
  if(NOT HEDDLE_CALLGRAPH_DIR OR NOT HEDDLE_STACK_TOOL OR NOT HEDDLE_STACK_INCLUDE_DIR)
    message(FATAL_ERROR "heddle_stack_bounds(${target}): heddle's call graph or tools/heddle-stack was not found "
                        "(HEDDLE_CALLGRAPH_DIR, HEDDLE_STACK_TOOL); heddle must be built with GCC")
  endif()
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target}_stack_bounds)
  file(MAKE_DIRECTORY ${dir})
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fcallgraph-info=su>)
  set(red_zone)
  if(HEDDLE_NO_RED_ZONE)
    # As heddle itself is: no leaf writes below its stack pointer, so the
    # bound needs no red-zone margin.
    target_compile_options(${target} PRIVATE -mno-red-zone)
    set(red_zone --no-red-zone)
  endif()
  target_link_options(${target} PRIVATE -Wl,-z,now -static-libstdc++ -static-libgcc ${HEDDLE_UNWINDER_WRAP_OPTIONS}
                      ${dir}/stack_bounds.o)
  add_custom_command(TARGET ${target} PRE_LINK
    COMMAND ${Python3_EXECUTABLE} ${HEDDLE_STACK_TOOL} --binding now ${red_zone} --quiet --target ${target}
            --generate ${dir}/stack_bounds.cpp --json ${dir}/stack_bounds.json
            ${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/${target}.dir --library ${HEDDLE_CALLGRAPH_DIR}
    COMMAND ${CMAKE_CXX_COMPILER} -std=c++20 -O2 -fPIC -I${HEDDLE_STACK_INCLUDE_DIR}
            -c ${dir}/stack_bounds.cpp -o ${dir}/stack_bounds.o
    VERBATIM
    COMMENT "heddle: bounding the task stacks of ${target} (tools/heddle-stack)")
endfunction()
