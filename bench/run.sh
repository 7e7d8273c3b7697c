#!/usr/bin/env bash
# llmgate benchmark: builds release, starts the mock upstream (bench_mock), measures it
# directly, then starts llmgate in front of it (master key on, --num_workers 1) and
# measures through it. Prints a summary table with targets and PASS/FAIL; always exits 0
# once measuring has started (it is a report). See bench/README.md.
#
#   bench/run.sh [--quick] [--no-build] [--no-pin] [--self-test] [--keep-tmp]
#                [--chunks N] [--chunk-delay-ms MS]
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/run.sh [options]
  --quick             shorter runs (3 s wrk runs, 40 streamed requests, 3 start trials)
  --no-build          do not run cargo build; use the binaries already in target/release
  --no-pin            do not pin processes to CPUs
  --self-test         put a second bench_mock in the gateway slot (checks the script itself;
                      the "gateway" figures are then a mock's, not llmgate's)
  --keep-tmp          keep the temp dir (config, logs, raw wrk output) and print its path
  --chunks N          content chunks per streamed reply from the mock (default 10)
  --chunk-delay-ms MS delay between streamed chunks at the mock (default 5)
env: LLMGATE_BIN, BENCH_MOCK_BIN override the binaries; CARGO_TARGET_DIR is honoured.
EOF
}

QUICK=0 BUILD=1 PIN=1 SELF_TEST=0 KEEP=0 CHUNKS=10 CHUNK_DELAY_MS=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --self-test) SELF_TEST=1 ;;
    --keep-tmp) KEEP=1 ;;
    --chunks) CHUNKS="${2:?--chunks needs a value}"; shift ;;
    --chunk-delay-ms) CHUNK_DELAY_MS="${2:?--chunk-delay-ms needs a value}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then
  LAT_DUR=3 TPUT_DUR=3 WARM_DUR=1 STREAM_N=40 STREAM_WARM=5 READY_TRIALS=3
else
  LAT_DUR=10 TPUT_DUR=10 WARM_DUR=2 STREAM_N=200 STREAM_WARM=10 READY_TRIALS=5
fi
CONC=64
MASTER_KEY=sk-bench-master-5c2e9a
CHAT_PATH=/v1/chat/completions

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
GW_BIN="${LLMGATE_BIN:-$TARGET_DIR/release/llmgate}"
MOCK_BIN="${BENCH_MOCK_BIN:-$TARGET_DIR/release/examples/bench_mock}"

for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "run.sh: '$tool' is required" >&2; exit 1; }
done

# ---------------------------------------------------------------- processes and cleanup
TMP="$(mktemp -d -t llmgate-bench.XXXXXX)"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
# Keys and spend go to a SQLite file in the temp dir (spend tracking stays on, as by default).
export LLMGATE_SQLITE_PATH="$TMP/llmgate.db"
MOCK_PID="" GW_PID="" SAMPLER_PID=""

