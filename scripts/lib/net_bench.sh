# The network figures' harness: runs one server under load and prints its
# median, in scripts/bench's line format. Sourced by scripts/bench, not run.
#
#   net_bench_http IMPL CMD...   http_hello_c<N> IMPL <median> req/s, for each
#                                N in NET_HTTP_CONNECTIONS (default "100 1000"),
#                                measured with wrk
#   net_bench_echo IMPL CMD...   echo_pingpong IMPL <median> msg/s, measured
#                                with NET_ECHO_CLIENT (echo_load_client)
#
# CMD... starts the server; a free port is appended to it, and the server must
# listen on 127.0.0.1 at that port, single-threaded (GOMAXPROCS=1 is set for
# Go). The server runs pinned to one cpu (taskset -c 0) and the load
# generator to another (taskset -c 1), unpinned when there is only one cpu or
# no taskset. Every figure gets a fresh server, a short warm-up, then NET_REPS
# measured runs; the server is always stopped afterwards, also on Ctrl-C (the
# functions set EXIT/INT/TERM traps while a server runs, then clear them).
# A server that does not start, dies, or fails the load generator's checks
# gets a '# ...' comment line instead of a figure; nothing aborts.
#
# Environment:
#   NET_SECONDS        seconds per measured run (default 5)
#   NET_REPS           measured runs per figure (default $REPS, else 3)
#   NET_WARMUP         seconds of warm-up load before the runs (default 1)
#   NET_HTTP_CONNECTIONS  wrk connection counts (default "100 1000")
#   NET_ECHO_CONNECTIONS  echo connections (default 1000), NET_ECHO_SIZE (64)
#   NET_ECHO_CLIENT    the echo load generator (build/bench/bench/echo_load_client)
#   NET_SERVER_CPU, NET_CLIENT_CPU  override the two cpus (default: the first
#                      two this process may run on)
#   NET_START_TIMEOUT  seconds a server gets to accept connections (default 10)

_net_ready=0
_net_pid=""
_net_pgroup=0
_net_port=""
_net_rate=""
_net_tmp=""
_net_server_pin=()
_net_client_pin=()

