#!/usr/bin/env python3
"""The logic of pitrix's GitHub Action (action.yml), testable outside GitHub.

Usage: pitrix_action.py run         (the mode comes from INPUT_MODE)
       pitrix_action.py cache-key   (prints a key for the cached pitrix build)

Everything comes from the environment, as GitHub provides it to a composite action's step:
  INPUT_CATALOG, INPUT_MODE (pr | apply | publish), INPUT_BASE, INPUT_KUBECONFIG, INPUT_COMMENT,
  INPUT_ARGS, INPUT_GITHUB_TOKEN, INPUT_PUBLISH_BRANCH, INPUT_PACKAGE_CACHE;
  GITHUB_EVENT_PATH, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, GITHUB_API_URL, GITHUB_REPOSITORY,
  GITHUB_SERVER_URL, GITHUB_RUN_ID, RUNNER_TEMP; PITRIX_BIN (the pitrix binary, default
  `pitrix` on PATH); PITRIX_PACKAGE_CACHE (the package cache directory action.yml restores and
  saves: every compile and validate packs through it unless `args` names its own cache).

Modes:
  pr       validate (annotations), compile --diff against the pull request's base commit, write
           the job summary, create or update ONE pull request comment (found by the hidden
           marker of the Markdown diff), leave the full diff in a directory for the artifact.
  apply    compile, then `pitrix apply --from` the compiled output with the kubeconfig.
  publish  compile, then commit the output to a branch (default `pitrix-compiled`) and push it,
           for Argo CD or Flux to follow.

Outputs (GITHUB_OUTPUT): changed (true/false), diff-file, diff-dir (pr); changed, commit
(publish). Only the standard library is used: the runner's python3 is enough.
"""

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

MARKER_PREFIX = "<!-- pitrix-diff:"
USER_AGENT = "pitrix-action"


def log(message):
    print(f"pitrix-action: {message}", file=sys.stderr, flush=True)


def env(name, default=""):
    value = os.environ.get(name)
    return default if value is None else value


def truthy(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


def pitrix_bin():
    return env("PITRIX_BIN", "pitrix") or "pitrix"


def set_output(name, value):
    path = env("GITHUB_OUTPUT")
    if not path:
        log(f"output {name}={value}")
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(f"{name}={value}\n")


def add_summary(markdown):
    path = env("GITHUB_STEP_SUMMARY")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(markdown)
        if not markdown.endswith("\n"):
            f.write("\n")


def run(args, capture=False, extra_env=None, check=False):
    """Runs a command; its stderr (and stdout unless captured) go to the job log."""
    log("$ " + " ".join(shlex.quote(a) for a in args))
    proc_env = dict(os.environ)
    if extra_env:
        proc_env.update(extra_env)
    result = subprocess.run(
        args,
        stdout=subprocess.PIPE if capture else None,
        text=True,
        env=proc_env,
    )
    if check and result.returncode != 0:
        raise SystemExit(f"pitrix-action: {args[0]} exited with {result.returncode}")
    return result


def git(*args, capture=True, check=True, cwd=None):
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE,
        text=True,
    )
    if check and result.returncode != 0:
        raise SystemExit(f"pitrix-action: git {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def event():
    path = env("GITHUB_EVENT_PATH")
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def work_dir(name):
    base = env("RUNNER_TEMP") or tempfile.gettempdir()
    path = os.path.join(base, name)
    os.makedirs(path, exist_ok=True)
    return path


def extra_args():
    return shlex.split(env("INPUT_ARGS"))


# The flags of `args` that `pitrix validate` takes too (the rest are compile's or apply's), with
# whether they take a value: validate must check what the diff compiles (`--env prod`).
VALIDATE_FLAGS = {"--env": True, "--online": False, "--cache-dir": True, "--no-cache": False}


def cache_args():
    """`--cache-dir` for the package cache action.yml keeps between runs, unless it is switched
    off or `args` chooses (`--cache-dir DIR`, `--no-cache`)."""
    directory = env("PITRIX_PACKAGE_CACHE")
    if not directory or not truthy(env("INPUT_PACKAGE_CACHE", "true")):
        return []
    if any(a.partition("=")[0] in ("--cache-dir", "--no-cache") for a in extra_args()):
        return []
    return ["--cache-dir", directory]


def validate_args():
    """The part of `args` that `pitrix validate` understands, in order, after the cache."""
    out, args = cache_args(), extra_args()
    i = 0
    while i < len(args):
        flag, _, inline = args[i].partition("=")
        takes_value = VALIDATE_FLAGS.get(flag)
        if takes_value is None:
            i += 1
            continue
        out.append(args[i])
        if takes_value and not inline and i + 1 < len(args):
            out.append(args[i + 1])
            i += 1
        i += 1
    return out


# --- the GitHub REST API (comments) --------------------------------------------------------


class Api:
    def __init__(self, token, base_url, repository):
        self.token = token
        self.base_url = base_url.rstrip("/")
        self.repository = repository

    def request(self, method, url, body=None):
        if not url.startswith("http"):
            url = self.base_url + url
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("User-Agent", USER_AGENT)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=60) as resp:
            payload = resp.read().decode("utf-8") or "null"
            return json.loads(payload), resp.headers.get("Link", "")

    def comments(self, number):
        url = f"/repos/{self.repository}/issues/{number}/comments?per_page=100"
        while url:
            page, link = self.request("GET", url)
            yield from page or []
            url = next_link(link)

    def create(self, number, body):
        comment, _ = self.request("POST", f"/repos/{self.repository}/issues/{number}/comments", {"body": body})
        return comment

    def update(self, comment_id, body):
        comment, _ = self.request("PATCH", f"/repos/{self.repository}/issues/comments/{comment_id}", {"body": body})
        return comment


