//! A real Kubernetes control plane for integration tests: etcd + kube-apiserver (+ optionally
//! kube-controller-manager), started by the test itself. No mocks.
//!
//! Use it as `pitrix_testkit::cluster`, then either
//! - [`shared()`]: one cluster (with controllers) per test binary, started on first use and
//!   reused by every test in it. Tests sharing it must use their own namespaces and object
//!   names ([`unique_name`]). It is the cheap choice: a start costs several seconds.
//! - [`TestCluster::start`] / [`TestCluster::start_with_controllers`]: a private cluster, stopped
//!   on drop; needed by tests that stop and restart components ([`TestCluster::stop_apiserver`],
//!   [`TestCluster::stop_etcd`], ...).
//!
//! Where things come from, in this order:
//! 1. `PITRIX_TEST_KUBECONFIG`: an existing, disposable cluster, used as is (nothing started or
//!    stopped, and restarts of components are refused).
//! 2. `KUBEBUILDER_ASSETS` (envtest convention): a directory with `kube-apiserver` and `etcd`
//!    (and `kube-controller-manager` for the controllers).
//! 3. `$PITRIX_CACHE/k8s/bin`, else `<repo>/.cache/k8s/bin`: what
//!    `scripts/setup-test-cluster.sh` builds (Kubernetes 1.20.2 from Debian's source).
//!
//! A cluster that cannot start makes the test panic with the component's last log lines: it is
//! never skipped silently.
//!
//! # How the processes are cleaned up
//! Each server is spawned as `sh -c '<watchdog> & exec <server>'` with a pipe on its stdin whose
//! only write end is held by this test process (Rust opens pipes close-on-exec, so no other child
//! inherits it). `exec` makes the server take over the shell's PID, so the [`Child`] we hold *is*
//! the server: stopping it is `kill <that pid>` + `wait`, by PID, never by name. The watchdog is a
//! tiny background subshell blocked in `read` on that pipe. When the test process goes away —
//! normal exit (statics are never dropped, so [`shared()`]'s Drop never runs), panic, abort,
//! SIGKILL — the kernel closes the write end, `read` returns EOF, and the watchdog sends SIGTERM
//! to the server (SIGKILL 10 s later if it is still up). A separate janitor process, watching
//! its own stdin pipe the same way, then waits for the recorded PIDs to go and removes the
//! cluster's temporary directory. This needs no libc and no polling of a parent PID (which can be
//! reused), and unlike `prctl(PR_SET_PDEATHSIG)` it does not fire when the *thread* that spawned
//! the server ends (each libtest test runs on its own thread, and `shared()` outlives it).
//! [`Drop`] does the same thing synchronously for clusters that are dropped.
#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Kubernetes version that `scripts/setup-test-cluster.sh` builds.
pub const BUILT_VERSION: &str = "v1.20.2";

/// Default bound on waiting for a component to become ready, in seconds
/// (override: `PITRIX_TEST_CLUSTER_TIMEOUT_SECS`).
const DEFAULT_READY_TIMEOUT_SECS: u64 = 60;

/// Service CIDR of the test apiserver (no Pods ever run, nothing routes there).
const SERVICE_CIDR: &str = "10.0.0.0/24";

/// Controllers that make sense without nodes, a cloud, volumes or a CSR signer.
const CONTROLLERS: &str = "*,-attachdetach,-cloud-node-lifecycle,-csrapproving,-csrcleaner,\
-csrsigning,-nodeipam,-nodelifecycle,-persistentvolume-binder,-persistentvolume-expander,\
-pv-protection,-pvc-protection,-route,-service,-ttl";

/// One cluster per test binary, with kube-controller-manager, started on first use.
///
/// Its processes die with the test process (see the module docs). If it cannot start, every
/// test that asks for it panics with the same start-up error.
pub fn shared() -> &'static TestCluster {
    static SHARED: OnceLock<Result<TestCluster, String>> = OnceLock::new();
    let result = SHARED.get_or_init(|| {
        std::panic::catch_unwind(TestCluster::start_with_controllers).map_err(|payload| {
            payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(non-string panic)".to_string())
        })
    });
    match result {
        Ok(cluster) => cluster,
        Err(message) => panic!("the shared test cluster could not start:\n{message}"),
    }
}

