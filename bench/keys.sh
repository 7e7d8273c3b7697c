#!/usr/bin/env bash
# llmgate virtual-key benchmark: throughput at c=64 with a virtual key versus the master
# key (target: >= 90%), and the rate at which the spend actor writes spend-log rows, on
# SQLite and on PostgreSQL. Prints a summary table per backend; always exits 0 once
# measuring has started (it is a report). See bench/README.md, "Virtual keys and spend".
#
#   bench/keys.sh [--quick] [--no-build] [--no-pin] [--keep-tmp] [--backend sqlite|postgres|both]
set -uo pipefail

usage() {
  cat <<'EOF'
usage: bench/keys.sh [options]
  --quick             3 s wrk runs (1 s warm-up) instead of 10 s (2 s warm-up)
  --no-build          do not run cargo build; use the binaries already in target/release
  --no-pin            do not pin processes to CPUs
  --keep-tmp          keep the temp dir (configs, gateway logs, SQLite file, raw wrk output)
  --backend B         sqlite, postgres or both (default both)
env: LLMGATE_BIN, BENCH_MOCK_BIN override the binaries; CARGO_TARGET_DIR is honoured;
     BENCH_PG_HOST (127.0.0.1), BENCH_PG_PORT (5432), BENCH_PG_USER (postgres) name the
     PostgreSQL server a temporary database is created on (and dropped at the end).
EOF
}

ORIG_ARGS=("$@")
QUICK=0 BUILD=1 PIN=1 KEEP=0 BACKENDS="sqlite postgres" VIRTUAL_FIRST=0 ROUNDS=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) QUICK=1 ;;
    --no-build) BUILD=0 ;;
    --no-pin) PIN=0 ;;
    --keep-tmp) KEEP=1 ;;
    --virtual-first) VIRTUAL_FIRST=1 ;;
    --rounds)
      [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "keys.sh: --rounds needs a positive integer" >&2; exit 2; }
      ROUNDS="$2"; shift ;;
    --backend)
      case "${2:-}" in
        sqlite|postgres) BACKENDS="$2" ;;
        both) BACKENDS="sqlite postgres" ;;
        *) echo "keys.sh: --backend needs sqlite, postgres or both" >&2; exit 2 ;;
      esac
      shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "keys.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done

if [[ $QUICK == 1 ]]; then
  TPUT_DUR=3 WARM_DUR=1
else
  TPUT_DUR=10 WARM_DUR=2
fi
CONC=64
MASTER_KEY=sk-bench-master-5c2e9a
CHAT_PATH=/v1/chat/completions
BATCH_SECS=1            # proxy_batch_write_at in the gateway's config
STABLE_SECS=3           # the spend-log count is "done growing" after this long unchanged
POLL_SECS=0.1           # how often the count is polled after the load ends
DRAIN_MAX_SECS=120      # give up waiting for the count to settle after this long
PG_HOST="${BENCH_PG_HOST:-127.0.0.1}" PG_PORT="${BENCH_PG_PORT:-5432}" PG_USER="${BENCH_PG_USER:-postgres}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
GW_BIN="${LLMGATE_BIN:-$TARGET_DIR/release/llmgate}"
MOCK_BIN="${BENCH_MOCK_BIN:-$TARGET_DIR/release/examples/bench_mock}"
CMDLINE="bench/keys.sh${ORIG_ARGS[*]:+ ${ORIG_ARGS[*]}}"

for tool in wrk python3 curl; do
  command -v "$tool" >/dev/null || { echo "keys.sh: '$tool' is required" >&2; exit 1; }
done
HAVE_SQLITE3=0
command -v sqlite3 >/dev/null && HAVE_SQLITE3=1

# ---------------------------------------------------------------- processes and cleanup
TMP="$(mktemp -d -t llmgate-keys.XXXXXX)"
# shellcheck source=bench/lib.sh
source "$BENCH/lib.sh"
MOCK_PID="" GW_PID="" PG_DB=""

