//! The container image (scripts/build-image.sh): a static musl binary built in release mode
//! and an OCI image layout written with no daemon. Built once per test run (two runs of the
//! script: the second finds cargo's build up to date and only writes the layout again), into
//! a cargo target directory under the test cache (`$PITRIX_CACHE/image/target`, else
//! `<repo>/.cache/image/target`; `PITRIX_IMAGE_TARGET_DIR` chooses another) so that later
//! runs on the same machine rebuild only what changed. The layout is read by the real tools, skopeo and umoci (installed by
//! `scripts/build-image.sh --setup`), and the unpacked root's binary is run: directly, and
//! (as root) chrooted into the root file system as the image's user, with nothing else there.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use serde_json::Value;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn test_cache() -> PathBuf {
    std::env::var_os("PITRIX_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache"))
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{}", show(&what, &out));
    out
}

/// cargo's target directory for the musl build: `$PITRIX_IMAGE_TARGET_DIR` if set, else under
/// the test cache.
fn image_target_dir() -> PathBuf {
    std::env::var_os("PITRIX_IMAGE_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| test_cache().join("image/target"))
}

fn build_image(out: &Path, extra: &[&str]) -> Output {
    Command::new("bash")
        .arg(repo_root().join("scripts/build-image.sh"))
        .arg(out)
        .args(extra)
        .env("PITRIX_IMAGE_TARGET_DIR", image_target_dir())
        .output()
        .unwrap()
}

struct Built {
    /// The first layout, and a second one built from the same inputs.
    a: PathBuf,
    b: PathBuf,
    /// `umoci unpack` of `a`: the bundle, whose `rootfs/` is the image's root.
    bundle: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let t = Instant::now();
        run_ok(Command::new("bash").args([
            repo_root().join("scripts/build-image.sh").to_str().unwrap(),
            "--setup",
        ]));
        eprintln!("image: setup {:.1}s", t.elapsed().as_secs_f64());
        let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("image");
        let _ = fs::remove_dir_all(&work);
        fs::create_dir_all(&work).unwrap();
        let (a, b) = (work.join("a"), work.join("b"));
        for out in [&a, &b] {
            let t = Instant::now();
            let o = build_image(out, &[]);
            assert!(o.status.success(), "{}", show("build-image.sh", &o));
            eprintln!(
                "image: build-image.sh {} in {:.1}s: {}",
                out.display(),
                t.elapsed().as_secs_f64(),
                String::from_utf8_lossy(&o.stdout).trim()
            );
        }
        let bundle = work.join("bundle");
        let mut unpack = Command::new("umoci");
        unpack.arg("unpack");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            unpack.arg("--rootless");
        }
        run_ok(
            unpack
                .arg("--image")
                .arg(format!("{}:{VERSION}", a.display()))
                .arg(&bundle),
        );
        Built { a, b, bundle }
    })
}

fn skopeo_json(args: &[&str], layout: &Path) -> Value {
    let out = run_ok(
        Command::new("skopeo")
            .arg("inspect")
            .args(args)
            .arg(format!("oci:{}", layout.display())),
    );
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

/// Every file of a directory tree, relative path → bytes (directories as empty entries).
fn tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(root).unwrap().display().to_string();
        let data = e.file_type().is_file().then(|| fs::read(e.path()).unwrap());
        out.insert(rel, data);
    }
    out
}

#[test]
fn skopeo_reads_the_layout_and_its_config() {
    let b = built();
    let inspect = skopeo_json(&[], &b.a);
    assert_eq!(inspect["Architecture"], "amd64", "{inspect:#}");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1);
    let labels = &inspect["Labels"];
    assert_eq!(labels["org.opencontainers.image.version"], VERSION);
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(labels["org.opencontainers.image.title"], "pitrix");
    assert!(
        labels["org.opencontainers.image.source"]
            .as_str()
            .unwrap()
            .starts_with("https://github.com/")
    );

    let config = skopeo_json(&["--config"], &b.a);
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{config:#}");
    assert_eq!(c["Entrypoint"], serde_json::json!(["pitrix"]));
    assert!(c.get("Cmd").is_none_or(Value::is_null));
    let env: Vec<&str> = c["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"));
    assert!(
        env.iter()
            .any(|e| e.starts_with("PATH=") && e.split([':', '=']).any(|d| d == "/usr/local/bin")),
        "{env:?}"
    );
    // The image's time is the commit's (SOURCE_DATE_EPOCH), not the build's.
    let commit_time = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(t) = commit_time {
        let date = run_ok(Command::new("date").args([
            "-u",
            "-d",
            &format!("@{t}"),
            "+%Y-%m-%dT%H:%M:%SZ",
        ]));
        assert_eq!(
            config["created"],
            String::from_utf8_lossy(&date.stdout).trim()
        );
    }
}

