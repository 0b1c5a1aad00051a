#!/usr/bin/env bash
# The reconcile soak: `pitrix reconcile` managing the synthetic 1,000 apps × 5 versions catalog
# (pitrix_testkit::synth, the compile benchmark's generator) on the real test API server.
#
#   bash bench/soak.sh            (from any directory)
#
# 1. builds the test cluster binaries if needed (scripts/setup-test-cluster.sh, cached);
# 2. builds pitrix and the soak driver in release mode;
# 3. runs the driver (tests/reconcile_soak.rs, an ignored test): it starts etcd +
#    kube-apiserver, generates the catalog into a git repository, starts `pitrix reconcile`
#    on it with default settings (1-minute interval, leader election), waits for the first
#    sync, samples resident memory and CPU time from /proc while idle, then makes out-of-band
#    edits one at a time (an Application's description, a version's display name, a
#    Category's icon, a package ConfigMap's annotation) and times each from the edit being
#    live to the watch event showing it undone;
# 4. prints the figures and the goals (steady RSS <= 50 MB, drift p95 <= 2 s, idle CPU ~ 0).
#
# Environment:
#   PITRIX_SOAK_APPS=1000 PITRIX_SOAK_VERSIONS=5   size of the catalog
#   PITRIX_SOAK_EDITS=100                          out-of-band edits timed
#   PITRIX_SOAK_IDLE_SECS=60                       idle window for memory and CPU
#   PITRIX_SOAK_SETTLE_SECS=120                    from the first sync to the idle window
#   PITRIX_SOAK_WORK=DIR                           work directory (default: a temp dir)
#   PITRIX_SOAK_JSON=FILE                          also write the figures as JSON
# Needs ~3 GB of free disk and ~2 GB of memory (etcd and kube-apiserver hold the catalog).
set -euo pipefail
set -o errtrace
trap 'rc=$?; echo "bench/soak.sh: FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; exit $rc' ERR

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
export PITRIX_CACHE="${PITRIX_CACHE:-$REPO_ROOT/.cache}"
export PITRIX_SOAK_APPS="${PITRIX_SOAK_APPS:-1000}"
export PITRIX_SOAK_VERSIONS="${PITRIX_SOAK_VERSIONS:-5}"
export PITRIX_SOAK_EDITS="${PITRIX_SOAK_EDITS:-100}"
export PITRIX_SOAK_IDLE_SECS="${PITRIX_SOAK_IDLE_SECS:-60}"
JSON="${PITRIX_SOAK_JSON:-$(mktemp "${TMPDIR:-/tmp}/pitrix-soak.XXXXXX.json")}"
export PITRIX_SOAK_JSON="$JSON"

log() { printf '\n==> %s\n' "$*"; }

if [[ -z "${KUBEBUILDER_ASSETS:-}" && -z "${PITRIX_TEST_KUBECONFIG:-}" ]]; then
    log "test cluster binaries"
    bash "$REPO_ROOT/scripts/setup-test-cluster.sh"
fi

log "cargo build --release (pitrix and the soak driver)"
cargo test --release --no-run --test integration

log "soak: ${PITRIX_SOAK_APPS} apps × ${PITRIX_SOAK_VERSIONS} versions, ${PITRIX_SOAK_EDITS} edits, ${PITRIX_SOAK_IDLE_SECS}s idle"
cargo test --release --test integration reconcile_soak:: -- --ignored --nocapture --test-threads 1

log "result"
python3 - "$JSON" <<'PY'
import json, sys
f = json.load(open(sys.argv[1]))
print(f"catalog: {f['apps']} apps x {f['versions']} versions = {f['managed_objects']:.0f} objects managed")
print(f"first sync (fetch, compile, apply):  {f['first_sync_s']:8.1f} s   peak RSS {f['peak_rss_mib']:.0f} MiB")
print(f"steady-state RSS ({f['idle_secs']} s idle, {f['settle_secs']} s after the sync): {f['steady_rss_mean_mib']:8.1f} MiB mean, {f['steady_rss_max_mib']:.1f} max "
      f"({f['steady_rss_anon_mib']:.1f} heap + {f['steady_rss_file_mib']:.1f} mapped files)")
print(f"RSS after the edits:                  {f['rss_after_edits_mib']:8.1f} MiB")
print(f"idle CPU:                             {f['idle_cpu_percent']:8.2f} % of one core")
print(f"drift correction over {f['edits']} edits:    p50 {f['drift_p50_s']:.3f} s, p95 {f['drift_p95_s']:.3f} s, max {f['drift_max_s']:.3f} s")
mib50 = 50e6 / 1048576
ok = lambda c: "met" if c else "NOT met"
print(f"goal steady RSS <= 50 MB: {ok(f['steady_rss_max_mib'] <= mib50)}; "
      f"goal drift p95 <= 2 s: {ok(f['drift_p95_s'] <= 2.0)}; "
      f"goal idle CPU near zero (< 1 %): {ok(f['idle_cpu_percent'] < 1.0)}")
PY
