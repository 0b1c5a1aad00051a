//! Stage 6, reconcile: pitrix as an in-cluster GitOps controller. A loop keeps a cluster
//! equal to a catalog's branch or tag:
//!
//! - [`source`]: git fetched with git2 into a private cache (https + token, ssh + key,
//!   `file://`) or a local repository read in place, on an interval with jitter;
//! - [`controller`]: each new revision compiled → applied → pruned with apply's guards; a
//!   revision that does not compile changes nothing and the last good one stays; drift found by
//!   the [`watch`]ers corrected (or reported) against a small resident [`index`], with bodies
//!   read back from the [`store`];
//! - [`status`]: the outcome on the inventory ConfigMap, and Kubernetes Events;
//! - [`http`] + [`metrics`]: `/healthz`, `/readyz`, `/metrics`;
//! - [`lease`]: leader election, so replicas never apply at once;
//! - SIGTERM: stop watching, let a sync in flight finish (or stop it at a safe point), release
//!   the lease, exit 0.
//!
//! [`deploy`] prints what runs it in a cluster.

/// `Display` and `FromStr` for an enum of flag values, by its `name()` and `ALL`.
macro_rules! named_enum {
    ($ty:ty, $what:literal) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = crate::error::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Self::ALL.iter().map(|v| v.name()).collect();
                        crate::error::Error::InvalidValue(format!(
                            "`{s}` is not {}; one of: {}",
                            $what,
                            names.join(", ")
                        ))
                    })
            }
        }
    };
}
pub(crate) use named_enum;

pub mod controller;
pub mod deploy;
pub mod http;
pub mod index;
/// Leader election (shared with the apply lock, which lives in `apply`).
pub use crate::cluster::lease;
pub mod log;
pub mod metrics;
pub mod source;
pub mod status;
pub mod store;
pub mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch as chan;

use crate::apply::ApplyOptions;
use crate::cluster::{ClusterOptions, Clusters};
use crate::error::Error;
pub use controller::DriftMode;
use controller::{Controller, Settings, Stop};
use lease::{Elector, LeaseConfig};
use metrics::{Metrics, NotReady};
use source::{GitRef, Source, SourceOptions};
use status::Reporter;
use store::Store;

/// A random number (for jitter and unique names); not for cryptography.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// `--interval`: a duration of at least 100ms.
pub fn parse_interval(text: &str) -> Result<Duration, Error> {
    let d = crate::duration::parse(text)?;
    if d < MIN_INTERVAL {
        return Err(Error::InvalidValue(format!(
            "`{text}` is shorter than 100ms (e.g. `30s`, `1m`, `1h30m`)"
        )));
    }
    Ok(d)
}

/// The shortest `--interval`: git is not polled faster.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// `--jitter`: a fraction between 0 and 1.
pub fn parse_fraction(text: &str) -> Result<f64, Error> {
    match text.trim().parse::<f64>() {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(Error::InvalidValue(format!(
            "`{text}` is not a fraction between 0 and 1 (e.g. `0.1`)"
        ))),
    }
}

/// A duration written back as `pitrix reconcile` reads it (`1m`, `90s`, `1500ms`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if Duration::from_millis(ms as u64) != d {
        format!("{}s", d.as_secs_f64())
    } else if ms != 0 && ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms != 0 && ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// The controller's options that `pitrix deploy-manifests` passes on to `pitrix reconcile`:
