//! A real S3-compatible server for integration tests: `s3s-fs` (crates.io, the `s3s` project's
//! file-system backend), started by the test itself on a free loopback port with its own
//! temporary data directory and a random access key / secret key. No mocks.
//!
//! - It verifies AWS Signature V4 on every request (`s3s::auth::SimpleAuth`): a request signed
//!   with another key is refused (`403 SignatureDoesNotMatch`), an unsigned one too
//!   (`403 AccessDenied`). Signed payloads, `UNSIGNED-PAYLOAD` and aws-chunked uploads all work.
//! - It serves path-style requests (`http://127.0.0.1:PORT/<bucket>/<key>`), what aws-sdk-go v1
//!   sends with `forcePathStyle: true` (KubeSphere 3.x's ks-controller-manager). Any region in
//!   the credential scope is accepted; tests use [`REGION`].
//! - Buckets are directories of the data directory and objects are files under them (a key's
//!   `/` are sub-directories), so [`S3Server::object`] and [`S3Server::keys`] read what is
//!   stored straight from the disk, independently of any S3 client under test. Bucket names
//!   follow S3's rules (3-63 characters: `bkt` works, `bk` is `InvalidBucketName`).
//! - Checked with KubeSphere 3.4.1's own vendored aws-sdk-go v1.44.187 (`s3manager` upload and
//!   ranged download, HeadObject, DeleteObject; a wrong secret is a 403).
//! - Where s3s-fs is not S3: a PUT into a missing bucket creates it, and a GET/HEAD of an
//!   object in a missing bucket is `NoSuchKey`; only bucket requests (HEAD bucket, listing)
//!   say `NoSuchBucket`. Check the bucket first, as a real client should anyway.
//!
//! The binary is `$PITRIX_CACHE/s3s-fs/bin/s3s-fs` (else `<repo>/.cache/...`), installed by
//! `scripts/setup-test-env.sh`; a missing binary fails the test with that instruction, it never
//! skips. The server is stopped on [`Drop`], and, like [`crate::cluster`]'s servers, by a
//! watchdog when the test process dies any other way; a janitor then removes its directory.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::{self, Server};

/// The region the tests sign for (s3s-fs accepts any; aws-sdk-go needs one).
pub const REGION: &str = "us-east-1";

/// How long the server may take to listen before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What s3s-fs logs (at `info`) once it listens, followed by the address.
const LISTENING: &str = "server is running at http://";

/// A running s3s-fs, stopped when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// Always [`REGION`].
    pub region: String,
    /// The server's root: one directory per bucket.
    pub data_dir: PathBuf,
    /// s3s-fs's own log (one line per refused request, with the S3 error code).
    pub log: PathBuf,
    dir: tempfile::TempDir,
    server: Option<Server>,
    janitor: Option<(Child, ChildStdin)>,
}

impl S3Server {
    /// A fresh server on a free loopback port with an empty data directory and its own random
    /// credentials. Panics with the log's last lines if it does not come up.
    pub fn start() -> S3Server {
        let binary = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("pitrix-s3-")
            .tempdir()
            .expect("a temp dir for the S3 server");
        let data_dir = dir.path().join("data");
        for sub in [&data_dir, &dir.path().join("pids")] {
            fs::create_dir_all(sub).unwrap();
        }
        let log = dir.path().join("s3s-fs.log");
        let janitor = cluster::spawn_janitor(dir.path());
        let mut server = S3Server {
            endpoint: String::new(),
            access_key: format!("pitrix-test-{}", random_hex(6)),
            secret_key: random_hex(20),
            region: REGION.to_string(),
            data_dir,
            log,
            dir,
            server: None,
            janitor: Some(janitor),
        };
        // On a panic from here on, `server` is dropped: the process is stopped, the dir removed.
        server.spawn(&binary);
        server.endpoint = server.wait_until_listening();
        server
    }

    /// Creates `bucket` (nothing happens if it exists). s3s-fs's CreateBucket is a `mkdir` in
    /// its root, and it reads the disk on every request, so this is the same thing without
    /// needing an S3 client in the harness.
    pub fn create_bucket(&self, bucket: &str) {
        assert!(
            is_valid_bucket_name(bucket),
            "S3Server::create_bucket: `{bucket}` is not a valid S3 bucket name (3-63 of a-z, 0-9, \
             `-`, `.`; starts and ends with a letter or digit)"
        );
        fs::create_dir_all(self.data_dir.join(bucket)).unwrap();
    }

    /// Whether `bucket` exists.
    pub fn has_bucket(&self, bucket: &str) -> bool {
        self.data_dir.join(bucket).is_dir()
    }

