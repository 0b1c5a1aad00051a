//! KubeSphere's own controllers and admission webhook beside a test API server: the
//! `ks-controller-manager` (v4.1.3, master 04a29b5) that `scripts/setup-test-env.sh` builds from
//! source and caches in `$PITRIX_CACHE/kubesphere/` (with its CRDs, `crds/`), started exactly as
//! `../shared/kubesphere/README.md` describes. It is the oracle for what KubeSphere does with
//! pitrix's objects, as real Helm is for charts.
//!
//! A module of the integration binary, used beside `pitrix_testkit::cluster` (`use
//! crate::kubesphere;`), then
//! - [`KubeSphere::start`]: a private API server (no kube-controller-manager: no Pods, so
//!   executor Jobs stay as KubeSphere made them until a test completes them) with KubeSphere
//!   beside it, both stopped on drop; or [`KubeSphere::start_beside`] with a cluster of your own;
//!   or [`KubeSphere::start_with_s3`], whose App Store keeps packages in an S3 bucket.
//! - [`shared()`]: one per test binary, started on first use (like `cluster::shared()`); the
//!   App Store's kinds are cluster-scoped, so tests sharing it must not use the same object
//!   names.
//!
//! What start-up does: installs KubeSphere's CRDs file by file (each its own request, so a
//! refused one hides nothing; on 1.20 exactly two are refused, [`REFUSED_CRDS`], and the App
//! Store needs neither), creates what ks-core's chart would (namespace `kubesphere-system`,
//! WorkspaceTemplate `system-workspace`, User `admin`), writes `kubesphere.yaml` into a private
//! working directory, makes a CA and a serving certificate for 127.0.0.1 with the `openssl` CLI
//! (which `scripts/setup-test-cluster.sh` installs and `pitrix_testkit::cluster` already uses: no new
//! dependency), starts `ks-controller-manager` there, registers the release webhook
//! (ValidatingWebhookConfiguration `applications.kubesphere.io`) with the CA as caBundle, and
//! waits for the `host` Cluster object and for the webhook to answer. A KubeSphere that cannot
//! start fails the test with its last log lines; it is never skipped.
//!
//! A stand-in `ks-apiserver` (a Service in `kubesphere-system` whose Endpoints point at a tiny
//! HTTP server in this process answering `/version`) lets KubeSphere's cluster controller mark
//! Cluster objects `Ready` — as on a real KubeSphere — when the machine has a non-loopback IPv4
//! address to put in the Endpoints (the API server refuses 127.0.0.0/8 there). Without one,
//! Clusters stay `Ready=False` and the `ks-apiserver` errors are filtered as noise.
//!
//! # Ports and the lock
//! KubeSphere hard-codes its ports: the webhook listens on **:8443** and metrics on **:8080**,
//! on all interfaces. So one instance runs per machine: start-up takes an exclusive `flock` on
//! [`LOCK_PATH`] (waiting, and saying so, while another test binary holds it) and keeps it until
//! the [`KubeSphere`] is dropped — for [`shared()`], until the test process exits. Nothing else
//! in the test suite may listen on those ports (`pitrix reconcile` defaults to
//! `--http-addr 0.0.0.0:8080`: tests always pass another address, see tests/reconcile_support).
//!
//! # Processes
//! `ks-controller-manager` runs under `pitrix_testkit::cluster`'s watchdog (see its module docs): it is
//! the spawned process itself (`exec`), stopped by PID on drop, and SIGTERMed by its watchdog
//! when the test process dies in any way; a janitor removes the working directory afterwards.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::cluster::{self, Server, TestCluster};
use pitrix_testkit::s3::S3Server;

/// The machine-wide lock held while a KubeSphere runs (its ports are fixed).
pub const LOCK_PATH: &str = "/tmp/pitrix-kubesphere.lock";

/// KubeSphere's ports, hard-coded in ks-controller-manager (webhook, metrics).
pub const PORTS: [u16; 2] = [8443, 8080];

/// The CRDs a 1.20 API server refuses (`default: "null"` on a string field), as (file, name);
/// nothing the App Store uses. Every other file must install.
pub const REFUSED_CRDS: [(&str, &str); 2] = [
    (
        "extensions.kubesphere.io_jsbundles.yaml",
        "jsbundles.extensions.kubesphere.io",
    ),
    (
        "kubesphere.io_extensionversions.yaml",
        "extensionversions.kubesphere.io",
    ),
];

