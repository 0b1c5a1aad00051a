//! A short, deterministic fuzz run of pitrix's input-facing entry points, on stable and with
//! plain `cargo test` (the long runs are `scripts/fuzz.sh`, with cargo-fuzz).
//!
//! The targets are those of the cargo-fuzz project (`tests/fuzz_harness/mod.rs`, shared with
//! `fuzz/fuzz_targets/`): `yaml`, `chart_archive` and `catalog_loader`. Each test starts from the
//! seeds in `fuzz/seeds/<target>/` plus the ones built here, and feeds the target mutated
//! inputs: byte-level mutations (bit flips, truncation, splicing, …) and structure-aware ones
//! (YAML tokens and deep nesting, tar headers with hostile names, sizes and types, catalog
//! files moved, dropped and duplicated). A panic fails the test; the input is saved to a file
//! whose path the failure names, with a minimized copy next to it.
//!
//! * `PITRIX_FUZZ_SEED=<n|0xHEX>`: another PRNG seed (default fixed, so CI runs are repeatable).
//! * `PITRIX_FUZZ_ITERS=<n>`: iterations per target (defaults keep the whole run a few
//!   seconds in a debug build).
//! * `PITRIX_FUZZ_REPLAY=<target>:<file>` with `cargo test --test fuzz_smoke replay --
//!   --ignored --nocapture`: run one saved input.
//! * `cargo test --test fuzz_smoke write_seeds -- --ignored`: rewrite `fuzz/seeds/` from the
//!   seeds built here.

mod fuzz_harness;

use std::io::Read as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fuzz_harness::container;
use pitrix::chart::{self, ChartFiles};

const DEFAULT_SEED: u64 = 0x5eed_f0f0_7e57_2026;
/// Inputs larger than this are cut down before they are run.
const MAX_INPUT: usize = 256 * 1024;

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn yaml_fuzz_smoke() {
    run("yaml", fuzz_harness::yaml, mutate_yaml_input, 4000);
}

#[test]
fn chart_archive_fuzz_smoke() {
    run(
        "chart_archive",
        fuzz_harness::chart_archive,
        mutate_archive_input,
        4000,
    );
}

#[test]
fn catalog_loader_fuzz_smoke() {
    run(
        "catalog_loader",
        fuzz_harness::catalog_loader,
        mutate_catalog_input,
        1200,
    );
}

