//! pitrix's S3 client (`pitrix::storage::s3`) against a real S3 server (`pitrix_testkit::s3`:
//! s3s-fs, which verifies SigV4). What is stored is read back from the server's disk, not
//! through the client under test.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use pitrix::storage::s3::{PutOutcome, S3Client, S3Error, StoredObject};
use pitrix_testkit::s3::S3Server;

const BUCKET: &str = "app-store";

fn client(server: &S3Server, bucket: &str) -> S3Client {
    S3Client::new(
        &server.endpoint,
        bucket,
        &server.region,
        true,
        &server.access_key,
        &server.secret_key,
    )
    .unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn put_head_get_list_delete_round_trip() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let s3 = client(&server, BUCKET);
    s3.check_bucket().unwrap();

    let chart = b"\x1f\x8b\x08\x00 a chart package".repeat(100);
    assert_eq!(s3.head("ws1/appv-1").unwrap(), None);
    assert_eq!(s3.get("ws1/appv-1").unwrap(), None);
    s3.put("ws1/appv-1", &chart).unwrap();
    assert_eq!(
        server.object(BUCKET, "ws1/appv-1").as_deref(),
        Some(&chart[..])
    );
    assert_eq!(
        s3.head("ws1/appv-1").unwrap(),
        Some(StoredObject {
            size: chart.len() as u64,
            sha256: Some(sha256_hex(&chart)),
        })
    );
    assert_eq!(s3.get("ws1/appv-1").unwrap().as_deref(), Some(&chart[..]));

    // An empty object is an object.
    s3.put("att-empty", b"").unwrap();
    assert_eq!(
        server.object(BUCKET, "att-empty").as_deref(),
        Some(&b""[..])
    );
    assert_eq!(s3.get("att-empty").unwrap().as_deref(), Some(&b""[..]));

    s3.put("ws2/appv-9", b"other").unwrap();
    assert_eq!(
        s3.list("").unwrap(),
        ["att-empty", "ws1/appv-1", "ws2/appv-9"]
    );
    assert_eq!(s3.list("ws1/").unwrap(), ["ws1/appv-1"]);
    assert_eq!(s3.list("nothing-here/").unwrap(), Vec::<String>::new());

    s3.delete("ws1/appv-1").unwrap();
    assert_eq!(server.object(BUCKET, "ws1/appv-1"), None);
    assert_eq!(s3.head("ws1/appv-1").unwrap(), None);
    // Deleting what is not there is not an error.
    s3.delete("ws1/appv-1").unwrap();
    assert_eq!(server.keys(BUCKET), ["att-empty", "ws2/appv-9"]);
}

#[test]
fn list_follows_continuation_tokens() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let s3 = client(&server, BUCKET).with_page_size(2);
    let mut want: Vec<String> = (0..7).map(|i| format!("ws/appv-{i}")).collect();
    want.push("other".to_string());
    for key in &want {
        s3.put(key, key.as_bytes()).unwrap();
    }
    want.sort();
    assert_eq!(s3.list("").unwrap(), want);
    let in_ws: Vec<String> = want
        .iter()
        .filter(|k| k.starts_with("ws/"))
        .cloned()
        .collect();
    assert_eq!(in_ws.len(), 7);
    assert_eq!(s3.list("ws/").unwrap(), in_ws);
    assert_eq!(server.keys(BUCKET), want);
}

