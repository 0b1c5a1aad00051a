//! Helm repositories, read from outside: the index model ([`index`]) and fetching index.yaml
//! and chart archives over HTTP(S) ([`fetch`]). Used by `pitrix import`, `pitrix lock` and
//! `validate --online`. Never used by compile: compiling stays offline and pure.

pub mod fetch;
pub mod index;

pub use fetch::{Auth, FetchOptions, Fetcher, RepoError, index_url, resolve};
pub use index::{ChartVersion, Filter, Index};

use crate::catalog::Repo;

/// Basic auth for a catalog repo: from the environment variables its credentials name.
pub fn repo_auth(repo: &Repo) -> Result<Option<Auth>, RepoError> {
    let Some(creds) = &repo.spec.credentials else {
        return Ok(None);
    };
    match (&creds.value.username_env, &creds.value.password_env) {
        (Some(u), Some(p)) => Auth::from_env(&u.value, &p.value)
            .map(Some)
            .map_err(|e| RepoError::Credentials(format!("repo `{}`: {e}", repo.name))),
        _ => Ok(None),
    }
}
