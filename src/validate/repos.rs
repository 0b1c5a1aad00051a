//! Repos: URL scheme, sync period, credentials named by environment variable.

use crate::catalog::Catalog;
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::duration::parse_seconds;
use crate::redact;

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    for repo in &catalog.repos {
        let spec = &repo.spec;
        let url = spec.url.value.as_str();
        let scheme_ok = ["https://", "http://", "oci://"]
            .iter()
            .any(|s| url.starts_with(s) && url.len() > s.len());
        if !scheme_ok {
            diags.push(
                Diagnostic::error(
                    Code::RepoUrl,
                    format!(
                        "repo URL `{}` is neither http(s):// nor oci://",
                        redact::text(url)
                    ),
                )
                .in_file(&repo.file)
                .at(spec.url.pos)
                .hint(
                    "KubeSphere fetches <url>/index.yaml over http(s), or lists an oci:// registry",
                ),
            );
        } else if url.contains('@')
            && url
                .split("://")
                .nth(1)
                .is_some_and(|rest| rest.split('/').next().unwrap_or("").contains('@'))
        {
            diags.push(
                Diagnostic::error(Code::LiteralSecret, "repo URL carries user info (credentials) in plain text")
                    .in_file(&repo.file)
                    .at(spec.url.pos)
                    .hint("remove `user:password@` and use `credentials: {usernameEnv: …, passwordEnv: …}`"),
            );
        }
        if let Some(period) = &spec.sync_period
            && let Err(why) = parse_seconds(&period.value)
        {
            diags.push(
                Diagnostic::error(
                    Code::InvalidDuration,
                    format!("syncPeriod `{}`: {why}", period.value),
                )
                .in_file(&repo.file)
                .at(period.pos)
                .hint("write a duration like `1h`, `30m` or `0` (never sync automatically)"),
            );
        }
        if let Some(creds) = &spec.credentials {
            let vars = [&creds.value.username_env, &creds.value.password_env];
            for var in vars.into_iter().flatten() {
                let ok = !var.value.is_empty()
                    && !var.value.starts_with(|c: char| c.is_ascii_digit())
                    && var
                        .value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    diags.push(
                        Diagnostic::error(
                            Code::InvalidValue,
                            format!("`{}` is not an environment variable name", var.value),
                        )
                        .in_file(&repo.file)
                        .at(var.pos)
                        .hint("credentials name environment variables (e.g. `REPO_PASSWORD`), never the secret itself"),
                    );
                }
            }
            if creds.value.username_env.is_some() != creds.value.password_env.is_some() {
                diags.push(
                    Diagnostic::error(
                        Code::MissingKey,
                        "credentials need both usernameEnv and passwordEnv",
                    )
                    .in_file(&repo.file)
                    .at(creds.pos)
                    .hint("KubeSphere sends basic auth only when both are set"),
                );
            }
        }
    }
}
