//! The store preview (`compile --publish` → out/site/), opened in headless Chromium (Debian's
//! `chromium`, driven by tests/oracle/site_check.py over the DevTools protocol): every page
//! reachable from the front page loads without a console error, every link and anchor resolves,
//! nothing is fetched from outside the site, and a screenshot of the front page is written to
//! `target/tmp/site/front.png` (CARGO_TARGET_TMPDIR) for people to look at.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_tree, example_catalog, repo_root};

fn pitrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pitrix"))
        .args(args)
        .output()
        .unwrap()
}

fn publish(catalog: &Path, out: &Path) {
    let o = pitrix(&[
        "compile",
        catalog.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--publish",
    ]);
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Runs site_check.py over `site`; its JSON report.
fn chromium_check(site: &Path, screenshot: Option<&Path>) -> serde_json::Value {
    let python = std::env::var_os("PITRIX_PYTHON")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/oracle/site_check.py"))
        .arg(site);
    if let Some(s) = screenshot {
        cmd.arg("--screenshot").arg(s);
    }
    let out = cmd.output().expect("site_check.py runs");
    assert!(
        out.status.success(),
        "site_check.py failed (is Debian's chromium installed? scripts/setup-test-env.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("site_check.py prints JSON")
}

fn assert_clean(report: &serde_json::Value) {
    for (page, r) in report["pages"].as_object().unwrap() {
        assert_eq!(
            r["errors"],
            serde_json::json!([]),
            "console errors on {page}"
        );
    }
    assert_eq!(report["broken"], serde_json::json!([]), "broken links");
    assert_eq!(
        report["external_requests"],
        serde_json::json!([]),
        "the site fetched from outside"
    );
}

#[test]
fn the_example_store_preview_opens_cleanly_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    copy_tree(&example_catalog(), &cat);
    let out = dir.path().join("out");
    publish(&cat, &out);
    let site = out.join("site");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("site");
    std::fs::create_dir_all(&shots).unwrap();
    let front = shots.join("front.png");
    let _ = std::fs::remove_file(&front);
    let report = chromium_check(&site, Some(&front));
    assert_clean(&report);

    // Every page was reached from the front page by links.
    let pages: Vec<&str> = report["pages"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for want in [
        "index.html",
        "releases.html",
        "apps/nginx.html",
        "apps/postgres.html",
        "apps/prometheus-lite.html",
        "apps/whoami.html",
    ] {
        assert!(pages.contains(&want), "{want} not reached: {pages:?}");
    }
    // A real screenshot: a PNG of the whole front page.
    let png = std::fs::read(&front).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 50_000, "a screenshot of a page with content");
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert!(height > 1000, "the whole page ({height}px)");
    eprintln!("front page screenshot: {}", front.display());

    // What the front page shows: categories, cards with icons, versions and states, releases
    // per cluster, the synced repos.
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    for want in [
        "id=\"category-web\"",
        "id=\"category-databases\"",
        "src=\"assets/icons/nginx.svg\"",
        "v1.1.0",
        "state-active",
        "id=\"clusters\"",
        "edge-eu",
        "session-cache",
        "https://charts.bitnami.com/bitnami",
    ] {
        assert!(index.contains(want), "{want} missing from index.html");
    }
    // App pages: the versions with their review states and messages, the README as HTML.
    let nginx = std::fs::read_to_string(site.join("apps/nginx.html")).unwrap();
    assert!(nginx.contains("Approved by platform review"));
    assert!(nginx.contains("<table>"), "the README's table rendered");
    let postgres = std::fs::read_to_string(site.join("apps/postgres.html")).unwrap();
    assert!(
        postgres.contains("state-suspended"),
        "postgres 1.0.0 is suspended"
    );
    // Releases per cluster, the synced-repo one marked unverified (no pitrix.lock).
    let releases = std::fs::read_to_string(site.join("releases.html")).unwrap();
    assert!(
        releases.contains("id=\"cluster-host\"") && releases.contains("id=\"cluster-edge-eu\"")
    );
    assert!(releases.contains("unverified"));
}

#[test]
fn a_catalog_overrides_templates_and_catalog_text_is_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("cat");
    pitrix::scaffold::new_catalog(&cat).unwrap();
    // Hostile text in app.yaml and the README: shown as text, never run.
    let app = cat.join("apps/hello/app.yaml");
    let text = std::fs::read_to_string(&app).unwrap();
    let text = text
        .lines()
        .filter(|l| !l.starts_with("description:"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        &app,
        format!("{text}\ndescription: \"<script>console.error('xss')</script><img src=x onerror=alert(1)>\"\n"),
    )
    .unwrap();
    std::fs::write(
        cat.join("apps/hello/0.1.0/README.md"),
        "# Hello\n\n<script>console.error('readme')</script>\n\n[docs](docs/usage.md) and [site](https://example.test)\n\n![logo](logo.png)\n",
    )
    .unwrap();
    // The catalog's own style and front page.
    std::fs::create_dir_all(cat.join("templates/site")).unwrap();
    std::fs::write(
        cat.join("templates/site/style.css"),
        "body { background: #fafafa; }\n",
    )
    .unwrap();
    std::fs::write(
        cat.join("templates/site/index.html"),
        "{% extends \"base.html\" %}{% block content %}<h1 id=\"custom\">Our own front page</h1>{% for c in categories %}<section id=\"category-{{ c.name }}\">{% for a in c.apps %}<a href=\"{{ root }}{{ a.href }}\">{{ a.display_name }}</a>{% endfor %}</section>{% endfor %}{% endblock %}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    publish(&cat, &out);
    let site = out.join("site");
    let index = std::fs::read_to_string(site.join("index.html")).unwrap();
    assert!(index.contains("Our own front page"));
    assert_eq!(
        std::fs::read_to_string(site.join("assets/style.css")).unwrap(),
        "body { background: #fafafa; }\n"
    );
    let hello = std::fs::read_to_string(site.join("apps/hello.html")).unwrap();
    assert!(
        !hello.contains("<script>") && !hello.contains("<img src=x"),
        "{hello}"
    );
    assert!(hello.contains("&lt;script&gt;"), "{hello}");
    assert!(
        !hello.contains("docs/usage.md"),
        "relative README links are dropped"
    );
    assert!(hello.contains("href=\"https://example.test\""));
    // And Chromium agrees: no script ran (it would have logged an error), every link resolves.
    assert_clean(&chromium_check(&site, None));

    // A broken override is a clear error, and nothing is written.
    std::fs::write(cat.join("templates/site/index.html"), "{% for %}\n").unwrap();
    let out2 = dir.path().join("out2");
    let o = pitrix(&[
        "compile",
        cat.to_str().unwrap(),
        "-o",
        out2.to_str().unwrap(),
        "--publish",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("site template index.html"), "{err}");
    assert!(!out2.exists());
}
