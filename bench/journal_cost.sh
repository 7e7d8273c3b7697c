#!/usr/bin/env bash
# What the spend journal costs the gateway per request: instructions counted by callgrind under
# a fixed number of requests (the primary figure: a shared, noisy machine does not move it),
# then CPU time and context switches per request from /proc under wrk -c64 (kernel work
# included, but noisy). Journal off and on, each on a fresh gateway. A report: exits 0 once
# measuring has started. See bench/README.md.
#
#   bench/journal_cost.sh [--requests N] [--concurrency C] [--warmup W] [--seconds S]
#                         [--modes "off on"] [--no-build] [--no-native] [--keep-tmp]
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/journal_cost.sh [options]
  --requests N     requests counted under callgrind (default 5000)
  --concurrency C  keep-alive connections sending them (default 8)
  --warmup W       requests before counting starts (default 300)
  --seconds S      length of the native wrk -c64 run (default 5)
  --modes "M..."   journal modes, in order, from: off on (default "off on")
  --no-build       skip cargo build; use the binaries in target/release
  --no-native      callgrind only
  --keep-tmp       keep the temp dir (callgrind files, logs, annotations)
env: LLMGATE_BIN, BENCH_MOCK_BIN override the binaries; CARGO_TARGET_DIR is honoured.
EOF
}

N=5000 CONC=8 WARM=300 SECS=5 MODES="off on" BUILD=1 NATIVE=1 KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --requests) N="${2:?}"; shift ;;
    --concurrency) CONC="${2:?}"; shift ;;
    --warmup) WARM="${2:?}"; shift ;;
    --seconds) SECS="${2:?}"; shift ;;
    --modes) MODES="${2:?}"; shift ;;
    --no-build) BUILD=0 ;;
    --no-native) NATIVE=0 ;;
    --keep-tmp) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "journal_cost.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

MASTER_KEY=sk-bench-master-5c2e9a
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
GW_BIN="${LLMGATE_BIN:-$TARGET_DIR/release/llmgate}"
MOCK_BIN="${BENCH_MOCK_BIN:-$TARGET_DIR/release/examples/bench_mock}"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

for tool in valgrind callgrind_control callgrind_annotate python3 curl; do
  command -v "$tool" >/dev/null || { echo "journal_cost.sh: '$tool' is required" >&2; exit 1; }
done
[[ $NATIVE == 0 ]] || command -v wrk >/dev/null || { echo "journal_cost.sh: 'wrk' is required (or --no-native)" >&2; exit 1; }

