//! `pitrix deploy-manifests`: what runs `pitrix reconcile` in a cluster — its own Namespace,
//! a ServiceAccount, RBAC limited to what pitrix touches, a Deployment and its
//! PodDisruptionBudget — as typed Kubernetes values, printed as YAML. Never the storage
//! namespace: that is KubeSphere's, and must exist before the manifests are applied.
//!
//! What pitrix touches, and so all it may do:
//! - the five App Store kinds (cluster-scoped): read, watch, server-side apply, prune; the
//!   review states of apps and versions through their status subresource;
//! - Namespaces: read and watch (the storage namespace is one of the catalog's objects),
//!   create and patch (apply creates the storage and inventory namespaces when missing) —
//!   never delete (pitrix never prunes a namespace);
//! - ConfigMaps in the storage namespace only: the chart packages (watched as metadata);
//! - in its own namespace: the inventory ConfigMap, its Lease, and Events.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource,
    EnvFromSource, EnvVar, EnvVarSource, HTTPGetAction, Namespace, ObjectFieldSelector,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SeccompProfile, SecretEnvSource, SecretKeySelector, SecretVolumeSource,
    SecurityContext, ServiceAccount, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Serialize;

use crate::error::Error;
use crate::objects::labels;

/// `pitrix deploy-manifests`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployOptions {
    /// The catalog's git repository (as for `pitrix reconcile --source`).
    pub source: String,
    /// The branch to follow, unless `tag` is set.
    pub branch: String,
    pub tag: Option<String>,
    /// The catalog's directory inside the repository.
    pub path: String,
    /// Passed on to `pitrix reconcile`.
    pub controller: super::ControllerOptions,
    /// Namespace pitrix runs in (also holds the inventory, the Lease and the Events).
    pub namespace: String,
    /// The catalog's storage namespace (pitrix.toml `storageNamespace`). It is KubeSphere's
    /// and must exist before the manifests are applied: they grant rights in it but never
    /// create it, so that deleting them cannot delete the package store.
    pub storage_namespace: String,
    /// Name of the ServiceAccount, roles, Deployment and Lease.
    pub name: String,
    /// Container image with the pitrix binary ([`image_reference`]), written as given.
    pub image: String,
    /// Replicas (leader election keeps one active).
    pub replicas: i32,
    /// Secret whose key `token` is the https token.
    pub git_token_secret: Option<String>,
    /// Secret with keys `identity` (private key) and `known_hosts`, for ssh sources.
    pub ssh_secret: Option<String>,
    /// `standalone` target with member clusters: Secret whose key `config` is a kubeconfig with
    /// their contexts (pitrix.toml `[clusters.<name>] context`); the host stays in-cluster.
    pub member_kubeconfig_secret: Option<String>,
    /// Secret whose keys become environment variables (the repo credentials the catalog names).
    pub env_secret: Option<String>,
    /// ConfigMap whose keys become environment variables.
    pub env_config_map: Option<String>,
    /// `standalone` target: the namespaces releases install into; pitrix runs the Helm
    /// executor Jobs and their ConfigMaps there, and writes the releases' status.
    pub release_namespaces: Vec<String>,
    /// The environment of pitrix.toml (the global `--env`), passed on to `pitrix reconcile`.
    pub env: Option<String>,
    /// Memory limit of the container (a Kubernetes quantity).
    pub memory_limit: String,
    /// The catalog's target is KubeSphere 3.x: the ClusterRole grants its kinds
    /// (`application.kubesphere.io/v1alpha1`) instead of 4.x's.
    pub kubesphere_v3: bool,
    /// Secret with keys `accessKeyId` and `secretAccessKey`: the S3 credentials of
    /// `[storage.s3]`, as `PITRIX_S3_ACCESS_KEY_ID` / `PITRIX_S3_SECRET_ACCESS_KEY`.
    pub s3_credentials_secret: Option<String>,
}

impl Default for DeployOptions {
    /// `pitrix deploy-manifests`'s defaults, with no source.
    fn default() -> Self {
        DeployOptions {
            source: String::new(),
            branch: "main".into(),
            tag: None,
            path: String::new(),
            controller: super::ControllerOptions::default(),
            namespace: "pitrix-system".into(),
            storage_namespace: labels::STORAGE_NAMESPACE.into(),
            name: "pitrix".into(),
            image: default_image(),
            replicas: 2,
            git_token_secret: None,
            ssh_secret: None,
            member_kubeconfig_secret: None,
            env_secret: None,
            env_config_map: None,
            release_namespaces: Vec::new(),
            env: None,
            // The first sync of the 1,000 apps × 5 versions synthetic catalog peaks at ~100 MiB
            // (bench/soak.sh); idle, pitrix holds ~45-60 MiB.
            memory_limit: "256Mi".into(),
            kubesphere_v3: false,
            s3_credentials_secret: None,
        }
    }
}