/// A name unique within this machine's test runs: `<prefix>-<pid>-<counter>`, DNS-1123 safe as
/// long as `prefix` is.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// One kubeconfig with a context per test cluster, `host` (the current one) and `edge`: a
/// catalog's `[clusters.edge] context = "edge"` reaches the second.
pub fn two_cluster_kubeconfig(host: &TestCluster, edge: &TestCluster, path: &Path) {
    kubeconfig_with_contexts(&[("host", host), ("edge", edge)], path);
}

/// One kubeconfig with a context of each name for its test cluster (cluster and user of the
/// same name), the first the current one.
pub fn kubeconfig_with_contexts(contexts: &[(&str, &TestCluster)], path: &Path) {
    let mut merged = serde_json::json!({
        "apiVersion": "v1", "kind": "Config",
        "current-context": contexts.first().map(|(name, _)| *name).unwrap_or_default(),
        "clusters": [], "users": [], "contexts": [],
    });
    for &(name, k) in contexts {
        let text = fs::read_to_string(&k.kubeconfig).unwrap();
        let one: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        let mut cluster = one["clusters"][0].clone();
        cluster["name"] = name.into();
        let mut user = one["users"][0].clone();
        user["name"] = name.into();
        merged["clusters"].as_array_mut().unwrap().push(cluster);
        merged["users"].as_array_mut().unwrap().push(user);
        merged["contexts"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": name, "context": {"cluster": name, "user": name}}));
    }
    fs::write(path, serde_yaml::to_string(&merged).unwrap()).unwrap();
}

/// The kubectl the tests run: `PITRIX_KUBECTL`, else `/usr/bin/kubectl`, else `kubectl` on PATH.
pub fn kubectl_program() -> PathBuf {
    if let Some(path) = std::env::var_os("PITRIX_KUBECTL") {
        return PathBuf::from(path);
    }
    let usr = PathBuf::from("/usr/bin/kubectl");
    if usr.exists() {
        usr
    } else {
        PathBuf::from("kubectl")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Component {
    Etcd,
    ApiServer,
    ControllerManager,
}

impl Component {
    fn binary(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
        }
    }
}

/// A running server: its process (the server itself, thanks to `exec`) and the write end of its
/// watchdog's pipe.
pub struct Server {
    pub child: Child,
    pub watchdog: Option<ChildStdin>,
}

/// What a self-started cluster needs to (re)start its components.
struct Local {
    dir: tempfile::TempDir,
    bin_dir: PathBuf,
    etcd_client_port: u16,
    etcd_peer_port: u16,
    api_port: u16,
    etcd: Option<Server>,
    apiserver: Option<Server>,
    controller_manager: Option<Server>,
    janitor: Option<(Child, ChildStdin)>,
}

/// A Kubernetes API server the tests can talk to.
pub struct TestCluster {
    /// A kubeconfig file for this cluster (admin, `system:masters`).
    pub kubeconfig: PathBuf,
    /// `https://127.0.0.1:<port>`.
    pub server: String,
    /// Bearer token of the admin user (empty for a `PITRIX_TEST_KUBECONFIG` cluster that
    /// authenticates otherwise).
    pub token: String,
    /// PEM of the CA that signed the server's certificate.
    pub ca_pem: Vec<u8>,
    /// Whether kube-controller-manager runs (always assumed for an external cluster).
    pub controllers: bool,
    local: Option<Local>,
}

struct StartError {
    message: String,
    port_conflict: bool,
}

impl TestCluster {
    /// etcd + kube-apiserver. Panics (with the logs) if they cannot start.
    pub fn start() -> TestCluster {
        Self::start_impl(false)
    }

    /// etcd + kube-apiserver + kube-controller-manager (garbage collection, namespace deletion,
    /// default service accounts, Job -> Pod). Waits until the `default` ServiceAccount of the
    /// `default` namespace exists, i.e. the controllers are working.
    pub fn start_with_controllers() -> TestCluster {
        Self::start_impl(true)
    }

    fn start_impl(controllers: bool) -> TestCluster {
        if let Some(kubeconfig) = std::env::var_os("PITRIX_TEST_KUBECONFIG") {
            return Self::external(PathBuf::from(kubeconfig));
        }
        let bin_dir = find_bin_dir(controllers);
        let started = Instant::now();
        let mut last = String::new();
        for attempt in 1..=3 {
            match Self::try_start(&bin_dir, controllers) {
                Ok(cluster) => {
                    eprintln!(
                        "[test-cluster] {} ready in {:.1}s (attempt {attempt}, dir {})",
                        cluster.server,
                        started.elapsed().as_secs_f64(),
                        cluster
                            .dir()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default()
                    );
                    return cluster;
                }
                Err(e) if e.port_conflict => {
                    eprintln!("[test-cluster] port conflict on attempt {attempt}, retrying");
                    last = e.message;
                }
                Err(e) => panic!("{}", e.message),
            }
        }
        panic!("test cluster: ports kept conflicting, last error:\n{last}");
    }

    fn external(kubeconfig: PathBuf) -> TestCluster {
        assert!(
            kubeconfig.is_file(),
            "PITRIX_TEST_KUBECONFIG={} is not a file",
            kubeconfig.display()
        );
        let out = Command::new(kubectl_program())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args([
                "config",
                "view",
                "--raw",
                "--minify",
                "--flatten",
                "-o",
                "json",
            ])
            .output()
            .expect("run kubectl config view");
        assert!(
            out.status.success(),
            "kubectl config view --kubeconfig {} failed: {}",
            kubeconfig.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let config: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("kubectl config view printed JSON");
        let cluster = &config["clusters"][0]["cluster"];
        let server = cluster["server"]
            .as_str()
            .unwrap_or_else(|| panic!("no server in {}", kubeconfig.display()))
            .to_string();
        let ca_pem = cluster["certificate-authority-data"]
            .as_str()
            .map(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .expect("certificate-authority-data is base64")
            })
            .unwrap_or_default();
        let token = config["users"][0]["user"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let cluster = TestCluster {
            kubeconfig,
            server,
            token,
            ca_pem,
            controllers: true,
            local: None,
        };
        let out = cluster.kubectl(&["get", "--raw", "/readyz"]);
        assert!(
            out.status.success(),
            "the PITRIX_TEST_KUBECONFIG cluster {} is not ready: {}",
            cluster.server,
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    fn try_start(bin_dir: &Path, controllers: bool) -> Result<TestCluster, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("pitrix-kube-")
            .tempdir()
            .expect("create a temp dir for the test cluster");
        let root = dir.path().to_path_buf();
        for sub in ["pki", "etcd-data", "logs", "pids"] {
            fs::create_dir_all(root.join(sub)).expect("create test cluster dirs");
        }
        let token = random_hex(16);
        generate_pki(&root.join("pki"), &token);
        let ca_pem = fs::read(root.join("pki/ca.crt")).expect("read ca.crt");

        let ports = free_ports(3);
        let api_port = ports[2];
        let server = format!("https://127.0.0.1:{api_port}");
        let kubeconfig = root.join("kubeconfig");
        write_kubeconfig(&kubeconfig, &server, &ca_pem, &token);

        let janitor = spawn_janitor(&root);
        let mut cluster = TestCluster {
            kubeconfig,
            server,
            token,
            ca_pem,
            controllers,
            local: Some(Local {
                dir,
                bin_dir: bin_dir.to_path_buf(),
                etcd_client_port: ports[0],
                etcd_peer_port: ports[1],
                api_port,
                etcd: None,
                apiserver: None,
                controller_manager: None,
                janitor: Some(janitor),
            }),
        };
        // On error, `cluster` is dropped here: its processes are stopped, its dir removed.
        cluster.try_start_component(Component::Etcd)?;
        cluster.try_start_component(Component::ApiServer)?;
        if controllers {
            cluster.try_start_component(Component::ControllerManager)?;
        }
        Ok(cluster)
    }

    /// The cluster's temporary directory (certificates, etcd data, logs); `None` for an
    /// external cluster.
    pub fn dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.dir.path())
    }

    /// Path of a component's log file (`etcd`, `kube-apiserver`, `kube-controller-manager`).
    pub fn log_path(&self, component: &str) -> Option<PathBuf> {
        self.dir()
            .map(|d| d.join("logs").join(format!("{component}.log")))
    }

    /// Runs `kubectl --kubeconfig <this cluster> <args>` and returns its output.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl_program().display()))
    }

    /// Like [`Self::kubectl`], with `stdin` fed to kubectl (e.g. for `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = self
            .kubectl_cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl_program().display()));
        let mut input = child.stdin.take().expect("kubectl stdin");
        let data = stdin.to_vec();
        // Write from another thread: kubectl may fill its stdout before reading all of stdin.
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait for kubectl");
        writer.join().expect("stdin writer thread");
        out
    }

    /// Runs kubectl, panics unless it succeeds, and returns its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// [`Self::kubectl_stdin`], panicking unless it succeeds; returns stdout.
    pub fn kubectl_stdin_ok(&self, args: &[&str], stdin: &[u8]) -> String {
        let out = self.kubectl_stdin(args, stdin);
        assert_success(&out, args);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Installs the CRDs `pitrix crds` (the binary `pitrix`) prints and waits until they serve.
    pub fn install_crds(&self, pitrix: &Path) {
        let crds = Command::new(pitrix)
            .arg("crds")
            .output()
            .expect("pitrix crds runs");
        assert!(crds.status.success(), "pitrix crds failed");
        self.kubectl_stdin_ok(&["apply", "--server-side", "-f", "-"], &crds.stdout);
        self.kubectl_ok(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=60s",
            "crd",
            "--all",
        ]);
    }

    /// Creates a namespace with a unique name derived from `prefix` and returns the name.
    /// Reports a Job succeeded, as the Job controller would (the test cluster runs no pods).
    pub fn complete_job(&self, namespace: &str, job: &str) {
        self.kubectl_ok(&[
            "patch",
            "job",
            job,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"succeeded":1}}"#,
        ]);
    }

    pub fn create_namespace(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }

    fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_program());
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        // Keep kubectl's discovery cache per cluster, out of the user's ~/.kube.
        if let Some(dir) = self.dir() {
            cmd.arg("--cache-dir").arg(dir.join("kubectl-cache"));
        }
        cmd.args(args);
        cmd
    }

    /// Stops kube-apiserver (SIGTERM, then SIGKILL after 10 s). etcd keeps running.
    pub fn stop_apiserver(&mut self) {
        self.stop_component(Component::ApiServer);
    }

    /// Starts kube-apiserver again on the same port and etcd, and waits for `/readyz`.
    pub fn start_apiserver(&mut self) {
        self.start_component(Component::ApiServer);
    }

    /// Stops etcd (SIGTERM, then SIGKILL after 10 s). Its data directory is kept.
    pub fn stop_etcd(&mut self) {
        self.stop_component(Component::Etcd);
    }

    /// Starts etcd again on the same ports and data, and waits until it answers.
    pub fn start_etcd(&mut self) {
        self.start_component(Component::Etcd);
    }

    /// Stops kube-controller-manager.
    pub fn stop_controller_manager(&mut self) {
        self.stop_component(Component::ControllerManager);
    }

    /// Starts kube-controller-manager (again).
    pub fn start_controller_manager(&mut self) {
        self.start_component(Component::ControllerManager);
    }

    /// Whether the apiserver answers `/readyz` with `ok` right now.
    pub fn is_ready(&self) -> bool {
        self.readyz().is_ok()
    }

    fn local_mut(&mut self, what: &str) -> &mut Local {
        self.local.as_mut().unwrap_or_else(|| {
            panic!("{what}: not possible on a PITRIX_TEST_KUBECONFIG cluster (not started here)")
        })
    }

    fn slot(local: &mut Local, component: Component) -> &mut Option<Server> {
        match component {
            Component::Etcd => &mut local.etcd,
            Component::ApiServer => &mut local.apiserver,
            Component::ControllerManager => &mut local.controller_manager,
        }
    }

    fn stop_component(&mut self, component: Component) {
        let local = self.local_mut(&format!("stop {}", component.binary()));
        let pid_file = local.dir.path().join("pids").join(component.binary());
        if let Some(server) = Self::slot(local, component).take() {
            stop_server(server);
        }
        let _ = fs::remove_file(pid_file);
    }

    fn start_component(&mut self, component: Component) {
        if let Err(e) = self.try_start_component(component) {
            panic!("{}", e.message);
        }
    }

    fn try_start_component(&mut self, component: Component) -> Result<(), StartError> {
        let name = component.binary();
        let local = self.local_mut(&format!("start {name}"));
        assert!(
            Self::slot(local, component).is_none(),
            "{name} is already running"
        );
        let root = local.dir.path().to_path_buf();
        let pki = root.join("pki");
        let p = |f: &str| pki.join(f).display().to_string();
        let etcd_url = format!("http://127.0.0.1:{}", local.etcd_client_port);
        let peer_url = format!("http://127.0.0.1:{}", local.etcd_peer_port);
        let args: Vec<String> = match component {
            Component::Etcd => vec![
                "--name=default".into(),
                format!("--data-dir={}", root.join("etcd-data").display()),
                format!("--listen-client-urls={etcd_url}"),
                format!("--advertise-client-urls={etcd_url}"),
                format!("--listen-peer-urls={peer_url}"),
                format!("--initial-advertise-peer-urls={peer_url}"),
                format!("--initial-cluster=default={peer_url}"),
                "--unsafe-no-fsync".into(),
                "--logger=zap".into(),
            ],
            Component::ApiServer => vec![
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={}", local.api_port),
                "--insecure-port=0".into(),
                format!("--etcd-servers={etcd_url}"),
                format!("--tls-cert-file={}", p("server.crt")),
                format!("--tls-private-key-file={}", p("server.key")),
                format!("--client-ca-file={}", p("ca.crt")),
                format!("--token-auth-file={}", p("tokens.csv")),
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
                format!("--service-account-key-file={}", p("sa.pub")),
                format!("--service-account-signing-key-file={}", p("sa.key")),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                "--authorization-mode=RBAC".into(),
                "--endpoint-reconciler-type=none".into(),
                format!("--cert-dir={}", root.join("apiserver-certs").display()),
                // PITRIX_TEST_APISERVER_PROFILING=1: /debug/pprof for profiling the server.
                format!(
                    "--profiling={}",
                    std::env::var_os("PITRIX_TEST_APISERVER_PROFILING").is_some()
                ),
            ],
            Component::ControllerManager => vec![
                format!("--kubeconfig={}", root.join("kubeconfig").display()),
                "--leader-elect=false".into(),
                "--port=0".into(),
                "--secure-port=0".into(),
                format!("--service-account-private-key-file={}", p("sa.key")),
                format!("--root-ca-file={}", p("ca.crt")),
                format!("--service-cluster-ip-range={SERVICE_CIDR}"),
                format!("--controllers={CONTROLLERS}"),
                "--use-service-account-credentials=false".into(),
                // PITRIX_TEST_APISERVER_PROFILING=1: /debug/pprof for profiling the server.
                format!(
                    "--profiling={}",
                    std::env::var_os("PITRIX_TEST_APISERVER_PROFILING").is_some()
                ),
            ],
        };
        let binary = local.bin_dir.join(name);
        let log = root.join("logs").join(format!("{name}.log"));
        let server = spawn_server(&binary, &args, &log);
        fs::write(
            root.join("pids").join(name),
            format!("{}\n", server.child.id()),
        )
        .expect("record pid");
        *Self::slot(local, component) = Some(server);

        let deadline = Instant::now() + ready_timeout();
        loop {
            let ready = match component {
                Component::Etcd => self.etcd_healthy(),
                Component::ApiServer => self.readyz(),
                Component::ControllerManager => self.controllers_working(),
            };
            let local = self.local.as_mut().expect("local cluster");
            let server = Self::slot(local, component).as_mut().expect("server slot");
            let exited = server.child.try_wait().expect("try_wait");
            match (ready, exited) {
                (Ok(()), None) => return Ok(()),
                (_, Some(status)) => {
                    let tail = log_tail(&log, 40);
                    return Err(StartError {
                        port_conflict: tail.contains("address already in use"),
                        message: format!(
                            "test cluster: {name} exited during start-up ({status}); \
                             last lines of {}:\n{tail}",
                            log.display()
                        ),
                    });
                }
                (Err(why), None) if Instant::now() >= deadline => {
                    let mut message = format!(
                        "test cluster: {name} not ready after {}s ({why}); last lines of {}:\n{}",
                        ready_timeout().as_secs(),
                        log.display(),
                        log_tail(&log, 40)
                    );
                    if component != Component::ApiServer {
                        let api_log = root.join("logs/kube-apiserver.log");
                        if api_log.exists() {
                            message.push_str(&format!(
                                "\nlast lines of {}:\n{}",
                                api_log.display(),
                                log_tail(&api_log, 20)
                            ));
                        }
                    }
                    return Err(StartError {
                        message,
                        port_conflict: false,
                    });
                }
                (Err(_), None) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn etcd_healthy(&self) -> Result<(), String> {
        let port = self.local.as_ref().expect("local").etcd_client_port;
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{port}/health"))
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let body = String::from_utf8_lossy(&out.stdout);
        if body.contains("\"health\":\"true\"") {
            Ok(())
        } else {
            Err(format!(
                "etcd /health: {}{}",
                body.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn readyz(&self) -> Result<(), String> {
        let ca = self
            .dir()
            .map(|d| d.join("pki/ca.crt"))
            .expect("local cluster");
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "3", "--cacert"])
            .arg(&ca)
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", self.token))
            .arg(format!("{}/readyz", self.server))
            .output()
            .map_err(|e| format!("cannot run curl: {e}"))?;
        let body = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && body.trim() == "ok" {
            Ok(())
        } else {
            Err(format!(
                "/readyz: {}{}",
                body.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn controllers_working(&self) -> Result<(), String> {
        let out = self.kubectl(&[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "default",
            "-o",
            "name",
        ]);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "no default ServiceAccount yet: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let Some(local) = self.local.as_mut() else {
            return;
        };
        for server in [
            local.controller_manager.take(),
            local.apiserver.take(),
            local.etcd.take(),
        ]
        .into_iter()
        .flatten()
        {
            stop_server(server);
        }
        let _ = fs::remove_dir_all(local.dir.path().join("pids"));
        if let Some((mut janitor, stdin)) = local.janitor.take() {
            drop(stdin);
            let _ = janitor.wait();
        }
        // `local.dir` (TempDir) removes the rest when `self.local` is dropped.
    }
}

fn ready_timeout() -> Duration {
    let secs = std::env::var("PITRIX_TEST_CLUSTER_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_READY_TIMEOUT_SECS);
    Duration::from_secs(secs)
}

pub fn repo_root() -> PathBuf {
    // This crate lives at <repo>/crates/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Directory with the server binaries; panics with what to do when there is none.
fn find_bin_dir(controllers: bool) -> PathBuf {
    let mut needed = vec!["etcd", "kube-apiserver"];
    if controllers {
        needed.push("kube-controller-manager");
    }
    let (dir, origin) = if let Some(assets) = std::env::var_os("KUBEBUILDER_ASSETS") {
        (PathBuf::from(assets), "KUBEBUILDER_ASSETS")
    } else if let Some(cache) = std::env::var_os("PITRIX_CACHE") {
        (
            PathBuf::from(cache).join("k8s/bin"),
            "$PITRIX_CACHE/k8s/bin",
        )
    } else {
        (repo_root().join(".cache/k8s/bin"), "<repo>/.cache/k8s/bin")
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "test cluster: {} ({origin}) lacks {}. Run `bash scripts/setup-test-cluster.sh` \
         (or scripts/setup-test-env.sh / scripts/test.sh) to build them, or set \
         KUBEBUILDER_ASSETS or PITRIX_TEST_KUBECONFIG.",
        dir.display(),
        missing.join(", ")
    );
    dir
}

/// `n` distinct free TCP ports on 127.0.0.1 (free when asked; start-up retries on a clash).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn run_openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl (apt openssl): {e}"));
    assert!(
        out.status.success(),
        "openssl {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// CA, serving certificate for 127.0.0.1/localhost, service-account key pair and a static token
/// file with one admin in `system:masters`.
fn generate_pki(dir: &Path, token: &str) {
    run_openssl(
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
            "/CN=pitrix-test-ca",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
        ],
    );
    run_openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=kube-apiserver",
        ],
    );
    fs::write(
        dir.join("server.ext"),
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth\n\
         subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,\
         DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n",
    )
    .expect("write server.ext");
    run_openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "7",
            "-extfile",
            "server.ext",
        ],
    );
    run_openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "sa.key",
        ],
    );
    run_openssl(dir, &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
    fs::write(
        dir.join("tokens.csv"),
        format!("{token},pitrix-test-admin,pitrix-test-admin,\"system:masters\"\n"),
    )
    .expect("write tokens.csv");
}

fn write_kubeconfig(path: &Path, server: &str, ca_pem: &[u8], token: &str) {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: pitrix-test\n  \
           cluster:\n    \
             server: {server}\n    \
             certificate-authority-data: {ca}\n\
         users:\n\
         - name: pitrix-test-admin\n  \
           user:\n    \
             token: {token}\n\
         contexts:\n\
         - name: pitrix-test\n  \
           context:\n    \
             cluster: pitrix-test\n    \
             user: pitrix-test-admin\n\
         current-context: pitrix-test\n"
    );
    fs::write(path, text).expect("write kubeconfig");
}

/// Watchdog prefix of every server's `sh -c` script: a background subshell that blocks reading
/// the pipe on fd 3 (our stdin, duplicated because a background job's stdin is /dev/null) and,
/// on EOF, SIGTERMs `$$` — the shell's PID, which `exec` hands to the server — then SIGKILLs it
/// if it is still alive 10 s later. Before each signal it checks that `$$` is still the same
/// live process (start time in /proc/$$/stat, unchanged by exec; a zombie counts as gone), so a
/// PID reused after the server was reaped is never hit (pid_max may be as low as 32768).
pub const WATCHDOG: &str = r#"exec 3<&0
( exec </dev/null >/dev/null 2>&1
  st=$(cut -d' ' -f22 /proc/$$/stat)
  same() {
    set -- $(cut -d' ' -f3,22 /proc/$$/stat 2>/dev/null)
    [ "$1" != Z ] && [ "$1" != X ] && [ "$2" = "$st" ]
  }
  read -r _ <&3 || true
  same || exit 0
  kill -TERM $$ 2>/dev/null || exit 0
  i=0
  while same && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
  same && kill -KILL $$ 2>/dev/null
) &
exec "$@" </dev/null 3<&-
"#;

fn spawn_server(binary: &Path, args: &[String], log: &Path) -> Server {
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open log file");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("clone log file"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let watchdog = child.stdin.take();
    Server { child, watchdog }
}

/// Stops a server by its PID: SIGTERM, up to 10 s, then SIGKILL; always reaps it.
pub fn stop_server(mut server: Server) {
    if server.child.try_wait().ok().flatten().is_none() {
        // Still running and not reaped, so the PID is still this server's.
        let pid = server.child.id().to_string();
        let _ = Command::new("sh")
            .args(["-c", "kill -TERM \"$1\"", "sh", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.child.try_wait().ok().flatten().is_none() {
            if Instant::now() >= deadline {
                let _ = server.child.kill(); // SIGKILL
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = server.child.wait();
    // Closing the pipe lets the watchdog exit; it sees that the server is gone.
    drop(server.watchdog.take());
}

/// A process that removes the cluster's directory once this test process is gone and the
/// servers recorded in `<dir>/pids` have exited (it waits at most ~20 s for them).
pub fn spawn_janitor(dir: &Path) -> (Child, ChildStdin) {
    const JANITOR: &str = r#"read -r _ || true
dir=$1
i=0
while [ $i -lt 100 ]; do
  alive=0
  for f in "$dir"/pids/*; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null) || continue
    # Gone, or a zombie nobody has reaped yet (e.g. reparented to a lazy init): not running.
    state=$(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) || continue
    [ "$state" != Z ] && [ "$state" != X ] && alive=1
  done
  [ $alive -eq 0 ] && break
  sleep 0.2
  i=$((i+1))
done
rm -rf "$dir"
"#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(JANITOR)
        .arg("sh")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the test cluster's janitor (sh)");
    let stdin = child.stdin.take().expect("janitor stdin");
    (child, stdin)
}

pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|e| format!("(cannot read {}: {e})", path.display()));
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn assert_success(out: &Output, args: &[&str]) {
    assert!(
        out.status.success(),
        "kubectl {} failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
