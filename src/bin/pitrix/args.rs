//! The command line: every command, flag and accepted value, parsed by clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use pitrix::diagnostics::Format;
use pitrix::{diff, repo};

use crate::catalog::default_cache_dir;
use crate::controller_args::{DeployArgs, ReconcileArgs};

#[derive(Parser)]
#[command(name = "pitrix", version, about = "The KubeSphere App Store as code")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Build for an environment of pitrix.toml (`[env.<name>]`: vars, workspace, clusters).
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) env: Option<String>,
}

/// `--target`, on the commands that build a catalog.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct TargetArgs {
    /// Compile for this target instead of pitrix.toml's: one catalog for KubeSphere 4.x
    /// (`kubesphere`) and 3.x (`kubesphere-v3`) side by side.
    #[arg(long, value_enum, value_name = "TARGET")]
    pub(crate) target: Option<TargetArg>,
}

impl TargetArgs {
    pub(crate) fn target(self) -> Option<pitrix::catalog::Target> {
        self.target.map(Into::into)
    }
}

/// `--target`: [`Target`](pitrix::catalog::Target).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TargetArg {
    Kubesphere,
    #[value(name = "kubesphere-v3")]
    KubesphereV3,
    Standalone,
}

impl From<TargetArg> for pitrix::catalog::Target {
    fn from(t: TargetArg) -> Self {
        match t {
            TargetArg::Kubesphere => pitrix::catalog::Target::Kubesphere,
            TargetArg::KubesphereV3 => pitrix::catalog::Target::KubesphereV3,
            TargetArg::Standalone => pitrix::catalog::Target::Standalone,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Scaffold a catalog with one example of everything.
    New {
        /// Directory to create (must not exist, or be empty).
        dir: PathBuf,
        /// The catalog's name (default: the directory's name). It labels every object the
        /// catalog owns: give each catalog on a cluster its own.
        #[arg(long)]
        name: Option<String>,
    },
    /// Check a catalog: every rule, every file; non-zero exit on any error.
    Validate {
        /// The catalog directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// How to print diagnostics (`github` writes workflow annotations).
        #[arg(
            short = 'o',
            long = "output",
            alias = "format",
            value_enum,
            default_value = "text"
        )]
        format: DiagnosticsFormat,
        /// Check releases of synced-repo charts against the live repo index.
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Validate, then write the compiled objects to the output directory; with --diff, print
    /// what would change against a git revision instead.
    ///
    /// Exit status with --diff: 1 when the catalog has errors or a released package changed, 2
    /// when git or I/O fails; with --exit-code, like diff(1): 0 no changes, 1 changes, 2 any
    /// error.
    Compile {
        /// The catalog directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Output directory (default `out`); replaced as a whole, atomically. With --diff it is
        /// written only when given. Compile is the one command whose `-o` names a directory,
        /// as a compiler's does; its printed format is `--output`.
        #[arg(
            short = 'o',
            long = "out-dir",
            visible_alias = "out",
            value_name = "DIR"
        )]
        out: Option<PathBuf>,
        /// How to print diagnostics; with --diff, the diff (`text`, `markdown`, `json` or
        /// `yaml`).
        #[arg(long = "output", alias = "format", value_enum, default_value = "text")]
        format: CompileFormat,
        /// Compare with a git revision (read from git, no checkout) and print what changes.
        #[arg(long)]
        diff: bool,
        /// The base revision (default: merge-base of HEAD with origin's default branch, else main).
        #[arg(long, value_name = "REF", requires = "diff")]
        base: Option<String>,
        /// Exit 1 when there are changes, 0 when there are none (errors: 2).
        #[arg(long, requires = "diff")]
        exit_code: bool,
        /// Also write the full diff to FILE (format by extension: .json, .md, else text);
        /// repeatable.
        #[arg(long, value_name = "FILE", requires = "diff")]
        diff_out: Vec<PathBuf>,
        /// Where the full diff can be found, for the note of a Markdown diff cut to fit a comment.
        #[arg(long, value_name = "URL", requires = "diff")]
        full_diff_url: Option<String>,
        /// Also write out/charts/ (a Helm repository: packages + index.yaml) and out/site/ (an
        /// HTML preview of the store).
        #[arg(long, conflicts_with = "diff")]
        publish: bool,
        /// Absolute URL out/charts/ is served under (index.yaml URLs are relative without it).
        #[arg(long, value_name = "URL", requires = "publish")]
        base_url: Option<String>,
        /// Check releases of synced-repo charts against the live repo index.
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        cache: CacheArgs,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Bring charts from a Helm repository into the catalog (apps/<chart>/<version>.tgz and
    /// app.yaml), idempotently: what the catalog has is never overwritten.
    Import(ImportArgs),
    /// Write pitrix.lock: the digest and URL of every chart version releases take from synced
    /// repos, read from each repo's index and checked by downloading.
    Lock {
        /// The catalog directory.
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Accept changed upstream digests of versions already locked.
        #[arg(long)]
        update: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Compile (or read a compiled output) and apply it to a cluster with server-side apply.
    Apply(ApplyArgs),
    /// What apply would change in the live cluster (server-side dry run), and what it would prune.
    Diff(LiveDiffArgs),
    /// Write a compiled catalog's review states from its status ConfigMap (what the status
    /// Job of the output runs under Argo CD or Flux).
    WriteStatus(WriteStatusArgs),
    /// Read a live App Store and write a catalog that compiles back to it (secrets become
    /// environment variable names); then `pitrix diff` and `pitrix apply --adopt`.
    Export(ExportArgs),
    /// Keep a cluster equal to a catalog's git branch or tag: an in-cluster GitOps controller
    /// (drift correction, /healthz, /readyz, /metrics, leader election).
    Reconcile(Box<ReconcileArgs>),
    /// Print the Namespace, ServiceAccount, RBAC, Deployment and PodDisruptionBudget that run
    /// `pitrix reconcile` (the storage namespace must exist: it is KubeSphere's).
    DeployManifests(Box<DeployArgs>),
    /// Print the CRDs of the five App Store kinds.
    Crds,
    /// Print the JSON Schema of one catalog file kind, list them, or write them all.
    Schema {
        /// `pitrix`, `category`, `repo`, `app` or `release` (default: list the names).
        name: Option<String>,
        /// Write every `<kind>.schema.json` into this directory instead.
        #[arg(long, alias = "dir", conflicts_with = "name")]
        out: Option<PathBuf>,
    },
    /// Print pitrix's version.
    Version,
    /// Print a shell completion script (e.g. `pitrix completion bash > /etc/bash_completion.d/pitrix`).
    Completion { shell: clap_complete::Shell },
    /// Print the man page (roff), or write one page per command into a directory.
    Man {
        /// Write `pitrix.1`, `pitrix-<command>.1`, ... here instead of printing pitrix.1.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
pub(crate) struct ImportArgs {
    /// Base URL of the Helm repository (index.yaml is appended).
    pub(crate) url: String,
    /// The catalog to write into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) catalog: PathBuf,
    /// Charts to import (repeatable, or comma-separated); default: every chart of the index.
    #[arg(long = "chart", value_name = "NAME", value_delimiter = ',')]
    pub(crate) charts: Vec<String>,
    /// How many of the newest versions of each chart.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "all")]
    pub(crate) versions: usize,
    /// Every version of each chart.
    #[arg(long)]
    pub(crate) all: bool,
    /// Include pre-release versions.
    #[arg(long)]
    pub(crate) devel: bool,
    /// Category of new apps (categories/<name>.yaml must exist).
    #[arg(long)]
    pub(crate) category: Option<String>,
    /// Environment variable holding the repository's user name.
    #[arg(long, value_name = "VAR", requires = "password_env")]
    pub(crate) username_env: Option<String>,
    /// Environment variable holding the repository's password.
    #[arg(long, value_name = "VAR", requires = "username_env")]
    pub(crate) password_env: Option<String>,
    /// Fetch and check everything; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[command(flatten)]
    pub(crate) net: NetArgs,
}

/// The package cache: validate and compile pack every chart, which is most of their work.
#[derive(clap::Args)]
pub(crate) struct CacheArgs {
    /// Where chart packages are cached between runs, by the digest of their files
    /// (default `$XDG_CACHE_HOME/pitrix/packages`, else `~/.cache/pitrix/packages`).
    #[arg(long, value_name = "DIR")]
    pub(crate) cache_dir: Option<PathBuf>,
    /// Pack every chart anew, neither reading nor writing the package cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub(crate) no_cache: bool,
}

impl CacheArgs {
    pub(crate) fn package_cache(self) -> Option<pitrix::chart::PackageCache> {
        if self.no_cache {
            return None;
        }
        self.cache_dir
            .or_else(default_cache_dir)
            .map(pitrix::chart::PackageCache::new)
    }
}

/// How pitrix talks to Helm repositories.
#[derive(clap::Args)]
pub(crate) struct NetArgs {
    /// PEM file of CA certificates to trust besides the system's (or PITRIX_CA_FILE).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Timeout of each request, e.g. `30s`, `2m`.
    #[arg(long, default_value = "60s")]
    pub(crate) timeout: String,
    /// Retries of a request that timed out or failed with 5xx/429.
    #[arg(long, default_value_t = 2)]
    pub(crate) retries: u32,
    /// Largest index.yaml accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub(crate) max_index_size: u64,
}

impl NetArgs {
    pub(crate) fn options(&self) -> Result<repo::FetchOptions, pitrix::Error> {
        let seconds = pitrix::duration::parse_seconds(&self.timeout)
            .map_err(|e| pitrix::Error::InvalidValue(format!("--timeout {}: {e}", self.timeout)))?;
        let base = repo::FetchOptions::from_env();
        Ok(repo::FetchOptions {
            timeout: std::time::Duration::from_secs(seconds.max(1) as u64),
            retries: self.retries,
            max_index_bytes: self.max_index_size.saturating_mul(1024 * 1024),
            ca_file: self.ca_file.clone().or(base.ca_file.clone()),
            ..base
        })
    }
}

#[derive(clap::Args)]
pub(crate) struct ApplyArgs {
    /// The catalog directory.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Apply an output directory compiled earlier instead (what was reviewed is what is applied).
    #[arg(long, value_name = "OUT")]
    pub(crate) from: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Take over fields that other field managers own.
    #[arg(long)]
    pub(crate) force_conflicts: bool,
    /// Take over objects that exist without this catalog's mark (made in the console, by
    /// another tool or another catalog); without it they are a conflict and nothing is applied.
    #[arg(long)]
    pub(crate) adopt: bool,
    /// Delete orphans: live objects labelled as this catalog's that no inventory lists (after
    /// a lost inventory ConfigMap); without it they are reported and kept.
    #[arg(long)]
    pub(crate) prune_orphans: bool,
    /// Delete and re-create storage ConfigMaps whose package changed (KubeSphere never does).
    #[arg(long)]
    pub(crate) replace_changed_packages: bool,
    /// Allow prune to delete more than max(5, 25 %) of the tracked objects.
    #[arg(long)]
    pub(crate) allow_mass_prune: bool,
    /// Print the plan; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Namespace of the inventory ConfigMap.
    #[arg(long, default_value = "pitrix-system")]
    pub(crate) inventory_namespace: String,
    /// Objects applied at once within a stage.
    #[arg(long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Wait until every release is active, failing on `failed` or after --timeout.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Ask KubeSphere to sync new or changed repos now (status.state=manualTrigger).
    #[arg(long)]
    pub(crate) sync_repos: bool,
    /// How long --wait waits, e.g. `5m`, `90s`.
    #[arg(long, default_value = "5m")]
    pub(crate) timeout: String,
    /// How long to wait for the catalog's apply lock while another apply (or reconcile)
    /// holds it, e.g. `2m`, `0` (refuse at once).
    #[arg(long, default_value = "60s", value_parser = pitrix::duration::parse)]
    pub(crate) lock_timeout: std::time::Duration,
    /// `text` for people, `json` or `yaml` for machines.
    #[arg(
        short = 'o',
        long,
        alias = "format",
        value_enum,
        default_value = "text"
    )]
    pub(crate) output: OutputFormat,
}

#[derive(clap::Args)]
pub(crate) struct LiveDiffArgs {
    /// The catalog directory.
    #[arg(default_value = ".")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    /// Namespace of the inventory ConfigMap.
    #[arg(long, default_value = "pitrix-system")]
    pub(crate) inventory_namespace: String,
    /// `text`, `markdown` (a PR comment), `json` or `yaml`.
    #[arg(
        short = 'o',
        long = "output",
        alias = "format",
        value_enum,
        default_value = "text"
    )]
    pub(crate) format: DiffFormat,
    /// Accepted for compatibility: `pitrix diff` always exits 1 when there are differences
    /// and 2 on trouble, like `kubectl diff`.
    #[arg(long, hide = true)]
    pub(crate) exit_code: bool,
}

