//! Releases of synced-repo charts (`app: bitnami/redis`) checked against the repo's index:
//! offline against `pitrix.lock`, online (`--online`) against the live index.
//!
//! - online: a chart or version the index lacks is an error, and so is a locked digest the
//!   index no longer serves; an index that cannot be fetched is an error on the repo file;
//! - offline: a lock entry (for the repo's current URL) verifies the release;
//! - neither: a warning that the release is unverified — it still compiles, and KubeSphere's
//!   repo sync decides at install time.
//!
//! Unlike the other rules this one needs the catalog's root (for the lock) and, online, the
//! network, so the pipeline calls it with its options ([`crate::pipeline::CheckOptions`]).

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::{Catalog, Release};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::lock::{self, LOCK_FILE, Lock, Reference};
use crate::repo::{FetchOptions, Filter};

/// Checks the catalog at `root`; `online` fetches each referenced repo's index once.
pub fn check(root: &Path, catalog: &Catalog, online: Option<&FetchOptions>) -> Diagnostics {
    let mut diags = Diagnostics::default();
    let refs = lock::references(catalog);
    let lock_file = match Lock::read(root) {
        Ok(l) => l,
        Err(e) => {
            diags.push(
                Diagnostic::error(Code::LockInvalid, format!("{LOCK_FILE}: {e}"))
                    .in_file(LOCK_FILE)
                    .hint("delete it and run `pitrix lock` to write it again"),
            );
            None
        }
    };
    let lock_text =
        crate::confine::read_to_string(root, std::path::Path::new(LOCK_FILE)).unwrap_or_default();
    let mut by_repo: BTreeMap<&str, Vec<(&Reference, &Vec<&Release>)>> = BTreeMap::new();
    for (reference, releases) in &refs {
        by_repo
            .entry(reference.repo.as_str())
            .or_default()
            .push((reference, releases));
    }
    for (repo_name, wanted) in by_repo {
        let Some(repo) = catalog.repo(repo_name) else {
            continue;
        };
        let url = &repo.spec.url.value;
        let locked = |r: &Reference| {
            lock_file
                .as_ref()
                .and_then(|l| l.entry(&r.repo, url, &r.chart, &r.version))
        };
        let index = match online {
            Some(opts) if lock::has_index(repo) => {
                let filter = Filter::only(wanted.iter().map(|(r, _)| r.chart.clone()));
                match lock::fetcher(repo, opts).and_then(|f| f.index(&filter)) {
                    Ok(index) => Some(index),
                    Err(e) => {
                        diags.push(lock::index_error(repo, &e));
                        continue;
                    }
                }
            }
            _ => None,
        };
        for (reference, releases) in wanted {
            for release in releases {
                match &index {
                    Some(index) => match lock::lookup(index, reference, release) {
                        Err(d) => diags.push(d),
                        Ok(entry) => {
                            let live = entry.digest_hex().map(|d| format!("sha256:{d}"));
                            if let (Some(old), Some(live)) = (locked(reference), live)
                                && old.digest != live
                            {
                                diags.push(
                                    Diagnostic::error(
                                        Code::LockMismatch,
                                        format!(
                                            "{}/{} {}: the repo now serves digest {live}, but {LOCK_FILE} has {}",
                                            reference.repo, reference.chart, reference.version, old.digest
                                        ),
                                    )
                                    .in_file(LOCK_FILE)
                                    .at_opt(lock::pos_in_lock(&lock_text, &reference.chart, &reference.version))
                                    .hint("a published chart version changed upstream; review it, then `pitrix lock --update`"),
                                );
                            }
                        }
                    },
                    None if locked(reference).is_some() => {}
                    None => diags.push(unverified(catalog, reference, release, &lock_file)),
                }
            }
        }
    }
    diags
}

fn unverified(
    catalog: &Catalog,
    reference: &Reference,
    release: &Release,
    lock_file: &Option<Lock>,
) -> Diagnostic {
    let repo = catalog.repo(&reference.repo);
    let oci = repo.is_some_and(|r| !lock::has_index(r));
    let stale = lock_file
        .as_ref()
        .and_then(|l| l.repo(&reference.repo))
        .zip(repo)
        .is_some_and(|(locked, repo)| !lock::same_url(&locked.url, &repo.spec.url.value));
    let why = if oci {
        "an oci:// repository has no index to check it against".to_string()
    } else if stale {
        format!(
            "{LOCK_FILE} was written for another URL of repo `{}`",
            reference.repo
        )
    } else {
        format!("{LOCK_FILE} has no entry for it")
    };
    Diagnostic::warning(
        Code::UnverifiedRelease,
        format!(
            "release `{}` installs {}/{} {}, unverified: {why}; KubeSphere's repo sync decides at install time",
            release.name, reference.repo, reference.chart, reference.version
        ),
    )
    .in_file(&release.file)
    .at(release.spec.version.pos)
    .hint(if oci {
        "check the tag exists in the registry before merging".to_string()
    } else {
        "run `pitrix lock` to record it, or validate with --online".to_string()
    })
}
