//! The `pitrix` command: a thin shell over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pitrix::diagnostics::{Diagnostic, Format, render};
use pitrix::{apply, diff, emit, import, lock, objects, pipeline, repo, scaffold, schema};

#[derive(Parser)]
#[command(name = "pitrix", version, about = "The KubeSphere App Store as code")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Build for an environment of pitrix.toml (`[env.<name>]`: vars, workspace, clusters).
    #[arg(long, global = true, value_name = "NAME")]
    env: Option<String>,
}

/// `--env`, for every command that loads the catalog.
static ENVIRONMENT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Command {
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
        #[arg(short = 'o', long = "output", alias = "format", value_enum, default_value = "text")]
        format: Format,
        /// Check releases of synced-repo charts against the live repo index.
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        cache: CacheArgs,
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
        #[arg(short = 'o', long = "out-dir", visible_alias = "out", value_name = "DIR")]
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
    WriteStatus(pitrix::gitops::write_status::WriteStatusArgs),
    /// Read a live App Store and write a catalog that compiles back to it (secrets become
    /// environment variable names); then `pitrix diff` and `pitrix apply --adopt`.
    Export(pitrix::export::ExportArgs),
    /// Keep a cluster equal to a catalog's git branch or tag: an in-cluster GitOps controller
    /// (drift correction, /healthz, /readyz, /metrics, leader election).
    Reconcile(Box<pitrix::reconcile::Options>),
    /// Print the Namespace, ServiceAccount, RBAC, Deployment and PodDisruptionBudget that run
    /// `pitrix reconcile` (the storage namespace must exist: it is KubeSphere's).
    DeployManifests(Box<pitrix::reconcile::deploy::DeployOptions>),
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
struct ImportArgs {
    /// Base URL of the Helm repository (index.yaml is appended).
    url: String,
    /// The catalog to write into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    catalog: PathBuf,
    /// Charts to import (repeatable, or comma-separated); default: every chart of the index.
    #[arg(long = "chart", value_name = "NAME", value_delimiter = ',')]
    charts: Vec<String>,
    /// How many of the newest versions of each chart.
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "all")]
    versions: usize,
    /// Every version of each chart.
    #[arg(long)]
    all: bool,
    /// Include pre-release versions.
    #[arg(long)]
    devel: bool,
    /// Category of new apps (categories/<name>.yaml must exist).
    #[arg(long)]
    category: Option<String>,
    /// Environment variable holding the repository's user name.
    #[arg(long, value_name = "VAR", requires = "password_env")]
    username_env: Option<String>,
    /// Environment variable holding the repository's password.
    #[arg(long, value_name = "VAR", requires = "username_env")]
    password_env: Option<String>,
    /// Fetch and check everything; write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    net: NetArgs,
}