/// The catalog seed must get through validation, or compile and emit are never fuzzed.
#[test]
fn catalog_seed_is_a_valid_catalog() {
    let seed = &builtin_seeds("catalog_loader")[0].1;
    let sections = container::decode(seed);
    let dir = tempfile::tempdir().unwrap();
    fuzz_harness::write_catalog(dir.path(), &sections);
    let (catalog, diags) = pitrix::pipeline::check(dir.path());
    let errors: Vec<_> = diags.iter().filter(|d| d.is_error()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(catalog.apps.iter().map(|a| a.versions.len()).sum::<usize>() >= 4);
    assert!(!catalog.releases.is_empty());
}

/// The container format of the catalog target round-trips.
#[test]
fn container_round_trips() {
    let sections: Vec<(&[u8], &[u8])> = [
        ("a", ""),
        ("b/c", "x\n\n"),
        ("d", "x %%% is no separator inside a line\n%%%no space"),
        ("e", "\n"),
    ]
    .iter()
    .map(|(p, c)| (p.as_bytes(), c.as_bytes()))
    .collect();
    let encoded = container::encode(&sections);
    assert_eq!(container::decode(&encoded), sections);
    assert!(container::decode(b"junk without a section").is_empty());
}

/// The runner catches a panic, saves the input and a minimized copy, and names both.
#[test]
fn runner_reports_a_panic_with_its_input() {
    fn target(data: &[u8]) {
        assert!(!data.windows(4).any(|w| w == b"boom"), "found the bomb");
    }
    let input = b"some padding, then boom, then more padding".to_vec();
    let payload = catch_unwind(|| check_one("selftest", target, &input, 7, "0")).unwrap_err();
    let message = panic_message(payload.as_ref());
    assert!(message.contains("found the bomb"), "{message}");
    let saved = std::env::temp_dir().join("pitrix-fuzz-selftest-7-0.bin");
    let minimized = std::env::temp_dir().join("pitrix-fuzz-selftest-7-0.min.bin");
    assert!(message.contains(&saved.display().to_string()), "{message}");
    assert_eq!(std::fs::read(&saved).unwrap(), input);
    assert_eq!(std::fs::read(&minimized).unwrap(), b"boom");
    let _ = std::fs::remove_file(saved);
    let _ = std::fs::remove_file(minimized);
}

/// Replays one saved input: `PITRIX_FUZZ_REPLAY=<target>:<file>`.
#[test]
#[ignore = "runs only the input named by PITRIX_FUZZ_REPLAY"]
fn replay() {
    let spec = std::env::var("PITRIX_FUZZ_REPLAY").expect("set PITRIX_FUZZ_REPLAY=<target>:<file>");
    let (target, file) = spec.split_once(':').expect("<target>:<file>");
    let data = std::fs::read(file).expect("readable input file");
    target_fn(target)(&data);
}

/// Rewrites `fuzz/seeds/<target>/` from [`builtin_seeds`] (and the example catalog's package).
#[test]
#[ignore = "writes fuzz/seeds/; run by hand after changing the seeds"]
fn write_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in TARGETS {
        let dir = root.join("fuzz/seeds").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in builtin_seeds(target) {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let example = root.join("examples/catalog/apps/prometheus-lite/2.0.0.tgz");
    if let Ok(bytes) = std::fs::read(example) {
        let dir = root.join("fuzz/seeds/chart_archive");
        std::fs::write(dir.join("example-prometheus-lite-2.0.0.tgz"), bytes).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Regression tests for bugs the fuzzers found.

/// Deeply nested block YAML once overflowed the stack inside `yaml::parse` (yaml-rust2's
/// `Parser::load` recurses once per nesting level), aborting the process; `parse_stream` now
/// reads events one by one and refuses nesting past a fixed depth. The test runs in a child
/// process, so a regression is reported as a failure instead of killing the test binary.
#[test]
fn deep_block_yaml_does_not_overflow_the_stack() {
    const CHILD: &str = "PITRIX_FUZZ_DEEP_YAML_CHILD";
    if std::env::var_os(CHILD).is_some() {
        let deep_seq = format!("{}x\n", "- ".repeat(50_000));
        let result = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(move || pitrix::load::yaml::parse(&deep_seq).is_ok())
            .unwrap()
            .join();
        assert!(result.is_ok());
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "deep_block_yaml_does_not_overflow_the_stack",
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "parsing 50 000 levels of `- ` killed the process ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// The runner.

const TARGETS: [&str; 3] = ["yaml", "chart_archive", "catalog_loader"];

fn target_fn(target: &str) -> fn(&[u8]) {
    match target {
        "yaml" => fuzz_harness::yaml,
        "chart_archive" => fuzz_harness::chart_archive,
        "catalog_loader" => fuzz_harness::catalog_loader,
        other => panic!("unknown target {other:?}; one of {TARGETS:?}"),
    }
}

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={text:?} is not a number")))
}

fn run(target: &str, f: fn(&[u8]), mutate: Mutator, default_iters: u64) {
    let seed = env_number("PITRIX_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iters = env_number("PITRIX_FUZZ_ITERS").unwrap_or(default_iters);
    // Each target its own stream, so one target's changes leave the others' inputs alone.
    let mut rng = Rng::new(seed ^ fnv(target.as_bytes()));
    let seeds = load_seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");

    // One rayon thread, which runs the target: the loader's parallel iterators then run inline
    // instead of waking worker threads for every input (slow on a busy machine).
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("rayon thread pool");
    pool.install(|| run_on_this_thread(target, f, mutate, seed, iters, &mut rng, &seeds));
}

fn run_on_this_thread(
    target: &str,
    f: fn(&[u8]),
    mutate: Mutator,
    seed: u64,
    iters: u64,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
) {
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, 0);
    for (i, input) in seeds.iter().enumerate() {
        check_one(target, f, input, seed, &format!("seed{i}"));
    }
    let mut pool = seeds.to_vec();
    for i in 0..iters {
        let mut input = mutate(rng, &pool);
        input.truncate(MAX_INPUT);
        let t = Instant::now();
        check_one(target, f, &input, seed, &i.to_string());
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, i);
        }
        // Keep some mutants, so that mutations stack up over the run.
        if rng.one_in(8) && input.len() <= 16 * 1024 {
            if pool.len() < seeds.len() + 200 {
                pool.push(input);
            } else {
                let slot = seeds.len() + rng.below(pool.len() - seeds.len());
                pool[slot] = input;
            }
        }
    }
    eprintln!(
        "fuzz smoke {target}: {} seeds + {iters} inputs in {:.2?} (PITRIX_FUZZ_SEED={seed:#x}; slowest input #{}: {:.2?})",
        seeds.len(),
        started.elapsed(),
        slowest.1,
        slowest.0
    );
}

/// Runs one input; on a panic, saves it (and a minimized copy) and fails with where they are.
fn check_one(target: &str, f: fn(&[u8]), input: &[u8], seed: u64, which: &str) {
    let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(input))) else {
        return;
    };
    let message = panic_message(payload.as_ref());
    let dir = std::env::temp_dir();
    let path = dir.join(format!("pitrix-fuzz-{target}-{seed:x}-{which}.bin"));
    let _ = std::fs::write(&path, input);
    let minimized = minimize(f, input);
    let min_path = dir.join(format!("pitrix-fuzz-{target}-{seed:x}-{which}.min.bin"));
    let _ = std::fs::write(&min_path, &minimized);
    panic!(
        "fuzz target `{target}` panicked on input {which} (PITRIX_FUZZ_SEED={seed:#x}): {message}\n\
         input ({} bytes): {}\nminimized ({} bytes): {}\n{:?}\n\
         replay: PITRIX_FUZZ_REPLAY={target}:{} cargo test --test fuzz_smoke replay -- --ignored --nocapture",
        input.len(),
        path.display(),
        minimized.len(),
        min_path.display(),
        String::from_utf8_lossy(&minimized[..minimized.len().min(400)]),
        min_path.display(),
    );
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_string())
}

/// Drops chunks of the input while it still panics (halving the chunk size down to one
/// byte), for at most a few seconds.
fn minimize(f: fn(&[u8]), input: &[u8]) -> Vec<u8> {
    let panics = |data: &[u8]| catch_unwind(AssertUnwindSafe(|| f(data))).is_err();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut best = input.to_vec();
    let mut chunk = best.len().div_ceil(2).max(1);
    loop {
        let mut at = 0;
        while at < best.len() && Instant::now() < deadline {
            let mut candidate = best.clone();
            candidate.drain(at..(at + chunk).min(best.len()));
            if panics(&candidate) {
                best = candidate;
            } else {
                at += chunk;
            }
        }
        if chunk == 1 || Instant::now() >= deadline {
            return best;
        }
        chunk = chunk.div_ceil(2);
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// SplitMix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`0` when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn pick_bytes<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds.

fn load_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut seeds: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    for (_, bytes) in builtin_seeds(target) {
        if !seeds.contains(&bytes) {
            seeds.push(bytes);
        }
    }
    seeds
}

/// The seed inputs of each target, by file name under `fuzz/seeds/<target>/`.
fn builtin_seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    match target {
        "yaml" => yaml_seeds(),
        "chart_archive" => archive_seeds(),
        "catalog_loader" => catalog_seeds(),
        other => panic!("unknown target {other:?}"),
    }
}

