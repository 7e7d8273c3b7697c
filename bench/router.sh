#!/usr/bin/env bash
# llmgate router benchmark: throughput at c=64 with ten deployments in one group under
# usage-based-routing-v2 (every deployment with rpm and tpm limits, so each request is
# token-estimated, limit-checked and reserved), against one deployment. Target: the ten-
# deployment figure within 10% of the single-deployment one. Also reports how long the
# router's picks take, as measured inside the gateway (its shutdown log line). Prints a
# table with PASS/FAIL; exits 0 once measuring has started (it is a report).
#
#   bench/router.sh [--quick] [--no-build] [--no-pin] [--keep-tmp] [--rounds N]
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/router.sh [options]
  --quick       3 s wrk runs (1 s warm-up) instead of 10 s (2 s warm-up)
  --no-build    do not run cargo build; use the binaries already in target/release
  --no-pin      do not pin processes to CPUs
  --keep-tmp    keep the temp dir (configs, gateway logs, raw wrk output)
  --rounds N    run every scenario N times, the order rotating (default 1); medians reported
env: LLMGATE_BIN, BENCH_MOCK_BIN override the binaries; CARGO_TARGET_DIR is honoured.
EOF
}

ORIG_ARGS=("$@")
QUICK=0 BUILD=1 PIN=1 KEEP=0 ROUNDS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --keep-tmp) KEEP=1 ;;
    --rounds)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "router.sh: --rounds needs a positive integer" >&2; exit 2; }
      ROUNDS="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "router.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then TPUT_DUR=3 WARM_DUR=1; else TPUT_DUR=10 WARM_DUR=2; fi
CONC=64
MASTER_KEY=sk-bench-router-master
CHAT_PATH=/v1/chat/completions
SCENARIOS=(one-shuffle one-v2 ten-v2)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
GW_BIN="${LLMGATE_BIN:-$TARGET_DIR/release/llmgate}"
MOCK_BIN="${BENCH_MOCK_BIN:-$TARGET_DIR/release/examples/bench_mock}"
CMDLINE="bench/router.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"

for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "router.sh: '$tool' is required" >&2; exit 1; }
done

TMP="$(mktemp -d -t llmgate-router.XXXXXX)"
export LLMGATE_SQLITE_PATH="$TMP/llmgate.db"
MOCK_PID="" GW_PID=""
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"

cleanup() {
  stop_pid "$GW_PID" 10
  stop_pid "$MOCK_PID"
  if [[ $KEEP == 1 ]]; then echo "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

pin_cpus "$PIN" "mock and wrk"

echo "== llmgate router benchmark ($( [[ $QUICK == 1 ]] && echo quick || echo full )): $CMDLINE"
if [[ $BUILD == 1 ]]; then
  echo "-- cargo build --release --bin llmgate --example bench_mock"
  (cd "$ROOT" && cargo build --release --bin llmgate --example bench_mock) || { echo "router.sh: build failed" >&2; exit 1; }
fi
[[ -x $MOCK_BIN && -x $GW_BIN ]] || { echo "router.sh: binaries not found ($GW_BIN, $MOCK_BIN)" >&2; exit 1; }
echo "host: $(uname -srm), $NCPU CPU(s); pinning: $PIN_DESC"
echo "load average before start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs: c=$CONC ${TPUT_DUR}s after a ${WARM_DUR}s warm-up, gateway with --num_workers 1; $ROUNDS round(s)"

start_mock "$MOCK_BIN" || exit 1
echo "   mock pid $MOCK_PID on 127.0.0.1:$MOCK_PORT"

# write_config SCENARIO FILE
write_config() {
  local n=1 strategy=simple-shuffle limits="" i
  case "$1" in
    one-shuffle) ;;
    one-v2) strategy=usage-based-routing-v2 limits=", rpm: 100000000, tpm: 100000000000" ;;
    ten-v2) n=10 strategy=usage-based-routing-v2 limits=", rpm: 100000000, tpm: 100000000000" ;;
  esac
  {
    echo "model_list:"
    for ((i = 0; i < n; i++)); do
      echo "  - model_name: bench-model"
      echo "    litellm_params: {model: openai/bench-model, api_base: \"http://127.0.0.1:$MOCK_PORT/v1\", api_key: sk-upstream-fake$limits}"
      echo "    model_info: {id: bench-deployment-$i}"
    done
    echo "router_settings: {routing_strategy: $strategy}"
    echo "general_settings: {master_key: $MASTER_KEY}"
  } >"$2"
}