pg_admin() { # pg_admin SQL: run on the server's postgres database
  psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"
}
drop_pg_db() {
  [[ -n $PG_DB ]] || return 0
  if pg_admin "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>"$TMP/pg-drop.err"; then
    echo "   dropped PostgreSQL database $PG_DB"
  else
    echo "   could not drop PostgreSQL database $PG_DB: $(cat "$TMP/pg-drop.err")" >&2
  fi
  PG_DB=""
}
cleanup() {
  stop_pid "$GW_PID" 10
  GW_PID=""
  stop_pid "$MOCK_PID"
  drop_pg_db
  if [[ $KEEP == 1 ]]; then
    echo "temp dir kept: $TMP"
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM HUP

now_ns() { date +%s%N; }

# ---------------------------------------------------------------- CPU pinning
NCPU="$(nproc 2>/dev/null || echo 1)"
if [[ $PIN == 1 && $NCPU -ge 2 ]] && command -v taskset >/dev/null; then
  GW_CPU=0 LOAD_CPU=1
  LOAD=(taskset -c "$LOAD_CPU")
  GW_PIN=(taskset -c "$GW_CPU")
  PIN_DESC="gateway on CPU $GW_CPU; mock, wrk and the database polls on CPU $LOAD_CPU (taskset); the PostgreSQL server is not pinned"
else
  LOAD=()
  GW_PIN=()
  PIN_DESC="no CPU pinning ($( [[ $PIN == 0 ]] && echo '--no-pin' || echo "only $NCPU CPU(s) or no taskset"))"
fi

# ---------------------------------------------------------------- build
echo "== llmgate virtual-key + spend benchmark ($( [[ $QUICK == 1 ]] && echo quick || echo full )): $CMDLINE"
if [[ $BUILD == 1 ]]; then
  BUILD_CMD=(cargo build --release --bin llmgate --example bench_mock)
  echo "-- ${BUILD_CMD[*]}"
  if ! (cd "$ROOT" && "${BUILD_CMD[@]}"); then
    echo "keys.sh: build failed" >&2
    exit 1
  fi
fi
[[ -x $MOCK_BIN ]] || { echo "keys.sh: mock binary not found: $MOCK_BIN" >&2; exit 1; }
[[ -x $GW_BIN ]] || { echo "keys.sh: gateway binary not found: $GW_BIN" >&2; exit 1; }

echo "host: $(uname -srm), $NCPU CPU(s): $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
echo "pinning: $PIN_DESC"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average before start: $LOAD_AT_START"
if [[ $VIRTUAL_FIRST == 1 ]]; then ORDER="a virtual key, then the master key"; else ORDER="the master key, then a virtual key"; fi
echo "runs per backend: c=$CONC ${TPUT_DUR}s with $ORDER (each after a ${WARM_DUR}s warm-up)$( ((ROUNDS > 1)) && echo "; $ROUNDS rounds, the order alternating"); proxy_batch_write_at: $BATCH_SECS"
echo "spend-log counts via: $( [[ $HAVE_SQLITE3 == 1 ]] && echo 'sqlite3 CLI' || echo "python3's sqlite3 module (no sqlite3 CLI)" ) / psql"

# ---------------------------------------------------------------- helpers
# run_wrk LABEL CONNS SECONDS AUTH -> raw output in $TMP/wrk-LABEL.txt
run_wrk() {
  BENCH_AUTH="$4" "${LOAD[@]}" wrk -t1 -c"$2" -d"$3s" --timeout 5s --latency \
    -s "$BENCH/post.lua" "http://127.0.0.1:$GW_PORT$CHAT_PATH" >"$TMP/wrk-$1.txt" 2>&1
}
wrk_line() {
  local l="$1" req dur
  req="$(wrk_get "$l" requests)"
  if [[ -z $req ]]; then
    echo "   [$l] wrk produced no result; output:"; sed 's/^/     /' "$TMP/wrk-$l.txt"; return
  fi
  dur="$(wrk_get "$l" duration_us)"
  printf '   [%s] %s requests in %.2f s, %.0f req/s, p50 %s us, p99 %s us, non-2xx %s, socket errors %s\n' \
    "$l" "$req" "$(python3 -c "print($dur / 1e6)")" "$(python3 -c "print($req / ($dur / 1e6))")" \
    "$(wrk_get "$l" p50_us)" "$(wrk_get "$l" p99_us)" "$(wrk_get "$l" non2xx)" "$(wrk_errs "$l")"
}

# db_q SQL -> the result (one row, columns separated by '|'), on the current backend
db_q() {
  case "$DB_KIND" in
    sqlite)
      if [[ $HAVE_SQLITE3 == 1 ]]; then
        "${LOAD[@]}" sqlite3 -batch -noheader -cmd '.timeout 10000' "$SQLITE_FILE" "$1"
      else
        "${LOAD[@]}" python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1], timeout=10)
