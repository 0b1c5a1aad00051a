//! The catalog's source: a git repository fetched with git2 into a private bare cache —
//! over https with a token read from the environment at each fetch, over ssh with a key file
//! (host keys checked against a known_hosts file), or from a `file://` URL — at a branch or a
//! tag; or a repository at a local path, read in place (nothing copied: a checkout a sidecar
//! keeps up to date, a repository on the same disk). A revision is checked out by writing its
//! tree into a scratch directory (no work tree, no index: [`crate::git::materialize`]).

use std::collections::hash_map::DefaultHasher;
use std::fs;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use git2::{
    AutotagOption, CertificateCheckStatus, Cred, CredentialType, FetchOptions, RemoteCallbacks,
    Repository,
};
use sha1::{Digest as _, Sha1};

use crate::error::Error;

/// The reference to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    Branch(String),
    Tag(String),
}

impl GitRef {
    fn remote_ref(&self) -> String {
        match self {
            GitRef::Branch(b) => format!("refs/heads/{b}"),
            GitRef::Tag(t) => format!("refs/tags/{t}"),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            GitRef::Branch(b) => format!("branch {b}"),
            GitRef::Tag(t) => format!("tag {t}"),
        }
    }
}

/// How to reach the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Https,
    Ssh,
    /// `file://`: fetched into the cache like a remote.
    File,
    /// A path: read in place.
    Path,
}

#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// `https://…`, `ssh://…`, `user@host:path`, `file://…` or a local path.
    pub url: String,
    pub git_ref: GitRef,
    /// The catalog's directory inside the repository (`/`-separated; empty: the root).
    pub path: String,
    /// Environment variable holding the https token (read at every fetch).
    pub token_env: String,
    /// User name sent with the token.
    pub username: String,
    /// Private key for ssh.
    pub ssh_key: Option<PathBuf>,
    /// Environment variable holding the key's passphrase.
    pub ssh_passphrase_env: Option<String>,
    /// known_hosts file the ssh host key must be in (default: libgit2's own check of
    /// `~/.ssh/known_hosts`).
    pub known_hosts: Option<PathBuf>,
    /// Private cache directory.
    pub cache_dir: PathBuf,
}

/// A fetched revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    /// First line of its message.
    pub summary: String,
}

impl Commit {
    pub fn short(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

pub struct Source {
    opts: SourceOptions,
    transport: Transport,
    /// What libgit2 is given as the remote URL (local paths made absolute).
    remote_url: String,
    repo_dir: PathBuf,
}

/// Sets libgit2's network timeouts once: an unreachable server fails a fetch, never hangs it.
fn set_timeouts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: global libgit2 options, set once before any fetch runs.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
        }
    });
}

pub fn transport_of(url: &str) -> Transport {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Transport::Https
    } else if lower.starts_with("ssh://") || lower.starts_with("git+ssh://") {
        Transport::Ssh
    } else if lower.starts_with("file://") {
        Transport::File
    } else if let Some((user_host, _)) = url.split_once(':')
        && !user_host.contains('/')
        && user_host.contains('@')
    {
        // scp-like `git@github.com:org/repo.git`
        Transport::Ssh
    } else {
        Transport::Path
    }
}

/// The URL without user info, for logs, status and metrics.
pub fn display_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let sep = if rest.contains('/') { "/" } else { "" };
        return format!("{scheme}://{host}{sep}{path}");
    }
    url.to_string()
}

