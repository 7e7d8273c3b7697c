#!/usr/bin/env bash
# llmgate soak test: the release gateway (SQLite spend tracking and its journal on, one worker)
# in front of bench_mock for --minutes of mixed traffic (plain and streamed chats, upstream
# errors, key churn), its resident memory sampled every 10 s. Prints the curve and PASS/FAIL on
# "memory flat after warm-up". See bench/README.md.
#
#   bench/soak.sh [--minutes N] [--quick] [--concurrency C] [--no-build] [--no-pin] [--keep-tmp]
set -uo pipefail

usage() {
  cat <<'EOF_USAGE'
usage: bench/soak.sh [options]
  --minutes N       traffic for N minutes (default 10)
  --quick           1 minute, sampled every 5 s
  --concurrency C   client threads (default 16)
  --no-build        do not run cargo build; use the binaries already in target/release
  --no-pin          do not pin processes to CPUs
  --keep-tmp        keep the temp dir (config, logs, samples) and print its path
env: LLMGATE_BIN, BENCH_MOCK_BIN override the binaries; CARGO_TARGET_DIR is honoured.
Exit status: 0 when every verdict is PASS, 1 otherwise (or when the build fails).
EOF_USAGE
}

MINUTES=10 SAMPLE_EVERY=10 CONC=16 BUILD=1 PIN=1 KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --minutes) MINUTES="${2:?--minutes needs a value}"; shift ;;
    --quick) MINUTES=1 SAMPLE_EVERY=5 ;;
    --concurrency) CONC="${2:?--concurrency needs a value}"; shift ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --keep-tmp) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "soak.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
SECONDS_TOTAL="$(python3 -c "print(int(float('$MINUTES') * 60))")"
MASTER_KEY=sk-bench-master-soak-0001

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
GW_BIN="${LLMGATE_BIN:-$TARGET_DIR/release/llmgate}"
MOCK_BIN="${BENCH_MOCK_BIN:-$TARGET_DIR/release/examples/bench_mock}"
for tool in python3 curl; do
  command -v "$tool" >/dev/null || { echo "soak.sh: '$tool' is required" >&2; exit 1; }
done

TMP="$(mktemp -d -t llmgate-soak.XXXXXX)"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
MOCK_PID="" GW_PID="" TRAFFIC_PID=""
cleanup() {
  stop_pid "$TRAFFIC_PID"
  stop_pid "$GW_PID" 30
  stop_pid "$MOCK_PID"
  if [[ $KEEP == 1 ]]; then echo "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

pin_cpus "$PIN" "mock and traffic"
echo "== llmgate soak: $MINUTES min of mixed traffic, $CONC clients, memory sampled every ${SAMPLE_EVERY}s"
if [[ $BUILD == 1 ]]; then
  echo "-- cargo build --release --bin llmgate --example bench_mock"
  (cd "$ROOT" && cargo build --release --bin llmgate --example bench_mock) || { echo "soak.sh: build failed" >&2; exit 1; }
fi
for b in "$GW_BIN" "$MOCK_BIN"; do
  [[ -x $b ]] || { echo "soak.sh: binary not found: $b" >&2; exit 1; }
done
echo "host: $(uname -srm), $(nproc) CPU(s); pinning: $PIN_DESC"
echo "load average before start: $(cut -d' ' -f1-3 /proc/loadavg)"

start_mock "$MOCK_BIN" --chunks 10 --chunk-delay-ms 5 || exit 1
JOURNAL="$TMP/llmgate.db.spend-journal"
cat >"$TMP/config.yaml" <<EOF_CONFIG
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-upstream-fake
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
  - model_name: broken
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$MOCK_PORT/no-such-route/v1
      api_key: sk-upstream-fake
router_settings:
  disable_cooldowns: true
general_settings:
  master_key: $MASTER_KEY
  database_url: sqlite://$TMP/llmgate.db
EOF_CONFIG
GW_PORT="$(free_port)"
"${GW_PIN[@]}" "$GW_BIN" --config "$TMP/config.yaml" --host 127.0.0.1 --port "$GW_PORT" --num_workers 1 \
  >"$TMP/gateway.log" 2>&1 &
GW_PID=$!
wait_ready "$GW_PID" "$GW_PORT" || { echo "soak.sh: the gateway did not start:" >&2; tail -20 "$TMP/gateway.log" >&2; exit 1; }
echo "-- gateway pid $GW_PID on 127.0.0.1:$GW_PORT, mock on $MOCK_PORT"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }

"${LOAD[@]}" python3 "$BENCH/soak_traffic.py" --port "$GW_PORT" --seconds "$SECONDS_TOTAL" \
  --concurrency "$CONC" --master-key "$MASTER_KEY" >"$TMP/traffic.json" 2>"$TMP/traffic.err" &