# run_scenario SCENARIO ROUND: gateway up, warm-up, measured run, stop; results in $TMP
run_scenario() {
  local s="$1" r="$2" label="$1-$2" cfg="$TMP/config-$1.yaml" log="$TMP/gateway-$1-$2.log"
  write_config "$s" "$cfg"
  GW_PORT="$(free_port)"
  "${GW_PIN[@]}" "$GW_BIN" --num_workers 1 --host 127.0.0.1 --port "$GW_PORT" --config "$cfg" >"$log" 2>&1 &
  GW_PID=$!
  if ! wait_ready "$GW_PID" "$GW_PORT"; then
    echo "   [$label] the gateway did not become ready; its log:"; tail -20 "$log" | sed 's/^/     /'
    stop_pid "$GW_PID" 10; GW_PID=""
    return
  fi
  BENCH_AUTH="$MASTER_KEY" "${LOAD[@]}" wrk -t1 -c"$CONC" -d"${WARM_DUR}s" --timeout 5s \
    -s "$BENCH/post.lua" "http://127.0.0.1:$GW_PORT$CHAT_PATH" >/dev/null 2>&1
  cpu_snap "$GW_PID" >"$TMP/cpu-before-$label"
  BENCH_AUTH="$MASTER_KEY" "${LOAD[@]}" wrk -t1 -c"$CONC" -d"${TPUT_DUR}s" --timeout 5s --latency \
    -s "$BENCH/post.lua" "http://127.0.0.1:$GW_PORT$CHAT_PATH" >"$TMP/wrk-$label.txt" 2>&1
  cpu_snap "$GW_PID" >"$TMP/cpu-after-$label"
  # Spread check: with ten deployments every one of them must have served.
  curl -s -H "Authorization: Bearer $MASTER_KEY" "http://127.0.0.1:$GW_PORT/model/info" >"$TMP/model-info-$label.json"
  stop_pid "$GW_PID" 10
  GW_PID=""
  local req dur picks
  req="$(wrk_get "$label" requests)" dur="$(wrk_get "$label" duration_us)"
  picks="$(grep -o 'router: .*' "$log" | tail -1)"
  if [[ -z $req ]]; then
    echo "   [$label] wrk produced no result"; sed 's/^/     /' "$TMP/wrk-$label.txt"; return
  fi
  printf '   [%s] %s requests, %.0f req/s, p50 %s us, p99 %s us, non-2xx %s, socket errors %s; %s\n' \
    "$label" "$req" "$(python3 -c "print($req / ($dur / 1e6))")" "$(wrk_get "$label" p50_us)" \
    "$(wrk_get "$label" p99_us)" "$(wrk_num "$label" non2xx)" "$(wrk_errs "$label")" "${picks:-no pick times in the log}"
}

