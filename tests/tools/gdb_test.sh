#!/usr/bin/env bash
# Debugs tests/tools/gdb_target.cpp with gdb and heddle's extension
# (tools/gdb/heddle.py), once auto-loaded from the program's
# .debug_gdb_scripts section and once sourced by hand, and checks what it
# prints: the task list, a parked task's backtrace, selecting a task, and
# the errors for a running and an unknown task.
#   gdb_test.sh GDB TARGET SCRIPT
set -euo pipefail
gdb=$1 target=$2 script=$3

fail() {
  echo "gdb_test: FAILED: $1" >&2
  echo "----- gdb output -----" >&2
  cat "$output" >&2
  exit 1
}
expect() {  # expect REGEX WHAT
  grep -Eq -- "$1" "$output" || fail "$2 (no line matches /$1/)"
}
expect_order() {  # expect_order A B C: lines matching them appear in this order
  local last=0 line
  for pattern in "$@"; do
    line=$(grep -En -- "$pattern" "$output" | head -1 | cut -d: -f1 || true)
    [ -n "$line" ] || fail "no line matches /$pattern/"
    [ "$line" -gt "$last" ] || fail "/$pattern/ is not after the line before it"
    last=$line
  done
}

# LeakSanitizer cannot run under ptrace: the sanitized builds' target would
# fail at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
output=$(mktemp)
trap 'rm -f "$output"' EXIT

run_gdb() {  # run_gdb LOAD-OPTIONS...
  "$gdb" -nx -batch "$@" \
    -ex 'set pagination off' -ex 'set confirm off' \
    -ex 'break heddle_gdb_test_stop' -ex run \
    -ex 'echo === info\n' -ex 'info heddle-tasks' \
    -ex 'echo === bt\n' -ex 'heddle-bt $heddle_task_id("gdb-parked")' \
    -ex 'echo === select\n' -ex 'heddle-task $heddle_task_id("gdb-parked")' -ex 'bt' -ex 'info heddle-tasks' \
    -ex 'echo === unselect\n' -ex 'heddle-task' \
    -ex 'echo === errors\n' -ex 'heddle-bt $heddle_task_id("gdb-running")' -ex 'heddle-bt 987654321' \
    -ex 'echo === continue\n' -ex continue \
    "$target" >"$output" 2>&1 || true
}

check() {  # check HOW-LOADED
  echo "gdb_test: checking with the script $1"
  expect '^=== continue' "gdb ran every command ($1)"
  # The list: both tasks, their states and names.
  expect '^ +[0-9]+ +parked at heddle::sync wait +"gdb-parked" +.*gdb_target\.cpp:[0-9]+ in' "the parked task listed"
  expect '^ +[0-9]+ +running on thread [0-9]+ \(gdb thread 1\) +"gdb-running"' "the running task listed"
  # heddle-bt: the three levels of the parked task, innermost first, then main's lambda.
  sed -n '/^=== bt/,/^=== select/p' "$output" >"$output.bt"
  mv "$output.bt" "$output.part"
  local whole=$output
  output=$output.part
  expect '^task [0-9]+ "gdb-parked": parked at heddle::sync wait' "heddle-bt's header"
  expect_order '^#0 ' 'parked_level_three' 'parked_level_two' 'parked_level_one' 'gdb_target\.cpp:29' 'task_entry'
  output=$whole
  # heddle-task: gdb's own bt goes through the task's frames; the list marks it.
  sed -n '/^=== select/,/^=== unselect/p' "$output" >"$output.part"
  output=$output.part
  expect '^heddle: selected task [0-9]+ "gdb-parked"' "heddle-task's message"
  expect_order '^#1 .*parked_level_three|^#1 .*heddle' 'parked_level_three' 'parked_level_one'
  expect '^\* +[0-9]+ +parked at heddle::sync wait +"gdb-parked"' "the selected task marked in the list"
  output=$whole
  expect '^heddle: task [0-9]+ is no longer selected' "heddle-task without an id"
  expect 'heddle: task [0-9]+ is running on thread [0-9]+ \(gdb thread 1\)' "heddle-bt on a running task"
  expect 'heddle: no live task has id 987654321' "heddle-bt on an unknown id"
  expect '^gdb target: done' "the program ran on to its end after the session"
  expect 'exited normally' "the program exited normally"
  rm -f "$output.part"
}

# Auto-loaded from the .debug_gdb_scripts section once the program is trusted.
run_gdb -iex "add-auto-load-safe-path $target"
check "auto-loaded from the program"
# Sourced by hand (auto-loading off), as the README tells for installed copies.
run_gdb -iex 'set auto-load python-scripts off' -ex "source $script"
check "sourced by hand"
echo "gdb_test: passed"
