//! Synthetic App Store catalogs, for the compile benchmark and for tests.
//!
//! [`generate`] writes a complete, valid catalog (see `DESIGN.md`): `pitrix.toml`, a few
//! categories, a repo, shared values, `N` apps each with an `app.yaml` that lists its `M`
//! versions as active, `M` chart directories per app, and a release for every tenth app.
//!
//! Each chart looks like a real one (around 22 files, ~37 KiB packed): `Chart.yaml`
//! (`apiVersion: v2`, `name` = the app directory, `version` = the version directory),
//! `Chart.lock`, a bitnami-style `values.yaml` of a few hundred lines with `## @param`
//! comments, the matching `values.schema.json`, a `README.md` with prose, parameter tables and
//! a changelog, `.helmignore`, `templates/` (helpers, NOTES.txt, workload, service, ingress,
//! configmap, secret, hpa, serviceaccount, pdb, networkpolicy, servicemonitor, tests/) and a
//! vendored library subchart under `charts/common/`.
//!
//! Content is deterministic (a fixed-seed PRNG; no clock, no environment): the same [`Spec`]
//! always gives byte-identical files. It varies per app (archetype, wording, settings) and per
//! version (image tag, new settings, changelog), like successive releases of a real chart.
//!
//! Used as `pitrix_testkit::synth` by the compile benchmark and the integration tests.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Number of apps.
    pub apps: usize,
    /// Versions (chart directories) per app.
    pub versions: usize,
    /// One app in this many gets a release (0: no releases).
    pub release_every: usize,
    /// Worker threads writing apps (1 is fine for small catalogs).
    pub threads: usize,
}

impl Spec {
    pub fn new(apps: usize, versions: usize) -> Self {
        Spec {
            apps,
            versions,
            release_every: 10,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub apps: usize,
    pub versions: usize,
    pub releases: usize,
    pub files: usize,
    pub bytes: u64,
}

impl Summary {
    fn add(&mut self, other: &Summary) {
        self.apps += other.apps;
        self.versions += other.versions;
        self.releases += other.releases;
        self.files += other.files;
        self.bytes += other.bytes;
    }
}

/// The catalog's name in `pitrix.toml`.
pub const CATALOG_NAME: &str = "synthetic-store";

/// Writes the catalog into `root` (created if missing; should be empty).
pub fn generate(root: &Path, spec: &Spec) -> io::Result<Summary> {
    let mut out = Writer::new(root);
    out.write("pitrix.toml", &settings())?;
    for c in CATEGORIES {
        out.write(
            &format!("categories/{}.yaml", c.name),
            &format!(
                "displayName: {}\ndescription: {}\nicon: {}\n",
                c.display, c.description, c.icon
            ),
        )?;
    }
    out.write(
        "repos/bitnami.yaml",
        "url: https://charts.bitnami.com/bitnami\nsyncPeriod: 1h\ndescription: Bitnami's public charts\n",
    )?;
    out.write(
        "values/common.yaml",
        "# Values shared by every release of the synthetic catalog.\nreplicaCount: 2\n\
         podLabels:\n  team: platform\nresources:\n  requests:\n    cpu: 100m\n    memory: 128Mi\n",
    )?;
    let mut summary = out.summary;

    let threads = spec.threads.clamp(1, spec.apps.max(1));
    let results: Vec<io::Result<Summary>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut w = Writer::new(root);
                    for i in (t..spec.apps).step_by(threads) {
                        write_app(&mut w, spec, i)?;
                    }
                    Ok(w.summary)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("generator thread panicked")))
            })
            .collect()
    });
    for r in results {
        summary.add(&r?);
    }
    Ok(summary)
}

/// The directory name (= app ID = chart name) of app `i`.
pub fn app_name(i: usize) -> String {
    format!("{}-{i:04}", archetype(i).base)
}

/// The version (directory name and `Chart.yaml` version) of version `j` of app `i`.
/// Increasing in `j`, SemVer 2, distinct per app.
pub fn version_name(i: usize, j: usize) -> String {
    let major = 1 + i % 3;
    let minor = j * (1 + i % 2) + (i / 3) % 4;
    let patch = (i * 7 + j * 3) % 10;
    format!("{major}.{minor}.{patch}")
}

// ------------------------------------------------------------------------------------------
// Output
// ------------------------------------------------------------------------------------------

struct Writer {
    root: PathBuf,
    summary: Summary,
}

impl Writer {
    fn new(root: &Path) -> Self {
        Writer {
            root: root.to_path_buf(),
            summary: Summary::default(),
        }
    }

    fn write(&mut self, rel: &str, text: &str) -> io::Result<()> {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, text)?;
        self.summary.files += 1;
        self.summary.bytes += text.len() as u64;
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Deterministic randomness
// ------------------------------------------------------------------------------------------

/// SplitMix64: tiny, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    fn for_app(i: usize) -> Self {
        Rng::new((i as u64).wrapping_mul(0x0000_0100_0000_01B3) ^ 0xA5A5)
    }

    fn for_version(i: usize, j: usize) -> Self {
        Rng::new(((i as u64) << 20 | j as u64).wrapping_mul(0xD1B5_4A32_D192_ED03) ^ 0x5A5A)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    fn word(&mut self) -> &'static str {
        WORDS[self.below(WORDS.len())]
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One sentence of technical prose, capitalised, ending in a full stop.
    fn sentence(&mut self, min: usize, max: usize) -> String {
        let n = self.range(min, max);
        let mut s = String::new();
        for k in 0..n {
            let w = self.word();
            if k == 0 {
                let mut c = w.chars();
                if let Some(first) = c.next() {
                    s.extend(first.to_uppercase());
                    s.push_str(c.as_str());
                }
            } else {
                s.push(' ');
                if self.chance(4) {
                    s.push('`');
                    s.push_str(w);
                    s.push('`');
                    continue;
                }
                s.push_str(w);
                if k + 1 < n && self.chance(8) {
                    s.push(',');
                }
            }
        }
        s.push('.');
        s
    }

    fn paragraph(&mut self, sentences: usize) -> String {
        (0..sentences)
            .map(|_| self.sentence(8, 22))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A camelCase identifier of two or three vocabulary words.
    fn ident(&mut self) -> String {
        let n = self.range(2, 3);
        let mut s = String::new();
        for k in 0..n {
            let w = self.word();
            if k == 0 {
                s.push_str(w);
            } else {
                let mut c = w.chars();
                if let Some(first) = c.next() {
                    s.extend(first.to_uppercase());
                    s.push_str(c.as_str());
                }
            }
        }
        s
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::new();
        while s.len() < len {
            write!(s, "{:016x}", self.next()).ok();
        }
        s.truncate(len);
        s
    }
}

// ------------------------------------------------------------------------------------------
// Fixed data
// ------------------------------------------------------------------------------------------

struct Category {
    name: &'static str,
    display: &'static str,
    description: &'static str,
    icon: &'static str,
}

const CATEGORIES: &[Category] = &[
    Category {
        name: "database",
        display: "Database",
        description: "Relational, document and key-value stores.",
        icon: "database",
    },
    Category {
        name: "web",
        display: "Web",
        description: "Web servers, proxies and content management.",
        icon: "web",
    },
    Category {
        name: "monitoring",
        display: "Monitoring",
        description: "Metrics, logs, traces and dashboards.",
        icon: "monitor",
    },
    Category {
        name: "devops",
        display: "DevOps",
        description: "Build, delivery and source control.",
        icon: "tool",
    },
    Category {
        name: "messaging",
        display: "Messaging",
        description: "Queues, streams and brokers.",
        icon: "message",
    },
    Category {
        name: "storage",
        display: "Storage",
        description: "Object storage and file sharing.",
        icon: "storage",
    },
    Category {
        name: "security",
        display: "Security",
        description: "Identity, secrets and policy.",
        icon: "security",
    },
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Deployment,
    StatefulSet,
}

struct Archetype {
    base: &'static str,
    display: &'static str,
    category: &'static str,
    image: &'static str,
    port: u16,
    workload: Workload,
    blurb: &'static str,
}

const fn arch(
    base: &'static str,
    display: &'static str,
    category: &'static str,
    image: &'static str,
    port: u16,
    workload: Workload,
    blurb: &'static str,
) -> Archetype {
    Archetype {
        base,
        display,
        category,
        image,
        port,
        workload,
        blurb,
    }
}

use Workload::{Deployment as D, StatefulSet as S};

const ARCHETYPES: &[Archetype] = &[
    arch(
        "nginx",
        "NGINX",
        "web",
        "bitnami/nginx",
        8080,
        D,
        "a fast web server and reverse proxy",
    ),
    arch(
        "redis",
        "Redis",
        "database",
        "bitnami/redis",
        6379,
        S,
        "an in-memory key-value store",
    ),
    arch(
        "postgresql",
        "PostgreSQL",
        "database",
        "bitnami/postgresql",
        5432,
        S,
        "an object-relational database",
    ),
    arch(
        "grafana",
        "Grafana",
        "monitoring",
        "grafana/grafana",
        3000,
        D,
        "dashboards for metrics, logs and traces",
    ),
    arch(
        "prometheus",
        "Prometheus",
        "monitoring",
        "prom/prometheus",
        9090,
        S,
        "a time-series monitoring system",
    ),
    arch(
        "kafka",
        "Apache Kafka",
        "messaging",
        "bitnami/kafka",
        9092,
        S,
        "a distributed event streaming platform",
    ),
    arch(
        "rabbitmq",
        "RabbitMQ",
        "messaging",
        "bitnami/rabbitmq",
        5672,
        S,
        "a message broker",
    ),
    arch(
        "minio",
        "MinIO",
        "storage",
        "minio/minio",
        9000,
        S,
        "S3-compatible object storage",
    ),
    arch(
        "keycloak",
        "Keycloak",
        "security",
        "bitnami/keycloak",
        8080,
        D,
        "identity and access management",
    ),
    arch(
        "jenkins",
        "Jenkins",
        "devops",
        "jenkins/jenkins",
        8080,
        S,
        "an automation server",
    ),
    arch(
        "gitea",
        "Gitea",
        "devops",
        "gitea/gitea",
        3000,
        D,
        "self-hosted Git service",
    ),
    arch(
        "mysql",
        "MySQL",
        "database",
        "bitnami/mysql",
        3306,
        S,
        "a relational database",
    ),
    arch(
        "mongodb",
        "MongoDB",
        "database",
        "bitnami/mongodb",
        27017,
        S,
        "a document database",
    ),
    arch(
        "memcached",
        "Memcached",
        "database",
        "bitnami/memcached",
        11211,
        D,
        "a distributed memory cache",
    ),
    arch(
        "traefik",
        "Traefik",
        "web",
        "traefik/traefik",
        8000,
        D,
        "a cloud-native edge router",
    ),
    arch(
        "vault",
        "Vault",
        "security",
        "hashicorp/vault",
        8200,
        S,
        "secrets management",
    ),
    arch(
        "etcd",
        "etcd",
        "database",
        "bitnami/etcd",
        2379,
        S,
        "a distributed key-value store",
    ),
    arch(
        "airflow",
        "Apache Airflow",
        "devops",
        "apache/airflow",
        8080,
        D,
        "workflow orchestration",
    ),
    arch(
        "wordpress",
        "WordPress",
        "web",
        "bitnami/wordpress",
        8080,
        D,
        "a content management system",
    ),
    arch(
        "mattermost",
        "Mattermost",
        "messaging",
        "mattermost/mattermost-team-edition",
        8065,
        D,
        "team chat",
    ),
    arch(
        "nextcloud",
        "Nextcloud",
        "storage",
        "nextcloud/server",
        8080,
        D,
        "file sharing and collaboration",
    ),
    arch(
        "loki",
        "Loki",
        "monitoring",
        "grafana/loki",
        3100,
        S,
        "log aggregation",
    ),
    arch(
        "harbor",
        "Harbor",
        "devops",
        "goharbor/harbor-core",
        8080,
        D,
        "a cloud-native registry",
    ),
];

fn archetype(i: usize) -> &'static Archetype {
    &ARCHETYPES[i % ARCHETYPES.len()]
}