/// one definition for both, so that a value the controller would refuse is refused when the
/// manifests are printed, never written into a Deployment that then crash-loops. The
/// defaults are `pitrix reconcile`'s.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerOptions {
    /// How often to fetch (at least [`MIN_INTERVAL`]).
    pub interval: Duration,
    /// Out-of-band changes to managed objects: undo them, or only report them.
    pub drift: DriftMode,
    pub log_format: log::LogFormat,
    /// The least severe log records written.
    pub log_level: log::LogLevel,
    /// Up to this fraction of the interval is added at random to each wait.
    pub jitter: f64,
    /// Re-apply the current revision this often even when git did not change (zero: only new
    /// revisions and drift events cause writes).
    pub resync: Duration,
    /// A sync running longer is stopped at a safe point and retried.
    pub sync_timeout: Duration,
    /// On SIGTERM, how long a sync in flight may run on.
    pub shutdown_grace: Duration,
    /// How long a sync waits for the catalog's apply lock.
    pub lock_timeout: Duration,
    /// Leader election: how long a silent leader keeps the lease, how long the leader keeps
    /// trying to renew, how often candidates try and the leader renews.
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            interval: Duration::from_secs(60),
            drift: DriftMode::Correct,
            log_format: log::LogFormat::Text,
            log_level: log::LogLevel::Info,
            jitter: 0.1,
            resync: Duration::ZERO,
            sync_timeout: Duration::from_secs(30 * 60),
            shutdown_grace: Duration::from_secs(20),
            lock_timeout: Duration::from_secs(10),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl ControllerOptions {
    /// The same options as `pitrix reconcile` arguments.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--interval".into(),
            format_duration(self.interval),
            "--drift".into(),
            self.drift.to_string(),
            "--log-format".into(),
            self.log_format.to_string(),
            "--log-level".into(),
            self.log_level.to_string(),
            "--jitter".into(),
            self.jitter.to_string(),
            "--resync".into(),
            format_duration(self.resync),
            "--sync-timeout".into(),
            format_duration(self.sync_timeout),
            "--shutdown-grace".into(),
            format_duration(self.shutdown_grace),
            "--lock-timeout".into(),
            format_duration(self.lock_timeout),
            "--lease-duration".into(),
            format_duration(self.lease_duration),
            "--renew-deadline".into(),
            format_duration(self.renew_deadline),
            "--retry-period".into(),
            format_duration(self.retry_period),
        ]
    }

    /// What the flags cannot say alone: leader election's timings in order.
    pub fn check(&self, leader_election: bool) -> Result<(), Error> {
        if leader_election
            && (self.renew_deadline >= self.lease_duration
                || self.retry_period >= self.renew_deadline)
        {
            return Err(Error::InvalidValue(
                "leader election needs --retry-period < --renew-deadline < --lease-duration".into(),
            ));
        }
        Ok(())
    }
}

/// `pitrix reconcile`.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The catalog's git repository: `https://…` (token from `git_token_env`), `ssh://…` or
    /// `git@host:path` (key from `ssh_key`), `file://…` (all fetched into the cache), or a
    /// local path (read in place).
    pub source: String,
    /// The branch to follow, unless `tag` is set.
    pub branch: String,
    pub tag: Option<String>,
    /// The catalog's directory inside the repository.
    pub path: String,
    pub controller: ControllerOptions,
    /// Address of /healthz, /readyz and /metrics.
    pub http_addr: String,
    /// Private cache (git objects, compiled bodies); default `$XDG_CACHE_HOME/pitrix/reconcile`.
    pub cache_dir: Option<PathBuf>,
    /// Environment variable holding the https token.
    pub git_token_env: String,
    /// User name sent with the token (GitHub accepts any; GitLab wants `oauth2`).
    pub git_username: String,
    /// Private key file for ssh sources, the variable holding its passphrase, and the
    /// known_hosts file the server's key must be in (default: libgit2 checks
    /// ~/.ssh/known_hosts).
    pub ssh_key: Option<PathBuf>,
    pub ssh_passphrase_env: Option<String>,
    pub ssh_known_hosts: Option<PathBuf>,
    /// The host cluster (default: $KUBECONFIG, ~/.kube/config, then in-cluster) and the
    /// kubeconfig of the member clusters' contexts.
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub member_kubeconfig: Option<PathBuf>,
    /// Namespace of the inventory ConfigMap (and its Events).
    pub inventory_namespace: String,
    /// Take over fields that other field managers own.
    pub force_conflicts: bool,
    /// Allow prune to delete more than max(5, 25 %) of the tracked objects.
    pub allow_mass_prune: bool,
    /// Objects applied at once within a stage.
    pub concurrency: usize,
    /// Run without leader election (one replica only).
    pub no_leader_election: bool,
    /// Name of the Lease of leader election (not `pitrix-apply-*`: those are the catalogs'
    /// apply locks).
    pub lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the inventory namespace).
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME or the host name, plus a
    /// random suffix).
    pub identity: Option<String>,
    /// The environment of pitrix.toml to build for (the global `--env`).
    pub env: Option<String>,
}

