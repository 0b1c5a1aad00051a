#!/usr/bin/env python3
"""The Helm baseline of pitrix's compile benchmark.

Real Helm (v4.2.3, the Go SDK inside helm-python-sdk, set up by
scripts/setup-test-env.sh) does the packaging work of a catalog: `helm
package` of every chart directory under apps/<app>/<version>/, then `helm repo
index` of the resulting archives. Both phases are timed; charts/s and the
process's peak RSS (Python + Helm's Go runtime) are reported.

    .cache/venv/bin/python bench/helm_baseline.py CATALOG_DIR [--out DIR]
        [--jobs N] [--json FILE]

--jobs N packages N charts at a time from a thread pool (ctypes releases the
GIL around each Helm call); the default, 1, is `for c in charts; helm package`.
The index phase is one Helm call either way.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import sys
import tempfile
import time

# Helm's Go code may write to fd 1; keep stdout for our own report.
_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

import helm_python as helm  # noqa: E402  (after the fd swap)


def chart_dirs(catalog: str) -> list[str]:
    """apps/<app>/<version>/ directories: the charts pitrix compiles (sorted)."""
    apps = os.path.join(catalog, "apps")
    out = []
    for app in sorted(os.listdir(apps)):
        app_dir = os.path.join(apps, app)
        if not os.path.isdir(app_dir):
            continue
        for entry in sorted(os.listdir(app_dir)):
            path = os.path.join(app_dir, entry)
            if os.path.isdir(path) and entry != "screenshots" and not entry.startswith("."):
                out.append(path)
    return out


def peak_rss_kib() -> int:
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("catalog", help="a catalog directory (apps/<app>/<version>/ charts)")
    p.add_argument("--out", help="where the archives and index.yaml go (default: a temp dir, removed)")
    p.add_argument("--jobs", type=int, default=1, help="charts packaged concurrently (default 1)")
    p.add_argument("--json", help="also write the results as JSON to this file")
    p.add_argument("--url", default="https://charts.example.com", help="base URL of the index")
    args = p.parse_args()

    charts = chart_dirs(args.catalog)
    if not charts:
        print(f"no charts under {args.catalog}/apps", file=sys.stderr)
        return 1
    own_out = args.out is None
    out = args.out or tempfile.mkdtemp(prefix="pitrix-helm-baseline-")
    os.makedirs(out, exist_ok=True)
    try:
        t0 = time.perf_counter()
        if args.jobs <= 1:
            archives = [helm.package(c, destination=out) for c in charts]
        else:
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                archives = list(pool.map(lambda c: helm.package(c, destination=out), charts))
        t1 = time.perf_counter()
        index = helm.repo_index_generate(out, base_url=args.url)
        t2 = time.perf_counter()
        cpu = resource.getrusage(resource.RUSAGE_SELF)

        entries = sum(len(v) for v in (index.get("entries") or {}).values())
        if len(set(archives)) != len(charts) or entries != len(charts):
            print(
                f"Helm packaged {len(set(archives))} archives and indexed {entries} "
                f"entries for {len(charts)} charts",
                file=sys.stderr,
            )
            return 1
        sizes = [os.path.getsize(a) for a in archives]
        package_s, index_s = t1 - t0, t2 - t1
        total_s = t2 - t0
        result = {
            "tool": "helm",
            "helm": helm.helm_sdk_version(),
            "helm_python_sdk": helm.__version__,
            "catalog": os.path.abspath(args.catalog),
            "charts": len(charts),
            "jobs": args.jobs,
            "package_s": package_s,
            "index_s": index_s,
            "total_s": total_s,
            "charts_per_s": len(charts) / total_s,
            "package_charts_per_s": len(charts) / package_s,
            "cpu_s": cpu.ru_utime + cpu.ru_stime,
            "peak_rss_kib": peak_rss_kib(),
            "archive_bytes_total": sum(sizes),
            "archive_bytes_mean": sum(sizes) / len(sizes),
            "archive_bytes_min": min(sizes),
            "archive_bytes_max": max(sizes),
            "index_bytes": os.path.getsize(os.path.join(out, "index.yaml")),
        }
    finally:
        if own_out:
            shutil.rmtree(out, ignore_errors=True)

    r = result
    _OUT.write(
        f"Helm {r['helm']} (helm-python-sdk {r['helm_python_sdk']}), {r['charts']} charts, "
        f"jobs={r['jobs']}\n"
        f"  package: {r['package_s']:7.2f} s  ({r['package_charts_per_s']:.0f} charts/s, "
        f"archives {r['archive_bytes_mean'] / 1024:.1f} KiB mean, "
        f"{r['archive_bytes_min'] / 1024:.1f}-{r['archive_bytes_max'] / 1024:.1f} KiB)\n"
        f"  index:   {r['index_s']:7.2f} s  (index.yaml {r['index_bytes'] / 1024:.0f} KiB)\n"
        f"  total:   {r['total_s']:7.2f} s  ({r['charts_per_s']:.0f} charts/s, "
        f"cpu {r['cpu_s']:.1f} s, peak RSS {r['peak_rss_kib'] / 1024:.0f} MiB)\n"
    )
    _OUT.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
            fh.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