const WORDS: &[&str] = &[
    "access",
    "account",
    "adapter",
    "address",
    "admin",
    "affinity",
    "agent",
    "alert",
    "allocation",
    "annotation",
    "api",
    "application",
    "archive",
    "audit",
    "authentication",
    "authorization",
    "autoscaler",
    "availability",
    "backend",
    "backup",
    "balancer",
    "bandwidth",
    "batch",
    "binary",
    "bootstrap",
    "broker",
    "bucket",
    "buffer",
    "bundle",
    "cache",
    "capacity",
    "certificate",
    "channel",
    "checkpoint",
    "cluster",
    "collector",
    "component",
    "compression",
    "concurrency",
    "configuration",
    "connection",
    "consumer",
    "container",
    "controller",
    "cpu",
    "credential",
    "cron",
    "daemon",
    "dashboard",
    "database",
    "deadline",
    "default",
    "delay",
    "deployment",
    "descriptor",
    "destination",
    "digest",
    "directory",
    "discovery",
    "disk",
    "domain",
    "driver",
    "election",
    "encryption",
    "endpoint",
    "engine",
    "environment",
    "event",
    "eviction",
    "exporter",
    "expression",
    "extension",
    "failover",
    "feature",
    "filter",
    "firewall",
    "flag",
    "format",
    "frontend",
    "gateway",
    "grace",
    "group",
    "handler",
    "header",
    "health",
    "heap",
    "history",
    "host",
    "hostname",
    "identity",
    "image",
    "index",
    "ingress",
    "init",
    "instance",
    "interval",
    "issuer",
    "job",
    "journal",
    "kernel",
    "key",
    "label",
    "latency",
    "leader",
    "lease",
    "level",
    "limit",
    "listener",
    "liveness",
    "load",
    "lock",
    "log",
    "mailbox",
    "manager",
    "manifest",
    "master",
    "memory",
    "message",
    "metadata",
    "metric",
    "migration",
    "mode",
    "module",
    "monitor",
    "mount",
    "namespace",
    "network",
    "node",
    "notification",
    "object",
    "operator",
    "option",
    "output",
    "owner",
    "package",
    "page",
    "parameter",
    "partition",
    "password",
    "path",
    "peer",
    "permission",
    "persistence",
    "pipeline",
    "plugin",
    "pod",
    "policy",
    "pool",
    "port",
    "prefix",
    "primary",
    "priority",
    "probe",
    "process",
    "producer",
    "profile",
    "protocol",
    "provider",
    "proxy",
    "queue",
    "quota",
    "rate",
    "readiness",
    "realm",
    "rebalance",
    "record",
    "recovery",
    "redirect",
    "region",
    "registry",
    "release",
    "replica",
    "replication",
    "repository",
    "request",
    "resource",
    "restart",
    "retention",
    "retry",
    "revision",
    "role",
    "rollout",
    "route",
    "rule",
    "runtime",
    "sample",
    "scheduler",
    "schema",
    "scope",
    "secret",
    "segment",
    "selector",
    "sender",
    "server",
    "service",
    "session",
    "shard",
    "sidecar",
    "signal",
    "snapshot",
    "socket",
    "source",
    "stack",
    "standby",
    "startup",
    "state",
    "storage",
    "strategy",
    "stream",
    "subject",
    "subnet",
    "subscription",
    "suffix",
    "sync",
    "syslog",
    "table",
    "target",
    "task",
    "template",
    "tenant",
    "threshold",
    "throughput",
    "timeout",
    "token",
    "topic",
    "topology",
    "trace",
    "traffic",
    "transaction",
    "transport",
    "trigger",
    "tuning",
    "upgrade",
    "upload",
    "upstream",
    "user",
    "validation",
    "value",
    "vault",
    "version",
    "volume",
    "watch",
    "webhook",
    "weight",
    "window",
    "worker",
    "workload",
    "zone",
    "enables",
    "disables",
    "controls",
    "sets",
    "overrides",
    "configures",
    "when",
    "the",
    "a",
    "of",
    "for",
    "with",
    "and",
    "or",
    "to",
    "in",
    "by",
    "on",
    "per",
    "every",
    "each",
    "new",
    "existing",
    "maximum",
    "minimum",
    "optional",
    "required",
    "custom",
    "internal",
    "external",
    "secure",
    "plain",
    "shared",
    "dedicated",
    "global",
    "local",
    "remote",
    "static",
    "dynamic",
    "cached",
    "persistent",
    "ephemeral",
    "automatic",
    "manual",
];

// ------------------------------------------------------------------------------------------
// Catalog files
// ------------------------------------------------------------------------------------------

fn settings() -> String {
    format!(
        "# A synthetic catalog written by pitrix_testkit::synth (pitrix's compile benchmark).\n\
         [catalog]\n\
         name = \"{CATALOG_NAME}\"\n\
         workspace = \"system-workspace\"\n\
         target = \"kubesphere\"\n\
         storageNamespace = \"extension-openpitrix\"\n\
         \n\
         [vars]\n\
         domain = \"apps.example.com\"\n\
         \n\
         [clusters.host]\n\
         \n\
         [clusters.member-1]\n\
         context = \"member-1\"\n"
    )
}

fn write_app(w: &mut Writer, spec: &Spec, i: usize) -> io::Result<()> {
    let name = app_name(i);
    let a = archetype(i);
    let mut rng = Rng::for_app(i);
    let versions: Vec<String> = (0..spec.versions).map(|j| version_name(i, j)).collect();

    // app.yaml
    let mut y = String::new();
    writeln!(y, "displayName: {} {i:04}", a.display).ok();
    writeln!(
        y,
        "description: {} {}",
        capitalise(a.blurb),
        rng.sentence(10, 18)
    )
    .ok();
    writeln!(y, "abstraction: {}", capitalise(a.blurb)).ok();
    writeln!(y, "home: https://example.com/apps/{name}").ok();
    if !i.is_multiple_of(17) {
        writeln!(y, "category: {}", a.category).ok();
    }
    y.push_str("icon: icon.svg\ntype: helm\nmaintainers:\n");
    writeln!(
        y,
        "  - name: Team {}\n    email: team-{}@example.com",
        capitalise(rng.word()),
        i % 40
    )
    .ok();
    if rng.chance(50) {
        y.push_str("  - name: Platform Team\n    email: platform@example.com\n    url: https://example.com/platform\n");
    }
    y.push_str("state: active\nversions:\n");
    for (j, v) in versions.iter().enumerate() {
        writeln!(y, "  {v}:\n    state: active").ok();
        if j + 1 == versions.len() || rng.chance(30) {
            writeln!(y, "    message: {}", rng.sentence(4, 9)).ok();
        }
    }
    w.write(&format!("apps/{name}/app.yaml"), &y)?;
    w.write(&format!("apps/{name}/icon.svg"), &icon(i, a))?;

    for j in 0..spec.versions {
        write_chart(w, i, j, &name, &versions)?;
        w.summary.versions += 1;
    }
    w.summary.apps += 1;

    if spec.release_every > 0 && i.is_multiple_of(spec.release_every) && !versions.is_empty() {
        let cluster = if i.is_multiple_of(3) {
            "member-1"
        } else {
            "host"
        };
        let ns = ["team-a", "team-b", "team-c", "shared"][i % 4];
        let latest = &versions[versions.len() - 1];
        let text = format!(
            "app: {name}\nversion: {latest}\nvaluesFiles:\n  - values/common.yaml\nvalues:\n  \
             replicaCount: {}\n  ingress:\n    enabled: true\n    hostname: {name}.apps.example.com\n",
            1 + i % 3
        );
        w.write(&format!("releases/{cluster}/{ns}/{name}.yaml"), &text)?;
        w.summary.releases += 1;
    }
    Ok(())
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn icon(i: usize, a: &Archetype) -> String {
    let hue = (i * 47) % 360;
    let letters: String = a.display.chars().take(2).collect();
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\" width=\"64\" height=\"64\">\
         <rect width=\"64\" height=\"64\" rx=\"12\" fill=\"hsl({hue},60%,45%)\"/>\
         <text x=\"32\" y=\"42\" font-size=\"26\" text-anchor=\"middle\" fill=\"#fff\" \
         font-family=\"sans-serif\">{letters}</text></svg>\n"
    )
}