for r in c.execute(sys.argv[2]):
    print("|".join("" if v is None else repr(v) if isinstance(v, float) else str(v) for v in r))' "$SQLITE_FILE" "$1"
      fi ;;
    postgres)
      "${LOAD[@]}" psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -XAtq -v ON_ERROR_STOP=1 -c "$1" ;;
  esac
}
# Chat requests the gateway logged as answered with 200 / with another status (its access log)
log_200() { grep -c "POST $CHAT_PATH .*status=200" "$GW_LOG" 2>/dev/null; }
log_non200() { grep "POST $CHAT_PATH .*status=" "$GW_LOG" 2>/dev/null | grep -vc 'status=200'; }

# wait_drain WHERE END_NS: poll `count(*) from llmgate_spend_logs WHERE` every POLL_SECS
# until it has not changed for STABLE_SECS. Sets D_ROWS (the final count) and D_DRAIN_MS
# (from END_NS to the first poll that saw the final count: when the last row had landed,
# to within one poll), D_OK=0 on a query error or if it never settled.
wait_drain() {
  local sql="select count(*) from llmgate_spend_logs $1" end_ns="$2"
  local n prev="" seen_ns=0 stable_ns=0 t deadline=$(( $2 + DRAIN_MAX_SECS * 1000000000 ))
  D_OK=1 D_ROWS="" D_DRAIN_MS=""
  while :; do
    n="$(db_q "$sql" 2>>"$TMP/db-errors.txt")"
    t="$(now_ns)"
    if [[ ! $n =~ ^[0-9]+$ ]]; then
      echo "   database poll failed: '$n' $(tail -1 "$TMP/db-errors.txt" 2>/dev/null)"
      D_OK=0; return
    fi
    if [[ $n != "$prev" ]]; then
      prev="$n" seen_ns="$t" stable_ns="$t"
    elif (( t - stable_ns >= STABLE_SECS * 1000000000 )); then
      break
    fi
    if (( t > deadline )); then
      echo "   the spend-log count was still changing ${DRAIN_MAX_SECS}s after the load ended"
      D_OK=0; break
    fi
    sleep "$POLL_SECS"
  done
  D_ROWS="$prev"
  D_DRAIN_MS="$(( (seen_ns - end_ns) / 1000000 ))"
  (( D_DRAIN_MS < 0 )) && D_DRAIN_MS=0
}

res() { echo "$1=$2" >>"$RES"; } # res KEY VALUE: record a result for the summary

# phase LABEL ROUND AUTH WHERE: warm up, let the rows settle, then the measured c=64 run and
# the drain after it; results recorded as LABEL.ROUND.*.
phase() {
  local label="$1" round="$2" auth="$3" where="$4" base log0 non0 end_ns
  local id="$B-$label-$round" r="$label.$round" tag="$label key$( ((ROUNDS > 1)) && echo ", round $round")"
  echo "-- $tag: warm-up ${WARM_DUR}s at c=$CONC"
  run_wrk "$id-warm" "$CONC" "$WARM_DUR" "$auth"
  wait_drain "$where" "$(now_ns)"
  base="$D_ROWS"
  log0="$(log_200)" non0="$(log_non200)"
  echo "   spend-log rows for this key after the warm-up settled: ${base:-?}"
  echo "-- $tag: c=$CONC ${TPUT_DUR}s"
  cpu_snap "$GW_PID" >"$TMP/cpu-$id-before"
  run_wrk "$id" "$CONC" "$TPUT_DUR" "$auth"
  end_ns="$(now_ns)"
  cpu_snap "$GW_PID" >"$TMP/cpu-$id-after"
  wrk_line "$id"
  wait_drain "$where" "$end_ns"
  local rows="" log200 non200
  [[ -n $base && -n $D_ROWS ]] && rows=$(( D_ROWS - base ))
  log200=$(( $(log_200) - log0 )) non200=$(( $(log_non200) - non0 ))
  echo "   spend-log rows written for this run: ${rows:-?} (settled ${STABLE_SECS}s; last row landed ${D_DRAIN_MS:-?} ms after wrk stopped);" \
    "gateway access log: $log200 chat requests answered 200, $non200 other"
  res "$r.req" "$(wrk_get "$id" requests)"
  res "$r.dur_us" "$(wrk_get "$id" duration_us)"
  res "$r.non2xx" "$(wrk_get "$id" non2xx)"
  res "$r.errs" "$(wrk_errs "$id")"
  res "$r.p50" "$(wrk_get "$id" p50_us)"
  res "$r.p99" "$(wrk_get "$id" p99_us)"
  res "$r.rows" "$rows"
  res "$r.drain_ms" "$D_DRAIN_MS"
  res "$r.drain_ok" "$D_OK"
  res "$r.log200" "$log200"
  res "$r.lognon200" "$non200"
  res "$r.cpu_before" "$(cat "$TMP/cpu-$id-before")"
  res "$r.cpu_after" "$(cat "$TMP/cpu-$id-after")"
}