#[test]
fn the_root_file_system_holds_only_what_pitrix_needs() {
    let b = built();
    let rootfs = b.bundle.join("rootfs");
    let files: Vec<String> = tree(&rootfs)
        .into_keys()
        .filter(|p| !p.is_empty())
        .collect();
    assert_eq!(
        files,
        [
            "etc",
            "etc/group",
            "etc/passwd",
            "etc/ssl",
            "etc/ssl/certs",
            "etc/ssl/certs/ca-certificates.crt",
            "home",
            "home/nonroot",
            "tmp",
            "usr",
            "usr/local",
            "usr/local/bin",
            "usr/local/bin/pitrix",
        ],
        "no shell, no libc, nothing else"
    );
    let ca = fs::read(rootfs.join("etc/ssl/certs/ca-certificates.crt")).unwrap();
    assert_eq!(
        ca,
        fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap(),
        "Debian's CA bundle, as the build machine has it"
    );
    assert!(
        String::from_utf8_lossy(&ca)
            .matches("BEGIN CERTIFICATE")
            .count()
            > 50
    );
    let passwd = fs::read_to_string(rootfs.join("etc/passwd")).unwrap();
    assert!(
        passwd.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
        "{passwd}"
    );
    assert!(
        fs::read_to_string(rootfs.join("etc/group"))
            .unwrap()
            .contains("nonroot:x:65532:\n")
    );
    let tmp = fs::metadata(rootfs.join("tmp")).unwrap();
    assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    let bin = fs::metadata(rootfs.join("usr/local/bin/pitrix")).unwrap();
    assert_eq!(bin.permissions().mode() & 0o777, 0o755);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Unpacked as root, owners are the layer's: root, but the user's own home.
        assert_eq!((bin.uid(), bin.gid()), (0, 0));
        let home = fs::metadata(rootfs.join("home/nonroot")).unwrap();
        assert_eq!((home.uid(), home.gid()), (65532, 65532));
    }
    // Static: an ELF with no interpreter (PT_INTERP), so it needs no libc in the image.
    let elf = fs::read(rootfs.join("usr/local/bin/pitrix")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");
    assert!(!elf.windows(b"ld-linux".len()).any(|w| w == b"ld-linux"));
}

