//! A tiny HTTP/1.1 server on 127.0.0.1 for the repository tests: serves a directory (a Helm
//! repository packaged by real Helm) and can misbehave on purpose — require basic auth, answer
//! slowly, redirect in a loop, override any path. Loopback only; stops when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with these bytes.
    Body(Vec<u8>),
    Status(u16),
    /// 302 to this location.
    Redirect(String),
    /// Wait, then answer with the file (or 404).
    Slow(Duration),
}

#[derive(Default)]
struct State {
    dir: Option<PathBuf>,
    overrides: BTreeMap<String, Reply>,
    auth: Option<(String, String)>,
}

pub struct Server {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    /// Requests served, by path.
    pub hits: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
}

impl Server {
    /// Serves `dir` at `/`.
    pub fn serve(dir: impl Into<PathBuf>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            dir: Some(dir.into()),
            ..State::default()
        }));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        {
            let (state, hits, stop, open) =
                (state.clone(), hits.clone(), stop.clone(), open.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (state, hits, stop, open) =
                        (state.clone(), hits.clone(), stop.clone(), open.clone());
                    open.fetch_add(1, Ordering::SeqCst);
                    thread::spawn(move || {
                        let _ = handle(conn, &state, &hits, &stop);
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
        Server {
            addr,
            state,
            hits,
            stop,
            open,
        }
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set(&self, path: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .overrides
            .insert(path.to_string(), reply);
    }

    pub fn clear(&self, path: &str) {
        self.state.lock().unwrap().overrides.remove(path);
    }

    /// Every request must carry these basic-auth credentials, else 401.
    pub fn require_auth(&self, user: &str, password: &str) {
        self.state.lock().unwrap().auth = Some((user.into(), password.into()));
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn handle(
    conn: TcpStream,
    state: &Mutex<State>,
    hits: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(v.trim().to_string());
        }
    }
    if stop.load(Ordering::SeqCst) {
        return Ok(());
    }
    hits.lock().unwrap().push(path.clone());
    let (reply, dir, auth) = {
        let s = state.lock().unwrap();
        (
            s.overrides.get(&path).cloned(),
            s.dir.clone(),
            s.auth.clone(),
        )
    };
    let mut out = conn;
    if let Some((u, p)) = auth
        && authorization.as_deref() != Some(basic(&u, &p).as_str())
    {
        return respond(
            &mut out,
            401,
            &[("WWW-Authenticate", "Basic realm=\"charts\"")],
            b"unauthorized\n",
        );
    }
    let file = |dir: Option<PathBuf>| -> Option<Vec<u8>> {
        let rel = path.trim_start_matches('/');
        if rel.contains("..") {
            return None;
        }
        std::fs::read(dir?.join(rel)).ok()
    };
    match reply {
        Some(Reply::Body(b)) => respond(&mut out, 200, &[], &b),
        Some(Reply::Status(s)) => respond(&mut out, s, &[], b"nope\n"),
        Some(Reply::Redirect(to)) => respond(&mut out, 302, &[("Location", &to)], b""),
        Some(Reply::Slow(d)) => {
            thread::sleep(d);
            match file(dir) {
                Some(b) => respond(&mut out, 200, &[], &b),
                None => respond(&mut out, 404, &[], b"not found\n"),
            }
        }
        None => match file(dir) {
            Some(b) => respond(&mut out, 200, &[], &b),
            None => respond(&mut out, 404, &[], b"not found\n"),
        },
    }
}

fn respond(
    out: &mut TcpStream,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()?;
    // Let the client read everything before the socket closes.
    let _ = out.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 256];
    let _ = out.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = out.read(&mut sink);
    Ok(())
}