    /// The bytes stored at `bucket`/`key`, or `None` if there is no such object.
    pub fn object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let path = self.object_path(bucket, key);
        path.is_file().then(|| fs::read(&path).unwrap())
    }

    /// The keys in `bucket`, sorted. Panics if the bucket does not exist.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let root = self.data_dir.join(bucket);
        assert!(
            root.is_dir(),
            "S3Server::keys: no bucket `{bucket}` at {}",
            self.endpoint
        );
        let mut keys = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                if entry.file_type().unwrap().is_dir() {
                    dirs.push(path);
                } else {
                    let relative = path.strip_prefix(&root).unwrap();
                    let parts: Vec<String> = relative
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    keys.push(parts.join("/"));
                }
            }
        }
        keys.sort();
        keys
    }

    /// The last `lines` lines of the server's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        cluster::log_tail(&self.log, lines)
    }

    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        assert!(
            !key.split('/').any(|part| part == ".."),
            "S3Server::object: key `{key}` has a `..` segment"
        );
        self.data_dir.join(bucket).join(key)
    }

    fn spawn(&mut self, binary: &Path) {
        let log_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("open the S3 server's log");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(cluster::WATCHDOG)
            .arg("sh")
            .arg(binary)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .arg("--access-key")
            .arg(&self.access_key)
            .arg("--secret-key")
            .arg(&self.secret_key)
            .arg(&self.data_dir)
            // `info` prints the address it listens on (port 0: the kernel chose it).
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let watchdog = child.stdin.take();
        fs::write(
            self.dir.path().join("pids/s3s-fs"),
            format!("{}\n", child.id()),
        )
        .unwrap();
        self.server = Some(Server { child, watchdog });
    }

    /// Waits for s3s-fs to log its address, and returns it as the endpoint.
    fn wait_until_listening(&mut self) -> String {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let text = fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(at) = text.find(LISTENING) {
                let rest = &text[at + LISTENING.len()..];
                let addr: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return format!("http://{addr}");
            }
            let server = self.server.as_mut().unwrap();
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!(
                    "the S3 server (s3s-fs) exited ({status}) before listening:\n{}",
                    self.log_tail(30)
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "the S3 server (s3s-fs) did not listen within {}s:\n{}",
                    READY_TIMEOUT.as_secs(),
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            cluster::stop_server(server);
        }
        let _ = fs::remove_dir_all(self.dir.path().join("pids"));
        if let Some((mut janitor, stdin)) = self.janitor.take() {
            drop(stdin);
            let _ = janitor.wait();
        }
    }
}

/// `$PITRIX_CACHE/s3s-fs/bin/s3s-fs` (else `<repo>/.cache/...`); panics with what to do when
/// it is not there.
fn find_binary() -> PathBuf {
    let (cache, origin) = match std::env::var_os("PITRIX_CACHE") {
        Some(cache) => (PathBuf::from(cache), "$PITRIX_CACHE"),
        None => (cluster::repo_root().join(".cache"), "<repo>/.cache"),
    };
    let binary = cache.join("s3s-fs/bin/s3s-fs");
    assert!(
        binary.is_file(),
        "the S3 test server is not installed: no {} ({origin}/s3s-fs/bin/s3s-fs). Run `bash \
         scripts/setup-test-env.sh` (it installs s3s-fs from crates.io into the cache).",
        binary.display()
    );
    binary
}

/// S3's bucket naming rules (the ones s3s checks before anything else).
fn is_valid_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..")
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    //! The harness against an S3 client that is not pitrix's: curl's own SigV4 signer
    //! (`--aws-sigv4`), so a signing bug in pitrix cannot hide a server that checks nothing.
    use super::*;

    /// `curl` signing with `secret`; returns (HTTP status, body).
    fn curl(
        server: &S3Server,
        secret: &str,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (u16, String) {
        let dir = tempfile::tempdir().unwrap();
        let body_file = dir.path().join("body");
        fs::write(&body_file, body).unwrap();
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
            .args(["--aws-sigv4", &format!("aws:amz:{}:s3", server.region)])
            .arg("--user")
            .arg(format!("{}:{secret}", server.access_key))
            // curl signs but does not send the payload hash S3 requires.
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .args(["-X", method])
            .args(if method == "PUT" {
                vec![
                    "--data-binary".to_string(),
                    format!("@{}", body_file.display()),
                ]
            } else {
                vec![]
            })
            .arg(format!("{}{path}", server.endpoint))
            .output()
            .expect("run curl (Debian: apt-get install curl)");
        assert!(
            out.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), body.to_string())
    }

    #[test]
    fn stores_what_a_signed_put_sends_and_refuses_a_wrong_secret() {
        let server = S3Server::start();
        assert!(
            server.endpoint.starts_with("http://127.0.0.1:"),
            "{}",
            server.endpoint
        );
        server.create_bucket("app-store");
        assert!(server.has_bucket("app-store"));
        assert_eq!(server.keys("app-store"), Vec::<String>::new());

        // Path-style, a key with `/`, a space and `+` (percent-encoded in the path).
        let (status, body) = curl(
            &server,
            &server.secret_key,
            "PUT",
            "/app-store/ws1/a%20b%2Bc.tgz",
            b"chart",
        );
        assert_eq!(status, 200, "{body}\n{}", server.log_tail(20));
        assert_eq!(
            server.object("app-store", "ws1/a b+c.tgz").as_deref(),
            Some(&b"chart"[..])
        );
        assert_eq!(server.object("app-store", "ws1/other"), None);

        let (status, body) = curl(&server, "not-the-secret", "PUT", "/app-store/forged", b"x");
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("SignatureDoesNotMatch"), "{body}");
        assert_eq!(server.object("app-store", "forged"), None);

        let (status, body) = curl(
            &server,
            &server.secret_key,
            "GET",
            "/no-such-bucket?list-type=2",
            b"",
        );
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("NoSuchBucket"), "{body}");

        let (status, body) = curl(
            &server,
            &server.secret_key,
            "GET",
            "/app-store?list-type=2",
            b"",
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<Key>ws1/a b+c.tgz</Key>"), "{body}");
        assert_eq!(server.keys("app-store"), vec!["ws1/a b+c.tgz".to_string()]);

        let data_dir = server.data_dir.clone();
        drop(server);
        assert!(!data_dir.exists(), "the data dir outlived the server");
    }
}