// ------------------------------------------------------------------------------------------
// Charts
// ------------------------------------------------------------------------------------------

/// The upstream application's version shipped by chart version `j` of app `i`.
fn app_version(i: usize, j: usize) -> String {
    format!("{}.{}.{}", 2 + i % 14, 3 + j, (i + 5 * j) % 13)
}

const COMMON_VERSION: &str = "2.31.4";

fn write_chart(
    w: &mut Writer,
    i: usize,
    j: usize,
    name: &str,
    versions: &[String],
) -> io::Result<()> {
    let a = archetype(i);
    let version = &versions[j];
    let app_ver = app_version(i, j);
    let dir = format!("apps/{name}/{version}");
    let mut app_rng = Rng::for_app(i);
    let mut rng = Rng::for_version(i, j);
    let file = |rel: &str| format!("{dir}/{rel}");

    // values.yaml, values.schema.json and the README's parameter tables come from one model.
    let values = build_values(a, i, j, &app_ver, &mut app_rng, &mut rng);

    w.write(
        &file("Chart.yaml"),
        &chart_yaml(a, i, name, version, &app_ver, &mut app_rng),
    )?;
    w.write(&file("Chart.lock"), &chart_lock(i, j, &mut rng))?;
    w.write(&file(".helmignore"), HELMIGNORE)?;
    w.write(&file("values.yaml"), &values.yaml)?;
    let schema = serde_json::to_string_pretty(&values.schema()).unwrap_or_default() + "\n";
    w.write(&file("values.schema.json"), &schema)?;
    w.write(
        &file("README.md"),
        &readme(
            a,
            i,
            j,
            name,
            versions,
            &app_ver,
            &values,
            &mut Rng::for_app(i),
            &mut rng,
        ),
    )?;

    let t = |text: &str| text.replace("__NAME__", name);
    w.write(&file("templates/_helpers.tpl"), &t(HELPERS_TPL))?;
    w.write(&file("templates/NOTES.txt"), &t(NOTES_TXT))?;
    match a.workload {
        Workload::Deployment => {
            w.write(
                &file("templates/deployment.yaml"),
                &t(&workload_yaml("Deployment")),
            )?;
            w.write(&file("templates/pvc.yaml"), &t(PVC_YAML))?;
        }
        Workload::StatefulSet => {
            w.write(
                &file("templates/statefulset.yaml"),
                &t(&workload_yaml("StatefulSet")),
            )?;
            w.write(&file("templates/service-headless.yaml"), &t(HEADLESS_YAML))?;
        }
    }
    w.write(&file("templates/service.yaml"), &t(SERVICE_YAML))?;
    w.write(&file("templates/ingress.yaml"), &t(INGRESS_YAML))?;
    w.write(&file("templates/configmap.yaml"), &t(CONFIGMAP_YAML))?;
    w.write(&file("templates/secret.yaml"), &t(SECRET_YAML))?;
    w.write(&file("templates/hpa.yaml"), &t(HPA_YAML))?;
    w.write(
        &file("templates/serviceaccount.yaml"),
        &t(SERVICEACCOUNT_YAML),
    )?;
    w.write(&file("templates/pdb.yaml"), &t(PDB_YAML))?;
    w.write(
        &file("templates/networkpolicy.yaml"),
        &t(NETWORKPOLICY_YAML),
    )?;
    w.write(
        &file("templates/servicemonitor.yaml"),
        &t(SERVICEMONITOR_YAML),
    )?;
    w.write(
        &file("templates/tests/test-connection.yaml"),
        &t(TEST_CONNECTION_YAML),
    )?;

    w.write(&file("charts/common/Chart.yaml"), COMMON_CHART_YAML)?;
    w.write(
        &file("charts/common/values.yaml"),
        "exampleValue: common-chart\n",
    )?;
    w.write(
        &file("charts/common/templates/_names.tpl"),
        COMMON_NAMES_TPL,
    )?;
    w.write(
        &file("charts/common/templates/_labels.tpl"),
        COMMON_LABELS_TPL,
    )?;
    Ok(())
}

fn chart_yaml(
    a: &Archetype,
    i: usize,
    name: &str,
    version: &str,
    app_ver: &str,
    rng: &mut Rng,
) -> String {
    let mut y = String::new();
    y.push_str("annotations:\n  category: ");
    y.push_str(&capitalise(a.category));
    writeln!(y, "\n  licenses: Apache-2.0\n  images: |\n    - name: {}\n      image: docker.io/{}:{app_ver}", a.base, a.image).ok();
    writeln!(y, "apiVersion: v2\nappVersion: {app_ver:?}").ok();
    writeln!(
        y,
        "dependencies:\n  - name: common\n    repository: oci://registry-1.docker.io/bitnamicharts\n    tags:\n      - bitnami-common\n    version: 2.x.x"
    )
    .ok();
    writeln!(
        y,
        "description: {} {}",
        capitalise(a.blurb),
        rng.sentence(8, 14)
    )
    .ok();
    writeln!(y, "home: https://example.com/apps/{name}").ok();
    writeln!(y, "icon: https://example.com/apps/{name}/icon.svg").ok();
    y.push_str("keywords:\n");
    writeln!(y, "  - {}\n  - {}", a.base, a.category).ok();
    for _ in 0..3 {
        writeln!(y, "  - {}", rng.word()).ok();
    }
    writeln!(y, "kubeVersion: \">=1.23.0-0\"").ok();
    writeln!(
        y,
        "maintainers:\n  - name: Team {}\n    url: https://example.com/team-{}",
        capitalise(rng.word()),
        i % 40
    )
    .ok();
    writeln!(y, "name: {name}").ok();
    writeln!(
        y,
        "sources:\n  - https://github.com/example/charts/tree/main/{name}\n  - https://github.com/example/{}",
        a.base
    )
    .ok();
    writeln!(y, "type: application\nversion: {version}").ok();
    y
}

fn chart_lock(i: usize, j: usize, rng: &mut Rng) -> String {
    format!(
        "dependencies:\n- name: common\n  repository: oci://registry-1.docker.io/bitnamicharts\n  version: {COMMON_VERSION}\n\
         digest: sha256:{}\ngenerated: \"2025-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z\"\n",
        rng.hex(64),
        1 + (i + j) % 12,
        1 + (i * 3 + j) % 28,
        i % 24,
        j * 7 % 60,
        i % 60,
        rng.next() % 1_000_000_000,
    )
}

// ------------------------------------------------------------------------------------------
// values.yaml / values.schema.json / README parameter tables
// ------------------------------------------------------------------------------------------

enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
    EmptyList,
    EmptyMap,
}

impl Scalar {
    fn yaml(&self) -> String {
        match self {
            Scalar::Str(s) => format!("{s:?}"),
            Scalar::Int(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::EmptyList => "[]".into(),
            Scalar::EmptyMap => "{}".into(),
        }
    }

    fn schema(&self, description: &str) -> Value {
        let (ty, default) = match self {
            Scalar::Str(s) => ("string", json!(s)),
            Scalar::Int(n) => ("integer", json!(n)),
            Scalar::Bool(b) => ("boolean", json!(b)),
            Scalar::EmptyList => ("array", json!([])),
            Scalar::EmptyMap => ("object", json!({})),
        };
        json!({ "type": ty, "description": description, "default": default })
    }
}

/// One table of the README: a `## @section` of values.yaml.
struct Section {
    title: String,
    rows: Vec<(String, String, String)>,
}

/// Builds values.yaml text, its JSON schema and the README tables together.
struct Values {
    yaml: String,
    /// Path of the open maps, and the schema properties collected in each.
    stack: Vec<(String, String, Map<String, Value>)>,
    sections: Vec<Section>,
}

impl Values {
    fn new() -> Self {
        Values {
            yaml: String::new(),
            stack: vec![(String::new(), String::new(), Map::new())],
            sections: Vec::new(),
        }
    }

    fn indent(&self) -> String {
        "  ".repeat(self.stack.len() - 1)
    }

    fn path(&self, key: &str) -> String {
        let mut p: Vec<&str> = self.stack[1..].iter().map(|(k, _, _)| k.as_str()).collect();
        p.push(key);
        p.join(".")
    }

    fn section(&mut self, title: &str) {
        if !self.yaml.is_empty() {
            self.yaml.push('\n');
        }
        writeln!(self.yaml, "## @section {title}\n##").ok();
        self.sections.push(Section {
            title: title.to_string(),
            rows: Vec::new(),
        });
    }

    fn scalar(&mut self, key: &str, value: Scalar, description: &str) {
        let ind = self.indent();
        let path = self.path(key);
        writeln!(self.yaml, "{ind}## @param {path} {description}").ok();
        writeln!(self.yaml, "{ind}{key}: {}", value.yaml()).ok();
        if let Some(s) = self.sections.last_mut() {
            s.rows.push((path, description.to_string(), value.yaml()));
        }
        let schema = value.schema(description);
        if let Some(top) = self.stack.last_mut() {
            top.2.insert(key.to_string(), schema);
        }
    }

    fn str(&mut self, key: &str, value: &str, description: &str) {
        self.scalar(key, Scalar::Str(value.to_string()), description);
    }

    fn int(&mut self, key: &str, value: i64, description: &str) {
        self.scalar(key, Scalar::Int(value), description);
    }

    fn bool(&mut self, key: &str, value: bool, description: &str) {
        self.scalar(key, Scalar::Bool(value), description);
    }

    fn list(&mut self, key: &str, description: &str) {
        self.scalar(key, Scalar::EmptyList, description);
    }

    fn obj(&mut self, key: &str, description: &str) {
        self.scalar(key, Scalar::EmptyMap, description);
    }