# ---------------------------------------------------------------- summary
summary() { # summary BACKEND
  S_RES="$TMP/res-$1.txt" S_BACKEND="$1" S_CONC="$CONC" S_PIN="$PIN_DESC" S_CMD="$CMDLINE" \
  S_CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)" S_BATCH="$BATCH_SECS" S_STABLE="$STABLE_SECS" \
  S_MODE="$( [[ $QUICK == 1 ]] && echo quick || echo full )" S_LOAD="$LOAD_AT_START" S_ROUNDS="$ROUNDS" python3 - <<'PY'
import os
import statistics

E = os.environ
R = {}     # backend-wide results
RUNS = {}  # label -> {round: {key: value}}
try:
    with open(E["S_RES"]) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            parts = k.split(".", 2)
            if len(parts) == 3 and parts[0] in ("master", "virtual"):
                RUNS.setdefault(parts[0], {}).setdefault(int(parts[1]), {})[parts[2]] = v
            else:
                R[k] = v
except OSError:
    pass

def fnum(d, k):
    try:
        return float(d.get(k, "").strip())
    except ValueError:
        return None

conc = int(E["S_CONC"])
tck = float(E.get("S_CLK_TCK") or 100)
rounds = int(E["S_ROUNDS"])
med = statistics.median
rows = []  # (metric, measured, target, result)
verdict = lambda ok: "PASS" if ok else "FAIL"  # no data is a FAIL

def tput(run):
    """(2xx req/s, 2xx count, seconds, errors + non-2xx) of one wrk run, or None."""
    req, dur = fnum(run, "req"), fnum(run, "dur_us")
    if not req or not dur:
        return None
    non2xx, errs = fnum(run, "non2xx") or 0, fnum(run, "errs") or 0
    return ((req - non2xx) / (dur / 1e6), req - non2xx, dur / 1e6, non2xx + errs)

def cpu(run, req, secs):
    """(gateway % of a core, gateway us CPU per request, 'CPU0 x%, CPU1 y%') or None."""
    try:
        b = dict(kv.split("=", 1) for kv in run["cpu_before"].split())
        a = dict(kv.split("=", 1) for kv in run["cpu_after"].split())
    except (KeyError, ValueError):
        return None
    gw = (float(a["gw"]) - float(b["gw"])) / tck
    cores = []
    for k in sorted(k for k in a if k.startswith("cpu") and k in b):
        (bb, bs, bt), (ab, as_, at) = (map(float, b[k].split(",")), map(float, a[k].split(",")))
        if at - bt > 0:
            cores.append(f"{k.upper()} {100 * (ab - bb) / (at - bt):.0f}%"
                         + (f" (steal {100 * (as_ - bs) / (at - bt):.0f}%)" if as_ - bs > 0 else ""))
    return (100 * gw / secs, 1e6 * gw / max(req, 1), ", ".join(cores))

T = {}    # label -> {round: tput tuple}
CPU = {}  # label -> {round: cpu tuple}
for label in ("master", "virtual"):
    for rnd, run in sorted(RUNS.get(label, {}).items()):
        t = tput(run)
        if t:
            T.setdefault(label, {})[rnd] = t
            c = cpu(run, fnum(run, "req"), t[2])
            if c:
                CPU.setdefault(label, {})[rnd] = c

