//! Kubernetes name rules and KubeSphere's ID rules (reference §3), in one place so that
//! validation and compilation can never disagree.

use md5::{Digest as _, Md5};
use sha1::Sha1;

/// Longest label value, and so longest app ID, version ID and repo name.
pub const MAX_LABEL_VALUE: usize = 63;
/// Longest release name: `helm-uninstall-<release>-<6>` must stay a 63-character label value.
pub const MAX_RELEASE_NAME: usize = 41;
/// Longest Helm release name (Helm's `chartutil.ValidateReleaseName`): KubeSphere 3.x's limit.
pub const MAX_HELM_RELEASE_NAME: usize = 53;

/// Why a name is not a DNS-1123 label, if it is not.
pub fn dns1123_label(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_LABEL_VALUE {
        return Err(format!(
            "must be at most {MAX_LABEL_VALUE} characters (is {})",
            name.len()
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("must consist of lowercase letters, digits and '-'".into());
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Whether `name` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Why `id` is not an attachment ID as KubeSphere 4.x makes them, if it is not:
/// `<field>-att-<5 of a-z0-9>` (`GetUuid36` in CreateAttachment, `pkg/kapis/application/v2`),
/// and a ConfigMap name, which is where KubeSphere keeps it without S3.
pub fn attachment_id(id: &str) -> Result<(), String> {
    let Some((field, tail)) = id.rsplit_once("-att-") else {
        return Err("has no `-att-`".into());
    };
    if field.is_empty() {
        return Err("has nothing before `-att-`".into());
    }
    if tail.len() != 5
        || !tail
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err("must end in `-att-` and 5 lowercase letters or digits".into());
    }
    if !is_dns1123_subdomain(id) {
        return Err(
            "must be a ConfigMap name: lowercase letters, digits, '-' and '.', at most 253 characters"
                .into(),
        );
    }
    Ok(())
}

/// Why `id` is not an attachment ID as KubeSphere 3.x makes them, if it is not: `att-` and
/// letters and digits (`idutils.GetUuid("att-")`; pitrix's own are `att-<20 hex>`).
pub fn attachment_id_v3(id: &str) -> Result<(), String> {
    let Some(tail) = id.strip_prefix("att-") else {
        return Err("does not start with `att-`".into());
    };
    if tail.is_empty() || !tail.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("must be `att-` and letters or digits".into());
    }
    Ok(())
}

/// `GenerateShortNameMD5Hash`: a chart's name as KubeSphere shortens it for app IDs.
pub fn short_name(chart: &str) -> String {
    let lower = chart.to_lowercase();
    if lower.len() <= 14 && is_dns1123_subdomain(&lower) {
        return lower;
    }
    hex(&Md5::digest(lower.as_bytes()))[..10].to_string()
}

/// `FormatVersion`: the version part of a version ID. Not lowercased first, so any capital
/// letter sends a version to the SHA-1 fallback.
pub fn version_slug(version: &str) -> String {
    if is_dns1123_subdomain(version) {
        return version.to_string();
    }
    hex(&Sha1::digest(version.as_bytes()))[..12].to_string()
}

/// An ApplicationVersion's name: `<app>-<version slug>`.
pub fn version_id(app_id: &str, version: &str) -> String {
    format!("{app_id}-{}", version_slug(version))
}

/// The app ID KubeSphere gives a chart of a synced repo: `<repo>-<short name>`.
pub fn repo_app_id(repo: &str, chart: &str) -> String {
    format!("{repo}-{}", short_name(chart))
}

/// Lower-case hex of `bytes`: every digest and ID pitrix writes.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// A container image reference the kubelet can pull: `[registry/]path[:tag][@sha256:<64 hex>]`.
pub fn image_reference(s: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "{why} (expected [REGISTRY/]NAME[:TAG] or [REGISTRY/]NAME@sha256:DIGEST)"
        ))
    };
    if s.is_empty() {
        return bad("empty image");
    }
    if let Some(c) = s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return bad(&format!("{c:?} in an image reference"));
    }
    let (name, digest) = match s.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (s, None),
    };
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return bad(&format!(
                "digest `{digest}` is not sha256: and 64 lower-case hex digits"
            ));
        }
    }
    // A tag is what follows a `:` in the last component (a registry's `:port` is in the first).
    let mut components: Vec<&str> = name.split('/').collect();
    let last = components.pop().unwrap_or_default();
    let (last, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    components.push(last);
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && !tag.starts_with(['.', '-'])
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !ok {
            return bad(&format!("tag `{tag}` is not a valid tag"));
        }
    }
    if components.iter().any(|c| c.is_empty()) {
        return bad("an empty name component");
    }
    // The first component may be a registry host (`Registry.Example:5000`); the repository's
    // path components are lower case.
    let registry = components.len() > 1
        && (components[0].contains(['.', ':']) || components[0] == "localhost");
    let lower = |c: &&str| {
        c.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
    };
    if !components[usize::from(registry)..].iter().all(lower) {
        return bad("repository names are lower case letters, digits, `.`, `_` and `-`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_ids() {
        // As KubeSphere 4's CreateAttachment makes them, and as pitrix derives them.
        for ok in [
            "screenshot-att-k3x9p",
            "file-att-0a1b2",
            "demo.v2-att-abcde",
        ] {
            assert_eq!(attachment_id(ok), Ok(()), "{ok}");
        }
        for bad in [
            "screenshot-att-k3x9p2q7",
            "screenshot-att-K3X9P",
            "-att-k3x9p",
            "att-k3x9p",
            "Shot-att-k3x9p",
            "shot_1-att-k3x9p",
            "",
        ] {
            assert!(attachment_id(bad).is_err(), "{bad}");
        }
        for ok in [
            "att-B6BZVN3mOPvx",
            "att-300m50zn91nwz5",
            "att-0123456789abcdef0123",
        ] {
            assert_eq!(attachment_id_v3(ok), Ok(()), "{ok}");
        }
        for bad in ["screenshot-att-k3x9p", "att-", "att-a/b", "att-a-b"] {
            assert!(attachment_id_v3(bad).is_err(), "{bad}");
        }
    }

    // The examples of reference §3, computed by KubeSphere's own functions.
    #[test]
    fn short_names() {
        assert_eq!(short_name("nginx"), "nginx");
        assert_eq!(short_name("kube-prometheus-stack"), "d8074874fa");
        assert_eq!(short_name("mysql_chart"), "5ec895f198");
        assert_eq!(short_name("NGINX"), "nginx");
    }

    #[test]
    fn version_slugs() {
        assert_eq!(version_slug("1.2.3"), "1.2.3");
        assert_eq!(version_slug("v1.2.3"), "v1.2.3");
        assert_eq!(version_slug("1.0.0-rc.1"), "1.0.0-rc.1");
        assert_eq!(version_slug("1.0.0+build.1"), "04143de7f44b");
        assert_eq!(version_slug("V1.0"), "f319c8825e2c");
    }

    #[test]
    fn ids() {
        assert_eq!(repo_app_id("bitnami", "nginx"), "bitnami-nginx");
        assert_eq!(
            version_id("bitnami-nginx", "15.0.1"),
            "bitnami-nginx-15.0.1"
        );
    }

    #[test]
    fn labels() {
        assert!(dns1123_label("web-1").is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(dns1123_label(bad).is_err(), "{bad}");
        }
    }
}
