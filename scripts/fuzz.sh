#!/usr/bin/env bash
# Fuzz pitrix with cargo-fuzz (libFuzzer): each target for N seconds, one after the other.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...] [-- LIBFUZZER_ARGS...]
#   SECONDS  per target (default 60; env PITRIX_FUZZ_SECONDS)
#   TARGET   catalog_loader, chart_archive, diff, helmignore, inventory, kubeconfig,
#            repo_index, values_template, yaml (default: all of them)
#   e.g.     scripts/fuzz.sh 600 chart_archive -- -max_len=65536
#
# Targets: fuzz/fuzz_targets/*.rs, thin wrappers around tests/fuzz_harness/mod.rs, which
# tests/integration/fuzz_smoke.rs also runs as a short, deterministic mutation fuzzer on every
# `cargo test` (no cargo-fuzz needed there).
#
# How this runs on the STABLE toolchain (the only one a pitrix machine has):
# * cargo-fuzz is installed with `cargo install cargo-fuzz` when it is not on PATH.
# * Targets are built with `--sanitizer none`: libFuzzer's coverage instrumentation
#   (`-Cpasses=sancov-module`, `-Cllvm-args=-sanitizer-coverage-*`) is stable, and
#   libfuzzer-sys builds libFuzzer itself with the C++ compiler. Address Sanitizer would
#   need `-Zsanitizer=address`, which stable refuses; pitrix and its dependencies are safe
#   Rust, so what the fuzzers look for are panics (with debug assertions and overflow checks
#   on, as cargo-fuzz builds by default), aborts such as stack overflows, and timeouts.
# * PITRIX_FUZZ_SANITIZER=address builds with ASan instead, on stable by way of
#   RUSTC_BOOTSTRAP=1 (which unlocks -Z flags; the ASan runtime ships with stable's
#   rust-std). Slower, and only worth it to look at a dependency's unsafe code.
#
# The first build compiles pitrix and all its dependencies with coverage instrumentation and
# one codegen unit (cargo-fuzz's default): 15 minutes or more on a 2-core machine; later
# builds take a minute or two. Seen here: ~18 000 exec/s for yaml, ~4 500 for chart_archive,
# a few hundred for catalog_loader (it writes and loads a catalog directory per input).
#
# What each target checks (besides "no panic"; details in tests/fuzz_harness/mod.rs):
#   yaml, chart_archive, catalog_loader  parsers and the whole loader; pack/read round trip
#   diff             two compiles from the input diffed and rendered (text, Markdown, JSON):
#                    planted secrets (secret-looking and writeOnly keys) never shown
#   values_template  release values templates (minijinja) terminate: -timeout reports a hang
#                    (and -rss_limit_mb a template that eats memory)
#   helmignore       .helmignore rules: deterministic, fast paths agree with filepath.Match
#   repo_index       Helm index.yaml: what is kept is valid, filtered consistently, round-trips
#   kubeconfig       kubeconfigs through pitrix's client (made safe: no exec plugins, commands
#                    or file references; nothing is contacted): no credential in an error
#   inventory        the inventory ConfigMap decoder; compile output read back by apply --from
#
# Corpus: fuzz/corpus/<target>/ (kept between runs, git-ignored) plus the seeds in
# fuzz/seeds/<target>/ (committed; regenerate with
# `cargo test --test integration fuzz_smoke::write_seeds -- --ignored`).
# A crash is saved to fuzz/artifacts/<target>/; reproduce it with
#   cargo fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<file>
# or without cargo-fuzz:
#   PITRIX_FUZZ_REPLAY=<target>:<file> cargo test --test integration fuzz_smoke::replay -- --ignored --nocapture
#
# Exit status: 0 when no target crashed, 1 otherwise (every target still runs).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

ALL_TARGETS=(catalog_loader chart_archive diff helmignore inventory kubeconfig repo_index values_template yaml)
CARGO_FUZZ_VERSION="0.13.2"

log() { printf '[fuzz] %s\n' "$*"; }
die() {
    printf '[fuzz] ERROR: %s\n' "$*" >&2
    exit 2
}

seconds="${PITRIX_FUZZ_SECONDS:-60}"
targets=()
extra=()
while (($#)); do
    case "$1" in
        --)
            shift
            extra=("$@")
            break
            ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]*) targets+=("$1") ;;
        *) seconds="$1" ;;
    esac
    shift
done
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    [[ -f "fuzz/fuzz_targets/$t.rs" ]] || die "no fuzz target '$t' (one of: ${ALL_TARGETS[*]})"
done

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION (cargo install, a minute or two)"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

sanitizer="${PITRIX_FUZZ_SANITIZER:-none}"
if [[ "$sanitizer" != none ]]; then
    # -Zsanitizer on the stable compiler.
    export RUSTC_BOOTSTRAP=1
fi
fuzz=(cargo fuzz run --sanitizer "$sanitizer")

failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    log "$t: building"
    cargo fuzz build --sanitizer "$sanitizer" "$t"
    log "$t: fuzzing for ${seconds}s"
    SECONDS=0
    # -timeout: one input taking longer than this is reported as a hang.
    # -rss_limit_mb: well under the machine's memory, above what a 100 MiB chart needs.
    if "${fuzz[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
        "${extra[@]}"; then
        log "$t: no crash in ${SECONDS}s"
    else
        log "$t: CRASHED (see fuzz/artifacts/$t/)"
        failed+=("$t")
    fi
done

if ((${#failed[@]})); then
    log "crashed: ${failed[*]}"
    exit 1
fi
log "no crash in: ${targets[*]}"
