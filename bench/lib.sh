# Shared helpers for the bench scripts (sourced, not run). Callers set TMP and, for
# pinning, LOAD (an array prefix such as (taskset -c 1)) before using them.

alive() { # alive PID: the process exists and is not a zombie
  local st
  [[ -n ${1:-} ]] || return 1
  st="$(sed -n 's/^.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)"
  [[ -n $st && $st != Z && $st != X ]]
}

stop_pid() { # stop_pid PID [SECONDS]: SIGTERM, wait (the gateway flushes on exit), then SIGKILL
  local pid="${1:-}" secs="${2:-2}" i
  alive "$pid" || return 0
  kill "$pid" 2>/dev/null
  for ((i = 0; i < secs * 20; i++)); do
    alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.05
  done
  echo "   pid $pid did not stop within ${secs}s of SIGTERM; SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wrk_get() { # wrk_get LABEL KEY -> value from the WRK_RESULT line in $TMP/wrk-LABEL.txt (empty if missing)
  grep -m1 '^WRK_RESULT' "$TMP/wrk-$1.txt" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p"
}
wrk_num() { # wrk_num LABEL KEY -> the value, or 0 when missing
  local v
  v="$(wrk_get "$1" "$2")"
  echo "${v:-0}"
}
wrk_errs() { # wrk_errs LABEL -> socket errors (connect + read + write + timeout)
  echo $(($(wrk_num "$1" connect_err) + $(wrk_num "$1" read_err) + $(wrk_num "$1" write_err) + $(wrk_num "$1" timeout_err)))
}

cpu_snap() { # cpu_snap PID -> "gw=TICKS cpu0=BUSY,STEAL,TOTAL cpu1=..." (clock ticks, from /proc)
  local t
  t="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $12 + $13}')"
  echo "gw=${t:-0} $(awk '/^cpu[0-9]/ {printf "%s=%d,%d,%d ", $1, $2+$3+$4+$7+$8, $9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)"
}

start_mock() { # start_mock BIN [ARGS...]: starts bench_mock on a free port; sets MOCK_PID and MOCK_PORT
  local i
  "${LOAD[@]}" "$@" --port 0 --workers 1 >"$TMP/mock.log" 2>&1 &
  MOCK_PID=$!
  MOCK_PORT=""
  for ((i = 0; i < 200; i++)); do
    MOCK_PORT="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$TMP/mock.log" | head -1)"
    [[ -n $MOCK_PORT ]] && break
    alive "$MOCK_PID" || break
    sleep 0.025
  done
  if [[ -z $MOCK_PORT ]]; then
    echo "the mock did not start; log:" >&2
    cat "$TMP/mock.log" >&2
    return 1
  fi
}

wait_ready() { # wait_ready PID PORT: polls /health/liveliness until 200 (30 s at most)
  local code="" i
  for ((i = 0; i < 600; i++)); do
    alive "$1" || return 1
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$2/health/liveliness")"
    [[ $code == 200 ]] && return 0
    sleep 0.05
  done
  return 1
}

pin_cpus() { # pin_cpus PIN LOAD_DESC: sets LOAD and GW_PIN (taskset prefixes) and PIN_DESC
  NCPU="$(nproc 2>/dev/null || echo 1)"
  if [[ $1 == 1 && $NCPU -ge 2 ]] && command -v taskset >/dev/null; then
    LOAD=(taskset -c 1) GW_PIN=(taskset -c 0)
    PIN_DESC="gateway on CPU 0; $2 on CPU 1 (taskset)"
  else
    LOAD=() GW_PIN=()
    PIN_DESC="no CPU pinning ($( [[ $1 == 0 ]] && echo '--no-pin' || echo "only $NCPU CPU(s) or no taskset"))"
  fi
}