def next_link(link_header):
    """The rel="next" URL of a Link header, if any."""
    for part in link_header.split(","):
        pieces = part.split(";")
        if len(pieces) >= 2 and 'rel="next"' in pieces[1]:
            return pieces[0].strip().strip("<>")
    return None


def marker_of(markdown):
    first = markdown.split("\n", 1)[0]
    return first if first.startswith(MARKER_PREFIX) else None


def sticky_comment(api, number, body):
    """Creates the pull request's pitrix comment, or updates the one that exists."""
    marker = marker_of(body)
    existing = None
    if marker:
        mine = [c for c in api.comments(number) if (c.get("body") or "").startswith(marker)]
        # Prefer a comment a bot wrote (the token's own), then the oldest.
        mine.sort(key=lambda c: (not str((c.get("user") or {}).get("type", "")) == "Bot", c.get("id", 0)))
        existing = mine[0] if mine else None
    if existing:
        try:
            api.update(existing["id"], body)
            log(f"updated comment {existing['id']} on #{number}")
            return "updated"
        except urllib.error.HTTPError as e:
            log(f"cannot update comment {existing['id']} ({e.code}); creating a new one")
    created = api.create(number, body)
    log(f"created comment {created.get('id')} on #{number}")
    return "created"


# --- modes ----------------------------------------------------------------------------------


def catalog_name(catalog):
    """The catalog's name from pitrix.toml, as the Markdown diff's marker spells it."""
    name = os.path.basename(os.path.abspath(catalog))
    try:
        with open(os.path.join(catalog, "pitrix.toml"), "rb") as f:
            text = f.read()
        try:
            import tomllib

            name = tomllib.loads(text.decode("utf-8"))["catalog"]["name"]
        except ImportError:
            import re

            m = re.search(rb'^\s*name\s*=\s*"([^"]*)"', text, re.M)
            name = m.group(1).decode() if m else name
    except (OSError, KeyError, TypeError, ValueError):
        pass
    return str(name).replace("--", "-")


def ensure_commit(rev):
    """Makes sure the base revision is in the local object database (shallow checkouts fetch
    only the head); returns what to pass to --base: `rev`, or the commit fetched for it."""
    if git("cat-file", "-e", f"{rev}^{{commit}}", check=False).returncode == 0:
        return rev
    log(f"fetching base commit {rev}")
    if git("fetch", "--no-tags", "--depth=1", "origin", rev, check=False).returncode != 0:
        return rev
    return git("rev-parse", "FETCH_HEAD").stdout.strip() or rev