    fn map(&mut self, key: &str, description: &str, f: impl FnOnce(&mut Values)) {
        let ind = self.indent();
        writeln!(self.yaml, "{ind}## {description}\n{ind}##\n{ind}{key}:").ok();
        self.stack
            .push((key.to_string(), description.to_string(), Map::new()));
        f(self);
        if let Some((k, d, props)) = self.stack.pop() {
            let schema = json!({ "type": "object", "description": d, "properties": props });
            if let Some(top) = self.stack.last_mut() {
                top.2.insert(k, schema);
            }
        }
    }

    fn schema(&self) -> Value {
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "title": "Values",
            "type": "object",
            "properties": self.stack[0].2,
        })
    }
}

fn probe(v: &mut Values, key: &str, what: &str, enabled: bool, delay: i64, rng: &mut Rng) {
    v.map(
        key,
        &format!("Configure the {what} probe of the main container"),
        |v| {
            v.bool("enabled", enabled, &format!("Enable {key}"));
            v.int(
                "initialDelaySeconds",
                delay,
                &format!("Initial delay seconds for {key}"),
            );
            v.int("periodSeconds", 10, &format!("Period seconds for {key}"));
            v.int(
                "timeoutSeconds",
                1 + rng.below(5) as i64,
                &format!("Timeout seconds for {key}"),
            );
            v.int(
                "failureThreshold",
                3 + rng.below(4) as i64,
                &format!("Failure threshold for {key}"),
            );
            v.int(
                "successThreshold",
                1,
                &format!("Success threshold for {key}"),
            );
        },
    );
}

fn build_values(
    a: &Archetype,
    i: usize,
    j: usize,
    app_ver: &str,
    app_rng: &mut Rng,
    rng: &mut Rng,
) -> Values {
    let mut v = Values::new();
    v.section("Global parameters");
    v.map("global", "Global parameters shared with subcharts", |v| {
        v.str("imageRegistry", "", "Global Docker image registry");
        v.list("imagePullSecrets", "Global Docker registry secret names as an array");
        v.str("storageClass", "", "Global StorageClass for Persistent Volume(s)");
        v.map("compatibility", "Compatibility adaptations for Kubernetes platforms", |v| {
            v.map("openshift", "Adaptations for OpenShift", |v| {
                v.str("adaptSecurityContext", "auto", "Adapt the securityContext sections of the deployment to make them compatible with OpenShift restricted-v2 SCC");
            });
        });
    });

    v.section("Common parameters");
    v.str("kubeVersion", "", "Override Kubernetes version");
    v.str(
        "nameOverride",
        "",
        "String to partially override the fullname template (will maintain the release name)",
    );
    v.str(
        "fullnameOverride",
        "",
        "String to fully override the fullname template",
    );
    v.str(
        "namespaceOverride",
        "",
        "String to fully override common.names.namespace",
    );
    v.obj("commonLabels", "Labels to add to all deployed objects");
    v.obj(
        "commonAnnotations",
        "Annotations to add to all deployed objects",
    );
    v.str(
        "clusterDomain",
        "cluster.local",
        "Kubernetes cluster domain name",
    );
    v.list(
        "extraDeploy",
        "Array of extra objects to deploy with the release",
    );
    v.map("diagnosticMode", "Enable diagnostic mode in the deployment", |v| {
        v.bool("enabled", false, "Enable diagnostic mode (all probes will be disabled and the command will be overridden)");
        v.list("command", "Command to override all containers in the deployment");
        v.list("args", "Args to override all containers in the deployment");
    });

    v.section(&format!("{} parameters", a.display));
    v.map("image", &format!("{} image", a.display), |v| {
        v.str("registry", "docker.io", &format!("{} image registry", a.display));
        v.str("repository", a.image, &format!("{} image repository", a.display));
        v.str("tag", app_ver, &format!("{} image tag (immutable tags are recommended)", a.display));
        v.str("digest", "", &format!("{} image digest in the way sha256:aa.... Please note this parameter, if set, will override the tag", a.display));
        v.str("pullPolicy", "IfNotPresent", &format!("{} image pull policy", a.display));
        v.list("pullSecrets", "Specify docker-registry secret names as an array");
        v.bool("debug", false, "Set to true if you would like to see extra information on logs");
    });
    v.int(
        "replicaCount",
        1,
        &format!("Number of {} replicas to deploy", a.display),
    );
    v.int(
        "containerPort",
        i64::from(a.port),
        &format!("{} container port", a.display),
    );
    v.list(
        "extraContainerPorts",
        "Optionally specify extra list of additional ports for the container",
    );
    v.list(
        "command",
        "Override default container command (useful when using custom images)",
    );
    v.list(
        "args",
        "Override default container args (useful when using custom images)",
    );
    v.list(
        "extraEnvVars",
        "Array with extra environment variables to add to the main container",
    );
    v.str(
        "extraEnvVarsCM",
        "",
        "Name of existing ConfigMap containing extra env vars",
    );
    v.str(
        "extraEnvVarsSecret",
        "",
        "Name of existing Secret containing extra env vars",
    );
    probe(&mut v, "livenessProbe", "liveness", true, 30, rng);
    probe(&mut v, "readinessProbe", "readiness", true, 5, rng);
    probe(&mut v, "startupProbe", "startup", false, 10, rng);
    v.obj(
        "customLivenessProbe",
        "Custom livenessProbe that overrides the default one",
    );
    v.obj(
        "customReadinessProbe",
        "Custom readinessProbe that overrides the default one",
    );
    v.str("resourcesPreset", ["nano", "micro", "small", "medium"][app_rng.below(4)], "Set container resources according to one common preset (allowed values: none, nano, micro, small, medium, large, xlarge, 2xlarge)");
    v.obj("resources", "Set container requests and limits for different resources like CPU or memory (essential for production workloads)");
    v.map(
        "podSecurityContext",
        "Configure Pods Security Context",
        |v| {
            v.bool("enabled", true, "Enabled Pods' Security Context");
            v.str(
                "fsGroupChangePolicy",
                "Always",
                "Set filesystem group change policy",
            );
            v.list("sysctls", "Set kernel settings using the sysctl interface");
            v.list("supplementalGroups", "Set filesystem extra groups");
            v.int("fsGroup", 1001, "Set Pods' Security Context fsGroup");
        },
    );
    v.map(
        "containerSecurityContext",
        "Configure Container Security Context",
        |v| {
            v.bool("enabled", true, "Enabled containers' Security Context");
            v.int(
                "runAsUser",
                1001,
                "Set containers' Security Context runAsUser",
            );
            v.int(
                "runAsGroup",
                1001,
                "Set containers' Security Context runAsGroup",
            );
            v.bool(
                "runAsNonRoot",
                true,
                "Set container's Security Context runAsNonRoot",
            );
            v.bool(
                "privileged",
                false,
                "Set container's Security Context privileged",
            );
            v.bool(
                "readOnlyRootFilesystem",
                true,
                "Set container's Security Context readOnlyRootFilesystem",
            );
            v.bool(
                "allowPrivilegeEscalation",
                false,
                "Set container's Security Context allowPrivilegeEscalation",
            );
            v.str(
                "seccompProfileType",
                "RuntimeDefault",
                "Set container's Security Context seccomp profile",
            );
        },
    );
    v.str("hostAliases", "", "Pods host aliases");
    v.obj("podLabels", "Extra labels for pods");
    v.obj("podAnnotations", "Annotations for pods");
    v.str(
        "podAffinityPreset",
        "",
        "Pod affinity preset. Ignored if `affinity` is set. Allowed values: `soft` or `hard`",
    );
    v.str(
        "podAntiAffinityPreset",
        "soft",
        "Pod anti-affinity preset. Ignored if `affinity` is set. Allowed values: `soft` or `hard`",
    );
    v.obj("affinity", "Affinity for pods assignment");
    v.obj("nodeSelector", "Node labels for pods assignment");
    v.list("tolerations", "Tolerations for pods assignment");
    v.list("topologySpreadConstraints", "Topology Spread Constraints for pod assignment spread across your cluster among failure-domains");
    v.str("priorityClassName", "", "Priority class name");
    v.str(
        "schedulerName",
        "",
        "Name of the k8s scheduler (other than default)",
    );
    v.int(
        "terminationGracePeriodSeconds",
        30 + 10 * app_rng.below(4) as i64,
        "Seconds the pod needs to terminate gracefully",
    );
    v.map("updateStrategy", "Update strategy of the workload", |v| {
        v.str(
            "type",
            "RollingUpdate",
            "Strategy to use to replace existing pods",
        );
    });
    v.list(
        "extraVolumes",
        "Optionally specify extra list of additional volumes for the pods",
    );
    v.list(
        "extraVolumeMounts",
        "Optionally specify extra list of additional volumeMounts for the container(s)",
    );
    v.list(
        "initContainers",
        "Add additional init containers to the pods",
    );
    v.list("sidecars", "Add additional sidecar containers to the pods");

    v.section("Application configuration");
    // App-specific settings: most come with the app, each version adds a few.
    let base_keys = app_rng.range(40, 55);
    let keys: Vec<(String, usize)> = (0..base_keys)
        .map(|_| (app_rng.ident(), app_rng.below(4)))
        .collect();
    let descs: Vec<String> = (0..base_keys).map(|_| app_rng.sentence(6, 14)).collect();
    let added: Vec<(String, usize, String)> = (0..j * 3)
        .map(|_| (rng.ident(), rng.below(4), rng.sentence(6, 14)))
        .collect();
    v.map(
        "config",
        &format!("{} configuration, rendered into the ConfigMap", a.display),
        |v| {
            let all = keys
                .iter()
                .zip(&descs)
                .map(|((k, t), d)| (k, *t, d))
                .chain(added.iter().map(|(k, t, d)| (k, *t, d)));
            let mut seen = std::collections::BTreeSet::new();
            for (n, (k, t, d)) in all.enumerate() {
                if !seen.insert(k.clone()) {
                    continue;
                }
                match t {
                    0 => v.int(k, (n as i64 + 1) * 30, d),
                    1 => v.bool(k, n % 2 == 0, d),
                    2 => v.str(
                        k,
                        &format!(
                            "{}-{}",
                            WORDS[(n * 31 + i) % WORDS.len()],
                            WORDS[(n * 17 + 3) % WORDS.len()]
                        ),
                        d,
                    ),
                    _ => v.str(
                        k,
                        &format!("/{}/{}", a.base, WORDS[(n * 13 + i) % WORDS.len()]),
                        d,
                    ),
                }
            }
        },
    );
    v.str(
        "existingConfigmap",
        "",
        "The name of an existing ConfigMap with your custom configuration",
    );
    v.map("auth", "Authentication settings", |v| {
        v.bool("enabled", true, "Enable authentication");
        v.str("username", "admin", "Name of the administrator user");
        v.str(
            "existingSecret",
            "",
            "Name of an existing Secret with the administrator credentials",
        );
    });

    v.section("Traffic exposure parameters");
    v.map(
        "service",
        &format!("{} service parameters", a.display),
        |v| {
            v.str("type", "ClusterIP", &format!("{} service type", a.display));
            v.int(
                "port",
                i64::from(a.port),
                &format!("{} service port", a.display),
            );
            v.str("nodePort", "", "Node port for the service");
            v.str(
                "clusterIP",
                "",
                &format!("{} service Cluster IP", a.display),
            );
            v.list(
                "loadBalancerSourceRanges",
                &format!("{} service Load Balancer sources", a.display),
            );
            v.str(
                "externalTrafficPolicy",
                "Cluster",
                &format!("{} service external traffic policy", a.display),
            );
            v.obj(
                "annotations",
                &format!("Additional custom annotations for {} service", a.display),
            );
            v.list(
                "extraPorts",
                &format!(
                    "Extra ports to expose in {} service (normally used with the `sidecars` value)",
                    a.display
                ),
            );
            v.str(
                "sessionAffinity",
                "None",
                "Control where client requests go, to the same pod or round-robin",
            );
        },
    );
    v.map("ingress", "Ingress parameters", |v| {
        v.bool("enabled", false, &format!("Enable ingress record generation for {}", a.display));
        v.str("pathType", "ImplementationSpecific", "Ingress path type");
        v.str("hostname", &format!("{}.local", a.base), "Default host for the ingress record");
        v.str("ingressClassName", "", "IngressClass that will be be used to implement the Ingress (Kubernetes 1.18+)");
        v.str("path", "/", "Default path for the ingress record");
        v.obj("annotations", "Additional annotations for the Ingress resource. To enable certificate autogeneration, place here your cert-manager annotations.");
        v.bool("tls", false, "Enable TLS configuration for the host defined at `ingress.hostname` parameter");
        v.bool("selfSigned", false, "Create a TLS secret for this ingress record using self-signed certificates generated by Helm");
        v.list("extraHosts", "An array with additional hostname(s) to be covered with the ingress record");
        v.list("extraPaths", "An array with additional arbitrary paths that may need to be added to the ingress under the main host");
        v.list("extraTls", "TLS configuration for additional hostname(s) to be covered with this ingress record");
    });
    v.map("networkPolicy", "Network Policy configuration", |v| {
        v.bool(
            "enabled",
            true,
            "Specifies whether a NetworkPolicy should be created",
        );
        v.bool(
            "allowExternal",
            true,
            "Don't require server label for connections",
        );
        v.bool(
            "allowExternalEgress",
            true,
            "Allow the pod to access any range of port and all destinations.",
        );
        v.list(
            "extraIngress",
            "Add extra ingress rules to the NetworkPolicy",
        );
        v.list("extraEgress", "Add extra egress rules to the NetworkPolicy");
    });

    v.section("Persistence parameters");
    v.map("persistence", "Enable persistence using Persistent Volume Claims", |v| {
        v.bool("enabled", a.workload == Workload::StatefulSet, "Enable persistence using Persistent Volume Claims");
        v.str("mountPath", &format!("/bitnami/{}", a.base), "Path to mount the volume at.");
        v.str("subPath", "", "The subdirectory of the volume to mount to, useful in dev environments and one PV for multiple services");
        v.str("storageClass", "", "Storage class of backing PVC");
        v.obj("annotations", "Persistent Volume Claim annotations");
        v.list("accessModes", "Persistent Volume Access Modes");
        v.str("size", &format!("{}Gi", 8 << app_rng.below(3)), "Size of data volume");
        v.str("existingClaim", "", "The name of an existing PVC to use for persistence");
        v.obj("selector", "Selector to match an existing Persistent Volume for data PVC");
    });

    v.section("Other parameters");
    v.map("serviceAccount", "ServiceAccount configuration", |v| {
        v.bool(
            "create",
            true,
            "Specifies whether a ServiceAccount should be created",
        );
        v.str("name", "", "The name of the ServiceAccount to use.");
        v.obj(
            "annotations",
            "Additional Service Account annotations (evaluated as a template)",
        );
        v.bool(
            "automountServiceAccountToken",
            false,
            "Automount service account token for the server service account",
        );
    });
    v.map("pdb", "Pod Disruption Budget configuration", |v| {
        v.bool(
            "create",
            true,
            "Enable/disable a Pod Disruption Budget creation",
        );
        v.str(
            "minAvailable",
            "",
            "Minimum number/percentage of pods that should remain scheduled",
        );
        v.str(
            "maxUnavailable",
            "1",
            "Maximum number/percentage of pods that may be made unavailable",
        );
    });
    v.map("autoscaling", "Autoscaling configuration", |v| {
        v.bool("enabled", false, "Enable Horizontal POD autoscaling");
        v.int("minReplicas", 1, "Minimum number of replicas");
        v.int(
            "maxReplicas",
            3 + app_rng.below(8) as i64,
            "Maximum number of replicas",
        );
        v.int(
            "targetCPU",
            50 + 10 * app_rng.below(4) as i64,
            "Target CPU utilization percentage",
        );
        v.int(
            "targetMemory",
            50 + 10 * app_rng.below(4) as i64,
            "Target Memory utilization percentage",
        );
    });

    v.section("Metrics parameters");
    v.map("metrics", "Prometheus metrics", |v| {
        v.bool("enabled", false, "Start a sidecar prometheus exporter to expose metrics");
        v.int("port", 9100 + (i % 50) as i64, "Metrics port of the exporter sidecar");
        v.obj("annotations", "Annotations for the metrics service");
        v.map("serviceMonitor", "Prometheus Operator ServiceMonitor configuration", |v| {
            v.bool("enabled", false, "Creates a Prometheus Operator ServiceMonitor (also requires `metrics.enabled` to be `true`)");
            v.str("namespace", "", "Namespace in which Prometheus is running");
            v.str("interval", "30s", "Interval at which metrics should be scraped.");
            v.str("scrapeTimeout", "", "Timeout after which the scrape is ended");
            v.obj("labels", "Additional labels that can be used so ServiceMonitor will be discovered by Prometheus");
            v.list("relabelings", "RelabelConfigs to apply to samples before scraping");
            v.list("metricRelabelings", "MetricRelabelConfigs to apply to samples before ingestion");
            v.bool("honorLabels", false, "Specify honorLabels parameter to add the scrape endpoint");
        });
    });
    v
}

