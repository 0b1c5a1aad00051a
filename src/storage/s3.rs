//! A small, blocking S3 client: exactly what pitrix does with a bucket (check it, head, put
//! once, get, delete, list), signed with SigV4 ([`super::sigv4`]) over `reqwest`.
//!
//! - Content-addressed and write-once: [`S3Client::put`] stores the SHA-256 of the bytes as user
//!   metadata (`x-amz-meta-sha256`), and [`S3Client::put_if_absent`] never overwrites an object
//!   that holds other bytes.
//! - Bounded: connect and request timeouts, and [`S3Client::get`] refuses bodies over
//!   [`MAX_OBJECT_BYTES`].
//! - Every error names the endpoint and the bucket (and the key where there is one), and never
//!   a secret.
//!
//! It blocks (`reqwest::blocking`): call it from a plain thread, or from async code through
//! `tokio::task::spawn_blocking`.

use std::fmt;
use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::{Method, StatusCode, Url};

use super::sigv4;
use crate::catalog::{S3Location, S3Settings};

/// Largest object [`S3Client::get`] reads into memory.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

/// Largest error or listing document read from the server.
const MAX_DOCUMENT_BYTES: u64 = 16 * 1024 * 1024;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whole request: connect, send, read the answer (64 MiB at ~1 MiB/s fits).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The user metadata that carries the SHA-256 of an object's bytes.
const SHA256_METADATA: &str = "x-amz-meta-sha256";

/// What [`S3Client::head`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    /// From `x-amz-meta-sha256`: set by [`S3Client::put`], absent on objects stored otherwise
    /// (e.g. by KubeSphere's console).
    pub sha256: Option<String>,
}

/// What [`S3Client::put_if_absent`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// The key was absent; the bytes are stored now.
    Uploaded,
    /// The key already held these exact bytes; nothing was sent.
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(
        "environment variable {var} is not set: [storage.s3] reads the S3 {what} from it (bucket \
         `{bucket}` at {endpoint})"
    )]
    MissingCredential {
        var: String,
        what: &'static str,
        endpoint: Arc<str>,
        bucket: Arc<str>,
    },
    #[error("S3 endpoint `{endpoint}` (bucket `{bucket}`) is not usable: {reason}")]
    InvalidEndpoint {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        reason: String,
    },
    #[error("`{bucket}` is not a valid S3 bucket name (at {endpoint}): {reason}")]
    InvalidBucket {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        reason: String,
    },
    #[error("`{key}` is not a key pitrix stores in bucket `{bucket}` at {endpoint}: {reason}")]
    InvalidKey {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: String,
        reason: String,
    },
    #[error(
        "S3 endpoint {endpoint} is unreachable ({operation} {}): {reason}",
        target(bucket, key)
    )]
    Unreachable {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: Option<String>,
        operation: &'static str,
        reason: String,
    },
    #[error(
        "S3 endpoint {endpoint} did not answer within {}s ({operation} {})",
        REQUEST_TIMEOUT.as_secs(),
        target(bucket, key)
    )]
    Timeout {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: Option<String>,
        operation: &'static str,
    },
    #[error("bucket `{bucket}` does not exist at {endpoint}")]
    NoSuchBucket {
        endpoint: Arc<str>,
        bucket: Arc<str>,
    },
    #[error(
        "S3 at {endpoint} refused the credentials from {credentials} ({code}; {operation} {})",
        target(bucket, key)
    )]
    CredentialsRefused {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: Option<String>,
        operation: &'static str,
        /// Where the credentials came from (environment variable names), never their values.
        credentials: Arc<str>,
        code: String,
    },
    #[error(
        "`{key}` in bucket `{bucket}` at {endpoint} already holds other bytes ({stored}); pitrix \
         never overwrites a stored object (the new bytes: {new_size} bytes, sha256 {new_sha256})"
    )]
    Conflict {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: String,
        stored: String,
        new_size: u64,
        new_sha256: String,
    },
    #[error(
        "`{key}` in bucket `{bucket}` at {endpoint} is {size} bytes, more than the {limit} bytes \
         pitrix reads"
    )]
    TooLarge {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: String,
        size: u64,
        limit: u64,
    },
    #[error(
        "S3 at {endpoint} answered {operation} {} with HTTP {status}{}{}",
        target(bucket, key),
        code.as_deref().map(|c| format!(" {c}")).unwrap_or_default(),
        message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
    )]
    Response {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: Option<String>,
        operation: &'static str,
        status: u16,
        code: Option<String>,
        message: Option<String>,
    },
    #[error("S3 at {endpoint}: {operation} {}: {reason}", target(bucket, key))]
    Protocol {
        endpoint: Arc<str>,
        bucket: Arc<str>,
        key: Option<String>,
        operation: &'static str,
        reason: String,
    },
}

