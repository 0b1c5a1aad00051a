//! Fetching from a Helm repository over HTTP(S): index.yaml and chart archives, with
//! timeouts, a size cap read while streaming, basic auth (sent only to the repository's own
//! origin), a custom CA, retries with backoff for what can heal (timeouts, connection errors,
//! 5xx, 429) and a redirect limit. Every error says what failed, where, and what to do.

use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use reqwest::blocking::{Client, Response};

use super::index::{self, Filter, Index};
use crate::redact;

/// HTTP basic-auth credentials. Never printed.
#[derive(Clone)]
pub struct Auth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Auth(***)")
    }
}

impl Auth {
    /// Credentials from two environment variables; both must be set (KubeSphere sends basic
    /// auth only when both are non-empty).
    pub fn from_env(username_var: &str, password_var: &str) -> Result<Auth, RepoError> {
        let read = |var: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    RepoError::Credentials(format!("environment variable {var} is not set"))
                })
        };
        Ok(Auth {
            username: read(username_var)?,
            password: read(password_var)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Whole-request timeout (connect, send, read the body).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Largest index.yaml accepted.
    pub max_index_bytes: u64,
    /// Largest chart archive accepted.
    pub max_chart_bytes: u64,
    /// Attempts after the first, for timeouts, connection errors, 5xx and 429.
    pub retries: u32,
    /// First backoff; doubled after each attempt.
    pub backoff: Duration,
    pub max_redirects: usize,
    /// PEM file of extra CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    pub auth: Option<Auth>,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_index_bytes: 64 * 1024 * 1024,
            max_chart_bytes: 16 * 1024 * 1024,
            retries: 2,
            backoff: Duration::from_millis(250),
            max_redirects: 5,
            ca_file: None,
            auth: None,
        }
    }
}