/// `pitrix new`'s catalog, as (path, bytes), without its JSON Schemas.
fn scaffold_files() -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    let mut written = pitrix::scaffold::new_catalog(&root).unwrap();
    written.sort();
    written
        .into_iter()
        .filter(|p| !p.starts_with("schema/"))
        .map(|p| {
            let bytes = std::fs::read(root.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The scaffold's chart, as chart files.
fn scaffold_chart() -> ChartFiles {
    let mut files = ChartFiles::new();
    for (path, bytes) in scaffold_files() {
        if let Some(rel) = path.strip_prefix("apps/hello/0.1.0/") {
            files.insert(rel, bytes).unwrap();
        }
    }
    files
}

fn with_chart_version(files: &ChartFiles, version: &str) -> ChartFiles {
    let mut files = files.clone();
    let chart_yaml = String::from_utf8(files.get("Chart.yaml").unwrap().to_vec()).unwrap();
    let chart_yaml = chart_yaml.replace("version: 0.1.0", &format!("version: {version}"));
    files.insert("Chart.yaml", chart_yaml.into_bytes()).unwrap();
    files
}

const MANIFESTS: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: whoami
  labels: {app: whoami}
spec:
  replicas: 1
  selector:
    matchLabels: {app: whoami}
  template:
    metadata:
      labels: {app: whoami}
    spec:
      containers:
        - name: whoami
          image: traefik/whoami:v1.10
          ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: whoami
spec:
  selector: {app: whoami}
  ports:
    - port: 80
";

const YAML_EDGES: &str = "\
%YAML 1.2
---
base: &base {a: 1, b: [x, y], c: null}
alias: *base
merged:
  <<: *base
  d: !!str 123
ints: [0, -1, +7, 0x1f, 0o17, 9223372036854775807, -9223372036854775808]
floats: [1.5, -0.0, 1e3, .inf, -.Inf, .nan, 1.10]
bools: [true, False, TRUE]
nulls: [~, null, NULL, ]
strings: ['1', \"two\\n\", !!int x, !custom y, \"\\u263A\"]
literal: |-
  line one
  line two
folded: >+
  folded
  text

? complex key
: value
\"quoted key\": 1
empty:
...
";

fn yaml_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds: Vec<(String, Vec<u8>)> = scaffold_files()
        .into_iter()
        .filter(|(p, _)| p.ends_with(".yaml"))
        .map(|(p, bytes)| (p.replace('/', "_"), bytes))
        .collect();
    seeds.push((
        "manifests-stream.yaml".into(),
        MANIFESTS.as_bytes().to_vec(),
    ));
    seeds.push(("edge-cases.yaml".into(), YAML_EDGES.as_bytes().to_vec()));
    seeds.push((
        "flow-release.yaml".into(),
        b"{app: bitnami/nginx, version: \"15.0.0\", workspace: w, creator: admin, valuesFiles: [values/a.yaml], values: {replicaCount: 3, image: {tag: '1.27'}}}\n".to_vec(),
    ));
    seeds.push((
        "repo-credentials.yaml".into(),
        b"url: oci://registry.example.com/charts\nsyncPeriod: 90s\ncredentials:\n  usernameEnv: REPO_USER\n  passwordEnv: REPO_PASSWORD\n".to_vec(),
    ));
    seeds
}

fn decompress(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(gz)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn archive_seeds() -> Vec<(String, Vec<u8>)> {
    let mut files = scaffold_chart();
    // A path too long for ustar's name field (prefix + name) and one that is not ASCII (PAX).
    let long = format!("templates/{}/deep.yaml", "nested-directory".repeat(8));
    files.insert(&long, b"kind: ConfigMap\n".to_vec()).unwrap();
    files
        .insert("files/n\u{e4}me.txt", b"not ascii\n".to_vec())
        .unwrap();
    let tgz = chart::pack("hello", &files);
    let mut tar_f = b"F".to_vec();
    tar_f.extend(decompress(&tgz));

    // GNU long names, directory entries and a PAX size record, as other writers make them.
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = tar::Header::new_gnu();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o755);
    dir.set_size(0);
    builder
        .append_data(&mut dir, "mychart/templates/", &[][..])
        .unwrap();
    for (path, data) in [
        (
            "Chart.yaml".to_string(),
            "apiVersion: v2\nname: mychart\nversion: 1.0.0\n",
        ),
        ("values.yaml".to_string(), "a: 1\n"),
        (format!("templates/{}.yaml", "x".repeat(120)), "{}\n"),
    ] {
        let data = data.as_bytes();
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        builder
            .append_data(&mut header, format!("mychart/{path}"), data)
            .unwrap();
    }
    let mut pax = tar::Header::new_ustar();
    pax.set_mode(0o644);
    pax.set_size(3);
    builder
        .append_pax_extensions([("size", &b"3"[..]), ("comment", b"hi")])
        .unwrap();
    builder
        .append_data(&mut pax, "mychart/templates/pax.txt", &b"pax"[..])
        .unwrap();
    let mut tar_t = b"T".to_vec();
    tar_t.extend(builder.into_inner().unwrap());

    vec![
        ("hello-0.1.0.tgz".into(), tgz),
        ("hello-0.1.0.tar.F".into(), tar_f),
        ("gnu-longname-pax.tar.T".into(), tar_t),
    ]
}

fn catalog_seeds() -> Vec<(String, Vec<u8>)> {
    let chart = scaffold_chart();
    let mut valid: Vec<(String, Vec<u8>)> = scaffold_files();
    // More versions: a packaged chart (bytes), and one written by the target from its files.
    valid.push((
        "apps/hello/0.2.0.tgz".into(),
        chart::pack("hello", &with_chart_version(&chart, "0.2.0")),
    ));
    for (path, bytes) in &with_chart_version(&chart, "0.3.0-rc.1").files {
        valid.push((format!("apps/hello/0.3.0-rc.1.tgz!{path}"), bytes.clone()));
    }
    // A YAML app with a PNG icon, and a release of it.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(64u32.to_be_bytes());
    png.extend(64u32.to_be_bytes());
    png.extend(b"\x08\x06\0\0\0");
    valid.extend([
        (
            "apps/whoami/app.yaml".to_string(),
            b"displayName: whoami\ndescription: Tells who it is.\ncategory: tools\ntype: yaml\nicon: icon.png\nversions:\n  1.0.0: {state: active}\n  0.9.0: {state: suspended, message: old}\n".to_vec(),
        ),
        ("apps/whoami/icon.png".to_string(), png),
        (
            "apps/whoami/1.0.0/all.yaml".to_string(),
            MANIFESTS.as_bytes().to_vec(),
        ),
        (
            "apps/whoami/0.9.0/deployment.yml".to_string(),
            MANIFESTS.split("---").next().unwrap().as_bytes().to_vec(),
        ),
        (
            "releases/host/web/whoami.yaml".to_string(),
            b"app: whoami\nversion: 1.0.0\n".to_vec(),
        ),
        (
            "releases/host/default/nginx.yaml".to_string(),
            b"app: bitnami/nginx\nversion: 15.0.0\nvalues:\n  service: {type: ClusterIP}\n"
                .to_vec(),
        ),
    ]);

    let broken: Vec<(&str, &str)> = vec![
        (
            "pitrix.toml",
            "[catalog]\nname = \"Bad_Name\"\nworkspce = \"w\"\n",
        ),
        (
            "apps/a/app.yaml",
            "displayName: A\nicon: ../../etc/passwd\ntype: helm\nstate: actve\nscreenshots: [shot.svg]\nversions:\n  9.9.9: {state: nope}\n",
        ),
        (
            "apps/a/shot.svg",
            "<svg width=\"1e12\" viewBox=\"0 0 -1 x\"></svg>",
        ),
        (
            "apps/a/1.0.0/Chart.yaml",
            "name: [not, a, string]\nversion: 1.0.0\n",
        ),
        ("apps/a/1.0.0/values.yaml", "a: 1\na: 2\n"),
        ("apps/b/app.yaml", "type: yaml\n"),
        ("apps/b/1.0.0/x.yaml", "kind: Pod\n---\n- a list\n"),
        (
            "releases/host/ns/r.yaml",
            "app: a\nversion: 1.0.0\nvaluesFiles: [../outside.yaml, values/missing.yaml, values/v.yaml]\npassword: hunter2\n",
        ),
        ("values/v.yaml", "- not a mapping\n"),
        (
            "repos/r.yaml",
            "url: ftp://x\nsyncPeriod: forever\ncredentials: {username: u}\n",
        ),
        ("categories/c.yaml", "displayName: 1\nextra: true\n"),
        ("releases/stray.yaml", "app: a\n"),
    ];
    let mut broken: Vec<(&str, &[u8])> = broken.iter().map(|(p, c)| (*p, c.as_bytes())).collect();
    broken.push(("apps/a/2.0.0.tgz", b"\x1f\x8b\x08 not really gzip"));
    vec![
        ("scaffold-plus.cat".into(), container::encode(&valid)),
        ("broken.cat".into(), container::encode(&broken)),
        (
            "minimal.cat".into(),
            container::encode(&[("pitrix.toml", b"[catalog]\nname = \"m\"\n")]),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Mutations.

/// Makes one input from the pool.
type Mutator = fn(&mut Rng, &[Vec<u8>]) -> Vec<u8>;

const INTERESTING_BYTES: &[u8] = &[
    0, 0xff, 0x7f, 0x80, b'\n', b'\r', b'\t', b' ', b':', b'-', b'"', b'\'', b'\\', b'/', b'.',
    b'0', b'9', b'#', b'&', b'*', b'!', b'|', b'>', b'%', b'@', b'`', b'{', b'}', b'[', b']', b',',
    b'?', b'=',
];

const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "1.10",
    "255",
    "256",
    "65536",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "99999999999999999999999999999999",
    "1e309",
    "-1e-400",
    "0x7fffffffffffffff",
    "0xffffffffffffffff",
    "0o777777777777777777777777",
    ".inf",
    "-.inf",
    ".nan",
    "1.0.0",
    "v1.0.0",
    "1.0.0-rc.1+build.5",
    "01.2.3",
    "0.1.0",
];

const YAML_TOKENS: &[&str] = &[
    ": ",
    "- ",
    "-",
    "? ",
    "&a ",
    "*a",
    "&a",
    "*b",
    "&b [*a, *a]",
    "{",
    "}",
    "[",
    "]",
    "{}",
    "[]",
    ", ",
    "---\n",
    "...\n",
    "--- ",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "#",
    " #",
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!binary ",
    "!!map ",
    "!!seq ",
    "!custom ",
    "!<tag:yaml.org,2002:str> ",
    "!e!x ",
    "%YAML 1.2\n",
    "%YAML 1.1\n---\n",
    "%TAG !e! tag:example.com,2000:\n---\n",
    "<<: *a\n",
    "<<: [*a, *b]\n",
    "|\n",
    "|-\n",
    "|+\n",
    ">\n",
    ">-\n",
    "|2\n",
    "\"",
    "'",
    "\\",
    "\\u0000",
    "\\x",
    "\"\\u263A\"",
    "''",
    "\"\"",
    "~",
    "null",
    "true",
    "no",
    "on",
    "=",
    "\u{feff}",
    "\u{2028}",
    "\u{85}",
    "\r\n",
    "\r",
    "\0",
    "\u{1F600}",
    "é",
    "${HOME}",
    "{{ .Values.x }}",
    "@",
    "`",
];

const KEYS: &[&str] = &[
    "displayName",
    "description",
    "abstraction",
    "home",
    "category",
    "icon",
    "screenshots",
    "type",
    "maintainers",
    "workspace",
    "state",
    "versions",
    "message",
    "app",
    "version",
    "values",
    "valuesFiles",
    "creator",
    "url",
    "syncPeriod",
    "credentials",
    "usernameEnv",
    "passwordEnv",
    "password",
    "apiVersion",
    "name",
    "appVersion",
    "kind",
    "metadata",
    "keywords",
    "deprecated",
    "email",
    "spec",
    "<<",
    "",
];

const VALUES: &[&str] = &[
    "active",
    "suspended",
    "draft",
    "submitted",
    "passed",
    "rejected",
    "helm",
    "yaml",
    "tools",
    "icon.svg",
    "icon.png",
    "../icon.svg",
    "/etc/passwd",
    "hello",
    "whoami",
    "bitnami/nginx",
    "a/b/c",
    "0.1.0",
    "0.2.0",
    "1.0.0",
    "values/common.yaml",
    "oci://r.example/x",
    "https://x.example/",
    "1h",
    "0",
    "-5m",
    "1000000000000h",
    "system-workspace",
    "UPPER",
    "-bad-",
    "[]",
    "{}",
    "~",
    "\"\"",
    "{a: [1, {b: 2}]}",
    "[a, [b, [c]]]",
];

const TOML_TOKENS: &[&str] = &[
    "[catalog]\n",
    "[[catalog]]\n",
    "name = ",
    "name = \"x\"\n",
    "workspace = ",
    "target = \"standalone\"\n",
    "target = \"cloud\"\n",
    "storageNamespace = \"\"\n",
    "[vars]\n",
    "[vars.a.b]\n",
    "[env.prod]\n",
    "[env.prod.vars]\n",
    "[clusters.host]\n",
    "context = ",
    "\"",
    "'",
    "'''",
    "\"\"\"",
    "=",
    " = ",
    "{ a = 1 }",
    "[1, [2, \"x\"]]",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "0x7fffffffffffffff",
    "\\u0000",
    "\\uD800",
    ".",
    "\n",
    "#",
];

const IMAGE_TOKENS: &[&str] = &[
    "\u{89}PNG\r\n\u{1a}\n",
    "IHDR",
    "\u{ff}\u{d8}\u{ff}\u{c0}",
    "<svg",
    " width=\"1e12\"",
    " height=\"-1\"",
    " width=\"513px\"",
    " viewBox=\"0 0 9999999999 1\"",
    " viewBox=\"0,0,NaN,inf\"",
    " viewBox=\"",
    "\"",
    ">",
];

/// One byte-level mutation, with `dict` tokens for insertions.
fn mutate_bytes(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>], dict: &[&str]) {
    let len = data.len();
    match rng.below(13) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = rng.byte();
        }
        2 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING_BYTES);
        }
        3 => {
            let at = rng.below(len + 1);
            let n = rng.range(1, 8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
            data.splice(at..at, bytes);
        }
        4 if len > 0 => {
            let at = rng.below(len);
            let most = if rng.one_in(4) { len } else { 16 };
            let n = rng.range(1, (len - at).min(most));
            data.drain(at..at + n);
        }
        5 if len > 0 => {
            // Copy a range elsewhere (repeats structure).
            let from = rng.below(len);
            let n = rng.range(1, (len - from).min(256));
            let chunk = data[from..from + n].to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, chunk);
        }
        6 if len > 0 => data.truncate(rng.below(len)),
        7 => {
            // Splice with another input: our head, its tail.
            let other = rng.pick(pool);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        8 | 9 => {
            let token = rng.pick(dict).as_bytes().to_vec();
            let at = rng.below(len + 1);
            if rng.one_in(3) && len > 0 {
                let n = rng.range(1, (len - at).clamp(1, 8)).min(len - at);
                data.splice(at..at + n, token);
            } else {
                data.splice(at..at, token);
            }
        }
        10 => {
            let number = rng.pick(NUMBERS).as_bytes().to_vec();
            let at = rng.below(len + 1);
            data.splice(at..at, number);
        }
        11 => {
            // Replace a run of digits with another number.
            let digits: Vec<usize> = (0..len).filter(|&i| data[i].is_ascii_digit()).collect();
            if let Some(&start) = digits.get(rng.below(digits.len())) {
                let end = (start..len)
                    .find(|&i| !data[i].is_ascii_digit())
                    .unwrap_or(len);
                data.splice(start..end, rng.pick(NUMBERS).bytes());
            }
        }
        _ => {
            // Swap two bytes.
            if len > 1 {
                let (a, b) = (rng.below(len), rng.below(len));
                data.swap(a, b);
            }
        }
    }
}

fn line_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        if b == b'\n' {
            spans.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        spans.push((start, text.len()));
    }
    spans
}