impl Default for Options {
    /// `pitrix reconcile`'s defaults, with no source.
    fn default() -> Self {
        Options {
            source: String::new(),
            branch: "main".into(),
            tag: None,
            path: String::new(),
            controller: ControllerOptions::default(),
            http_addr: "0.0.0.0:8080".into(),
            cache_dir: None,
            git_token_env: "PITRIX_GIT_TOKEN".into(),
            git_username: "x-access-token".into(),
            ssh_key: None,
            ssh_passphrase_env: None,
            ssh_known_hosts: None,
            kubeconfig: None,
            context: None,
            member_kubeconfig: None,
            inventory_namespace: "pitrix-system".into(),
            force_conflicts: false,
            allow_mass_prune: false,
            concurrency: 16,
            no_leader_election: false,
            lease_name: "pitrix-reconcile".into(),
            lease_namespace: None,
            identity: None,
            env: None,
        }
    }
}

fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("pitrix").join("reconcile")
}

impl Options {
    fn check(&self) -> Result<(), Error> {
        if self.controller.interval < MIN_INTERVAL {
            return Err(Error::InvalidValue(
                "--interval must be at least 100ms".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.controller.jitter) {
            return Err(Error::InvalidValue(
                "--jitter is a fraction between 0 and 1".into(),
            ));
        }
        if self.lease_name.starts_with("pitrix-apply-") {
            return Err(Error::InvalidValue(format!(
                "--lease-name {}: `pitrix-apply-*` Leases are the catalogs' apply locks",
                self.lease_name
            )));
        }
        self.controller.check(!self.no_leader_election)
    }
}

/// Waits for SIGTERM or SIGINT.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => log::info("SIGTERM received"),
                    _ = int.recv() => log::info("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs until SIGTERM/SIGINT; Ok(()) is a clean stop (exit 0).
pub async fn run(opts: Options) -> Result<(), Error> {
    log::init(opts.controller.log_format, opts.controller.log_level);
    opts.check()?;
    let cache_dir = opts.cache_dir.clone().unwrap_or_else(default_cache_dir);
    std::fs::create_dir_all(&cache_dir).map_err(|e| Error::io(&cache_dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o700));
    }
    let source = Arc::new(Source::new(SourceOptions {
        url: opts.source.clone(),
        git_ref: match &opts.tag {
            Some(t) => GitRef::Tag(t.clone()),
            None => GitRef::Branch(opts.branch.clone()),
        },
        path: opts.path.clone(),
        token_env: opts.git_token_env.clone(),
        username: opts.git_username.clone(),
        ssh_key: opts.ssh_key.clone(),
        ssh_passphrase_env: opts.ssh_passphrase_env.clone(),
        known_hosts: opts.ssh_known_hosts.clone(),
        cache_dir: cache_dir.clone(),
    })?);
    let store = Arc::new(Store::open(&cache_dir.join("objects"))?);
    // The host is where reconcile runs (or `--context`); each revision's pitrix.toml maps
    // its member clusters (standalone executor Jobs) to contexts of `--member-kubeconfig`
    // (default `--kubeconfig`).
    let clusters = Clusters::connect(
        &ClusterOptions {
            kubeconfig: opts.kubeconfig.clone(),
            context: opts.context.clone(),
            member_kubeconfig: opts.member_kubeconfig.clone(),
        },
        &Default::default(),
    )
    .await?;
    let client = clusters.host().clone();
    let identity = opts
        .identity
        .clone()
        .unwrap_or_else(lease::default_identity);
    let metrics = Arc::new(Metrics::new(&source.describe()));

    let (shutdown_tx, shutdown) = chan::channel(false);
    let listener = http::bind(&opts.http_addr).await?;
    log::info(format!(
        "pitrix {} reconciling {} every {:?} (drift: {:?}); http on {}",
        env!("CARGO_PKG_VERSION"),
        source.describe(),
        opts.controller.interval,
        opts.controller.drift,
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| opts.http_addr.clone())
    ));
    let server = tokio::spawn(http::serve(listener, metrics.clone(), shutdown.clone()));
    tokio::spawn(async move {
        terminated().await;
        let _ = shutdown_tx.send(true);
    });

    let settings = Settings {
        interval: opts.controller.interval,
        jitter: opts.controller.jitter,
        drift: opts.controller.drift,
        apply: ApplyOptions {
            force_conflicts: opts.force_conflicts,
            allow_mass_prune: opts.allow_mass_prune,
            inventory_namespace: opts.inventory_namespace.clone(),
            concurrency: opts.concurrency,
            progress: false,
            // The catalog's apply lock: a Lease of its own, apart from leader election.
            lock_timeout: opts.controller.lock_timeout,
            lock_holder: crate::apply::holder_identity("reconcile"),
            lock_notice: false,
            ..ApplyOptions::default()
        },
        sync_timeout: opts.controller.sync_timeout,
        shutdown_grace: opts.controller.shutdown_grace,
        resync: (!opts.controller.resync.is_zero()).then_some(opts.controller.resync),
        work_dir: cache_dir.join("work"),
        env: opts.env.clone(),
    };
    let reporter = Reporter::new(
        client.clone(),
        &opts.inventory_namespace,
        &identity,
        &source::display_url(&opts.source),
    );
    let mut controller =
        Controller::new(clusters, settings, source, store, metrics.clone(), reporter);

    if opts.no_leader_election {
        metrics.set_leader(true);
        let (stop_tx, stop_rx) = chan::channel(Stop::Run);
        let mut shutdown = shutdown.clone();
        let forward = async {
            let _ = shutdown.wait_for(|s| *s).await;
            let _ = stop_tx.send(Stop::Shutdown);
        };
        tokio::join!(controller.run(stop_rx), forward);
    } else {
        let lease_namespace = opts
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or_else(|| opts.inventory_namespace.clone());
        let mut elector = Elector::new(
            client.clone(),
            LeaseConfig {
                name: opts.lease_name.clone(),
                namespace: lease_namespace,
                identity: identity.clone(),
                duration: opts.controller.lease_duration,
                renew_deadline: opts.controller.renew_deadline,
                retry_period: opts.controller.retry_period,
            },
        );
        lead(&mut elector, &mut controller, &metrics, shutdown.clone()).await;
        match elector.release().await {
            Ok(()) => log::info(format!("lease {} released", opts.lease_name)),
            Err(e) => log::warn(e),
        }
    }
    metrics.set_leader(false);
    let _ = server.await;
    log::info("stopped");
    Ok(())
}

/// Campaigns for the lease and reconciles while holding it, until shutdown.
async fn lead(
    elector: &mut Elector,
    controller: &mut Controller,
    metrics: &Arc<Metrics>,
    mut shutdown: chan::Receiver<bool>,
) {
    let cfg = elector.config().clone();
    let mut last_holder: Option<String> = None;
    let mut last_error: Option<String> = None;
    let mut continue_after_error = false;
    loop {
        // Candidate: try every retry period until the lease is ours.
        metrics.set_leader(false);
        loop {
            if *shutdown.borrow() {
                return;
            }
            match elector.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {
                    metrics.set_ready(Ok(()));
                    let holder = elector.holder().map(str::to_string);
                    if holder != last_holder {
                        log::info(format!(
                            "standing by: lease {}/{} is held by {}",
                            cfg.namespace,
                            cfg.name,
                            holder.as_deref().unwrap_or("nobody")
                        ));
                        last_holder = holder;
                    }
                }
                Err(e) => {
                    metrics.error(e.metric_label());
                    // The same failure every retry period: log it when it changes.
                    let why = e.to_string();
                    metrics.set_ready(Err(NotReady::ApiServer(Arc::new(e))));
                    if last_error.as_deref() != Some(why.as_str()) {
                        log::warn(&why);
                        last_error = Some(why);
                    }
                    continue_after_error = true;
                }
            }
            if !continue_after_error {
                last_error = None;
            }
            continue_after_error = false;
            tokio::select! {
                _ = tokio::time::sleep(cfg.retry_period) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
        log::info(format!(
            "leading as {} (lease {}/{})",
            cfg.identity, cfg.namespace, cfg.name
        ));
        last_holder = Some(cfg.identity.clone());
        metrics.set_leader(true);
        metrics.set_ready(Ok(()));

        let (stop_tx, stop_rx) = chan::channel(Stop::Run);
        let (done_tx, mut done) = chan::channel(false);
        let work = async {
            controller.run(stop_rx).await;
            let _ = done_tx.send(true);
        };
        // Renew every retry period; step down when that has failed for the renew deadline.
        let renew = async {
            let mut renewed = Instant::now();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(cfg.retry_period) => {}
                    _ = done.wait_for(|d| *d) => return false,
                }
                match elector.try_acquire_or_renew().await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        log::error(format!(
                            "lease taken over by {}: stepping down",
                            elector.holder().unwrap_or("another replica")
                        ));
                        let _ = stop_tx.send(Stop::Lost);
                        return true;
                    }
                    Err(e) => {
                        metrics.error(e.metric_label());
                        log::warn(format!("cannot renew the lease: {e}"));
                        if renewed.elapsed() >= cfg.renew_deadline {
                            log::error(format!(
                                "lease not renewed for {:?}: stepping down",
                                cfg.renew_deadline
                            ));
                            let _ = stop_tx.send(Stop::Lost);
                            return true;
                        }
                    }
                }
            }
        };
        let mut shutdown_wait = shutdown.clone();
        let mut done_wait = done_tx.subscribe();
        let forward = async {
            tokio::select! {
                _ = shutdown_wait.wait_for(|s| *s) => {
                    let _ = stop_tx.send(Stop::Shutdown);
                }
                _ = done_wait.wait_for(|d| *d) => {}
            }
        };
        let (_, lost, _) = tokio::join!(work, renew, forward);
        metrics.set_leader(false);
        if !lost {
            // Shutdown: the caller releases the lease.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_checked() {
        assert_eq!(parse_fraction("0.25").unwrap(), 0.25);
        assert_eq!(parse_interval("100ms").unwrap(), MIN_INTERVAL);
        for bad in ["2", "NaN", "-0.1", "x"] {
            let err = parse_fraction(bad).unwrap_err().to_string();
            assert!(err.contains("between 0 and 1"), "{err}");
        }
        let err = parse_interval("0").unwrap_err().to_string();
        assert!(err.contains("shorter than 100ms"), "{err}");
        // Values built without the parsers are checked before anything starts.
        let check = |controller: ControllerOptions| {
            Options {
                source: "s".into(),
                controller,
                ..Options::default()
            }
            .check()
        };
        assert!(check(ControllerOptions::default()).is_ok());
        for (bad, says) in [
            (
                ControllerOptions {
                    interval: Duration::from_millis(10),
                    ..ControllerOptions::default()
                },
                "--interval",
            ),
            (
                ControllerOptions {
                    jitter: f64::NAN,
                    ..ControllerOptions::default()
                },
                "--jitter",
            ),
            (
                ControllerOptions {
                    renew_deadline: Duration::from_secs(20),
                    ..ControllerOptions::default()
                },
                "--retry-period < --renew-deadline < --lease-duration",
            ),
        ] {
            let err = check(bad).unwrap_err();
            assert_eq!(err.metric_label(), "invalid_value");
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn named_values_read_back() {
        for d in DriftMode::ALL {
            assert_eq!(d.to_string().parse::<DriftMode>().unwrap(), d);
        }
        for f in log::LogFormat::ALL {
            assert_eq!(f.to_string().parse::<log::LogFormat>().unwrap(), f);
        }
        for l in log::LogLevel::ALL {
            assert_eq!(l.to_string().parse::<log::LogLevel>().unwrap(), l);
        }
        let err = "verbose".parse::<log::LogLevel>().unwrap_err().to_string();
        assert!(err.contains("error, warn, info, debug"), "{err}");
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let base = Duration::from_secs(60);
        for _ in 0..100 {
            let d = controller::jittered(base, 0.1);
            assert!(d >= base && d <= Duration::from_secs(66), "{d:?}");
        }
        assert_eq!(controller::jittered(base, 0.0), base);
    }
}