impl FetchOptions {
    /// The defaults, with `PITRIX_CA_FILE` as the extra CA when it is set.
    pub fn from_env() -> Self {
        FetchOptions {
            ca_file: std::env::var_os("PITRIX_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            ..FetchOptions::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoError {
    /// The URL does not parse or is not http(s).
    Url(String),
    /// The CA file cannot be read or holds no certificate.
    Ca(String),
    /// Credential environment variables missing.
    Credentials(String),
    /// No answer in time.
    Timeout {
        url: String,
        after: Duration,
    },
    /// Connection refused, TLS failure, reset …
    Transport {
        url: String,
        message: String,
    },
    TooManyRedirects {
        url: String,
        limit: usize,
    },
    /// 401/403.
    Unauthorized {
        url: String,
        status: u16,
        sent: bool,
    },
    Status {
        url: String,
        status: u16,
    },
    TooLarge {
        url: String,
        limit: u64,
    },
    Malformed {
        url: String,
        error: index::ParseError,
    },
    DigestMismatch {
        url: String,
        expected: String,
        actual: String,
    },
}

impl fmt::Display for RepoError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let r = |s: &str| redact::text(s);
        match self {
            RepoError::Url(m) | RepoError::Ca(m) | RepoError::Credentials(m) => f.write_str(m),
            RepoError::Timeout { url, after } => write!(
                f,
                "{}: no answer within {}s (timed out, after retries)",
                r(url),
                after.as_secs_f64()
            ),
            RepoError::Transport { url, message } => write!(f, "{}: {}", r(url), r(message)),
            RepoError::TooManyRedirects { url, limit } => write!(
                f,
                "{}: more than {limit} redirects (a redirect loop?)",
                r(url)
            ),
            RepoError::Unauthorized { url, status, sent } if *sent => write!(
                f,
                "{}: HTTP {status}: the repository refused the credentials (wrong user name or password?)",
                r(url)
            ),
            RepoError::Unauthorized { url, status, .. } => write!(
                f,
                "{}: HTTP {status}: the repository needs credentials",
                r(url)
            ),
            RepoError::Status { url, status } => {
                let reason = reqwest::StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{}: HTTP {status} {reason}", r(url))
            }
            RepoError::TooLarge { url, limit } => write!(
                f,
                "{}: larger than the limit of {} bytes; refused",
                r(url),
                limit
            ),
            RepoError::Malformed { url, error } => {
                write!(f, "{}: not a valid Helm repository index: {error}", r(url))
            }
            RepoError::DigestMismatch {
                url,
                expected,
                actual,
            } => write!(
                f,
                "{}: sha256 {actual} does not match the index's digest {expected}; refused",
                r(url)
            ),
        }
    }
}

impl std::error::Error for RepoError {}

impl RepoError {
    /// A hint for people: what to do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            RepoError::Url(_) => {
                "give the repository's base URL, e.g. https://charts.example.com/stable"
            }
            RepoError::Ca(_) => "--ca-file (or PITRIX_CA_FILE) names a PEM file of CA certificates",
            RepoError::Credentials(_) => {
                "export the environment variables the repo's credentials name"
            }
            RepoError::Timeout { .. } => {
                "check the URL and the network; raise --timeout for a slow repository"
            }
            RepoError::Transport { .. } => {
                "check the URL, the network, and for TLS errors the CA (--ca-file)"
            }
            RepoError::TooManyRedirects { .. } => {
                "the server redirects in circles; use the final URL"
            }
            RepoError::Unauthorized { sent: true, .. } => {
                "check the values of the credential environment variables"
            }
            RepoError::Unauthorized { .. } => {
                "name the credentials' environment variables (--username-env/--password-env, or the repo's credentials)"
            }
            RepoError::Status { .. } => {
                "check the URL: the repository's base URL, without index.yaml"
            }
            RepoError::TooLarge { .. } => {
                "raise the limit (--max-index-size) if the repository is really that large"
            }
            RepoError::Malformed { .. } => {
                "the URL must serve a Helm repository (index.yaml with apiVersion v1 and entries)"
            }
            RepoError::DigestMismatch { .. } => {
                "the archive is not what the index describes: a broken mirror or a tampered chart"
            }
        }
    }

    /// Whether trying again may help.
    fn transient(&self) -> bool {
        match self {
            RepoError::Timeout { .. } | RepoError::Transport { .. } => true,
            RepoError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The URL of a repository's index: the base URL, a `/`, `index.yaml` (as KubeSphere does).
pub fn index_url(repo_url: &str) -> String {
    format!("{}/index.yaml", repo_url.trim_end_matches('/'))
}

/// A chart URL from an index resolved against the repository (Helm's ResolveReferenceURL:
/// relative to the repository's base URL with a trailing slash).
pub fn resolve(repo_url: &str, chart_url: &str) -> Result<String, RepoError> {
    let base = Url::parse(&format!("{}/", repo_url.trim_end_matches('/')))
        .map_err(|e| RepoError::Url(format!("`{}` is not a URL: {e}", redact::text(repo_url))))?;
    base.join(chart_url).map(String::from).map_err(|e| {
        RepoError::Url(format!(
            "chart URL `{}` does not resolve: {e}",
            redact::text(chart_url)
        ))
    })
}

/// A client for one repository.
pub struct Fetcher {
    client: Client,
    opts: FetchOptions,
    repo_url: Url,
}

impl Fetcher {
    pub fn new(repo_url: &str, opts: FetchOptions) -> Result<Fetcher, RepoError> {
        let parsed = Url::parse(repo_url).map_err(|e| {
            RepoError::Url(format!("`{}` is not a URL: {e}", redact::text(repo_url)))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(RepoError::Url(format!(
                "`{}`: only http(s) repositories have an index.yaml (oci:// registries do not)",
                redact::text(repo_url)
            )));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(RepoError::Url(
                "the URL carries credentials; name environment variables instead".into(),
            ));
        }
        let mut builder = Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .redirect(reqwest::redirect::Policy::limited(opts.max_redirects))
            .user_agent(concat!("pitrix/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &opts.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| RepoError::Ca(format!("CA file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RepoError::Ca(format!(
                    "CA file {}: not PEM certificates: {e}",
                    ca.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(RepoError::Ca(format!(
                    "CA file {} holds no certificate",
                    ca.display()
                )));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder.build().map_err(|e| RepoError::Transport {
            url: repo_url.to_string(),
            message: format!("cannot set up the HTTP client: {e}"),
        })?;
        Ok(Fetcher {
            client,
            opts,
            repo_url: parsed,
        })
    }

    pub fn repo_url(&self) -> &str {
        self.repo_url.as_str()
    }

    /// Fetches and parses `<repo>/index.yaml`, keeping the charts `filter` names.
    pub fn index(&self, filter: &Filter) -> Result<Index, RepoError> {
        let url = index_url(self.repo_url.as_str());
        let bytes = self.get(&url, self.opts.max_index_bytes)?;
        index::parse(&bytes, filter).map_err(|error| RepoError::Malformed { url, error })
    }

    /// Downloads a chart archive (URL as the index gives it) and checks its sha256.
    pub fn chart(&self, chart_url: &str, digest: &str) -> Result<(String, Vec<u8>), RepoError> {
        let url = resolve(self.repo_url.as_str(), chart_url)?;
        let bytes = self.get(&url, self.opts.max_chart_bytes)?;
        let actual = crate::chart::digest(&bytes);
        let expected = digest.trim_start_matches("sha256:").to_ascii_lowercase();
        if actual != expected {
            return Err(RepoError::DigestMismatch {
                url,
                expected,
                actual,
            });
        }
        Ok((url, bytes))
    }

    /// Any file, capped at `limit` bytes (icons).
    pub fn file(&self, url: &str, limit: u64) -> Result<Vec<u8>, RepoError> {
        let url = resolve(self.repo_url.as_str(), url)?;
        self.get(&url, limit)
    }

    /// GET with retries for what can heal.
    fn get(&self, url: &str, limit: u64) -> Result<Vec<u8>, RepoError> {
        let mut delay = self.opts.backoff;
        let mut attempt = 0;
        loop {
            match self.get_once(url, limit) {
                Err(e) if e.transient() && attempt < self.opts.retries => {
                    attempt += 1;
                    std::thread::sleep(delay);
                    delay *= 2;
                }
                other => return other,
            }
        }
    }

    fn same_origin(&self, url: &Url) -> bool {
        url.scheme() == self.repo_url.scheme()
            && url.host_str() == self.repo_url.host_str()
            && url.port_or_known_default() == self.repo_url.port_or_known_default()
    }

    fn get_once(&self, url: &str, limit: u64) -> Result<Vec<u8>, RepoError> {
        let parsed = Url::parse(url)
            .map_err(|e| RepoError::Url(format!("`{}` is not a URL: {e}", redact::text(url))))?;
        let mut request = self.client.get(parsed.clone());
        // Credentials go to the repository's own origin only (Helm: pass-credentials off).
        let sent = match &self.opts.auth {
            Some(a) if self.same_origin(&parsed) => {
                request = request.basic_auth(&a.username, Some(&a.password));
                true
            }
            _ => false,
        };
        let response = request.send().map_err(|e| self.transport(url, e))?;
        let status = response.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RepoError::Unauthorized {
                url: url.to_string(),
                status,
                sent,
            });
        }
        if !response.status().is_success() {
            return Err(RepoError::Status {
                url: url.to_string(),
                status,
            });
        }
        self.read_capped(url, response, limit)
    }

    fn read_capped(&self, url: &str, response: Response, limit: u64) -> Result<Vec<u8>, RepoError> {
        let too_large = || RepoError::TooLarge {
            url: url.to_string(),
            limit,
        };
        if response.content_length().is_some_and(|n| n > limit) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        response
            .take(limit.saturating_add(1))
            .read_to_end(&mut body)
            .map_err(|e| {
                // reqwest wraps its own errors (a timeout while reading the body) in io::Error.
                match e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<reqwest::Error>())
                {
                    Some(re) if re.is_timeout() => RepoError::Timeout {
                        url: url.to_string(),
                        after: self.opts.timeout,
                    },
                    _ => RepoError::Transport {
                        url: url.to_string(),
                        message: format!("reading the response failed: {e}"),
                    },
                }
            })?;
        if body.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(body)
    }

    fn transport(&self, url: &str, e: reqwest::Error) -> RepoError {
        if e.is_redirect() {
            return RepoError::TooManyRedirects {
                url: url.to_string(),
                limit: self.opts.max_redirects,
            };
        }
        if e.is_timeout() {
            return RepoError::Timeout {
                url: url.to_string(),
                after: self.opts.timeout,
            };
        }
        // The chain of causes says what really happened (connection refused, TLS, …).
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message = format!("{message}: {s}");
            source = s.source();
        }
        RepoError::Transport {
            url: url.to_string(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_like_helm() {
        assert_eq!(index_url("http://h/charts/"), "http://h/charts/index.yaml");
        assert_eq!(
            resolve("http://h/charts", "redis-1.0.0.tgz").unwrap(),
            "http://h/charts/redis-1.0.0.tgz"
        );
        assert_eq!(
            resolve("http://h/charts", "/other/x.tgz").unwrap(),
            "http://h/other/x.tgz"
        );
        assert_eq!(
            resolve("http://h/charts", "https://cdn/x.tgz").unwrap(),
            "https://cdn/x.tgz"
        );
    }

    #[test]
    fn credentials_are_never_printed() {
        let a = Auth {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{a:?}").contains("hunter2"));
    }

    #[test]
    fn user_info_in_urls_is_refused() {
        assert!(Fetcher::new("https://u:p@h/charts", FetchOptions::default()).is_err());
        assert!(Fetcher::new("oci://h/charts", FetchOptions::default()).is_err());
    }
}