/// Nesting generators; depths stay below the known stack overflow (see the harness).
fn deep_nesting(rng: &mut Rng) -> String {
    let most = if rng.one_in(4) { 300 } else { 64 };
    let depth = rng.range(2, most);
    match rng.below(6) {
        0 => format!("{}1{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}1{}", "{a: ".repeat(depth), "}".repeat(depth)),
        2 => "[".repeat(depth),
        3 => {
            let depth = depth.min(120);
            format!("{}x\n", "- ".repeat(depth))
        }
        4 => {
            let depth = depth.min(60);
            (0..depth)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                .collect()
        }
        _ => {
            // A small alias fan-out (the node limit must stop the bigger ones).
            let levels = rng.range(2, 7);
            let width = rng.range(2, 12);
            let mut text = String::from("l0: &l0 [x, y]\n");
            for i in 1..levels {
                let refs = vec![format!("*l{}", i - 1); width].join(", ");
                text.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
            }
            text
        }
    }
}

/// One YAML-aware mutation of `data`.
fn mutate_yaml(rng: &mut Rng, data: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let lines = line_spans(data);
    match rng.below(12) {
        0..=3 => mutate_bytes(rng, data, pool, YAML_TOKENS),
        4 if !lines.is_empty() => {
            // Duplicate, drop or move a line.
            let (s, e) = *rng.pick(&lines);
            let line = data[s..e].to_vec();
            match rng.below(3) {
                0 => {
                    data.splice(s..s, line);
                }
                1 => {
                    data.drain(s..e);
                }
                _ => {
                    data.drain(s..e);
                    let spans = line_spans(data);
                    let at = spans.get(rng.below(spans.len())).map_or(0, |sp| sp.0);
                    data.splice(at..at, line);
                }
            }
        }
        5 if !lines.is_empty() => {
            // Indent or dedent a line.
            let (s, _) = *rng.pick(&lines);
            if rng.one_in(2) {
                let n = rng.range(1, 4);
                data.splice(s..s, std::iter::repeat_n(b' ', n));
            } else {
                let n = data[s..].iter().take_while(|&&b| b == b' ').count();
                let drop = rng.range(0, n.min(4));
                data.drain(s..s + drop);
            }
        }
        6 if !lines.is_empty() => {
            // A new value for a `key: value` line.
            let (s, e) = *rng.pick(&lines);
            if let Some(colon) = data[s..e].windows(2).position(|w| w == b": ") {
                let at = s + colon + 2;
                let end = if data[e - 1] == b'\n' { e - 1 } else { e };
                let value: String = match rng.below(4) {
                    0 => rng.pick(NUMBERS).to_string(),
                    1 => deep_nesting(rng).replace('\n', " "),
                    2 => "x".repeat(rng.range(100, 4000)),
                    _ => rng.pick(VALUES).to_string(),
                };
                data.splice(at..end, value.into_bytes());
            }
        }
        7 if !lines.is_empty() => {
            // A new key for a line.
            let (s, e) = *rng.pick(&lines);
            let indent = data[s..e]
                .iter()
                .take_while(|&&b| b == b' ' || b == b'-')
                .count();
            if let Some(colon) = data[s..e].iter().position(|&b| b == b':')
                && colon >= indent
            {
                data.splice(s + indent..s + colon, rng.pick(KEYS).bytes());
            }
        }
        8 => {
            // A whole new entry.
            let at = lines
                .get(rng.below(lines.len() + 1))
                .map_or(data.len(), |sp| sp.0);
            let indent = " ".repeat(rng.below(3) * 2);
            let entry = format!("{indent}{}: {}\n", rng.pick(KEYS), rng.pick(VALUES));
            data.splice(at..at, entry.into_bytes());
        }
        9 => {
            let at = lines
                .get(rng.below(lines.len() + 1))
                .map_or(data.len(), |sp| sp.0);
            let snippet = format!("{}: {}\n", rng.pick(KEYS), deep_nesting(rng));
            data.splice(at..at, snippet.into_bytes());
        }
        10 => {
            // Many entries, or a long scalar.
            let n = rng.range(10, 300);
            let text: String = if rng.one_in(2) {
                (0..n).map(|i| format!("k{i}: {i}\n")).collect()
            } else {
                format!("k: \"{}\"\n", "\\u00e9".repeat(n))
            };
            data.extend_from_slice(text.as_bytes());
        }
        _ => mutate_bytes(rng, data, pool, YAML_TOKENS),
    }
}