def escape_data(text):
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text):
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotate_diff_errors(catalog, diff_json):
    """Workflow annotations for what only the diff finds (a changed package), on its file."""
    try:
        with open(diff_json, encoding="utf-8") as f:
            errors = json.load(f).get("errors") or []
    except (OSError, ValueError):
        return
    for e in errors:
        props = []
        if e.get("file"):
            # Repository-relative, as GitHub wants it (the step runs at the repository root).
            path = os.path.normpath(os.path.join(catalog, e["file"]))
            if os.path.isabs(path):
                rel = os.path.relpath(path)
                path = rel if not rel.startswith("..") else path
            props.append(f"file={escape_property(path)}")
        props.append(f"title={escape_property('pitrix ' + e.get('code', 'error'))}")
        message = e.get("message", "")
        if e.get("hint"):
            message += "\nhint: " + e["hint"]
        print(f"::error {','.join(props)}::{escape_data(message)}", flush=True)


def mode_pr():
    catalog = env("INPUT_CATALOG", ".") or "."
    ev = event()
    pr = ev.get("pull_request") or {}
    number = pr.get("number")
    base = env("INPUT_BASE") or (pr.get("base") or {}).get("sha") or ""
    if base:
        base = ensure_commit(base)

    validate = run([pitrix_bin(), "validate", catalog, "--format", "github"] + validate_args())

    out_dir = work_dir("pitrix-diff")
    full_md = os.path.join(out_dir, "diff.md")
    server = env("GITHUB_SERVER_URL", "https://github.com")
    run_url = None
    if env("GITHUB_REPOSITORY") and env("GITHUB_RUN_ID"):
        run_url = f"{server}/{env('GITHUB_REPOSITORY')}/actions/runs/{env('GITHUB_RUN_ID')}"
    args = [pitrix_bin(), "compile", catalog, "--diff", "--format", "markdown", "--exit-code",
            "--diff-out", full_md,
            "--diff-out", os.path.join(out_dir, "diff.txt"),
            "--diff-out", os.path.join(out_dir, "diff.json")]
    if base:
        args += ["--base", base]
    if run_url:
        args += ["--full-diff-url", f"in the `pitrix-diff` artifact of {run_url}"]
    args += cache_args() + extra_args()
    diff = run(args, capture=True)
    markdown = diff.stdout or ""
    annotate_diff_errors(catalog, os.path.join(out_dir, "diff.json"))
    changed = diff.returncode == 1
    failed = validate.returncode != 0 or diff.returncode not in (0, 1)

    if not markdown.strip():
        # No diff (the catalog has errors, or git failed): say so where people look.
        markdown = (
            f"{MARKER_PREFIX}{catalog_name(catalog)} -->\n"
            "### pitrix diff\n\n"
            "> [!CAUTION]\n> pitrix could not compute the diff: the catalog has errors "
            "(see the annotations on the changed files) or the base revision could not be read. "
            "The job log has the details.\n"
        )
    add_summary(markdown)
    set_output("changed", "true" if changed else "false")
    set_output("diff-file", full_md if os.path.exists(full_md) else "")
    set_output("diff-dir", out_dir)

    if truthy(env("INPUT_COMMENT", "true")) and number:
        api = Api(env("INPUT_GITHUB_TOKEN") or env("GITHUB_TOKEN"),
                  env("GITHUB_API_URL", "https://api.github.com"), env("GITHUB_REPOSITORY"))
        try:
            sticky_comment(api, number, markdown)
        except (urllib.error.URLError, OSError, ValueError) as e:
            # Pull requests from forks get a read-only token: the summary still has the diff.
            log(f"warning: cannot comment on #{number}: {e}")
            print(f"::warning title=pitrix::cannot comment on the pull request ({e}); the diff is in the job summary")
    elif not number:
        log("not a pull_request event: no comment")
    return 1 if failed else 0