cleanup() {
  stop_pid "$SAMPLER_PID"
  stop_pid "$GW_PID"
  stop_pid "$MOCK_PID"
  if [[ $KEEP == 1 ]]; then
    echo "temp dir kept: $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

# ---------------------------------------------------------------- CPU pinning
NCPU="$(nproc 2>/dev/null || echo 1)"
if [[ $PIN == 1 && $NCPU -ge 2 ]] && command -v taskset >/dev/null; then
  GW_CPU=0 LOAD_CPU=1
  LOAD=(taskset -c "$LOAD_CPU")
  GW_CPU_ARGS=(--cpu "$GW_CPU")
  PIN_DESC="gateway on CPU $GW_CPU, mock + wrk + Python clients on CPU $LOAD_CPU (taskset); for the c=1 latency run the gateway joins CPU $LOAD_CPU"
else
  LOAD=()
  GW_CPU_ARGS=()
  PIN_DESC="no CPU pinning ($( [[ $PIN == 0 ]] && echo '--no-pin' || echo "only $NCPU CPU(s) or no taskset"))"
fi

# ---------------------------------------------------------------- build
echo "== llmgate benchmark ($( [[ $QUICK == 1 ]] && echo quick || echo full ))"
if [[ $BUILD == 1 ]]; then
  if [[ $SELF_TEST == 1 ]]; then
    BUILD_CMD=(cargo build --release --example bench_mock)
  else
    BUILD_CMD=(cargo build --release --bin llmgate --example bench_mock)
  fi
  echo "-- ${BUILD_CMD[*]}"
  if ! (cd "$ROOT" && "${BUILD_CMD[@]}"); then
    echo "run.sh: build failed" >&2
    exit 1
  fi
fi
[[ -x $MOCK_BIN ]] || { echo "run.sh: mock binary not found: $MOCK_BIN" >&2; exit 1; }
if [[ $SELF_TEST == 0 && ! -x $GW_BIN ]]; then
  echo "run.sh: gateway binary not found: $GW_BIN" >&2
  exit 1
fi

echo "host: $(uname -srm), $NCPU CPU(s): $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
echo "pinning: $PIN_DESC"
echo "load average before start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs: c=1 ${LAT_DUR}s, c=$CONC ${TPUT_DUR}s (after ${WARM_DUR}s warm-up), $STREAM_N streamed requests; mock: $CHUNKS chunks ${CHUNK_DELAY_MS} ms apart"
[[ $SELF_TEST == 1 ]] && echo "SELF-TEST: the gateway slot is a second bench_mock, not llmgate"

# ---------------------------------------------------------------- helpers
# run_wrk LABEL CONNS SECONDS PORT [AUTH] -> raw output in $TMP/wrk-LABEL.txt
run_wrk() {
  local label="$1" conns="$2" secs="$3" port="$4" auth="${5:-}"
  BENCH_AUTH="$auth" "${LOAD[@]}" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s --latency \
    -s "$BENCH/post.lua" "http://127.0.0.1:$port$CHAT_PATH" >"$TMP/wrk-$label.txt" 2>&1
}
wrk_line() { # human summary of one wrk run
  local l="$1" req dur n2 errs
  req="$(wrk_get "$l" requests)"
  if [[ -z $req ]]; then
    echo "   [$l] wrk produced no result; output:"; sed 's/^/     /' "$TMP/wrk-$l.txt"; return
  fi
  dur="$(wrk_get "$l" duration_us)"
  n2="$(wrk_get "$l" non2xx)"
  errs="$(wrk_errs "$l")"
  printf '   [%s] %s requests, %.0f req/s, p50 %s us, p90 %s us, p99 %s us, max %s us, non-2xx %s, socket errors %s\n' \
    "$l" "$req" "$(python3 -c "print($req / ($dur / 1e6))")" "$(wrk_get "$l" p50_us)" "$(wrk_get "$l" p90_us)" \
    "$(wrk_get "$l" p99_us)" "$(wrk_get "$l" max_us)" "$n2" "$errs"
}
rss_kb() { # rss_kb PID FIELD -> kB
  local k v _
  while read -r k v _; do
    [[ $k == "$2:" ]] && { echo "$v"; return; }
  done <"/proc/$1/status" 2>/dev/null
}
run_ttfb() { # run_ttfb LABEL PORT [AUTH]
  "${LOAD[@]}" python3 "$BENCH/ttfb.py" --port "$2" --path "$CHAT_PATH" --auth "${3:-}" \
    -n "$STREAM_N" --warmup "$STREAM_WARM" --chunks "$CHUNKS" --label "$1" --json "$TMP/ttfb-$1.json" \
    | sed 's/^/   /'
}

# ---------------------------------------------------------------- summary
# summary: print the table from the wrk results, the ttfb JSON files and the variables set
# along the way; anything not measured shows as "no data".
summary() {
  export S_MOCK_C1_P50="$(wrk_get mock-c1 p50_us)" S_MOCK_C1_P99="$(wrk_get mock-c1 p99_us)"
  export S_GW_C1_P50="$(wrk_get gw-c1 p50_us)" S_GW_C1_P99="$(wrk_get gw-c1 p99_us)"
  export S_GW_C1_BAD="$(wrk_num gw-c1 non2xx)"
  export S_GW_SPLIT_P50="$(wrk_get gw-c1-split p50_us)" S_GW_SPLIT_P99="$(wrk_get gw-c1-split p99_us)"
  for l in "mock-c$CONC" "gw-c$CONC"; do
    local v="${l//-/_}"; v="${v^^}"
    export "S_${v}_REQ=$(wrk_get "$l" requests)" "S_${v}_DUR=$(wrk_get "$l" duration_us)" \
      "S_${v}_BAD=$(wrk_get "$l" non2xx)" \
      "S_${v}_ERR=$(wrk_errs "$l")" \
      "S_${v}_P50=$(wrk_get "$l" p50_us)" "S_${v}_P99=$(wrk_get "$l" p99_us)"
  done
  export S_CONC="$CONC" S_TMP="$TMP" S_CHUNK_DELAY_MS="$CHUNK_DELAY_MS" S_CHUNKS="$CHUNKS"
  export S_IDLE_RSS_KB="${IDLE_RSS_KB:-}" S_PEAK_RSS_KB="${PEAK_RSS_KB:-}" S_HWM_KB="${HWM_KB:-}"
  export S_READY_MS="${READY_MS[*]}" S_SANITY_OK="${SANITY_OK:-0}" S_SELF_TEST="$SELF_TEST" S_PIN="$PIN_DESC"
  export S_CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
  export S_MODE="$( [[ $QUICK == 1 ]] && echo quick || echo full )"

  python3 - <<'PY'
import json, os, statistics

E = os.environ
def num(k):
    v = E.get(k, "").strip()
    try:
        return float(v)
    except ValueError:
        return None
def load(label):
    try:
        with open(os.path.join(E["S_TMP"], f"ttfb-{label}.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}

rows = []  # (metric, measured, target, verdict)
def verdict(ok):
    return "PASS" if ok else "FAIL"  # no data (None) is a FAIL too

conc = E["S_CONC"]
m50, g50 = num("S_MOCK_C1_P50"), num("S_GW_C1_P50")
m99, g99 = num("S_MOCK_C1_P99"), num("S_GW_C1_P99")
gbad = num("S_GW_C1_BAD") or 0
if m50 is not None and g50 is not None:
    added = g50 - m50
    note = f"{added:.0f} us (gateway {g50:.0f} - mock {m50:.0f})"
    ok = added < 150 and gbad == 0
    if gbad:
        note += f", {gbad:.0f} non-2xx!"
else:
    note, ok = "no data", None
rows.append(("added latency p50, c=1", note, "< 150 us", verdict(ok)))
if m99 is not None and g99 is not None:
    rows.append(("added latency p99, c=1", f"{g99 - m99:.0f} us (gateway {g99:.0f} - mock {m99:.0f})", "(report)", "info"))
s50, s99 = num("S_GW_SPLIT_P50"), num("S_GW_SPLIT_P99")
if s50 is not None:
    rows.append(("gateway latency, c=1, own CPU", f"p50 {s50:.0f} us, p99 {s99:.0f} us (gateway on its own CPU)", "(report)", "info"))

req, dur = num(f"S_GW_C{conc}_REQ"), num(f"S_GW_C{conc}_DUR")
bad = (num(f"S_GW_C{conc}_BAD") or 0) + (num(f"S_GW_C{conc}_ERR") or 0)
if req and dur:
    rps = (req - bad) / (dur / 1e6)
    note = f"{rps:,.0f} req/s (2xx only)"
    if bad:
        note += f", {bad:.0f} errors/non-2xx!"
    mreq, mdur = num(f"S_MOCK_C{conc}_REQ"), num(f"S_MOCK_C{conc}_DUR")
    if mreq and mdur:
        note += f"; mock alone {mreq / (mdur / 1e6):,.0f}"
    ok = rps >= 12000 and bad == 0
else:
    note, ok = "no data", None
rows.append((f"throughput, c={conc}, 1 worker", note, ">= 12,000 req/s", verdict(ok)))
gp50, gp99 = num(f"S_GW_C{conc}_P50"), num(f"S_GW_C{conc}_P99")
if gp50 is not None:
    rows.append((f"latency under load, c={conc}", f"p50 {gp50/1000:.2f} ms, p99 {gp99/1000:.2f} ms", "(report)", "info"))

def snap(name):
    try:
        with open(os.path.join(E["S_TMP"], name)) as f:
            return dict(kv.split("=", 1) for kv in f.read().split())
    except (OSError, ValueError):
        return {}
b, a = snap("cpu-before"), snap("cpu-after")
if b and a and req and dur:
    tck = float(E.get("S_CLK_TCK") or 100)
    secs = dur / 1e6
    gw_cpu = (float(a["gw"]) - float(b["gw"])) / tck
    cores = []
    for k in sorted(k for k in a if k.startswith("cpu")):
        if k not in b:
            continue
        (bb, bs, bt), (ab, as_, at) = (map(float, b[k].split(",")), map(float, a[k].split(",")))
        tot = at - bt
        if tot > 0:
            cores.append(f"{k.upper()} busy {100 * (ab - bb) / tot:.0f}%" + (f" (steal {100 * (as_ - bs) / tot:.0f}%)" if as_ - bs > 0 else ""))
    rows.append((f"CPU during c={conc} run", f"gateway {100 * gw_cpu / secs:.0f}% of a core, {1e6 * gw_cpu / max(req, 1):.0f} us CPU/request; " + ", ".join(cores),
                 "(report)", "info"))

tm, tg = load("mock"), load("gateway")
delay = float(E["S_CHUNK_DELAY_MS"])
if tm.get("ttfb_p50_ms") is not None and tg.get("ttfb_p50_ms") is not None and not tg.get("errors"):
    added = tg["ttfb_p50_ms"] - tm["ttfb_p50_ms"]
    rows.append(("added TTFB p50, streaming",
                 f"{added:.2f} ms (gateway {tg['ttfb_p50_ms']:.2f} - mock {tm['ttfb_p50_ms']:.2f})",
                 "< 5 ms", verdict(added < 5)))
    gmax = tg.get("gap_max_ms")
    chunks_ok = tg.get("content_chunks_min") == tg.get("content_chunks_max") == int(E["S_CHUNKS"])
    note = (f"max {gmax:.1f} ms, p50 {tg.get('gap_content_p50_ms'):.1f}, p99 {tg.get('gap_content_p99_ms'):.1f} "
            f"(mock direct max {tm.get('gap_max_ms', 0):.1f})")
    if not chunks_ok:
        note += f"; chunks/reply {tg.get('content_chunks_min')}..{tg.get('content_chunks_max')}, expected {E['S_CHUNKS']}!"
    if tg.get("missing_done"):
        note += f"; {tg['missing_done']} replies without [DONE]!"
    rows.append(("inter-chunk gap, streaming", note, f"<= {delay + 20:.0f} ms (delay {delay:.0f} + 20)",
                 verdict(gmax is not None and gmax <= delay + 20 and chunks_ok and not tg.get("missing_done"))))
else:
    err = tg.get("first_error") or "no data"
    rows.append(("added TTFB p50, streaming", f"failed: {err}", "< 5 ms", "FAIL"))
    rows.append(("inter-chunk gap, streaming", "failed", f"<= {delay + 20:.0f} ms", "FAIL"))

idle = num("S_IDLE_RSS_KB")
rows.append(("resident memory, idle", f"{idle / 1024:.1f} MiB" if idle else "no data", "< 20 MiB",
             verdict(None if idle is None else idle / 1024 < 20)))
peak, hwm = num("S_PEAK_RSS_KB"), num("S_HWM_KB")
if peak or hwm:
    rows.append((f"resident memory, peak under c={conc}",
                 f"{(peak or 0) / 1024:.1f} MiB sampled (VmHWM {(hwm or 0) / 1024:.1f} MiB)", "(report)", "info"))

ready = [float(x) for x in E.get("S_READY_MS", "").split()]
if ready:
    med = statistics.median(ready)
    rows.append(("ready-to-serve time", f"{med:.1f} ms median of {len(ready)} (min {min(ready):.1f}, max {max(ready):.1f})",
                 "< 300 ms", verdict(med < 300)))
else:
    rows.append(("ready-to-serve time", "no data", "< 300 ms", "FAIL"))
if E.get("S_SANITY_OK") != "1":
    rows.append(("sanity: chat through gateway", "did not return 200 chat.completion", "200", "FAIL"))

w = [max(len(r[i]) for r in rows + [("metric", "measured", "target", "result")]) for i in range(4)]
line = "+-" + "-+-".join("-" * x for x in w) + "-+"
print()
print(f"== summary ({E['S_MODE']} run; {E['S_PIN']})")
if E.get("S_SELF_TEST") == "1":
    print("== SELF-TEST: the gateway slot was a second bench_mock; these are not llmgate figures")
print(line)
print("| " + " | ".join(h.ljust(x) for h, x in zip(("metric", "measured", "target", "result"), w)) + " |")
print(line)
for r in rows:
    print("| " + " | ".join(c.ljust(x) for c, x in zip(r, w)) + " |")
print(line)
fails = sum(1 for r in rows if r[3] == "FAIL")
passes = sum(1 for r in rows if r[3] == "PASS")
print(f"{passes} PASS, {fails} FAIL")
PY
}

# ---------------------------------------------------------------- mock upstream
echo "-- starting mock upstream"
start_mock "$MOCK_BIN" --chunks "$CHUNKS" --chunk-delay-ms "$CHUNK_DELAY_MS" || exit 1
echo "   mock pid $MOCK_PID on 127.0.0.1:$MOCK_PORT"

echo "-- measuring the mock directly"
run_wrk mock-warm 1 "$WARM_DUR" "$MOCK_PORT" "$MASTER_KEY"
run_wrk mock-c1 1 "$LAT_DUR" "$MOCK_PORT" "$MASTER_KEY"
wrk_line mock-c1
run_wrk "mock-c$CONC" "$CONC" "$TPUT_DUR" "$MOCK_PORT" "$MASTER_KEY"
wrk_line "mock-c$CONC"
run_ttfb mock "$MOCK_PORT"

# ---------------------------------------------------------------- gateway
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

gw_cmd() { # gw_cmd PORT -> the command line in GW_CMD
  if [[ $SELF_TEST == 1 ]]; then
    GW_CMD=("$MOCK_BIN" --port "$1" --workers 1 --chunks "$CHUNKS" --chunk-delay-ms "$CHUNK_DELAY_MS")
  else
    GW_CMD=("$GW_BIN" --config "$TMP/config.yaml" --host 127.0.0.1 --port "$1" --num_workers 1)
  fi
}
READY_ARGS=()
[[ $SELF_TEST == 1 ]] && READY_ARGS=(--any-status)

echo "-- ready-to-serve time ($READY_TRIALS starts, spawn -> first 200 from GET /health/liveliness)"
READY_MS=()
for ((t = 1; t < READY_TRIALS; t++)); do
  port="$(free_port)"
  gw_cmd "$port"
  out="$("${LOAD[@]}" python3 "$BENCH/spawn_ready.py" --port "$port" "${GW_CPU_ARGS[@]}" "${READY_ARGS[@]}" \
    --stop --log "$TMP/gateway-trial$t.log" -- "${GW_CMD[@]}")"
  ms="${out#* }"
  if [[ -z $out || $ms == -1 ]]; then
    echo "   trial $t: gateway did not become ready; log:"; tail -20 "$TMP/gateway-trial$t.log" | sed 's/^/     /'
  else
    READY_MS+=("$ms")
  fi
done
GW_PORT="$(free_port)"
gw_cmd "$GW_PORT"
echo "   command: ${GW_CMD[*]}"
out="$("${LOAD[@]}" python3 "$BENCH/spawn_ready.py" --port "$GW_PORT" "${GW_CPU_ARGS[@]}" "${READY_ARGS[@]}" \
  --log "$TMP/gateway.log" -- "${GW_CMD[@]}")"
GW_PID="${out%% *}"
ms="${out#* }"
if [[ -z $out || $ms == -1 ]]; then
  echo "run.sh: the gateway did not become ready; its log:" >&2
  tail -40 "$TMP/gateway.log" >&2
  GW_PID=""
  READY_MS=()
  summary
  exit 0
fi
READY_MS+=("$ms")
echo "   start times (ms): ${READY_MS[*]}"
echo "   gateway pid $GW_PID on 127.0.0.1:$GW_PORT"
sleep 1
IDLE_RSS_KB="$(rss_kb "$GW_PID" VmRSS)"
IDLE_HWM_KB="$(rss_kb "$GW_PID" VmHWM)"
echo "   idle VmRSS ${IDLE_RSS_KB} kB (VmHWM so far ${IDLE_HWM_KB} kB)"

echo "-- sanity checks through the gateway"
SANITY_CODE="$(curl -s -o "$TMP/sanity.json" -w '%{http_code}' -H "Authorization: Bearer $MASTER_KEY" \
  -H 'Content-Type: application/json' -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' \
  "http://127.0.0.1:$GW_PORT$CHAT_PATH")"
NOAUTH_CODE="$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
  -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' "http://127.0.0.1:$GW_PORT$CHAT_PATH")"
SANITY_OK=0
if [[ $SANITY_CODE == 200 ]] && grep -q 'chat.completion' "$TMP/sanity.json"; then SANITY_OK=1; fi
echo "   with master key: HTTP $SANITY_CODE$( [[ $SANITY_OK == 1 ]] && echo ' (chat.completion body)' || echo " body: $(head -c 300 "$TMP/sanity.json")")"
echo "   without a key:   HTTP $NOAUTH_CODE (expect 401)"

echo "-- measuring through the gateway"
# c=1 is a serial chain (wrk -> gateway -> mock -> gateway -> wrk), so nothing runs in
# parallel; on this kind of VM a wake-up across CPUs costs tens of microseconds, which
# would swamp the gateway's own cost. So the c=1 run puts the gateway on the same CPU as
# wrk and the mock (the mock-direct baseline ran there too); it then moves back to its
# own CPU for the split-CPU c=1 run (info), streaming and the c=64 run.
if [[ ${#GW_CPU_ARGS[@]} -gt 0 ]]; then
  taskset -a -p -c "$LOAD_CPU" "$GW_PID" >/dev/null
  echo "   c=1: gateway moved to CPU $LOAD_CPU (with wrk and the mock) for the same-CPU run"
fi
run_wrk gw-warm 1 "$WARM_DUR" "$GW_PORT" "$MASTER_KEY"
run_wrk gw-c1 1 "$LAT_DUR" "$GW_PORT" "$MASTER_KEY"
wrk_line gw-c1
if [[ ${#GW_CPU_ARGS[@]} -gt 0 ]]; then
  taskset -a -p -c "$GW_CPU" "$GW_PID" >/dev/null
  echo "   gateway moved back to CPU $GW_CPU"
  run_wrk gw-c1-split 1 "$LAT_DUR" "$GW_PORT" "$MASTER_KEY"
  wrk_line gw-c1-split
fi
run_ttfb gateway "$GW_PORT" "$MASTER_KEY"
run_wrk "gw-warm-c$CONC" "$CONC" "$WARM_DUR" "$GW_PORT" "$MASTER_KEY"
# Sample VmRSS every 100 ms during the c=64 run (bash builtins only, plus sleep).
(
  peak=0
  while alive "$GW_PID"; do
    v="$(rss_kb "$GW_PID" VmRSS)"
    [[ -n $v && $v -gt $peak ]] && { peak=$v; echo "$peak" >"$TMP/peak_rss_kb"; }
    sleep 0.1
  done
) &
SAMPLER_PID=$!
cpu_snap "$GW_PID" >"$TMP/cpu-before"
run_wrk "gw-c$CONC" "$CONC" "$TPUT_DUR" "$GW_PORT" "$MASTER_KEY"
cpu_snap "$GW_PID" >"$TMP/cpu-after"
stop_pid "$SAMPLER_PID"
SAMPLER_PID=""
wrk_line "gw-c$CONC"
PEAK_RSS_KB="$(cat "$TMP/peak_rss_kb" 2>/dev/null || echo)"
HWM_KB="$(rss_kb "$GW_PID" VmHWM)"
AFTER_RSS_KB="$(rss_kb "$GW_PID" VmRSS)"
echo "   VmRSS peak sampled during c=$CONC: ${PEAK_RSS_KB:-?} kB; after: ${AFTER_RSS_KB:-?} kB; VmHWM: ${HWM_KB:-?} kB"
if ! alive "$GW_PID"; then
  echo "   WARNING: the gateway exited during the run; log tail:"; tail -20 "$TMP/gateway.log" | sed 's/^/     /'
fi

summary
exit 0