fn mutate_yaml_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut data = rng.pick(pool).clone();
    for _ in 0..rng.range(1, 4) {
        mutate_yaml(rng, &mut data, pool);
    }
    data
}

// --- tar ---

const TAR_NAMES: &[&[u8]] = &[
    b"../evil",
    b"hello/../../evil",
    b"hello/../x",
    b"/etc/passwd",
    b"\\abs",
    b"C:/x",
    b"c:\\x",
    b"C:",
    b"hello/C:/x",
    b"hello/a\\..\\..\\b",
    b"hello\\x",
    b"hello//a",
    b"hello/./a",
    b"./hello/a",
    b"hello",
    b"hello/",
    b"Chart.yaml",
    b"other/Chart.yaml",
    b"hello/Chart.yaml",
    b"hello/Chart.yaml/x",
    b"hello/templates",
    b"hello/templates/",
    b"hello/..a",
    b"hello/...",
    b"hello/.",
    b"hello/a\0b",
    b"hello/\xff\xfe",
    b"hello/\xc3\xa4",
    b".",
    b"..",
    b"",
    b".././hello/x",
    b"hello/values.yaml",
];

const TYPE_FLAGS: &[u8] = b"0123456789LKxgSDVM\0A ";

const SIZES: &[u64] = &[
    0,
    1,
    3,
    511,
    512,
    513,
    16 * 1024,
    16 * 1024 + 1,
    64 * 1024 + 1,
    1024 * 1024 + 1,
    5 * 1024 * 1024 + 1,
    100 * 1024 * 1024 + 1,
    0o77_777_777_777,
    u64::MAX,
];

