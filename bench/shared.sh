#!/usr/bin/env bash
# llmgate shared-state benchmark (issue 6): throughput at c=64 of a virtual key with rpm, tpm
# and parallel limits, counted in this instance's memory against counted atomically in Redis
# (one script call per request); and the latency of a cache hit (c=1, the same request
# repeated) from the local cache and from Redis. Targets: Redis-backed limits within 15% of
# local; a cache hit under 100 us p50 locally and under 500 us from Redis. Starts a private
# redis-server on a free port (pinned with the load generators, off the gateway's CPU).
# Prints a table with PASS/FAIL.
#
#   bench/shared.sh [--quick] [--no-build] [--no-pin] [--keep-tmp] [--rounds N]
set -uo pipefail

ORIG_ARGS=("$@")
QUICK=0 BUILD=1 PIN=1 KEEP=0 ROUNDS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --keep-tmp) KEEP=1 ;;
    --rounds)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "shared.sh: --rounds needs a positive integer" >&2; exit 2; }
      ROUNDS="$2"; shift ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "shared.sh: unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then TPUT_DUR=3 WARM_DUR=1; else TPUT_DUR=10 WARM_DUR=2; fi
CONC=64
MASTER_KEY=sk-bench-shared-master
CHAT_PATH=/v1/chat/completions
read -ra SCENARIOS <<<"${BENCH_SCENARIOS:-limits-local limits-redis cache-local cache-redis}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
GW_BIN="${LLMGATE_BIN:-$TARGET_DIR/release/llmgate}"
MOCK_BIN="${BENCH_MOCK_BIN:-$TARGET_DIR/release/examples/bench_mock}"
CMDLINE="bench/shared.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"

for tool in wrk python3 curl redis-server redis-cli; do
  command -v "$tool" >/dev/null || { echo "shared.sh: '$tool' is required" >&2; exit 1; }
done

TMP="$(mktemp -d -t llmgate-shared.XXXXXX)"
NS="llmgate-bench-$$-$RANDOM"
export LLMGATE_REDIS_NAMESPACE="$NS"
MOCK_PID="" GW_PID="" REDIS_PID=""
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

cleanup() {
  stop_pid "$GW_PID" 10
  stop_pid "$MOCK_PID"
  stop_pid "$REDIS_PID"
  if [[ $KEEP == 1 ]]; then echo "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

pin_cpus "$PIN" "mock, wrk and redis-server"

echo "== llmgate shared-state benchmark ($( [[ $QUICK == 1 ]] && echo quick || echo full )): $CMDLINE"
if [[ $BUILD == 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin llmgate --example bench_mock) || { echo "shared.sh: build failed" >&2; exit 1; }
fi
[[ -x $MOCK_BIN && -x $GW_BIN ]] || { echo "shared.sh: binaries not found ($GW_BIN, $MOCK_BIN)" >&2; exit 1; }
echo "host: $(uname -srm), $NCPU CPU(s); pinning: $PIN_DESC; redis namespace $NS"
echo "load average before start: $(cut -d' ' -f1-3 /proc/loadavg)"

start_mock "$MOCK_BIN" || exit 1
REDIS_PORT="$(free_port)"
"${LOAD[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
for ((i = 0; i < 200; i++)); do
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
  sleep 0.025
done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || { echo "shared.sh: redis-server did not start" >&2; exit 1; }
echo "   private redis-server pid $REDIS_PID on 127.0.0.1:$REDIS_PORT"

# write_config SCENARIO FILE
write_config() {
  local redis="" cache=""
  case "$1" in
    limits-redis) redis="router_settings: {redis_host: 127.0.0.1, redis_port: $REDIS_PORT}" ;;
    cache-local) cache="litellm_settings: {cache: true, cache_params: {type: local}}" ;;
    cache-redis) cache="litellm_settings: {cache: true, cache_params: {type: redis, host: 127.0.0.1, port: $REDIS_PORT, namespace: $NS-cache}}" ;;
  esac
  {
    echo "model_list:"
    echo "  - model_name: bench-model"
    echo "    litellm_params: {model: openai/bench-model, api_base: \"http://127.0.0.1:$MOCK_PORT/v1\", api_key: sk-upstream-fake}"
    [[ -n $redis ]] && echo "$redis"
    [[ -n $cache ]] && echo "$cache"
    echo "general_settings: {master_key: $MASTER_KEY, database_url: 'sqlite://$TMP/llmgate-$1.db'}"
  } >"$2"
}