if [[ $BUILD == 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin llmgate --example bench_mock) || exit 1
fi
for bin in "$GW_BIN" "$MOCK_BIN"; do
  [[ -x $bin ]] || { echo "journal_cost.sh: missing $bin" >&2; exit 1; }
done

TMP="$(mktemp -d /tmp/llmgate-journal-cost.XXXXXX)"
GW_PID="" MOCK_PID=""
cleanup() {
  stop_pid "$GW_PID" 30
  stop_pid "$MOCK_PID"
  if [[ $KEEP == 1 ]]; then echo "kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pin_cpus 1 "the mock and the clients"
start_mock "$MOCK_BIN" || exit 1
cat >"$TMP/config.yaml" <<EOF
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-upstream-fake
general_settings:
  master_key: $MASTER_KEY
EOF

echo "journal cost: $N requests at c=$CONC under callgrind (after $WARM warm-up), modes: $MODES"
echo "   $PIN_DESC; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

journal_env() { # journal_env MODE -> the LLMGATE_SPEND_JOURNAL value
  [[ $1 == off ]] && echo off || echo ""
}

wait_ready_slow() { # wait_ready_slow PID PORT: like wait_ready, up to 3 minutes (valgrind starts slowly)
  local i
  for ((i = 0; i < 1800; i++)); do
    alive "$1" || return 1
    [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$2/health/liveliness")" == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}

threads_cpu() { # threads_cpu PID -> "TID COMM TICKS CTXSW" per thread
  local t
  for t in /proc/"$1"/task/*; do
    printf '%s %s %s %s\n' "${t##*/}" "$(tr ' ' '_' <"$t/comm")" \
      "$(sed 's/^.*) //' "$t/stat" | awk '{print $12 + $13}')" \
      "$(awk '/ctxt_switches/ {n += $2} END {print n}' "$t/status")"
  done
}

drive() { # drive PORT COUNT -> the driver's JSON line
  "${LOAD[@]}" python3 "$BENCH/fixed_requests.py" --port "$1" --requests "$2" \
    --concurrency "$CONC" --key "$MASTER_KEY"
}

journal_figures() { # journal_figures PORT -> "syncs=S records=R" from /metrics
  curl -s -m 30 -H "Authorization: Bearer $MASTER_KEY" "http://127.0.0.1:$1/metrics" |
    awk '/^llmgate_spend_journal_syncs_total/ {s=$2} /^llmgate_spend_journal_records_total/ {r=$2}
         END {printf "syncs=%d records=%d", s, r}'
}

# The symbols the journal's own work shows up under (inclusive costs).
JOURNAL_SYMBOLS='journal::|oneshot|mpmc|mpsc|crc32|Durable|charge::|RecordSpend|SpendActor'

declare -A IR_PER_REQ CPU_PER_REQ CS_PER_REQ
for mode in $MODES; do
  dir="$TMP/$mode"
  mkdir -p "$dir"
  port="$(free_port)"
  echo
  echo "== journal $mode: callgrind"
  (cd "$dir" && LLMGATE_SPEND_JOURNAL="$(journal_env "$mode")" exec "${GW_PIN[@]}" valgrind --tool=callgrind \
    --instr-atstart=no --callgrind-out-file="$dir/callgrind.out" \
    "$GW_BIN" --config "$TMP/config.yaml" --host 127.0.0.1 --port "$port" --num_workers 1 \
    >"$dir/gateway.log" 2>&1) &
  GW_PID=$!
  if ! wait_ready_slow "$GW_PID" "$port"; then
    echo "   the gateway did not start; log:"; tail -20 "$dir/gateway.log"; exit 0
  fi
  vg_pid="$GW_PID" # the subshell execs taskset, which execs valgrind
  echo "   warm-up: $(drive "$port" "$WARM")"
  before="$(journal_figures "$port")"
  callgrind_control -i on "$vg_pid" >/dev/null
  result="$(drive "$port" "$N")"
  callgrind_control -d "$vg_pid" >/dev/null
  callgrind_control -i off "$vg_pid" >/dev/null
  after="$(journal_figures "$port")"
  echo "   counted: $result"
  echo "   journal before: $before; after: $after"
  stop_pid "$GW_PID" 60
  GW_PID=""
  dump="$dir/callgrind.out.1" # the dump taken right after the counted requests
  total="$(sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$dump" | head -1)"
  IR_PER_REQ[$mode]="$(python3 -c "print(round(${total:-0} / $N))")"
  echo "   instructions: ${total:-?} total, ${IR_PER_REQ[$mode]} per request ($dump)"
  callgrind_annotate --inclusive=no "$dump" 2>/dev/null | sed -n '1,400p' >"$dir/exclusive.txt"
  callgrind_annotate --inclusive=yes "$dump" 2>/dev/null | sed -n '1,2000p' >"$dir/inclusive.txt"
  echo "   top 15 functions by own instructions:"
  grep -E '^ *[0-9,]+ +\(' "$dir/exclusive.txt" | head -15 | cut -c1-150 | sed 's/^/     /'
  echo "   journal-related functions, inclusive (per request = column / $N):"
  grep -E '^ *[0-9,]+ +\(' "$dir/inclusive.txt" | sed 's/ \[[^]]*\]$//' | grep -E "$JOURNAL_SYMBOLS" |
    head -20 | cut -c1-150 |
    sed 's/^/     /'

  [[ $NATIVE == 1 ]] || continue
  echo "== journal $mode: native, wrk -t1 -c64 -d${SECS}s"
  port="$(free_port)"
  (cd "$dir" && LLMGATE_SPEND_JOURNAL="$(journal_env "$mode")" exec "${GW_PIN[@]}" "$GW_BIN" \
    --config "$TMP/config.yaml" --host 127.0.0.1 --port "$port" --num_workers 1 \
    >"$dir/gateway-native.log" 2>&1) &
  GW_PID=$!
  if ! wait_ready "$GW_PID" "$port"; then
    echo "   the gateway did not start; log:"; tail -20 "$dir/gateway-native.log"; exit 0
  fi
  BENCH_AUTH="$MASTER_KEY" "${LOAD[@]}" wrk -t1 -c64 -d1s -s "$BENCH/post.lua" \
    "http://127.0.0.1:$port/v1/chat/completions" >/dev/null 2>&1
  threads_cpu "$GW_PID" >"$dir/threads0.txt"
  ticks0="$(sed 's/^.*) //' "/proc/$GW_PID/stat" | awk '{print $12 + $13}')"
  cs0="$(cat /proc/"$GW_PID"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}')"
  BENCH_AUTH="$MASTER_KEY" "${LOAD[@]}" wrk -t1 -c64 -d"${SECS}s" -s "$BENCH/post.lua" \
    "http://127.0.0.1:$port/v1/chat/completions" >"$dir/wrk.txt" 2>&1
  ticks1="$(sed 's/^.*) //' "/proc/$GW_PID/stat" | awk '{print $12 + $13}')"
  cs1="$(cat /proc/"$GW_PID"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}')"
  threads_cpu "$GW_PID" >"$dir/threads1.txt"
  reqs="$(grep -m1 '^WRK_RESULT' "$dir/wrk.txt" | tr ' ' '\n' | sed -n 's/^requests=//p')"
  hz="$(getconf CLK_TCK)"
  CPU_PER_REQ[$mode]="$(python3 -c "print(round(($ticks1 - $ticks0) / $hz * 1e6 / max(1, ${reqs:-0}), 1))")"
  CS_PER_REQ[$mode]="$(python3 -c "print(round(($cs1 - $cs0) / max(1, ${reqs:-0}), 2))")"
  echo "   ${reqs:-?} requests ($(python3 -c "print(round(${reqs:-0} / $SECS))") req/s), gateway CPU ${CPU_PER_REQ[$mode]} us/request, ${CS_PER_REQ[$mode]} context switches/request ($(journal_figures "$port"))"
  echo "   per thread, CPU us/request (ctx switches/request):"
  join -j1 <(sort "$dir/threads0.txt") <(sort "$dir/threads1.txt") |
    awk -v hz="$(getconf CLK_TCK)" -v n="${reqs:-1}" '{cpu[$2] += ($6 - $3) / hz * 1e6 / n; cs[$2] += ($7 - $4) / n}
      END {for (t in cpu) if (cpu[t] > 0.05 || cs[t] > 0.01) printf "     %-20s %7.1f (%.2f)\n", t, cpu[t], cs[t]}' | sort -k2 -rn
  stop_pid "$GW_PID" 10
  GW_PID=""
done

echo
echo "summary ($N requests at c=$CONC under callgrind; native: wrk -c64 for ${SECS}s)"
printf '   %-8s %14s %16s %16s\n' journal "Ir/request" "CPU us/request" "ctx sw/request"
for mode in $MODES; do
  printf '   %-8s %14s %16s %16s\n' "$mode" "${IR_PER_REQ[$mode]:-?}" "${CPU_PER_REQ[$mode]:--}" "${CS_PER_REQ[$mode]:--}"
done
exit 0
