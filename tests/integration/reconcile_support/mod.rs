//! Shared by the `pitrix reconcile` tests: a catalog in a local git repository (the source),
//! a running `pitrix reconcile` process with its HTTP endpoint, and cluster helpers.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::TestCluster;

pub const CATALOG: &str = "my-store";
pub const INVENTORY_NS: &str = "pitrix-system";
pub const INVENTORY: &str = "pitrix-inventory-my-store";
pub const APPS: &str = "applications.application.kubesphere.io";
pub const VERSIONS: &str = "applicationversions.application.kubesphere.io";
pub const RELEASES: &str = "applicationreleases.application.kubesphere.io";
pub const CATEGORIES: &str = "categories.application.kubesphere.io";
pub const REPOS: &str = "repos.application.kubesphere.io";
pub const STORAGE_NS: &str = "extension-openpitrix";

pub fn install_crds(k: &TestCluster) {
    let crds = Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .arg("crds")
        .output()
        .unwrap();
    assert!(crds.status.success());
    k.kubectl_stdin_ok(&["apply", "--server-side", "-f", "-"], &crds.stdout);
    k.kubectl_ok(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=60s",
        "crd",
        "--all",
    ]);
}

/// Polls `f` every 100 ms until it gives Some, or panics with `what` after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A catalog in a git repository: the reconcile source.
pub struct Repo {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args([
            "-c",
            "user.name=pitrix test",
            "-c",
            "user.email=test@pitrix.invalid",
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Repo {
    /// The scaffold (`pitrix new`) committed on `main`.
    pub fn scaffold() -> Repo {
        Self::with_apps(0)
    }

    /// The scaffold plus `extra` copies of its app (`app-0` …), for longer syncs.
    pub fn with_apps(extra: usize) -> Repo {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("repo");
        pitrix::scaffold::new_catalog(&dir).unwrap();
        for i in 0..extra {
            let name = format!("app-{i}");
            let to = dir.join("apps").join(&name);
            copy_tree(&dir.join("apps/hello"), &to);
            let chart = to.join("0.1.0/Chart.yaml");
            let text = std::fs::read_to_string(&chart).unwrap();
            std::fs::write(
                &chart,
                text.replace("name: hello", &format!("name: {name}")),
            )
            .unwrap();
        }
        git(&dir, &["init", "-q"]);
        let repo = Repo { tmp, dir };
        repo.commit("the catalog");
        repo
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Commits everything; returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        git(&self.dir, &["add", "-A"]);
        git(&self.dir, &["commit", "-q", "--allow-empty", "-m", message]);
        self.head()
    }

    pub fn head(&self) -> String {
        git(&self.dir, &["rev-parse", "HEAD"])
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.dir.join(rel), text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel)).unwrap()
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `pitrix reconcile`.
pub struct Reconciler {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
    pub name: String,
    _cache: tempfile::TempDir,
}

/// Lease timings short enough for tests: failover within 3 s.
pub const FAST_LEASE: &[&str] = &[
    "--lease-duration",
    "3s",
    "--renew-deadline",
    "2s",
    "--retry-period",
    "500ms",
];

impl Reconciler {
    /// Starts `pitrix reconcile --source <repo>` against `kubeconfig`, polling every second
    /// unless `extra` sets `--interval`.
    pub fn start(name: &str, kubeconfig: &Path, source: &str, extra: &[&str]) -> Reconciler {
        Self::start_with_env(name, kubeconfig, source, extra, &[])
    }

    /// [`Self::start`] with `env` added to the process's environment (e.g. the repository
    /// credentials a catalog names).
    pub fn start_with_env(
        name: &str,
        kubeconfig: &Path,
        source: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Reconciler {
        let port = free_port();
        let cache = tempfile::tempdir().unwrap();
        let log = cache.path().join(format!("{name}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pitrix"))
            .args(["reconcile", "--source", source, "--kubeconfig"])
            .arg(kubeconfig)
            .args(if extra.contains(&"--interval") {
                &[][..]
            } else {
                &["--interval", "1s", "--jitter", "0"][..]
            })
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--cache-dir")
            .arg(cache.path().join("cache"))
            .args(["--identity", name])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start pitrix reconcile");
        let r = Reconciler {
            child,
            port,
            log,
            name: name.to_string(),
            _cache: cache,
        };
        wait_for(Duration::from_secs(20), "the HTTP endpoint", || {
            r.http("/healthz").ok().map(|_| ())
        });
        r
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The controller's private cache (`--cache-dir`).
    pub fn cache_dir(&self) -> PathBuf {
        self._cache.path().join("cache")
    }

    /// GET `path`: status code and body.
    pub fn http(&self, path: &str) -> std::io::Result<(u16, String)> {
        self.http_get(path, "")
            .map(|(status, _, body)| (status, body))
    }

    /// GET `path` with `headers` (each line ending `\r\n`): status code, the response's
    /// header lines, body.
    pub fn http_get(&self, path: &str, headers: &str) -> std::io::Result<(u16, String, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
        )?;
        let mut text = String::new();
        s.read_to_string(&mut text)?;
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        Ok((status, head.to_string(), body.to_string()))
    }

    pub fn metrics(&self) -> String {
        self.http("/metrics").map(|(_, b)| b).unwrap_or_default()
    }

    /// The value of the sample `name{labels}` (exactly as written), if present.
    pub fn metric(&self, sample: &str) -> Option<f64> {
        metric(&self.metrics(), sample)
    }

    pub fn is_leader(&self) -> bool {
        self.metric("pitrix_leader") == Some(1.0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn signal(&self, sig: &str) {
        // By the PID of our own child, never by name.
        let status = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    pub fn sigterm(&self) {
        self.signal("-TERM");
    }

    pub fn sigkill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() >= deadline {
                let log = self.log_text();
                self.sigkill();
                panic!("{} did not exit within {timeout:?}; log:\n{log}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Reconciler {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "---- log of {} ----\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(sample)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

pub fn get(k: &TestCluster, resource: &str, name: &str) -> Option<Value> {
    let out = k.kubectl(&["get", resource, name, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

pub fn get_ns(k: &TestCluster, resource: &str, ns: &str, name: &str) -> Option<Value> {
    let out = k.kubectl(&["get", resource, name, "-n", ns, "-o", "json"]);
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

/// The inventory's status annotations (empty until there is an inventory).
pub fn sync_status(k: &TestCluster) -> Value {
    get_ns(k, "configmap", INVENTORY_NS, INVENTORY)
        .map(|cm| cm["metadata"]["annotations"].clone())
        .unwrap_or(Value::Null)
}

/// Waits until the inventory says `result` for `revision`.
pub fn wait_sync(k: &TestCluster, revision: &str, result: &str, timeout: Duration) -> Value {
    wait_for(
        timeout,
        &format!("sync of {revision} with result {result}"),
        || {
            let s = sync_status(k);
            (s["pitrix.io/last-sync-revision"] == revision
                && s["pitrix.io/last-sync-result"] == result)
                .then_some(s)
        },
    )
}

/// Events about the inventory: (reason, note) pairs.
pub fn events(k: &TestCluster) -> Vec<(String, String)> {
    let out = k.kubectl_ok(&[
        "get",
        "events.events.k8s.io",
        "-n",
        INVENTORY_NS,
        "-o",
        "json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["regarding"]["name"] == INVENTORY)
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_string(),
                e["note"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// resourceVersion of every object the catalog manages.
pub fn resource_versions(k: &TestCluster) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for resource in [
        APPS,
        VERSIONS,
        RELEASES,
        CATEGORIES,
        REPOS,
        "configmaps",
        "namespaces",
    ] {
        let list: Value = serde_json::from_str(&k.kubectl_ok(&[
            "get",
            resource,
            "-A",
            "-l",
            "pitrix.io/catalog",
            "-o",
            "json",
        ]))
        .unwrap();
        for item in list["items"].as_array().unwrap() {
            all.push((
                format!("{resource}/{}", item["metadata"]["name"].as_str().unwrap()),
                item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ));
        }
    }
    all.sort();
    all
}
