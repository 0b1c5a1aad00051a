//! The stages joined: what `validate` and `compile` run.

use std::path::Path;

use crate::catalog::Catalog;
use crate::chart::PackageCache;
use std::sync::Mutex;

use crate::compile::{Compiled, Object, compile, compile_each, size};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::error::Error;
use crate::load::{LoadOptions, load_with};
use crate::repo::FetchOptions;
use crate::validate::{self, validate};

/// Checks that need more than the catalog: the lock file beside it, the network.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Check releases of synced-repo charts against the live repo index (`--online`).
    pub online: Option<FetchOptions>,
    /// The environment (`--env`) to load the catalog for.
    pub env: Option<String>,
    /// Reuse chart packages built before (`--cache-dir`).
    pub package_cache: Option<PackageCache>,
    /// Compile for this target, whatever pitrix.toml says (`--target`).
    pub target: Option<crate::catalog::Target>,
    /// Keep packages in this directory instead of memory ([`crate::load::LoadOptions::spool`]).
    pub spool: Option<std::path::PathBuf>,
}

/// Load and validate: the catalog and every diagnostic, sorted.
pub fn check(root: &Path) -> (Catalog, Vec<Diagnostic>) {
    check_with(root, &CheckOptions::default())
}

/// [`check`] with options. A catalog that validates is also compiled, for the checks on the
/// compiled objects (their size: [`crate::compile::size`]).
pub fn check_with(root: &Path, opts: &CheckOptions) -> (Catalog, Vec<Diagnostic>) {
    let (catalog, mut diags) = load_and_validate(root, opts);
    if !diags.has_errors() {
        match compile(&catalog) {
            Ok(compiled) => diags.extend(size::problems(&catalog, &compiled)),
            Err(e) => diags.push(crate::catalog::spool_error(&e, None)),
        }
    }
    (catalog, diags.into_sorted())
}

/// Every check on the catalog itself: loading, the validation rules, the lock.
fn load_and_validate(root: &Path, opts: &CheckOptions) -> (Catalog, Diagnostics) {
    let load_opts = LoadOptions {
        env: opts.env.clone(),
        package_cache: opts.package_cache.clone(),
        target: opts.target,
        spool: opts.spool.clone(),
    };
    let (catalog, mut diags) = load_with(root, &load_opts);
    diags.extend(validate(&catalog));
    diags.extend(validate::lock::check(root, &catalog, opts.online.as_ref()));
    (catalog, diags)
}

/// Load, validate and compile. Errors mean nothing was compiled; warnings come with the result.
pub fn build(root: &Path) -> Result<(Compiled, Vec<Diagnostic>), Vec<Diagnostic>> {
    build_with(root, &CheckOptions::default()).map(|(_, compiled, diags)| (compiled, diags))
}

/// [`build`] with options, also returning the catalog (publishing and the site read it).
pub fn build_with(
    root: &Path,
    opts: &CheckOptions,
) -> Result<(Catalog, Compiled, Vec<Diagnostic>), Vec<Diagnostic>> {
    build_each(root, opts, Ok)
}

/// [`build_with`], each compiled object handed to `each` as it is made ([`compile_each`]).
pub fn build_each<T: Send>(
    root: &Path,
    opts: &CheckOptions,
    each: impl Fn(Object) -> Result<T, Error> + Sync,
) -> Result<(Catalog, Compiled<T>, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (catalog, mut diags) = load_and_validate(root, opts);
    if diags.has_errors() {
        return Err(diags.into_sorted());
    }
    let too_large = Mutex::new(Vec::new());
    let compiled = compile_each(&catalog, |o| {
        if let Some(d) = size::problem(&catalog, &o) {
            too_large.lock().unwrap_or_else(|p| p.into_inner()).push(d);
        }
        each(o)
    });
    let compiled = match compiled {
        Ok(compiled) => compiled,
        Err(e) => {
            diags.push(crate::catalog::spool_error(&e, None));
            return Err(diags.into_sorted());
        }
    };
    diags.extend(size::sorted(
        too_large.into_inner().unwrap_or_else(|p| p.into_inner()),
    ));
    let diags = diags.into_sorted();
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok((catalog, compiled, diags))
}
