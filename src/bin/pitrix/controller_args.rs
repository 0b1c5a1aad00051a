//! The flags of `pitrix reconcile` and `pitrix deploy-manifests`, mapped into the library's
//! plain [`reconcile::Options`] and [`DeployOptions`]. The controller's own flags are one
//! [`ControllerArgs`] flattened into both, so that deploy-manifests refuses what reconcile
//! would refuse, with the same message.

use std::path::PathBuf;
use std::time::Duration;

use pitrix::reconcile::deploy::{self, DeployOptions};
use pitrix::reconcile::log::{LogFormat, LogLevel};
use pitrix::reconcile::{self, ControllerOptions, DriftMode};

/// `--drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DriftArg {
    /// Undo out-of-band changes and re-create deleted objects.
    Correct,
    /// Only report them (log, Event, metrics).
    Warn,
}

impl From<DriftArg> for DriftMode {
    fn from(d: DriftArg) -> Self {
        match d {
            DriftArg::Correct => DriftMode::Correct,
            DriftArg::Warn => DriftMode::Warn,
        }
    }
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormatArg {
    /// `<time> <LEVEL> <message>`, one line per record.
    Text,
    /// One JSON object per line: `time`, `level`, `msg`.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

/// `--log-level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogLevelArg {
    Error,
    Warn,
    Info,
    Debug,
}

impl From<LogLevelArg> for LogLevel {
    fn from(l: LogLevelArg) -> Self {
        match l {
            LogLevelArg::Error => LogLevel::Error,
            LogLevelArg::Warn => LogLevel::Warn,
            LogLevelArg::Info => LogLevel::Info,
            LogLevelArg::Debug => LogLevel::Debug,
        }
    }
}

/// The controller's options that `pitrix deploy-manifests` passes on to `pitrix reconcile`:
/// one definition flattened into both, so that a value the controller would refuse is refused
/// when the manifests are printed (with the accepted values), never written into a Deployment
/// that then crash-loops.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ControllerArgs {
    /// How often to fetch, e.g. `1m`, `30s` (at least `100ms`).
    #[arg(long, default_value = "1m", value_parser = reconcile::parse_interval)]
    pub(crate) interval: Duration,
    /// Out-of-band changes to managed objects: undo them, or only report them.
    #[arg(long, value_enum, default_value = "correct")]
    pub(crate) drift: DriftArg,
    /// Log records (on stderr, one line each, secrets masked): `text` or one JSON object.
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormatArg,
    /// The least severe log records written.
    #[arg(long, value_enum, default_value = "info")]
    pub(crate) log_level: LogLevelArg,
    /// Up to this fraction of the interval is added at random to each wait.
    #[arg(long, default_value_t = 0.1, value_parser = reconcile::parse_fraction)]
    pub(crate) jitter: f64,
    /// Re-apply the current revision this often even when git did not change (`0`: only new
    /// revisions and drift events cause writes).
    #[arg(long, default_value = "0", value_parser = pitrix::duration::parse)]
    pub(crate) resync: Duration,
    /// A sync running longer is stopped at a safe point and retried.
    #[arg(long, default_value = "30m", value_parser = pitrix::duration::parse)]
    pub(crate) sync_timeout: Duration,
    /// On SIGTERM, how long a sync in flight may run on (keep it below the Pod's
    /// terminationGracePeriodSeconds).
    #[arg(long, default_value = "20s", value_parser = pitrix::duration::parse)]
    pub(crate) shutdown_grace: Duration,
    /// How long a sync waits for the catalog's apply lock (held by a `pitrix apply`) before it
    /// gives up until the next interval.
    #[arg(long, default_value = "10s", value_parser = pitrix::duration::parse)]
    pub(crate) lock_timeout: Duration,
    /// How long a silent leader keeps the lease.
    #[arg(long, default_value = "15s", value_parser = pitrix::duration::parse)]
    pub(crate) lease_duration: Duration,
    /// How long the leader keeps trying to renew before it steps down.
    #[arg(long, default_value = "10s", value_parser = pitrix::duration::parse)]
    pub(crate) renew_deadline: Duration,
    /// How often candidates try and the leader renews.
    #[arg(long, default_value = "2s", value_parser = pitrix::duration::parse)]
    pub(crate) retry_period: Duration,
}