/// The package cache: validate and compile pack every chart, which is most of their work.
#[derive(clap::Args)]
struct CacheArgs {
    /// Where chart packages are cached between runs, by the digest of their files
    /// (default `$XDG_CACHE_HOME/pitrix/packages`, else `~/.cache/pitrix/packages`).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Pack every chart anew, neither reading nor writing the package cache.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    fn package_cache(self) -> Option<pitrix::chart::PackageCache> {
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
struct NetArgs {
    /// PEM file of CA certificates to trust besides the system's (or PITRIX_CA_FILE).
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Timeout of each request, e.g. `30s`, `2m`.
    #[arg(long, default_value = "60s")]
    timeout: String,
    /// Retries of a request that timed out or failed with 5xx/429.
    #[arg(long, default_value_t = 2)]
    retries: u32,
    /// Largest index.yaml accepted, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    max_index_size: u64,
}

impl NetArgs {
    fn options(&self) -> Result<repo::FetchOptions, String> {
        let seconds = pitrix::duration::parse_seconds(&self.timeout)
            .map_err(|e| format!("--timeout {}: {e}", self.timeout))?;
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
struct ApplyArgs {
    /// The catalog directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Apply an output directory compiled earlier instead (what was reviewed is what is applied).
    #[arg(long, value_name = "OUT")]
    from: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Take over fields that other field managers own.
    #[arg(long)]
    force_conflicts: bool,
    /// Take over objects that exist without this catalog's mark (made in the console, by
    /// another tool or another catalog); without it they are a conflict and nothing is applied.
    #[arg(long)]
    adopt: bool,
    /// Delete orphans: live objects labelled as this catalog's that no inventory lists (after
    /// a lost inventory ConfigMap); without it they are reported and kept.
    #[arg(long)]
    prune_orphans: bool,
    /// Delete and re-create storage ConfigMaps whose package changed (KubeSphere never does).
    #[arg(long)]
    replace_changed_packages: bool,
    /// Allow prune to delete more than max(5, 25 %) of the tracked objects.
    #[arg(long)]
    allow_mass_prune: bool,
    /// Print the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Namespace of the inventory ConfigMap.
    #[arg(long, default_value = "pitrix-system")]
    inventory_namespace: String,
    /// Objects applied at once within a stage.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Wait until every release is active, failing on `failed` or after --timeout.
    #[arg(long)]
    wait: bool,
    /// Ask KubeSphere to sync new or changed repos now (status.state=manualTrigger).
    #[arg(long)]
    sync_repos: bool,
    /// How long --wait waits, e.g. `5m`, `90s`.
    #[arg(long, default_value = "5m")]
    timeout: String,
    /// How long to wait for the catalog's apply lock while another apply (or reconcile)
    /// holds it, e.g. `2m`, `0` (refuse at once).
    #[arg(long, default_value = "60s", value_parser = pitrix::duration::parse)]
    lock_timeout: std::time::Duration,
    /// `text` for people, `json` or `yaml` for machines.
    #[arg(short = 'o', long, alias = "format", value_enum, default_value = "text")]
    output: OutputFormat,
}

#[derive(clap::Args)]
struct LiveDiffArgs {
    /// The catalog directory.
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Namespace of the inventory ConfigMap.
    #[arg(long, default_value = "pitrix-system")]
    inventory_namespace: String,
    /// `text`, `markdown` (a PR comment), `json` or `yaml`.
    #[arg(short = 'o', long = "output", alias = "format", value_enum, default_value = "text")]
    format: diff::Format,
    /// Accepted for compatibility: `pitrix diff` always exits 1 when there are differences
    /// and 2 on trouble, like `kubectl diff`.
    #[arg(long, hide = true)]
    exit_code: bool,
}

#[derive(clap::Args)]
struct ClusterArgs {
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// kubeconfig context.
    #[arg(long)]
    context: Option<String>,
    /// kubeconfig holding the member clusters' contexts (standalone executor Jobs), when not
    /// the one above.
    #[arg(long)]
    member_kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    Text,
    Json,
    Yaml,
}

/// `compile --format`: diagnostics formats, and `markdown` for a diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum CompileFormat {
    Text,
    Json,
    Yaml,
    Github,
    Markdown,
}

impl CompileFormat {
    fn diagnostics(self) -> Result<Format, String> {
        match self {
            CompileFormat::Text => Ok(Format::Text),
            CompileFormat::Json => Ok(Format::Json),
            CompileFormat::Yaml => Ok(Format::Yaml),
            CompileFormat::Github => Ok(Format::Github),
            CompileFormat::Markdown => Err("--output markdown needs --diff".into()),
        }
    }
}

/// The memory bound: an input no budget foresaw (a values template that doubles a string in a
/// few dozen steps, say) must end in an error, not take the machine — on a CI runner it would
/// take the other jobs with it. pitrix caps its own data segment (`RLIMIT_DATA`: the heap and
/// every private anonymous mapping) at `PITRIX_MEMORY_LIMIT` (`4GiB`, `512MiB`, `0` for none;
/// default three quarters of the machine's memory), and an allocation the kernel then refuses
/// ends the run with a message and exit 2 instead of Rust's abort.
struct BoundedAlloc;

// SAFETY: every call is passed to the system allocator unchanged; only a null result (no
// memory) is handled, by ending the process.
unsafe impl std::alloc::GlobalAlloc for BoundedAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, size) };
        if p.is_null() {
            out_of_memory();
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: BoundedAlloc = BoundedAlloc;

/// Says why and exits; allocates nothing (there is no memory left to format with).
fn out_of_memory() -> ! {
    const MESSAGE: &[u8] = b"error[out-of-memory]: pitrix reached its memory limit and stopped\n  = hint: an input needs more memory than PITRIX_MEMORY_LIMIT allows (default: 3/4 of the machine's); a values template that builds huge strings does\n";
    // SAFETY: write(2) of a static buffer, then _exit(2): no unwinding, no destructors, no
    // allocation.
    unsafe {
        libc::write(2, MESSAGE.as_ptr().cast(), MESSAGE.len());
        libc::_exit(2)
    }
}

/// Applies `PITRIX_MEMORY_LIMIT` (see [`BoundedAlloc`]); only ever lowers the limit.
fn limit_memory() -> Result<(), String> {
    let limit = match std::env::var("PITRIX_MEMORY_LIMIT") {
        Ok(text) => parse_bytes(&text).ok_or_else(|| {
            format!("PITRIX_MEMORY_LIMIT={text}: not a size like 4GiB, 512MiB or 0")
        })?,
        // SAFETY: sysconf has no memory effects.
        Err(_) => unsafe {
            let pages = libc::sysconf(libc::_SC_PHYS_PAGES);
            let page = libc::sysconf(libc::_SC_PAGESIZE);
            match pages > 0 && page > 0 {
                true => (pages as u64).saturating_mul(page as u64) / 4 * 3,
                false => 0,
            }
        },
    };
    if limit == 0 {
        return Ok(());
    }
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_DATA, &mut current) != 0 {
            return Ok(());
        }
        let wanted = (limit as libc::rlim_t).min(current.rlim_max);
        if wanted < current.rlim_cur {
            current.rlim_cur = wanted;
            libc::setrlimit(libc::RLIMIT_DATA, &current);
        }
    }
    Ok(())
}