impl Source {
    pub fn new(opts: SourceOptions) -> Result<Source, Error> {
        set_timeouts();
        let transport = transport_of(&opts.url);
        let remote_url = match transport {
            Transport::Path => {
                let p = Path::new(&opts.url);
                let abs = if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    std::env::current_dir()
                        .map_err(|e| Error::io("current directory", e))?
                        .join(p)
                };
                abs.to_string_lossy().into_owned()
            }
            _ => opts.url.clone(),
        };
        if transport == Transport::Ssh
            && let Some(key) = &opts.ssh_key
            && !key.is_file()
        {
            return Err(Error::InvalidValue(format!(
                "ssh key {} is not a file",
                key.display()
            )));
        }
        let mut h = DefaultHasher::new();
        remote_url.hash(&mut h);
        let repo_dir = opts
            .cache_dir
            .join("git")
            .join(format!("{:016x}", h.finish()));
        Ok(Source {
            opts,
            transport,
            remote_url,
            repo_dir,
        })
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn describe(&self) -> String {
        let path = if self.opts.path.is_empty() {
            String::new()
        } else {
            format!(", path {}", self.opts.path)
        };
        format!(
            "{} ({}{path})",
            display_url(&self.opts.url),
            self.opts.git_ref.describe()
        )
    }

    fn open(&self) -> Result<Repository, Error> {
        if self.transport == Transport::Path {
            return Repository::open(&self.remote_url).map_err(|e| {
                Error::Git(format!(
                    "cannot fetch {} from {}: {}",
                    self.opts.git_ref.describe(),
                    self.remote_url,
                    e.message()
                ))
            });
        }
        match Repository::open_bare(&self.repo_dir) {
            Ok(r) => Ok(r),
            Err(_) => {
                fs::create_dir_all(&self.repo_dir).map_err(|e| Error::io(&self.repo_dir, e))?;
                restrict(&self.opts.cache_dir);
                Repository::init_bare(&self.repo_dir).map_err(|e| {
                    Error::Git(format!(
                        "cannot create the git cache {}: {}",
                        self.repo_dir.display(),
                        e.message()
                    ))
                })
            }
        }
    }