// ------------------------------------------------------------------------------------------
// README.md
// ------------------------------------------------------------------------------------------

#[allow(clippy::too_many_arguments)]
fn readme(
    a: &Archetype,
    i: usize,
    j: usize,
    name: &str,
    versions: &[String],
    app_ver: &str,
    values: &Values,
    app_rng: &mut Rng,
    rng: &mut Rng,
) -> String {
    let mut r = String::new();
    writeln!(r, "<!--- app-name: {} -->\n", a.display).ok();
    writeln!(r, "# {} {i:04} packaged for KubeSphere\n", a.display).ok();
    writeln!(
        r,
        "{} is {}. {}\n",
        a.display,
        a.blurb,
        app_rng.paragraph(4)
    )
    .ok();
    writeln!(
        r,
        "[Overview of {}](https://example.com/apps/{name})\n",
        a.display
    )
    .ok();
    writeln!(r, "Trademarks: This software listing is packaged by the platform team. The respective trademarks mentioned in the offering are owned by the respective companies, and use of them does not imply any affiliation or endorsement.\n").ok();
    writeln!(r, "## TL;DR\n\n```console\nhelm install my-release oci://registry.example.com/charts/{name} --version {}\n```\n", versions[j]).ok();
    writeln!(r, "## Introduction\n\nThis chart bootstraps a [{}](https://example.com/apps/{name}) {} on a [Kubernetes](https://kubernetes.io) cluster using the [Helm](https://helm.sh) package manager.\n", a.display, if a.workload == Workload::StatefulSet { "StatefulSet" } else { "Deployment" }).ok();
    writeln!(r, "{}\n\n{}\n", app_rng.paragraph(5), app_rng.paragraph(3)).ok();
    writeln!(r, "## Prerequisites\n\n- Kubernetes 1.23+\n- Helm 3.8.0+\n- PV provisioner support in the underlying infrastructure\n").ok();
    writeln!(r, "## Installing the Chart\n\nTo install the chart with the release name `my-release`:\n\n```console\nhelm install my-release oci://registry.example.com/charts/{name}\n```\n\n{}\n", app_rng.paragraph(2)).ok();
    writeln!(r, "> **Tip**: List all releases using `helm list`\n").ok();
    writeln!(r, "## Configuration and installation details\n").ok();
    for _ in 0..app_rng.range(16, 19) {
        let title = capitalise(&app_rng.sentence(2, 4).replace('.', ""));
        writeln!(r, "### {title}\n").ok();
        for _ in 0..app_rng.range(2, 4) {
            let n = app_rng.range(4, 7);
            writeln!(r, "{}\n", app_rng.paragraph(n)).ok();
        }
        if app_rng.chance(40) {
            let k = app_rng.ident();
            writeln!(r, "```yaml\nconfig:\n  {k}: {}\n```\n", app_rng.word()).ok();
        }
    }
    writeln!(
        r,
        "### Image tag\n\nThis chart deploys `docker.io/{}:{app_ver}` by default. {}\n",
        a.image,
        rng.paragraph(2)
    )
    .ok();

    writeln!(r, "## Parameters\n").ok();
    for s in &values.sections {
        writeln!(r, "### {}\n", s.title).ok();
        writeln!(
            r,
            "| Name | Description | Value |\n| ---- | ----------- | ----- |"
        )
        .ok();
        for (path, desc, default) in &s.rows {
            writeln!(r, "| `{path}` | {desc} | `{default}` |").ok();
        }
        r.push('\n');
    }
    writeln!(r, "Specify each parameter using the `--set key=value[,key=value]` argument to `helm install`. For example,\n\n```console\nhelm install my-release --set replicaCount=2 oci://registry.example.com/charts/{name}\n```\n").ok();
    writeln!(r, "## Troubleshooting\n\n{}\n", app_rng.paragraph(3)).ok();
    writeln!(r, "## Upgrading\n").ok();
    for k in (0..=j).rev() {
        let mut vr = Rng::for_version(i, k);
        vr.next();
        writeln!(r, "### To {}\n\n{}\n", versions[k], vr.paragraph(2)).ok();
    }
    writeln!(r, "## License\n\nCopyright &copy; 2025 The Example Authors.\n\nLicensed under the Apache License, Version 2.0 (the \"License\"); you may not use this file except in compliance with the License. You may obtain a copy of the License at\n\n<http://www.apache.org/licenses/LICENSE-2.0>\n\nUnless required by applicable law or agreed to in writing, software distributed under the License is distributed on an \"AS IS\" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the License for the specific language governing permissions and limitations under the License.").ok();
    r
}

