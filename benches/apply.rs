//! The apply benchmark: `pitrix apply` of a compiled synthetic catalog to a real kube-apiserver
//! (tests/cluster), side by side with `kubectl apply --server-side -f` of the same output on
//! a fresh server, then a no-op re-apply of each. Prints objects/s and the ratios.
//!
//! `cargo bench --bench apply` uses 1,000 apps × 5 versions (`PITRIX_BENCH_APPS`,
//! `PITRIX_BENCH_VERSIONS`; `PITRIX_BENCH_PITRIX_ONLY=1` skips kubectl). Under `cargo test --all-targets` (no `--bench`), a 3 × 2 catalog
//! checks that the bench itself works.

#[path = "../tests/cluster/mod.rs"]
mod cluster;
#[allow(dead_code)]
mod synth;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use cluster::TestCluster;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(cmd: &mut Command) -> Result<Duration, String> {
    let start = Instant::now();
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout)
                .chars()
                .rev()
                .take(2000)
                .collect::<String>()
                .chars()
                .rev()
                .collect::<String>(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(start.elapsed())
}

struct Pair {
    first: Duration,
    noop: Duration,
}

fn pitrix_apply(bin: &Path, out: &Path) -> Result<Pair, String> {
    let k = TestCluster::start();
    k.install_crds(bin);
    let apply = || {
        let mut cmd = Command::new(bin);
        cmd.args(["apply", "--from"])
            .arg(out)
            .arg("--kubeconfig")
            .arg(&k.kubeconfig);
        run(&mut cmd)
    };
    // PITRIX_BENCH_APISERVER_PROFILE=FILE (with PITRIX_TEST_APISERVER_PROFILING=1):
    // kube-apiserver's own CPU profile (Go pprof, read with `go tool pprof`) of the first
    // PITRIX_BENCH_PROFILE_SECS seconds of the first apply, or of the no-op one with
    // PITRIX_BENCH_PROFILE_NOOP=1.
    let profile = || {
        let file = std::env::var_os("PITRIX_BENCH_APISERVER_PROFILE")?;
        let secs = env_usize("PITRIX_BENCH_PROFILE_SECS", 20);
        let url = format!("/debug/pprof/profile?seconds={secs}");
        let out = std::fs::File::create(&file).map_err(|e| format!("{file:?}: {e}"));
        Some(out.and_then(|out| {
            Command::new(cluster::kubectl_program())
                .arg("--kubeconfig")
                .arg(&k.kubeconfig)
                .args(["get", "--raw", &url])
                .stdout(out)
                .spawn()
                .map_err(|e| format!("kubectl get --raw {url}: {e}"))
        }))
    };
    let profiled = |noop: bool| -> Result<Duration, String> {
        let profiler = if noop == std::env::var_os("PITRIX_BENCH_PROFILE_NOOP").is_some() {
            profile()
        } else {
            None
        };
        let took = apply()?;
        if let Some(profiler) = profiler {
            profiler?.wait().map_err(|e| e.to_string())?;
        }
        Ok(took)
    };
    Ok(Pair {
        first: profiled(false)?,
        noop: profiled(true)?,
    })
}

fn kubectl_apply(bin: &Path, out: &Path) -> Result<Pair, String> {
    let k = TestCluster::start();
    k.install_crds(bin);
    // kubectl has no dependency order: the namespace first, as a user would.
    k.kubectl_ok(&["create", "namespace", "extension-openpitrix"]);
    let apply = || {
        let mut cmd = Command::new(cluster::kubectl_program());
        cmd.arg("--kubeconfig")
            .arg(&k.kubeconfig)
            .args(["apply", "--server-side", "--force-conflicts", "-R", "-f"])
            .arg(out.join("objects"));
        run(&mut cmd)
    };
    Ok(Pair {
        first: apply()?,
        noop: apply()?,
    })
}

fn real_main() -> Result<(), String> {
    let bench = std::env::args().any(|a| a == "--bench");
    let (apps, versions) = if bench {
        (
            env_usize("PITRIX_BENCH_APPS", 1000),
            env_usize("PITRIX_BENCH_VERSIONS", 5),
        )
    } else {
        (3, 2)
    };
    let bin = std::env::var_os("PITRIX_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pitrix")));
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let catalog = tmp.path().join("catalog");
    synth::generate(&catalog, &synth::Spec::new(apps, versions)).map_err(|e| e.to_string())?;
    let out = tmp.path().join("out");
    run(Command::new(&bin)
        .arg("compile")
        .arg(&catalog)
        .arg("-o")
        .arg(&out))?;
    let objects = walkdir::WalkDir::new(out.join("objects"))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .count();

    let p = pitrix_apply(&bin, &out)?;
    // PITRIX_BENCH_PITRIX_ONLY=1: profile pitrix without waiting for kubectl.
    if std::env::var_os("PITRIX_BENCH_PITRIX_ONLY").is_some() {
        println!(
            "pitrix apply of {objects} objects: first {:.2} s, no-op {:.2} s",
            p.first.as_secs_f64(),
            p.noop.as_secs_f64()
        );
        return Ok(());
    }
    let k = kubectl_apply(&bin, &out)?;
    let rate = |d: Duration| objects as f64 / d.as_secs_f64();
    println!("apply of {apps} apps x {versions} versions: {objects} objects");
    println!(
        "{:<22} {:>10} {:>12} {:>12} {:>12}",
        "", "first (s)", "objects/s", "no-op (s)", "objects/s"
    );
    for (name, pair) in [("pitrix apply", &p), ("kubectl apply (SSA)", &k)] {
        println!(
            "{name:<22} {:>10.2} {:>12.0} {:>12.2} {:>12.0}",
            pair.first.as_secs_f64(),
            rate(pair.first),
            pair.noop.as_secs_f64(),
            rate(pair.noop)
        );
    }
    println!(
        "ratio pitrix/kubectl objects/s: first {:.1}x, no-op {:.1}x (goals: >= 3x, >= 10x)",
        k.first.as_secs_f64() / p.first.as_secs_f64(),
        k.noop.as_secs_f64() / p.noop.as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("apply bench: {e}");
            ExitCode::FAILURE
        }
    }
}