/// The controllers the App Store needs (README step 4).
pub const CONTROLLERS: &str = "cluster,workspacetemplate,helmrepo-controller,app-category,\
appversion,apprelease-helminstaller,applicationrelease-webhook";

/// The executor image KubeSphere's config names (and pitrix's standalone Jobs default to).
pub const EXECUTOR_IMAGE: &str = "kubesphere/kubectl:v1.27.16";

/// Log lines that are this environment, not the objects under test: no ks-apiserver runs (its
/// version is fetched through the API server's service proxy) and there is no internet (repo
/// index downloads of unreachable hosts).
pub const NOISE: &[&str] = &[
    "ks-apiserver",
    "failed to get KubeSphere version",
    "no such host",
    "dial tcp: lookup",
    "server misbehaving",
    "network is unreachable",
];

pub const RELEASES: &str = "applicationreleases.application.kubesphere.io";
pub const VERSIONS: &str = "applicationversions.application.kubesphere.io";
pub const APPS: &str = "applications.application.kubesphere.io";
pub const CATEGORIES: &str = "categories.application.kubesphere.io";
pub const REPOS: &str = "repos.application.kubesphere.io";
pub const CLUSTERS: &str = "clusters.cluster.kubesphere.io";
pub const WORKSPACE_TEMPLATES: &str = "workspacetemplates.tenant.kubesphere.io";

/// One KubeSphere (and its API server) per test binary, started on first use. Its processes die
/// with the test process; the lock is held until then.
pub fn shared() -> &'static KubeSphere {
    static SHARED: OnceLock<Result<KubeSphere, String>> = OnceLock::new();
    let result = SHARED.get_or_init(|| {
        std::panic::catch_unwind(KubeSphere::start).map_err(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".to_string())
        })
    });
    match result {
        Ok(ks) => ks,
        Err(message) => panic!("the shared KubeSphere could not start:\n{message}"),
    }
}

