//! The reconcile source over HTTP with a token: a loopback smart-HTTP git server (git's own
//! `git http-backend` behind a tiny CGI gateway) that demands Basic auth. The token comes from
//! the environment variable named by --git-token-env at each fetch; a missing or wrong token
//! fails the fetch with a clear message (libgit2 is not left asking forever), and the token is
//! never part of an error.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use pitrix::reconcile::source::{GitRef, Source, SourceOptions};

const USER: &str = "x-access-token";
const TOKEN: &str = "s3cr3t-t0ken-for-the-test";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
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
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn http_backend() -> PathBuf {
    let exec = git(Path::new("."), &["--exec-path"]);
    PathBuf::from(exec).join("git-http-backend")
}

/// Serves `root` (holding `catalog.git`) over smart HTTP, Basic auth required. Returns the
/// port and a counter of requests refused for want of the right credentials.
fn serve(root: PathBuf) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let refused = Arc::new(AtomicUsize::new(0));
    let counter = refused.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (root, counter) = (root.clone(), counter.clone());
            std::thread::spawn(move || handle(stream, &root, &counter));
        }
    });
    (port, refused)
}

fn handle(mut stream: TcpStream, root: &Path, refused: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        let h = h.trim_end().to_string();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if let Some(len) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.resize(len, 0);
        reader.read_exact(&mut body).unwrap();
    } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{TOKEN}"))
    );
    if header("authorization").as_deref() != Some(expected.as_str()) {
        refused.fetch_add(1, Ordering::SeqCst);
        let _ = stream.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let mut cgi = Command::new(http_backend())
        .env_clear()
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_TYPE", header("content-type").unwrap_or_default())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", USER)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env(
            "HTTP_GIT_PROTOCOL",
            header("git-protocol").unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    cgi.stdin.take().unwrap().write_all(&body).unwrap();
    let out = cgi.wait_with_output().unwrap();
    let text = out.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
        .unwrap();
    let head = String::from_utf8_lossy(&text[..split.0]).to_string();
    let payload = &text[split.0 + split.1..];
    let mut status = "200 OK".to_string();
    let mut response = String::new();
    for h in head.lines() {
        if let Some(s) = h.strip_prefix("Status:") {
            status = s.trim().to_string();
        } else {
            response.push_str(h);
            response.push_str("\r\n");
        }
    }
    let _ = stream.write_all(
        format!(
            "HTTP/1.1 {status}\r\n{response}Content-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )
        .as_bytes(),
    );
    let _ = stream.write_all(payload);
}

fn options(url: String, cache: &Path, token_env: &str) -> SourceOptions {
    SourceOptions {
        url,
        git_ref: GitRef::Branch("main".into()),
        path: "catalog".into(),
        token_env: token_env.into(),
        username: USER.into(),
        ssh_key: None,
        ssh_passphrase_env: None,
        known_hosts: None,
        cache_dir: cache.to_path_buf(),
    }
}

#[test]
fn https_with_a_token_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path().join("work");
    pitrix::scaffold::new_catalog(&work.join("catalog")).unwrap();
    git(&work, &["init", "-q"]);
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "the catalog"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    let served = tmp.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    git(
        &served,
        &[
            "clone",
            "-q",
            "--bare",
            work.to_str().unwrap(),
            "catalog.git",
        ],
    );
    let (port, refused) = serve(served);
    let url = format!("http://127.0.0.1:{port}/catalog.git");

    // The token is read from the variable at fetch time.
    // SAFETY: set before any thread of this test reads the environment; the variable names
    // are unique to this test.
    unsafe {
        std::env::set_var("PITRIX_TEST_GIT_TOKEN_OK", TOKEN);
        std::env::set_var("PITRIX_TEST_GIT_TOKEN_BAD", "not-the-token");
    }
    let source = Source::new(options(
        url.clone(),
        &tmp.path().join("cache-ok"),
        "PITRIX_TEST_GIT_TOKEN_OK",
    ))
    .unwrap();
    let commit = source.fetch_revision().expect("fetch with the token");
    assert_eq!(commit.id, head);
    let out = tmp.path().join("out");
    source.checkout(&commit.id, &out).unwrap();
    assert!(out.join("pitrix.toml").is_file());
    assert!(
        refused.load(Ordering::SeqCst) >= 1,
        "the server never asked for credentials"
    );

    // No token: a clear error, no loop.
    let none = Source::new(options(
        url.clone(),
        &tmp.path().join("cache-none"),
        "PITRIX_TEST_GIT_TOKEN_UNSET",
    ))
    .unwrap();
    let err = none.fetch_revision().unwrap_err();
    assert_eq!(err.metric_label(), "fetch");
    let err = err.to_string();
    assert!(err.contains("PITRIX_TEST_GIT_TOKEN_UNSET"), "{err}");

    // A wrong token: refused a bounded number of times, and never printed.
    let before = refused.load(Ordering::SeqCst);
    let bad = Source::new(options(
        url,
        &tmp.path().join("cache-bad"),
        "PITRIX_TEST_GIT_TOKEN_BAD",
    ))
    .unwrap();
    let err = bad.fetch_revision().unwrap_err().to_string();
    assert!(
        err.contains("authentication failed") || err.contains("401"),
        "{err}"
    );
    assert!(
        !err.contains("not-the-token") && !err.contains(TOKEN),
        "{err}"
    );
    assert!(refused.load(Ordering::SeqCst) - before <= 5);
}