impl From<ControllerArgs> for ControllerOptions {
    fn from(a: ControllerArgs) -> Self {
        ControllerOptions {
            interval: a.interval,
            drift: a.drift.into(),
            log_format: a.log_format.into(),
            log_level: a.log_level.into(),
            jitter: a.jitter,
            resync: a.resync,
            sync_timeout: a.sync_timeout,
            shutdown_grace: a.shutdown_grace,
            lock_timeout: a.lock_timeout,
            lease_duration: a.lease_duration,
            renew_deadline: a.renew_deadline,
            retry_period: a.retry_period,
        }
    }
}

/// `pitrix reconcile`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReconcileArgs {
    /// The catalog's git repository: `https://…` (token from --git-token-env), `ssh://…` or
    /// `git@host:path` (key from --ssh-key), `file://…` (all fetched into the cache), or a
    /// local path (read in place).
    #[arg(long, value_name = "URL|PATH")]
    pub(crate) source: String,
    /// The branch to follow.
    #[arg(long, default_value = "main", conflicts_with = "tag")]
    pub(crate) branch: String,
    /// Follow a tag instead of a branch.
    #[arg(long)]
    pub(crate) tag: Option<String>,
    /// The catalog's directory inside the repository.
    #[arg(long, default_value = "")]
    pub(crate) path: String,
    #[command(flatten)]
    pub(crate) controller: ControllerArgs,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub(crate) http_addr: String,
    /// Private cache (git objects, compiled bodies); default `$XDG_CACHE_HOME/pitrix/reconcile`.
    #[arg(long)]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Environment variable holding the https token.
    #[arg(long, default_value = "PITRIX_GIT_TOKEN")]
    pub(crate) git_token_env: String,
    /// User name sent with the token (GitHub accepts any; GitLab wants `oauth2`).
    #[arg(long, default_value = "x-access-token")]
    pub(crate) git_username: String,
    /// Private key file for ssh sources.
    #[arg(long)]
    pub(crate) ssh_key: Option<PathBuf>,
    /// Environment variable holding the ssh key's passphrase.
    #[arg(long)]
    pub(crate) ssh_passphrase_env: Option<String>,
    /// known_hosts file the ssh server's key must be in (default: libgit2 checks
    /// ~/.ssh/known_hosts).
    #[arg(long)]
    pub(crate) ssh_known_hosts: Option<PathBuf>,
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// kubeconfig holding the member clusters' contexts (standalone executor Jobs), when not
    /// `--kubeconfig` (the host stays in-cluster).
    #[arg(long)]
    pub(crate) member_kubeconfig: Option<PathBuf>,
    /// Namespace of the inventory ConfigMap (and its Events).
    #[arg(long, default_value = "pitrix-system")]
    pub(crate) inventory_namespace: String,
    /// Take over fields that other field managers own.
    #[arg(long)]
    pub(crate) force_conflicts: bool,
    /// Allow prune to delete more than max(5, 25 %) of the tracked objects.
    #[arg(long)]
    pub(crate) allow_mass_prune: bool,
    /// Objects applied at once within a stage.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Run without leader election (one replica only).
    #[arg(long)]
    pub(crate) no_leader_election: bool,
    /// Name of the coordination.k8s.io Lease of leader election (not `pitrix-apply-*`: those
    /// are the catalogs' apply locks).
    #[arg(long, default_value = "pitrix-reconcile")]
    pub(crate) lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else the inventory namespace).
    #[arg(long)]
    pub(crate) lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: $POD_NAME or the host name, plus a
    /// random suffix).
    #[arg(long)]
    pub(crate) identity: Option<String>,
}

impl ReconcileArgs {
    /// The library's options; `env` is the global `--env`.
    pub(crate) fn options(self, env: Option<String>) -> reconcile::Options {
        reconcile::Options {
            source: self.source,
            branch: self.branch,
            tag: self.tag,
            path: self.path,
            controller: self.controller.into(),
            http_addr: self.http_addr,
            cache_dir: self.cache_dir,
            git_token_env: self.git_token_env,
            git_username: self.git_username,
            ssh_key: self.ssh_key,
            ssh_passphrase_env: self.ssh_passphrase_env,
            ssh_known_hosts: self.ssh_known_hosts,
            kubeconfig: self.kubeconfig,
            context: self.context,
            member_kubeconfig: self.member_kubeconfig,
            inventory_namespace: self.inventory_namespace,
            force_conflicts: self.force_conflicts,
            allow_mass_prune: self.allow_mass_prune,
            concurrency: self.concurrency,
            no_leader_election: self.no_leader_election,
            lease_name: self.lease_name,
            lease_namespace: self.lease_namespace,
            identity: self.identity,
            env,
        }
    }
}