/// Where `scripts/setup-test-env.sh` caches KubeSphere: `$PITRIX_CACHE/kubesphere`, else
/// `<repo>/.cache/kubesphere`. Panics with what to run when the binary or its CRDs are missing.
pub fn install_dir() -> PathBuf {
    let dir = std::env::var_os("PITRIX_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| cluster::repo_root().join(".cache"))
        .join("kubesphere");
    assert!(
        dir.join("ks-controller-manager").is_file() && dir.join("crds").is_dir(),
        "KubeSphere is not built: {} lacks ks-controller-manager or crds/. Run \
         `bash scripts/setup-test-env.sh` (it builds it once from ../shared/kubesphere, \
         3-5 min, or takes $KS_CONTROLLER_MANAGER).",
        dir.display()
    );
    dir
}

/// KubeSphere's ks-controller-manager running against [`Self::cluster`].
pub struct KubeSphere {
    /// The API server KubeSphere runs against (its kubeconfig is KubeSphere's too).
    pub cluster: TestCluster,
    /// KubeSphere's log (klog, `-v=4`), appended to while it runs.
    pub log: PathBuf,
    /// PEM of the CA that signed the webhook's serving certificate (the caBundle).
    pub ca_pem: Vec<u8>,
    /// Whether the stand-in ks-apiserver is reachable (Cluster objects become Ready).
    pub ks_apiserver: bool,
    dir: tempfile::TempDir,
    server: Option<Server>,
    janitor: Option<(Child, ChildStdin)>,
    stand_in: Option<StandIn>,
    /// The stand-in ks-apiservers of member clusters on their own API servers.
    member_stand_ins: std::sync::Mutex<Vec<StandIn>>,
    /// Last field: released after everything above has stopped.
    _lock: File,
}

impl std::ops::Deref for KubeSphere {
    type Target = TestCluster;
    fn deref(&self) -> &TestCluster {
        &self.cluster
    }
}

impl KubeSphere {
    /// A private API server (etcd + kube-apiserver) with KubeSphere beside it.
    pub fn start() -> KubeSphere {
        // Lock first: two binaries racing for the ports would start a cluster for nothing.
        let lock = lock_ports();
        Self::start_locked(TestCluster::start(), lock, None)
    }

    /// [`Self::start`], with KubeSphere's top-level `s3:` settings (`pkg/config/config.go`
    /// `S3Options`, the `kubesphere.io/utils/s3` Options) naming `bucket` of `s3`: its release,
    /// version and repo controllers then read, write and delete packages there first, with the
    /// storage ConfigMaps only as fallback (`pkg/simple/client/application/store.go`).
    pub fn start_with_s3(s3: &S3Server, bucket: &str) -> KubeSphere {
        let lock = lock_ports();
        Self::start_locked(TestCluster::start(), lock, Some((s3, bucket)))
    }

    /// KubeSphere beside `cluster` (which it owns from now on: it stops first on drop).
    pub fn start_beside(cluster: TestCluster) -> KubeSphere {
        let lock = lock_ports();
        Self::start_locked(cluster, lock, None)
    }

    fn start_locked(cluster: TestCluster, lock: File, s3: Option<(&S3Server, &str)>) -> KubeSphere {
        let started = Instant::now();
        let install = install_dir();
        for port in PORTS {
            if let Err(e) = TcpListener::bind(("0.0.0.0", port)) {
                panic!(
                    "KubeSphere: port {port} is taken ({e}) although {LOCK_PATH} is ours: \
                     something outside the KubeSphere tests listens there (`ss -ltnp \
                     'sport = :{port}'`)"
                );
            }
        }
        install_crds(&cluster, &install.join("crds"));
        eprintln!(
            "[kubesphere] CRDs installed in {:.1}s",
            started.elapsed().as_secs_f64()
        );
        cluster.kubectl_stdin_ok(
            &["apply", "-f", "-"],
            br#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubesphere-system"}}"#,
        );
        let dir = tempfile::Builder::new()
            .prefix("pitrix-kubesphere-")
            .tempdir()
            .expect("a temp dir for KubeSphere");
        for sub in ["certs", "pids"] {
            fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let stand_in = StandIn::start(&cluster);
        let ca_pem = webhook_certs(&dir.path().join("certs"));
        fs::write(
            dir.path().join("kubesphere.yaml"),
            config_file(&cluster.kubeconfig, s3),
        )
        .unwrap();
        let log = dir.path().join("ks-controller-manager.log");
        let janitor = cluster::spawn_janitor(dir.path());
        let mut ks = KubeSphere {
            cluster,
            log,
            ca_pem,
            ks_apiserver: stand_in.is_some(),
            dir,
            server: None,
            janitor: Some(janitor),
            stand_in,
            member_stand_ins: Default::default(),
            _lock: lock,
        };
        ks.create_workspace("system-workspace");
        // ks-core's user `admin`: the cluster controller grants the host's creator cluster-admin.
        let admin = json!({
            "apiVersion": "iam.kubesphere.io/v1beta1",
            "kind": "User",
            "metadata": {
                "name": "admin",
                "annotations": {
                    "iam.kubesphere.io/globalrole": "platform-admin",
                    "kubesphere.io/creator": "system",
                },
            },
            "spec": {"email": "admin@kubesphere.io"},
        });
        ks.kubectl_stdin_ok(&["apply", "-f", "-"], admin.to_string().as_bytes());
        // On a panic from here on, `ks` is dropped: KubeSphere is stopped, its dir removed.
        ks.spawn(&install.join("ks-controller-manager"));
        ks.register_webhook();
        ks.wait_until_ready();
        if let Some((s3, _)) = s3 {
            // InitStore logs it while the controllers are set up, before anything is ready.
            let said = format!("init s3 client with endpoint: {}", s3.endpoint);
            assert!(
                ks.log_text().contains(&said),
                "KubeSphere did not take its s3 settings (no {said:?} in its log):\n{}",
                ks.log_tail(60)
            );
        }
        eprintln!(
            "[kubesphere] ks-controller-manager ready beside {} in {:.1}s (dir {}, ks-apiserver \
             stand-in: {})",
            ks.cluster.server,
            started.elapsed().as_secs_f64(),
            ks.dir.path().display(),
            ks.ks_apiserver
        );
        ks
    }

    fn spawn(&mut self, binary: &Path) {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open KubeSphere's log");
        let mut child = Command::new("sh")
            .current_dir(self.dir.path()) // viper reads ./kubesphere.yaml
            .arg("-c")
            .arg(cluster::WATCHDOG)
            .arg("sh")
            .arg(binary)
            .arg(format!(
                "--kubeconfig={}",
                self.cluster.kubeconfig.display()
            ))
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

    fn register_webhook(&self) {
        let b64 = base64::engine::general_purpose::STANDARD;
        // config/ks-core/templates/webhook.yaml, with a URL instead of the in-cluster Service.
        let config = json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "applications.kubesphere.io"},
            "webhooks": [{
                "name": "applicationrelease.extensions.kubesphere.io",
                "admissionReviewVersions": ["v1"],
                "clientConfig": {
                    "url": "https://127.0.0.1:8443/validate-application-kubesphere-io-v2-applicationrelease",
                    "caBundle": b64.encode(&self.ca_pem),
                },
                "failurePolicy": "Fail",
                "matchPolicy": "Exact",
                "namespaceSelector": {},
                "objectSelector": {},
                "rules": [{
                    "apiGroups": ["application.kubesphere.io"],
                    "apiVersions": ["v2"],
                    "operations": ["CREATE", "UPDATE"],
                    "resources": ["applicationreleases"],
                    "scope": "*",
                }],
                "sideEffects": "None",
                "timeoutSeconds": 30,
            }],
        });
        self.kubectl_stdin_ok(&["apply", "-f", "-"], config.to_string().as_bytes());
    }

    /// Waits for the `host` Cluster object KubeSphere creates and for the release webhook to
    /// answer (a server-side dry run of a release of a version that does not exist is denied
    /// by KubeSphere, not failed by the API server).
    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + ready_timeout();
        let probe = json!({
            "apiVersion": "application.kubesphere.io/v2",
            "kind": "ApplicationRelease",
            "metadata": {"name": "pitrix-webhook-probe"},
            "spec": {"appID": "pitrix-probe", "appVersionID": "pitrix-probe-0-0-0", "appType": "helm"},
        })
        .to_string();
        let mut host = false;
        let mut webhook = false;
        let mut why = String::new();
        loop {
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|s| s.child.try_wait().expect("try_wait"))
            {
                panic!(
                    "KubeSphere: ks-controller-manager exited during start-up ({status}); last \
                     lines of {}:\n{}",
                    self.log.display(),
                    self.log_tail(60)
                );
            }
            if !host {
                let out = self.kubectl(&["get", CLUSTERS, "host", "-o", "name"]);
                host = out.status.success();
                if !host {
                    why = format!(
                        "no host Cluster: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
            if host && !webhook {
                let out = self.kubectl_stdin(
                    &["create", "--dry-run=server", "-o", "name", "-f", "-"],
                    probe.as_bytes(),
                );
                let stderr = String::from_utf8_lossy(&out.stderr);
                webhook = stderr.contains("denied the request");
                if !webhook {
                    why = format!("the release webhook does not answer: {}", stderr.trim());
                }
            }
            if host && webhook && (!self.ks_apiserver || self.cluster_ready("host")) {
                return;
            }
            if host && webhook {
                why = format!(
                    "the host Cluster is not Ready: {}",
                    self.kubectl_ok(&[
                        "get",
                        CLUSTERS,
                        "host",
                        "-o",
                        "jsonpath={.status.conditions}"
                    ])
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "KubeSphere not ready after {}s ({why}); last lines of {}:\n{}",
                    ready_timeout().as_secs(),
                    self.log.display(),
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// KubeSphere's private working directory (config file, certificates, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
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

    /// A position in the log, for [`Self::log_since`].
    pub fn log_mark(&self) -> usize {
        fs::metadata(&self.log).map_or(0, |m| m.len() as usize)
    }

    /// What KubeSphere logged after `mark`.
    pub fn log_since(&self, mark: usize) -> String {
        let text = fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(&text[mark.min(text.len())..]).into_owned()
    }

    /// The last `n` lines of the log, each cut at 600 characters (at `-v=4` KubeSphere logs
    /// whole objects).
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

    /// Every error line of the log (klog `E…`), minus the environment's [`NOISE`].
    pub fn error_lines(&self) -> Vec<String> {
        error_lines(&self.log_text())
    }

    /// The error lines ([`Self::error_lines`]) that name one of `names` (as a whole word: `web`
    /// does not match `webhook`).
    pub fn errors_about(&self, names: &[&str]) -> Vec<String> {
        errors_about(&self.log_text(), names)
    }

    /// Panics with the lines if KubeSphere logged an error naming one of `names`.
    pub fn assert_no_errors_about(&self, names: &[&str]) {
        let lines = self.errors_about(names);
        assert!(
            lines.is_empty(),
            "KubeSphere logged {} error line(s) about our objects ({}):\n{}",
            lines.len(),
            self.log.display(),
            lines.join("\n")
        );
    }

    /// A WorkspaceTemplate `name` placed on every cluster (what the console creates for a
    /// workspace; ks-core's `system-workspace` has this shape).
    pub fn create_workspace(&self, name: &str) {
        let template = json!({
            "apiVersion": "tenant.kubesphere.io/v1beta1",
            "kind": "WorkspaceTemplate",
            "metadata": {"name": name, "annotations": {"kubesphere.io/creator": "admin"}},
            "spec": {
                "placement": {"clusterSelector": {}},
                "template": {"spec": {"manager": "admin"}},
            },
        });
        self.kubectl_stdin_ok(&["apply", "-f", "-"], template.to_string().as_bytes());
    }

    /// Namespace `name` in `workspace` (label `kubesphere.io/workspace`), created or relabelled.
    pub fn create_namespace_in(&self, name: &str, workspace: &str) {
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"kubesphere.io/workspace": workspace}},
        });
        self.kubectl_stdin_ok(&["apply", "-f", "-"], namespace.to_string().as_bytes());
    }

    /// What a KubeSphere installation would already have for the example catalog
    /// (examples/catalog): its workspaces, its release namespaces in their workspaces, the
    /// member cluster `edge-eu`, and rights for bob, whom KubeSphere impersonates to apply a
    /// YAML app (not `admin`: its rules are aggregated by kube-controller-manager, which does
    /// not run here).
    pub fn prepare_for_example_catalog(&self) {
        self.create_workspace("acme-data");
        self.create_workspace("acme-platform");
        self.create_namespace_in("web", "system-workspace");
        self.create_namespace_in("data", "acme-data");
        self.add_member_cluster("edge-eu");
        self.kubectl_ok(&[
            "create",
            "rolebinding",
            "bob-admin",
            "--clusterrole=cluster-admin",
            "--user=bob",
            "-n",
            "web",
        ]);
    }

    /// A member Cluster object `name` that stands in for another cluster: a direct connection
    /// with this API server's own kubeconfig (KubeSphere sees the same kube-system UID and treats
    /// it like the host: nothing is installed into it). Waits until KubeSphere joined it
    /// (`status.uid`), and until it is Ready when the stand-in ks-apiserver runs.
    pub fn add_member_cluster(&self, name: &str) {
        let kubeconfig = fs::read(&self.cluster.kubeconfig).unwrap();
        let object = json!({
            "apiVersion": "cluster.kubesphere.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name, "labels": {"cluster-role.kubesphere.io/member": ""}},
            "spec": {
                "provider": "kubesphere",
                "connection": {
                    "type": "direct",
                    "kubeconfig": base64::engine::general_purpose::STANDARD.encode(kubeconfig),
                },
            },
        });
        self.kubectl_stdin_ok(&["apply", "-f", "-"], object.to_string().as_bytes());
        self.wait_for(ready_timeout(), &format!("Cluster {name} joined"), || {
            let v = self.get_json(CLUSTERS, name)?;
            let joined = v.pointer("/status/uid").is_some_and(|u| u != "");
            (joined && (!self.ks_apiserver || self.cluster_ready(name))).then_some(())
        });
    }

    /// Member Cluster `name` on its own API server `member`, joined as KubeSphere joins a
    /// member with ks-core already installed in it: a direct connection with `member`'s
    /// kubeconfig, condition `KSCoreReady` and the config hash KubeSphere writes after
    /// installing ks-core (so its cluster controller does not try to install it: no chart in
    /// this environment), namespace `kubesphere-system` and, as on the host, a stand-in
    /// ks-apiserver there, whose version makes the member Ready. KubeSphere runs the executor
    /// Jobs of the releases labelled with this cluster in `member`. Waits until KubeSphere
    /// joined it (`status.uid`, the member's kube-system UID) and, with the stand-in, until it
    /// is Ready.
    pub fn add_member(&self, name: &str, member: &TestCluster) {
        member.kubectl_stdin_ok(
            &["apply", "-f", "-"],
            br#"{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kubesphere-system"}}"#,
        );
        let ready = match StandIn::start(member) {
            Some(stand_in) => {
                self.member_stand_ins
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(stand_in);
                true
            }
            None => false,
        };
        let kubeconfig = fs::read(&member.kubeconfig).unwrap();
        let object = json!({
            "apiVersion": "cluster.kubesphere.io/v1alpha1",
            "kind": "Cluster",
            "metadata": {"name": name,
                "labels": {"cluster-role.kubesphere.io/member": ""},
                // hashutil.FNVString(spec.config), spec.config empty: FNV-64a's offset basis.
                "annotations": {"kubesphere.io/config-hash": "cbf29ce484222325"}},
            "spec": {
                "provider": "kubesphere",
                "connection": {
                    "type": "direct",
                    "kubeconfig": base64::engine::general_purpose::STANDARD.encode(kubeconfig),
                },
            },
            // No status subresource: KubeSphere keeps what it is created with.
            "status": {"conditions": [{"type": "KSCoreReady", "status": "True",
                "reason": "KSCoreReady", "message": "KS Core is available now",
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
        });
        self.kubectl_stdin_ok(&["apply", "-f", "-"], object.to_string().as_bytes());
        self.wait_for(ready_timeout(), &format!("Cluster {name} joined"), || {
            let v = self.get_json(CLUSTERS, name)?;
            let joined = v.pointer("/status/uid").is_some_and(|u| u != "");
            (joined && (!ready || self.cluster_ready(name))).then_some(())
        });
    }

    /// Whether Cluster `name` has condition Ready=True.
    pub fn cluster_ready(&self, name: &str) -> bool {
        self.get_json(CLUSTERS, name).is_some_and(|v| {
            v.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
    }

    /// `kubectl get <resource> <name> -o json` (cluster-scoped), `None` when it does not exist.
    pub fn get_json(&self, resource: &str, name: &str) -> Option<Value> {
        let out = self.kubectl(&["get", resource, name, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).expect("kubectl printed JSON"))
    }

    /// `kubectl get <resource> [-n ns] [-l selector] -o json`'s items.
    pub fn list(&self, resource: &str, namespace: Option<&str>, selector: &str) -> Vec<Value> {
        let mut args = vec!["get", resource, "-o", "json"];
        match namespace {
            Some(ns) => args.extend(["-n", ns]),
            None => args.push("--all-namespaces"),
        }
        if !selector.is_empty() {
            args.extend(["-l", selector]);
        }
        let v: Value = serde_json::from_str(&self.kubectl_ok(&args)).expect("JSON list");
        v["items"].as_array().cloned().unwrap_or_default()
    }

    /// The executor Jobs KubeSphere made for release `release` (label
    /// `application.kubesphere.io/app-release-name`), in every namespace, oldest first.
    pub fn executor_jobs(&self, release: &str) -> Vec<Value> {
        let mut jobs = self.list(
            "jobs.batch",
            None,
            &format!("application.kubesphere.io/app-release-name={release}"),
        );
        jobs.sort_by(|a, b| {
            let key = |j: &Value| {
                (
                    j["metadata"]["creationTimestamp"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    j["metadata"]["resourceVersion"]
                        .as_str()
                        .and_then(|r| r.parse::<u64>().ok())
                        .unwrap_or(0),
                )
            };
            key(a).cmp(&key(b))
        });
        jobs
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
                    "timed out after {timeout:?} waiting for {what}; last lines of KubeSphere's \
                     log ({}):\n{}",
                    self.log.display(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for KubeSphere {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            cluster::stop_server(server);
        }
        let _ = fs::remove_dir_all(self.dir.path().join("pids"));
        if let Some((mut janitor, stdin)) = self.janitor.take() {
            drop(stdin);
            let _ = janitor.wait();
        }
        if let Some(stand_in) = self.stand_in.take() {
            stand_in.stop();
        }
        let members = std::mem::take(
            self.member_stand_ins
                .get_mut()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for stand_in in members {
            stand_in.stop();
        }
        // Then the fields: the API server stops, the temp dir goes, the lock is released.
    }
}

fn ready_timeout() -> Duration {
    let secs = std::env::var("PITRIX_TEST_KUBESPHERE_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

/// Takes [`LOCK_PATH`] exclusively, waiting (and saying so) while another process holds it.
fn lock_ports() -> File {
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
                "[kubesphere] waiting for {LOCK_PATH}: another test runs KubeSphere (ports \
                 :8443, :8080)"
            );
            let waited = Instant::now();
            file.lock()
                .unwrap_or_else(|e| panic!("cannot lock {LOCK_PATH}: {e}"));
            eprintln!(
                "[kubesphere] got {LOCK_PATH} after {:.1}s",
                waited.elapsed().as_secs_f64()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => panic!("cannot lock {LOCK_PATH}: {e}"),
    }
    file
}

/// Installs every CRD file of `dir` with one `kubectl apply --server-side` (each file is its
/// own request, so a refused file does not hide the others; one kubectl instead of forty
/// saves ~10 s), then waits until they are established. Only [`REFUSED_CRDS`] may be refused,
/// and only they are allowed to be missing afterwards. Server-side apply: the CRDs are too
/// large for kubectl's last-applied annotation, and replace pitrix's own (`pitrix crds`) if a
/// test installed those first.
fn install_crds(k: &TestCluster, dir: &Path) {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut args = vec!["apply", "--server-side", "--force-conflicts"];
    for file in &files {
        args.extend(["-f", file.to_str().unwrap()]);
    }
    let out = k.kubectl(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let unexpected: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !REFUSED_CRDS
                .iter()
                .any(|(file, name)| l.contains(&format!("\"{name}\"")) || l.contains(file))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "KubeSphere: CRDs refused other than {REFUSED_CRDS:?}:\n{stderr}"
    );
    let mut args = vec!["wait", "--for=condition=established", "--timeout=60s"];
    for file in &files {
        let name = file.file_name().unwrap().to_str().unwrap();
        if !REFUSED_CRDS.iter().any(|(file, _)| *file == name) {
            args.extend(["-f", file.to_str().unwrap()]);
        }
    }
    k.kubectl_ok(&args);
}

/// A CA and a serving certificate for 127.0.0.1 (`tls.crt`, `tls.key`: controller-runtime's
/// names) in `dir`; returns the CA's PEM.
fn webhook_certs(dir: &Path) -> Vec<u8> {
    cluster::run_openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "7",
            "-subj",
            "/CN=pitrix-test-kubesphere-webhook-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    );
    cluster::run_openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
            "-subj",
            "/CN=ks-controller-manager",
        ],
    );
    fs::write(
        dir.join("tls.ext"),
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    cluster::run_openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tls.crt",
            "-days",
            "7",
            "-extfile",
            "tls.ext",
        ],
    );
    fs::read(dir.join("ca.crt")).unwrap()
}

/// `kubesphere.yaml` (README step 3): without `clusterRole: host` no App Store controller runs.
/// With `s3`, its `s3:` block: plain HTTP, path-style (s3s-fs serves no other), the server's
/// region and credentials.
fn config_file(kubeconfig: &Path, s3: Option<(&S3Server, &str)>) -> String {
    let s3_block = s3.map(|(s3, bucket)| {
        let block = json!({"s3": {
            "endpoint": s3.endpoint,
            "region": s3.region,
            "disableSSL": true,
            "forcePathStyle": true,
            "accessKeyID": s3.access_key,
            "secretAccessKey": s3.secret_key,
            "bucket": bucket,
        }});
        serde_yaml::to_string(&block).expect("the s3 block as YAML")
    });
    let base = format!(
        "kubernetes:\n  kubeconfig: {}\n\
         multicluster:\n  clusterRole: host\n  hostClusterName: host\n\
         helmExecutor:\n  image: {EXECUTOR_IMAGE}\n  timeout: 10m\n  historyMax: 2\n  jobTTLAfterFinished: 0s\n\
         kubeconfig:\n  authMode: client-certificate\n\
         composedApp:\n  appSelector: \"\"\n\
         kubesphere:\n  tls: false\n",
        kubeconfig.display()
    );
    base + s3_block.as_deref().unwrap_or_default()
}

/// klog error lines (`E1204 12:34:56.789012 …`) of `log`, minus [`NOISE`].
pub fn error_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 5 && b[0] == b'E' && b[1..5].iter().all(u8::is_ascii_digit)
        })
        .filter(|l| !NOISE.iter().any(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// The error lines of `log` that name one of `names` as a whole word.
pub fn errors_about(log: &str, names: &[&str]) -> Vec<String> {
    error_lines(log)
        .into_iter()
        .filter(|l| names.iter().any(|n| mentions(l, n)))
        .collect()
}

/// Whether `name` occurs in `line` not glued to other name characters (`[a-z0-9.-]`).
fn mentions(line: &str, name: &str) -> bool {
    let glued =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    line.match_indices(name).any(|(i, _)| {
        !glued(line[..i].chars().next_back()) && !glued(line[i + name.len()..].chars().next())
    })
}

/// The stand-in ks-apiserver: an HTTP server on all interfaces answering every request with a
/// version, behind Service `kubesphere-system/ks-apiserver` (port 80) and its Endpoints.
struct StandIn {
    stop: Arc<AtomicBool>,
    port: u16,
}

impl StandIn {
    fn start(k: &TestCluster) -> Option<StandIn> {
        let ip = non_loopback_ipv4()?;
        let listener = TcpListener::bind("0.0.0.0:0").ok()?;
        let port = listener.local_addr().ok()?.port();
        let stop = Arc::new(AtomicBool::new(false));
        {
            let stop = stop.clone();
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = answer_version(conn);
                    }
                }
            });
        }
        // The API server proxies to an Endpoints address only when it names a Pod whose status
        // carries that IP: a Pod nobody runs (no nodes), its status written by hand.
        let ns = "kubesphere-system";
        let objects = json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "ks-apiserver-stand-in", "namespace": ns},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": "ks-apiserver-stand-in", "namespace": ns},
                    "spec": {
                        "serviceAccountName": "ks-apiserver-stand-in",
                        "automountServiceAccountToken": false,
                        "containers": [{"name": "ks-apiserver", "image": "pitrix.invalid/ks-apiserver-stand-in"}],
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "ks-apiserver", "namespace": ns},
                    "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": port}]},
                },
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": "ks-apiserver", "namespace": ns},
                    "subsets": [{
                        "addresses": [{
                            "ip": ip,
                            "targetRef": {"kind": "Pod", "namespace": ns, "name": "ks-apiserver-stand-in"},
                        }],
                        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
                    }],
                },
            ],
        });
        let stand_in = StandIn { stop, port };
        let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}});
        let created = k.kubectl_stdin(&["apply", "-f", "-"], objects.to_string().as_bytes());
        let out = if created.status.success() {
            k.kubectl(&[
                "patch",
                "pod",
                "ks-apiserver-stand-in",
                "-n",
                ns,
                "--subresource=status",
                "--type=merge",
                "-p",
                &status.to_string(),
            ])
        } else {
            created
        };
        if !out.status.success() {
            eprintln!(
                "[kubesphere] no stand-in ks-apiserver ({}): Clusters will not be Ready",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            stand_in.stop();
            return None;
        }
        // Reachable through the API server's service proxy, as KubeSphere will ask?
        let via_proxy = k.kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/kubesphere-system/services/http:ks-apiserver:80/proxy/version",
        ]);
        if !via_proxy.status.success() {
            eprintln!(
                "[kubesphere] the stand-in ks-apiserver at {ip}:{port} is not reachable through \
                 the API server ({}): Clusters will not be Ready",
                String::from_utf8_lossy(&via_proxy.stderr).trim()
            );
            stand_in.stop();
            return None;
        }
        Some(stand_in)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// KubeSphere's `/version` answer (`version.Info`): KubeSphere reads `gitVersion`.
fn answer_version(mut conn: TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 4096];
    let mut request = Vec::new();
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let body = r#"{"gitVersion":"v4.1.3","gitCommit":"04a29b5","gitTreeState":"clean","major":"4","minor":"1"}"#;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The first IPv4 address of this machine that is not loopback (`hostname -I`).
fn non_loopback_ipv4() -> Option<String> {
    let out = Command::new("hostname").arg("-I").output().ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback() && !a.is_link_local() && !a.is_unspecified())
        .map(|a| a.to_string())
}
