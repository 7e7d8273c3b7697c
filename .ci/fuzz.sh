#!/usr/bin/env bash
# The fuzz step of CI: builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time
# from its seed corpus; any panic, hang (-timeout) or memory blow-up (-rss_limit_mb) fails.
# Stable toolchain: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly-only flags.
#   FUZZ_SECONDS      seconds per target (default 60)
#   FUZZ_TARGET_DIR   the fuzz build's target dir, kept between runs (default fuzz/target)
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-60}"
target_dir="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
targets=(config chat_request sse bedrock_eventstream)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
cargo fuzz --version

# No sanitizer: the crate is safe Rust, so what is looked for is panics, hangs and memory
# blow-ups, which libFuzzer catches itself; the build and the runs are much faster without ASan.
build=(--sanitizer none --target-dir "$target_dir")
# The gateway's own lock, so the targets build the versions it is tested with (libfuzzer-sys
# is added to it).
cp Cargo.lock fuzz/Cargo.lock
cargo fuzz build "${build[@]}"

failed=()
for t in "${targets[@]}"; do
  corpus="fuzz/corpus/$t"
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  echo "== fuzz $t (${seconds}s)"
  # stdin from /dev/null: nothing a fuzzed config names can wait on the terminal.
  if ! cargo fuzz run "${build[@]}" "$t" "$corpus" "fuzz/seeds/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      </dev/null 2>&1 | grep -v '^#[0-9]'; then
    failed+=("$t")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
