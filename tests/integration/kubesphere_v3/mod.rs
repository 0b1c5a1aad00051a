//! KubeSphere 3.4.1's own App Store controllers beside a test API server: the
//! `ks-controller-manager` of KubeSphere v3.4.1 (tag v3.4.1, commit 3e0493a) that
//! `scripts/setup-test-env.sh` (`setup_kubesphere_v3`) builds from source and caches in
//! `$PITRIX_CACHE/kubesphere-v3/` with its CRDs (`crds/`). It is the oracle for what KubeSphere 3
//! does with `application.kubesphere.io/v1alpha1` objects (docs/kubesphere-v3.md), as the
//! `kubesphere` module is for KubeSphere 4.
//!
//! [`KubeSphereV3::start`] runs it beside the test binary's shared API server
//! (`cluster::shared()`, which has kube-controller-manager: owner references are garbage
//! collected, as in a real cluster); [`KubeSphereV3::start_beside`] beside a cluster of your own.
//! Start-up:
//! 1. installs only the five `application.kubesphere.io` Helm* CRDs of `crds/` ([`CRD_FILES`]);
//! 2. starts a real S3 server on the loopback (`pitrix_testkit::s3`, SigV4) with bucket
//!    [`BUCKET`]: KubeSphere 3 keeps packages there, and without `openpitrix.s3.endpoint` the
//!    helmapplication and helmapplicationversion controllers do not run (fact sheet §10.1);
//! 3. writes `kubesphere.yaml` (§10.2) into a private working directory, where viper finds it;
//! 4. starts `ks-controller-manager --controllers=`[`CONTROLLERS`] there with `KUBECONFIG` set
//!    (its in-process Helm reads only that, §6.3), and waits until each of the five controllers
//!    logs that its workers started. A KubeSphere that cannot start fails the test with its last
//!    log lines; a missing binary fails it naming the setup script. Never skipped.
//!
//! The App Store's kinds are cluster-scoped and the API server is shared: tests use their own
//! object names ([`crate::cluster::unique_name`]) and their own categories (counts of
//! `ctg-uncategorized` are shared).
//!
//! # Ports and the lock
//! ks-controller-manager 3.4.1 hard-codes its webhook port, **:8443**
//! (`cmd/controller-manager/app/server.go:179-182`), and controller-runtime's default metrics
//! address **:8080**; there are no flags for either. KubeSphere 4's harness needs the same two
//! ports, so both take the same machine-wide lock, [`crate::kubesphere::LOCK_PATH`], for as long
//! as their controller runs: one KubeSphere of either version per machine at a time. (They would
//! not disturb each other otherwise: the v4 tier runs in private API servers and uses the v2
//! kinds; v3 needs no webhook.) The webhook server still starts, so it gets a self-signed
//! certificate (`openssl`, as the v4 harness).
//!
//! # Processes
//! As in `kubesphere`: ks-controller-manager is the spawned process itself, stopped by PID on
//! drop and SIGTERMed by `cluster::WATCHDOG` when the test process dies; a janitor removes the
//! working directory afterwards.
#![allow(dead_code)]

mod lifecycle;

