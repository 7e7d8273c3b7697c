#!/usr/bin/env bash
# What governance costs the gateway per request: instructions counted by callgrind (a shared,
# noisy machine does not move them) for a fixed number of chat requests from each kind of
# caller, each on a fresh gateway: the master key; a virtual key with no user or team; and a governed
# request (a key of a user in a team, both with a budget and rpm and tpm limits, the request
# naming an end user and a tag that have them too: five entities checked, counted and
# settled). Prints PASS or FAIL per target. A report: exits 0 once measuring has started.
#
#   bench/governance.sh [--requests N] [--concurrency C] [--warmup W] [--callers "..."]
#                       [--compare OLD_BIN] [--no-build] [--keep-tmp]
#
# With --compare OLD_BIN, the master-key and plain-key callers are measured on OLD_BIN too
# (an llmgate from before governance: it has no users or teams), so the change's cost to
# requests that use none of it is shown and judged.
set -uo pipefail

usage() {
  cat <<'USAGE'
usage: bench/governance.sh [options]
  --requests N       requests counted per caller (default 3000)
  --concurrency C    keep-alive connections sending them (default 1: the spend journal then
                     syncs once a request, so runs repeat to the instruction)
  --warmup W         requests per caller before counting starts (default 200)
  --callers "C..."   from: master key governed (default all three)
  --compare OLD_BIN  also measure master and key on OLD_BIN, and judge the difference
  --no-build         skip cargo build; use the binaries in target/release
  --keep-tmp         keep the temp dir (callgrind files, logs)
env: LLMGATE_BIN, BENCH_MOCK_BIN override the binaries; CARGO_TARGET_DIR is honoured.
USAGE
}

N=3000 CONC=1 WARM=200 CALLERS="master key governed" OLD_BIN="" BUILD=1 KEEP=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --requests) N="${2:?}"; shift ;;
    --concurrency) CONC="${2:?}"; shift ;;
    --warmup) WARM="${2:?}"; shift ;;
    --callers) CALLERS="${2:?}"; shift ;;
    --compare) OLD_BIN="${2:?}"; shift ;;
    --no-build) BUILD=0 ;;
    --keep-tmp) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "governance.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
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

for tool in valgrind callgrind_control python3 curl; do
  command -v "$tool" >/dev/null || { echo "governance.sh: '$tool' is required" >&2; exit 1; }
done
if [[ $BUILD == 1 ]]; then
  (cd "$ROOT" && cargo build --release --bin llmgate --example bench_mock) || exit 1
fi
for bin in "$GW_BIN" "$MOCK_BIN" ${OLD_BIN:+"$OLD_BIN"}; do
  [[ -x $bin ]] || { echo "governance.sh: missing $bin" >&2; exit 1; }
done

TMP="$(mktemp -d /tmp/llmgate-governance.XXXXXX)"
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
cat >"$TMP/config.yaml" <<CONFIG
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: http://127.0.0.1:$MOCK_PORT/v1
      api_key: sk-upstream-fake
general_settings:
  master_key: $MASTER_KEY
  # Spend is written every 2000 requests, never by the clock, so each run does the same work.
  proxy_batch_write_at: 3600
CONFIG

echo "governance cost: $N requests per caller at c=$CONC under callgrind (after $WARM warm-up each)"
echo "   $PIN_DESC; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

wait_ready_slow() { # wait_ready_slow PID PORT: like wait_ready, up to 3 minutes (valgrind starts slowly)
  local i
  for ((i = 0; i < 1800; i++)); do
    alive "$1" || return 1
    [[ "$(curl -s -o /dev/null -m 5 -w '%{http_code}' "http://127.0.0.1:$2/health/liveliness")" == 200 ]] && return 0
    sleep 0.1
  done
  return 1
}

admin() { # admin PORT PATH JSON -> the reply body
  curl -s -m 60 -H "Authorization: Bearer $MASTER_KEY" -H 'Content-Type: application/json' \
    -d "$3" "http://127.0.0.1:$1$2"
}

key_of() { # key_of PORT JSON -> a new key's plaintext
  admin "$1" /key/generate "$2" | python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])'
}