impl S3Error {
    /// What kind of failure this is, for `pitrix_errors_total{stage=…}` (see
    /// [`crate::Error::metric_label`]): stable whatever the message says.
    pub fn metric_label(&self) -> &'static str {
        match self {
            S3Error::MissingCredential { .. }
            | S3Error::InvalidEndpoint { .. }
            | S3Error::InvalidBucket { .. }
            | S3Error::InvalidKey { .. } => "storage_config",
            S3Error::Unreachable { .. } | S3Error::Timeout { .. } => "storage_network",
            S3Error::NoSuchBucket { .. } => "storage_bucket",
            S3Error::CredentialsRefused { .. } => "storage_credentials",
            S3Error::Conflict { .. } => "storage_conflict",
            S3Error::TooLarge { .. } | S3Error::Response { .. } | S3Error::Protocol { .. } => {
                "storage_response"
            }
        }
    }
}

/// "`key` in bucket `b`" or "bucket `b`", for messages.
fn target(bucket: &str, key: &Option<String>) -> String {
    match key {
        Some(key) => format!("of `{key}` in bucket `{bucket}`"),
        None => format!("on bucket `{bucket}`"),
    }
}

/// A secret key: kept, used to sign, never printed.
#[derive(Clone)]
struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("***")
    }
}

/// One bucket of one S3-compatible store.
#[derive(Debug, Clone)]
pub struct S3Client {
    /// As configured, without a trailing `/`: what messages show.
    endpoint: Arc<str>,
    base: Url,
    bucket: Arc<str>,
    region: String,
    path_style: bool,
    access_key: String,
    secret_key: Secret,
    /// Where the credentials came from, for messages.
    credentials: Arc<str>,
    page_size: u32,
    /// Made on first use, on the thread that sends: reqwest's blocking client runs a runtime
    /// of its own and panics when made inside an async context (apply calls this client through
    /// `spawn_blocking`, but makes it on a runtime thread). Shared by clones.
    http: Arc<OnceLock<Client>>,
}

/// What one request is about: for signing, and for the messages of its errors.
struct Call<'a> {
    operation: &'static str,
    method: Method,
    key: Option<&'a str>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<&'a [u8]>,
}

impl S3Client {
    /// The client `[storage.s3]` describes; the credentials come from the environment variables
    /// it names, read through `env` (`|v| std::env::var(v).ok()` in the CLI).
    pub fn from_settings(
        s: &S3Settings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<S3Client, S3Error> {
        S3Client::from_location(&s.location(), env)
    }

    /// The same from the store as the compiled output carries it (inventory.json).
    pub fn from_location(
        store: &S3Location,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<S3Client, S3Error> {
        let read = |var: &str, what: &'static str| {
            env(var)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| S3Error::MissingCredential {
                    var: var.to_string(),
                    what,
                    endpoint: store.endpoint.trim_end_matches('/').into(),
                    bucket: store.bucket.as_str().into(),
                })
        };
        let access_key = read(&store.access_key_id_env, "access key id")?;
        let secret_key = read(&store.secret_access_key_env, "secret access key")?;
        let mut client = S3Client::new(
            &store.endpoint,
            &store.bucket,
            &store.region,
            store.path_style,
            &access_key,
            &secret_key,
        )?;
        client.credentials = format!(
            "{} and {}",
            store.access_key_id_env, store.secret_access_key_env
        )
        .into();
        Ok(client)
    }

