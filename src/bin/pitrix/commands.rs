//! The commands that do more than call one library function: compile (and its diff), apply,
//! diff against a cluster, import and lock.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pitrix::Error;
use pitrix::diagnostics::{Diagnostic, Format};
use pitrix::{apply, diff, emit, import, lock, pipeline, repo};

use crate::args::{
    ApplyArgs, CompileFormat, ImportArgs, LiveDiffArgs, NetArgs, OutputFormat, WriteStatusArgs,
};
use crate::catalog::{BuildFor, build, check_options, desired, report};

/// The runtime of a one-shot command. One thread: pitrix mostly waits on the API server, and
/// handing each response between worker threads cost more CPU than the work itself.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    start_runtime(tokio::runtime::Builder::new_current_thread())
}

/// The runtime of `pitrix reconcile`, a long-running server.
pub(crate) fn server_runtime() -> Result<tokio::runtime::Runtime, Error> {
    start_runtime(tokio::runtime::Builder::new_multi_thread())
}

fn start_runtime(mut builder: tokio::runtime::Builder) -> Result<tokio::runtime::Runtime, Error> {
    builder
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the async runtime: {e}")))
}

pub(crate) fn apply(args: ApplyArgs, build_for: BuildFor) -> Result<ExitCode, Error> {
    let desired = match desired(&args.dir, args.from.as_deref(), build_for)? {
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
                    .map_err(|e| Error::InvalidValue(format!("--timeout {}: {e}", args.timeout)))?
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
        Ok::<_, Error>(apply::apply(&clusters, &desired, &opts).await)
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

/// `pitrix write-status`: prints the report; failure when any state could not be written.
pub(crate) fn write_status(args: &WriteStatusArgs) -> Result<ExitCode, Error> {
    let report =
        runtime()?.block_on(pitrix::gitops::write_status::write_status(&args.options()))?;
    match args.json {
        true => print!("{}", report.to_json()),
        false => print!("{}", report.to_text()),
    }
    Ok(match report.failed() {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}

/// `pitrix import URL`.
pub(crate) fn import_charts(args: ImportArgs) -> Result<ExitCode, Error> {
    let mut fetch = args.net.options()?;
    if let (Some(u), Some(p)) = (&args.username_env, &args.password_env) {
        fetch.auth =
            Some(repo::Auth::from_env(u, p).map_err(|e| Error::InvalidValue(e.to_string()))?);
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
pub(crate) fn lock_catalog(dir: &Path, update: bool, net: &NetArgs) -> Result<ExitCode, Error> {
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
pub(crate) fn compile(
    dir: &Path,
    out: &Path,
    format: Format,
    checks: &pipeline::CheckOptions,
    publish: Option<&pitrix::publish::PublishOptions>,
) -> Result<ExitCode, Error> {
    let not_written = format!("{} not written", out.display());
    let Some((catalog, compiled)) = build(dir, checks, format, &not_written) else {
        return Ok(ExitCode::FAILURE);
    };
    let published = match publish.map(|opts| published_files(dir, &catalog, opts)) {
        None => emit::Files::new(),
        Some(Ok(files)) => files,
        Some(Err(errors)) => {
            report(&errors, dir, format, false);
            eprintln!("error: {not_written}: cannot publish");
            return Ok(ExitCode::FAILURE);
        }
    };
    drop(catalog);
    emit::write(out, &compiled, &published).map_err(|e| Error::Message(e.to_string()))?;
    eprintln!(
        "compiled {} objects and {} review states into {}",
        compiled.objects.len(),
        compiled.status.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
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

/// What `compile --diff` compares and how it reports.
pub(crate) struct DiffRequest<'a> {
    pub(crate) base: Option<&'a str>,
    /// diff(1)'s exit status: 1 changes, 2 trouble.
    pub(crate) exit_code: bool,
    pub(crate) diff_out: &'a [PathBuf],
    pub(crate) full_diff_url: Option<String>,
    /// `--env` and `--target`, for both sides.
    pub(crate) build_for: BuildFor<'a>,
}

/// `pitrix compile --diff`: the work tree against a git revision.
pub(crate) fn compile_diff(
    dir: &Path,
    out: Option<&Path>,
    format: CompileFormat,
    request: DiffRequest,
) -> Result<ExitCode, Error> {
    let DiffRequest {
        base,
        exit_code,
        diff_out,
        full_diff_url,
        build_for,
    } = request;
    use std::io::IsTerminal as _;
    let (diff_format, diag_format) = match format {
        CompileFormat::Text => (diff::Format::Text, Format::Text),
        CompileFormat::Markdown => (diff::Format::Markdown, Format::Text),
        CompileFormat::Json => (diff::Format::Json, Format::Json),
        CompileFormat::Yaml => (diff::Format::Yaml, Format::Yaml),
        CompileFormat::Github => {
            return Err(Error::InvalidValue("--diff prints text, markdown or json (`validate --format github` writes annotations)".into()));
        }
    };
    // With --exit-code, 1 means "changes"; trouble is 2, as with diff(1).
    let failure = if exit_code {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    };
    let compared = match diff::revision::compile_diff(dir, base, build_for.env, build_for.target) {
        Ok(c) => c,
        Err(diff::revision::Error::Catalog(diags)) => {
            report(&diags, dir, diag_format, false);
            eprintln!("error: no diff: the catalog has errors");
            return Ok(failure);
        }
        // Git and I/O trouble: exit 2, like every operational error.
        Err(e) => return Err(Error::Message(e.to_string())),
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
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
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
        emit::write(out, &compared.head, &emit::Files::new())
            .map_err(|e| Error::Message(e.to_string()))?;
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
pub(crate) fn live_diff(args: LiveDiffArgs, build_for: BuildFor) -> Result<ExitCode, Error> {
    use std::io::IsTerminal as _;
    // kubectl diff's convention: 0 nothing to change, 1 changes, 2 trouble.
    let failure = ExitCode::from(2);
    let checks = check_options(false, build_for);
    let Some((_, compiled)) = build(&args.dir, &checks, Format::Text, "no diff") else {
        return Ok(failure);
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
    let format = diff::Format::from(args.format);
    let result = runtime()?.block_on(async {
        let clusters = pitrix::cluster::Clusters::connect(&cluster, &compiled.contexts).await?;
        apply::live_diff(&clusters, &compiled, &args.inventory_namespace, &label).await
    });
    let d = match result {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}", pitrix::redact::text(&e.to_string()));
            return Ok(failure);
        }
    };
    let options = diff::render::Options {
        color: format == diff::Format::Text
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        ..diff::render::Options::default()
    };
    print!("{}", diff::render::render(&d, format, &options));
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