    /// Fetches the reference; returns the commit it names. Blocking (run it off the runtime).
    pub fn fetch_revision(&self) -> Result<Commit, Error> {
        const LOCAL: &str = "refs/pitrix/source";
        let repo = self.open()?;
        if self.transport == Transport::Path {
            let commit = repo
                .find_reference(&self.opts.git_ref.remote_ref())
                .and_then(|r| r.peel_to_commit())
                .map_err(|_| {
                    Error::Git(format!(
                        "{} has no {}",
                        self.remote_url,
                        self.opts.git_ref.describe()
                    ))
                })?;
            return Ok(Commit {
                id: commit.id().to_string(),
                summary: commit
                    .summary()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_string(),
            });
        }
        // A reference that disappeared upstream must not leave the old commit in place.
        if let Ok(mut r) = repo.find_reference(LOCAL) {
            let _ = r.delete();
        }
        let mut remote = repo.remote_anonymous(&self.remote_url).map_err(|e| {
            Error::Git(format!(
                "remote {}: {}",
                display_url(&self.opts.url),
                e.message()
            ))
        })?;
        let refspec = format!("+{}:{LOCAL}", self.opts.git_ref.remote_ref());
        let mut fetch = FetchOptions::new();
        fetch.remote_callbacks(self.callbacks());
        fetch.download_tags(AutotagOption::None);
        remote
            .fetch(&[refspec.as_str()], Some(&mut fetch), None)
            .map_err(|e| {
                Error::Git(format!(
                    "cannot fetch {} from {}: {}",
                    self.opts.git_ref.describe(),
                    display_url(&self.opts.url),
                    e.message()
                ))
            })?;
        let commit = repo
            .find_reference(LOCAL)
            .and_then(|r| r.peel_to_commit())
            .map_err(|_| {
                Error::Git(format!(
                    "{} has no {}",
                    display_url(&self.opts.url),
                    self.opts.git_ref.describe()
                ))
            })?;
        Ok(Commit {
            id: commit.id().to_string(),
            summary: commit
                .summary()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// Writes the catalog directory of `commit` into `dest` (created). Blocking.
    pub fn checkout(&self, commit: &str, dest: &Path) -> Result<(), Error> {
        let repo = self.open()?;
        let oid = git2::Oid::from_str(commit).map_err(|e| Error::Git(e.message().to_string()))?;
        let root = repo
            .find_commit(oid)
            .and_then(|c| c.tree())
            .map_err(|e| Error::Git(format!("commit {commit}: {}", e.message())))?;
        let path = self.opts.path.trim_matches('/');
        let tree = if path.is_empty() {
            root
        } else {
            let entry = root.get_path(Path::new(path)).map_err(|_| {
                Error::Git(format!(
                    "commit {commit} has no directory `{path}` (--path)"
                ))
            })?;
            repo.find_tree(entry.id()).map_err(|_| {
                Error::Git(format!("`{path}` is not a directory at commit {commit}"))
            })?
        };
        fs::create_dir_all(dest).map_err(|e| Error::io(dest, e))?;
        crate::git::materialize(&repo, &tree, dest, &|_| false)
            .map(|_| ())
            .map_err(|e| Error::Git(e.to_string()))
    }

    fn callbacks(&self) -> RemoteCallbacks<'_> {
        let mut cbs = RemoteCallbacks::new();
        let mut attempts = 0;
        cbs.credentials(move |_url, username_from_url, allowed| {
            // libgit2 asks again after a refusal: give up instead of looping.
            attempts += 1;
            if attempts > 3 {
                return Err(git2::Error::from_str(
                    "authentication failed (the credentials were refused)",
                ));
            }
            self.credentials(username_from_url, allowed)
        });
        if let Some(file) = &self.opts.known_hosts {
            let port = ssh_port(&self.opts.url);
            cbs.certificate_check(move |cert, host| {
                let Some(hostkey) = cert.as_hostkey() else {
                    return Ok(CertificateCheckStatus::CertificatePassthrough);
                };
                let Some(key) = hostkey.hostkey() else {
                    return Err(git2::Error::from_str("the ssh server sent no host key"));
                };
                let text = fs::read_to_string(file).map_err(|e| {
                    git2::Error::from_str(&format!("known_hosts {}: {e}", file.display()))
                })?;
                if known_host(&text, host, port, key) {
                    Ok(CertificateCheckStatus::CertificateOk)
                } else {
                    Err(git2::Error::from_str(&format!(
                        "the {} host key of {host} is not in {}",
                        hostkey.hostkey_type().map_or("ssh", |t| t.name()),
                        file.display()
                    )))
                }
            });
        }
        cbs
    }

    fn credentials(
        &self,
        username_from_url: Option<&str>,
        allowed: CredentialType,
    ) -> Result<Cred, git2::Error> {
        let user = username_from_url.unwrap_or("git");
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &self.opts.ssh_key
        {
            let passphrase = self
                .opts
                .ssh_passphrase_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok());
            return Cred::ssh_key(user, None, key, passphrase.as_deref());
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            return match std::env::var(&self.opts.token_env) {
                Ok(token) if !token.is_empty() => {
                    let user = username_from_url.unwrap_or(&self.opts.username);
                    Cred::userpass_plaintext(user, token.trim())
                }
                _ => Err(git2::Error::from_str(&format!(
                    "the server asks for credentials and ${} is not set",
                    self.opts.token_env
                ))),
            };
        }
        if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        Err(git2::Error::from_str(
            "the server asks for credentials pitrix has not been given (--ssh-key for ssh, a token for https)",
        ))
    }
}

/// Makes the cache private to this user.
fn restrict(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    }
}

/// The port of an `ssh://` URL, if it names one.
fn ssh_port(url: &str) -> Option<u16> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host.rsplit_once(':')?.1.parse().ok()
}

fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha1::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha1::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Whether a known_hosts text lists `key` (the wire-format host key) for `host`: plain or
/// hashed (`|1|salt|hash`) host patterns, `[host]:port` for other ports, `!` negations and
/// `@revoked` markers honoured; wildcards are not.
pub fn known_host(text: &str, host: &str, port: Option<u16>, key: &[u8]) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let name = match port {
        Some(p) if p != 22 => format!("[{host}]:{p}"),
        _ => host.to_string(),
    };
    let host_matches = |pattern: &str| -> bool {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            let Some((salt, hash)) = hashed.split_once('|') else {
                return false;
            };
            let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
                return false;
            };
            hmac_sha1(&salt, name.as_bytes()).as_slice() == hash.as_slice()
        } else {
            pattern.eq_ignore_ascii_case(&name)
        }
    };
    let mut found = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut first = fields.next().unwrap_or_default();
        let marker = first.strip_prefix('@').map(str::to_string);
        if marker.is_some() {
            first = fields.next().unwrap_or_default();
        }
        let (Some(_kind), Some(data)) = (fields.next(), fields.next()) else {
            continue;
        };
        let mut listed = false;
        for pattern in first.split(',') {
            if let Some(negated) = pattern.strip_prefix('!') {
                if host_matches(negated) {
                    listed = false;
                    break;
                }
            } else if host_matches(pattern) {
                listed = true;
            }
        }
        if !listed || b64.decode(data).ok().as_deref() != Some(key) {
            continue;
        }
        match marker.as_deref() {
            Some("revoked") => return false,
            Some(_) => {}
            None => found = true,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(transport_of("https://github.com/a/b.git"), Transport::Https);
        assert_eq!(
            transport_of("http://localhost:8080/a.git"),
            Transport::Https
        );
        assert_eq!(transport_of("ssh://git@host:2222/a.git"), Transport::Ssh);
        assert_eq!(transport_of("git@github.com:org/repo.git"), Transport::Ssh);
        assert_eq!(transport_of("/srv/catalog"), Transport::Path);
        assert_eq!(transport_of("./catalog"), Transport::Path);
        assert_eq!(transport_of("file:///srv/catalog"), Transport::File);
        assert_eq!(transport_of("C:/x"), Transport::Path);
        assert_eq!(ssh_port("ssh://git@host:2222/a.git"), Some(2222));
        assert_eq!(ssh_port("ssh://git@host/a.git"), None);
    }

    #[test]
    fn urls_lose_their_user_info_for_display() {
        assert_eq!(
            display_url("https://user:tok3n@github.com/a/b.git"),
            "https://github.com/a/b.git"
        );
        assert_eq!(display_url("https://github.com"), "https://github.com");
        assert_eq!(display_url("/srv/catalog"), "/srv/catalog");
    }

    #[test]
    fn known_hosts_plain_hashed_ports_and_revoked() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b"\0\0\0\x0bssh-ed25519\0\0\0\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_vec();
        let other = b"\0\0\0\x0bssh-ed25519\0\0\0\x20bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb".to_vec();
        let k = b64.encode(&key);
        let text = format!("# comment\ngithub.com,140.82.121.4 ssh-ed25519 {k}\n");
        assert!(known_host(&text, "github.com", None, &key));
        assert!(known_host(&text, "GitHub.com", Some(22), &key));
        assert!(!known_host(&text, "github.com", None, &other));
        assert!(!known_host(&text, "gitlab.com", None, &key));
        assert!(!known_host(&text, "github.com", Some(2222), &key));
        let text = format!("[git.internal]:2222 ssh-ed25519 {k}\n");
        assert!(known_host(&text, "git.internal", Some(2222), &key));
        // Hashed, as `ssh-keyscan -H` writes: |1|base64(salt)|base64(HMAC-SHA1(salt, host)).
        let salt = b"0123456789abcdefghij";
        let hash = hmac_sha1(salt, b"git.example.com");
        let text = format!(
            "|1|{}|{} ssh-ed25519 {k}\n",
            b64.encode(salt),
            b64.encode(hash)
        );
        assert!(known_host(&text, "git.example.com", None, &key));
        assert!(!known_host(&text, "git.example.org", None, &key));
        // Revoked wins; negation excludes.
        let text = format!("git.example.com ssh-ed25519 {k}\n@revoked * ssh-ed25519 {k}\n");
        assert!(known_host(&text, "git.example.com", None, &key));
        let text =
            format!("git.example.com ssh-ed25519 {k}\n@revoked git.example.com ssh-ed25519 {k}\n");
        assert!(!known_host(&text, "git.example.com", None, &key));
        let text = format!("git.example.com,!git.example.com ssh-ed25519 {k}\n");
        assert!(!known_host(&text, "git.example.com", None, &key));
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    fn git(dir: &Path, args: &[&str]) {
        let out = std::process::Command::new("git")
            .current_dir(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@e",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn fetch_and_checkout_a_local_repository() {
        let tmp = tempfile::tempdir().unwrap();
        let upstream = tmp.path().join("upstream");
        fs::create_dir_all(upstream.join("catalog/sub")).unwrap();
        fs::write(upstream.join("catalog/sub/a.txt"), "one").unwrap();
        fs::write(upstream.join("README"), "x").unwrap();
        git(&upstream, &["init", "-q"]);
        git(&upstream, &["add", "."]);
        git(&upstream, &["commit", "-q", "-m", "first"]);
        git(&upstream, &["tag", "-a", "v1", "-m", "v1"]);

        let opts = SourceOptions {
            url: upstream.to_string_lossy().into_owned(),
            git_ref: GitRef::Branch("main".into()),
            path: "catalog".into(),
            token_env: "PITRIX_TEST_NO_TOKEN".into(),
            username: "git".into(),
            ssh_key: None,
            ssh_passphrase_env: None,
            known_hosts: None,
            cache_dir: tmp.path().join("cache"),
        };
        let source = Source::new(opts.clone()).unwrap();
        let first = source.fetch_revision().unwrap();
        assert_eq!(first.summary, "first");
        let out = tmp.path().join("out");
        source.checkout(&first.id, &out).unwrap();
        assert_eq!(fs::read_to_string(out.join("sub/a.txt")).unwrap(), "one");
        assert!(!out.join("README").exists());

        fs::write(upstream.join("catalog/sub/a.txt"), "two").unwrap();
        git(&upstream, &["commit", "-q", "-am", "second"]);
        let second = source.fetch_revision().unwrap();
        assert_ne!(first.id, second.id);
        assert_eq!(second.summary, "second");

        // A tag stays where it is.
        let tagged = Source::new(SourceOptions {
            git_ref: GitRef::Tag("v1".into()),
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(tagged.fetch_revision().unwrap().id, first.id);

        // A missing branch or an unreachable source is an error, not the last commit.
        let missing = Source::new(SourceOptions {
            git_ref: GitRef::Branch("nope".into()),
            ..opts.clone()
        })
        .unwrap();
        assert!(missing.fetch_revision().is_err());
        // Through file://, the same revisions land in the private cache.
        let cached = Source::new(SourceOptions {
            url: format!("file://{}", upstream.display()),
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(cached.transport(), &Transport::File);
        assert_eq!(cached.fetch_revision().unwrap(), second);
        assert!(tmp.path().join("cache/git").is_dir());

        fs::rename(&upstream, tmp.path().join("moved")).unwrap();
        for err in [
            source.fetch_revision().unwrap_err(),
            cached.fetch_revision().unwrap_err(),
        ] {
            assert_eq!(err.metric_label(), "fetch");
            assert!(err.to_string().contains("cannot fetch"), "{err}");
        }
        // The cache still holds the last revision.
        let again = tmp.path().join("again");
        cached.checkout(&second.id, &again).unwrap();
        assert_eq!(fs::read_to_string(again.join("sub/a.txt")).unwrap(), "two");
    }
}