    /// A client for `bucket` at `endpoint` (`http(s)://host[:port]`). Nothing is contacted yet:
    /// [`S3Client::check_bucket`] does that.
    pub fn new(
        endpoint: &str,
        bucket: &str,
        region: &str,
        path_style: bool,
        access_key: &str,
        secret_key: &str,
    ) -> Result<S3Client, S3Error> {
        let shown: Arc<str> = shown_endpoint(endpoint).into();
        let invalid = |reason: String| S3Error::InvalidEndpoint {
            endpoint: shown.clone(),
            bucket: bucket.into(),
            reason,
        };
        let base = Url::parse(endpoint).map_err(|e| invalid(format!("not a URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the scheme is `{}`, not http or https",
                base.scheme()
            )));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid(
                "the URL carries credentials; [storage.s3] names environment variables instead"
                    .into(),
            ));
        }
        if base.path() != "/" || base.query().is_some() || base.fragment().is_some() {
            return Err(invalid(
                "it must be scheme://host[:port], without a path or a query".into(),
            ));
        }
        if base.host_str().is_none() {
            return Err(invalid("it has no host".into()));
        }
        if let Some(reason) = bucket_name_problem(bucket) {
            return Err(S3Error::InvalidBucket {
                endpoint: shown,
                bucket: bucket.into(),
                reason,
            });
        }
        if region.is_empty() {
            return Err(invalid("the signing region is empty".into()));
        }
        Ok(S3Client {
            endpoint: shown,
            base,
            bucket: bucket.into(),
            region: region.to_string(),
            path_style,
            access_key: access_key.to_string(),
            secret_key: Secret(secret_key.to_string()),
            credentials: "the given access key".into(),
            page_size: 1000,
            http: Arc::default(),
        })
    }

    /// Keys per ListObjectsV2 page (S3's default and maximum is 1000).
    pub fn with_page_size(mut self, page_size: u32) -> S3Client {
        self.page_size = page_size.clamp(1, 1000);
        self
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// HEAD of the bucket: `Ok` when it exists and the credentials are accepted; otherwise
    /// [`S3Error::Unreachable`] / [`S3Error::Timeout`], [`S3Error::NoSuchBucket`] or
    /// [`S3Error::CredentialsRefused`].
    pub fn check_bucket(&self) -> Result<(), S3Error> {
        let response = self.send(Call {
            operation: "HEAD",
            method: Method::HEAD,
            key: None,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        if status == StatusCode::NOT_FOUND {
            return Err(self.no_such_bucket());
        }
        // A HEAD answer has no body, so no S3 error code: ask once more with a GET (an empty
        // listing) to say why, e.g. SignatureDoesNotMatch rather than just 403.
        let response = self.send(Call {
            operation: "LIST",
            method: Method::GET,
            key: None,
            query: vec![
                ("list-type".into(), "2".into()),
                ("max-keys".into(), "0".into()),
            ],
            headers: Vec::new(),
            body: None,
        })?;
        if response.status().is_success() {
            return Err(self.error(
                "HEAD",
                None,
                status,
                Some("bucket HEAD failed, its listing did not".into()),
                None,
            ));
        }
        Err(self.error_from(response, "HEAD", None))
    }

    /// The object at `key`: `None` if there is none.
    pub fn head(&self, key: &str) -> Result<Option<StoredObject>, S3Error> {
        self.check_key(key)?;
        let response = self.send(Call {
            operation: "HEAD",
            method: Method::HEAD,
            key: Some(key),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        })?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.error_from(response, "HEAD", Some(key)));
        }
        // The header, not `content_length()`: a HEAD answer has no body to measure.
        let size = response
            .headers()
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| self.protocol("HEAD", Some(key), "no Content-Length in the answer"))?;
        let sha256 = response
            .headers()
            .get(SHA256_METADATA)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_ascii_lowercase());
        Ok(Some(StoredObject { size, sha256 }))
    }

    /// Stores `body` at `key` (a signed payload: the server checks the bytes it got), with its
    /// SHA-256 as user metadata. Overwrites: use [`S3Client::put_if_absent`] for packages.
    pub fn put(&self, key: &str, body: &[u8]) -> Result<(), S3Error> {
        self.put_with(key, body, false).map(drop)
    }

    /// Stores `body` at `key` unless something is there already: the same bytes are
    /// [`PutOutcome::Unchanged`], other bytes are [`S3Error::Conflict`] and stay as they are.
    /// An object without the SHA-256 metadata (stored by something else) of the same size is
    /// read back and compared.
    ///
    /// HEAD first, then a PUT with `If-None-Match: *`, so that a key written by someone else in
    /// between is not overwritten either where the server supports conditional writes (S3,
    /// MinIO, s3s); a server that ignores the header makes the window that short.
    pub fn put_if_absent(&self, key: &str, body: &[u8]) -> Result<PutOutcome, S3Error> {
        if let Some(stored) = self.head(key)? {
            return self.compare(key, &stored, body);
        }
        if self.put_with(key, body, true)? {
            return Ok(PutOutcome::Uploaded);
        }
        // Refused as present: someone stored it since the HEAD.
        match self.head(key)? {
            Some(stored) => self.compare(key, &stored, body),
            None => Err(self.protocol(
                "PUT",
                Some(key),
                "the conditional PUT was refused as if the key existed, but it does not",
            )),
        }
    }

    /// `Ok(false)`: `if_absent` and the server refused because the key exists (412).
    fn put_with(&self, key: &str, body: &[u8], if_absent: bool) -> Result<bool, S3Error> {
        self.check_key(key)?;
        let mut headers = vec![
            (SHA256_METADATA.to_string(), sigv4::sha256_hex(body)),
            (
                "content-type".to_string(),
                "application/octet-stream".to_string(),
            ),
        ];
        if if_absent {
            headers.push(("if-none-match".to_string(), "*".to_string()));
        }
        let response = self.send(Call {
            operation: "PUT",
            method: Method::PUT,
            key: Some(key),
            query: Vec::new(),
            headers,
            body: Some(body),
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(true);
        }
        if if_absent && status == StatusCode::PRECONDITION_FAILED {
            return Ok(false);
        }
        let error = self.error_from(response, "PUT", Some(key));
        match error {
            // A server that does not do conditional writes: a plain PUT.
            S3Error::Response { status: 501, .. } if if_absent => self.put_with(key, body, false),
            error => Err(error),
        }
    }

    /// [`PutOutcome::Unchanged`] if `stored` holds `body`, else [`S3Error::Conflict`].
    fn compare(
        &self,
        key: &str,
        stored: &StoredObject,
        body: &[u8],
    ) -> Result<PutOutcome, S3Error> {
        let new_sha256 = sigv4::sha256_hex(body);
        let new_size = body.len() as u64;
        let same = match &stored.sha256 {
            Some(sha256) => *sha256 == new_sha256 && stored.size == new_size,
            None => stored.size == new_size && self.get(key)?.is_some_and(|bytes| bytes == body),
        };
        if same {
            return Ok(PutOutcome::Unchanged);
        }
        Err(S3Error::Conflict {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            stored: match &stored.sha256 {
                Some(sha256) => format!("{} bytes, sha256 {sha256}", stored.size),
                None => format!("{} bytes", stored.size),
            },
            new_size,
            new_sha256,
        })
    }

    /// The bytes at `key`, `None` if there is no such object. Refuses objects over
    /// [`MAX_OBJECT_BYTES`] ([`S3Error::TooLarge`]) before and while reading.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, S3Error> {
        self.check_key(key)?;
        let response = self.send(Call {
            operation: "GET",
            method: Method::GET,
            key: Some(key),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        })?;
        let status = response.status();
        if !status.is_success() {
            let error = self.error_from(response, "GET", Some(key));
            return match error {
                S3Error::Response {
                    status: 404,
                    ref code,
                    ..
                } if code.as_deref().is_none_or(|c| c == "NoSuchKey") => Ok(None),
                error => Err(error),
            };
        }
        let too_large = |size| S3Error::TooLarge {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            key: key.to_string(),
            size,
            limit: MAX_OBJECT_BYTES,
        };
        if let Some(size) = response.content_length()
            && size > MAX_OBJECT_BYTES
        {
            return Err(too_large(size));
        }
        let bytes = self.read_bounded(response, MAX_OBJECT_BYTES, "GET", Some(key))?;
        if bytes.len() as u64 > MAX_OBJECT_BYTES {
            return Err(too_large(bytes.len() as u64));
        }
        Ok(Some(bytes))
    }

    /// Removes `key`; a key that is not there is not an error.
    pub fn delete(&self, key: &str) -> Result<(), S3Error> {
        self.check_key(key)?;
        let response = self.send(Call {
            operation: "DELETE",
            method: Method::DELETE,
            key: Some(key),
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        })?;
        if response.status().is_success() {
            return Ok(());
        }
        match self.error_from(response, "DELETE", Some(key)) {
            S3Error::Response {
                status: 404,
                code: Some(code),
                ..
            } if code == "NoSuchKey" => Ok(()),
            error => Err(error),
        }
    }

    /// Every key that starts with `prefix`, in the server's (lexicographic) order, all pages of
    /// ListObjectsV2.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, S3Error> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![
                ("list-type".to_string(), "2".to_string()),
                ("max-keys".to_string(), self.page_size.to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(token) = &token {
                query.push(("continuation-token".to_string(), token.clone()));
            }
            let response = self.send(Call {
                operation: "LIST",
                method: Method::GET,
                key: None,
                query,
                headers: Vec::new(),
                body: None,
            })?;
            if !response.status().is_success() {
                return Err(self.error_from(response, "LIST", None));
            }
            let body = self.read_bounded(response, MAX_DOCUMENT_BYTES, "LIST", None)?;
            let page = self.parse_list_page(&body)?;
            let page_len = page.keys.len();
            keys.extend(page.keys);
            match page.next_token {
                Some(next) if page.truncated => {
                    if page_len == 0 || token.as_deref() == Some(next.as_str()) {
                        return Err(self.protocol(
                            "LIST",
                            None,
                            "the listing is truncated but does not advance",
                        ));
                    }
                    token = Some(next);
                }
                None if page.truncated => {
                    return Err(self.protocol(
                        "LIST",
                        None,
                        "the listing is truncated without a NextContinuationToken",
                    ));
                }
                _ => return Ok(keys),
            }
        }
    }

    /// One ListObjectsV2 answer (`ListBucketResult`); one that cannot be read is an
    /// [`S3Error::Protocol`].
    fn parse_list_page(&self, body: &[u8]) -> Result<ListPage, S3Error> {
        let unreadable =
            |reason: &str| self.protocol("LIST", None, &format!("unreadable listing: {reason}"));
        let text =
            std::str::from_utf8(body).map_err(|e| unreadable(&format!("not UTF-8 ({e})")))?;
        let doc = roxmltree::Document::parse(text).map_err(|e| unreadable(&e.to_string()))?;
        let root = doc.root_element();
        if root.tag_name().name() != "ListBucketResult" {
            return Err(unreadable(&format!(
                "<{}> instead of <ListBucketResult>",
                root.tag_name().name()
            )));
        }
        let child_text = |node: roxmltree::Node, name: &str| {
            node.children()
                .find(|n| n.tag_name().name() == name)
                .map(|n| n.text().unwrap_or_default().to_string())
        };
        let mut keys = Vec::new();
        for contents in root
            .children()
            .filter(|n| n.tag_name().name() == "Contents")
        {
            keys.push(
                child_text(contents, "Key")
                    .ok_or_else(|| unreadable("a <Contents> without <Key>"))?,
            );
        }
        Ok(ListPage {
            keys,
            truncated: child_text(root, "IsTruncated").is_some_and(|t| t.trim() == "true"),
            next_token: child_text(root, "NextContinuationToken").filter(|t| !t.is_empty()),
        })
    }

    /// Signs and sends one request. Transport failures become [`S3Error::Unreachable`] or
    /// [`S3Error::Timeout`]; HTTP error statuses are returned as responses.
    fn send(&self, call: Call) -> Result<Response, S3Error> {
        let (url, path) = self.url(call.key, &call.query);
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        };
        let payload_sha256 = match call.body {
            Some(body) => sigv4::sha256_hex(body),
            None => sigv4::EMPTY_SHA256.to_string(),
        };
        let amz_date = k8s_openapi::jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let mut headers = vec![
            ("host".to_string(), host),
            ("x-amz-content-sha256".to_string(), payload_sha256.clone()),
            ("x-amz-date".to_string(), amz_date.clone()),
        ];
        headers.extend(call.headers);
        let signer = sigv4::Signer {
            access_key: &self.access_key,
            secret_key: &self.secret_key.0,
            region: &self.region,
            service: "s3",
            amz_date: &amz_date,
        };
        let authorization = signer.authorization(&sigv4::Request {
            method: call.method.as_str(),
            path: &path,
            query: &call.query,
            headers: &headers,
            payload_sha256: &payload_sha256,
        });
        let mut request = self.http()?.request(call.method, url);
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request = request.header(reqwest::header::AUTHORIZATION, authorization);
        if let Some(body) = call.body {
            request = request.body(body.to_vec());
        }
        request.send().map_err(|e| {
            let key = call.key.map(str::to_string);
            if e.is_timeout() {
                S3Error::Timeout {
                    endpoint: self.endpoint.clone(),
                    bucket: self.bucket.clone(),
                    key,
                    operation: call.operation,
                }
            } else {
                S3Error::Unreachable {
                    endpoint: self.endpoint.clone(),
                    bucket: self.bucket.clone(),
                    key,
                    operation: call.operation,
                    reason: root_cause(&e),
                }
            }
        })
    }

    fn http(&self) -> Result<&Client, S3Error> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            // A signed request is signed for one host: never follow it elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pitrix/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| S3Error::InvalidEndpoint {
                endpoint: self.endpoint.clone(),
                bucket: self.bucket.clone(),
                reason: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(self.http.get_or_init(|| http))
    }

    /// The URL of the bucket (`key` `None`) or of an object, and its encoded path as signed.
    fn url(&self, key: Option<&str>, query: &[(String, String)]) -> (Url, String) {
        let mut url = self.base.clone();
        let object = key.map(sigv4::encode_path).unwrap_or_default();
        let path = if self.path_style {
            match key {
                Some(_) => format!("/{}/{object}", self.bucket),
                None => format!("/{}", self.bucket),
            }
        } else {
            let host = format!(
                "{}.{}",
                self.bucket,
                self.base.host_str().unwrap_or_default()
            );
            // The bucket name was checked: it is a valid host label sequence.
            let _ = url.set_host(Some(&host));
            format!("/{object}")
        };
        // Already encoded, and keys with `.`/`..` segments are refused, so the URL keeps
        // exactly this path.
        url.set_path(&path);
        let query = sigv4::canonical_query(query);
        url.set_query((!query.is_empty()).then_some(query.as_str()));
        (url, path)
    }

    fn check_key(&self, key: &str) -> Result<(), S3Error> {
        let reason = if key.is_empty() {
            Some("it is empty")
        } else if key.len() > 1024 {
            Some("it is longer than S3's 1024 bytes")
        } else if key
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            Some("it has a `.` or `..` segment, which URLs resolve away")
        } else if key.chars().any(char::is_control) {
            Some("it has a control character")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(S3Error::InvalidKey {
                endpoint: self.endpoint.clone(),
                bucket: self.bucket.clone(),
                key: key.to_string(),
                reason: reason.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The typed error for a non-success answer (its S3 error document read, bounded).
    fn error_from(
        &self,
        response: Response,
        operation: &'static str,
        key: Option<&str>,
    ) -> S3Error {
        let status = response.status();
        let body = self
            .read_bounded(response, MAX_DOCUMENT_BYTES, operation, key)
            .unwrap_or_default();
        let (code, message) = parse_error(&body);
        self.error(operation, key, status, message, code)
    }

    fn error(
        &self,
        operation: &'static str,
        key: Option<&str>,
        status: StatusCode,
        message: Option<String>,
        code: Option<String>,
    ) -> S3Error {
        const CREDENTIAL_CODES: &[&str] = &[
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            // An access key the server does not know (s3s; AWS for an account without S3).
            "NotSignedUp",
            "AccessDenied",
            "InvalidToken",
            "ExpiredToken",
            "TokenRefreshRequired",
        ];
        match code.as_deref() {
            Some("NoSuchBucket") => return self.no_such_bucket(),
            Some(c) if CREDENTIAL_CODES.contains(&c) => {
                return self.credentials_refused(operation, key, c.to_string());
            }
            None if status == StatusCode::FORBIDDEN => {
                return self.credentials_refused(operation, key, "HTTP 403".to_string());
            }
            _ => {}
        }
        S3Error::Response {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            operation,
            status: status.as_u16(),
            code,
            message,
        }
    }

    fn credentials_refused(
        &self,
        operation: &'static str,
        key: Option<&str>,
        code: String,
    ) -> S3Error {
        S3Error::CredentialsRefused {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            operation,
            credentials: self.credentials.clone(),
            code,
        }
    }

    fn no_such_bucket(&self) -> S3Error {
        S3Error::NoSuchBucket {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
        }
    }

    fn protocol(&self, operation: &'static str, key: Option<&str>, reason: &str) -> S3Error {
        S3Error::Protocol {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            key: key.map(str::to_string),
            operation,
            reason: reason.to_string(),
        }
    }

    /// The body, at most `limit + 1` bytes of it (so that "over the limit" can be told).
    fn read_bounded(
        &self,
        response: Response,
        limit: u64,
        operation: &'static str,
        key: Option<&str>,
    ) -> Result<Vec<u8>, S3Error> {
        let mut bytes = Vec::new();
        response
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| {
                let reason = format!("reading the answer failed: {}", root_cause(&e));
                self.protocol(operation, key, &reason)
            })?;
        Ok(bytes)
    }
}

/// The endpoint as messages show it: without a trailing `/`, and without any user or password
/// a URL might carry (such an endpoint is refused, and its message must not print them).
fn shown_endpoint(endpoint: &str) -> String {
    match Url::parse(endpoint) {
        Ok(mut url) if !url.username().is_empty() || url.password().is_some() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.as_str().trim_end_matches('/').to_string()
        }
        Ok(_) => endpoint.trim_end_matches('/').to_string(),
        Err(_) => crate::redact::text(endpoint.trim_end_matches('/')),
    }
}