const PAX_RECORDS: &[&[u8]] = &[
    b"path=../evil",
    b"path=hello/pax-name.yaml",
    b"path=",
    b"path=hello/a\0b",
    b"path=/abs",
    b"size=99999999999999",
    b"size=-1",
    b"size=abc",
    b"size=0",
    b"linkpath=../x",
    b"GNU.sparse.map=0,0",
    b"GNU.sparse.size=1",
    b"mtime=1.5",
    b"=value",
    b"noequals",
];

/// (offset of the header, offset past its data) of every entry the walk finds.
fn tar_entries(tar: &[u8]) -> Vec<(usize, usize)> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    while offset + 512 <= tar.len() {
        let block = &tar[offset..offset + 512];
        if block.iter().all(|&b| b == 0) {
            offset += 512;
            continue;
        }
        let size = fuzz_harness::tar_size(&block[124..136]);
        let end = usize::try_from(size.div_ceil(512))
            .ok()
            .and_then(|n| n.checked_mul(512))
            .and_then(|n| n.checked_add(offset + 512))
            .unwrap_or(usize::MAX)
            .min(tar.len());
        entries.push((offset, end));
        offset = end;
    }
    entries
}

fn octal_field(value: u64, width: usize) -> Vec<u8> {
    let text = format!("{value:0w$o}", w = width - 1);
    if text.len() < width {
        let mut field = text.into_bytes();
        field.push(0);
        field
    } else {
        // Too big for octal: base-256.
        let mut field = vec![0u8; width];
        field[0] = 0x80;
        let be = value.to_be_bytes();
        field[width - 8..].copy_from_slice(&be);
        field
    }
}

fn set_field(block: &mut [u8], start: usize, width: usize, value: &[u8]) {
    let field = &mut block[start..start + width];
    field.fill(0);
    let n = value.len().min(width);
    field[..n].copy_from_slice(&value[..n]);
}

/// A ustar header block.
fn tar_header(name: &[u8], size: u64, type_flag: u8) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    set_field(&mut block, 0, 100, name);
    set_field(&mut block, 100, 8, b"0000644\0");
    set_field(&mut block, 108, 8, b"0000000\0");
    set_field(&mut block, 116, 8, b"0000000\0");
    set_field(&mut block, 124, 12, &octal_field(size, 12));
    set_field(&mut block, 136, 12, b"00000000000\0");
    block[156] = type_flag;
    set_field(&mut block, 257, 8, b"ustar\x0000");
    block
}