/// `pitrix deploy-manifests`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct DeployArgs {
    /// The catalog's git repository (as for `pitrix reconcile --source`).
    #[arg(long, value_name = "URL")]
    pub(crate) source: String,
    /// The branch to follow.
    #[arg(long, default_value = "main", conflicts_with = "tag")]
    pub(crate) branch: String,
    /// Follow a tag instead.
    #[arg(long)]
    pub(crate) tag: Option<String>,
    /// The catalog's directory inside the repository.
    #[arg(long, default_value = "")]
    pub(crate) path: String,
    /// Passed on to `pitrix reconcile`, parsed as it parses them.
    #[command(flatten)]
    pub(crate) controller: ControllerArgs,
    /// Namespace pitrix runs in (also holds the inventory, the Lease and the Events).
    #[arg(long, default_value = "pitrix-system")]
    pub(crate) namespace: String,
    /// The catalog's storage namespace (pitrix.toml `storageNamespace`). It is KubeSphere's
    /// and must exist before the manifests are applied: they grant rights in it but never
    /// create it, so that deleting them cannot delete the package store.
    #[arg(long, default_value = pitrix::objects::labels::STORAGE_NAMESPACE)]
    pub(crate) storage_namespace: String,
    /// Name of the ServiceAccount, roles, Deployment and Lease.
    #[arg(long, default_value = "pitrix")]
    pub(crate) name: String,
    /// Container image with the pitrix binary: the release's by default; a tag or a digest
    /// (`ghcr.io/acme/pitrix@sha256:…`), written as given.
    #[arg(long, default_value_t = deploy::default_image(), value_parser = deploy::image_reference)]
    pub(crate) image: String,
    /// Replicas (leader election keeps one active).
    #[arg(long, default_value_t = 2)]
    pub(crate) replicas: i32,
    /// Secret whose key `token` is the https token.
    #[arg(long)]
    pub(crate) git_token_secret: Option<String>,
    /// Secret with keys `identity` (private key) and `known_hosts`, for ssh sources.
    #[arg(long)]
    pub(crate) ssh_secret: Option<String>,
    /// `standalone` target with member clusters: Secret whose key `config` is a kubeconfig with
    /// their contexts (pitrix.toml `[clusters.<name>] context`); the host stays in-cluster.
    #[arg(long)]
    pub(crate) member_kubeconfig_secret: Option<String>,
    /// Secret whose keys become environment variables (the repo credentials the catalog names).
    #[arg(long)]
    pub(crate) env_secret: Option<String>,
    /// ConfigMap whose keys become environment variables.
    #[arg(long)]
    pub(crate) env_config_map: Option<String>,
    /// `standalone` target: a namespace releases install into (repeat it); pitrix runs the
    /// Helm executor Jobs and their ConfigMaps there, and writes the releases' status.
    #[arg(long = "release-namespace", value_name = "NAMESPACE")]
    pub(crate) release_namespaces: Vec<String>,
    /// Memory limit of the container. A sync keeps packages on disk and compiled bodies in
    /// its cache, not in memory: the first sync of the 1,000 apps × 5 versions synthetic
    /// catalog peaks at ~100 MiB (bench/soak.sh); idle, pitrix holds ~45-60 MiB.
    #[arg(long, default_value = "256Mi", value_parser = pitrix::reconcile::deploy::parse_memory_limit)]
    pub(crate) memory_limit: String,
    /// The catalog's target: which App Store kinds the controller's ClusterRole grants
    /// (KubeSphere 4.x's, or 3.x's with `kubesphere-v3`).
    #[arg(long, value_enum, value_name = "TARGET", default_value = "kubesphere")]
    pub(crate) target: crate::args::TargetArg,
    /// Secret with keys `accessKeyId` and `secretAccessKey`, the S3 credentials of the
    /// catalog's `[storage.s3]` (given to pitrix as PITRIX_S3_ACCESS_KEY_ID and
    /// PITRIX_S3_SECRET_ACCESS_KEY).
    #[arg(long, value_name = "SECRET")]
    pub(crate) s3_credentials_secret: Option<String>,
}