/// What breaks S3's bucket naming rules (what MinIO and s3s check before anything else), if
/// anything does: the reason of an [`S3Error::InvalidBucket`].
fn bucket_name_problem(name: &str) -> Option<String> {
    if !(3..=63).contains(&name.len()) {
        return Some("it must be 3 to 63 characters long".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Some(format!(
            "`{c}` is not allowed (lowercase letters, digits, `-` and `.` only)"
        ));
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return Some("it must start and end with a letter or a digit".into());
    }
    if name.contains("..") {
        return Some("it must not contain `..`".into());
    }
    None
}

/// The innermost cause of an error chain, e.g. "Connection refused (os error 111)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// `Code` and `Message` of an S3 error document (`<Error><Code>…</Code>…</Error>`), if any.
fn parse_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(text) = std::str::from_utf8(body) else {
        return (None, None);
    };
    let Ok(doc) = roxmltree::Document::parse(text) else {
        return (None, None);
    };
    let root = doc.root_element();
    let child = |name: &str| {
        root.children()
            .find(|n| n.tag_name().name() == name)
            .and_then(|n| n.text())
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    (child("Code"), child("Message"))
}

struct ListPage {
    keys: Vec<String>,
    truncated: bool,
    next_token: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, bucket: &str) -> Result<S3Client, S3Error> {
        S3Client::new(endpoint, bucket, "us-east-1", true, "AK", "the-secret")
    }

    #[test]
    fn urls_are_path_style_or_virtual_hosted_with_the_signed_path() {
        let c = client("http://127.0.0.1:9000/", "app-store").unwrap();
        let (url, path) = c.url(Some("ws1/a b+c.tgz"), &[]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/app-store/ws1/a%20b%2Bc.tgz"
        );
        assert_eq!(path, "/app-store/ws1/a%20b%2Bc.tgz");
        let (url, path) = c.url(None, &[("prefix".into(), "a b/".into())]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/app-store?prefix=a%20b%2F"
        );
        assert_eq!(path, "/app-store");

        let c = S3Client::new(
            "https://s3.example.com",
            "app-store",
            "eu-west-1",
            false,
            "AK",
            "S",
        )
        .unwrap();
        let (url, path) = c.url(Some("k"), &[]);
        assert_eq!(url.as_str(), "https://app-store.s3.example.com/k");
        assert_eq!(path, "/k");
    }

    #[test]
    fn bad_endpoints_buckets_and_keys_are_named() {
        let e = client("minio:9000", "app-store").unwrap_err().to_string();
        assert!(
            e.contains("`minio:9000`") && e.contains("`app-store`"),
            "{e}"
        );
        let e = client("ftp://host", "app-store").unwrap_err().to_string();
        assert!(e.contains("not http or https"), "{e}");
        let e = client("http://u:p@host", "app-store")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("carries credentials") && !e.contains(":p@"),
            "{e}"
        );
        let e = client("http://host/base", "app-store")
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a path"), "{e}");
        let e = client("http://host", "App_Store").unwrap_err().to_string();
        assert!(
            e.contains("`App_Store` is not a valid S3 bucket name"),
            "{e}"
        );
        let c = client("http://host", "app-store").unwrap();
        for key in ["", "a/../b", "./a", "a\nb"] {
            let e = c.head(key).unwrap_err();
            assert!(matches!(e, S3Error::InvalidKey { .. }), "{key:?}: {e}");
        }
    }

    #[test]
    fn missing_credential_variables_are_named_and_the_secret_never_printed() {
        let settings: S3Settings = toml::from_str(
            "endpoint = \"http://127.0.0.1:9000\"\nbucket = \"app-store\"\n\
             accessKeyIdEnv = \"MY_KEY\"",
        )
        .unwrap();
        let e = S3Client::from_settings(&settings, |_| None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "environment variable MY_KEY is not set: [storage.s3] reads the S3 access key id \
             from it (bucket `app-store` at http://127.0.0.1:9000)"
        );
        let e = S3Client::from_settings(&settings, |v| (v == "MY_KEY").then(|| "AK".into()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("PITRIX_S3_SECRET_ACCESS_KEY is not set"), "{e}");
        let c = S3Client::from_settings(&settings, |v| {
            Some(if v == "MY_KEY" { "AK" } else { "hush-hush" }.into())
        })
        .unwrap();
        assert!(!format!("{c:?}").contains("hush-hush"));
    }

    /// apply is async: the client is made and dropped on a runtime thread and used through
    /// `spawn_blocking` (reqwest's blocking client runs its own runtime on its own thread).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn made_and_dropped_in_async_code_used_through_spawn_blocking() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = client(&format!("http://127.0.0.1:{port}"), "app-store").unwrap();
        let used = c.clone();
        let e = tokio::task::spawn_blocking(move || used.check_bucket())
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, S3Error::Unreachable { .. }), "{e}");
        drop(c);
    }

    #[test]
    fn error_documents_and_listings_are_read() {
        let (code, message) = parse_error(
            b"<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>",
        );
        assert_eq!(code.as_deref(), Some("NoSuchBucket"));
        assert_eq!(message.as_deref(), Some("gone"));
        assert_eq!(parse_error(b""), (None, None));

        let client = client("http://127.0.0.1:9000", "packages").unwrap();
        let page = client
            .parse_list_page(
            br#"<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
            <KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>
            <NextContinuationToken>t1</NextContinuationToken>
            <Contents><Key>a &amp; b</Key><Size>1</Size></Contents>
            <Contents><Key>c</Key></Contents></ListBucketResult>"#,
        )
        .unwrap();
        assert_eq!(page.keys, ["a & b", "c"]);
        assert!(page.truncated);
        assert_eq!(page.next_token.as_deref(), Some("t1"));
        let e = client.parse_list_page(b"<Error/>").err().unwrap();
        assert!(matches!(e, S3Error::Protocol { .. }), "{e}");
        assert!(
            e.to_string()
                .contains("unreadable listing: <Error> instead of <ListBucketResult>"),
            "{e}"
        );
    }
}