for label, name in (("master", "master key"), ("virtual", "virtual key")):
    ts = T.get(label, {})
    bad = sum(t[3] for t in ts.values())
    if not ts:
        note = "no data"
    elif len(ts) == 1:
        (rnd, t), = ts.items()
        run = RUNS[label][rnd]
        note = f"{t[0]:,.0f} req/s (2xx only)"
        if fnum(run, "p50") is not None and fnum(run, "p99") is not None:
            note += f"; p50 {fnum(run, 'p50') / 1000:.2f} ms, p99 {fnum(run, 'p99') / 1000:.2f} ms"
        c = CPU.get(label, {}).get(rnd)
        if c:
            note += f"; gateway {c[0]:.0f}% of a core, {c[1]:.0f} us CPU/req; {c[2]}"
    else:
        note = (f"median {med(t[0] for t in ts.values()):,.0f} req/s (2xx only) of {len(ts)} runs: "
                + ", ".join(f"{t[0]:,.0f}" for _, t in sorted(ts.items())))
        cs = CPU.get(label, {})
        if cs:
            note += "; gateway CPU/req " + ", ".join(f"{c[1]:.0f}" for _, c in sorted(cs.items())) + " us"
            note += "; CPU busy: " + " / ".join(c[2] for _, c in sorted(cs.items()))
    if bad:
        note += f"; {bad:.0f} errors/non-2xx!"
    ok = len(ts) == rounds and not bad
    rows.append((f"throughput c={conc}, {name}", note, "(baseline)" if label == "master" else "(report)",
                 "info" if ok else "FAIL"))

both = sorted(set(T.get("master", {})) & set(T.get("virtual", {})))
ratios = [T["virtual"][r][0] / T["master"][r][0] for r in both if T["master"][r][0] > 0]
clean = all(t[3] == 0 for l in T.values() for t in l.values())
if ratios and len(ratios) == rounds:
    if rounds == 1:
        note = f"{100 * ratios[0]:.1f}% ({T['virtual'][both[0]][0]:,.0f} / {T['master'][both[0]][0]:,.0f})"
        target = ">= 90%"
    else:
        pooled = (sum(t[1] for t in T["virtual"].values()) / sum(t[2] for t in T["virtual"].values())) / \
                 (sum(t[1] for t in T["master"].values()) / sum(t[2] for t in T["master"].values()))
        note = (f"median {100 * med(ratios):.1f}% of rounds " + ", ".join(f"{100 * r:.1f}%" for r in ratios)
                + f"; pooled {100 * pooled:.1f}%")
        target = ">= 90% (median)"
    if not clean:
        note += "; errors or non-2xx in a run!"
    rows.append(("virtual key / master key", note, target, verdict(med(ratios) >= 0.9 and clean)))
else:
    rows.append(("virtual key / master key", "no data", ">= 90%", "FAIL"))
cm, cv = CPU.get("master", {}), CPU.get("virtual", {})
if cm and cv:
    m, v = med(c[1] for c in cm.values()), med(c[1] for c in cv.values())
    rows.append(("gateway CPU per request", f"virtual {v:.0f} us vs master {m:.0f} us ({100 * (v / m - 1):+.0f}%)"
                 + (" (medians)" if rounds > 1 else ""), "(report)", "info"))

