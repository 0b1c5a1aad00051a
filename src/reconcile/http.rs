//! The HTTP endpoint: `/healthz` (liveness), `/readyz` (readiness), `/metrics` (Prometheus
//! text or OpenMetrics, by the scraper's `Accept`).
//! hyper's HTTP/1 server directly — it is already in the dependency tree through kube's
//! client, so serving three read-only paths costs no new crate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::log;
use super::metrics::{Exposition, Metrics};
use crate::error::Error;

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

fn handle(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
    }
    let ok = || respond(StatusCode::OK, TEXT, "ok\n".into());
    match req.uri().path() {
        // Answered while the process serves: the controller retries what it meets, so nothing
        // leaves it alive but unable to work.
        "/healthz" | "/livez" => ok(),
        "/readyz" => match metrics.readiness() {
            Ok(()) => ok(),
            Err(why) => respond(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("{}\n", crate::redact::text(&why.to_string())),
            ),
        },
        "/metrics" => {
            let accept = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|a| a.to_str().ok());
            let exposition = Exposition::negotiate(accept);
            respond(
                StatusCode::OK,
                exposition.content_type(),
                metrics.render(exposition),
            )
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: /healthz, /readyz, /metrics\n".into(),
        ),
    }
}

/// Binds `addr` (errors are returned, so a taken port fails the start) and serves until
/// `stop` turns true.
pub async fn bind(addr: &str) -> Result<TcpListener, Error> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| Error::InvalidValue(format!("--http-addr {addr}: {e}")))?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen {
            addr: addr.to_string(),
            source,
        })
}

pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                log::warn(format!("http: accept: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = handle(&metrics, &req);
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}
