#!/usr/bin/env python3
"""helm_oracle: a small CLI over real Helm, the oracle of pitrix's Rust tests.

Helm itself does the work: helm-python-sdk (pinned 0.2.2, installed by
scripts/setup-test-env.sh) binds with ctypes to libhelm_c.so, which is
Helm's own Go SDK (v4.2.3) behind a C ABI. No helm binary, no cluster,
no network.

Every subcommand prints exactly ONE JSON document on stdout and exits 0,
also when Helm rejects the input: a chart that fails to load, lint, render or
package is data (``"ok": false`` plus Helm's message). Exit 1 means the
oracle itself broke (native library missing, Helm panicked, an internal
cross-check failed); exit 2 is a usage error. Anything Helm's Go code prints
goes to stderr, never into the JSON.

    load ARCHIVE...                        chart metadata, files, digest
    lint CHART_DIR_OR_ARCHIVE...           `helm lint`
    template ARCHIVE [--values FILE] [--name REL] [--namespace NS]
                                           `helm template`
    package CHART_DIR DEST_DIR             `helm package -d DEST_DIR`
    index DIR [--url URL]                  `helm repo index DIR [--url URL]`
    repo-index URL [--username U --password P]
                                           fetch and parse URL/index.yaml (Helm's repo getter)
    pull CHART --repo URL --version V --dest DIR [--username U --password P]
                                           `helm pull CHART --repo URL --version V -d DIR`
    corpus SPEC_JSON                       per chart of SPEC_JSON: package, dependency
                                           list, load, lint and render, Helm's package
                                           compared with pitrix's (one process for all)
    version                                versions of the SDK and of Helm
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import sys
import tarfile
import tempfile
import traceback
from typing import Any

# Keep stdout for our single JSON document only: whatever the Go runtime or
# Helm writes to fd 1 is sent to stderr instead.
_JSON_OUT = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr

import helm_python as helm  # noqa: E402  (must come after the fd swap)


class OracleBroken(Exception):
    """The oracle itself is wrong or broken (exit 1), as opposed to Helm
    rejecting the input (which is reported as data)."""


# Helm's own names for lint severities (pkg/chart/v2/lint/support: sev).
SEVERITY = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}

# Errors that mean the tool broke, not that the chart is bad.
FATAL_HELM_ERRORS: tuple[type[BaseException], ...] = (
    helm.HelmLibraryError,
    helm.HelmPanicError,
    helm.HelmInvalidHandleError,
    helm.HelmWrongHandleTypeError,
)


def _err(exc: BaseException) -> str:
    if isinstance(exc, FATAL_HELM_ERRORS):
        raise exc
    return str(exc)


# --------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------

_DRIVE_PATH = re.compile(r"^[a-zA-Z]:/")


def archive_file_names(archive: str) -> list[str]:
    """Names of the files Helm loads from a chart archive, i.e. the names of
    Chart.Raw.

    NOT an SDK call (helm-python-sdk 0.2.2 exposes templates and other
    files, but not Chart.Raw): a re-statement of the naming rules of Helm's
    archive.LoadArchiveFiles (pkg/chart/loader/archive/archive.go): skip
    directory and PAX header entries, drop the first path component,
    normalise '\\' to '/', path.Clean. Only called after Helm itself loaded
    the archive successfully, so the security checks cannot fire here; the
    result is cross-checked against what the SDK reports.
    """
    names = []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:  # PAX headers are consumed by tarfile itself
            if member.isdir():
                continue
            raw = member.name
            delim = "\\" if "\\" in raw else "/"
            name = delim.join(raw.split(delim)[1:]).replace(delim, "/")
            name = posixpath.normpath(name) if name else "."
            if (
                name == "."
                or name.startswith("..")
                or posixpath.isabs(name)
                or _DRIVE_PATH.match(name)
            ):
                raise OracleBroken(f"{archive}: Helm loaded an archive with entry {raw!r}")
            names.append(name)
    return sorted(names)


def saved_file_names(chart: helm.Chart) -> list[str]:
    """For a chart *directory*: the file names of the archive Helm's own
    chartutil.Save writes for the loaded chart (Chart.save). This is Helm's
    serialisation of what it loaded (.helmignore applied; subcharts appear
    as charts/<name>/... even when they were charts/<name>.tgz)."""
    with tempfile.TemporaryDirectory(prefix="helm-oracle-") as tmp:
        return archive_file_names(chart.save(tmp))


def helm_digest(path: str) -> str | None:
    """helm.digest() (libhelm_c: helm_chart_digest), i.e. Helm's
    provenance.DigestFile, which `helm repo index` stores per entry: the
    sha256 of the archive's bytes. Returned as bare hex, as in index.yaml.
    Cross-checked against hashlib."""
    if not os.path.isfile(path):
        return None
    try:
        tagged = helm.digest(path)
    except helm.HelmError as exc:
        _err(exc)
        return None
    if not re.fullmatch(r"sha256:[0-9a-f]{64}", tagged):
        raise OracleBroken(f"{path}: unexpected digest from Helm: {tagged!r}")
    hex_digest = tagged.split(":", 1)[1]
    with open(path, "rb") as fh:
        if hashlib.sha256(fh.read()).hexdigest() != hex_digest:
            raise OracleBroken(f"{path}: Helm's digest differs from sha256 of the file")
    return hex_digest


def load_one(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "path": path,
        "ok": False,
        "error": None,
        "name": None,
        "version": None,
        "apiVersion": None,
        "appVersion": None,
        "type": None,
        "files": [],
        "digest": helm_digest(path),
        "metadata": None,
    }
    try:
        chart = helm.Chart.load(path)
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    with chart:
        md = chart.metadata
        sdk_names = {f["name"] for f in chart.templates} | {f["name"] for f in chart.files}
        files = archive_file_names(path) if os.path.isfile(path) else saved_file_names(chart)
    missing = sdk_names - set(files)
    if missing:
        raise OracleBroken(f"{path}: files Helm loaded but the listing lacks: {sorted(missing)}")
    out.update(
        ok=True,
        name=md.get("name"),
        version=md.get("version"),
        apiVersion=md.get("apiVersion"),
        appVersion=md.get("appVersion"),
        type=md.get("type"),
        files=files,
        metadata=md,
    )
    return out


def cmd_load(args: argparse.Namespace) -> Any:
    return [load_one(p) for p in args.archives]


# --------------------------------------------------------------------------
# lint
# --------------------------------------------------------------------------


def lint_one(path: str) -> dict[str, Any]:
    out: dict[str, Any] = {"path": path, "ok": False, "error": None, "messages": [], "errors": []}
    try:
        report = helm.lint(path)
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    out["messages"] = [
        {
            "severity": SEVERITY.get(m["severity"], str(m["severity"])),
            "path": m["path"],
            "message": m["error"],
        }
        for m in report.get("messages") or []
    ]
    # Helm's lint action result.Errors: the error-level messages, plus
    # failures that have no message (e.g. "unable to extract tarball").
    out["errors"] = list(report.get("errors") or [])
    out["ok"] = not out["errors"] and all(m["severity"] != "ERROR" for m in out["messages"])
    return out


def cmd_lint(args: argparse.Namespace) -> Any:
    return [lint_one(p) for p in args.charts]


# --------------------------------------------------------------------------
# template
# --------------------------------------------------------------------------

# A kubeconfig that points nowhere: the oracle must not depend on (or
# contact) whatever cluster the developer's ~/.kube/config names.
_NOWHERE_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
users: [{name: none, user: {}}]
current-context: none
"""