def lost_row(label, name):
    runs = RUNS.get(label, {})
    if not runs or len(T.get(label, {})) != rounds:
        return (f"nothing lost, {name}", "no data", "rows == answered", "FAIL")
    ok, tot_rows, tot_2xx, tot_log, problems, log_ok = True, 0, 0, 0, [], True
    for rnd, run in sorted(runs.items()):
        n, log200, ok2xx = fnum(run, "rows"), fnum(run, "log200"), T[label][rnd][1]
        tag = f"run {rnd}: " if rounds > 1 else ""
        if n is None:
            problems.append(f"{tag}no row count"); ok = False; continue
        tot_rows += n; tot_2xx += ok2xx; tot_log += log200 or 0
        if not 0 <= n - ok2xx <= conc:
            problems.append(f"{tag}rows - wrk 2xx = {n - ok2xx:+,.0f}"); ok = False
        if log200 is not None and (log200 > 0 or n == 0):
            if n != log200:
                problems.append(f"{tag}rows {n:,.0f} != answered {log200:,.0f}"); ok = False
        else:
            log_ok = False
        if fnum(run, "lognon200"):
            problems.append(f"{tag}{fnum(run, 'lognon200'):,.0f} non-200 in the access log"); ok = False
        if fnum(run, "drain_ok") != 1:
            problems.append(f"{tag}the count did not settle"); ok = False
    note = f"{tot_rows:,.0f} rows" + (f" in {rounds} runs" if rounds > 1 else "") + f"; wrk counted {tot_2xx:,.0f} 2xx"
    if tot_rows != tot_2xx:
        note += f" ({tot_rows - tot_2xx:+,.0f}: in flight when wrk stopped, answered after it closed)"
    if log_ok:
        note += f"; gateway logged {tot_log:,.0f} answered 200"
        target = f"rows == answered 200 (wrk 2xx .. +{conc})"
    else:
        note += "; gateway access log not available"
        target = f"wrk 2xx <= rows <= wrk 2xx + {conc}"
    if problems:
        note += "; " + "; ".join(problems) + "!"
    return (f"nothing lost, {name}", note, target, verdict(ok))

for label, name in (("virtual", "virtual-key run"), ("master", "master-key run (api_key '')")):
    if rounds > 1:
        name = name.replace("run", "runs", 1)
    per = []
    for rnd, run in sorted(RUNS.get(label, {}).items()):
        n, drain = fnum(run, "rows"), fnum(run, "drain_ms")
        if n is not None and drain is not None and rnd in T.get(label, {}):
            per.append((n, drain / 1000, T[label][rnd][2]))
    if per and len(per) == rounds:
        if rounds == 1:
            (n, drain, secs), = per
            rows.append((f"spend-log rows, {name}", f"{n:,.0f} rows", "(report)", "info"))
            rows.append(("  last row landed after load end",
                         f"{drain:.2f} s (poll every 0.1 s; settled = unchanged {E['S_STABLE']} s)", "(report)", "info"))
            rows.append(("  sustained write rate",
                         f"{n / (secs + drain):,.0f} rows/s = {n:,.0f} / ({secs:.2f} s load + {drain:.2f} s drain)",
                         "(report)", "info"))
        else:
            rows.append((f"spend-log rows, {name}", ", ".join(f"{n:,.0f}" for n, _, _ in per) + " rows", "(report)", "info"))
            rows.append(("  last row landed after load end",
                         ", ".join(f"{d:.2f}" for _, d, _ in per) + f" s (poll every 0.1 s; settled = unchanged {E['S_STABLE']} s)",
                         "(report)", "info"))
            rates = [n / (s + d) for n, d, s in per]
            rows.append(("  sustained write rate",
                         f"median {med(rates):,.0f} rows/s of " + ", ".join(f"{r:,.0f}" for r in rates)
                         + " (rows / (load + drain))", "(report)", "info"))
    else:
        rows.append((f"spend-log rows, {name}", "no data", "(report)", "FAIL"))
    rows.append(lost_row(label, name))

ks, ls, kn = fnum(R, "key_spend"), fnum(R, "log_spend"), fnum(R, "key_failed_rows")
if ks is not None and ls is not None:
    diff = abs(ks - ls)
    note = f"key {ks:.9f} USD, rows {ls:.9f} USD, |diff| {diff:.1e}"
    kt = fnum(R, "key_rows_total")
    if kt is not None:
        note += f"; {kt:,.0f} rows x 5e-5 = {kt * 5e-5:.9f}"
    if kn:
        note += f"; {kn:,.0f} rows not 'success'!"
    rows.append(("key spend == sum of its rows", note, "within 1e-9 USD", verdict(diff <= 1e-9 and not kn)))
else:
    rows.append(("key spend == sum of its rows", "no data" + (f" ({R['key_err']})" if R.get("key_err") else ""),
                 "within 1e-9 USD", "FAIL"))
if R.get("setup_error"):
    rows.append(("setup", R["setup_error"], "", "FAIL"))