for ((r = 1; r <= ROUNDS; r++)); do
  echo "-- round $r"
  for ((k = 0; k < ${#SCENARIOS[@]}; k++)); do
    run_scenario "${SCENARIOS[$(((k + r - 1) % ${#SCENARIOS[@]}))]}" "$r"
  done
done

export S_TMP="$TMP" S_ROUNDS="$ROUNDS" S_CONC="$CONC" S_CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
python3 - <<'PY'
import glob, json, os, re, statistics

E = os.environ
tmp, rounds, conc = E["S_TMP"], int(E["S_ROUNDS"]), E["S_CONC"]

def wrk(label):
    try:
        line = next(l for l in open(os.path.join(tmp, f"wrk-{label}.txt")) if l.startswith("WRK_RESULT"))
    except (OSError, StopIteration):
        return None
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}

def picks(label):
    try:
        text = open(os.path.join(tmp, f"gateway-{label}.log")).read()
    except OSError:
        return None
    m = re.findall(r"router: (\d+) picks, mean ([\d.]+) µs, p99 ([\d.]+) µs", text)
    return tuple(map(float, m[-1])) if m else None

def served(label):
    try:
        data = json.load(open(os.path.join(tmp, f"model-info-{label}.json")))["data"]
    except (OSError, ValueError, KeyError):
        return None
    return [d.get("live", {}).get("rpm_used") for d in data]

def scenario(name):
    rps, bad, pk = [], 0, []
    for r in range(1, rounds + 1):
        w = wrk(f"{name}-{r}")
        if w and w["duration_us"]:
            errs = w["non2xx"] + w["connect_err"] + w["read_err"] + w["write_err"] + w["timeout_err"]
            bad += errs
            rps.append((w["requests"] - errs) / (w["duration_us"] / 1e6))
        p = picks(f"{name}-{r}")
        if p:
            pk.append(p)
    return (statistics.median(rps) if rps else None), bad, pk, rps

rows = []
one_s, bad_s, pk_s, all_s = scenario("one-shuffle")
one_v2, bad_1, pk_1, all_1 = scenario("one-v2")
ten_v2, bad_10, pk_10, all_10 = scenario("ten-v2")
fmt = lambda v: f"{v:,.0f} req/s" if v else "no data"
def runs(xs):
    return "" if len(xs) < 2 else " (runs: " + ", ".join(f"{x:,.0f}" for x in xs) + ")"
rows.append((f"1 deployment, simple-shuffle, c={conc}", fmt(one_s) + runs(all_s), "(report)", "info"))
rows.append((f"1 deployment, usage-based-routing-v2, c={conc}", fmt(one_v2) + runs(all_1), "(report)", "info"))
rows.append((f"10 deployments, usage-based-routing-v2, c={conc}", fmt(ten_v2) + runs(all_10), "(report)", "info"))
def ratio_row(name, base):
    if ten_v2 and base:
        r = ten_v2 / base
        ok = r >= 0.9 and bad_10 == 0
        note = f"{100 * r:.1f}%" + (f", {bad_10:.0f} errors/non-2xx!" if bad_10 else "")
        rows.append((name, note, ">= 90%", "PASS" if ok else "FAIL"))
    else:
        rows.append((name, "no data", ">= 90%", "FAIL"))
ratio_row("10 deployments vs 1, both usage-based-v2", one_v2)
ratio_row("10 deployments (v2) vs 1 (simple-shuffle)", one_s)
sp = served(f"ten-v2-{rounds}")
if sp is not None:
    rows.append(("requests per deployment (last 10-deployment run)", ", ".join(str(x) for x in sp), "all > 0",
                 "PASS" if sp and all(isinstance(x, int) and x > 0 for x in sp) else "FAIL"))
for name, pk in (("1 deployment, v2", pk_1), ("10 deployments, v2", pk_10), ("1 deployment, shuffle", pk_s)):
    if pk:
        n, mean, p99 = pk[-1]
        rows.append((f"pick time in the router, {name}", f"mean {mean:.2f} us, p99 {p99:.2f} us over {n:,.0f} picks", "(report)", "info"))

w = max(len(r[0]) for r in rows)
print()
print(f"{'metric'.ljust(w)}  {'measured':<60}  {'target':<10}  verdict")
for m, v, t, ok in rows:
    print(f"{m.ljust(w)}  {v:<60}  {t:<10}  {ok}")
PY
