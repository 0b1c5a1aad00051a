//! AWS Signature Version 4 (`AWS4-HMAC-SHA256` in the `Authorization` header), the subset S3
//! uses: no path normalization, each path segment URI-encoded once, a signed payload hash.
//!
//! Hand-written on `hmac` + `sha2` rather than the `aws-sigv4` crate: that crate brings six
//! `aws-smithy-*` runtime crates and a second RustCrypto stack, and under this crate's
//! rust-version it resolves to an old release line. The signer is checked against AWS's
//! published SigV4 test suite and the signed examples of the S3 API reference (tests below).

use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

/// SHA-256 of the empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Everything but SigV4's unreserved characters `A-Z a-z 0-9 - . _ ~` is percent-encoded.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The same, but `/` kept: an S3 key's path as it goes into the URL and the canonical request.
const URI_PATH: &AsciiSet = &URI_COMPONENT.remove(b'/');

/// A query parameter name or value, encoded as SigV4 and S3 want it.
pub fn encode_component(s: &str) -> String {
    utf8_percent_encode(s, URI_COMPONENT).to_string()
}

/// A path, encoded as SigV4 wants it for S3 (every byte but the unreserved ones and `/`).
pub fn encode_path(s: &str) -> String {
    utf8_percent_encode(s, URI_PATH).to_string()
}

/// Lowercase hex of SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The request as it is signed. `path` is already encoded ([`encode_path`]); `query` and
/// `headers` are raw. `headers` must include `host` and `x-amz-date`; every header listed is
/// signed.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub headers: &'a [(String, String)],
    pub payload_sha256: &'a str,
}

/// Who signs, for which scope, and when.
pub struct Signer<'a> {
    pub access_key: &'a str,
    pub secret_key: &'a str,
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of the `x-amz-date` header.
    pub amz_date: &'a str,
}

/// The canonical query string: names and values encoded, sorted by name then value.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (encode_component(k), encode_component(v)))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request and its signed-headers list.
pub fn canonical_request(req: &Request) -> (String, String) {
    // Names lowercased; values trimmed, inner runs of spaces collapsed; repeated names joined
    // by `,` in the order given; sorted by name.
    let mut headers: Vec<(String, String)> = Vec::new();
    for (name, value) in req.headers {
        let name = name.to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => headers.push((name, value)),
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        req.method,
        req.path,
        canonical_query(req.query),
        req.payload_sha256
    );
    (canonical, signed_headers)
}