use std::fs::{self, File, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use pitrix::storage::s3::S3Client;
use pitrix_testkit::s3::S3Server;
use serde_json::{Value, json};

use crate::cluster::{self, Server, TestCluster};
use crate::kubesphere::LOCK_PATH;

/// The ports ks-controller-manager 3.4.1 binds on all interfaces (webhook, metrics).
pub const PORTS: [u16; 2] = [8443, 8080];

/// The controllers of the App Store (`cmd/controller-manager/app/controllers.go:215-259`); the
/// other controllers of ks-controller-manager want CRDs and services this cluster lacks.
pub const CONTROLLERS: &str =
    "helmrepo,helmcategory,helmapplication,helmapplicationversion,helmrelease";

/// The names the [`CONTROLLERS`] log under (controller-runtime's `controller="…"`): the repo
/// and category controllers name themselves, the others are named after their kind.
pub const CONTROLLER_LOG_NAMES: [&str; 5] = [
    "helm-repo-controller",
    "helm-category-controller",
    "helmapplication",
    "helmapplicationversion",
    "helmrelease",
];

/// The five CRDs of `config/ks-core/crds/` that the App Store's kinds need, and only those.
pub const CRD_FILES: [&str; 5] = [
    "application.kubesphere.io_helmapplications.yaml",
    "application.kubesphere.io_helmapplicationversions.yaml",
    "application.kubesphere.io_helmcategories.yaml",
    "application.kubesphere.io_helmreleases.yaml",
    "application.kubesphere.io_helmrepos.yaml",
];

pub const APPS: &str = "helmapplications.application.kubesphere.io";
pub const VERSIONS: &str = "helmapplicationversions.application.kubesphere.io";
pub const CATEGORIES: &str = "helmcategories.application.kubesphere.io";
pub const RELEASES: &str = "helmreleases.application.kubesphere.io";
pub const REPOS: &str = "helmrepos.application.kubesphere.io";

/// The bucket of `openpitrix.s3.bucket` (a default 3.x install's name); the harness creates it,
/// as KubeSphere's installer would (no 3.x code creates it).
pub const BUCKET: &str = "app-store";

/// Where `scripts/setup-test-env.sh` caches KubeSphere 3: `$PITRIX_CACHE/kubesphere-v3`, else
/// `<repo>/.cache/kubesphere-v3`. Panics with what to run when the binary or a CRD is missing.
pub fn install_dir() -> PathBuf {
    let dir = std::env::var_os("PITRIX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cluster::repo_root().join(".cache"))
        .join("kubesphere-v3");
    let missing: Vec<String> = std::iter::once("ks-controller-manager".to_string())
        .chain(CRD_FILES.iter().map(|f| format!("crds/{f}")))
        .filter(|f| !dir.join(f).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "KubeSphere 3.4.1 is not built: {} lacks {}. Run `bash scripts/setup-test-env.sh` (it \
         builds it once from ../shared/kubesphere-v3/build.sh, ~3.5 min, or takes \
         $KS3_CONTROLLER_MANAGER and $KS3_CRDS).",
        dir.display(),
        missing.join(", ")
    );
    dir
}

/// A fresh API server with KubeSphere 3.4.1's five App Store CRDs and no controller: for what
/// pitrix writes on its own (apply, diff, reconcile), without KubeSphere reacting.
pub fn crds_only_cluster() -> TestCluster {
    let k = TestCluster::start();
    install_crds(&k, &install_dir().join("crds"));
    k
}

/// The API server KubeSphere 3 runs against: the test binary's shared one, or one of the test's.
pub enum Cluster {
    Shared(&'static TestCluster),
    Owned(Box<TestCluster>),
}

impl std::ops::Deref for Cluster {
    type Target = TestCluster;
    fn deref(&self) -> &TestCluster {
        match self {
            Cluster::Shared(c) => c,
            Cluster::Owned(c) => c,
        }
    }
}

/// KubeSphere 3.4.1's ks-controller-manager, its S3 store and the API server it runs against.
pub struct KubeSphereV3 {
    /// The API server (its admin kubeconfig is KubeSphere's too).
    pub cluster: Cluster,
    /// The S3 server of `openpitrix.s3`: upload packages to [`BUCKET`] under
    /// `<workspace>/<version name>` (fact sheet §4.1) with [`Self::upload`] or any S3 client.
    pub s3: S3Server,
    /// KubeSphere's log (klog, `-v=4`), appended to while it runs.
    pub log: PathBuf,
    dir: tempfile::TempDir,
    server: Option<Server>,
    janitor: Option<(Child, ChildStdin)>,
    /// Last field: released after everything above has stopped.
    _lock: File,
}

impl std::ops::Deref for KubeSphereV3 {
    type Target = TestCluster;
    fn deref(&self) -> &TestCluster {
        &self.cluster
    }
}

impl KubeSphereV3 {
    /// KubeSphere 3 beside the test binary's shared API server (`cluster::shared()`).
    pub fn start() -> KubeSphereV3 {
        // Lock first: the ports are fixed, and waiting is better than failing.
        let lock = lock_machine();
        Self::start_locked(Cluster::Shared(cluster::shared()), lock)
    }

    /// KubeSphere 3 beside `cluster` (which it owns from now on: it stops after KubeSphere).
    pub fn start_beside(cluster: TestCluster) -> KubeSphereV3 {
        let lock = lock_machine();
        Self::start_locked(Cluster::Owned(Box::new(cluster)), lock)
    }

    fn start_locked(cluster: Cluster, lock: File) -> KubeSphereV3 {
        let started = Instant::now();
        let install = install_dir();
        for port in PORTS {
            if let Err(e) = TcpListener::bind(("0.0.0.0", port)) {
                panic!(
                    "KubeSphere 3: port {port} is taken ({e}) although {LOCK_PATH} is ours: \
                     something outside the KubeSphere tests listens there (`ss -ltnp \
                     'sport = :{port}'`)"
                );
            }
        }
        install_crds(&cluster, &install.join("crds"));
        let s3 = S3Server::start();
        s3.create_bucket(BUCKET);
        let dir = tempfile::Builder::new()
            .prefix("pitrix-kubesphere-v3-")
            .tempdir()
            .expect("a temp dir for KubeSphere 3");
        for sub in ["certs", "pids", "home"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        webhook_cert(&dir.path().join("certs"));
        let config = config_file(&cluster.kubeconfig, &s3);
        fs::write(
            dir.path().join("kubesphere.yaml"),
            serde_yaml::to_string(&config).unwrap(),
        )
        .unwrap();
        let log = dir.path().join("ks-controller-manager.log");
        let janitor = cluster::spawn_janitor(dir.path());
        let mut ks = KubeSphereV3 {
            cluster,
            s3,
            log,
            dir,
            server: None,
            janitor: Some(janitor),
            _lock: lock,
        };
        // On a panic from here on, `ks` is dropped: KubeSphere is stopped, its dir removed.
        ks.spawn(&install.join("ks-controller-manager"));
        ks.wait_until_ready();
        eprintln!(
            "[kubesphere-v3] ks-controller-manager 3.4.1 ready beside {} in {:.1}s (dir {}, S3 {})",
            ks.cluster.server,
            started.elapsed().as_secs_f64(),
            ks.dir.path().display(),
            ks.s3.endpoint
        );
        ks
    }

    fn spawn(&mut self, binary: &Path) {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open KubeSphere 3's log");
        let mut child = Command::new("sh")
            .current_dir(self.dir.path()) // viper reads ./kubesphere.yaml
            // The in-process Helm reads KUBECONFIG, not --kubeconfig (fact sheet §6.3); HOME
            // keeps its discovery cache out of the user's ~/.kube.
            .env("KUBECONFIG", &self.cluster.kubeconfig)
            .env("HOME", self.dir.path().join("home"))
            .arg("-c")
            .arg(cluster::WATCHDOG)
            .arg("sh")
            .arg(binary)
            .arg(format!(
                "--kubeconfig={}",
                self.cluster.kubeconfig.display()
            ))
            .arg("--leader-elect=false")
            .arg(format!("--controllers={CONTROLLERS}"))
            .arg(format!(
                "--webhook-cert-dir={}",
                self.dir.path().join("certs").display()
            ))
            .arg("-v=4")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let watchdog = child.stdin.take();
        fs::write(
            self.dir.path().join("pids/ks-controller-manager"),
            format!("{}\n", child.id()),
        )
        .unwrap();
        self.server = Some(Server { child, watchdog });
    }

    /// Waits until every controller of [`CONTROLLERS`] logged that its workers started
    /// (controller-runtime's "Starting workers", under the names of [`CONTROLLER_LOG_NAMES`]); a
    /// controller skipped for want of S3 never does.
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + ready_timeout();
        loop {
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|s| s.child.try_wait().expect("try_wait"))
            {
                panic!(
                    "KubeSphere 3: ks-controller-manager exited during start-up ({status}); last \
                     lines of {}:\n{}",
                    self.log.display(),
                    self.log_tail(60)
                );
            }
            let log = self.log_text();
            let waiting: Vec<&str> = CONTROLLER_LOG_NAMES
                .into_iter()
                .filter(|c| !started_workers(&log, c))
                .collect();
            if waiting.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "KubeSphere 3 not ready after {}s: no workers yet for {waiting:?}; last \
                     lines of {}:\n{}",
                    ready_timeout().as_secs(),
                    self.log.display(),
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// KubeSphere's private working directory (config file, certificate, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stores `bytes` in [`BUCKET`] under `key`, as ks-apiserver's upload does: a signed PUT
    /// through pitrix's own S3 client (the one `pitrix apply` uploads with).
    pub fn upload(&self, key: &str, bytes: &[u8]) {
        self.s3_client()
            .put(key, bytes)
            .unwrap_or_else(|e| panic!("upload of {key} to {}: {e}", self.s3.endpoint));
    }

    /// A pitrix S3 client for [`BUCKET`] with the keys KubeSphere uses.
    pub fn s3_client(&self) -> S3Client {
        S3Client::new(
            &self.s3.endpoint,
            BUCKET,
            &self.s3.region,
            true,
            &self.s3.access_key,
            &self.s3.secret_key,
        )
        .expect("an S3 client for the test S3 server")
    }

    /// Whether ks-controller-manager still runs.
    pub fn is_running(&mut self) -> bool {
        self.server
            .as_mut()
            .is_some_and(|s| s.child.try_wait().ok().flatten().is_none())
    }

    /// KubeSphere's whole log so far.
    pub fn log_text(&self) -> String {
        fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// The last `n` lines of the log, each cut at 600 characters.
    pub fn log_tail(&self, n: usize) -> String {
        cluster::log_tail(&self.log, n)
            .lines()
            .map(|l| match l.char_indices().nth(600) {
                Some((i, _)) => format!("{}…", &l[..i]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// klog error lines (`E1204 …`) of the log that name `name`.
    pub fn errors_about(&self, name: &str) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|l| {
                let b = l.as_bytes();
                b.len() > 5 && b[0] == b'E' && b[1..5].iter().all(u8::is_ascii_digit)
            })
            .filter(|l| l.contains(name))
            .map(str::to_string)
            .collect()
    }

    /// Creates `object` (`kubectl create`, as KubeSphere's REST handlers create: no
    /// last-applied annotation, which the app controller would copy into the store copy).
    pub fn create(&self, object: &Value) {
        self.kubectl_stdin_ok(
            &["create", "-f", "-", "-o", "name"],
            object.to_string().as_bytes(),
        );
    }

    /// A JSON merge patch of `resource/name`'s main resource.
    pub fn patch(&self, resource: &str, name: &str, patch: &Value) {
        self.kubectl_ok(&[
            "patch",
            resource,
            name,
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
    }

    /// A JSON merge patch of `resource/name`'s `/status` subresource (what ks-apiserver's
    /// `UpdateStatus` writes: the review actions).
    pub fn patch_status(&self, resource: &str, name: &str, patch: &Value) {
        self.kubectl_ok(&[
            "patch",
            resource,
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            &patch.to_string(),
        ]);
    }

    /// Deletes `resource/name` without waiting for its finalizers.
    pub fn delete(&self, resource: &str, name: &str) {
        self.kubectl_ok(&["delete", resource, name, "--wait=false"]);
    }

    /// `kubectl get <resource> <name> [-n ns] -o json`, `None` when it does not exist.
    pub fn get_json(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut args = vec!["get", resource, name, "-o", "json"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let out = self.kubectl(&args);
        if out.status.success() {
            return Some(serde_json::from_slice(&out.stdout).expect("kubectl printed JSON"));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("NotFound") || stderr.contains("not found"),
            "kubectl {} failed: {stderr}",
            args.join(" ")
        );
        None
    }

    /// The cluster-scoped object `resource/name`; panics when it does not exist.
    pub fn get(&self, resource: &str, name: &str) -> Value {
        self.get_json(resource, None, name)
            .unwrap_or_else(|| panic!("{resource}/{name} does not exist"))
    }

    /// `kubectl get <resource> [-n ns] -l selector -o json`'s items.
    pub fn list(&self, resource: &str, namespace: Option<&str>, selector: &str) -> Vec<Value> {
        let mut args = vec!["get", resource, "-o", "json", "-l", selector];
        match namespace {
            Some(ns) => args.extend(["-n", ns]),
            None => args.push("--all-namespaces"),
        }
        let v: Value = serde_json::from_str(&self.kubectl_ok(&args)).expect("JSON list");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `f` every 200 ms until it gives `Some`; after `timeout` panics with `what` and the
    /// last lines of KubeSphere's log.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}; last lines of KubeSphere 3's \
                     log ({}):\n{}",
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for KubeSphereV3 {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            cluster::stop_server(server);
        }
        let _ = fs::remove_dir_all(self.dir.path().join("pids"));
        if let Some((mut janitor, stdin)) = self.janitor.take() {
            drop(stdin);
            let _ = janitor.wait();
        }
        // Then the fields: the S3 server stops, the temp dir goes, the lock is released.
    }
}

fn ready_timeout() -> Duration {
    let secs = std::env::var("PITRIX_TEST_KUBESPHERE_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Whether controller-runtime logged "Starting workers" for `controller` (klogr prints
/// `controller="<name>"`).
fn started_workers(log: &str, controller: &str) -> bool {
    let tag = format!("controller=\"{controller}\"");
    log.lines()
        .any(|l| l.contains("Starting workers") && l.contains(&tag))
}

/// Takes [`LOCK_PATH`] (shared with the KubeSphere 4 harness: the same fixed ports)
/// exclusively, waiting (and saying so) while another KubeSphere holds it.
fn lock_machine() -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(LOCK_PATH)
        .or_else(|_| File::open(LOCK_PATH))
        .unwrap_or_else(|e| panic!("cannot open {LOCK_PATH}: {e}"));
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!(
                "[kubesphere-v3] waiting for {LOCK_PATH}: another KubeSphere runs (ports :8443, \
                 :8080)"
            );
            let waited = Instant::now();
            file.lock()
                .unwrap_or_else(|e| panic!("cannot lock {LOCK_PATH}: {e}"));
            eprintln!(
                "[kubesphere-v3] got {LOCK_PATH} after {:.1}s",
                waited.elapsed().as_secs_f64()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => panic!("cannot lock {LOCK_PATH}: {e}"),
    }
    file
}

/// Installs the [`CRD_FILES`] of `dir` (server-side: they are too large for the last-applied
/// annotation) and waits until they are established.
fn install_crds(k: &TestCluster, dir: &Path) {
    let paths: Vec<String> = CRD_FILES
        .iter()
        .map(|f| dir.join(f).display().to_string())
        .collect();
    let mut apply = vec!["apply", "--server-side", "--force-conflicts"];
    let mut wait = vec!["wait", "--for=condition=established", "--timeout=60s"];
    for path in &paths {
        apply.extend(["-f", path.as_str()]);
        wait.extend(["-f", path.as_str()]);
    }
    k.kubectl_ok(&apply);
    k.kubectl_ok(&wait);
}

/// A self-signed serving certificate for 127.0.0.1 in `dir` (`tls.crt`, `tls.key`:
/// controller-runtime's names). Nothing calls the webhook server; it only must start.
fn webhook_cert(dir: &Path) {
    cluster::run_openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tls.key",
            "-out",
            "tls.crt",
            "-days",
            "7",
            "-subj",
            "/CN=ks-controller-manager",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
    );
}

/// `kubesphere.yaml` (fact sheet §10.2): the API server, no multicluster, and the App Store's
/// S3 (`openpitrix.s3`; a non-empty endpoint is what starts the app and version controllers).
fn config_file(kubeconfig: &Path, s3: &S3Server) -> Value {
    json!({
        "kubernetes": {"kubeconfig": kubeconfig},
        "multicluster": {"enable": false},
        "openpitrix": {
            "s3": {
                "endpoint": s3.endpoint,
                "region": s3.region,
                "disableSSL": true,
                "forcePathStyle": true,
                "accessKeyID": s3.access_key,
                "secretAccessKey": s3.secret_key,
                "bucket": BUCKET,
            },
            "releaseControllerOptions": {"maxConcurrent": 2, "waitTime": "10s"},
        },
    })
}