run_scenario() {
  local s="$1" r="$2" label="$1-$2" cfg="$TMP/config-$1.yaml" log="$TMP/gateway-$1-$2.log" key conc=$CONC
  write_config "$s" "$cfg"
  GW_PORT="$(free_port)"
  "${GW_PIN[@]}" "$GW_BIN" --num_workers 1 --host 127.0.0.1 --port "$GW_PORT" --config "$cfg" >"$log" 2>&1 &
  GW_PID=$!
  if ! wait_ready "$GW_PID" "$GW_PORT"; then
    echo "   [$label] the gateway did not become ready; its log:"; tail -20 "$log" | sed 's/^/     /'
    stop_pid "$GW_PID" 10; GW_PID=""; return
  fi
  key="$(curl -s -H "Authorization: Bearer $MASTER_KEY" -H 'Content-Type: application/json' \
    -d '{"duration": null, "rpm_limit": 1000000000, "tpm_limit": 1000000000000, "max_parallel_requests": 100000}' \
    "http://127.0.0.1:$GW_PORT/key/generate" | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')"
  [[ $s == cache-* ]] && conc=1
  BENCH_AUTH="$key" "${LOAD[@]}" wrk -t1 -c"$conc" -d"${WARM_DUR}s" --timeout 5s \
    -s "$BENCH/post.lua" "http://127.0.0.1:$GW_PORT$CHAT_PATH" >/dev/null 2>&1
  cpu_snap "$GW_PID" >"$TMP/cpu-before-$label"
  BENCH_AUTH="$key" "${LOAD[@]}" wrk -t1 -c"$conc" -d"${TPUT_DUR}s" --timeout 5s --latency \
    -s "$BENCH/post.lua" "http://127.0.0.1:$GW_PORT$CHAT_PATH" >"$TMP/wrk-$label.txt" 2>&1
  cpu_snap "$GW_PID" >"$TMP/cpu-after-$label"
  stop_pid "$GW_PID" 10
  GW_PID=""
  local req dur
  req="$(wrk_get "$label" requests)" dur="$(wrk_get "$label" duration_us)"
  if [[ -z $req ]]; then
    echo "   [$label] wrk produced no result"; sed 's/^/     /' "$TMP/wrk-$label.txt"; return
  fi
  printf '   [%s] c=%s: %s requests, %.0f req/s, p50 %s us, p99 %s us, non-2xx %s, socket errors %s\n' \
    "$label" "$conc" "$req" "$(python3 -c "print($req / ($dur / 1e6))")" "$(wrk_get "$label" p50_us)" \
    "$(wrk_get "$label" p99_us)" "$(wrk_num "$label" non2xx)" "$(wrk_errs "$label")"
}