/// The Pod's termination grace: the controller's `--shutdown-grace` plus 10 s to release its
/// lease and exit (never under Kubernetes' default 30 s).
fn termination_grace(c: &super::ControllerOptions) -> i64 {
    let seconds = c.shutdown_grace.as_secs_f64().ceil() as i64;
    (seconds + 10).max(30)
}

/// The GitHub owner the release workflow publishes the image under (`ghcr.io/<owner>/pitrix`),
/// while Cargo.toml declares no `repository` (when it does, its owner is used). Keep it equal
/// to `IMAGE_OWNER` in scripts/build-image.sh (tests/integration/image.rs checks).
pub const IMAGE_OWNER: &str = "pitrix";

/// The image the release workflow publishes for this version: `ghcr.io/<owner>/pitrix:<version>`.
/// `PITRIX_IMAGE_REPOSITORY` at build time (e.g. `ghcr.io/acme/pitrix`, set by a fork's release)
/// names another repository; else the owner of Cargo.toml's GitHub `repository`; else
/// [`IMAGE_OWNER`].
pub fn default_image() -> String {
    let version = env!("CARGO_PKG_VERSION");
    if let Some(repo) = option_env!("PITRIX_IMAGE_REPOSITORY").filter(|r| !r.is_empty()) {
        return format!("{repo}:{version}");
    }
    let owner = env!("CARGO_PKG_REPOSITORY")
        .strip_prefix("https://github.com/")
        .and_then(|rest| rest.split('/').next())
        .filter(|o| !o.is_empty())
        .unwrap_or(IMAGE_OWNER);
    // Registry paths are lower case; GitHub owners are not always.
    format!("ghcr.io/{}/pitrix:{version}", owner.to_ascii_lowercase())
}

/// `--image`: a reference the kubelet can pull ([`crate::names::image_reference`]), kept
/// exactly as given.
pub fn image_reference(s: &str) -> Result<String, crate::error::Error> {
    crate::names::image_reference(s)
        .map(|()| s.to_string())
        .map_err(crate::error::Error::InvalidValue)
}

/// One manifest; serialised with its own `apiVersion` and `kind`.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Manifest {
    Namespace(Namespace),
    ServiceAccount(ServiceAccount),
    ClusterRole(ClusterRole),
    ClusterRoleBinding(ClusterRoleBinding),
    Role(Role),
    RoleBinding(RoleBinding),
    Deployment(Box<Deployment>),
    PodDisruptionBudget(PodDisruptionBudget),
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(strings(groups)),
        resources: Some(strings(resources)),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

impl DeployOptions {
    fn meta(&self, name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            namespace: namespace.map(str::to_string),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }

    fn labels(&self) -> BTreeMap<String, String> {
        [
            ("app.kubernetes.io/name", "pitrix"),
            ("app.kubernetes.io/instance", self.name.as_str()),
            ("app.kubernetes.io/component", "reconcile"),
            (labels::MANAGED_BY, "pitrix-deploy-manifests"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn subject(&self) -> Vec<Subject> {
        vec![Subject {
            kind: "ServiceAccount".into(),
            name: self.name.clone(),
            namespace: Some(self.namespace.clone()),
            ..Subject::default()
        }]
    }

    fn lease_name(&self) -> String {
        format!("{}-reconcile", self.name)
    }
}

/// The manifests, in the order to apply them.
pub fn manifests(o: &DeployOptions) -> Vec<Manifest> {
    let cluster_name = format!("{}-{}", o.name, o.namespace);
    let app_group = crate::objects::API_VERSION
        .split('/')
        .next()
        .unwrap_or_default();
    // pitrix's own namespace, never the storage namespace: that one is KubeSphere's (its
    // package store); `pitrix apply` and reconcile only borrow it (created when missing, never
    // pruned), and a Namespace here would let `kubectl delete -f` of these manifests delete
    // every package in it.
    let mut out = Vec::new();
    if o.storage_namespace != o.namespace {
        out.push(Manifest::Namespace(Namespace {
            metadata: o.meta(&o.namespace, None),
            ..Namespace::default()
        }));
    }
    out.push(Manifest::ServiceAccount(ServiceAccount {
        metadata: o.meta(&o.name, Some(&o.namespace)),
        automount_service_account_token: Some(true),
        ..ServiceAccount::default()
    }));
    out.push(Manifest::ClusterRole(ClusterRole {
        metadata: o.meta(&cluster_name, None),
        rules: Some(vec![
            rule(
                &[app_group],
                &if o.kubesphere_v3 {
                    vec![
                        "helmcategories",
                        "helmrepos",
                        "helmapplications",
                        "helmapplicationversions",
                        "helmreleases",
                    ]
                } else {
                    vec![
                        "categories",
                        "repos",
                        "applications",
                        "applicationversions",
                        "applicationreleases",
                    ]
                },
                &["get", "list", "watch", "create", "patch", "delete"],
            ),
            rule(
                &[app_group],
                &if o.kubesphere_v3 {
                    // 3.x derives the app's state; pitrix writes the versions'.
                    vec!["helmapplicationversions/status"]
                } else if o.release_namespaces.is_empty() {
                    vec!["applications/status", "applicationversions/status"]
                } else {
                    vec![
                        "applications/status",
                        "applicationversions/status",
                        "applicationreleases/status",
                    ]
                },
                &["get", "patch"],
            ),
            rule(
                &[""],
                &["namespaces"],
                &["get", "list", "watch", "create", "patch"],
            ),
        ]),
        ..ClusterRole::default()
    }));
    out.push(Manifest::ClusterRoleBinding(ClusterRoleBinding {
        metadata: o.meta(&cluster_name, None),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "ClusterRole".into(),
            name: cluster_name.clone(),
        },
        subjects: Some(o.subject()),
    }));
    // The package ConfigMaps: a Role in the storage namespace, which must therefore exist
    // before these manifests are applied (KubeSphere's OpenPitrix extension creates it; without
    // KubeSphere, `kubectl create namespace` it first; `--storage-namespace` says so). The
    // alternative — a ClusterRole — cannot be confined to one namespace: `resourceNames`
    // cannot name packages that do not exist yet, nor limit list and watch, so it would grant
    // every ConfigMap of the cluster.
    let storage_role = format!("{}-packages", o.name);
    out.push(Manifest::Role(Role {
        metadata: o.meta(&storage_role, Some(&o.storage_namespace)),
        rules: Some(vec![rule(
            &[""],
            &["configmaps"],
            &["get", "list", "watch", "create", "patch", "delete"],
        )]),
    }));
    out.push(Manifest::RoleBinding(RoleBinding {
        metadata: o.meta(&storage_role, Some(&o.storage_namespace)),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: storage_role.clone(),
        },
        subjects: Some(o.subject()),
    }));
    let executor_role = format!("{}-executor", o.name);
    for ns in &o.release_namespaces {
        out.push(Manifest::Role(Role {
            metadata: o.meta(&executor_role, Some(ns)),
            rules: Some(vec![
                rule(
                    &["batch"],
                    &["jobs"],
                    &["get", "list", "watch", "create", "patch", "delete"],
                ),
                rule(
                    &[""],
                    &["configmaps"],
                    &["get", "list", "watch", "create", "patch", "delete"],
                ),
            ]),
        }));
        out.push(Manifest::RoleBinding(RoleBinding {
            metadata: o.meta(&executor_role, Some(ns)),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Role".into(),
                name: executor_role.clone(),
            },
            subjects: Some(o.subject()),
        }));
    }
    let own_role = format!("{}-reconcile", o.name);
    // Its leader-election Lease, and the apply locks of the catalogs it syncs
    // (`pitrix-apply-<catalog>`): the catalog's name is only known from its pitrix.toml, so
    // the rule cannot name them; it is confined to pitrix's own namespace.
    let lease_rule = rule(&["coordination.k8s.io"], &["leases"], &["get", "update"]);
    out.push(Manifest::Role(Role {
        metadata: o.meta(&own_role, Some(&o.namespace)),
        rules: Some(vec![
            // The inventory ConfigMaps (one per catalog) and their status annotations.
            rule(&[""], &["configmaps"], &["get", "create", "patch"]),
            lease_rule,
            // A Lease cannot be created by name: `create` is for the first start (and each
            // catalog's first sync) only.
            rule(&["coordination.k8s.io"], &["leases"], &["create"]),
            rule(&["events.k8s.io"], &["events"], &["create", "patch"]),
        ]),
    }));
    out.push(Manifest::RoleBinding(RoleBinding {
        metadata: o.meta(&own_role, Some(&o.namespace)),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: own_role.clone(),
        },
        subjects: Some(o.subject()),
    }));
    out.push(Manifest::Deployment(Box::new(deployment(o))));
    out.push(Manifest::PodDisruptionBudget(disruption_budget(o)));
    out
}

/// The pods' selector (a subset of their labels).
fn selector(o: &DeployOptions) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name".to_string(), "pitrix".to_string()),
        ("app.kubernetes.io/instance".to_string(), o.name.clone()),
    ]
    .into()
}

/// A voluntary disruption (a node drain) takes one replica at a time: the standby takes the
/// lease while the other is rescheduled.
fn disruption_budget(o: &DeployOptions) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: o.meta(&o.name, Some(&o.namespace)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(o)),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// Where the container finds what reconcile writes and the Secrets it reads.
const CACHE_DIR: &str = "/var/cache/pitrix";
const SSH_DIR: &str = "/etc/pitrix/ssh";
const MEMBERS_DIR: &str = "/etc/pitrix/member-kubeconfig";
/// The controller's port: /healthz, /readyz, /metrics.
const HTTP_PORT: i32 = 8080;
/// The image's non-root user and group (distroless `nonroot`).
const NONROOT: i64 = 65532;

/// A Secret mounted read-only in the container, only its owner may read.
struct SecretMount<'a> {
    volume: &'a str,
    secret: &'a str,
    path: &'a str,
}