def cmd_template(args: argparse.Namespace) -> Any:
    out: dict[str, Any] = {"ok": False, "error": None, "manifest": "", "notes": None, "rendered": {}}
    values = None
    try:
        if args.values is not None:
            with open(args.values, encoding="utf-8") as fh:
                values = helm.values_from_yaml(fh.read())
        chart = helm.Chart.load(args.archive)
    except OSError as exc:
        out["error"] = str(exc)
        return out
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    with chart, helm.Config(kubeconfig_content=_NOWHERE_KUBECONFIG, storage_driver="memory") as cfg:
        try:
            # `helm template` is a client-only dry-run install.
            release = cfg.install(
                chart, args.name, values, namespace=args.namespace, dry_run="client"
            )
            rendered = chart.render(
                values, name=args.name, namespace=args.namespace, is_install=True
            )
        except helm.HelmError as exc:
            out["error"] = _err(exc)
            return out
    out.update(
        ok=True,
        manifest=release.get("manifest") or "",
        notes=release.get("notes"),
        rendered=dict(sorted(rendered.items())),
    )
    return out


# --------------------------------------------------------------------------
# package / index / version
# --------------------------------------------------------------------------


def cmd_package(args: argparse.Namespace) -> Any:
    out: dict[str, Any] = {"ok": False, "error": None, "path": None}
    try:
        written = helm.package(args.chart_dir, destination=args.dest_dir)
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    out.update(ok=True, path=os.path.abspath(written))
    return out