# measure LABEL BIN CALLER: a fresh gateway under callgrind; the caller's requests counted alone
# (one dump per process: callgrind's later dumps do not split costs reliably between threads).
declare -A IR
measure() {
  local label="$1" bin="$2" caller="$3" port dir key extra='{}'
  dir="$TMP/$label-$caller"
  mkdir -p "$dir"
  port="$(free_port)"
  echo
  echo "== $label, $caller: $bin"
  (cd "$dir" && exec "${GW_PIN[@]}" valgrind --tool=callgrind --instr-atstart=no \
    --callgrind-out-file="$dir/callgrind.out" \
    "$bin" --config "$TMP/config.yaml" --host 127.0.0.1 --port "$port" --num_workers 1 \
    >"$dir/gateway.log" 2>&1) &
  GW_PID=$!
  if ! wait_ready_slow "$GW_PID" "$port"; then
    echo "   the gateway did not start; log:"; tail -20 "$dir/gateway.log"; exit 0
  fi
  case "$caller" in
    master) key="$MASTER_KEY" ;;
    key) key="$(key_of "$port" '{"duration": null}')" ;;
    governed)
      admin "$port" /team/new '{"team_id": "bench-team", "max_budget": 1000000, "rpm_limit": 10000000, "tpm_limit": 1000000000}' >/dev/null
      admin "$port" /user/new '{"user_id": "bench-user", "max_budget": 1000000, "rpm_limit": 10000000, "auto_create_key": false}' >/dev/null
      admin "$port" /end_user/new '{"user_id": "bench-customer", "max_budget": 1000000, "rpm_limit": 10000000}' >/dev/null
      admin "$port" /tag/new '{"name": "bench-tag", "max_budget": 1000000, "rpm_limit": 10000000}' >/dev/null
      key="$(key_of "$port" '{"duration": null, "user_id": "bench-user", "team_id": "bench-team"}')"
      extra='{"user": "bench-customer", "metadata": {"tags": ["bench-tag"]}}'
      ;;
    *) echo "governance.sh: unknown caller $caller" >&2; exit 2 ;;
  esac
  [[ -n $key ]] || { echo "   could not make a key for $caller"; exit 0; }
  drive() {
    "${LOAD[@]}" python3 "$BENCH/fixed_requests.py" --port "$port" --requests "$1" \
      --concurrency "$CONC" --key "$key" --extra "$extra"
  }
  echo "   warm-up: $(drive "$WARM")"
  callgrind_control -i on "$GW_PID" >/dev/null
  echo "   counted: $(drive "$N")"
  callgrind_control -d "$GW_PID" >/dev/null
  callgrind_control -i off "$GW_PID" >/dev/null
  stop_pid "$GW_PID" 60
  GW_PID=""
  local total
  total="$(sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$dir/callgrind.out.1" | head -1)"
  IR["$label/$caller"]="$(python3 -c "print(round(${total:-0} / $N))")"
  echo "   ${IR["$label/$caller"]} instructions per request"
}

for caller in $CALLERS; do
  measure new "$GW_BIN" "$caller"
  # The old build has no users or teams: only the callers that need none are compared.
  [[ -n $OLD_BIN && $caller != governed ]] && measure old "$OLD_BIN" "$caller"
done

export S_PAIRS="$(for k in "${!IR[@]}"; do echo "$k=${IR[$k]}"; done)"
python3 - <<'PY'
import os
ir = dict(line.split("=", 1) for line in os.environ["S_PAIRS"].split() if "=" in line)
ir = {k: int(v) for k, v in ir.items()}
rows = []
def row(metric, value, target, ok):
    rows.append((metric, value, target, "info" if ok is None else ("PASS" if ok else "FAIL")))
for caller in ("master", "key", "governed"):
    if f"new/{caller}" in ir:
        row(f"instructions/request, {caller}", f"{ir[f'new/{caller}']:,}", "(report)", None)
if "new/key" in ir and "new/governed" in ir:
    extra = ir["new/governed"] - ir["new/key"]
    share = extra / ir["new/key"]
    row("governed over plain key (5 entities)", f"+{extra:,} ({share:+.1%})", "<= +15%", share <= 0.15)
for caller in ("master", "key"):
    if f"new/{caller}" in ir and f"old/{caller}" in ir:
        old, new = ir[f"old/{caller}"], ir[f"new/{caller}"]
        share = (new - old) / old
        row(f"{caller}: this build over the old one", f"{new - old:+,} ({share:+.1%}; old {old:,})", "<= +3%", share <= 0.03)
w = [max(len(r[i]) for r in rows + [("metric", "measured", "target", "result")]) for i in range(4)]
line = "+-" + "-+-".join("-" * x for x in w) + "-+"
print()
print("== summary")
print(line)
print("| " + " | ".join(h.ljust(x) for h, x in zip(("metric", "measured", "target", "result"), w)) + " |")
print(line)
for r in rows:
    print("| " + " | ".join(c.ljust(x) for c, x in zip(r, w)) + " |")
print(line)
print(f"{sum(r[3] == 'PASS' for r in rows)} PASS, {sum(r[3] == 'FAIL' for r in rows)} FAIL")
PY
exit 0