#[derive(clap::Args)]
pub(crate) struct ClusterArgs {
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// kubeconfig holding the member clusters' contexts (standalone executor Jobs), when not
    /// the one above.
    #[arg(long)]
    pub(crate) member_kubeconfig: Option<PathBuf>,
}

/// `pitrix write-status`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct WriteStatusArgs {
    /// The catalog's name (pitrix.toml `catalog.name`).
    #[arg(long)]
    pub(crate) catalog: String,
    /// Namespace of the status ConfigMap: the catalog's storage namespace.
    #[arg(long, default_value = pitrix::objects::labels::STORAGE_NAMESPACE)]
    pub(crate) namespace: String,
    /// The status ConfigMap (default `pitrix-status-<catalog>`).
    #[arg(long)]
    pub(crate) config_map: Option<String>,
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// States written at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) concurrency: usize,
    /// Read the cluster, write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

impl WriteStatusArgs {
    pub(crate) fn options(&self) -> pitrix::gitops::write_status::WriteStatusOptions {
        pitrix::gitops::write_status::WriteStatusOptions {
            catalog: self.catalog.clone(),
            namespace: self.namespace.clone(),
            config_map: self.config_map.clone(),
            cluster: pitrix::cluster::ClusterOptions {
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
                member_kubeconfig: None,
            },
            concurrency: self.concurrency,
            dry_run: self.dry_run,
        }
    }
}