def cmd_index(args: argparse.Namespace) -> Any:
    out: dict[str, Any] = {"ok": False, "error": None, "path": None, "index": None}
    try:
        index = helm.repo_index_generate(args.dir, base_url=args.url)
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    path = os.path.abspath(os.path.join(args.dir, "index.yaml"))
    if not os.path.isfile(path):
        raise OracleBroken(f"Helm reported success but wrote no {path}")
    out.update(ok=True, path=path, index=index)
    return out


def cmd_repo_index(args: argparse.Namespace) -> Any:
    out: dict[str, Any] = {"ok": False, "error": None, "index": None}
    try:
        index = helm.repo_index(args.url, username=args.username, password=args.password)
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    out.update(ok=True, index=index)
    return out


def cmd_pull(args: argparse.Namespace) -> Any:
    out: dict[str, Any] = {"ok": False, "error": None, "path": None, "digest": None}
    os.makedirs(args.dest, exist_ok=True)
    try:
        helm.pull(
            args.chart,
            repo_url=args.repo,
            version=args.version,
            destination=args.dest,
            username=args.username,
            password=args.password,
        )
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    path = os.path.join(args.dest, f"{args.chart}-{args.version}.tgz")
    if not os.path.isfile(path):
        raise OracleBroken(f"Helm reported success but wrote no {path}")
    out.update(ok=True, path=os.path.abspath(path), digest=helm_digest(path))
    return out


# --------------------------------------------------------------------------
# corpus: many charts in one process
# --------------------------------------------------------------------------


def _render(archive: str) -> dict[str, Any]:
    """`helm template` of ARCHIVE with its default values: a client-only dry-run install
    (which checks dependencies and the values schema), plus every template rendered."""
    out: dict[str, Any] = {"ok": False, "error": None, "manifest": "", "notes": None, "rendered": {}}
    try:
        chart = helm.Chart.load(archive)
    except helm.HelmError as exc:
        out["error"] = _err(exc)
        return out
    with chart, helm.Config(kubeconfig_content=_NOWHERE_KUBECONFIG, storage_driver="memory") as cfg:
        try:
            release = cfg.install(chart, "release-name", None, namespace="default", dry_run="client")
            rendered = chart.render(None, name="release-name", namespace="default", is_install=True)
        except helm.HelmError as exc:
            out["error"] = _err(exc)
            return out
    out.update(ok=True, manifest=release.get("manifest") or "", notes=release.get("notes"), rendered=rendered)
    return out


def _text(r: dict[str, Any]) -> str:
    """One text of a render: manifest, notes and every rendered template (hooks included)."""
    parts = [r["manifest"], "--- NOTES\n" + (r["notes"] or "")]
    parts += [f"--- {k}\n{v}" for k, v in sorted(r["rendered"].items())]
    return "\n".join(parts)


