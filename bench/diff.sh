#!/usr/bin/env bash
# The `compile --diff` benchmark: a diff between two revisions of the synthetic catalog that
# differ in one app, against one plain compile of the same catalog. Goal: ≤ 1.5×.
#
#   bash bench/diff.sh            (from any directory)
#
# 1. builds pitrix in release mode;
# 2. generates the synthetic catalog (pitrix_testkit::synth, the compile benchmark's generator) into a
#    git repository (`catalog/` inside it) and commits it;
# 3. adds a version to one app (a copy of its newest chart with a new image tag) and commits;
# 4. times, alternately, `pitrix compile catalog -o out` and
#    `pitrix compile catalog --diff --base HEAD~1 --format markdown` (wall, CPU, peak RSS of the
#    child, from wait4), PITRIX_BENCH_RUNS times each;
# 5. prints both and the ratio diff/compile of the best runs; exits 1 above the goal.
#
# Environment:
#   PITRIX_BENCH_APPS=1000 PITRIX_BENCH_VERSIONS=5   size of the catalog (5,000 versions)
#   PITRIX_BENCH_RUNS=3                              timed runs of each command
#   PITRIX_BENCH_DIFF_GOAL=1.5                       the ratio that fails the run
#   PITRIX_BENCH_DIR=DIR                             work directory (default: a temp dir)
#   PITRIX_BENCH_KEEP=1                              keep the work directory
#   PITRIX_BENCH_JSON=FILE                           also write the results as JSON
# Needs ~2 GB of free disk in the work directory for the default size.
set -euo pipefail
set -o errtrace
trap 'rc=$?; echo "bench/diff.sh: FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; exit $rc' ERR

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
APPS="${PITRIX_BENCH_APPS:-1000}"
VERSIONS="${PITRIX_BENCH_VERSIONS:-5}"
RUNS="${PITRIX_BENCH_RUNS:-3}"
GOAL="${PITRIX_BENCH_DIFF_GOAL:-1.5}"

log() { printf '\n==> %s\n' "$*"; }

if [[ -n "${PITRIX_BENCH_DIR:-}" ]]; then
    WORK="$PITRIX_BENCH_DIR"
    mkdir -p "$WORK"
else
    WORK="$(mktemp -d "${TMPDIR:-/tmp}/pitrix-diff-bench.XXXXXX")"
fi
cleanup() {
    if [[ "${PITRIX_BENCH_KEEP:-0}" == 1 ]]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK/repo" "$WORK/out"
        [[ -n "${PITRIX_BENCH_DIR:-}" ]] || rm -rf "$WORK"
    fi
}
trap cleanup EXIT

log "cargo build --release"
cargo build --release
BIN="$REPO_ROOT/target/release/pitrix"

REPO="$WORK/repo"
rm -rf "$REPO" "$WORK/out"
mkdir -p "$REPO"
log "generate ${APPS} apps × ${VERSIONS} versions into $REPO/catalog"
PITRIX_BENCH_APPS="$APPS" PITRIX_BENCH_VERSIONS="$VERSIONS" \
    cargo bench --bench compile -- --generate "$REPO/catalog"

g() { git -C "$REPO" -c user.name=bench -c user.email=bench@example.com -c commit.gpgsign=false "$@"; }
log "two commits that differ in one app"
g init -q -b main
g add -A
g commit -q -m "synthetic catalog"
APP="$(cd "$REPO/catalog/apps" && ls | head -1)"
NEWEST="$(cd "$REPO/catalog/apps/$APP" && ls -d */ | tr -d / | sort -V | tail -1)"
NEXT="${NEWEST%.*}.$(( ${NEWEST##*.} + 1 ))"
cp -r "$REPO/catalog/apps/$APP/$NEWEST" "$REPO/catalog/apps/$APP/$NEXT"
sed -i "s/^version: $NEWEST\$/version: $NEXT/" "$REPO/catalog/apps/$APP/$NEXT/Chart.yaml"
sed -i -E '0,/^  tag: "([0-9.]+)"/s//  tag: "\1-bench"/' "$REPO/catalog/apps/$APP/$NEXT/values.yaml"
printf '  %s:\n    state: active\n' "$NEXT" >> "$REPO/catalog/apps/$APP/app.yaml"
g add -A
g commit -q -m "$APP $NEXT"
echo "changed: $APP gets $NEXT (a copy of $NEWEST with a new image tag)"