// ------------------------------------------------------------------------------------------
// Templates (Go templates as Helm charts have them; `__NAME__` is the chart name)
// ------------------------------------------------------------------------------------------

const HELMIGNORE: &str = "# Patterns to ignore when building packages.
# This supports shell glob matching, relative path matching, and
# negation (prefixed with !). Only one pattern per line.
.DS_Store
# Common VCS dirs
.git/
.gitignore
.bzr/
.bzrignore
.hg/
.hgignore
.svn/
# Common backup files
*.swp
*.bak
*.tmp
*.orig
*~
# Various IDEs
.project
.idea/
*.tmproj
.vscode/
";

const HELPERS_TPL: &str = r#"{{/* vim: set filetype=mustache: */}}
{{/*
Expand the name of the chart.
*/}}
{{- define "__NAME__.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "__NAME__.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "__NAME__.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "__NAME__.labels" -}}
helm.sh/chart: {{ include "__NAME__.chart" . }}
{{ include "__NAME__.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "__NAME__.selectorLabels" -}}
app.kubernetes.io/name: {{ include "__NAME__.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "__NAME__.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "__NAME__.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Return the proper image name
*/}}
{{- define "__NAME__.image" -}}
{{- $registry := .Values.image.registry -}}
{{- if .Values.global.imageRegistry }}{{ $registry = .Values.global.imageRegistry }}{{ end -}}
{{- if .Values.image.digest }}
{{- printf "%s/%s@%s" $registry .Values.image.repository .Values.image.digest -}}
{{- else }}
{{- printf "%s/%s:%s" $registry .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}
{{- end }}

{{/*
Return the name of the ConfigMap holding the configuration
*/}}
{{- define "__NAME__.configmapName" -}}
{{- if .Values.existingConfigmap }}
{{- tpl .Values.existingConfigmap . }}
{{- else }}
{{- include "__NAME__.fullname" . }}
{{- end }}
{{- end }}

{{/*
Return the name of the Secret holding the credentials
*/}}
{{- define "__NAME__.secretName" -}}
{{- if .Values.auth.existingSecret }}
{{- tpl .Values.auth.existingSecret . }}
{{- else }}
{{- include "__NAME__.fullname" . }}
{{- end }}
{{- end }}

{{/*
Resources from the preset, unless resources are set
*/}}
{{- define "__NAME__.resources" -}}
{{- if .Values.resources }}
{{- toYaml .Values.resources }}
{{- else if eq .Values.resourcesPreset "nano" }}
requests: {cpu: 100m, memory: 128Mi}
limits: {cpu: 150m, memory: 192Mi}
{{- else if eq .Values.resourcesPreset "micro" }}
requests: {cpu: 250m, memory: 256Mi}
limits: {cpu: 375m, memory: 384Mi}
{{- else if eq .Values.resourcesPreset "small" }}
requests: {cpu: 500m, memory: 512Mi}
limits: {cpu: 750m, memory: 768Mi}
{{- else if eq .Values.resourcesPreset "medium" }}
requests: {cpu: 500m, memory: 1024Mi}
limits: {cpu: 750m, memory: 1536Mi}
{{- end }}
{{- end }}
"#;

const NOTES_TXT: &str = r#"CHART NAME: {{ .Chart.Name }}
CHART VERSION: {{ .Chart.Version }}
APP VERSION: {{ .Chart.AppVersion }}

** Please be patient while the chart is being deployed **

{{- if .Values.diagnosticMode.enabled }}
The chart has been deployed in diagnostic mode. All probes have been disabled and the command has been overwritten with:

  command: {{- include "common.tplvalues.render" (dict "value" .Values.diagnosticMode.command "context" $) | nindent 4 }}
  args: {{- include "common.tplvalues.render" (dict "value" .Values.diagnosticMode.args "context" $) | nindent 4 }}

{{- else }}

1. Get the application URL by running these commands:
{{- if .Values.ingress.enabled }}
  http{{ if .Values.ingress.tls }}s{{ end }}://{{ .Values.ingress.hostname }}{{ .Values.ingress.path }}
{{- else if contains "NodePort" .Values.service.type }}
  export NODE_PORT=$(kubectl get --namespace {{ .Release.Namespace }} -o jsonpath="{.spec.ports[0].nodePort}" services {{ include "__NAME__.fullname" . }})
  export NODE_IP=$(kubectl get nodes --namespace {{ .Release.Namespace }} -o jsonpath="{.items[0].status.addresses[0].address}")
  echo http://$NODE_IP:$NODE_PORT
{{- else if contains "LoadBalancer" .Values.service.type }}
     NOTE: It may take a few minutes for the LoadBalancer IP to be available.
           You can watch its status by running 'kubectl get --namespace {{ .Release.Namespace }} svc -w {{ include "__NAME__.fullname" . }}'
  export SERVICE_IP=$(kubectl get svc --namespace {{ .Release.Namespace }} {{ include "__NAME__.fullname" . }} --template "{{"{{ range (index .status.loadBalancer.ingress 0) }}{{.}}{{ end }}"}}")
  echo http://$SERVICE_IP:{{ .Values.service.port }}
{{- else if contains "ClusterIP" .Values.service.type }}
  export POD_NAME=$(kubectl get pods --namespace {{ .Release.Namespace }} -l "app.kubernetes.io/name={{ include "__NAME__.name" . }},app.kubernetes.io/instance={{ .Release.Name }}" -o jsonpath="{.items[0].metadata.name}")
  export CONTAINER_PORT=$(kubectl get pod --namespace {{ .Release.Namespace }} $POD_NAME -o jsonpath="{.spec.containers[0].ports[0].containerPort}")
  echo "Visit http://127.0.0.1:8080 to use your application"
  kubectl --namespace {{ .Release.Namespace }} port-forward $POD_NAME 8080:$CONTAINER_PORT
{{- end }}
{{- end }}
"#;

fn workload_yaml(kind: &str) -> String {
    let (head, extra) = if kind == "StatefulSet" {
        (
            "apiVersion: apps/v1\nkind: StatefulSet\n",
            r#"  serviceName: {{ printf "%s-headless" (include "__NAME__.fullname" .) | trunc 63 | trimSuffix "-" }}
  podManagementPolicy: Parallel
  {{- with .Values.updateStrategy }}
  updateStrategy: {{- toYaml . | nindent 4 }}
  {{- end }}
"#,
        )
    } else {
        (
            "apiVersion: apps/v1\nkind: Deployment\n",
            r#"  {{- with .Values.updateStrategy }}
  strategy: {{- toYaml . | nindent 4 }}
  {{- end }}
"#,
        )
    };
    let volumes = if kind == "StatefulSet" {
        r#"  {{- if .Values.persistence.enabled }}
  volumeClaimTemplates:
    - metadata:
        name: data
        {{- with .Values.persistence.annotations }}
        annotations: {{- toYaml . | nindent 10 }}
        {{- end }}
      spec:
        accessModes:
        {{- range .Values.persistence.accessModes }}
          - {{ . | quote }}
        {{- else }}
          - ReadWriteOnce
        {{- end }}
        resources:
          requests:
            storage: {{ .Values.persistence.size | quote }}
        {{- if .Values.persistence.storageClass }}
        storageClassName: {{ .Values.persistence.storageClass }}
        {{- end }}
  {{- end }}
"#
    } else {
        ""
    };
    format!(
        r#"{head}metadata:
  name: {{{{ include "__NAME__.fullname" . }}}}
  namespace: {{{{ .Release.Namespace | quote }}}}
  labels:
    {{{{- include "__NAME__.labels" . | nindent 4 }}}}
  {{{{- with .Values.commonAnnotations }}}}
  annotations: {{{{- toYaml . | nindent 4 }}}}
  {{{{- end }}}}
spec:
  {{{{- if not .Values.autoscaling.enabled }}}}
  replicas: {{{{ .Values.replicaCount }}}}
  {{{{- end }}}}
  revisionHistoryLimit: 10
  selector:
    matchLabels:
      {{{{- include "__NAME__.selectorLabels" . | nindent 6 }}}}
{extra}  template:
    metadata:
      annotations:
        checksum/config: {{{{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}}}
        {{{{- with .Values.podAnnotations }}}}
        {{{{- toYaml . | nindent 8 }}}}
        {{{{- end }}}}
      labels:
        {{{{- include "__NAME__.labels" . | nindent 8 }}}}
        {{{{- with .Values.podLabels }}}}
        {{{{- toYaml . | nindent 8 }}}}
        {{{{- end }}}}
    spec:
      serviceAccountName: {{{{ include "__NAME__.serviceAccountName" . }}}}
      automountServiceAccountToken: {{{{ .Values.serviceAccount.automountServiceAccountToken }}}}
      {{{{- with .Values.image.pullSecrets }}}}
      imagePullSecrets:
        {{{{- range . }}}}
        - name: {{{{ . }}}}
        {{{{- end }}}}
      {{{{- end }}}}
      {{{{- if .Values.podSecurityContext.enabled }}}}
      securityContext:
        fsGroup: {{{{ .Values.podSecurityContext.fsGroup }}}}
        fsGroupChangePolicy: {{{{ .Values.podSecurityContext.fsGroupChangePolicy }}}}
      {{{{- end }}}}
      {{{{- with .Values.priorityClassName }}}}
      priorityClassName: {{{{ . | quote }}}}
      {{{{- end }}}}
      terminationGracePeriodSeconds: {{{{ .Values.terminationGracePeriodSeconds }}}}
      {{{{- with .Values.initContainers }}}}
      initContainers: {{{{- toYaml . | nindent 8 }}}}
      {{{{- end }}}}
      containers:
        - name: {{{{ .Chart.Name }}}}
          image: {{{{ include "__NAME__.image" . }}}}
          imagePullPolicy: {{{{ .Values.image.pullPolicy }}}}
          {{{{- if .Values.containerSecurityContext.enabled }}}}
          securityContext:
            runAsUser: {{{{ .Values.containerSecurityContext.runAsUser }}}}
            runAsGroup: {{{{ .Values.containerSecurityContext.runAsGroup }}}}
            runAsNonRoot: {{{{ .Values.containerSecurityContext.runAsNonRoot }}}}
            privileged: {{{{ .Values.containerSecurityContext.privileged }}}}
            readOnlyRootFilesystem: {{{{ .Values.containerSecurityContext.readOnlyRootFilesystem }}}}
            allowPrivilegeEscalation: {{{{ .Values.containerSecurityContext.allowPrivilegeEscalation }}}}
            capabilities:
              drop: ["ALL"]
            seccompProfile:
              type: {{{{ .Values.containerSecurityContext.seccompProfileType }}}}
          {{{{- end }}}}
          {{{{- if .Values.diagnosticMode.enabled }}}}
          command: {{{{- toYaml .Values.diagnosticMode.command | nindent 12 }}}}
          args: {{{{- toYaml .Values.diagnosticMode.args | nindent 12 }}}}
          {{{{- else }}}}
          {{{{- with .Values.command }}}}
          command: {{{{- toYaml . | nindent 12 }}}}
          {{{{- end }}}}
          {{{{- with .Values.args }}}}
          args: {{{{- toYaml . | nindent 12 }}}}
          {{{{- end }}}}
          {{{{- end }}}}
          env:
            - name: BITNAMI_DEBUG
              value: {{{{ ternary "true" "false" .Values.image.debug | quote }}}}
            - name: APP_USERNAME
              value: {{{{ .Values.auth.username | quote }}}}
            {{{{- if .Values.auth.enabled }}}}
            - name: APP_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{{{ include "__NAME__.secretName" . }}}}
                  key: admin-password
            {{{{- end }}}}
            {{{{- with .Values.extraEnvVars }}}}
            {{{{- toYaml . | nindent 12 }}}}
            {{{{- end }}}}
          envFrom:
            - configMapRef:
                name: {{{{ include "__NAME__.configmapName" . }}}}
            {{{{- if .Values.extraEnvVarsCM }}}}
            - configMapRef:
                name: {{{{ .Values.extraEnvVarsCM }}}}
            {{{{- end }}}}
            {{{{- if .Values.extraEnvVarsSecret }}}}
            - secretRef:
                name: {{{{ .Values.extraEnvVarsSecret }}}}
            {{{{- end }}}}
          ports:
            - name: http
              containerPort: {{{{ .Values.containerPort }}}}
              protocol: TCP
            {{{{- if .Values.metrics.enabled }}}}
            - name: metrics
              containerPort: {{{{ .Values.metrics.port }}}}
              protocol: TCP
            {{{{- end }}}}
          {{{{- if not .Values.diagnosticMode.enabled }}}}
          {{{{- if .Values.customLivenessProbe }}}}
          livenessProbe: {{{{- toYaml .Values.customLivenessProbe | nindent 12 }}}}
          {{{{- else if .Values.livenessProbe.enabled }}}}
          livenessProbe:
            tcpSocket:
              port: http
            initialDelaySeconds: {{{{ .Values.livenessProbe.initialDelaySeconds }}}}
            periodSeconds: {{{{ .Values.livenessProbe.periodSeconds }}}}
            timeoutSeconds: {{{{ .Values.livenessProbe.timeoutSeconds }}}}
            failureThreshold: {{{{ .Values.livenessProbe.failureThreshold }}}}
            successThreshold: {{{{ .Values.livenessProbe.successThreshold }}}}
          {{{{- end }}}}
          {{{{- if .Values.customReadinessProbe }}}}
          readinessProbe: {{{{- toYaml .Values.customReadinessProbe | nindent 12 }}}}
          {{{{- else if .Values.readinessProbe.enabled }}}}
          readinessProbe:
            tcpSocket:
              port: http
            initialDelaySeconds: {{{{ .Values.readinessProbe.initialDelaySeconds }}}}
            periodSeconds: {{{{ .Values.readinessProbe.periodSeconds }}}}
            timeoutSeconds: {{{{ .Values.readinessProbe.timeoutSeconds }}}}
            failureThreshold: {{{{ .Values.readinessProbe.failureThreshold }}}}
            successThreshold: {{{{ .Values.readinessProbe.successThreshold }}}}
          {{{{- end }}}}
          {{{{- if .Values.startupProbe.enabled }}}}
          startupProbe:
            tcpSocket:
              port: http
            initialDelaySeconds: {{{{ .Values.startupProbe.initialDelaySeconds }}}}
            periodSeconds: {{{{ .Values.startupProbe.periodSeconds }}}}
            timeoutSeconds: {{{{ .Values.startupProbe.timeoutSeconds }}}}
            failureThreshold: {{{{ .Values.startupProbe.failureThreshold }}}}
            successThreshold: {{{{ .Values.startupProbe.successThreshold }}}}
          {{{{- end }}}}
          {{{{- end }}}}
          resources:
            {{{{- include "__NAME__.resources" . | nindent 12 }}}}
          volumeMounts:
            - name: data
              mountPath: {{{{ .Values.persistence.mountPath }}}}
              {{{{- with .Values.persistence.subPath }}}}
              subPath: {{{{ . }}}}
              {{{{- end }}}}
            - name: empty-dir
              mountPath: /tmp
              subPath: tmp-dir
            {{{{- with .Values.extraVolumeMounts }}}}
            {{{{- toYaml . | nindent 12 }}}}
            {{{{- end }}}}
        {{{{- with .Values.sidecars }}}}
        {{{{- toYaml . | nindent 8 }}}}
        {{{{- end }}}}
      volumes:
        - name: empty-dir
          emptyDir: {{}}
        {{{{- if not .Values.persistence.enabled }}}}
        - name: data
          emptyDir: {{}}
        {{{{- else if .Values.persistence.existingClaim }}}}
        - name: data
          persistentVolumeClaim:
            claimName: {{{{ .Values.persistence.existingClaim }}}}
        {{{{- end }}}}
        {{{{- with .Values.extraVolumes }}}}
        {{{{- toYaml . | nindent 8 }}}}
        {{{{- end }}}}
      {{{{- with .Values.nodeSelector }}}}
      nodeSelector: {{{{- toYaml . | nindent 8 }}}}
      {{{{- end }}}}
      {{{{- with .Values.affinity }}}}
      affinity: {{{{- toYaml . | nindent 8 }}}}
      {{{{- end }}}}
      {{{{- with .Values.tolerations }}}}
      tolerations: {{{{- toYaml . | nindent 8 }}}}
      {{{{- end }}}}
      {{{{- with .Values.topologySpreadConstraints }}}}
      topologySpreadConstraints: {{{{- toYaml . | nindent 8 }}}}
      {{{{- end }}}}
{volumes}"#
    )
}

const PVC_YAML: &str = r#"{{- if and .Values.persistence.enabled (not .Values.persistence.existingClaim) }}
kind: PersistentVolumeClaim
apiVersion: v1
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
  {{- with .Values.persistence.annotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  accessModes:
  {{- range .Values.persistence.accessModes }}
    - {{ . | quote }}
  {{- else }}
    - ReadWriteOnce
  {{- end }}
  resources:
    requests:
      storage: {{ .Values.persistence.size | quote }}
  {{- with .Values.persistence.storageClass }}
  storageClassName: {{ . }}
  {{- end }}
{{- end }}
"#;

const HEADLESS_YAML: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: {{ printf "%s-headless" (include "__NAME__.fullname" .) | trunc 63 | trimSuffix "-" }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
spec:
  type: ClusterIP
  clusterIP: None
  publishNotReadyAddresses: true
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
  selector:
    {{- include "__NAME__.selectorLabels" . | nindent 4 }}
"#;

const SERVICE_YAML: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
  {{- with .Values.service.annotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .Values.service.type }}
  {{- if and .Values.service.clusterIP (eq .Values.service.type "ClusterIP") }}
  clusterIP: {{ .Values.service.clusterIP }}
  {{- end }}
  {{- if or (eq .Values.service.type "LoadBalancer") (eq .Values.service.type "NodePort") }}
  externalTrafficPolicy: {{ .Values.service.externalTrafficPolicy | quote }}
  {{- end }}
  {{- if and (eq .Values.service.type "LoadBalancer") .Values.service.loadBalancerSourceRanges }}
  loadBalancerSourceRanges: {{- toYaml .Values.service.loadBalancerSourceRanges | nindent 4 }}
  {{- end }}
  sessionAffinity: {{ .Values.service.sessionAffinity }}
  ports:
    - name: http
      port: {{ .Values.service.port }}
      targetPort: http
      protocol: TCP
      {{- if and (or (eq .Values.service.type "NodePort") (eq .Values.service.type "LoadBalancer")) .Values.service.nodePort }}
      nodePort: {{ .Values.service.nodePort }}
      {{- end }}
    {{- if .Values.metrics.enabled }}
    - name: metrics
      port: {{ .Values.metrics.port }}
      targetPort: metrics
    {{- end }}
    {{- with .Values.service.extraPorts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  selector:
    {{- include "__NAME__.selectorLabels" . | nindent 4 }}
"#;

const INGRESS_YAML: &str = r#"{{- if .Values.ingress.enabled -}}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
  {{- with .Values.ingress.annotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with .Values.ingress.ingressClassName }}
  ingressClassName: {{ . | quote }}
  {{- end }}
  rules:
    - host: {{ .Values.ingress.hostname | quote }}
      http:
        paths:
          {{- with .Values.ingress.extraPaths }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
          - path: {{ .Values.ingress.path }}
            pathType: {{ .Values.ingress.pathType }}
            backend:
              service:
                name: {{ include "__NAME__.fullname" . }}
                port:
                  name: http
    {{- range .Values.ingress.extraHosts }}
    - host: {{ .name | quote }}
      http:
        paths:
          - path: {{ default "/" .path }}
            pathType: {{ default "ImplementationSpecific" .pathType }}
            backend:
              service:
                name: {{ include "__NAME__.fullname" $ }}
                port:
                  name: http
    {{- end }}
  {{- if or .Values.ingress.tls .Values.ingress.extraTls }}
  tls:
    {{- if .Values.ingress.tls }}
    - hosts:
        - {{ .Values.ingress.hostname | quote }}
      secretName: {{ printf "%s-tls" .Values.ingress.hostname }}
    {{- end }}
    {{- with .Values.ingress.extraTls }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
{{- end }}
"#;

const CONFIGMAP_YAML: &str = r#"{{- if not .Values.existingConfigmap }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
data:
  {{- range $key, $value := .Values.config }}
  {{ $key | snakecase | upper }}: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
"#;

const SECRET_YAML: &str = r#"{{- if and .Values.auth.enabled (not .Values.auth.existingSecret) }}
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
type: Opaque
data:
  {{- $existing := lookup "v1" "Secret" .Release.Namespace (include "__NAME__.fullname" .) }}
  {{- if $existing }}
  admin-password: {{ index $existing.data "admin-password" }}
  {{- else }}
  admin-password: {{ randAlphaNum 24 | b64enc | quote }}
  {{- end }}
{{- end }}
"#;

const HPA_YAML: &str = r#"{{- if .Values.autoscaling.enabled }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: {{ ternary "StatefulSet" "Deployment" .Values.persistence.enabled }}
    name: {{ include "__NAME__.fullname" . }}
  minReplicas: {{ .Values.autoscaling.minReplicas }}
  maxReplicas: {{ .Values.autoscaling.maxReplicas }}
  metrics:
    {{- if .Values.autoscaling.targetCPU }}
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetCPU }}
    {{- end }}
    {{- if .Values.autoscaling.targetMemory }}
    - type: Resource
      resource:
        name: memory
        target:
          type: Utilization
          averageUtilization: {{ .Values.autoscaling.targetMemory }}
    {{- end }}
{{- end }}
"#;

const SERVICEACCOUNT_YAML: &str = r#"{{- if .Values.serviceAccount.create -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "__NAME__.serviceAccountName" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
  {{- with .Values.serviceAccount.annotations }}
  annotations: {{- toYaml . | nindent 4 }}
  {{- end }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- end }}
"#;

const PDB_YAML: &str = r#"{{- if .Values.pdb.create }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
spec:
  {{- if .Values.pdb.minAvailable }}
  minAvailable: {{ .Values.pdb.minAvailable }}
  {{- end }}
  {{- if or .Values.pdb.maxUnavailable (not .Values.pdb.minAvailable) }}
  maxUnavailable: {{ .Values.pdb.maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "__NAME__.selectorLabels" . | nindent 6 }}
{{- end }}
"#;

const NETWORKPOLICY_YAML: &str = r#"{{- if .Values.networkPolicy.enabled }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ .Release.Namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "__NAME__.selectorLabels" . | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  {{- if .Values.networkPolicy.allowExternalEgress }}
  egress:
    - {}
  {{- else }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- with .Values.networkPolicy.extraEgress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ingress:
    - ports:
        - port: {{ .Values.containerPort }}
        {{- if .Values.metrics.enabled }}
        - port: {{ .Values.metrics.port }}
        {{- end }}
      {{- if not .Values.networkPolicy.allowExternal }}
      from:
        - podSelector:
            matchLabels:
              {{ include "__NAME__.fullname" . }}-client: "true"
      {{- end }}
    {{- with .Values.networkPolicy.extraIngress }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}
"#;

const SERVICEMONITOR_YAML: &str = r#"{{- if and .Values.metrics.enabled .Values.metrics.serviceMonitor.enabled }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "__NAME__.fullname" . }}
  namespace: {{ default .Release.Namespace .Values.metrics.serviceMonitor.namespace | quote }}
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
    {{- with .Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  jobLabel: app.kubernetes.io/name
  endpoints:
    - port: metrics
      path: /metrics
      {{- with .Values.metrics.serviceMonitor.interval }}
      interval: {{ . }}
      {{- end }}
      {{- with .Values.metrics.serviceMonitor.scrapeTimeout }}
      scrapeTimeout: {{ . }}
      {{- end }}
      honorLabels: {{ .Values.metrics.serviceMonitor.honorLabels }}
      {{- with .Values.metrics.serviceMonitor.relabelings }}
      relabelings: {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.metrics.serviceMonitor.metricRelabelings }}
      metricRelabelings: {{- toYaml . | nindent 8 }}
      {{- end }}
  namespaceSelector:
    matchNames:
      - {{ .Release.Namespace }}
  selector:
    matchLabels:
      {{- include "__NAME__.selectorLabels" . | nindent 6 }}
{{- end }}
"#;

const TEST_CONNECTION_YAML: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: "{{ include "__NAME__.fullname" . }}-test-connection"
  labels:
    {{- include "__NAME__.labels" . | nindent 4 }}
  annotations:
    "helm.sh/hook": test
spec:
  containers:
    - name: wget
      image: busybox:1.36
      command: ['wget']
      args: ['{{ include "__NAME__.fullname" . }}:{{ .Values.service.port }}']
  restartPolicy: Never
"#;

const COMMON_CHART_YAML: &str = "annotations:
  category: Infrastructure
  licenses: Apache-2.0
apiVersion: v2
appVersion: 2.31.4
description: A Library Helm Chart for grouping common logic between charts. This chart is not deployable by itself.
home: https://example.com/charts/common
keywords:
  - common
  - helper
  - template
  - function
maintainers:
  - name: Platform Team
    url: https://example.com/platform
name: common
sources:
  - https://github.com/example/charts/tree/main/common
type: library
version: 2.31.4
";

const COMMON_NAMES_TPL: &str = r#"{{/* vim: set filetype=mustache: */}}
{{/*
Expand the name of the chart.
*/}}
{{- define "common.names.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "common.names.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Create a default fully qualified app name.
*/}}
{{- define "common.names.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Allow the release namespace to be overridden for multi-namespace deployments in combined charts.
*/}}
{{- define "common.names.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Renders a value that contains template, perhaps with scope if the scope is present.
*/}}
{{- define "common.tplvalues.render" -}}
{{- $value := typeIs "string" .value | ternary .value (.value | toYaml) }}
{{- if contains "{{" (toJson .value) }}
  {{- if .scope }}
      {{- tpl (cat "{{- with $.RelativeScope -}}" $value "{{- end }}") (merge (dict "RelativeScope" .scope) .context) }}
  {{- else }}
    {{- tpl $value .context }}
  {{- end }}
{{- else }}
    {{- $value }}
{{- end }}
{{- end -}}
"#;

const COMMON_LABELS_TPL: &str = r#"{{/* vim: set filetype=mustache: */}}
{{/*
Kubernetes standard labels
{{ include "common.labels.standard" (dict "customLabels" .Values.commonLabels "context" $) -}}
*/}}
{{- define "common.labels.standard" -}}
{{- if and (hasKey . "customLabels") (hasKey . "context") -}}
{{- $default := dict "app.kubernetes.io/name" (include "common.names.name" .context) "helm.sh/chart" (include "common.names.chart" .context) "app.kubernetes.io/instance" .context.Release.Name "app.kubernetes.io/managed-by" .context.Release.Service -}}
{{- with .context.Chart.AppVersion -}}
{{- $_ := set $default "app.kubernetes.io/version" . -}}
{{- end -}}
{{ template "common.tplvalues.merge" (dict "values" (list .customLabels $default) "context" .context) }}
{{- else -}}
app.kubernetes.io/name: {{ include "common.names.name" . }}
helm.sh/chart: {{ include "common.names.chart" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Chart.AppVersion }}
app.kubernetes.io/version: {{ . | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Labels used on immutable fields such as deploy.spec.selector.matchLabels or svc.spec.selector
*/}}
{{- define "common.labels.matchLabels" -}}
{{- if and (hasKey . "customLabels") (hasKey . "context") -}}
{{ merge (pick (include "common.tplvalues.render" (dict "value" .customLabels "context" .context) | fromYaml) "app.kubernetes.io/name" "app.kubernetes.io/instance") (dict "app.kubernetes.io/name" (include "common.names.name" .context) "app.kubernetes.io/instance" .context.Release.Name ) | toYaml }}
{{- else -}}
app.kubernetes.io/name: {{ include "common.names.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- end -}}

{{/*
Merge a list of values that contains template after rendering them.
*/}}
{{- define "common.tplvalues.merge" -}}
{{- $dst := dict -}}
{{- range .values -}}
{{- $dst = include "common.tplvalues.render" (dict "value" . "context" $.context "scope" $.scope) | fromYaml | merge $dst -}}
{{- end -}}
{{ $dst | toYaml }}
{{- end -}}
"#;