/// `pitrix version`, or `--version` if this tree's CLI has no `version` subcommand yet.
fn version_of(cmd: impl Fn(&str) -> Command) -> String {
    let out = cmd("version").output().unwrap();
    let out = if !out.status.success()
        && String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand")
    {
        cmd("--version").output().unwrap()
    } else {
        out
    };
    assert!(out.status.success(), "{}", show("pitrix version", &out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn the_unpacked_binary_runs_with_nothing_else() {
    let b = built();
    let rootfs = b.bundle.join("rootfs");
    let bin = rootfs.join("usr/local/bin/pitrix");
    let v = version_of(|arg| {
        let mut c = Command::new(&bin);
        c.arg(arg).env_clear();
        c
    });
    assert!(v.starts_with(&format!("pitrix {VERSION}")), "{v}");

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("image: not root, so not chrooted into the image (ran the binary directly)");
        return;
    }
    // Inside the image's root, as its user, with its environment: no shell, no libc, no
    // /proc; a catalog scaffolded and compiled in /tmp.
    let chrooted = |args: &[&str]| {
        let mut c = Command::new("chroot");
        c.arg("--userspec=65532:65532")
            .arg(&rootfs)
            .arg("/usr/local/bin/pitrix")
            .args(args)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
            .env("HOME", "/home/nonroot");
        c
    };
    let v = version_of(|arg| chrooted(&[arg]));
    assert!(v.starts_with(&format!("pitrix {VERSION}")), "{v}");
    run_ok(&mut chrooted(&["new", "/tmp/store"]));
    run_ok(&mut chrooted(&["compile", "/tmp/store", "-o", "/tmp/out"]));
    assert!(rootfs.join("tmp/out/all.yaml").is_file());
    let owner = fs::metadata(rootfs.join("tmp/out/all.yaml")).unwrap().uid();
    assert_eq!(owner, 65532);
    let _ = fs::remove_dir_all(rootfs.join("tmp/store"));
    let _ = fs::remove_dir_all(rootfs.join("tmp/out"));
}

#[test]
fn a_rebuild_gives_the_same_bytes() {
    let b = built();
    let (a, bb) = (tree(&b.a), tree(&b.b));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        bb.keys().collect::<Vec<_>>(),
        "the same blobs"
    );
    for (path, data) in &a {
        assert!(data == &bb[path], "{path} differs between two builds");
    }
    let digest = |layout: &Path| {
        skopeo_json(&[], layout)["Digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let d = digest(&b.a);
    assert!(d.starts_with("sha256:"), "{d}");
    assert_eq!(d, digest(&b.b));
    let index: Value = serde_json::from_slice(&fs::read(b.a.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], d.as_str());
    eprintln!("image: manifest {d}, reproduced");
}

#[test]
fn deploy_manifests_default_to_the_image_this_builds() {
    let b = built();
    let script = fs::read_to_string(repo_root().join("scripts/build-image.sh")).unwrap();
    let owner = script
        .lines()
        .find_map(|l| l.strip_prefix("IMAGE_OWNER=\""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("IMAGE_OWNER in build-image.sh");
    assert_eq!(owner, pitrix::reconcile::deploy::IMAGE_OWNER);
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_pitrix")).args([
        "deploy-manifests",
        "--source",
        "https://git.example/catalog.git",
    ]));
    let yaml = String::from_utf8(out.stdout).unwrap();
    let image = format!("ghcr.io/{owner}/pitrix:{VERSION}");
    assert!(yaml.contains(&format!("image: {image}\n")), "{yaml}");
    assert!(yaml.contains("runAsUser: 65532"));
    assert!(yaml.contains("readOnlyRootFilesystem: true"));
    assert!(yaml.contains("mountPath: /tmp"));
    // The ref name skopeo and umoci address the image by is the version, as the tag is.
    let index: Value = serde_json::from_slice(&fs::read(b.a.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        VERSION
    );
    // The Containerfile makes the same image.
    let containerfile = fs::read_to_string(repo_root().join("Containerfile")).unwrap();
    for line in [
        "FROM scratch",
        "USER 65532:65532",
        "ENTRYPOINT [\"pitrix\"]",
        "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
        "'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin'",
    ] {
        assert!(containerfile.contains(line), "Containerfile lacks {line}");
    }
}

#[test]
fn pitrix_spawns_no_program_so_needs_no_shell() {
    // Outside tests, src/ starts no process: the image has no shell, git or kubectl to start.
    for e in walkdir::WalkDir::new(repo_root().join("src")) {
        let e = e.unwrap();
        if e.path().extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text = fs::read_to_string(e.path()).unwrap();
        let non_test = text.split("#[cfg(test)]").next().unwrap();
        for needle in ["Command::new", "process::Command", "Command::from"] {
            assert!(
                !non_test.contains(needle),
                "{} uses {needle} outside its tests: the image has no programs to run",
                e.path().display()
            );
        }
    }
}

#[test]
fn another_arch_without_a_cross_compiler_is_refused_clearly() {
    let work = tempfile::tempdir().unwrap();
    let o = build_image(&work.path().join("x"), &["--arch", "sparc"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected amd64 or arm64"));

    let other = if cfg!(target_arch = "x86_64") {
        "arm64"
    } else {
        "amd64"
    };
    let cross = if other == "arm64" {
        "aarch64-linux-musl-gcc"
    } else {
        "x86_64-linux-musl-gcc"
    };
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cross).is_file()))
        .unwrap_or(false);
    if on_path {
        eprintln!("image: {cross} is on PATH: a {other} build would really be made; not run here");
        return;
    }
    let t = Instant::now();
    let o = Command::new("bash")
        .arg(repo_root().join("scripts/build-image.sh"))
        .arg(work.path().join("x"))
        .args(["--arch", other])
        .env_remove("CC_aarch64_unknown_linux_musl")
        .env_remove("CC_x86_64_unknown_linux_musl")
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", show("build-image.sh", &o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no C cross compiler") && err.contains(cross),
        "{err}"
    );
    assert!(
        t.elapsed().as_secs() < 30,
        "refused before building anything"
    );
    assert!(!work.path().join("x").exists(), "no layout written");
}
