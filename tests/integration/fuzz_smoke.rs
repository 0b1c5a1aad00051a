//! A short, deterministic fuzz run of pitrix's input-facing entry points, on stable and with
//! plain `cargo test` (the long runs are `scripts/fuzz.sh`, with cargo-fuzz).
//!
//! The targets are those of the cargo-fuzz project (`tests/fuzz_harness/mod.rs`, shared with
//! `fuzz/fuzz_targets/`): `yaml`, `chart_archive`, `catalog_loader`, `diff`, `values_template`,
//! `helmignore`, `repo_index`, `kubeconfig` and `inventory`. Each test starts from the seeds in
//! `fuzz/seeds/<target>/` plus the ones built here, and feeds the target mutated inputs:
//! byte-level mutations (bit flips, truncation, splicing, …) and structure-aware ones (YAML
//! tokens and deep nesting, tar headers with hostile names, sizes and types, catalog files
//! moved, dropped and duplicated, sections of edits, Jinja blocks, glob tokens). A panic fails
//! the test; the input is saved to a file whose path the failure names, with a minimized copy
//! next to it. `values_template` also fails an input that takes over [`TEMPLATE_LIMIT`].
//!
//! * `PITRIX_FUZZ_SEED=<n|0xHEX>`: another PRNG seed (default fixed, so CI runs are repeatable).
//! * `PITRIX_FUZZ_ITERS=<n>`: iterations per target (defaults keep the whole run a few
//!   seconds in a debug build).
//! * `PITRIX_FUZZ_TEMPLATE_HEAVY=1`: big and deep loops in `values_template` inputs.
//! * `PITRIX_FUZZ_REPLAY=<target>:<file>` with `cargo test --test integration fuzz_smoke::replay --
//!   --ignored --nocapture`: run one saved input.
//! * `cargo test --test integration fuzz_smoke::write_seeds -- --ignored`: rewrite `fuzz/seeds/` from the
//!   seeds built here.

use crate::fuzz_harness;

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

#[test]
fn diff_fuzz_smoke() {
    run("diff", fuzz_harness::diff, mutate_diff_input, 150);
}

/// Each template must finish within [`TEMPLATE_LIMIT`]. Values templates run on a budget
/// (`src/template.rs`), but a budget's worth of work (a filter in a loop of 100 000 turns) takes
/// seconds in a debug build: the mutator keeps loops small and shallow (see
/// [`modest_template`]). `PITRIX_FUZZ_TEMPLATE_HEAVY=1` lets it make big and deep ones (best
/// with `--release`); [`runaway_templates_are_stopped`] checks the budget itself.
#[test]
fn values_template_fuzz_smoke() {
    run_limited(
        "values_template",
        fuzz_harness::values_template,
        mutate_template_input,
        1500,
        Some(TEMPLATE_LIMIT),
    );
}

#[test]
fn helmignore_fuzz_smoke() {
    run(
        "helmignore",
        fuzz_harness::helmignore,
        mutate_helmignore_input,
        6000,
    );
}

#[test]
fn repo_index_fuzz_smoke() {
    run(
        "repo_index",
        fuzz_harness::repo_index,
        mutate_index_input,
        3000,
    );
}

#[test]
fn kubeconfig_fuzz_smoke() {
    run(
        "kubeconfig",
        fuzz_harness::kubeconfig,
        mutate_kubeconfig_input,
        1000,
    );
}

#[test]
fn inventory_fuzz_smoke() {
    run(
        "inventory",
        fuzz_harness::inventory,
        mutate_inventory_input,
        600,
    );
}