/// `4GiB`, `512MiB`, `100M`, `2G`, `1048576`.
fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" | "KiB" | "k" => 1 << 10,
        "M" | "MB" | "MiB" => 1 << 20,
        "G" | "GB" | "GiB" => 1 << 30,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(factor)
}

fn main() -> ExitCode {
    if let Err(message) = limit_memory() {
        eprintln!("error: {message}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    ENVIRONMENT.get_or_init(|| cli.env.clone());
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {}", pitrix::redact::text(&message));
            ExitCode::from(2)
        }
    }
}

/// Prints diagnostics: to stdout when they are the requested output, stderr otherwise.
fn report(diags: &[Diagnostic], root: &Path, format: Format, to_stdout: bool) {
    if diags.is_empty() && format == Format::Text {
        return;
    }
    let text = render(diags, root, format);
    if to_stdout {
        print!("{text}");
    } else {
        eprint!("{text}");
    }
}

/// The catalog `dir` names: the nearest of it and its parents that holds pitrix.toml, as git
/// finds its repository (so `pitrix validate apps/web/app.yaml` works); `dir` itself when none
/// does (the loader then says pitrix.toml is missing). The search never leaves the git
/// repository it starts in: on a CI runner, a pull request that deletes its pitrix.toml must
/// not make pitrix read a directory above the checkout.
fn catalog_root(dir: &Path) -> PathBuf {
    let start = match dir.is_file() {
        true => dir.parent().unwrap_or(Path::new(".")),
        false => dir,
    };
    let start = if start.as_os_str().is_empty() {
        Path::new(".")
    } else {
        start
    };
    let Ok(absolute) = std::path::absolute(start) else {
        return dir.to_path_buf();
    };
    let mut found = None;
    for d in absolute.ancestors() {
        if d.join(pitrix::catalog::SETTINGS_FILE).is_file() {
            found = Some(d);
            break;
        }
        if d.join(".git").exists() {
            break;
        }
    }
    match found {
        // Kept as the user spelled it when it is already the root (diagnostics show paths
        // joined to it).
        Some(found) if found == absolute => start.to_path_buf(),
        Some(found) => found.to_path_buf(),
        None => dir.to_path_buf(),
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::New { dir, name } => {
            let name = match name {
                Some(n) => n,
                None => scaffold::name_for(&dir)?,
            };
            let written = scaffold::new_named(&dir, &name).map_err(|e| e.to_string())?;
            println!(
                "created catalog `{name}` in {} with {} files",
                dir.display(),
                written.len()
            );
            println!(
                "next: pitrix validate {0} && pitrix compile {0} -o out",
                dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate {
            dir,
            format,
            online,
            cache,
        } => {
            let checks = pipeline::CheckOptions {
                package_cache: cache.package_cache(),
                ..check_options(online)
            };
            let dir = catalog_root(&dir);
            let (_catalog, diags) = pipeline::check_with(&dir, &checks);
            let failed = diags.iter().any(Diagnostic::is_error);
            report(&diags, &dir, format, true);
            if !failed && format == Format::Text {
                println!("{}: catalog is valid", dir.display());
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Compile {
            dir,
            out,
            format,
            diff,
            base,
            exit_code,
            diff_out,
            full_diff_url,
            ..
        } if diff => compile_diff(
            &catalog_root(&dir),
            out.as_deref(),
            format,
            base.as_deref(),
            exit_code,
            &diff_out,
            full_diff_url,
        ),
        Command::Compile {
            dir,
            out,
            format,
            publish,
            base_url,
            online,
            cache,
            ..
        } => {
            let dir = catalog_root(&dir);
            let out = out.unwrap_or_else(|| PathBuf::from("out"));
            let format = format.diagnostics()?;
            let publish = publish.then_some(pitrix::publish::PublishOptions { base_url });
            let checks = pipeline::CheckOptions {
                package_cache: cache.package_cache(),
                ..check_options(online)
            };
            compile(&dir, &out, format, &checks, publish.as_ref())
        }
        Command::Import(args) => import_charts(args),
        Command::Lock { dir, update, net } => lock_catalog(&dir, update, &net),
        Command::Apply(args) => apply(args),
        Command::Diff(args) => live_diff(args),
        Command::WriteStatus(args) => pitrix::gitops::write_status::main(args),
        Command::Export(args) => pitrix::export::main(args),
        Command::Reconcile(mut opts) => {
            opts.env = ENVIRONMENT.get().cloned().flatten();
            server_runtime()?.block_on(pitrix::reconcile::run(*opts))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeployManifests(mut opts) => {
            opts.env = ENVIRONMENT.get().cloned().flatten();
            // Replicas elect a leader: timings out of order would crash-loop every one.
            opts.controller.check(true)?;
            let manifests = pitrix::reconcile::deploy::manifests(&opts);
            print!("{}", pitrix::reconcile::deploy::to_yaml(&manifests));
            Ok(ExitCode::SUCCESS)
        }
        Command::Crds => {
            print!("{}", objects::crds_yaml());
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { name, out } => {
            let schemas = schema::catalog_schemas();
            let kind = |file: &str| file.trim_end_matches(".schema.json").to_string();
            match (name, out) {
                (_, Some(dir)) => {
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    for (name, text) in schemas {
                        std::fs::write(dir.join(name), text).map_err(|e| e.to_string())?;
                    }
                }
                // One JSON document, so that `pitrix schema app | jq` works.
                (Some(name), None) => match schemas.iter().find(|(f, _)| kind(f) == name) {
                    Some((_, text)) => print!("{text}"),
                    None => {
                        let names: Vec<String> = schemas.iter().map(|(f, _)| kind(f)).collect();
                        return Err(format!("no schema `{name}`; one of: {}", names.join(", ")));
                    }
                },
                (None, None) => {
                    for (file, _) in &schemas {
                        println!("{}", kind(file));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!(
                "pitrix {} ({}/{})",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completion { shell } => {
            use clap::CommandFactory as _;
            clap_complete::generate(shell, &mut Cli::command(), "pitrix", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { out } => {
            use clap::CommandFactory as _;
            let command = Cli::command();
            match out {
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                    clap_mangen::generate_to(command, &dir).map_err(|e| e.to_string())?;
                }
                None => clap_mangen::Man::new(command)
                    .render(&mut std::io::stdout())
                    .map_err(|e| e.to_string())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The desired objects: from an output directory, or compiled now (diagnostics to stderr).
fn desired(dir: &Path, from: Option<&Path>) -> Result<Result<apply::Desired, ExitCode>, String> {
    if let Some(out) = from {
        return apply::Desired::from_output_dir(out).map(Ok);
    }
    match pipeline::build_with(dir, &check_options(false)).map(|(_, c, w)| (c, w)) {
        Err(diags) => {
            report(&diags, dir, Format::Text, false);
            eprintln!("error: nothing applied: the catalog has errors");
            Ok(Err(ExitCode::FAILURE))
        }
        Ok((compiled, warnings)) => {
            report(&warnings, dir, Format::Text, false);
            Ok(Ok(apply::Desired::from_compiled(&compiled)))
        }
    }
}

/// The runtime of a one-shot command. One thread: pitrix mostly waits on the API server, and
/// handing each response between worker threads cost more CPU than the work itself.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    start_runtime(tokio::runtime::Builder::new_current_thread())
}

/// The runtime of `pitrix reconcile`, a long-running server.
fn server_runtime() -> Result<tokio::runtime::Runtime, String> {
    start_runtime(tokio::runtime::Builder::new_multi_thread())
}

fn start_runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, String> {
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn apply(args: ApplyArgs) -> Result<ExitCode, String> {
    let desired = match desired(&args.dir, args.from.as_deref())? {
        Ok(d) => d,
        Err(code) => return Ok(code),
    };
    let opts = apply::ApplyOptions {
        force_conflicts: args.force_conflicts,
        adopt: args.adopt,
        prune_orphans: args.prune_orphans,
        replace_changed_packages: args.replace_changed_packages,
        allow_mass_prune: args.allow_mass_prune,
        dry_run: args.dry_run,
        inventory_namespace: args.inventory_namespace,
        concurrency: args.concurrency,
        sync_repos: args.sync_repos,
        wait: match args.wait {
            true => Some(std::time::Duration::from_secs(
                pitrix::duration::parse_seconds(&args.timeout)
                    .map_err(|e| format!("--timeout {}: {e}", args.timeout))?
                    as u64,
            )),
            false => None,
        },
        lock_timeout: args.lock_timeout,
        ..apply::ApplyOptions::default()
    };
    let cluster = pitrix::cluster::ClusterOptions {
        kubeconfig: args.cluster.kubeconfig,
        context: args.cluster.context,
        member_kubeconfig: args.cluster.member_kubeconfig,
    };
    let report = runtime()?.block_on(async {
        let clusters = pitrix::cluster::Clusters::connect(&cluster, &desired.contexts).await?;
        Ok::<_, String>(apply::apply(&clusters, &desired, &opts).await)
    })?;
    match args.output {
        OutputFormat::Text => print!("{}", report.to_text()),
        OutputFormat::Json => print!("{}", report.to_json()),
        OutputFormat::Yaml => print!("{}", pitrix::diagnostics::json_as_yaml(&report.to_json())),
    }
    Ok(if report.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn check_options(online: bool) -> pipeline::CheckOptions {
    pipeline::CheckOptions {
        online: online.then(repo::FetchOptions::from_env),
        env: ENVIRONMENT.get().cloned().flatten(),
        package_cache: None,
    }
}

/// `$XDG_CACHE_HOME/pitrix/packages`, else `~/.cache/pitrix/packages`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pitrix").join("packages"))
}

/// `pitrix import URL`.
fn import_charts(args: ImportArgs) -> Result<ExitCode, String> {
    let mut fetch = args.net.options()?;
    if let (Some(u), Some(p)) = (&args.username_env, &args.password_env) {
        fetch.auth = Some(repo::Auth::from_env(u, p).map_err(|e| e.to_string())?);
    }
    let opts = import::ImportOptions {
        url: args.url,
        charts: args.charts,
        versions: if args.all {
            import::Versions::All
        } else {
            import::Versions::Newest(args.versions.max(1))
        },
        devel: args.devel,
        category: args.category,
        fetch,
        dry_run: args.dry_run,
    };
    match import::import(&args.catalog, &opts) {
        Ok(report) => {
            for action in &report.actions {
                println!("{action}");
            }
            match (report.changed(), opts.dry_run) {
                (false, _) => println!("nothing to import: the catalog is up to date"),
                (true, true) => println!("dry run: nothing written"),
                (true, false) => println!(
                    "imported into {} ({} files); next: pitrix validate {}",
                    args.catalog.display(),
                    report.written.len(),
                    args.catalog.display()
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            for p in &problems {
                eprintln!("error: {p}");
            }
            eprintln!("error: nothing imported");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `pitrix lock`.
fn lock_catalog(dir: &Path, update: bool, net: &NetArgs) -> Result<ExitCode, String> {
    let (catalog, diags) = pitrix::load::load(dir);
    let diags = diags.into_sorted();
    if diags.iter().any(Diagnostic::is_error) {
        report(&diags, dir, Format::Text, false);
        eprintln!(
            "error: {} not written: the catalog has errors",
            lock::LOCK_FILE
        );
        return Ok(ExitCode::FAILURE);
    }
    let opts = lock::LockOptions {
        fetch: net.options()?,
        update,
    };
    match lock::lock(dir, &catalog, &opts) {
        Ok(outcome) => {
            for line in &outcome.lines {
                println!("{line}");
            }
            println!(
                "{}: {}",
                dir.join(lock::LOCK_FILE).display(),
                if outcome.changed {
                    "written"
                } else {
                    "up to date"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            report(&errors, dir, Format::Text, false);
            eprintln!("error: {} not written", lock::LOCK_FILE);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `pitrix compile` without --diff.
fn compile(
    dir: &Path,
    out: &Path,
    format: Format,
    checks: &pipeline::CheckOptions,
    publish: Option<&pitrix::publish::PublishOptions>,
) -> Result<ExitCode, String> {
    match pipeline::build_with(dir, checks) {
        Err(diags) => {
            report(&diags, dir, format, false);
            eprintln!(
                "error: {} not written: the catalog has errors",
                out.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Ok((catalog, compiled, warnings)) => {
            report(&warnings, dir, format, false);
            let published = match publish.map(|opts| published_files(dir, &catalog, opts)) {
                None => emit::Files::new(),
                Some(Ok(files)) => files,
                Some(Err(errors)) => {
                    report(&errors, dir, format, false);
                    eprintln!("error: {} not written: cannot publish", out.display());
                    return Ok(ExitCode::FAILURE);
                }
            };
            drop(catalog);
            emit::write(out, &compiled, &published).map_err(|e| e.to_string())?;
            eprintln!(
                "compiled {} objects and {} review states into {}",
                compiled.objects.len(),
                compiled.status.len(),
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// out/charts/ and out/site/.
fn published_files(
    dir: &Path,
    catalog: &pitrix::catalog::Catalog,
    opts: &pitrix::publish::PublishOptions,
) -> Result<emit::Files, Vec<Diagnostic>> {
    use pitrix::diagnostics::Code;
    let versions: Vec<PathBuf> = pitrix::publish::published(catalog)
        .iter()
        .map(|(_, v)| v.path.clone())
        .collect();
    let created = pitrix::publish::created::resolve(dir, &versions);
    let mut files = pitrix::publish::render(catalog, opts, &created)?;
    let lock = lock::Lock::read(dir).ok().flatten();
    let site = pitrix::site::render(dir, catalog, lock.as_ref()).map_err(|e| {
        vec![Diagnostic::error(Code::InvalidValue, e).in_file(pitrix::site::OVERRIDE_DIR)]
    })?;
    files.extend(site);
    Ok(files)
}

/// `pitrix compile --diff`: the work tree against a git revision.
fn compile_diff(
    dir: &Path,
    out: Option<&Path>,
    format: CompileFormat,
    base: Option<&str>,
    exit_code: bool,
    diff_out: &[PathBuf],
    full_diff_url: Option<String>,
) -> Result<ExitCode, String> {
    use std::io::IsTerminal as _;
    let (diff_format, diag_format) = match format {
        CompileFormat::Text => (diff::Format::Text, Format::Text),
        CompileFormat::Markdown => (diff::Format::Markdown, Format::Text),
        CompileFormat::Json => (diff::Format::Json, Format::Json),
        CompileFormat::Yaml => (diff::Format::Yaml, Format::Yaml),
        CompileFormat::Github => {
            return Err("--diff prints text, markdown or json (`validate --format github` writes annotations)".into());
        }
    };
    // With --exit-code, 1 means "changes"; trouble is 2, as with diff(1).
    let failure = if exit_code {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    };
    let env = ENVIRONMENT.get().cloned().flatten();
    let compared = match diff::revision::compile_diff(dir, base, env.as_deref()) {
        Ok(c) => c,
        Err(diff::revision::Error::Catalog(diags)) => {
            report(&diags, dir, diag_format, false);
            eprintln!("error: no diff: the catalog has errors");
            return Ok(failure);
        }
        // Git and I/O trouble: exit 2, like every operational error.
        Err(e) => return Err(e.to_string()),
    };
    let mut diags = compared.warnings.clone();
    diags.extend(compared.base_problems.iter().cloned());
    diags.extend(compared.diff.diagnostics());
    report(&diags, dir, diag_format, false);
    let s = &compared.stats;
    eprintln!(
        "compared with {}: {} app(s) shared with the work tree, {} read from git ({} files); work tree {:.2}s, base {:.2}s, diff {:.2}s",
        compared
            .diff
            .base
            .as_ref()
            .map(|b| b.label.as_str())
            .unwrap_or("base"),
        s.apps_shared,
        s.apps_loaded,
        s.files_read,
        s.head_time.as_secs_f64(),
        s.base_time.as_secs_f64(),
        s.diff_time.as_secs_f64(),
    );

    for path in diff_out {
        let full = diff::render::Options {
            color: false,
            limit: None,
            full_diff: None,
        };
        let text = diff::render::render(&compared.diff, diff::Format::for_path(path), &full);
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let color = diff_format == diff::Format::Text
        && std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let options = diff::render::Options {
        color,
        full_diff: full_diff_url,
        ..diff::render::Options::default()
    };
    print!(
        "{}",
        diff::render::render(&compared.diff, diff_format, &options)
    );

    if let Some(out) = out.filter(|_| compared.diff.errors.is_empty()) {
        emit::write(out, &compared.head, &emit::Files::new()).map_err(|e| e.to_string())?;
        eprintln!("compiled into {}", out.display());
    }
    Ok(if !compared.diff.errors.is_empty() {
        failure
    } else if exit_code && compared.diff.has_changes() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `pitrix diff`: the catalog against the live cluster.
fn live_diff(args: LiveDiffArgs) -> Result<ExitCode, String> {
    use std::io::IsTerminal as _;
    // kubectl diff's convention: 0 nothing to change, 1 changes, 2 trouble.
    let failure = ExitCode::from(2);
    let compiled =
        match pipeline::build_with(&args.dir, &check_options(false)).map(|(_, c, w)| (c, w)) {
            Err(diags) => {
                report(&diags, &args.dir, Format::Text, false);
                eprintln!("error: no diff: the catalog has errors");
                return Ok(failure);
            }
            Ok((compiled, warnings)) => {
                report(&warnings, &args.dir, Format::Text, false);
                compiled
            }
        };
    let cluster = pitrix::cluster::ClusterOptions {
        kubeconfig: args.cluster.kubeconfig,
        context: args.cluster.context.clone(),
        member_kubeconfig: args.cluster.member_kubeconfig,
    };
    let label = format!(
        "cluster{}",
        args.cluster
            .context
            .map(|c| format!(" ({c})"))
            .unwrap_or_default()
    );
    let result = runtime()?.block_on(async {
        let clusters = pitrix::cluster::Clusters::connect(&cluster, &compiled.contexts).await?;
        apply::live_diff(&clusters, &compiled, &args.inventory_namespace, &label).await
    });
    let d = match result {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}", pitrix::redact::text(&e));
            return Ok(failure);
        }
    };
    let options = diff::render::Options {
        color: args.format == diff::Format::Text
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        ..diff::render::Options::default()
    };
    print!("{}", diff::render::render(&d, args.format, &options));
    let problems = d.diagnostics();
    if !problems.is_empty() {
        report(&problems, &args.dir, Format::Text, false);
        return Ok(failure);
    }
    Ok(if d.has_changes() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