impl Signer<'_> {
    fn date(&self) -> &str {
        &self.amz_date[..8.min(self.amz_date.len())]
    }

    /// `<date>/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date(),
            self.region,
            self.service
        )
    }

    pub fn string_to_sign(&self, canonical_request: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256\n{}\n{}\n{}",
            self.amz_date,
            self.scope(),
            sha256_hex(canonical_request.as_bytes())
        )
    }

    pub fn signature(&self, string_to_sign: &str) -> String {
        let secret = format!("AWS4{}", self.secret_key);
        let key = hmac(secret.as_bytes(), self.date().as_bytes());
        let key = hmac(&key, self.region.as_bytes());
        let key = hmac(&key, self.service.as_bytes());
        let key = hmac(&key, b"aws4_request");
        hex(&hmac(&key, string_to_sign.as_bytes()))
    }

    /// The `Authorization` header's value for `req`.
    pub fn authorization(&self, req: &Request) -> String {
        let (canonical, signed_headers) = canonical_request(req);
        let signature = self.signature(&self.string_to_sign(&canonical));
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key,
            self.scope()
        )
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    //! Oracles: AWS's SigV4 test suite (aws-c-auth `tests/aws-signing-test-suite/v4/<case>`,
    //! also shipped with the `aws-sigv4` crate): credentials `AKIDEXAMPLE`, 2015-08-30T12:36:00Z,
    //! `us-east-1`, service `service`; and the signed examples of the S3 API reference
    //! ("Signature Calculations for the Authorization Header: Transferring Payload in a Single
    //! Chunk"): `AKIAIOSFODNN7EXAMPLE`, 2013-05-24, bucket `examplebucket`.
    use super::*;

    const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const S3_DOCS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Signs one test-suite case (`host` and `x-amz-date` added as the suite does).
    fn suite_case(
        method: &str,
        raw_path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
        sign_body: bool,
    ) -> (String, String) {
        let mut headers = pairs(headers);
        headers.push(("Host".into(), "example.amazonaws.com".into()));
        headers.push(("X-Amz-Date".into(), "20150830T123600Z".into()));
        let payload = sha256_hex(body);
        if sign_body {
            headers.push(("x-amz-content-sha256".into(), payload.clone()));
        }
        let path = encode_path(raw_path);
        let query = pairs(query);
        let req = Request {
            method,
            path: &path,
            query: &query,
            headers: &headers,
            payload_sha256: &payload,
        };
        let signer = Signer {
            access_key: "AKIDEXAMPLE",
            secret_key: SUITE_SECRET,
            region: "us-east-1",
            service: "service",
            amz_date: "20150830T123600Z",
        };
        let (canonical, _) = canonical_request(&req);
        let signature = signer.signature(&signer.string_to_sign(&canonical));
        (canonical, signature)
    }

    #[test]
    fn get_vanilla() {
        let (canonical, signature) = suite_case("GET", "/", &[], &[], b"", false);
        assert_eq!(
            canonical,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    #[test]
    fn suite_signatures() {
        #[allow(clippy::type_complexity)]
        let cases: &[(&str, &str, &str, &[(&str, &str)], &[(&str, &str)], &str)] = &[
            (
                "get-vanilla-query-order-key-case",
                "GET",
                "/",
                &[("Param2", "value2"), ("Param1", "value1")],
                &[],
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
            (
                "get-vanilla-query-order-encoded",
                "GET",
                "/",
                &[
                    ("Param-3", "Value3"),
                    ("Param", "Value2"),
                    ("\u{1234}", "Value1"),
                ],
                &[],
                "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
            ),
            (
                "get-vanilla-utf8-query",
                "GET",
                "/",
                &[("\u{1234}", "bar")],
                &[],
                "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
            ),
            (
                "get-vanilla-query-unreserved",
                "GET",
                "/",
                &[(
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                )],
                &[],
                "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
            ),
            (
                "get-header-value-trim",
                "GET",
                "/",
                &[],
                &[("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
                "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
            ),
            (
                "get-header-key-duplicate",
                "GET",
                "/",
                &[],
                &[
                    ("My-Header1", "value2"),
                    ("My-Header1", "value2"),
                    ("My-Header1", "value1"),
                ],
                "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            ),
            (
                "get-space-unnormalized",
                "GET",
                "/example space/",
                &[],
                &[],
                "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
            ),
            (
                "get-slashes-unnormalized",
                "GET",
                "//example//",
                &[],
                &[],
                "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
            ),
            (
                "get-utf8",
                "GET",
                "/\u{1234}",
                &[],
                &[],
                "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
            ),
            (
                "get-unreserved",
                "GET",
                "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                &[],
                &[],
                "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
            ),
            (
                "post-vanilla-query",
                "POST",
                "/",
                &[("Param1", "value1")],
                &[],
                "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
            ),
            (
                "post-header-key-sort",
                "POST",
                "/",
                &[],
                &[("My-Header1", "value1")],
                "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
            ),
        ];
        for (name, method, path, query, headers, want) in cases {
            let (canonical, signature) = suite_case(method, path, query, headers, b"", false);
            assert_eq!(
                &signature, want,
                "{name}: canonical request was\n{canonical}"
            );
        }
    }

    #[test]
    fn suite_signed_body() {
        // post-x-www-form-urlencoded: the payload hash is signed and sent.
        let (canonical, signature) = suite_case(
            "POST",
            "/",
            &[],
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "13"),
            ],
            b"Param1=value1",
            true,
        );
        assert!(
            canonical.ends_with("9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e"),
            "{canonical}"
        );
        assert_eq!(
            signature,
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"
        );
    }

    fn s3_docs_signer() -> Signer<'static> {
        Signer {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret_key: S3_DOCS_SECRET,
            region: "us-east-1",
            service: "s3",
            amz_date: "20130524T000000Z",
        }
    }

    #[test]
    fn s3_docs_get_object() {
        let headers = pairs(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let path = encode_path("/test.txt");
        let req = Request {
            method: "GET",
            path: &path,
            query: &[],
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        assert_eq!(
            s3_docs_signer().authorization(&req),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn s3_docs_put_object() {
        let body = b"Welcome to Amazon S3.";
        let payload = sha256_hex(body);
        assert_eq!(
            payload,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let headers = pairs(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", &payload),
        ]);
        // `$` is encoded: the key is `test$file.text`.
        let path = encode_path("/test$file.text");
        assert_eq!(path, "/test%24file.text");
        let req = Request {
            method: "PUT",
            path: &path,
            query: &[],
            headers: &headers,
            payload_sha256: &payload,
        };
        let signer = s3_docs_signer();
        let (canonical, signed_headers) = canonical_request(&req);
        assert_eq!(
            signed_headers,
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class"
        );
        assert_eq!(
            signer.signature(&signer.string_to_sign(&canonical)),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn s3_docs_list_objects() {
        // GET /?max-keys=2&prefix=J on examplebucket: a query signed sorted and encoded.
        let headers = pairs(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let query = pairs(&[("prefix", "J"), ("max-keys", "2")]);
        let req = Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            payload_sha256: EMPTY_SHA256,
        };
        let signer = s3_docs_signer();
        let (canonical, _) = canonical_request(&req);
        assert_eq!(
            signer.signature(&signer.string_to_sign(&canonical)),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
        );
    }

    #[test]
    fn encoding_of_keys_and_query_values() {
        assert_eq!(
            encode_path("/b/ws 1/a+b/c~d_e.tgz"),
            "/b/ws%201/a%2Bb/c~d_e.tgz"
        );
        assert_eq!(encode_component("a/b c+d=e&f"), "a%2Fb%20c%2Bd%3De%26f");
        assert_eq!(encode_component("ü"), "%C3%BC");
    }
}