/// Templates that run away (loops of 100 000 turns in loops of 100 000, a macro that calls
/// itself twice 40 deep) must each be stopped by the budget of values templates, within
/// [`RUNAWAY_LIMIT`]. Each runs in a child process, killed after a minute: a template that
/// does not stop fails the test instead of hanging it.
#[test]
fn runaway_templates_are_stopped() {
    const CHILD: &str = "PITRIX_FUZZ_RUNAWAY_CHILD";
    const TEMPLATES: [&str; 3] = [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "{% for i in range(100000) %}{% for row in vars.matrix %}{% for j in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
    ];
    if let Ok(i) = std::env::var(CHILD) {
        let template = TEMPLATES[i.parse::<usize>().unwrap()];
        let started = Instant::now();
        fuzz_harness::values_template(template.as_bytes());
        assert!(
            started.elapsed() <= RUNAWAY_LIMIT,
            "{:.2?}",
            started.elapsed()
        );
        return;
    }
    let mut failed = Vec::new();
    for (i, template) in TEMPLATES.iter().enumerate() {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "runaway_templates_are_stopped",
                "--include-ignored",
                "--test-threads=1",
            ])
            .env(CHILD, i.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        match status {
            Some(s) if s.success() => {}
            Some(s) => failed.push(format!("{template}: over {RUNAWAY_LIMIT:?} ({s})")),
            None => failed.push(format!("{template}: still running after a minute")),
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
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

/// The seeds of the newer targets get to what those targets check (or the fuzzing would stop
/// at the door): secrets planted in every way, a template that renders, an index, rules and a
/// kubeconfig that are accepted, an inventory and an output directory that read.
#[test]
fn seeds_reach_what_their_targets_check() {
    let (planted, outputs) =
        fuzz_harness::diff_checked(&diff_seeds()[0].1).expect("the diff seed runs");
    for place in [
        "release hello values, writeOnly",
        "chart values.yaml, writeOnly",
        "release hello values, /",
    ] {
        assert!(
            planted.iter().any(|p| p.place.contains(place)),
            "nothing planted in {place}: {planted:#?}"
        );
    }
    assert!(
        planted
            .iter()
            .any(|p| fuzz_harness::BROADENED_SECRET_KEYS.contains(&p.key.as_str()))
    );
    let text = &outputs[0].1;
    assert!(text.contains("*** (changed, sha256:"), "{text}");
    assert!(
        text.contains("*** (sha256:"),
        "chart files are diffed:\n{text}"
    );

    let loops = &template_seeds()
        .into_iter()
        .find(|(n, _)| n == "loops.j2")
        .unwrap()
        .1;
    let (catalog, diags) = fuzz_harness::values_template_loaded(loops);
    assert!(!diags.iter().any(|d| d.is_error()), "{diags:#?}");
    let release = &catalog.releases[0];
    assert_eq!(release.values_files[0].values["k1"], 1);
    assert!(
        release.values["t"]
            .as_str()
            .unwrap()
            .starts_with("k1: 1\nk2: 2\n")
    );

    let index = pitrix::repo::index::parse(INDEX.as_bytes(), &pitrix::repo::Filter::All).unwrap();
    assert_eq!(index.chart("redis").map(<[_]>::len), Some(2));
    assert_eq!(index.skipped, 2);

    let rules = &helmignore_seeds()[0].1;
    let rules = container::decode(rules)[0].1;
    assert!(pitrix::chart::helmignore_fuzzing::decide(rules, &[]).is_ok());

    let kubeconfig = &kubeconfig_seeds()[0].1;
    let clients = fuzz_harness::kubeconfig_clients(kubeconfig);
    assert_eq!(
        clients.len(),
        4,
        "the current context and the three named ones"
    );
    assert!(clients[0].is_ok() && clients[1].is_ok(), "{clients:?}");

    let seeds = inventory_seeds();
    let gz = container::decode(&seeds[0].1)[0].1;
    let cm: k8s_openapi::api::core::v1::ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "i"},
        "binaryData": {"inventory.json.gz": base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD, fuzz_harness::gzip(gz))},
    }))
    .unwrap();
    assert_eq!(
        pitrix::apply::decode_inventory(&cm).unwrap().objects.len(),
        3
    );
    let out: Vec<(&[u8], &[u8])> = container::decode(&seeds[2].1)
        .into_iter()
        .filter_map(|(p, c)| Some((p.strip_prefix(b"out/")?, c)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    fuzz_harness::write_catalog(dir.path(), &out);
    let desired = pitrix::apply::Desired::from_output_dir(dir.path()).unwrap();
    assert!(desired.objects.len() >= 7);
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
            .spawn(move || pitrix::yaml::parse(&deep_seq).is_ok())
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

/// The diff fuzzer found `writeOnly` values of a chart's values.yaml shown in the diff:
/// `redact::yaml_text` lost a value's path under a list written at its key's indentation
/// (`ports:\n- name: http`, as serde_yaml and many charts write lists), and after an indented
/// `---` in a block scalar (an embedded YAML stream), which it took for a document marker.
#[test]
fn write_only_values_under_unindented_lists_and_after_block_scalars_are_hidden() {
    let text = "\
service:
  ports:
  - name: http
    phrase: SECRET-ONE
  - - nested
    - phrase: not-write-only
config: |-
  a: 1
  ---
  b: 2
db:
  inner:
    phrase: SECRET-TWO
---
top: 1
";
    let wo = |p: &pitrix::redact::Path| {
        p == ["service", "ports", "*", "phrase"] || p == ["db", "inner", "phrase"]
    };
    let out = pitrix::redact::yaml_text(text, &wo);
    assert!(!out.contains("SECRET"), "{out}");
    assert!(out.contains("phrase: not-write-only"), "{out}");
    assert!(out.contains("  - name: http\n"), "{out}");
    assert!(out.contains("\n---\ntop: 1\n"), "{out}");
    // The same through the diff target: its regression seed plants there.
    let seed = diff_seeds()
        .into_iter()
        .find(|(n, _)| n == "unindented-list-block-scalar.diff")
        .unwrap()
        .1;
    let (planted, _) = fuzz_harness::diff_checked(&seed).expect("the seed runs");
    assert!(
        planted.iter().any(|p| p
            .place
            .contains("chart values.yaml, writeOnly /service/ports/0/")),
        "{planted:#?}"
    );
}

/// Found by the `diff` fuzzer: a `writeOnly` value under a key YAML has to quote was shown.
#[test]
fn write_only_values_under_quoted_keys_are_hidden() {
    let text = "'a: b':\n  phrase: SECRET-ONE\n'#':\n  phrase: SECRET-TWO\n";
    let wo = |p: &pitrix::redact::Path| p == ["a: b", "phrase"] || p == ["#", "phrase"];
    let out = pitrix::redact::yaml_text(text, &wo);
    assert!(!out.contains("SECRET"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// The runner.

const TARGETS: [&str; 9] = [
    "yaml",
    "chart_archive",
    "catalog_loader",
    "diff",
    "values_template",
    "helmignore",
    "repo_index",
    "kubeconfig",
    "inventory",
];

fn target_fn(target: &str) -> fn(&[u8]) {
    match target {
        "yaml" => fuzz_harness::yaml,
        "chart_archive" => fuzz_harness::chart_archive,
        "catalog_loader" => fuzz_harness::catalog_loader,
        "diff" => fuzz_harness::diff,
        "values_template" => fuzz_harness::values_template,
        "helmignore" => fuzz_harness::helmignore,
        "repo_index" => fuzz_harness::repo_index,
        "kubeconfig" => fuzz_harness::kubeconfig,
        "inventory" => fuzz_harness::inventory,
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
    run_limited(target, f, mutate, default_iters, None);
}

/// [`run`], failing an input that takes longer than `limit`.
fn run_limited(
    target: &str,
    f: fn(&[u8]),
    mutate: Mutator,
    default_iters: u64,
    limit: Option<Duration>,
) {
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
    pool.install(|| run_on_this_thread(target, f, mutate, seed, iters, limit, &mut rng, &seeds));
}

#[allow(clippy::too_many_arguments)]
fn run_on_this_thread(
    target: &str,
    f: fn(&[u8]),
    mutate: Mutator,
    seed: u64,
    iters: u64,
    limit: Option<Duration>,
    rng: &mut Rng,
    seeds: &[Vec<u8>],
) {
    let started = Instant::now();
    let mut slowest = (Duration::ZERO, 0);
    for (i, input) in seeds.iter().enumerate() {
        let which = format!("seed{i}");
        let t = Instant::now();
        check_one(target, f, input, seed, &which);
        check_time(target, input, seed, &which, t.elapsed(), limit);
    }
    let mut pool = seeds.to_vec();
    for i in 0..iters {
        let mut input = mutate(rng, &pool);
        input.truncate(MAX_INPUT);
        let t = Instant::now();
        check_one(target, f, &input, seed, &i.to_string());
        let took = t.elapsed();
        check_time(target, &input, seed, &i.to_string(), took, limit);
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
         replay: PITRIX_FUZZ_REPLAY={target}:{} cargo test --test integration fuzz_smoke::replay -- --ignored --nocapture",
        input.len(),
        path.display(),
        minimized.len(),
        min_path.display(),
        String::from_utf8_lossy(&minimized[..minimized.len().min(400)]),
        min_path.display(),
    );
}

/// Fails (saving the input) when an input took longer than `limit`.
fn check_time(
    target: &str,
    input: &[u8],
    seed: u64,
    which: &str,
    took: Duration,
    limit: Option<Duration>,
) {
    let Some(limit) = limit.filter(|l| took > *l) else {
        return;
    };
    let path = std::env::temp_dir().join(format!("pitrix-fuzz-{target}-{seed:x}-{which}.bin"));
    let _ = std::fs::write(&path, input);
    panic!(
        "fuzz target `{target}` took {took:.2?} on input {which} (limit {limit:?}; PITRIX_FUZZ_SEED={seed:#x}): {}\n{:?}",
        path.display(),
        String::from_utf8_lossy(&input[..input.len().min(400)]),
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
        "diff" => diff_seeds(),
        "values_template" => template_seeds(),
        "helmignore" => helmignore_seeds(),
        "repo_index" => index_seeds(),
        "kubeconfig" => kubeconfig_seeds(),
        "inventory" => inventory_seeds(),
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

// --- sections (diff, inventory, helmignore) ---

/// An input's sections, owned.
fn sections_of(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    container::decode(data)
        .into_iter()
        .map(|(p, c)| (p.to_vec(), c.to_vec()))
        .collect()
}

/// A container of `(path, text)` sections.
fn encode_texts(sections: &[(&str, &str)]) -> Vec<u8> {
    container::encode(sections)
}

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e400",
    "\\u0000",
    "\\ud800",
    "{\"writeOnly\": true}",
    "\"writeOnly\": true",
    "\"properties\": {",
    "\"items\": ",
    "\"additionalProperties\": ",
    "\"$ref\": \"#\"",
    "\"$ref\": \"#/properties/a\"",
    "\"allOf\": [",
    "\"type\": \"object\"",
];

/// Mutates a container input: a section's content (by `mutate_content`), its path (to one of
/// `paths`), a section dropped, duplicated, or added from `extra`.
fn mutate_sections(
    rng: &mut Rng,
    pool: &[Vec<u8>],
    paths: &[&str],
    extra: &[(&str, &str)],
    mutate_content: fn(&mut Rng, &str, &mut Vec<u8>, &[Vec<u8>]),
) -> Vec<u8> {
    let base = rng.pick(pool).clone();
    if rng.one_in(25) {
        let mut data = base;
        mutate_bytes(
            rng,
            &mut data,
            pool,
            &["\n%%% ", "old:", "new:", "values", "chart/"],
        );
        return data;
    }
    let mut sections = sections_of(&base);
    for _ in 0..rng.range(1, 3) {
        if sections.is_empty() || rng.one_in(8) {
            let (p, c) = *rng.pick(extra);
            sections.push((p.as_bytes().to_vec(), c.as_bytes().to_vec()));
            continue;
        }
        let i = rng.below(sections.len());
        match rng.below(10) {
            0..=6 => {
                let path = String::from_utf8_lossy(&sections[i].0).into_owned();
                mutate_content(rng, &path, &mut sections[i].1, pool);
            }
            7 => sections[i].0 = rng.pick(paths).as_bytes().to_vec(),
            8 => {
                sections.remove(i);
            }
            _ => {
                let (p, c) = sections[i].clone();
                let p = if rng.one_in(2) {
                    rng.pick(paths).as_bytes().to_vec()
                } else {
                    p
                };
                sections.push((p, c));
            }
        }
    }
    container::encode(&sections)
}

// --- diff ---

const DIFF_PATHS: &[&str] = &[
    "values",
    "old:values",
    "new:values",
    "chart/values.yaml",
    "old:chart/values.yaml",
    "new:chart/values.yaml",
    "new:chart/templates/secret.yaml",
    "new:chart/templates/configmap.yaml",
    "new:chart/README.md",
    "old:chart/files/data.bin",
    "schema",
    "old:schema",
    "new:schema",
    "object",
    "old:object",
    "new:object",
    "old:remove",
    "new:remove",
    "old:state",
    "new:state",
    "plant",
];

const DIFF_VALUES: &str = "\
message: Hello
replicaCount: 2
db:
  host: db
  port: 5432
  options: {sslmode: require}
list:
  - name: a
    opts: {x: 1}
  - name: b
    nested:
      - - deep: 1
auth:
  enabled: true
  username: admin
url: https://user:pw@example.com/x
";

const DIFF_CHART_VALUES: &str = "\
replicaCount: 1
image:
  repository: nginx
  tag: '1.27'
service:
  ports:
  - name: http
    port: 80
config:
  nested:
    deeper: {a: 1}
  items:
    - one
    - two
";

const DIFF_OBJECTS: &str = "\
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config, namespace: default}
data: {LOG_LEVEL: debug, url: 'postgres://u:pw@db/x'}
---
apiVersion: application.kubesphere.io/v2
kind: Category
metadata:
  name: databases
  annotations: {kubesphere.io/alias-name: Databases}
spec: {icon: database}
---
apiVersion: application.kubesphere.io/v2
kind: ApplicationRelease
metadata:
  name: other
  labels: {application.kubesphere.io/appversion-id: hello-0.1.0, application.kubesphere.io/app-id: hello}
spec:
  appID: hello
  appVersionID: hello-0.1.0
  appType: helm
  values: cmVwbGljYUNvdW50OiAzCg==
";

fn diff_seeds() -> Vec<(String, Vec<u8>)> {
    let plant = "\u{1}\u{5}\u{2}\u{7}\u{3}\u{9}\u{4}\u{0}\u{11}\u{21}\u{8}\u{6}";
    vec![
        (
            "values-and-chart.diff".into(),
            encode_texts(&[
                ("old:values", "message: Hi\ndb:\n  host: old\n"),
                ("new:values", DIFF_VALUES),
                ("new:chart/values.yaml", DIFF_CHART_VALUES),
                (
                    "new:chart/templates/secret.yaml",
                    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: {{ .Values.password }}\n",
                ),
                (
                    "schema",
                    r#"{"type": "object", "properties": {"replicaCount": {"type": "integer"}, "db": {"properties": {"options": {"additionalProperties": {"type": "string"}}}}}}"#,
                ),
                ("plant", plant),
            ]),
        ),
        (
            "objects-and-states.diff".into(),
            encode_texts(&[
                ("new:object", DIFF_OBJECTS),
                (
                    "old:object",
                    DIFF_OBJECTS.split("---").next().unwrap_or_default(),
                ),
                ("new:remove", "Category/tools\nRepo/bitnami\n"),
                (
                    "new:state",
                    "ApplicationVersion hello-0.1.0 suspended taken off the store\nApplication hello draft\n",
                ),
                ("plant", "\u{2}\u{3}\u{0}\u{1}"),
            ]),
        ),
        (
            "same-secrets.diff".into(),
            encode_texts(&[
                ("values", DIFF_VALUES),
                ("chart/values.yaml", DIFF_CHART_VALUES),
                ("plant", "\u{4}\u{4}\u{4}\u{4}"),
            ]),
        ),
        ("empty.diff".into(), Vec::new()),
        (
            "unindented-list-block-scalar.diff".into(),
            encode_texts(&[
                ("new:chart/values.yaml", REGRESSION_CHART_VALUES),
                ("plant", REGRESSION_PLANT),
            ]),
        ),
    ]
}

/// A chart's values.yaml with a list at its key's indentation and a block scalar holding `---`
/// (see `write_only_values_under_unindented_lists_and_after_block_scalars_are_hidden`), and
/// the `plant` bytes that put a writeOnly value in that list's item.
const REGRESSION_CHART_VALUES: &str = "\
service:
  ports:
  - name: http
    port: 80
config: |-
  a: 1
  ---
  b: 2
db:
  inner:
    host: x
";
const REGRESSION_PLANT: &str = "\u{0}\u{7}\u{0}\u{1}\u{2}\u{3}";

fn mutate_diff_content(rng: &mut Rng, path: &str, content: &mut Vec<u8>, pool: &[Vec<u8>]) {
    let name = path.rsplit(':').next().unwrap_or(path);
    if name == "plant" {
        mutate_bytes(rng, content, pool, &["\0", "\u{1}", "\u{ff}"]);
    } else if name.ends_with("schema") || name.ends_with(".json") {
        mutate_bytes(rng, content, pool, JSON_TOKENS);
    } else if name == "remove" || name == "state" {
        mutate_bytes(
            rng,
            content,
            pool,
            &[
                "Application ",
                "ApplicationVersion ",
                "ConfigMap/",
                "hello",
                "hello-0.1.0",
                " active",
                " rejected",
                "\n",
            ],
        );
    } else {
        mutate_yaml(rng, content, pool);
    }
}

fn mutate_diff_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let extra: &[(&str, &str)] = &[
        ("new:values", DIFF_VALUES),
        ("old:chart/values.yaml", DIFF_CHART_VALUES),
        ("new:object", DIFF_OBJECTS),
        ("plant", "\u{9}\u{1}\u{3}"),
        (
            "new:chart/templates/x.yaml",
            "kind: Secret\ndata:\n  tls.key: QUFBQQ==\n",
        ),
        (
            "old:schema",
            r#"{"properties": {"list": {"items": {"properties": {"name": {"writeOnly": true}}}}}}"#,
        ),
    ];
    mutate_sections(rng, pool, DIFF_PATHS, extra, mutate_diff_content)
}

// --- values_template ---

/// Longest a values template may take in the smoke run (debug build, busy machine).
const TEMPLATE_LIMIT: Duration = Duration::from_secs(5);

/// Longest a runaway template may run before its budget stops it (libFuzzer's `-timeout` in
/// scripts/fuzz.sh; a debug build, a busy machine).
const RUNAWAY_LIMIT: Duration = Duration::from_secs(20);

/// Whether the template mutator may make big loops (`PITRIX_FUZZ_TEMPLATE_HEAVY=1`).
fn heavy_templates() -> bool {
    std::env::var_os("PITRIX_FUZZ_TEMPLATE_HEAVY").is_some_and(|v| v == "1")
}

fn template_seeds() -> Vec<(String, Vec<u8>)> {
    let seeds: &[(&str, &str)] = &[
        (
            "context.j2",
            "name: {{ release }}-{{ namespace }}-{{ cluster }}\nword: {{ vars.word | upper }}\ncatalog: {{ catalog }}\n",
        ),
        (
            "loops.j2",
            "{% for i in vars.items %}k{{ i }}: {{ loop.index }}\n{% endfor %}{% for row in vars.matrix %}{% for c in row %}r{{ loop.depth }}c{{ c }}: {{ loop.revindex }}\n{% endfor %}{% endfor %}",
        ),
        (
            "nested-range.j2",
            "{% for i in range(10) %}{% for j in range(i) %}{% if (i + j) is even %}x{{ i }}_{{ j }}: {{ i * j }}\n{% endif %}{% endfor %}{% endfor %}",
        ),
        (
            "namespace.j2",
            "{% set ns = namespace(s='') %}{% for row in vars.matrix %}{% for c in row %}{% set ns.s = ns.s ~ c %}{% endfor %}{% endfor %}s: '{{ ns.s }}'\n",
        ),
        (
            "macro.j2",
            "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}x{% endif %}{% endmacro %}r: {{ f(20) }}\n",
        ),
        (
            "filters.j2",
            "csv: '{{ range(10) | map('string') | join(',') }}'\njson: {{ vars.nested | tojson }}\nrep: {{ 'ab' * 3 }}\nsorted: {{ [3, 1, 2] | sort | list }}\n{% filter upper %}up: yes{% endfilter %}\n",
        ),
        (
            "recursive-loop.j2",
            "{% for k, v in {'a': {'b': {'c': 1}}} | items recursive %}{{ k }}{% if v is mapping %}[{{ loop(v | items) }}]{% endif %}{% endfor %}\n",
        ),
        (
            "errors.j2",
            "a: {{ undefined_name }}\nb: {{ 1 / 0 }}\n{% include 'x' %}{% for %}",
        ),
        (
            "not-a-template.yaml",
            "replicaCount: 3\nimage: {tag: '1.0'}\nnote: braces { and } and % are fine\n",
        ),
    ];
    seeds
        .iter()
        .map(|(n, t)| (n.to_string(), t.as_bytes().to_vec()))
        .collect()
}

const JINJA_TOKENS: &[&str] = &[
    "{{ ",
    " }}",
    "{% ",
    " %}",
    "{# ",
    " #}",
    "{%- ",
    " -%}",
    "{% endfor %}",
    "{% endif %}",
    "{% else %}",
    "{% for i in vars.items %}",
    "{% for x in range(3) %}",
    "{% if x %}",
    "{% set y = 2 %}",
    "{% raw %}",
    "{% endraw %}",
    "{% macro m(a) %}",
    "{% endmacro %}",
    "{{ m(1) }}",
    "loop.index",
    "loop.cycle('a', 'b')",
    "vars",
    "vars.nested.a.b",
    "release",
    "env",
    "| upper",
    "| join(',')",
    "| tojson",
    "| default('d')",
    "| length",
    "| list",
    "| reverse",
    "| first",
    "| batch(2)",
    "| groupby('x')",
    " ~ ",
    " + ",
    " * ",
    " // ",
    " % ",
    " is defined",
    " in ",
    "(",
    ")",
    "[",
    "]",
    "'",
    "\"",
    ",",
    ":",
    "{",
    "}",
    "\n",
    "-",
    "namespace()",
    "caller()",
    "super()",
    "self",
    "none",
    "true",
    "range(",
    "dict(a=1)",
];

/// A template made from nested blocks: loops (at most 3 deep, over at most `most` items),
/// conditions, sets, macro calls, filters.
fn gen_template(rng: &mut Rng, depth: usize, most: usize) -> String {
    let sizes = [0, 1, 2, 3, 7, most];
    let mut out = String::new();
    for _ in 0..rng.range(1, 3) {
        match rng.below(8) {
            0 | 1 if depth < 3 => {
                let var = ["i", "j", "k"][depth];
                let source = match rng.below(4) {
                    0 => format!("range({})", rng.pick(&sizes)),
                    1 => "vars.items".to_string(),
                    2 => "vars.matrix".to_string(),
                    _ => format!("'{}' * {}", "ab", rng.pick(&sizes).min(&20)),
                };
                let body = gen_template(rng, depth + 1, most);
                out.push_str(&format!("{{% for {var} in {source} %}}{body}{{% endfor %}}"));
            }
            2 => out.push_str(&format!(
                "{{% if vars.n > {} %}}{}{{% else %}}e{{% endif %}}",
                rng.below(20),
                gen_template(rng, depth + 1, most)
            )),
            3 => out.push_str(&format!(
                "{{% set v{depth} = {} %}}{{{{ v{depth} }}}}",
                rng.pick(&["vars.word ~ 'x'", "[1, 2] + [3]", "vars.items | length", "{'a': 1}"])
            )),
            4 => out.push_str(&format!(
                "{{{{ {} }}}}",
                rng.pick(&[
                    "release | upper",
                    "vars.nested | tojson",
                    "vars.items | join('-')",
                    "loop.index if loop is defined else 0",
                    "range(5) | sum",
                    "'x' * 10",
                ])
            )),
            5 => out.push_str("k: v\n"),
            6 => out.push_str(&format!(
                "{{% macro mm(n) %}}{{% if n > 0 %}}{{{{ mm(n - 1) }}}}{{% endif %}}.{{% endmacro %}}{{{{ mm({}) }}}}",
                rng.below(30)
            )),
            _ => {
                let token: &&str = rng.pick(JINJA_TOKENS);
                out.push_str(token);
            }
        }
    }
    out
}

/// A smoke-run template must stay cheap to render in a debug build (see
/// [`values_template_fuzz_smoke`]): every number is cut to `most`, and a template with more than three loops, or a
/// `namespace` or a recursive loop with any loop (ways to double a string per turn), is
/// replaced. `None`: replace it.
fn modest_template(text: &[u8], most: u64) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i].is_ascii_digit() {
            let end = (i..text.len())
                .find(|&j| !text[j].is_ascii_digit())
                .unwrap_or(text.len());
            let n: u64 = std::str::from_utf8(&text[i..end])
                .ok()
                .and_then(|d| d.parse().ok())
                .unwrap_or(u64::MAX);
            out.extend_from_slice(n.min(most).to_string().as_bytes());
            i = end;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    let lower = String::from_utf8_lossy(&out).to_lowercase();
    let loops = lower.matches("for").count();
    let doubling = lower.contains("namespace")
        || lower.contains("recursive")
        || lower.contains("macro") && lower.matches("mm(").count() > 2;
    let chains = lower.matches("set").count() + lower.matches('*').count();
    (loops <= 3 && !(doubling && loops > 1) && chains <= 6).then_some(out)
}

fn mutate_template_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let heavy = heavy_templates();
    let most = if heavy { 100_000 } else { 30 };
    let mut data = if rng.one_in(3) {
        gen_template(rng, 0, most).into_bytes()
    } else {
        let mut data = rng.pick(pool).clone();
        for _ in 0..rng.range(1, 3) {
            if rng.one_in(4) {
                let at = rng.below(data.len() + 1);
                let snippet = gen_template(rng, 1, most);
                data.splice(at..at, snippet.into_bytes());
            } else {
                mutate_bytes(rng, &mut data, pool, JINJA_TOKENS);
            }
        }
        data
    };
    if !heavy {
        data = modest_template(&data, most as u64).unwrap_or_else(|| rng.pick(pool).clone());
    }
    data
}

// --- helmignore ---

const HELMIGNORE_RULES: &str = "\
# comments and blank lines

.DS_Store
*.swp
*~
.git/
/top.txt
templates/*.bak
!templates/keep.bak
ci/
[Tt]est?.yaml
\\#literal
*.[ch]
ru[c-e]?er.txt
";

const HELMIGNORE_PATHS: &str = "\
.DS_Store
a/b/x.swp
templates/keep.bak
templates/drop.bak
top.txt
sub/top.txt
.git/
ci/
Test1.yaml
#literal
x.c
rudder.txt
templates/.hidden
values.yaml
";

fn helmignore_seeds() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "rules-and-paths.hi".into(),
            encode_texts(&[("rules", HELMIGNORE_RULES), ("paths", HELMIGNORE_PATHS)]),
        ),
        (
            "keep-only-two.hi".into(),
            encode_texts(&[
                ("rules", "!Chart.yaml\n!values.yaml\n*\n"),
                ("paths", "Chart.yaml\nvalues.yaml\ntemplates/\ntemplates/a.yaml\n"),
            ]),
        ),
        (
            "classes-and-escapes.hi".into(),
            b"[^a-c]*\n[\\]a]\n\\*x\n[a-\xce\xb6]*\n\xff*\na*b?c*x\nabxbbxdbxebxczzx\n\xce\xb1\n[z-\n**\n".to_vec(),
        ),
    ]
}

const GLOB_TOKENS: &[&str] = &[
    "*", "?", "[", "]", "^", "-", "\\", "/", "!", "#", ".", "**", "[a-z]", "[^/]", "[\\]]",
    "\u{3b6}", "\u{263a}", "\u{fffd}", "\r", " ", "\t", "\n",
];

fn mutate_helmignore_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    fn content(rng: &mut Rng, _path: &str, content: &mut Vec<u8>, pool: &[Vec<u8>]) {
        if rng.one_in(3) {
            // A line copied to the other section's shape: rules become paths and back.
            let line: Vec<u8> = GLOB_TOKENS
                .iter()
                .take(rng.range(1, 6))
                .flat_map(|t| t.bytes())
                .collect();
            let at = rng.below(content.len() + 1);
            content.splice(at..at, line);
        } else {
            mutate_bytes(rng, content, pool, GLOB_TOKENS);
        }
    }
    let extra: &[(&str, &str)] = &[("rules", "*.tmp\n"), ("paths", "a/b.tmp\n")];
    mutate_sections(rng, pool, &["rules", "paths"], extra, content)
}

// --- repo_index ---

const INDEX: &str = r#"apiVersion: v1
entries:
  redis:
    - name: redis
      version: 19.6.4
      appVersion: 7.2.5
      digest: sha256:ABCDEF0123
      urls: [https://example.test/redis-19.6.4.tgz]
      maintainers: [{name: A, extra: x}, null, {email: b@example.test}]
      keywords: [cache, db]
      created: "2024-01-01T00:00:00Z"
    - name: redis
      version: v20.0.0
      urls: [redis-20.0.0.tgz]
      deprecated: true
    - name: redis
      version: not-semver
      urls: [x.tgz]
    - null
    - name: other
      version: 1.0.0
      urls: [o.tgz]
  nginx:
    - name: nginx
      version: 1.0.0-rc.1+build.5
      urls: [nginx-1.0.0.tgz]
      icon: https://example.test/icon.svg
  empty: []
  nothing:
generated: "2024-01-01T00:00:00Z"
serverInfo: {contextPath: /charts}
"#;

fn index_seeds() -> Vec<(String, Vec<u8>)> {
    vec![
        ("index.yaml".into(), INDEX.as_bytes().to_vec()),
        (
            "anchors.yaml".into(),
            b"apiVersion: v1\nentries:\n  a: &a\n    - {name: a, version: 1.0.0, urls: [a.tgz]}\n  b: *a\n  c: [&v {name: c, version: 2.0.0, urls: [c.tgz]}, *v]\n".to_vec(),
        ),
        (
            "flow.json".into(),
            br#"{"apiVersion": "v1", "entries": {"x": [{"name": "x", "version": "0.0.1", "urls": ["u"], "maintainers": null}]}}"#.to_vec(),
        ),
    ]
}

fn mutate_index_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut data = rng.pick(pool).clone();
    for _ in 0..rng.range(1, 4) {
        mutate_yaml(rng, &mut data, pool);
    }
    data
}

// --- kubeconfig ---

/// A self-signed certificate (a throwaway test CA, base64 of its PEM) to put into kubeconfigs,
/// so that CA bundles and client certificates are parsed for real.
const KUBE_CERT_B64: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJlVENDQVIrZ0F3SUJBZ0lVT1JzOHZZL2xrOE52RmVFZ2syZFUydkgvakJrd0NnWUlLb1pJemowRUF3SXcKRWpFUU1BNEdBMVVFQXd3SGRHVnpkQzFqWVRBZUZ3MHlOakV5TURReE9ETTVNamhhRncwek5qRXlNREV4T0RNNQpNamhhTUJJeEVEQU9CZ05WQkFNTUIzUmxjM1F0WTJFd1dUQVRCZ2NxaGtqT1BRSUJCZ2dxaGtqT1BRTUJCd05DCkFBUTVOeWsrRThLM1ZOUk5ISm1BdStZN2FxdnRvZCtnUzVKcEJncDIzZUY1MWx3RERFV083MW04cjZDekFSVEgKbGRyTEI3SzdSc3FuNklYdEZXSE9RcHUybzFNd1VUQWRCZ05WSFE0RUZnUVU4UkwwYVF2VFJRcXNpTXRPcUxtTQorM2dpSG93d0h3WURWUjBqQkJnd0ZvQVU4UkwwYVF2VFJRcXNpTXRPcUxtTSszZ2lIb3d3RHdZRFZSMFRBUUgvCkJBVXdBd0VCL3pBS0JnZ3Foa2pPUFFRREFnTklBREJGQWlFQXJGV2d1bHN6Wnh3eWJ4dFluQzhzcmxHdGFQUzIKRy9TeU5BdStDeUJGZDZjQ0lHQTJxalZMeTBKWGpLVVd4Y2I3RnJ2ajNpcjNFMlFXb1k3eThVZEY2TTRrCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";

fn kubeconfig_seeds() -> Vec<(String, Vec<u8>)> {
    let full = format!(
        r#"apiVersion: v1
kind: Config
current-context: host
clusters:
- name: host
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: {KUBE_CERT_B64}
    tls-server-name: kubernetes
- name: edge
  cluster:
    server: https://edge.example.test:6443
    insecure-skip-tls-verify: true
    proxy-url: http://proxy.example.test:3128
- name: plain
  cluster: {{server: 'http://localhost:8080'}}
contexts:
- name: host
  context: {{cluster: host, user: robot, namespace: kubesphere-system}}
- name: edge
  context: {{cluster: edge, user: robot}}
- name: cert
  context: {{cluster: plain, user: admin}}
users:
- name: admin
  user:
    client-certificate-data: {KUBE_CERT_B64}
    client-key-data: bm90IGEga2V5
- name: robot
  user:
    token: abc.def.ghi
    impersonate: someone
    impersonate-groups: [a, b]
"#
    );
    let seeds: Vec<(&str, String)> = vec![
        ("full.kubeconfig", full),
        (
            "basic-auth.kubeconfig",
            "apiVersion: v1\nclusters: [{name: c, cluster: {server: 'http://localhost:8080'}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {username: me, password: hunter2}}]\n".into(),
        ),
        (
            "exec-and-provider.kubeconfig",
            "apiVersion: v1\nclusters: [{name: c, cluster: {server: 'https://c.test'}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}, {name: y, context: {cluster: c, user: g}}]\ncurrent-context: x\nusers:\n- name: u\n  user:\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/false, args: [a]}\n- name: g\n  user:\n    auth-provider: {name: gcp, config: {cmd-path: /bin/false, access-token: t, expiry: '2020-01-01T00:00:00Z'}}\n---\napiVersion: v1\ncurrent-context: y\n".into(),
        ),
        ("empty.kubeconfig", String::new()),
    ];
    seeds
        .into_iter()
        .map(|(n, t)| (n.to_string(), t.into_bytes()))
        .collect()
}

fn mutate_kubeconfig_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut data = rng.pick(pool).clone();
    for _ in 0..rng.range(1, 3) {
        if rng.one_in(4) {
            let tokens = &[
                "server: ",
                "https://",
                "http://[::1]:1/",
                "unix:///x",
                "certificate-authority-data: ",
                "client-key-data: ",
                "LS0tLS1CRUdJTi",
                "token: ",
                "current-context: ",
                "proxy-url: ",
                "socks5://h:1",
                "tls-server-name: ",
                "insecure-skip-tls-verify: true",
                "auth-provider: {name: oidc, config: {id-token: x}}",
                "namespace: ",
            ];
            mutate_bytes(rng, &mut data, pool, tokens);
        } else {
            mutate_yaml(rng, &mut data, pool);
        }
    }
    data
}

// --- inventory ---

fn inventory_seeds() -> Vec<(String, Vec<u8>)> {
    let keys = r#"["application.kubesphere.io/v2|Application||nginx","batch/v1|Job|web|helm-install-web-abc123|edge-eu","v1|ConfigMap|extension-openpitrix|hello-0.1.0"]"#;
    let old = r#"{"objects": {"v1|Namespace||x": "", "application.kubesphere.io/v2|Category||tools": "sha256:00"}}"#;
    // A compiled output, from the scaffold's compile.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("c");
    pitrix::scaffold::new_catalog(&root).unwrap();
    let (compiled, _) = pitrix::pipeline::build(&root).unwrap();
    let mut out: Vec<(String, Vec<u8>)> = pitrix::emit::render(&compiled)
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .filter(|(p, _)| !p.starts_with("all.yaml") && !p.starts_with("kustomization.yaml"))
        .map(|(p, b)| (format!("out/{}", p.display()), b))
        .collect();
    out.sort();
    let objects: String = compiled
        .objects
        .iter()
        .filter(|o| o.kind() != "ConfigMap")
        .map(|o| serde_yaml::to_string(&o.to_json()).unwrap())
        .collect::<Vec<_>>()
        .join("---\n");
    vec![
        ("cm-gz.inv".into(), encode_texts(&[("cm/gz", keys)])),
        ("cm-data.inv".into(), encode_texts(&[("cm/data", old)])),
        ("output-dir.inv".into(), container::encode(&out)),
        (
            "objects.inv".into(),
            encode_texts(&[("object", &objects), ("object", DIFF_OBJECTS)]),
        ),
    ]
}

fn mutate_inventory_content(rng: &mut Rng, path: &str, content: &mut Vec<u8>, pool: &[Vec<u8>]) {
    if path.starts_with("cm/") || path.ends_with(".json") {
        let tokens = &[
            "|",
            "\"",
            ",",
            "[",
            "]",
            "v1|ConfigMap|ns|n",
            "||",
            "|||||",
            "\\u0000",
            "{}",
            "null",
        ];
        mutate_bytes(rng, content, pool, tokens);
    } else if path.ends_with(".yaml") && rng.one_in(3) {
        // Long base64 lines: emit::from_yaml's fast path.
        let line = format!("  k: {}\n", "QUJD".repeat(rng.range(60, 90)));
        let at = line_spans(content)
            .get(rng.below(8))
            .map_or(content.len(), |s| s.0);
        content.splice(at..at, line.into_bytes());
    } else {
        mutate_yaml(rng, content, pool);
    }
}

fn mutate_inventory_input(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let extra: &[(&str, &str)] = &[
        ("cm/binary", "\u{1f}\u{8b}\u{8}\0junk"),
        ("cm/data", "{\"objects\": {}}"),
        ("object", DIFF_OBJECTS),
    ];
    let paths = &[
        "cm/data",
        "cm/gz",
        "cm/binary",
        "object",
        "out/inventory.json",
        "out/objects/namespaces/x.yaml",
        "out/status/applications/hello.yaml",
    ];
    mutate_sections(rng, pool, paths, extra, mutate_inventory_content)
}