fn padded(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    out.resize(data.len().div_ceil(512) * 512, 0);
    out
}

fn pax_record(record: &[u8]) -> Vec<u8> {
    let rest = record.len() + 2; // ' ' and '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} ").into_bytes();
    out.extend_from_slice(record);
    out.push(b'\n');
    out
}

/// A new entry (header and data) of some kind.
fn tar_new_entry(rng: &mut Rng) -> Vec<u8> {
    let (name, data, flag): (Vec<u8>, Vec<u8>, u8) = match rng.below(6) {
        0 => {
            // GNU long name.
            let mut long = rng.pick_bytes(TAR_NAMES).to_vec();
            if rng.one_in(2) {
                long = format!("hello/{}/long.yaml", "d".repeat(rng.range(90, 300))).into_bytes();
            }
            long.push(0);
            (b"././@LongLink".to_vec(), long, b'L')
        }
        1 => (
            b"././@LongLink".to_vec(),
            rng.pick_bytes(TAR_NAMES).to_vec(),
            b'K',
        ),
        2 | 3 => {
            let mut records = Vec::new();
            for _ in 0..rng.range(1, 3) {
                records.extend(pax_record(rng.pick_bytes(PAX_RECORDS)));
            }
            if rng.one_in(5) {
                let malformed: &[&[u8]] = &[
                    b"5 a=b\n",
                    b"0 path=x\n",
                    b"999999999999999999999 path=x\n",
                    b"12 path=x",
                ];
                records.extend_from_slice(rng.pick_bytes(malformed));
            }
            let flag = if rng.one_in(4) { b'g' } else { b'x' };
            (b"././@PaxHeader".to_vec(), records, flag)
        }
        4 => (
            rng.pick_bytes(TAR_NAMES).to_vec(),
            b"apiVersion: v2\nname: x\nversion: 1.0.0\n".to_vec(),
            *rng.pick(TYPE_FLAGS),
        ),
        _ => (b"hello/templates/".to_vec(), Vec::new(), b'5'),
    };
    let mut entry = tar_header(&name, data.len() as u64, flag);
    entry.extend(padded(&data));
    entry
}

/// One tar-aware mutation.
fn mutate_tar(rng: &mut Rng, tar: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let entries = tar_entries(tar);
    let Some(&(h, end)) = entries.get(rng.below(entries.len())) else {
        tar.splice(0..0, tar_new_entry(rng));
        return;
    };
    match rng.below(14) {
        0 | 1 => set_field(&mut tar[h..], 0, 100, rng.pick_bytes(TAR_NAMES)),
        2 => {
            let prefix = rng.pick_bytes(&[b"hello", b"..", b"/", b"hello/..", b"x"]);
            set_field(&mut tar[h..], 345, 155, prefix);
        }
        3 => {
            let size = match rng.below(3) {
                0 => *rng.pick(SIZES),
                1 => fuzz_harness::tar_size(&tar[h + 124..h + 136]).saturating_add(1),
                _ => fuzz_harness::tar_size(&tar[h + 124..h + 136]).saturating_sub(1),
            };
            set_field(&mut tar[h..], 124, 12, &octal_field(size, 12));
        }
        4 => {
            let field = rng.pick_bytes(&[
                b"\x80\0\0\0\0\0\0\0\xff\xff\xff\xff",
                b"garbage!!!!\0",
                b"           ",
            ]);
            set_field(&mut tar[h..], 124, 12, field);
        }
        5 | 6 => tar[h + 156] = *rng.pick(TYPE_FLAGS),
        7 => {
            let mode = rng.pick_bytes(&[
                b"0040755\0",
                b"0100644\0",
                b"0120777\0",
                b"9999999\0",
                b"\x80\0\0\0\0\0\0\0",
            ]);
            set_field(&mut tar[h..], 100, 8, mode);
        }
        8 => {
            let magic = rng.pick_bytes(&[
                b"ustar  \0",
                b"ustar\x0000",
                b"\0\0\0\0\0\0\0\0",
                b"garbage!",
            ]);
            set_field(&mut tar[h..], 257, 8, magic);
        }
        9 => {
            tar.splice(h..h, tar_new_entry(rng));
        }
        10 => {
            tar.drain(h..end);
        }
        11 => {
            let entry = tar[h..end].to_vec();
            let at = entries[rng.below(entries.len())].0;
            tar.splice(at..at, entry);
        }
        12 => {
            // Cut the archive: at a block boundary, or anywhere.
            let at = if rng.one_in(2) {
                rng.below(tar.len() / 512 + 1) * 512
            } else {
                rng.below(tar.len() + 1)
            };
            tar.truncate(at);
        }
        _ => {
            // After the end: junk, or more zero blocks.
            if rng.one_in(2) {
                tar.extend_from_slice(b"trailing junk");
            } else {
                tar.extend(std::iter::repeat_n(0u8, 512 * rng.range(1, 4)));
            }
            if rng.one_in(4) {
                mutate_bytes(rng, tar, pool, &["ustar", "\0"]);
            }
        }
    }
}

/// The tar inside an input of the `chart_archive` target, if it has one.
fn input_tar(input: &[u8]) -> Option<Vec<u8>> {
    match input.split_first() {
        Some((b'F' | b'T', tar)) => Some(tar.to_vec()),
        _ => {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(input)
                .take(1024 * 1024)
                .read_to_end(&mut out)
                .ok()
                .map(|_| out)
        }
    }
}