impl SecretMount<'_> {
    fn volume(&self) -> Volume {
        Volume {
            name: self.volume.into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(self.secret.to_string()),
                default_mode: Some(0o400),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        }
    }

    fn mount(&self) -> VolumeMount {
        VolumeMount {
            name: self.volume.into(),
            mount_path: self.path.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        }
    }
}

/// The Secrets the options name, in the order they are mounted.
fn secret_mounts(o: &DeployOptions) -> Vec<SecretMount<'_>> {
    let ssh = o.ssh_secret.as_deref().map(|secret| SecretMount {
        volume: "ssh",
        secret,
        path: SSH_DIR,
    });
    let members = o
        .member_kubeconfig_secret
        .as_deref()
        .map(|secret| SecretMount {
            volume: "member-kubeconfig",
            secret,
            path: MEMBERS_DIR,
        });
    ssh.into_iter().chain(members).collect()
}

/// What the container runs: `pitrix reconcile` with the source, the controller's options,
/// its own namespace for the inventory and the Lease, and the mounted Secrets' files.
fn reconcile_args(o: &DeployOptions) -> Vec<String> {
    let mut args = match &o.env {
        Some(env) => vec!["--env".to_string(), env.clone()],
        None => Vec::new(),
    };
    args.extend(strings(&["reconcile", "--source"]));
    args.push(o.source.clone());
    match &o.tag {
        Some(t) => args.extend(["--tag".to_string(), t.clone()]),
        None => args.extend(["--branch".to_string(), o.branch.clone()]),
    }
    if !o.path.is_empty() {
        args.extend(["--path".to_string(), o.path.clone()]);
    }
    args.extend(o.controller.to_args());
    args.extend([
        "--http-addr".into(),
        format!("0.0.0.0:{HTTP_PORT}"),
        "--cache-dir".into(),
        CACHE_DIR.into(),
        "--inventory-namespace".into(),
        o.namespace.clone(),
        "--lease-name".into(),
        o.lease_name(),
        "--lease-namespace".into(),
        o.namespace.clone(),
    ]);
    if o.ssh_secret.is_some() {
        args.extend([
            "--ssh-key".into(),
            format!("{SSH_DIR}/identity"),
            "--ssh-known-hosts".into(),
            format!("{SSH_DIR}/known_hosts"),
        ]);
    }
    if o.member_kubeconfig_secret.is_some() {
        args.extend([
            "--member-kubeconfig".into(),
            format!("{MEMBERS_DIR}/config"),
        ]);
    }
    args
}

/// An environment variable read from the Pod's own fields.
fn field_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The Pod's name and namespace (the Lease's identity and namespace), and the git token.
fn env(o: &DeployOptions) -> Vec<EnvVar> {
    let mut env = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
    ];
    if let Some(secret) = &o.git_token_secret {
        env.push(secret_env("PITRIX_GIT_TOKEN", secret, "token"));
    }
    // Not optional: a Pod without them would only fail every sync.
    if let Some(secret) = &o.s3_credentials_secret {
        env.push(secret_env(
            crate::catalog::S3Settings::DEFAULT_ACCESS_KEY_ID_ENV,
            secret,
            "accessKeyId",
        ));
        env.push(secret_env(
            crate::catalog::S3Settings::DEFAULT_SECRET_ACCESS_KEY_ENV,
            secret,
            "secretAccessKey",
        ));
    }
    env
}

/// Variable `name` from key `key` of Secret `secret`.
fn secret_env(name: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..SecretKeySelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Every key of `--env-secret` and `--env-config-map` as a variable (none: the field is
/// left out).
fn env_from(o: &DeployOptions) -> Option<Vec<EnvFromSource>> {
    let secret = o.env_secret.as_ref().map(|name| EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name: name.clone(),
            ..SecretEnvSource::default()
        }),
        ..EnvFromSource::default()
    });
    let config_map = o.env_config_map.as_ref().map(|name| EnvFromSource {
        config_map_ref: Some(ConfigMapEnvSource {
            name: name.clone(),
            ..ConfigMapEnvSource::default()
        }),
        ..EnvFromSource::default()
    });
    let all: Vec<EnvFromSource> = secret.into_iter().chain(config_map).collect();
    (!all.is_empty()).then_some(all)
}

/// The root file system is read-only (the image has nothing writable but an empty /tmp):
/// what reconcile writes — the git cache, the object store, the work directory — is under
/// --cache-dir, and temporary files under /tmp, each an emptyDir; then the Secrets.
fn volumes(o: &DeployOptions) -> Vec<Volume> {
    let empty_dir = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let mut volumes = vec![empty_dir("cache"), empty_dir("tmp")];
    volumes.extend(secret_mounts(o).iter().map(SecretMount::volume));
    volumes
}

