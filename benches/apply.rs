//! The apply benchmark: `pitrix apply` of a compiled synthetic catalog to a real kube-apiserver
//! (pitrix-testkit's cluster), side by side with `kubectl apply --server-side -f` of the same output on
//! a fresh server, then a no-op re-apply of each. Prints objects/s and the ratios.
//!
//! `cargo bench --bench apply` uses 1,000 apps × 5 versions (`PITRIX_BENCH_APPS`,
//! `PITRIX_BENCH_VERSIONS`; `PITRIX_BENCH_PITRIX_ONLY=1` skips kubectl). Under `cargo test --all-targets` (no `--bench`), a 3 × 2 catalog
//! checks that the bench itself works.

mod rusage;

use pitrix_testkit::{cluster, synth};

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use cluster::TestCluster;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How long a command took, its own CPU time (user + system) and peak resident set.
#[derive(Clone, Copy)]
struct Timed {
    wall: Duration,
    cpu: Option<Duration>,
    peak_mib: Option<u64>,
}

fn run(cmd: &mut Command) -> Result<Timed, String> {
    let output = || tempfile::tempfile().map_err(|e| e.to_string());
    let (mut stdout, mut stderr) = (output()?, output()?);
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().map_err(|e| e.to_string())?)
        .stderr(stderr.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    let (status, usage) = rusage::wait(child).map_err(|e| format!("{cmd:?}: {e}"))?;
    let wall = start.elapsed();
    if !status.success() {
        let text = |f: &mut std::fs::File| {
            let mut s = String::new();
            f.seek(SeekFrom::Start(0)).ok();
            f.read_to_string(&mut s).ok();
            s
        };
        // The end of stdout (a report of thousands of objects lists the failures last).
        let out = text(&mut stdout);
        let cut = (out.len().saturating_sub(2000)..out.len())
            .find(|i| out.is_char_boundary(*i))
            .unwrap_or(out.len());
        return Err(format!(
            "{cmd:?} failed:\n{}\n{}",
            &out[cut..],
            text(&mut stderr)
        ));
    }
    Ok(Timed {
        wall,
        cpu: usage.as_ref().map(|u| u.user + u.sys),
        peak_mib: usage.map(|u| u.max_rss_kib / 1024),
    })
}

struct Pair {
    first: Timed,
    noop: Timed,
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
    let profiled = |noop: bool| -> Result<Timed, String> {
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
    let secs = |t: Timed| t.wall.as_secs_f64();
    let cpu = |t: Timed| {
        t.cpu
            .map_or("-".to_string(), |c| format!("{:.2}", c.as_secs_f64()))
    };
    // PITRIX_BENCH_PITRIX_ONLY=1: profile pitrix without waiting for kubectl.
    if std::env::var_os("PITRIX_BENCH_PITRIX_ONLY").is_some() {
        println!(
            "pitrix apply of {objects} objects: first {:.2} s ({} s CPU), no-op {:.2} s ({} s CPU)",
            secs(p.first),
            cpu(p.first),
            secs(p.noop),
            cpu(p.noop)
        );
        return Ok(());
    }
    let k = kubectl_apply(&bin, &out)?;
    let rate = |t: Timed| objects as f64 / secs(t);
    println!("apply of {apps} apps x {versions} versions: {objects} objects");
    println!("(CPU: the client's own, user + system; the API server's is not counted)");
    println!(
        "{:<22} {:>10} {:>8} {:>10} {:>10} {:>8} {:>10}",
        "", "first (s)", "CPU (s)", "objects/s", "no-op (s)", "CPU (s)", "objects/s"
    );
    for (name, pair) in [("pitrix apply", &p), ("kubectl apply (SSA)", &k)] {
        println!(
            "{name:<22} {:>10.2} {:>8} {:>10.0} {:>10.2} {:>8} {:>10.0}",
            secs(pair.first),
            cpu(pair.first),
            rate(pair.first),
            secs(pair.noop),
            cpu(pair.noop),
            rate(pair.noop)
        );
    }
    let peak = |t: Timed| t.peak_mib.map_or("-".to_string(), |m| format!("{m} MiB"));
    println!(
        "peak RSS of pitrix: first {}, no-op {}",
        peak(p.first),
        peak(p.noop)
    );
    println!(
        "ratio pitrix/kubectl objects/s: first {:.1}x, no-op {:.1}x (goals: >= 3x, >= 10x)",
        secs(k.first) / secs(p.first),
        secs(k.noop) / secs(p.noop)
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