/// A `.tgz` (or tar-form input of the target) made from `tar`, sometimes damaged on the gzip
/// level.
fn wrap_tar(rng: &mut Rng, mut tar: Vec<u8>, pool: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        0..=3 => {
            let mut input = b"F".to_vec();
            input.append(&mut tar);
            input
        }
        4 => {
            let mut input = b"T".to_vec();
            input.append(&mut tar);
            input
        }
        5..=7 => {
            fuzz_harness::fix_tar_checksums(&mut tar);
            fuzz_harness::gzip(&tar)
        }
        _ => {
            fuzz_harness::fix_tar_checksums(&mut tar);
            let mut gz = fuzz_harness::gzip(&tar);
            let len = gz.len();
            match rng.below(5) {
                // Header flags (FEXTRA, FNAME, FCOMMENT, FHCRC), method, OS.
                0 => gz[3] = rng.byte(),
                // The trailer: CRC-32 and ISIZE.
                1 if len >= 8 => {
                    let i = len - 1 - rng.below(8);
                    gz[i] ^= 1 << rng.below(8);
                }
                2 => gz.truncate(rng.below(len + 1).max(3)),
                3 => {
                    // Another member, or junk after the stream.
                    if rng.one_in(2) {
                        gz.extend(fuzz_harness::gzip(&tar_new_entry(rng)));
                    } else {
                        gz.extend_from_slice(b"\x1f\x8b\x08junk");
                    }
                }
                _ => mutate_bytes(rng, &mut gz, pool, &["\x1f\u{8b}\x08", "\0"]),
            }
            gz
        }
    }
}

fn mutate_archive_bytes(rng: &mut Rng, base: &[u8], pool: &[Vec<u8>]) -> Vec<u8> {
    match input_tar(base) {
        Some(mut tar) if !rng.one_in(8) => {
            for _ in 0..rng.range(1, 3) {
                mutate_tar(rng, &mut tar, pool);
            }
            wrap_tar(rng, tar, pool)
        }
        _ => {
            let mut data = base.to_vec();
            mutate_bytes(rng, &mut data, pool, &["\x1f\u{8b}\x08", "ustar", "\0"]);
            data
        }
    }
}

fn mutate_archive_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let base = rng.pick(pool).clone();
    mutate_archive_bytes(rng, &base, pool)
}

// --- catalog ---

const PATH_PARTS: &[&str] = &[
    "apps",
    "releases",
    "categories",
    "repos",
    "values",
    "hello",
    "whoami",
    "a",
    "0.1.0",
    "0.2.0.tgz",
    "1.0.0",
    "1.0.0.tgz",
    "v1",
    "1.0.0-rc.1+build.5",
    "latest",
    "app.yaml",
    "app.yml",
    "icon.svg",
    "icon.png",
    "shot.svg",
    "Chart.yaml",
    "values.yaml",
    "values.schema.json",
    ".helmignore",
    "templates",
    "charts",
    "README.md",
    "screenshots",
    "host",
    "default",
    "kube-system",
    "x.yaml",
    "x.yml",
    "UPPER",
    "-bad-",
    "a.b",
    "pitrix.toml",
    ".hidden",
    "common.yaml",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// One mutation of a file's content, by what the file is.
fn mutate_file(rng: &mut Rng, path: &[u8], content: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let path = String::from_utf8_lossy(path);
    if path.ends_with(".tgz") {
        *content = mutate_archive_bytes(rng, content, pool);
        // The target reads .tgz files as they are: no `F`/`T` forms there.
        if let Some((b'F' | b'T', _)) = content.split_first() {
            let form = content[0];
            let mut tar = content.split_off(1);
            if form == b'F' {
                fuzz_harness::fix_tar_checksums(&mut tar);
            }
            *content = fuzz_harness::gzip(&tar);
        }
    } else if path.ends_with(".toml") {
        mutate_bytes(rng, content, pool, TOML_TOKENS);
    } else if path.ends_with(".png") || path.ends_with(".svg") || path.ends_with(".jpg") {
        mutate_bytes(rng, content, pool, IMAGE_TOKENS);
    } else {
        mutate_yaml(rng, content, pool);
    }
}

fn mutate_path(rng: &mut Rng, path: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(path).into_owned();
    let (outer, inner) = match text.split_once('!') {
        Some((o, i)) => (o.to_string(), Some(i.to_string())),
        None => (text, None),
    };
    let mut parts: Vec<String> = outer.split('/').map(str::to_string).collect();
    match rng.below(5) {
        0 | 1 => {
            let i = rng.below(parts.len());
            parts[i] = rng.pick(PATH_PARTS).to_string();
        }
        2 => {
            let i = rng.below(parts.len() + 1);
            parts.insert(i, rng.pick(PATH_PARTS).to_string());
        }
        3 if parts.len() > 1 => {
            let i = rng.below(parts.len());
            parts.remove(i);
        }
        _ => {
            // In or out of an archive.
            let joined = parts.join("/");
            return match inner {
                Some(inner) => format!("{joined}/{inner}").into_bytes(),
                None => format!("apps/hello/9.9.9.tgz!{joined}").into_bytes(),
            };
        }
    }
    let mut out = parts.join("/");
    if let Some(inner) = inner {
        out.push('!');
        out.push_str(&inner);
    }
    out.into_bytes()
}

fn mutate_catalog_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let base = rng.pick(pool).clone();
    if rng.one_in(20) {
        let mut data = base;
        mutate_bytes(rng, &mut data, pool, &["\n%%% ", "apps/", ".yaml", "!"]);
        return data;
    }
    let mut sections: Vec<(Vec<u8>, Vec<u8>)> = container::decode(&base)
        .into_iter()
        .map(|(p, c)| (p.to_vec(), c.to_vec()))
        .collect();
    for _ in 0..rng.range(1, 3) {
        if sections.is_empty() {
            sections.push((
                b"pitrix.toml".to_vec(),
                b"[catalog]\nname = \"x\"\n".to_vec(),
            ));
        }
        let i = rng.below(sections.len());
        match rng.below(10) {
            0..=5 => {
                let (path, content) = &mut sections[i];
                mutate_file(rng, path, content, pool);
            }
            6 => sections[i].0 = mutate_path(rng, &sections[i].0),
            7 => {
                sections.remove(i);
            }
            8 => {
                let (path, content) = sections[i].clone();
                sections.push((mutate_path(rng, &path), content));
            }
            _ => {
                // A file from another catalog.
                let other = container::decode(&pool[rng.below(pool.len())])
                    .into_iter()
                    .map(|(p, c)| (p.to_vec(), c.to_vec()))
                    .collect::<Vec<_>>();
                if !other.is_empty() {
                    sections.push(rng.pick(&other).clone());
                }
            }
        }
    }
    container::encode(&sections)
}
