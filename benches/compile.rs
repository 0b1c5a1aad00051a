//! The compile benchmark: `pitrix compile` of a synthetic catalog, timed end to end.
//!
//! `cargo bench --bench compile` generates a catalog of 1,000 apps × 5 versions (override with
//! `PITRIX_BENCH_APPS` and `PITRIX_BENCH_VERSIONS`) into a temporary directory, runs the
//! release binary `pitrix compile DIR -o OUT --cache-dir CACHE` `PITRIX_BENCH_RUNS` times
//! (default 3), each run twice: cold (an empty package cache: every chart packed) and warm (the
//! cache the cold run filled: an unchanged catalog compiled again). It prints, per run, wall
//! time, versions/s, CPU time and the child's peak RSS (from `wait4`'s rusage, so nothing but
//! the child is measured). Then, unless `PITRIX_BENCH_PHASES=0`, it runs the
//! stages in-process once through the library to show where the time goes.
//!
//! Outputs and package caches go to the temporary directory and are removed after the last
//! run, or, with `PITRIX_BENCH_OUT=DIR` (meant for a tmpfs such as /dev/shm, which
//! bench/run.sh picks when it has room), to fresh directories under DIR, each removed as soon
//! as its run is measured. Every run starts after a `sync`.
//!
//! Options after `--`:
//!   --generate DIR   only write the catalog into DIR and exit (bench/run.sh uses this)
//!   --catalog DIR    measure an existing catalog instead of generating one
//!   --json FILE      also write the results as JSON (read by bench/run.sh)
//!   --runs N         number of timed runs (default: PITRIX_BENCH_RUNS or 3)
//!   --keep           keep the temporary directory
//!
//! Without `--bench` on the command line (i.e. under `cargo test --all-targets`), it runs a
//! smoke test instead: a 4 × 2 catalog, compiled once, which must succeed with no diagnostics.
//!
//! The binary is `PITRIX_BIN` if set, else the `pitrix` that cargo built beside this bench.

mod rusage;

use pitrix_testkit::synth;

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compile bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Options {
    bench: bool,
    apps: usize,
    versions: usize,
    runs: usize,
    generate: Option<PathBuf>,
    catalog: Option<PathBuf>,
    json: Option<PathBuf>,
    keep: bool,
    phases: bool,
    out: Option<PathBuf>,
}

fn env_usize(name: &str, default: usize) -> Result<usize, String> {
    match env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number")),
        Err(_) => Ok(default),
    }
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        bench: false,
        apps: env_usize("PITRIX_BENCH_APPS", 1000)?,
        versions: env_usize("PITRIX_BENCH_VERSIONS", 5)?,
        runs: env_usize("PITRIX_BENCH_RUNS", 3)?.max(1),
        generate: None,
        catalog: None,
        json: None,
        keep: false,
        phases: env::var("PITRIX_BENCH_PHASES").map_or(true, |v| v != "0"),
        out: env::var_os("PITRIX_BENCH_OUT").map(PathBuf::from),
    };
    let mut args = env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |flag: &str| args.next().ok_or(format!("{flag} needs a value"));
        match a.as_str() {
            "--bench" => o.bench = true,
            "--generate" => o.generate = Some(value("--generate")?.into()),
            "--catalog" => o.catalog = Some(value("--catalog")?.into()),
            "--json" => o.json = Some(value("--json")?.into()),
            "--runs" => {
                o.runs = value("--runs")?
                    .parse::<usize>()
                    .map_err(|e| format!("--runs: {e}"))?
                    .max(1)
            }
            "--keep" => o.keep = true,
            // libtest-style flags cargo may pass; nothing to do with them.
            "--nocapture" | "--quiet" | "-q" | "--show-output" => {}
            other => {
                return Err(format!(
                    "unknown argument `{other}` (see benches/compile.rs)"
                ));
            }
        }
    }
    Ok(o)
}