def compile_to(catalog, out):
    result = run([pitrix_bin(), "compile", catalog, "-o", out] + cache_args())
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def mode_apply():
    catalog = env("INPUT_CATALOG", ".") or "."
    kubeconfig = env("INPUT_KUBECONFIG")
    out = os.path.join(work_dir("pitrix-apply"), "out")
    compile_to(catalog, out)
    args = [pitrix_bin(), "apply", catalog, "--from", out]
    extra_env = {}
    fd, path = None, None
    try:
        if kubeconfig.strip():
            # The kubeconfig is a secret: a private file, removed afterwards, never echoed.
            fd, path = tempfile.mkstemp(prefix="kubeconfig-", dir=work_dir("pitrix-apply"))
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(kubeconfig)
            args += ["--kubeconfig", path]
            extra_env["KUBECONFIG"] = path
        args += extra_args()
        result = run(args, extra_env=extra_env)
    finally:
        if path and os.path.exists(path):
            os.remove(path)
    return result.returncode


def mode_publish():
    catalog = env("INPUT_CATALOG", ".") or "."
    branch = env("INPUT_PUBLISH_BRANCH") or "pitrix-compiled"
    out = os.path.join(work_dir("pitrix-publish"), "out")
    if os.path.exists(out):
        shutil.rmtree(out)
    compile_to(catalog, out)
    source = git("rev-parse", "HEAD").stdout.strip()

    tree = tempfile.mkdtemp(prefix="pitrix-publish-", dir=work_dir("pitrix-publish"))
    os.rmdir(tree)
    exists = git("fetch", "--no-tags", "origin",
                 f"+refs/heads/{branch}:refs/remotes/origin/{branch}", check=False).returncode == 0
    if exists:
        git("worktree", "add", "--detach", tree, f"refs/remotes/origin/{branch}")
    else:
        git("worktree", "add", "--detach", tree, "HEAD")
        git("checkout", "-q", "--orphan", branch, cwd=tree)
    try:
        for name in os.listdir(tree):
            if name == ".git":
                continue
            target = os.path.join(tree, name)
            shutil.rmtree(target) if os.path.isdir(target) and not os.path.islink(target) else os.remove(target)
        shutil.copytree(out, tree, dirs_exist_ok=True)
        git("add", "-A", cwd=tree)
        changed = git("diff", "--cached", "--quiet", cwd=tree, check=False).returncode != 0
        if changed or not exists:
            identity = ["-c", "user.name=github-actions[bot]",
                        "-c", "user.email=41898282+github-actions[bot]@users.noreply.github.com"]
            git(*identity, "commit", "-q", "--allow-empty", "-m",
                f"pitrix: compiled from {source}", cwd=tree)
            git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=tree)
            changed = True
        commit = git("rev-parse", "HEAD", cwd=tree).stdout.strip()
    finally:
        git("worktree", "remove", "--force", tree, check=False)
    set_output("changed", "true" if changed else "false")
    set_output("commit", commit)
    log(f"{branch}: {'pushed ' + commit if changed else 'unchanged'}")
    return 0


def cache_key():
    """A key that changes with the action's source: the cached build is reused until then."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    h = hashlib.sha256()
    for top in ("Cargo.toml", "Cargo.lock", "src", "templates"):
        path = os.path.join(root, top)
        files = [path] if os.path.isfile(path) else sorted(
            os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs)
        for f in files:
            h.update(os.path.relpath(f, root).encode())
            with open(f, "rb") as fh:
                h.update(hashlib.sha256(fh.read()).digest())
    print(f"pitrix-{h.hexdigest()[:32]}")
    return 0


def main(argv):
    if len(argv) < 2 or argv[1] not in ("run", "cache-key"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "cache-key":
        return cache_key()
    mode = env("INPUT_MODE", "pr").strip() or "pr"
    modes = {"pr": mode_pr, "apply": mode_apply, "publish": mode_publish}
    if mode not in modes:
        log(f"unknown mode `{mode}`: use pr, apply or publish")
        return 2
    return modes[mode]()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