/// Where [`volumes`] are mounted, in the same order.
fn volume_mounts(o: &DeployOptions) -> Vec<VolumeMount> {
    let writable = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..VolumeMount::default()
    };
    let mut mounts = vec![writable("cache", CACHE_DIR), writable("tmp", "/tmp")];
    mounts.extend(secret_mounts(o).iter().map(SecretMount::mount));
    mounts
}

/// An HTTP GET of `path` on the controller's port every `period` seconds.
fn http_probe(path: &str, period: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// The container's memory request: what an idle controller holds, with room.
const MEMORY_REQUEST: &str = "64Mi";
const MEMORY_REQUEST_BYTES: u64 = 64 << 20;

/// A memory quantity for `--memory-limit`, in Kubernetes' form (`256Mi`, `1Gi`, `500M`, a
/// plain number of bytes), no smaller than the request (the API server refuses a limit below
/// its request).
pub fn parse_memory_limit(text: &str) -> Result<String, Error> {
    let invalid = |why: &str| {
        Error::InvalidValue(format!(
            "`{text}` is not a memory limit {why}: give a Kubernetes quantity such as 256Mi, 1Gi or 512M"
        ))
    };
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &text[digits.len()..];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 12 {
        return Err(invalid("(a whole number and a unit)"));
    }
    let scale: u64 = match unit {
        "" => 1,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return Err(invalid("(units: Ki, Mi, Gi, Ti, k, M, G, T)")),
    };
    let bytes = digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| invalid("(too large)"))?;
    if bytes < MEMORY_REQUEST_BYTES {
        return Err(invalid(&format!(
            "(below the container's request, {MEMORY_REQUEST})"
        )));
    }
    Ok(text.to_string())
}

/// A small request; the memory limit of `--memory-limit` (a sync compiles the catalog).
fn resources(o: &DeployOptions) -> ResourceRequirements {
    let quantity = |s: &str| Quantity(s.to_string());
    ResourceRequirements {
        requests: Some(
            [
                ("cpu".to_string(), quantity("50m")),
                ("memory".to_string(), quantity(MEMORY_REQUEST)),
            ]
            .into(),
        ),
        limits: Some([("memory".to_string(), quantity(&o.memory_limit))].into()),
        ..ResourceRequirements::default()
    }
}

/// No privilege escalation, no capability, a read-only root file system.
fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(strings(&["ALL"])),
            ..Capabilities::default()
        }),
        ..SecurityContext::default()
    }
}

/// Non-root, with the runtime's default seccomp profile.
fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(NONROOT),
        run_as_group: Some(NONROOT),
        fs_group: Some(NONROOT),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

fn container(o: &DeployOptions) -> Container {
    Container {
        name: "pitrix".into(),
        image: Some(o.image.clone()),
        args: Some(reconcile_args(o)),
        env: Some(env(o)),
        env_from: env_from(o),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: HTTP_PORT,
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        }]),
        liveness_probe: Some(http_probe("/healthz", 20)),
        readiness_probe: Some(http_probe("/readyz", 10)),
        resources: Some(resources(o)),
        security_context: Some(container_security_context()),
        volume_mounts: Some(volume_mounts(o)),
        ..Container::default()
    }
}

/// The replicas on different nodes when there are several (preferred: a one-node cluster
/// still runs both), so that losing a node does not lose every standby.
fn spread_over_nodes(o: &DeployOptions) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector(o)),
                            ..LabelSelector::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// The Pods' labels, and where Prometheus scrapes them.
