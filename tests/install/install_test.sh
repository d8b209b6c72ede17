#!/usr/bin/env bash
# Installs heddle from BUILD_DIR into a fresh prefix, then builds and runs a
# consumer with find_package(heddle) (static and shared) and with
# pkg-config. Usage: install_test.sh BUILD_DIR SOURCE_DIR CXX STACK_CLASH
# (STACK_CLASH: ON when heddle was built with HEDDLE_STACK_CLASH_PROTECTION).
set -euo pipefail
build_dir=$1 source_dir=$2 cxx=$3 stack_clash=${4:-OFF}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
# The gdb extension is installed for `source`, and travels inside the
# programs (and libheddle.so) in their .debug_gdb_scripts section.
cmp "$source_dir/tools/gdb/heddle.py" "$work/prefix/share/heddle/gdb/heddle.py"

cmake -S "$source_dir/tests/install/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer_static"
sections=$(readelf -SW "$work/consumer/consumer_static")
if [[ $sections != *.debug_gdb_scripts* ]]; then
  echo "consumer_static has no .debug_gdb_scripts section (the inlined gdb extension)"; exit 1
fi
# heddle_stack_bounds() from the installed package: the tool ran before the
# link (its report names the consumer's task) and the program runs.
if [ -x "$work/consumer/consumer_bounded" ]; then
  "$work/consumer/consumer_bounded"
  report="$work/consumer/consumer_bounded_stack_bounds/stack_bounds.json"
  grep -q '"heddle_stack_bounds": 1' "$report" || { echo "no heddle-stack report at $report"; exit 1; }
  grep -q 'main()' "$report" || { echo "the report names no task of the consumer's main(): $report"; exit 1; }
fi
if [ -x "$work/consumer/consumer_shared" ]; then
  "$work/consumer/consumer_shared"
  # Capture ldd's output first: with pipefail, `ldd | grep -q` fails when
  # grep exits at its first match and ldd dies of SIGPIPE.
  libs=$(ldd "$work/consumer/consumer_shared")
  case $libs in
    *libheddle.so*) ;;
    *) echo "consumer_shared does not load libheddle.so:"; echo "$libs"; exit 1 ;;
  esac
fi

# Stack-clash protection reaches consumers through the usage requirements
# and heddle.pc, and a target opts out with HEDDLE_NO_STACK_CLASH_PROTECTION.
commands="$work/consumer/compile_commands.json"
flags_of() {  # the compile command of TARGET's main.cpp
  python3 -c 'import json,sys; print([c["command"] for c in json.load(open(sys.argv[1])) if "/"+sys.argv[2]+".dir/" in c["command"]][0])' "$commands" "$1"
}
if [ "$stack_clash" = ON ]; then
  [[ $(flags_of consumer_static) == *-fstack-clash-protection* ]] ||
    { echo "consumer_static was not compiled with -fstack-clash-protection: $(flags_of consumer_static)"; exit 1; }
  [[ $(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags heddle) == *-fstack-clash-protection* ]] ||
    { echo "heddle.pc has no -fstack-clash-protection"; exit 1; }
fi
[[ $(flags_of consumer_no_clash) != *-fstack-clash-protection* ]] ||
  { echo "consumer_no_clash opted out but got -fstack-clash-protection: $(flags_of consumer_no_clash)"; exit 1; }
"$work/consumer/consumer_no_clash"

flags=$(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs heddle)
"$cxx" -std=c++20 "$source_dir/tests/install/consumer/main.cpp" $flags -o "$work/pkgconfig_consumer"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/pkgconfig_consumer"
echo "install test: find_package and pkg-config consumers built and ran"