#[test]
fn put_if_absent_uploads_once_and_never_overwrites() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let s3 = client(&server, BUCKET);

    let v1 = b"redis-11.3.4.tgz bytes".to_vec();
    assert_eq!(
        s3.put_if_absent("ws1/appv-redis", &v1).unwrap(),
        PutOutcome::Uploaded
    );
    assert_eq!(
        s3.put_if_absent("ws1/appv-redis", &v1).unwrap(),
        PutOutcome::Unchanged
    );

    // Same size, other bytes: refused, the stored bytes untouched.
    let mut other = v1.clone();
    other[0] ^= 0xff;
    let e = s3.put_if_absent("ws1/appv-redis", &other).unwrap_err();
    assert!(matches!(e, S3Error::Conflict { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains("`ws1/appv-redis`")
            && message.contains(&format!("`{BUCKET}`"))
            && message.contains(&server.endpoint)
            && message.contains(&sha256_hex(&v1))
            && message.contains("never overwrites"),
        "{message}"
    );
    assert_eq!(server.object(BUCKET, "ws1/appv-redis"), Some(v1.clone()));

    // Stored by something else (no sha256 metadata, as KubeSphere's console stores packages):
    // compared byte for byte.
    std::fs::write(server.data_dir.join(BUCKET).join("console-upload"), &v1).unwrap();
    assert_eq!(
        s3.head("console-upload").unwrap(),
        Some(StoredObject {
            size: v1.len() as u64,
            sha256: None
        })
    );
    assert_eq!(
        s3.put_if_absent("console-upload", &v1).unwrap(),
        PutOutcome::Unchanged
    );
    let e = s3.put_if_absent("console-upload", &other).unwrap_err();
    assert!(matches!(e, S3Error::Conflict { .. }), "{e}");
    let e = s3.put_if_absent("console-upload", b"short").unwrap_err();
    assert!(matches!(e, S3Error::Conflict { .. }), "{e}");
    assert_eq!(server.object(BUCKET, "console-upload"), Some(v1));
}

#[test]
fn a_wrong_secret_is_refused_naming_where_the_credentials_came_from() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let settings: pitrix::catalog::S3Settings = toml::from_str(&format!(
        "endpoint = \"{}\"\nbucket = \"{BUCKET}\"",
        server.endpoint
    ))
    .unwrap();
    let s3 = S3Client::from_settings(&settings, |var| match var {
        "PITRIX_S3_ACCESS_KEY_ID" => Some(server.access_key.clone()),
        "PITRIX_S3_SECRET_ACCESS_KEY" => Some("not-the-secret-key".to_string()),
        _ => None,
    })
    .unwrap();

    let e = s3.check_bucket().unwrap_err();
    assert!(matches!(e, S3Error::CredentialsRefused { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.contains(&format!(
            "S3 at {} refused the credentials",
            server.endpoint
        )) && message.contains("PITRIX_S3_ACCESS_KEY_ID")
            && message.contains("SignatureDoesNotMatch")
            && message.contains(&format!("`{BUCKET}`"))
            && !message.contains("not-the-secret-key"),
        "{message}"
    );

    let e = s3.put("ws1/appv-1", b"bytes").unwrap_err();
    assert!(matches!(e, S3Error::CredentialsRefused { .. }), "{e}");
    assert!(e.to_string().contains("`ws1/appv-1`"), "{e}");
    assert_eq!(server.keys(BUCKET), Vec::<String>::new());
    for result in [s3.get("k").map(drop), s3.list("").map(drop), s3.delete("k")] {
        let e = result.unwrap_err();
        assert!(matches!(e, S3Error::CredentialsRefused { .. }), "{e}");
    }

    // An access key the server does not know.
    let stranger = S3Client::new(
        &server.endpoint,
        BUCKET,
        &server.region,
        true,
        "nobody",
        &server.secret_key,
    )
    .unwrap();
    let e = stranger.check_bucket().unwrap_err();
    assert!(matches!(e, S3Error::CredentialsRefused { .. }), "{e}");
}

#[test]
fn a_missing_bucket_is_named() {
    let server = S3Server::start();
    let s3 = client(&server, "no-such-bucket");
    let e = s3.check_bucket().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "bucket `no-such-bucket` does not exist at {}",
            server.endpoint
        )
    );
    // A listing says so too. (Object requests do not: s3s-fs, unlike S3 and MinIO, answers a
    // GET in a missing bucket with NoSuchKey and creates the bucket on a PUT into it, which is
    // one more reason why uploads check the bucket first.)
    let e = s3.list("").unwrap_err();
    assert!(matches!(e, S3Error::NoSuchBucket { .. }), "{e}");
    assert!(!server.has_bucket("no-such-bucket"));
}

#[test]
fn an_unreachable_endpoint_is_named_within_bounded_time() {
    // A port that was free a moment ago and that nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let s3 = S3Client::new(&endpoint, BUCKET, "us-east-1", true, "AK", "SK").unwrap();
    let started = Instant::now();
    let e = s3.check_bucket().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, S3Error::Unreachable { .. }), "{e}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!("S3 endpoint {endpoint} is unreachable"))
            && message.contains(&format!("`{BUCKET}`"))
            && message.to_lowercase().contains("connection refused"),
        "{message}"
    );
    let e = s3.put_if_absent("ws1/appv-1", b"x").unwrap_err();
    assert!(e.to_string().contains("`ws1/appv-1`"), "{e}");
}

#[test]
fn keys_that_need_uri_encoding_round_trip() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let s3 = client(&server, BUCKET);
    let keys = [
        "ws 1/app v+2/chart (1).tgz",
        "ws1/a+b=c&d;e,f@g$h!i'j",
        "ws1/ünïcödé-ሴ.tgz",
        "ws1/percent%20not-decoded",
        "ws1/tilde~under_score.dot",
    ];
    for key in keys {
        s3.put(key, key.as_bytes())
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(
            server.object(BUCKET, key).as_deref(),
            Some(key.as_bytes()),
            "{key}: stored under another name; the bucket holds {:?}",
            server.keys(BUCKET)
        );
        assert_eq!(
            s3.get(key).unwrap().as_deref(),
            Some(key.as_bytes()),
            "{key}"
        );
        assert!(s3.head(key).unwrap().is_some(), "{key}");
        assert_eq!(
            s3.put_if_absent(key, key.as_bytes()).unwrap(),
            PutOutcome::Unchanged,
            "{key}"
        );
    }
    let mut sorted: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    sorted.sort();
    assert_eq!(s3.list("").unwrap(), sorted);
    assert_eq!(s3.list("ws 1/app v+").unwrap(), [keys[0]]);
    for key in keys {
        s3.delete(key).unwrap();
    }
    assert_eq!(server.keys(BUCKET), Vec::<String>::new());
}

#[test]
fn get_refuses_objects_over_the_limit() {
    let server = S3Server::start();
    server.create_bucket(BUCKET);
    let s3 = client(&server, BUCKET);
    // Written on the server's disk: a sparse file, no 64 MiB upload.
    let big = std::fs::File::create(server.data_dir.join(BUCKET).join("huge")).unwrap();
    big.set_len(pitrix::storage::s3::MAX_OBJECT_BYTES + 1)
        .unwrap();
    drop(big);
    let e = s3.get("huge").unwrap_err();
    assert!(matches!(e, S3Error::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("`huge`"), "{e}");
}