# Comments about how the figures are taken, once per run; raises the
# descriptor limit (1,000 connections on each side).
_net_setup() {
  [ "$_net_ready" -eq 1 ] && return 0
  _net_ready=1
  local hard
  hard=$(ulimit -Hn)
  ulimit -n "$hard" 2>/dev/null
  if [ "$hard" != unlimited ] && [ "$hard" -lt 1100 ]; then
    echo "# net: open-file hard limit is $hard: the 1,000-connection figures use fewer connections or fail"
  fi
  local cpus=()
  local list range
  list=$(awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status 2>/dev/null)
  for range in ${list//,/ }; do
    if [[ $range == *-* ]]; then
      mapfile -t -O ${#cpus[@]} cpus < <(seq "${range%-*}" "${range#*-}")
    else
      cpus+=("$range")
    fi
  done
  [ ${#cpus[@]} -eq 0 ] && mapfile -t cpus < <(seq 0 $(($(nproc) - 1)))
  local server_cpu=${NET_SERVER_CPU:-${cpus[0]}}
  local client_cpu=${NET_CLIENT_CPU:-${cpus[1]:-}}
  if [ ${#cpus[@]} -lt 2 ] && [ -z "${NET_CLIENT_CPU:-}" ]; then
    echo "# net: only ${#cpus[@]} cpu: servers and load generators run unpinned, sharing it"
  elif ! command -v taskset >/dev/null; then
    echo "# net: taskset not found (util-linux): servers and load generators run unpinned"
  elif ! taskset -c "$server_cpu" true 2>/dev/null || ! taskset -c "$client_cpu" true 2>/dev/null; then
    echo "# net: taskset -c $server_cpu / -c $client_cpu refused: servers and load generators run unpinned"
  else
    _net_server_pin=(taskset -c "$server_cpu")
    _net_client_pin=(taskset -c "$client_cpu")
    echo "# net: servers on cpu $server_cpu, load generators on cpu $client_cpu;" \
      "median of $(_net_reps) runs of ${NET_SECONDS:-5} s after ${NET_WARMUP:-1} s of warm-up"
  fi
  # Other work on these two cpus skews the figures: say how busy they were.
  echo "# net: load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null) before the first server"
}

_net_reps() { echo "${NET_REPS:-${REPS:-3}}"; }

# A port nothing listens on, below the ephemeral range.
_net_pick_port() {
  local port _
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + RANDOM % 12000))
    if command -v ss >/dev/null; then
      [ -z "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && { echo "$port"; return 0; }
    elif ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "$port"
}

# _net_stop: stops the server (its whole process group when setsid could
# make one), waiting for it; clears the traps.
_net_stop() {
  if [ -n "$_net_pid" ]; then
    local target=$_net_pid
    [ "$_net_pgroup" = 1 ] && target=-$_net_pid
    kill -TERM -- "$target" 2>/dev/null
    local i
    for i in $(seq 1 30); do
      kill -0 "$_net_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "$target" 2>/dev/null
    wait "$_net_pid" 2>/dev/null
    _net_pid=""
  fi
  trap - EXIT INT TERM
}

_net_cleanup() {
  _net_stop
  [ -n "$_net_tmp" ] && rm -rf "$_net_tmp"
  _net_tmp=""
}

# _net_start LABEL CMD...: starts the server with a free port appended and
# waits until it accepts connections. Fails with a comment line.
_net_start() {
  local label=$1
  shift
  if ! command -v "$1" >/dev/null; then
    echo "# $label: server not found: $1"
    return 1
  fi
  [ -n "$_net_tmp" ] || _net_tmp=$(mktemp -d "${TMPDIR:-/tmp}/heddle-net.XXXXXX")
  trap '_net_cleanup' EXIT
  trap '_net_cleanup; exit 130' INT
  trap '_net_cleanup; exit 143' TERM
  # setsid gives the server a process group of its own (it execs, keeping
  # the pid), so a server that is a wrapper script is stopped whole.
  local setsid=()
  command -v setsid >/dev/null && setsid=(setsid)
  local _
  for _ in 1 2 3; do
    _net_port=$(_net_pick_port)
    GOMAXPROCS=1 "${setsid[@]}" "${_net_server_pin[@]}" "$@" "$_net_port" \
      </dev/null >"$_net_tmp/server.log" 2>&1 &
    _net_pid=$!
    local deadline=$((SECONDS + ${NET_START_TIMEOUT:-10}))
    while [ $SECONDS -le $deadline ]; do
      if ! kill -0 "$_net_pid" 2>/dev/null; then
        break
      fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$_net_port") 2>/dev/null; then
        _net_pgroup=0
        [ "$(ps -o pgid= -p "$_net_pid" 2>/dev/null | tr -d ' ')" = "$_net_pid" ] && _net_pgroup=1
        return 0
      fi
      sleep 0.1
    done
    if kill -0 "$_net_pid" 2>/dev/null; then
      echo "# $label: server did not accept connections on port $_net_port within ${NET_START_TIMEOUT:-10} s: $*"
      _net_stop
      return 1
    fi
    wait "$_net_pid" 2>/dev/null
    _net_pid=""
    # A port taken between the check and the bind: try another one.
    grep -qiE 'in use|EADDRINUSE' "$_net_tmp/server.log" 2>/dev/null && continue
    break
  done
  echo "# $label: server failed to start: $* $_net_port"
  sed 's/^/#   /' "$_net_tmp/server.log" | tail -n 5
  _net_stop
  return 1
}

# _net_alive LABEL: true while the server runs; a comment when it died.
_net_alive() {
  kill -0 "$_net_pid" 2>/dev/null && return 0
  echo "# $1: the server exited during the run"
  sed 's/^/#   /' "$_net_tmp/server.log" | tail -n 5
  return 1
}

# _net_median VALUE...: the median (the mean of the middle two for an even count).
_net_median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { if (NR % 2) printf "%.0f\n", v[(NR + 1) / 2]; else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# _net_wrk LABEL CONNECTIONS SECONDS: one wrk run against the server; sets
# _net_rate to its requests per second, or prints comment lines and fails.
_net_wrk() {
  local label=$1 out line
  _net_rate=""
  out=$("${_net_client_pin[@]}" wrk -t1 -c"$2" -d"$3"s --latency "http://127.0.0.1:$_net_port/" 2>&1)
  line=$(grep -E 'Socket errors|Non-2xx or 3xx' <<<"$out" | sed 's/^ *//' | tr '\n' ' ')
  [ -n "$line" ] && echo "# $label: wrk: $line"
  if grep -q 'Non-2xx or 3xx' <<<"$out"; then
    return 1
  fi
  _net_rate=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  if [ -z "$_net_rate" ] || awk -v r="$_net_rate" 'BEGIN { exit !(r + 0 <= 0) }'; then
    echo "# $label: wrk measured no successful requests"
    [ -z "$line" ] && tail -n 3 <<<"$out" | sed 's/^/#   /'
    _net_rate=""
    return 1
  fi
}

# net_bench_http IMPL CMD...: the http_hello figures of one server.
net_bench_http() {
  local impl=$1
  shift
  _net_setup
  if ! command -v wrk >/dev/null; then
    echo "# http_hello $impl: wrk not found (apt-get install wrk): skipped"
    return 0
  fi
  local connections reps i label values failed
  reps=$(_net_reps)
  for connections in ${NET_HTTP_CONNECTIONS:-100 1000}; do
    label="http_hello_c$connections $impl"
    _net_start "$label" "$@" || continue
    if [ "${NET_WARMUP:-1}" != 0 ]; then
      _net_wrk "$label (warm-up)" "$connections" "${NET_WARMUP:-1}" >/dev/null
    fi
    values=()
    failed=0
    for ((i = 0; i < reps; i++)); do
      _net_alive "$label" || { failed=1; break; }
      if _net_wrk "$label" "$connections" "${NET_SECONDS:-5}"; then
        values+=("$_net_rate")
      else
        failed=1
        break  # a misbehaving server: no point in more runs
      fi
    done
    [ $failed -eq 0 ] && { _net_alive "$label" || failed=1; }
    _net_stop
    if [ ${#values[@]} -gt 0 ] && [ $failed -eq 0 ]; then
      echo "# $label runs: ${values[*]} req/s"
      echo "$label $(_net_median "${values[@]}") req/s"
    else
      echo "# $label: no figure (${#values[@]} of $reps runs succeeded)"
    fi
  done
  _net_cleanup
}

# net_bench_echo IMPL CMD...: the echo_pingpong figure of one server.
net_bench_echo() {
  local impl=$1
  shift
  _net_setup
  local label="echo_pingpong $impl"
  local client=${NET_ECHO_CLIENT:-}
  if [ -z "$client" ] || [ ! -x "$client" ]; then
    echo "# $label: the echo load generator (NET_ECHO_CLIENT=${client:-unset}) is not built: skipped"
    return 0
  fi
  local connections=${NET_ECHO_CONNECTIONS:-1000}
  local reps i out rate used values=() failed=0
  reps=$(_net_reps)
  _net_start "$label" "$@" || { _net_cleanup; return 0; }
  for ((i = 0; i < reps; i++)); do
    _net_alive "$label" || { failed=1; break; }
    out=$("${_net_client_pin[@]}" "$client" --port "$_net_port" --connections "$connections" \
      --size "${NET_ECHO_SIZE:-64}" --seconds "${NET_SECONDS:-5}" --warmup "${NET_WARMUP:-1}" 2>&1)
    rate=$(awk '$1 == "messages_per_second:" { print $2 }' <<<"$out")
    used=$(awk '$1 == "connections:" { print $2 }' <<<"$out")
    if [ -z "$rate" ]; then
      echo "# $label: $(grep -v '^connections:' <<<"$out" | tail -n 3 | tr '\n' ' ')"
      failed=1
      break  # a misbehaving server: no point in more runs
    fi
    [ "$used" != "$connections" ] && echo "# $label: only $used of $connections connections (descriptor limit)"
    values+=("$rate")
  done
  [ $failed -eq 0 ] && { _net_alive "$label" || failed=1; }
  _net_cleanup
  if [ ${#values[@]} -gt 0 ] && [ $failed -eq 0 ]; then
    echo "# $label runs: ${values[*]} msg/s ($connections connections, ${NET_ECHO_SIZE:-64}-byte messages)"
    echo "$label $(_net_median "${values[@]}") msg/s"
  else
    echo "# $label: no figure (${#values[@]} of $reps runs succeeded)"
  fi
}