impl DeployArgs {
    /// The library's options; `env` is the global `--env`, passed on to `pitrix reconcile`.
    pub(crate) fn options(self, env: Option<String>) -> DeployOptions {
        DeployOptions {
            source: self.source,
            branch: self.branch,
            tag: self.tag,
            path: self.path,
            controller: self.controller.into(),
            namespace: self.namespace,
            storage_namespace: self.storage_namespace,
            name: self.name,
            image: self.image,
            replicas: self.replicas,
            git_token_secret: self.git_token_secret,
            ssh_secret: self.ssh_secret,
            member_kubeconfig_secret: self.member_kubeconfig_secret,
            env_secret: self.env_secret,
            env_config_map: self.env_config_map,
            release_namespaces: self.release_namespaces,
            env,
            memory_limit: self.memory_limit,
            kubesphere_v3: self.target == crate::args::TargetArg::KubesphereV3,
            s3_credentials_secret: self.s3_credentials_secret,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::args::{Cli, Command};

    use super::*;

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("pitrix").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    fn reconcile_options(args: &[&str]) -> reconcile::Options {
        let mut all = vec!["reconcile"];
        all.extend(args);
        match parse(&all).unwrap() {
            Command::Reconcile(r) => r.options(None),
            _ => unreachable!(),
        }
    }

    fn deploy_options(args: &[&str]) -> DeployOptions {
        let mut all = vec!["deploy-manifests"];
        all.extend(args);
        match parse(&all).unwrap() {
            Command::DeployManifests(d) => d.options(None),
            _ => unreachable!(),
        }
    }

    #[test]
    fn flag_defaults_are_the_library_defaults() {
        assert_eq!(
            reconcile_options(&["--source", "s"]),
            reconcile::Options {
                source: "s".into(),
                ..reconcile::Options::default()
            }
        );
        assert_eq!(
            deploy_options(&["--source", "s"]),
            DeployOptions {
                source: "s".into(),
                ..DeployOptions::default()
            }
        );
    }

    #[test]
    fn flag_values_refused_at_parse_time() {
        let ok = reconcile_options(&["--source", "s", "--jitter", "0.25"]);
        assert_eq!(ok.controller.log_level, LogLevel::Info);
        assert_eq!(ok.controller.jitter, 0.25);
        for command in ["reconcile", "deploy-manifests"] {
            for (flag, bad, says) in [
                ("--jitter", "2", "between 0 and 1"),
                ("--jitter", "NaN", "between 0 and 1"),
                ("--interval", "0", "shorter than 100ms"),
                ("--interval", "banana", "ms, s, m, h or d"),
                ("--interval", "5x", "ms, s, m, h or d"),
                ("--interval", "10ms", "shorter than 100ms"),
                ("--drift", "bogus", "[possible values: correct, warn]"),
                ("--log-format", "xml", "[possible values: text, json]"),
                (
                    "--log-level",
                    "verbose",
                    "[possible values: error, warn, info, debug]",
                ),
                (
                    "--log-level",
                    "trace",
                    "[possible values: error, warn, info, debug]",
                ),
            ] {
                let err = parse(&[command, "--source", "s", flag, bad])
                    .err()
                    .unwrap_or_else(|| panic!("{command} {flag} {bad} accepted"))
                    .to_string();
                assert!(err.contains(says) && err.contains(flag), "{err}");
            }
        }
    }

    #[test]
    fn deployment_runs_what_reconcile_accepts() {
        let o = deploy_options(&[
            "--source",
            "/srv/c",
            "--interval",
            "90s",
            "--drift",
            "warn",
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--jitter",
            "0.3",
            "--resync",
            "1h",
            "--shutdown-grace",
            "45s",
            "--lease-duration",
            "30s",
            "--renew-deadline",
            "20s",
            "--retry-period",
            "4s",
        ]);
        let yaml = deploy::to_yaml(&deploy::manifests(&o));
        let deployment: serde_yaml::Value = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .find(|d: &serde_yaml::Value| d["kind"] == "Deployment")
            .unwrap();
        let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(args[0], "reconcile");
        let r = reconcile_options(&args[1..]);
        assert_eq!(r.controller, o.controller);
        assert_eq!(r.source, o.source);
        assert_eq!(r.controller.interval, Duration::from_secs(90));
        assert_eq!(r.controller.drift, DriftMode::Warn);
        assert_eq!(r.controller.log_format, LogFormat::Json);
    }

    #[test]
    fn images_checked_at_parse_time() {
        let o = deploy_options(&["--source", "/srv/c", "--image", "localhost/pitrix"]);
        assert_eq!(o.image, "localhost/pitrix");
        for bad in [
            "",
            "ghcr.io/acme/pitrix@sha256:abc",
            "ghcr.io/Acme/pitrix:1",
        ] {
            let err = parse(&["deploy-manifests", "--source", "/srv/c", "--image", bad])
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(
                err.to_string().contains("expected [REGISTRY/]NAME"),
                "{err}"
            );
        }
    }
}