TRAFFIC_PID=$!
START=$(date +%s.%N)
: >"$TMP/samples.tsv"
printf '   %6s  %9s  %12s\n' "t (s)" "RSS (MiB)" "journal (KiB)"
sample() {
  local t rss j
  t="$(python3 -c "print(round($(date +%s.%N) - $START))")"
  rss="$(rss_kb "$GW_PID")"
  j="$(size_of "$JOURNAL")"
  [[ -n $rss ]] || return 1
  printf '%s\t%s\t%s\n' "$t" "$rss" "$j" >>"$TMP/samples.tsv"
  printf '   %6s  %9.1f  %12.1f\n' "$t" "$(python3 -c "print($rss/1024)")" "$(python3 -c "print($j/1024)")"
}
sample
while alive "$TRAFFIC_PID"; do
  for ((i = 0; i < SAMPLE_EVERY * 10; i++)); do
    alive "$TRAFFIC_PID" || break
    sleep 0.1
  done
  sample || break
done
wait "$TRAFFIC_PID" 2>/dev/null
TRAFFIC_PID=""
echo "-- traffic: $(cat "$TMP/traffic.json" 2>/dev/null)"
[[ -s $TMP/traffic.err ]] && { echo "   traffic errors:"; tail -5 "$TMP/traffic.err" | sed 's/^/     /'; }
METRICS="$(curl -s "http://127.0.0.1:$GW_PORT/metrics")"
echo "-- journal: $(grep -E '^llmgate_spend_journal_(syncs|records|unjournaled)_total ' <<<"$METRICS" | tr '\n' ' ')"

# A graceful stop writes the spend and removes the journal.
kill "$GW_PID"
STOP_OK=0
for ((i = 0; i < 600; i++)); do
  alive "$GW_PID" || break
  sleep 0.05
done
if ! alive "$GW_PID"; then
  wait "$GW_PID"; rc=$?
  [[ $rc == 0 && ! -e $JOURNAL ]] && STOP_OK=1
  echo "-- gateway stopped: exit $rc, journal $( [[ -e $JOURNAL ]] && echo kept || echo removed)"
fi
GW_PID=""

S_SAMPLES="$TMP/samples.tsv" S_TRAFFIC="$TMP/traffic.json" S_STOP_OK="$STOP_OK" S_TOTAL="$SECONDS_TOTAL" \
python3 - <<'PY'
import json, os
samples = [tuple(map(float, l.split("\t"))) for l in open(os.environ["S_SAMPLES"]) if l.strip()]
total = float(os.environ["S_TOTAL"])
rows = []
if samples:
    top = max(s[1] for s in samples)
    print("-- RSS curve (MiB)")
    for t, rss, _ in samples:
        bar = "#" * max(1, round(40 * rss / top))
        print(f"   {t:6.0f}s {rss / 1024:7.1f} {bar}")
warm = min(60.0, 0.2 * total)
after = [s for s in samples if s[0] >= warm]
third = max(1, len(after) // 3)
if len(after) >= 3:
    first, last = after[:third], after[-third:]
    fmax, lmax = max(s[1] for s in first), max(s[1] for s in last)
    limit = fmax * 1.10 + 4096
    rows.append(("memory flat after warm-up", f"last third max {lmax / 1024:.1f} MiB vs first third max {fmax / 1024:.1f} MiB (after {warm:.0f}s)",
                 f"<= first * 1.10 + 4 MiB ({limit / 1024:.1f})", "PASS" if lmax <= limit else "FAIL"))
else:
    rows.append(("memory flat after warm-up", "too few samples", ">= 3 after warm-up", "FAIL"))
jmax = max((s[2] for s in samples), default=0)
rows.append(("journal size, max sampled", f"{jmax / 1024:.1f} KiB", "report", "info"))
try:
    counts = json.load(open(os.environ["S_TRAFFIC"]))
except (OSError, ValueError):
    counts = {}
bad = {k: v for k, v in counts.items() if k.endswith("_bad")}
good = sum(v for k, v in counts.items() if k.endswith("_ok"))
rows.append(("traffic answered as expected", f"{good} ok, {sum(bad.values())} not {bad or ''}", "none not", "PASS" if good and not bad else "FAIL"))
rows.append(("graceful stop", "exit 0, journal removed" if os.environ["S_STOP_OK"] == "1" else "not clean", "exit 0, no journal left",
             "PASS" if os.environ["S_STOP_OK"] == "1" else "FAIL"))
w = [max(len(str(r[i])) for r in rows + [("metric", "measured", "target", "result")]) for i in range(4)]
line = "+-" + "-+-".join("-" * x for x in w) + "-+"
print(line)
print("| " + " | ".join(h.ljust(x) for h, x in zip(("metric", "measured", "target", "result"), w)) + " |")
print(line)
for r in rows:
    print("| " + " | ".join(str(c).ljust(x) for c, x in zip(r, w)) + " |")
print(line)
fails = sum(1 for r in rows if r[3] == "FAIL")
print(f"{sum(1 for r in rows if r[3] == 'PASS')} PASS, {fails} FAIL")
raise SystemExit(1 if fails else 0)
PY