def _compare_renders(helm_pkg: str, pitrix_pkg: str) -> dict[str, Any]:
    """Renders Helm's package twice and pitrix's once. Identical when pitrix's render equals
    Helm's; when Helm's own two renders differ (randAlphaNum, genCA, ...), the lines that
    differ between them are masked first ("identical-modulo-random")."""
    a1, b = _render(helm_pkg), _render(pitrix_pkg)
    out: dict[str, Any] = {
        "helm_ok": a1["ok"],
        "helm_error": a1["error"],
        "pitrix_ok": b["ok"],
        "pitrix_error": b["error"],
        "same": None,
        "first_difference": None,
    }
    if not (a1["ok"] and b["ok"]):
        out["same"] = "same-error" if (a1["error"] == b["error"]) else "different-outcome"
        return out
    ta, tb = _text(a1), _text(b)
    if ta == tb:
        out["same"] = "identical"
        return out
    a2 = _render(helm_pkg)
    la, la2, lb = ta.split("\n"), _text(a2).split("\n"), tb.split("\n")
    if len(la) == len(la2) == len(lb):
        masked = [i for i in range(len(la)) if la[i] != la2[i]]
        if masked and all(la[i] == lb[i] for i in range(len(la)) if la[i] == la2[i]):
            out["same"] = "identical-modulo-random"
            return out
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            out["first_difference"] = {"line": i + 1, "helm": x[:300], "pitrix": y[:300]}
            break
    else:
        out["first_difference"] = {"line": min(len(la), len(lb)) + 1, "helm": "<length>", "pitrix": "<length>"}
    out["same"] = "different"
    return out


_LINT_TMP = re.compile(r"\S*/helm-lint[0-9]+/[^/\s]+")


def _lint_summary(path: str) -> dict[str, Any]:
    r = lint_one(path)

    # Lint names the chart by the path it was given, or by the temporary directory it unpacked
    # an archive into: make messages comparable across paths.
    def norm(text: str) -> str:
        return _LINT_TMP.sub("<chart>", text.replace(path, "<chart>"))

    for m in r["messages"]:
        m["path"] = norm(m["path"])
        m["message"] = norm(m["message"])
    r["errors"] = [norm(e) for e in r["errors"]]
    r["error"] = norm(r["error"]) if r["error"] else None
    del r["path"]
    return r


def corpus_one(spec: dict[str, Any]) -> dict[str, Any]:
    chart_dir, pitrix_pkg, work = spec["dir"], spec.get("pitrix_package"), spec["work"]
    os.makedirs(work, exist_ok=True)
    out: dict[str, Any] = {"id": spec["id"]}
    try:
        out["dependencies"] = helm.dependency_list(chart_dir)
        out["dependencies_error"] = None
    except helm.HelmError as exc:
        out["dependencies"] = []
        out["dependencies_error"] = _err(exc)
    d = load_one(chart_dir)
    out["load_dir"] = {"ok": d["ok"], "error": d["error"]}
    pkg: dict[str, Any] = {"ok": False, "error": None, "path": None, "bytes": None}
    try:
        written = os.path.abspath(helm.package(chart_dir, destination=work))
        pkg.update(ok=True, path=written, bytes=os.path.getsize(written))
    except helm.HelmError as exc:
        pkg["error"] = _err(exc)
    out["helm_package"] = pkg
    out["lint_dir"] = _lint_summary(chart_dir)
    if pkg["ok"]:
        out["lint_helm_package"] = _lint_summary(pkg["path"])
    if pitrix_pkg is not None:
        p = load_one(pitrix_pkg)
        out["load_pitrix"] = {k: p[k] for k in ("ok", "error", "name", "version", "files")}
        out["lint_pitrix_package"] = _lint_summary(pitrix_pkg)
        if pkg["ok"]:
            h = load_one(pkg["path"])
            out["load_helm"] = {k: h[k] for k in ("ok", "error", "name", "version", "files")}
            out["render"] = _compare_renders(pkg["path"], pitrix_pkg)
    if not pkg["ok"] or pitrix_pkg is None:
        # Helm's own verdict on installing the directory: its package when it has one.
        target = pkg["path"] if pkg["ok"] else chart_dir
        r = _render(target)
        out["template_helm"] = {"ok": r["ok"], "error": r["error"]}
        if pitrix_pkg is not None:
            r = _render(pitrix_pkg)
            out["template_pitrix"] = {"ok": r["ok"], "error": r["error"]}
    else:
        out["template_helm"] = {"ok": out["render"]["helm_ok"], "error": out["render"]["helm_error"]}
    return out