/// `pitrix export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The catalog directory to write: new, empty, or a catalog of the same name.
    #[arg(required_unless_present = "print_cluster_role")]
    pub(crate) dir: Option<PathBuf>,
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// kubeconfig context of the host cluster (the one holding the App Store).
    #[arg(long)]
    pub(crate) context: Option<String>,
    /// The catalog's name (default: that of DIR's pitrix.toml, else DIR's own name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Prefix of the environment variables that replace repo credentials and secret-looking
    /// release values (`<PREFIX>_<REPO>_USERNAME`, `<PREFIX>_<RELEASE>_<KEY>`…).
    #[arg(long, value_name = "PREFIX", default_value = "PITRIX")]
    pub(crate) credentials_env_prefix: String,
    /// Namespace of KubeSphere's package storage.
    #[arg(long, default_value = pitrix::objects::labels::STORAGE_NAMESPACE)]
    pub(crate) storage_namespace: String,
    /// Write each package as a chart directory (apps/<app>/<version>/) where re-packing it
    /// loses nothing (pitrix's packer gives the same files back); else as the stored .tgz.
    #[arg(long)]
    pub(crate) unpack: bool,
    /// Show which files would change; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// KubeSphere's S3 store, when it has one (kubesphere.yaml `s3.endpoint`,
    /// `http(s)://host[:port]`): packages and screenshots are read there first, the storage
    /// ConfigMaps only as fallback, and pitrix.toml gets `[storage.s3]`.
    #[arg(long, value_name = "URL", requires = "s3_bucket")]
    pub(crate) s3_endpoint: Option<String>,
    /// The bucket of KubeSphere's S3 store (`s3.bucket`).
    #[arg(long, value_name = "BUCKET", requires = "s3_endpoint")]
    pub(crate) s3_bucket: Option<String>,
    /// Signing region of the S3 store (`s3.region`).
    #[arg(long, value_name = "REGION", default_value = pitrix::catalog::S3Settings::DEFAULT_REGION)]
    pub(crate) s3_region: String,
    /// Path-style addressing, `endpoint/bucket/key` (`s3.forcePathStyle`).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) s3_path_style: bool,
    /// The environment variable holding the S3 access key id (never the key itself).
    #[arg(long, value_name = "VAR", default_value = pitrix::catalog::S3Settings::DEFAULT_ACCESS_KEY_ID_ENV)]
    pub(crate) s3_access_key_id_env: String,
    /// The environment variable holding the S3 secret access key (never the key itself).
    #[arg(long, value_name = "VAR", default_value = pitrix::catalog::S3Settings::DEFAULT_SECRET_ACCESS_KEY_ENV)]
    pub(crate) s3_secret_access_key_env: String,
    /// Print the read-only ClusterRole export needs, and exit.
    #[arg(long, exclusive = true)]
    pub(crate) print_cluster_role: bool,
}