# The scenarios run in pairs (limits here and in Redis, then the two caches), back to back so
# a pair sees the same machine; every other round runs each pair the other way round.
for ((r = 1; r <= ROUNDS; r++)); do
  echo "-- round $r"
  for ((k = 0; k < ${#SCENARIOS[@]}; k++)); do
    i=$k
    if ((r % 2 == 0 && (k ^ 1) < ${#SCENARIOS[@]})); then i=$((k ^ 1)); fi
    run_scenario "${SCENARIOS[$i]}" "$r"
  done
done

export S_TMP="$TMP" S_ROUNDS="$ROUNDS" S_CONC="$CONC" S_CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
python3 - <<'PY'
import os, statistics

tmp, rounds, conc = os.environ["S_TMP"], int(os.environ["S_ROUNDS"]), os.environ["S_CONC"]

def wrk(label):
    try:
        line = next(l for l in open(os.path.join(tmp, f"wrk-{label}.txt")) if l.startswith("WRK_RESULT"))
    except (OSError, StopIteration):
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

def gw_ticks(label):
    try:
        before = open(os.path.join(tmp, f"cpu-before-{label}")).read().split()[0]
        after = open(os.path.join(tmp, f"cpu-after-{label}")).read().split()[0]
    except (OSError, IndexError):
        return None
    return int(after.split("=")[1]) - int(before.split("=")[1])

def cpu_us_per_request(name):
    vals = []
    for r in range(1, rounds + 1):
        w, t = wrk(f"{name}-{r}"), gw_ticks(f"{name}-{r}")
        if w and w["requests"] and t:
            vals.append(t / int(os.environ["S_CLK_TCK"]) * 1e6 / w["requests"])
    return statistics.median(vals) if vals else None

def median(name, field):
    vals, bad = [], 0
    for r in range(1, rounds + 1):
        w = wrk(f"{name}-{r}")
        if w and w["duration_us"]:
            errs = w["non2xx"] + w["connect_err"] + w["read_err"] + w["write_err"] + w["timeout_err"]
            bad += errs
            vals.append((w["requests"] - errs) / (w["duration_us"] / 1e6) if field == "rps" else w[field])
    return (statistics.median(vals) if vals else None), bad, vals

rows = []
local, bad_l, all_l = median("limits-local", "rps")
shared, bad_r, all_r = median("limits-redis", "rps")
runs = lambda xs: "" if len(xs) < 2 else " (runs: " + ", ".join(f"{x:,.0f}" for x in xs) + ")"
rows.append((f"key limits counted here, c={conc}", f"{local:,.0f} req/s" + runs(all_l) if local else "no data", "(report)", "info"))
rows.append((f"key limits counted in Redis, c={conc}", f"{shared:,.0f} req/s" + runs(all_r) if shared else "no data", "(report)", "info"))
# Each round runs the two back to back, so the ratio is taken per round and the median of the
# rounds' ratios is judged: a machine whose speed drifts between rounds moves both alike.
ratios = [r / l for l, r in zip(all_l, all_r) if l] if len(all_l) == len(all_r) else []
if ratios:
    ratio = statistics.median(ratios)
    ok = ratio >= 0.85 and bad_r == 0
    each = "" if len(ratios) < 2 else " (rounds: " + ", ".join(f"{100 * x:.0f}%" for x in ratios) + ")"
    rows.append(("Redis-backed limits vs local, per round", f"{100 * ratio:.1f}%" + each + (f", {bad_r:.0f} errors" if bad_r else ""), ">= 85%", "PASS" if ok else "FAIL"))
else:
    rows.append(("Redis-backed limits vs local, per round", "no data", ">= 85%", "FAIL"))
cl, cr = cpu_us_per_request("limits-local"), cpu_us_per_request("limits-redis")
if cl and cr:
    rows.append(("gateway CPU per request, here / Redis", f"{cl:.1f} us / {cr:.1f} us (+{100 * (cr / cl - 1):.0f}%)", "(report)", "info"))
for name, limit in (("cache-local", 100), ("cache-redis", 500)):
    p50, bad, _ = median(name, "p50_us")
    p99, _, _ = median(name, "p99_us")
    if p50 is None:
        rows.append((f"{name} hit p50, c=1", "no data", f"< {limit} us", "FAIL"))
        continue
    ok = p50 < limit and bad == 0
    rows.append((f"{name} hit p50, c=1 (end to end, loopback)", f"{p50:.0f} us (p99 {p99:.0f} us)" + (f", {bad:.0f} errors" if bad else ""), f"< {limit} us", "PASS" if ok else "FAIL"))

w = max(len(r[0]) for r in rows)
print()
print(f"{'metric'.ljust(w)}  {'measured':<44}  {'target':<10}  verdict")
for m, v, t, ok in rows:
    print(f"{m.ljust(w)}  {v:<44}  {t:<10}  {ok}")
PY
