#!/usr/bin/env bash
# THE test command of pitrix: set up the test environment, then
# format check, clippy (warnings are errors) and every cargo test target.
# Works from any directory.
set -euo pipefail
set -o errtrace  # ERR trap also fires inside functions and $(...)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

export PITRIX_CACHE="${PITRIX_CACHE:-$REPO_ROOT/.cache}"

STEP="setup-test-env"
trap 'rc=$?; echo; echo "pitrix test: FAILED at step \"$STEP\" (exit $rc)"; exit $rc' ERR

step() {
    STEP="$1"
    echo
    echo "==> $STEP"
}

step "setup-test-env"
bash "$REPO_ROOT/scripts/setup-test-env.sh"

# For the Rust integration tests: the interpreter that has helm-python-sdk,
# and the oracle script it runs.
export PITRIX_PYTHON="$PITRIX_CACHE/venv/bin/python"
export PITRIX_HELM_ORACLE="$REPO_ROOT/tests/oracle/helm_oracle.py"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test --workspace --all-targets"
cargo test --workspace --all-targets

echo
echo "pitrix test: OK (fmt, clippy, tests all green)"
