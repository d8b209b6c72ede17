# scripts/bench's baseline (HEDDLE_BENCH_BASELINE=<git revision>): heddle's
# figures of another revision, measured in the same run as the current
# tree's. Sourced by scripts/bench, not run.
#
#   baseline_resolve REV   sets baseline_full and baseline_sha (its short
#                          form), or fails with a message on stderr
#   baseline_prepare       checks the revision out in a detached git worktree
#                          at build/baseline/<short-sha>/ (reused when it is
#                          already there at that revision) and builds its
#                          bench preset in it; sets baseline_bench_dir, or
#                          clears baseline_sha when that fails. Comment lines
#                          for the results go to baseline_notes.
#   baseline_cxx NAME      runs the baseline's bench binary NAME (core_bench,
#                          ...) on its heddle figures that match $filter,
#                          relabelled by baseline_lines
#   baseline_lines         relabels a baseline program's output: every
#                          "<figure> <impl> <value> <unit>" line becomes
#                          "<figure> <impl>@<short-sha> <value> <unit>"
#   baseline_ratio FIGURE  "ratio FIGURE heddle/heddle@<short-sha> <value>",
#                          read from $results (nothing when neither figure is)
#
# Uses scripts/bench's root, filter, cxx_args and results, and build_preset
# (scripts/lib/common.sh).

baseline_full=""
baseline_sha=""
baseline_dir=""
baseline_bench_dir=""
baseline_notes=()

baseline_resolve() {
  baseline_full=$(git -C "$root" rev-parse --verify --quiet "$1^{commit}") || {
    echo "heddle: HEDDLE_BENCH_BASELINE=$1 is not a git revision of $root" >&2
    return 1
  }
  baseline_sha=$(git -C "$root" rev-parse --short "$baseline_full")
}

baseline_prepare() {
  local rev=${HEDDLE_BENCH_BASELINE:-$baseline_full}
  baseline_dir=$root/build/baseline/$baseline_sha
  local about
  about=$(git -C "$root" log -1 --format='%h %cs "%s"' "$baseline_full")
  baseline_notes+=("# baseline: heddle@$baseline_sha is $about (HEDDLE_BENCH_BASELINE=$rev), in the worktree build/baseline/$baseline_sha")
  # Its own worktree: .git is a file there. (git -C on a plain directory
  # would find this tree's repository instead.)
  if [ -e "$baseline_dir/.git" ]; then
    if [ "$(git -C "$baseline_dir" rev-parse HEAD 2>/dev/null)" != "$baseline_full" ]; then
      echo "heddle: $baseline_dir is not at $baseline_sha: checking it out there" >&2
      if ! git -C "$baseline_dir" checkout -q --detach "$baseline_full" >&2; then
        baseline_fail "could not check $baseline_sha out in $baseline_dir"
        return 1
      fi
    fi
    if [ -n "$(git -C "$baseline_dir" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      baseline_notes+=("# baseline: warning: $baseline_dir has local changes: they are measured too")
    fi
  elif [ -e "$baseline_dir" ]; then
    baseline_fail "$baseline_dir exists but is not a git worktree (remove it)"
    return 1
  else
    mkdir -p "$(dirname "$baseline_dir")"
    # -f: also when a worktree once registered there was deleted by hand.
    if ! git -C "$root" worktree add --detach "$baseline_dir" "$baseline_full" >&2 &&
       ! git -C "$root" worktree add -f --detach "$baseline_dir" "$baseline_full" >&2; then
      baseline_fail "git worktree add $baseline_dir failed"
      return 1
    fi
  fi
  echo "heddle: building the bench preset of the baseline $baseline_sha in $baseline_dir" >&2
  if ! (cd "$baseline_dir" && build_preset bench) >&2; then
    baseline_fail "its bench preset failed to build (see above)"
    return 1
  fi
  baseline_bench_dir=$baseline_dir/build/bench/bench
}

# baseline_fail WHY: no baseline figures in this run.
baseline_fail() {
  baseline_notes+=("# baseline $baseline_sha: $1: no heddle@$baseline_sha figures, the current ones only")
  baseline_sha=""
  baseline_bench_dir=""
}

baseline_lines() {
  awk -v sha="$baseline_sha" '
    /^#/ { sub(/^# ?/, "# [baseline @" sha "] "); print; next }
    NF >= 4 { $2 = $2 "@" sha; print; next }
    NF > 0 { print "# [baseline @" sha "] " $0 }'
}

baseline_cxx() {
  local name=$1
  local binary=$baseline_bench_dir/$name
  if [ ! -x "$binary" ]; then
    echo "# $name@$baseline_sha: the baseline has no $name: no figures of it"
    return 0
  fi
  # Its benchmarks that match the filter, of heddle only (the peers in the
  # same binary are measured once, by the current tree's), as an exact
  # --benchmark_filter: ^(switch/heddle/real_time|...)$.
  local names
  names=$("$binary" --benchmark_list_tests=true "${cxx_args[@]}" 2>/dev/null |
    awk -F/ 'NF >= 2 && $2 ~ /^heddle/' | sed 's/[][\\.*^$+?(){}|]/\\&/g' | paste -sd'|')
  [ -z "$names" ] && return 0
  "$binary" "--benchmark_filter=^($names)\$" | baseline_lines ||
    echo "# $name@$baseline_sha failed"
}

baseline_ratio() {
  awk -v fig="$1" -v b="heddle@$baseline_sha" '
    $1 == fig && $2 == "heddle" { va = $3; unit = $4 }
    $1 == fig && $2 == b { vb = $3; unit = $4 }
    END {
      if (va == "" && vb == "") exit
      # Rates (req/s, msg/s) are better higher, everything else (ns, ms,
      # bytes) lower.
      how = (unit ~ /\/s$/) ? "rate: > 1 is faster" : "time: < 1 is faster"
      if (unit == "bytes") how = "memory: < 1 is smaller"
      printf "ratio %s heddle/%s ", fig, b
      if (va == "" || vb == "" || vb + 0 == 0) { printf "n/a (%s figure missing)\n", va == "" ? "heddle" : b; exit }
      printf "%.2f (%s)\n", va / vb, how
    }' "$results"
}
