#!/usr/bin/env bash
# Client-compatibility suite: drives the llmgate binary with the official openai Python SDK.
# Usage: LLMGATE_BIN=target/debug/llmgate bash .ci/sdk.sh [extra pytest args]
set -euo pipefail

cd "$(dirname "$0")/.."
export LLMGATE_BIN="${LLMGATE_BIN:-target/debug/llmgate}"

PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
export PYTHONDONTWRITEBYTECODE=1
exec python3 -m pytest -q -p no:cacheprovider tests/sdk "$@"