fn pod_metadata(o: &DeployOptions) -> ObjectMeta {
    let port = HTTP_PORT.to_string();
    ObjectMeta {
        labels: Some(o.labels()),
        annotations: Some(
            [
                ("prometheus.io/scrape", "true"),
                ("prometheus.io/port", port.as_str()),
                ("prometheus.io/path", "/metrics"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ),
        ..ObjectMeta::default()
    }
}

fn pod_spec(o: &DeployOptions) -> PodSpec {
    PodSpec {
        service_account_name: Some(o.name.clone()),
        affinity: Some(spread_over_nodes(o)),
        // The sync in flight gets --shutdown-grace, then the lease is released.
        termination_grace_period_seconds: Some(termination_grace(&o.controller)),
        security_context: Some(pod_security_context()),
        containers: vec![container(o)],
        volumes: Some(volumes(o)),
        ..PodSpec::default()
    }
}

fn deployment(o: &DeployOptions) -> Deployment {
    Deployment {
        metadata: o.meta(&o.name, Some(&o.namespace)),
        spec: DeploymentSpec {
            replicas: Some(o.replicas),
            selector: LabelSelector {
                match_labels: Some(selector(o)),
                ..LabelSelector::default()
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                ..DeploymentStrategy::default()
            }),
            template: PodTemplateSpec {
                metadata: Some(pod_metadata(o)),
                spec: Some(pod_spec(o)),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

/// The manifests as a YAML stream.
pub fn to_yaml(manifests: &[Manifest]) -> String {
    let mut out = String::new();
    for m in manifests {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(m).unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn memory_limits_are_kubernetes_quantities_above_the_request() {
        for good in ["256Mi", "1Gi", "512M", "67108864", "2Gi"] {
            assert_eq!(parse_memory_limit(good).unwrap(), good);
        }
        for (bad, why) in [
            ("banana", "a whole number"),
            ("256MB", "units"),
            ("1.5Gi", "a whole number"),
            ("", "a whole number"),
            ("32Mi", "below the container's request"),
            ("99999999999999Ti", "whole number"),
        ] {
            let e = parse_memory_limit(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains("256Mi"), "{bad}: {e}");
        }
    }

    fn container_args(c: &serde_json::Value) -> Vec<&str> {
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect()
    }

    fn options(source: &str) -> DeployOptions {
        DeployOptions {
            source: source.into(),
            ..DeployOptions::default()
        }
    }

    #[test]
    fn least_privilege_and_a_deployment() {
        let o = DeployOptions {
            git_token_secret: Some("git-token".into()),
            ..options("https://git.example/catalog.git")
        };
        let yaml = to_yaml(&manifests(&o));
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
            .collect();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "Namespace",
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Role",
                "RoleBinding",
                "Deployment",
                "PodDisruptionBudget"
            ]
        );
        for d in &docs {
            assert!(d["apiVersion"].is_string(), "{d}");
        }
        // No wildcard, no secrets, never deleting namespaces.
        for d in docs.iter().filter(|d| d["rules"].is_array()) {
            for r in d["rules"].as_array().unwrap() {
                let text = r.to_string();
                assert!(!text.contains('*'), "{text}");
                assert!(!text.contains("secrets"), "{text}");
                if text.contains("namespaces") {
                    assert!(!text.contains("delete"), "{text}");
                }
            }
        }
        // ConfigMaps only in the storage namespace and pitrix's own.
        let cm_roles: Vec<&str> = docs
            .iter()
            .filter(|d| d["rules"].to_string().contains("configmaps"))
            .map(|d| d["metadata"]["namespace"].as_str().unwrap_or("<cluster>"))
            .collect();
        assert_eq!(cm_roles, ["extension-openpitrix", "pitrix-system"]);
        let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let c = &deploy["spec"]["template"]["spec"]["containers"][0];
        let args = container_args(c);
        assert_eq!(
            &args[..3],
            ["reconcile", "--source", "https://git.example/catalog.git"]
        );
        assert!(
            args.windows(2)
                .any(|w| w == ["--lease-name", "pitrix-reconcile"])
        );
        assert_eq!(
            c["env"][2]["valueFrom"]["secretKeyRef"]["name"],
            "git-token"
        );
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(!args.contains(&"--member-kubeconfig"));
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(deploy["spec"]["replicas"], 2);
        // Leases (leader election, apply locks) only in pitrix's own namespace.
        let own = docs
            .iter()
            .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "pitrix-reconcile")
            .unwrap();
        assert_eq!(own["metadata"]["namespace"], "pitrix-system");
        assert!(own["rules"].to_string().contains("\"leases\""));
        let cluster_wide = docs
            .iter()
            .filter(|d| d["kind"] == "ClusterRole")
            .map(|d| d["rules"].to_string())
            .collect::<String>();
        assert!(!cluster_wide.contains("\"leases\""));
    }

    fn documents(o: &DeployOptions) -> Vec<serde_json::Value> {
        serde_yaml::Deserializer::from_str(&to_yaml(&manifests(o)))
            .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
            .collect()
    }

    #[test]
    fn never_the_storage_namespace() {
        for o in [
            options("/srv/c"),
            DeployOptions {
                storage_namespace: "pkgs".into(),
                ..options("/srv/c")
            },
            DeployOptions {
                namespace: "extension-openpitrix".into(),
                ..options("/srv/c")
            },
        ] {
            let docs = documents(&o);
            let namespaces: Vec<&str> = docs
                .iter()
                .filter(|d| d["kind"] == "Namespace")
                .map(|d| d["metadata"]["name"].as_str().unwrap())
                .collect();
            let want: &[&str] = if o.namespace == o.storage_namespace {
                &[]
            } else {
                &["pitrix-system"]
            };
            assert_eq!(namespaces, want, "{o:?}");
            // Its packages' Role is still there: the namespace must exist first.
            assert!(docs.iter().any(|d| d["kind"] == "RoleBinding"
                && d["metadata"]["namespace"] == o.storage_namespace.as_str()));
        }
    }

    #[test]
    fn kubesphere_3_gets_its_own_kinds_and_the_s3_credentials() {
        let o = DeployOptions {
            kubesphere_v3: true,
            s3_credentials_secret: Some("pitrix-s3".into()),
            ..options("/srv/c")
        };
        let docs = documents(&o);
        let role = docs.iter().find(|d| d["kind"] == "ClusterRole").unwrap();
        let resources: Vec<&str> = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["resources"].as_array().unwrap())
            .map(|r| r.as_str().unwrap())
            .collect();
        assert!(resources.contains(&"helmapplications"), "{resources:?}");
        assert!(
            resources.contains(&"helmapplicationversions/status"),
            "{resources:?}"
        );
        assert!(
            !resources.contains(&"applications"),
            "4.x's kinds too: {resources:?}"
        );
        let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let env = &deploy["spec"]["template"]["spec"]["containers"][0]["env"];
        let from = |name: &str| {
            env.as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == name)
                .map(|e| e["valueFrom"]["secretKeyRef"].clone())
        };
        assert_eq!(
            from("PITRIX_S3_ACCESS_KEY_ID").unwrap(),
            serde_json::json!({"name": "pitrix-s3", "key": "accessKeyId"})
        );
        assert_eq!(
            from("PITRIX_S3_SECRET_ACCESS_KEY").unwrap(),
            serde_json::json!({"name": "pitrix-s3", "key": "secretAccessKey"})
        );
        // Without the option, no S3 variables; without the target, 4.x's kinds.
        let plain = documents(&options("/srv/c"));
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("PITRIX_S3_") && !text.contains("helmapplications"));
    }

    #[test]
    fn a_disruption_budget_and_replicas_on_different_nodes() {
        let o = options("/srv/c");
        let docs = documents(&o);
        let pdb = docs
            .iter()
            .find(|d| d["kind"] == "PodDisruptionBudget")
            .unwrap();
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert_eq!(pdb["metadata"]["namespace"], "pitrix-system");
        assert_eq!(pdb["spec"]["maxUnavailable"], 1);
        let deploy = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let pod_labels = &deploy["spec"]["template"]["metadata"]["labels"];
        let selects = |selector: &serde_json::Value| {
            let m = selector["matchLabels"].as_object().unwrap();
            !m.is_empty() && m.iter().all(|(k, v)| pod_labels[k] == *v)
        };
        assert!(selects(&pdb["spec"]["selector"]));
        assert_eq!(pdb["spec"]["selector"], deploy["spec"]["selector"]);
        let terms = &deploy["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
        assert_eq!(terms.as_array().unwrap().len(), 1, "{terms}");
        let term = &terms[0]["podAffinityTerm"];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert!(selects(&term["labelSelector"]));
    }

    #[test]
    fn controller_options_passed_on_to_reconcile() {
        let o = DeployOptions {
            controller: super::super::ControllerOptions {
                interval: Duration::from_secs(90),
                drift: super::super::DriftMode::Warn,
                log_format: super::super::log::LogFormat::Json,
                log_level: super::super::log::LogLevel::Debug,
                jitter: 0.3,
                resync: Duration::from_secs(3600),
                shutdown_grace: Duration::from_secs(45),
                lease_duration: Duration::from_secs(30),
                renew_deadline: Duration::from_secs(20),
                retry_period: Duration::from_secs(4),
                ..super::super::ControllerOptions::default()
            },
            ..options("/srv/c")
        };
        let d = serde_json::to_value(deployment(&o)).unwrap();
        let args = container_args(&d["spec"]["template"]["spec"]["containers"][0]);
        for pair in [
            ["--interval", "90s"],
            ["--drift", "warn"],
            ["--log-format", "json"],
            ["--log-level", "debug"],
            ["--jitter", "0.3"],
            ["--resync", "1h"],
            ["--shutdown-grace", "45s"],
            ["--lease-duration", "30s"],
            ["--renew-deadline", "20s"],
            ["--retry-period", "4s"],
        ] {
            assert!(args.windows(2).any(|w| w == pair), "{args:?}");
        }
        // The Pod waits for the sync's grace and the lease's release.
        assert_eq!(
            d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            55
        );
        assert!(o.controller.check(true).is_ok());
        let disordered = super::super::ControllerOptions {
            renew_deadline: Duration::from_secs(20),
            ..super::super::ControllerOptions::default()
        };
        assert!(
            disordered
                .check(true)
                .unwrap_err()
                .to_string()
                .contains("--retry-period < --renew-deadline < --lease-duration")
        );
        for (interval, text) in [
            ("1m", "1m"),
            ("1500ms", "1500ms"),
            ("2h", "2h"),
            ("1.5", "1500ms"),
        ] {
            let parsed = super::super::parse_interval(interval).unwrap();
            assert_eq!(super::super::format_duration(parsed), text);
        }
    }

    #[test]
    fn standalone_adds_executor_rights_in_release_namespaces_only() {
        let plain = to_yaml(&manifests(&options("/srv/c")));
        assert!(!plain.contains("jobs") && !plain.contains("applicationreleases/status"));
        let o = DeployOptions {
            release_namespaces: vec!["team-a".into(), "team-b".into()],
            ..options("/srv/c")
        };
        let yaml = to_yaml(&manifests(&o));
        assert!(yaml.contains("applicationreleases/status"));
        let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde_json::to_value(serde_yaml::Value::deserialize(d).unwrap()).unwrap())
            .collect();
        let job_roles: Vec<&str> = docs
            .iter()
            .filter(|d| d["kind"] == "Role" && d["rules"].to_string().contains("jobs"))
            .map(|d| d["metadata"]["namespace"].as_str().unwrap())
            .collect();
        assert_eq!(job_roles, ["team-a", "team-b"]);
    }

    use serde::Deserialize as _;

    #[test]
    fn member_clusters_through_a_mounted_kubeconfig() {
        let o = DeployOptions {
            member_kubeconfig_secret: Some("edge-kubeconfigs".into()),
            ..options("https://git.example/catalog.git")
        };
        let deploy = serde_json::to_value(deployment(&o)).unwrap();
        let pod = &deploy["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let args = container_args(c);
        assert!(
            args.windows(2).any(|w| w
                == [
                    "--member-kubeconfig",
                    "/etc/pitrix/member-kubeconfig/config"
                ]),
            "{args:?}"
        );
        // The host stays the in-cluster account: no --kubeconfig.
        assert!(!args.contains(&"--kubeconfig"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "member-kubeconfig")
            .unwrap();
        assert_eq!(volume["secret"]["secretName"], "edge-kubeconfigs");
        assert!(
            c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mountPath"] == "/etc/pitrix/member-kubeconfig" && m["readOnly"] == true)
        );
    }

    #[test]
    fn the_released_image_by_default_and_a_digest_as_given() {
        let o = options("/srv/c");
        let want = format!("ghcr.io/{IMAGE_OWNER}/pitrix:{}", env!("CARGO_PKG_VERSION"));
        assert_eq!(o.image, want);
        assert_eq!(default_image(), want);
        let d = serde_json::to_value(deployment(&o)).unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            want.as_str()
        );

        let pinned = format!(
            "ghcr.io/acme/pitrix@sha256:{}",
            "0123456789abcdef".repeat(4)
        );
        for image in [
            pinned.as_str(),
            "registry.example:5000/team/pitrix:v1.2.3",
            "localhost/pitrix",
            "pitrix",
            "ghcr.io/acme/pitrix:0.1.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            let o = DeployOptions {
                image: image_reference(image).unwrap(),
                ..options("/srv/c")
            };
            assert_eq!(o.image, image);
            let d = serde_json::to_value(deployment(&o)).unwrap();
            assert_eq!(
                d["spec"]["template"]["spec"]["containers"][0]["image"],
                image
            );
        }
        for bad in [
            "",
            "ghcr.io/acme/pitrix@sha256:abc",
            "ghcr.io/acme/pitrix@md5:0123456789abcdef0123456789abcdef",
            "ghcr.io/Acme/pitrix:1",
            "ghcr.io/acme/pitrix:",
            "ghcr.io//pitrix",
            "pitrix:1 2",
            "pitrix:-x",
        ] {
            let err = image_reference(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(
                err.to_string().contains("expected [REGISTRY/]NAME"),
                "{err}"
            );
        }
    }

    #[test]
    fn every_mount_has_its_volume_and_secrets_are_read_only() {
        let o = DeployOptions {
            ssh_secret: Some("git-ssh".into()),
            member_kubeconfig_secret: Some("members".into()),
            ..options("git@git.example:acme/catalog.git")
        };
        let volume_names: Vec<String> = volumes(&o).into_iter().map(|v| v.name).collect();
        let mount_names: Vec<String> = volume_mounts(&o).into_iter().map(|m| m.name).collect();
        assert_eq!(volume_names, mount_names);
        for (v, m) in volumes(&o).iter().zip(volume_mounts(&o)) {
            let secret = v.secret.as_ref();
            assert_eq!(secret.is_some(), m.read_only == Some(true), "{}", v.name);
            if let Some(s) = secret {
                assert_eq!(s.default_mode, Some(0o400));
                // What reconcile is told to read is under the Secret's mount.
                let args = reconcile_args(&o);
                assert!(
                    args.iter()
                        .any(|a| a.starts_with(&format!("{}/", m.mount_path))),
                    "{args:?}"
                );
            }
        }
        assert_eq!(
            secret_mounts(&o)
                .iter()
                .map(|s| s.secret)
                .collect::<Vec<_>>(),
            ["git-ssh", "members"]
        );
    }

    #[test]
    fn writable_volumes_for_all_reconcile_writes() {
        // The root file system is read-only: the git cache, the object store and the work
        // directory live under --cache-dir, temporary files under /tmp; both are emptyDirs.
        let o = options("/srv/c");
        let d = serde_json::to_value(deployment(&o)).unwrap();
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(pod["securityContext"]["runAsUser"], 65532);
        let args = container_args(c);
        let cache = args[args.iter().position(|a| *a == "--cache-dir").unwrap() + 1];
        for path in [cache, "/tmp"] {
            let m = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == path)
                .unwrap_or_else(|| panic!("nothing mounted at {path}"));
            assert_ne!(m["readOnly"], true);
            let v = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap();
            assert!(v["emptyDir"].is_object(), "{v}");
        }
    }
}