def cmd_corpus(args: argparse.Namespace) -> Any:
    with open(args.spec, encoding="utf-8") as fh:
        specs = json.load(fh)
    return [corpus_one(s) for s in specs]


def cmd_version(_args: argparse.Namespace) -> Any:
    return {
        "ok": True,
        "helm_python_sdk": helm.__version__,
        "libhelm_c": helm.helm_c_version(),
        "helm": helm.helm_sdk_version(),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="helm_oracle.py",
        description="Real Helm (via helm-python-sdk) as a JSON-speaking test oracle.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("load", help="load chart archives: metadata, file names, digest")
    s.add_argument("archives", nargs="+", metavar="ARCHIVE")
    s.set_defaults(fn=cmd_load)

    s = sub.add_parser("lint", help="helm lint")
    s.add_argument("charts", nargs="+", metavar="CHART_DIR_OR_ARCHIVE")
    s.set_defaults(fn=cmd_lint)

    s = sub.add_parser("template", help="helm template (client-only dry-run install)")
    s.add_argument("archive", metavar="ARCHIVE")
    s.add_argument("--values", metavar="FILE", help="a values YAML file (helm -f)")
    s.add_argument("--name", default="release-name", help="release name (default: release-name)")
    s.add_argument("--namespace", default="default", help="namespace (default: default)")
    s.set_defaults(fn=cmd_template)

    s = sub.add_parser("package", help="helm package CHART_DIR -d DEST_DIR")
    s.add_argument("chart_dir", metavar="CHART_DIR")
    s.add_argument("dest_dir", metavar="DEST_DIR")
    s.set_defaults(fn=cmd_package)

    s = sub.add_parser("index", help="helm repo index DIR [--url URL]")
    s.add_argument("dir", metavar="DIR")
    s.add_argument("--url", default=None, help="base URL of the chart archives")
    s.set_defaults(fn=cmd_index)

    s = sub.add_parser("repo-index", help="fetch and parse a repository's index.yaml")
    s.add_argument("url", metavar="URL")
    s.add_argument("--username", default=None)
    s.add_argument("--password", default=None)
    s.set_defaults(fn=cmd_repo_index)

    s = sub.add_parser("pull", help="helm pull CHART --repo URL --version V -d DIR")
    s.add_argument("chart", metavar="CHART")
    s.add_argument("--repo", required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--dest", required=True)
    s.add_argument("--username", default=None)
    s.add_argument("--password", default=None)
    s.set_defaults(fn=cmd_pull)

    s = sub.add_parser("corpus", help="package, load, lint and render many charts (JSON spec)")
    s.add_argument("spec", metavar="SPEC_JSON", help='[{"id", "dir", "pitrix_package"?, "work"}]')
    s.set_defaults(fn=cmd_corpus)

    s = sub.add_parser("version", help="versions of helm-python-sdk and Helm")
    s.set_defaults(fn=cmd_version)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result = args.fn(args)
    except Exception:  # the oracle broke: say so loudly, no JSON
        traceback.print_exc()
        print(f"helm_oracle: {args.cmd}: internal failure (see above)", file=sys.stderr)
        return 1
    json.dump(result, _JSON_OUT, indent=2, sort_keys=False)
    _JSON_OUT.write("\n")
    _JSON_OUT.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