impl ExportArgs {
    pub(crate) fn options(self) -> pitrix::export::ExportOptions {
        pitrix::export::ExportOptions {
            dir: self.dir.unwrap_or_else(|| PathBuf::from(".")),
            cluster: pitrix::cluster::ClusterOptions {
                kubeconfig: self.kubeconfig,
                context: self.context,
                member_kubeconfig: None,
            },
            name: self.name,
            credentials_env_prefix: self.credentials_env_prefix,
            storage_namespace: self.storage_namespace,
            unpack: self.unpack,
            dry_run: self.dry_run,
            s3: self
                .s3_endpoint
                .zip(self.s3_bucket)
                .map(|(endpoint, bucket)| pitrix::catalog::S3Location {
                    endpoint,
                    bucket,
                    region: self.s3_region,
                    path_style: self.s3_path_style,
                    access_key_id_env: self.s3_access_key_id_env,
                    secret_access_key_env: self.s3_secret_access_key_env,
                }),
        }
    }
}

/// `validate --output`: [`Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiagnosticsFormat {
    Text,
    Json,
    Yaml,
    Github,
}

impl From<DiagnosticsFormat> for Format {
    fn from(f: DiagnosticsFormat) -> Self {
        match f {
            DiagnosticsFormat::Text => Format::Text,
            DiagnosticsFormat::Json => Format::Json,
            DiagnosticsFormat::Yaml => Format::Yaml,
            DiagnosticsFormat::Github => Format::Github,
        }
    }
}

/// `diff --output`: [`diff::Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DiffFormat {
    Text,
    Markdown,
    Json,
    Yaml,
}

impl From<DiffFormat> for diff::Format {
    fn from(f: DiffFormat) -> Self {
        match f {
            DiffFormat::Text => diff::Format::Text,
            DiffFormat::Markdown => diff::Format::Markdown,
            DiffFormat::Json => diff::Format::Json,
            DiffFormat::Yaml => diff::Format::Yaml,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    Text,
    Json,
    Yaml,
}

/// `compile --format`: diagnostics formats, and `markdown` for a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompileFormat {
    Text,
    Json,
    Yaml,
    Github,
    Markdown,
}

impl CompileFormat {
    pub(crate) fn diagnostics(self) -> Result<Format, pitrix::Error> {
        match self {
            CompileFormat::Text => Ok(Format::Text),
            CompileFormat::Json => Ok(Format::Json),
            CompileFormat::Yaml => Ok(Format::Yaml),
            CompileFormat::Github => Ok(Format::Github),
            CompileFormat::Markdown => Err(pitrix::Error::InvalidValue(
                "--output markdown needs --diff".into(),
            )),
        }
    }
}