w = [max(len(r[i]) for r in rows + [("metric", "measured", "target", "result")]) for i in range(4)]
line = "+-" + "-+-".join("-" * x for x in w) + "-+"
print()
print(f"== summary: {E['S_BACKEND']} ({E['S_MODE']} run; proxy_batch_write_at {E['S_BATCH']} s; "
      f"load average at start {E['S_LOAD']}; {E['S_PIN']})")
print(line)
print("| " + " | ".join(h.ljust(x) for h, x in zip(("metric", "measured", "target", "result"), w)) + " |")
print(line)
for r in rows:
    print("| " + " | ".join(c.ljust(x) for c, x in zip(r, w)) + " |")
print(line)
print(f"{sum(r[3] == 'PASS' for r in rows)} PASS, {sum(r[3] == 'FAIL' for r in rows)} FAIL   (command: {E['S_CMD']})")
PY
}

# ---------------------------------------------------------------- mock upstream
echo "-- starting mock upstream"
start_mock "$MOCK_BIN" || exit 1
echo "   mock pid $MOCK_PID on 127.0.0.1:$MOCK_PORT"

# ---------------------------------------------------------------- one backend
# run_backend sqlite|postgres: database, gateway, key, the two phases, the checks.
run_backend() {
  B="$1" DB_KIND="$1" RES="$TMP/res-$1.txt" GW_LOG="$TMP/gateway-$1.log"
  : >"$RES"
  local url
  echo
  echo "==== backend: $B"
  if [[ $B == sqlite ]]; then
    mkdir -p "$TMP/sqlite"
    SQLITE_FILE="$TMP/sqlite/llmgate.db"
    url="sqlite://$SQLITE_FILE"
  else
    if ! command -v psql >/dev/null; then
      res setup_error "psql not found"; echo "   psql not found; skipping"; return
    fi
    PG_DB="llmgate_bench_keys_$$_$RANDOM"
    echo "-- psql -h $PG_HOST -p $PG_PORT -U $PG_USER -c 'CREATE DATABASE $PG_DB'"
    if ! pg_admin "CREATE DATABASE \"$PG_DB\"" >/dev/null 2>"$TMP/pg-create.err"; then
      res setup_error "CREATE DATABASE failed: $(tr '\n' ' ' <"$TMP/pg-create.err")"
      echo "   CREATE DATABASE failed: $(cat "$TMP/pg-create.err")"
      PG_DB=""
      return
    fi
    url="postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB"
  fi
  local cfg="$TMP/config-$B.yaml"
  cat >"$cfg" <<EOF
model_list:
  - model_name: bench-model
    litellm_params: {model: openai/bench-model, api_base: "http://127.0.0.1:$MOCK_PORT/v1", api_key: sk-upstream-fake, input_cost_per_token: 0.000001, output_cost_per_token: 0.000002}
general_settings:
  master_key: $MASTER_KEY
  database_url: "$url"
  proxy_batch_write_at: $BATCH_SECS
EOF
  echo "   database_url: $url"

  GW_PORT="$(free_port)"
  local gw_cmd=("$GW_BIN" --num_workers 1 --host 127.0.0.1 --port "$GW_PORT" --config "$cfg")
  echo "-- ${GW_PIN[*]}${GW_PIN[*]:+ }${gw_cmd[*]}"
  "${GW_PIN[@]}" "${gw_cmd[@]}" >"$GW_LOG" 2>&1 &
  GW_PID=$!
  local code="" i
  for ((i = 0; i < 600; i++)); do
    alive "$GW_PID" || break
    code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$GW_PORT/health/liveliness")"
    [[ $code == 200 ]] && break
    sleep 0.05
  done
  if [[ $code != 200 ]]; then
    echo "   the gateway did not become ready; its log:"; tail -30 "$GW_LOG" | sed 's/^/     /'
    res setup_error "gateway did not become ready (see log above)"
    stop_pid "$GW_PID" 10; GW_PID=""
    return
  fi
  echo "   gateway pid $GW_PID on 127.0.0.1:$GW_PORT"

  # the virtual key
  echo "-- curl -s -X POST localhost:$GW_PORT/key/generate -H 'Authorization: Bearer $MASTER_KEY' -d '{\"duration\": null}'"
  curl -s -X POST "http://127.0.0.1:$GW_PORT/key/generate" -H "Authorization: Bearer $MASTER_KEY" \
    -H 'Content-Type: application/json' -d '{"duration": null}' >"$TMP/key-$B.json"
  local vkey token
  read -r vkey token < <(python3 -c '
import hashlib, json, sys
try:
    d = json.load(open(sys.argv[1]))
    k = d["key"]
except Exception:
    print("- -"); sys.exit()
h = hashlib.sha256(k.encode()).hexdigest()
t = d.get("token")
if t not in (None, h):
    print(f"note: /key/generate token {t} is not sha256(key) {h}", file=sys.stderr)
print(k, h)' "$TMP/key-$B.json")
  if [[ -z $vkey || $vkey == - ]]; then
    echo "   /key/generate did not return a key: $(head -c 300 "$TMP/key-$B.json")"
    res setup_error "/key/generate failed: $(head -c 200 "$TMP/key-$B.json")"
    stop_pid "$GW_PID" 10; GW_PID=""
    return
  fi
  echo "   virtual key ${vkey:0:6}...${vkey: -4} (sha256 ${token:0:12}..., the spend logs' api_key)"

  # sanity: one request with each key
  local k c
  for k in "$MASTER_KEY" "$vkey"; do
    c="$(curl -s -D "$TMP/sanity-h.txt" -o "$TMP/sanity.json" -w '%{http_code}' -H "Authorization: Bearer $k" \
      -H 'Content-Type: application/json' -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}]}' \
      "http://127.0.0.1:$GW_PORT$CHAT_PATH")"
    echo "   sanity ($( [[ $k == "$MASTER_KEY" ]] && echo master || echo virtual ) key): HTTP $c," \
      "$(grep -i '^x-litellm-response-cost:' "$TMP/sanity-h.txt" | tr -d '\r' || echo 'no cost header')" \
      "$( [[ $c == 200 ]] || echo "body: $(head -c 300 "$TMP/sanity.json")")"
  done

  # rounds alternate the order (M V, V M, M V, ...; reversed with --virtual-first)
  local round
  for ((round = 1; round <= ROUNDS; round++)); do
    if (( (round + VIRTUAL_FIRST) % 2 == 0 )); then
      phase virtual "$round" "$vkey" "where api_key = '$token'"
      phase master "$round" "$MASTER_KEY" "where api_key = ''"
    else
      phase master "$round" "$MASTER_KEY" "where api_key = ''"
      phase virtual "$round" "$vkey" "where api_key = '$token'"
    fi
  done

  # the key's stored spend against its rows (everything has settled: wait_drain above)
  local out ks ls kn kt
  out="$(db_q "select (select spend from llmgate_keys where token = '$token'),
                      (select coalesce(sum(spend), 0) from llmgate_spend_logs where api_key = '$token'),
                      (select count(*) from llmgate_spend_logs where api_key = '$token' and status <> 'success'),
                      (select count(*) from llmgate_spend_logs where api_key = '$token')" 2>&1)"
  echo "   key spend | sum of its rows | rows not success | rows: $out"
  IFS='|' read -r ks ls kn kt <<<"$out"
  if [[ -n $ks && -n $ls ]]; then
    res key_spend "$ks"; res log_spend "$ls"; res key_failed_rows "$kn"; res key_rows_total "$kt"
  else
    res key_err "$(echo "$out" | head -1)"
  fi
  echo "   spend-log rows in total: $(db_q 'select count(*) from llmgate_spend_logs' 2>&1)"

  if ! alive "$GW_PID"; then
    echo "   WARNING: the gateway exited during the run; log tail:"; tail -20 "$GW_LOG" | sed 's/^/     /'
  fi
  echo "-- stopping the gateway (SIGTERM)"
  stop_pid "$GW_PID" 10
  GW_PID=""
  grep -E 'WARN|ERROR' "$GW_LOG" | head -10 | sed 's/^/   gateway log: /'
  [[ $B == postgres ]] && drop_pg_db
}

for b in $BACKENDS; do
  run_backend "$b"
done
for b in $BACKENDS; do
  summary "$b"
done
echo
echo "command: $CMDLINE   (in $ROOT; gateway: llmgate --num_workers 1 --host 127.0.0.1 --port P --config CFG)"
exit 0
