//! What the commands share to find, build and report a catalog: its root, the check options,
//! the one build-then-report, and the desired objects of an apply.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use pitrix::catalog::Catalog;
use pitrix::compile::Compiled;
use pitrix::diagnostics::{Diagnostic, Format, render};
use pitrix::{apply, pipeline, repo};

/// Prints diagnostics: to stdout when they are the requested output, stderr otherwise.
pub(crate) fn report(diags: &[Diagnostic], root: &Path, format: Format, to_stdout: bool) {
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
pub(crate) fn catalog_root(dir: &Path) -> PathBuf {
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

/// What a catalog is built for: `--env` and `--target`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BuildFor<'a> {
    pub(crate) env: Option<&'a str>,
    pub(crate) target: Option<pitrix::catalog::Target>,
}

pub(crate) fn check_options(online: bool, build: BuildFor) -> pipeline::CheckOptions {
    pipeline::CheckOptions {
        online: online.then(repo::FetchOptions::from_env),
        env: build.env.map(str::to_string),
        package_cache: None,
        target: build.target,
        spool: None,
    }
}

/// `$XDG_CACHE_HOME/pitrix/packages`, else `~/.cache/pitrix/packages`.
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("pitrix").join("packages"))
}

/// The desired objects: from an output directory, or compiled now (diagnostics to stderr).
pub(crate) fn desired(
    dir: &Path,
    from: Option<&Path>,
    build_for: BuildFor,
) -> Result<Result<apply::Desired, ExitCode>, pitrix::Error> {
    if let Some(out) = from {
        return apply::Desired::from_output_dir(out).map(Ok);
    }
    Ok(
        match build(
            dir,
            &check_options(false, build_for),
            Format::Text,
            "nothing applied",
        ) {
            Some((_, compiled)) => Ok(apply::Desired::from_compiled(&compiled)),
            None => Err(ExitCode::FAILURE),
        },
    )
}

/// Loads, validates and compiles the catalog at `dir`, its diagnostics (warnings too) on
/// stderr in `format`; `None` when it has errors, after saying what was not done.
pub(crate) fn build(
    dir: &Path,
    checks: &pipeline::CheckOptions,
    format: Format,
    not_done: &str,
) -> Option<(Catalog, Compiled)> {
    match pipeline::build_with(dir, checks) {
        Err(diags) => {
            report(&diags, dir, format, false);
            eprintln!("error: {not_done}: the catalog has errors");
            None
        }
        Ok((catalog, compiled, warnings)) => {
            report(&warnings, dir, format, false);
            Some((catalog, compiled))
        }
    }
}