/// The `pitrix` binary: `PITRIX_BIN`, else the one cargo built for this bench.
fn pitrix_bin() -> Result<PathBuf, String> {
    let bin = match env::var_os("PITRIX_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_BIN_EXE_pitrix")),
    };
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "no pitrix binary at {} (run `cargo build --release`, or set PITRIX_BIN)",
            bin.display()
        ))
    }
}

fn real_main() -> Result<(), String> {
    let o = options()?;
    if let Some(dir) = &o.generate {
        let spec = synth::Spec::new(o.apps, o.versions);
        let t = Instant::now();
        let s = synth::generate(dir, &spec).map_err(|e| format!("{}: {e}", dir.display()))?;
        eprintln!(
            "generated {} apps × {} versions ({} versions, {} releases, {} files, {:.0} MiB) into {} in {:.1} s",
            o.apps,
            o.versions,
            s.versions,
            s.releases,
            s.files,
            mib(s.bytes),
            dir.display(),
            t.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    if !o.bench {
        return smoke();
    }
    bench(&o)
}

/// Under `cargo test`: a tiny catalog through the real binary, which must compile cleanly.
fn smoke() -> Result<(), String> {
    let bin = pitrix_bin()?;
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let catalog = tmp.path().join("catalog");
    let mut spec = synth::Spec::new(4, 2);
    spec.threads = 1;
    let s = synth::generate(&catalog, &spec).map_err(|e| e.to_string())?;
    check_clean(&bin, &catalog)?;
    let run = run_compile(
        &bin,
        &catalog,
        &tmp.path().join("out"),
        &tmp.path().join("cache"),
    )?;
    if !run.status.success() {
        return Err(format!("pitrix compile failed:\n{}", run.stderr));
    }
    println!(
        "compile bench smoke test: {} versions compiled in {:.0} ms: ok",
        s.versions,
        run.wall.as_secs_f64() * 1e3
    );
    Ok(())
}

fn bench(o: &Options) -> Result<(), String> {
    let bin = pitrix_bin()?;
    let tmp = tempfile::Builder::new()
        .prefix("pitrix-bench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let work = tmp.path().to_path_buf();
    let (catalog, versions) = match &o.catalog {
        Some(dir) => (dir.clone(), count_versions(dir)?),
        None => {
            let dir = work.join("catalog");
            let spec = synth::Spec::new(o.apps, o.versions);
            let t = Instant::now();
            let s = synth::generate(&dir, &spec).map_err(|e| e.to_string())?;
            println!(
                "generated {} apps × {} versions: {} files, {:.0} MiB, {} releases in {:.1} s",
                s.apps,
                o.versions,
                s.files,
                mib(s.bytes),
                s.releases,
                t.elapsed().as_secs_f64()
            );
            (dir, s.versions)
        }
    };
    println!("binary:  {}", bin.display());
    println!("catalog: {} ({versions} versions)", catalog.display());

    let t = Instant::now();
    let (errors, warnings) = check_clean(&bin, &catalog)?;
    println!(
        "pitrix validate: {errors} errors, {warnings} warnings ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let load = loadavg();
    println!(
        "load average before the runs: {} on {} CPUs (other work on the machine skews wall times)",
        load.as_deref().unwrap_or("n/a"),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // Cold: an empty package cache, every chart packed (the figure compared with Helm).
    // Warm: the same compile again with the cache the cold run filled, as a re-compile of an
    // unchanged catalog is.
    // In the work directory, outputs and caches are removed only after the last run: on ext4
    // without a journal (this machine's disk), creating files right after deleting thousands
    // makes the kernel step past every recently freed inode (ialloc's `recently_deleted`),
    // which would charge one run for the clean-up of the one before. Each run writes into
    // directories that did not exist. Under PITRIX_BENCH_OUT (a tmpfs) a removal costs the next
    // run nothing, and kept outputs would hold half a GiB of memory each.
    let out_root = match &o.out {
        Some(dir) => {
            let root = tempfile::Builder::new()
                .prefix("pitrix-bench-out-")
                .tempdir_in(dir)
                .map_err(|e| format!("{}: {e}", dir.display()))?;
            println!(
                "outputs: {} (removed after each run)",
                root.path().display()
            );
            Some(root)
        }
        None => None,
    };
    let remove_at_once = out_root.is_some();
    let out_dir = out_root.as_ref().map_or(work.as_path(), |d| d.path());
    let mut runs = Vec::new();
    let mut warm_runs = Vec::new();
    let mut written = Vec::new();
    let mut packages = (0u64, 0u64);
    for k in 1..=o.runs {
        let cache = out_dir.join(format!("cache-{k}"));
        for (label, list) in [("cold", &mut runs), ("warm", &mut warm_runs)] {
            let out = out_dir.join(format!("out-{k}-{label}"));
            let run = run_compile(&bin, &catalog, &out, &cache)?;
            if !run.status.success() {
                return Err(format!(
                    "pitrix compile failed ({}):\n{}",
                    run.status, run.stderr
                ));
            }
            let (files, bytes) = tree_size(&out);
            if k == 1 && label == "cold" {
                packages = package_bytes(&out);
            }
            println!(
                "run {k} {label}: {:6.3} s  {:8.0} versions/s  cpu {:6.2} s (user {:.2} + sys {:.2}, {:.0}% of one core)  peak RSS {}  output {} files, {:.0} MiB  [{}]",
                run.wall.as_secs_f64(),
                versions as f64 / run.wall.as_secs_f64(),
                (run.user + run.sys).as_secs_f64(),
                run.user.as_secs_f64(),
                run.sys.as_secs_f64(),
                100.0 * (run.user + run.sys).as_secs_f64() / run.wall.as_secs_f64(),
                run.max_rss_kib.map_or("n/a".to_string(), |k| format!(
                    "{:.0} MiB",
                    k as f64 / 1024.0
                )),
                files,
                mib(bytes),
                run.stderr.trim().lines().last().unwrap_or("")
            );
            written.push(out);
            list.push(run);
        }
        written.push(cache);
        if remove_at_once {
            written
                .drain(..)
                .for_each(|dir| drop(fs::remove_dir_all(dir)));
        }
    }
    for dir in written {
        fs::remove_dir_all(dir).ok();
    }
    let cold = Summary::of(&runs)?;
    let warm = Summary::of(&warm_runs)?;
    for (label, s) in [("cold", &cold), ("warm", &warm)] {
        println!(
            "pitrix compile {label}, {versions} versions: best {:.3} s, median {:.3} s, {:.0} versions/s (best), peak RSS {}",
            s.best_s,
            s.median_s,
            versions as f64 / s.best_s,
            s.peak_rss_kib.map_or("n/a".to_string(), |k| format!(
                "{:.0} MiB",
                k as f64 / 1024.0
            )),
        );
    }

    let phases = if o.phases {
        let p = phases(&catalog, &out_dir.join("out-phases"))?;
        println!("in-process stages (one run, through the library):");
        for (name, d) in &p {
            println!("  {name:<10} {:7.3} s", d.as_secs_f64());
        }
        p
    } else {
        Vec::new()
    };

    if let Some(path) = &o.json {
        let runs_json = |runs: &[Run]| {
            runs.iter()
                .map(|r| {
                    json!({
                        "wall_s": r.wall.as_secs_f64(),
                        "user_s": r.user.as_secs_f64(),
                        "sys_s": r.sys.as_secs_f64(),
                        "max_rss_kib": r.max_rss_kib,
                    })
                })
                .collect::<Vec<_>>()
        };
        let doc = json!({
            "tool": "pitrix",
            "package_bytes": packages.0,
            "package_bytes_max": packages.1,
            "binary": bin,
            "catalog": catalog,
            "versions": versions,
            "runs": runs_json(&runs),
            "best_s": cold.best_s,
            "median_s": cold.median_s,
            "versions_per_s": versions as f64 / cold.best_s,
            "peak_rss_kib": cold.peak_rss_kib,
            "warm": {
                "runs": runs_json(&warm_runs),
                "best_s": warm.best_s,
                "median_s": warm.median_s,
                "peak_rss_kib": warm.peak_rss_kib,
            },
            "loadavg_before": load,
            "phases_s": phases.iter().map(|(n, d)| (n.to_string(), json!(d.as_secs_f64()))).collect::<serde_json::Map<_, _>>(),
        });
        let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
        fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if o.keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    Ok(())
}

/// Best and median wall time and peak RSS of some runs.
struct Summary {
    best_s: f64,
    median_s: f64,
    peak_rss_kib: Option<u64>,
}

impl Summary {
    fn of(runs: &[Run]) -> Result<Summary, String> {
        let mut walls: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64()).collect();
        walls.sort_by(f64::total_cmp);
        Ok(Summary {
            best_s: *walls.first().ok_or("no runs")?,
            median_s: walls[walls.len() / 2],
            peak_rss_kib: runs.iter().filter_map(|r| r.max_rss_kib).max(),
        })
    }
}

/// The 1, 5 and 15 minute load averages, where the platform has them.
fn loadavg() -> Option<String> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Total and largest size of the chart packages in a compiled output: the `BinaryKey` of each
/// storage ConfigMap (`objects/configmaps/<storage namespace>/`), base64 decoded.
fn package_bytes(out: &Path) -> (u64, u64) {
    let (mut total, mut max) = (0, 0);
    let Ok(namespaces) = fs::read_dir(out.join("objects/configmaps")) else {
        return (0, 0);
    };
    for file in namespaces
        .flatten()
        .flat_map(|ns| fs::read_dir(ns.path()).into_iter().flatten().flatten())
    {
        let Ok(text) = fs::read_to_string(file.path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(b64) = line.trim_start().strip_prefix("BinaryKey: ") {
                let b64 = b64.trim().trim_matches('\'');
                let padding = b64.bytes().rev().take_while(|&b| b == b'=').count();
                let len = (b64.len() / 4 * 3).saturating_sub(padding) as u64;
                total += len;
                max = max.max(len);
            }
        }
    }
    (total, max)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Chart directories and archives under `apps/*/`: what `pitrix compile` turns into versions.
fn count_versions(catalog: &Path) -> Result<usize, String> {
    let apps =
        fs::read_dir(catalog.join("apps")).map_err(|e| format!("{}: {e}", catalog.display()))?;
    let mut n = 0;
    for app in apps.flatten() {
        for entry in fs::read_dir(app.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.path().is_dir();
            if (is_dir && name != "screenshots" && !name.starts_with('.'))
                || (!is_dir && name.ends_with(".tgz"))
            {
                n += 1;
            }
        }
    }
    Ok(n)
}

fn tree_size(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => {
                    files += 1;
                    bytes += m.len();
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

/// `pitrix validate --format json`: the catalog must have no errors (and the synthetic one no
/// warnings either, which would mean a generator bug).
fn check_clean(bin: &Path, catalog: &Path) -> Result<(usize, usize), String> {
    let out = Command::new(bin)
        .arg("validate")
        .arg(catalog)
        .args(["--format", "json", "--no-cache"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "pitrix validate printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let count = |k: &str| report[k].as_u64().unwrap_or(0) as usize;
    let (errors, warnings) = (count("errors"), count("warnings"));
    if errors + warnings > 0 {
        let first: Vec<String> = report["diagnostics"]
            .as_array()
            .into_iter()
            .flatten()
            .take(10)
            .map(|d| d.to_string())
            .collect();
        return Err(format!(
            "the catalog at {} has {errors} errors and {warnings} warnings; first ones:\n{}",
            catalog.display(),
            first.join("\n")
        ));
    }
    Ok((errors, warnings))
}

// ------------------------------------------------------------------------------------------
// One timed run of the binary
// ------------------------------------------------------------------------------------------

struct Run {
    status: ExitStatus,
    wall: Duration,
    user: Duration,
    sys: Duration,
    /// The child's own peak resident set (rusage `ru_maxrss`), when the platform says.
    max_rss_kib: Option<u64>,
    stderr: String,
}

fn run_compile(bin: &Path, catalog: &Path, out: &Path, cache: &Path) -> Result<Run, String> {
    let log_path = out.with_extension("log");
    let log = fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    settle()?;
    let t = Instant::now();
    let child = Command::new(bin)
        .arg("compile")
        .arg(catalog)
        .arg("-o")
        .arg(out)
        .arg("--cache-dir")
        .arg(cache)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let (status, usage) = rusage::wait(child).map_err(|e| format!("waiting for pitrix: {e}"))?;
    let wall = t.elapsed();
    let stderr = fs::read_to_string(&log_path).unwrap_or_default();
    fs::remove_file(&log_path).ok();
    Ok(Run {
        status,
        wall,
        user: usage.as_ref().map_or(Duration::ZERO, |u| u.user),
        sys: usage.as_ref().map_or(Duration::ZERO, |u| u.sys),
        max_rss_kib: usage.map(|u| u.max_rss_kib),
        stderr,
    })
}

// ------------------------------------------------------------------------------------------
// The stages, in-process
// ------------------------------------------------------------------------------------------

/// Waits until nothing is left to write back, so that a timed run starts on a quiet machine:
/// the kernel writing the half GiB of output the run before left dirty would otherwise take
/// the same two cores during it.
fn settle() -> Result<(), String> {
    let status = Command::new("sync")
        .status()
        .map_err(|e| format!("sync: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| format!("sync: {status}"))
}

/// Times each stage of `pitrix compile` through the library (one run; same work as the CLI).
fn phases(catalog: &Path, out: &Path) -> Result<Vec<(&'static str, Duration)>, String> {
    settle()?;
    let mut p = Vec::new();
    let t = Instant::now();
    let (loaded, mut diags) = pitrix::load::load(catalog);
    p.push(("load", t.elapsed()));
    let t = Instant::now();
    diags.extend(pitrix::validate::validate(&loaded));
    p.push(("validate", t.elapsed()));
    if diags.has_errors() {
        return Err(format!("{} errors in-process", diags.errors()));
    }
    let t = Instant::now();
    let compiled = pitrix::compile::compile(&loaded).map_err(|e| e.to_string())?;
    p.push(("compile", t.elapsed()));
    let t = Instant::now();
    pitrix::emit::write(out, &compiled, &Vec::new()).map_err(|e| e.to_string())?;
    p.push(("emit", t.elapsed()));
    let t = Instant::now();
    drop(compiled);
    p.push(("drop", t.elapsed()));
    fs::remove_dir_all(out).ok();
    p.push(("pack, one thread", pack_alone(&loaded)));
    Ok(p)
}

/// The packing alone, on one thread: every chart directory's version packed again (tar and
/// deflate, [`pitrix::chart::pack`]), its files unpacked beforehand and not timed. No packer that
/// makes packages this small can do less, so a cold compile's CPU time is this and the rest of
/// pitrix's work: the bound deflate at Helm's ratio puts on a cold compile.
fn pack_alone(catalog: &pitrix::catalog::Catalog) -> Duration {
    let mut packing = Duration::ZERO;
    for version in catalog.apps.iter().flat_map(|a| &a.versions) {
        if version.source != pitrix::catalog::VersionSource::ChartDir {
            continue;
        }
        let name = version.chart.as_ref().and_then(|c| c.name.as_ref());
        let (Some(name), Some(files)) = (name, version.chart_files()) else {
            continue;
        };
        let t = Instant::now();
        std::hint::black_box(pitrix::chart::pack(&name.value, &files));
        packing += t.elapsed();
    }
    packing
}