# Runs a command, prints "wall user sys maxrss_kib exit" of the child (wait4).
measure() {
    python3 - "$@" <<'PY'
import os, subprocess, sys, time
t = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
wall = time.perf_counter() - t
print(f"{wall:.3f} {ru.ru_utime:.3f} {ru.ru_stime:.3f} {ru.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
PY
}

log "load average before the runs: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs (other work skews wall times)"
declare -a COMPILE DIFF
for k in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/out"
    read -r w u s m rc < <(measure "$BIN" compile "$REPO/catalog" -o "$WORK/out")
    [[ "$rc" == 0 ]] || { echo "pitrix compile failed ($rc)"; exit 1; }
    COMPILE+=("$w $u $s $m")
    printf 'run %d: compile         %7.2f s wall, cpu %6.2f s, peak RSS %5d MiB\n' "$k" "$w" "$(awk -v a="$u" -v b="$s" 'BEGIN{print a+b}')" "$((m / 1024))"
    read -r w u s m rc < <(cd "$REPO/catalog" && measure "$BIN" compile . --diff --base HEAD~1 --format markdown)
    [[ "$rc" == 0 ]] || { echo "pitrix compile --diff failed ($rc)"; exit 1; }
    DIFF+=("$w $u $s $m")
    printf 'run %d: compile --diff  %7.2f s wall, cpu %6.2f s, peak RSS %5d MiB\n' "$k" "$w" "$(awk -v a="$u" -v b="$s" 'BEGIN{print a+b}')" "$((m / 1024))"
done
(cd "$REPO/catalog" && "$BIN" compile . --diff --base HEAD~1 --format text 2>&1 >/dev/null | tail -1)

python3 - "$GOAL" "${PITRIX_BENCH_JSON:-}" "$APPS" "$VERSIONS" "${COMPILE[@]}" -- "${DIFF[@]}" <<'PY'
import json, sys
goal, out, apps, versions = float(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rest = sys.argv[5:]
cut = rest.index("--")
parse = lambda xs: [dict(zip(("wall", "user", "sys", "rss_kib"), map(float, x.split()))) for x in xs]
compile_runs, diff_runs = parse(rest[:cut]), parse(rest[cut + 1:])
best = lambda runs, key: min(r[key] if key != "cpu" else r["user"] + r["sys"] for r in runs)
ratio_wall = best(diff_runs, "wall") / best(compile_runs, "wall")
ratio_cpu = best(diff_runs, "cpu") / best(compile_runs, "cpu")
print(f"\nbest of {len(compile_runs)}: compile {best(compile_runs, 'wall'):.2f} s wall / {best(compile_runs, 'cpu'):.2f} s cpu;"
      f" compile --diff {best(diff_runs, 'wall'):.2f} s wall / {best(diff_runs, 'cpu'):.2f} s cpu")
print(f"ratio diff/compile: {ratio_wall:.2f}x wall, {ratio_cpu:.2f}x cpu (goal <= {goal}x)")
if out:
    with open(out, "w") as f:
        json.dump({"apps": apps, "versions": apps * versions, "compile": compile_runs, "diff": diff_runs,
                   "ratio_wall": ratio_wall, "ratio_cpu": ratio_cpu, "goal": goal}, f, indent=1)
sys.exit(0 if max(ratio_wall, ratio_cpu) <= goal else 1)
PY
