//! GitOps engines (Argo CD, Flux) pointed at the compiled output: what they need beyond the
//! compiled objects to reach the end state `pitrix apply` reaches (issue #18).
//!
//! - **Review states.** No engine writes the status subresource, so the output carries them as
//!   a ConfigMap, `pitrix-status-<catalog>` in the storage namespace, and a Job running the
//!   pitrix image with `pitrix write-status` ([`write_status`]), which reads that ConfigMap
//!   through the API and writes the states (with the timestamps the CRDs require) the way
//!   `pitrix apply` does. Its ServiceAccount may read that ConfigMap and the catalog's apps and
//!   versions, and write their status, by name: nothing else.
//! - **Order and apply mode.** kustomization.yaml patches every kind with its Argo CD sync wave
//!   in KubeSphere's dependency order and `ServerSideApply=true` (every object: a package
//!   ConfigMap over ~190 KiB breaks client-side apply's last-applied annotation, and pitrix
//!   itself applies server-side), the storage namespace with `Prune=false`. The status Job is
//!   a `Sync` hook between the versions and the releases.
//! - **Flux.** `flux/store/` (everything but the releases) and `flux/releases/` (the releases
//!   only), two kustomizations over the same root, for two Flux Kustomizations, the second
//!   `dependsOn` the first (see examples/flux/).
//!
//! These engine-only objects are written beside the compiled ones (under `engine/`) and listed
//! in kustomization.yaml, never in inventory.json: `pitrix apply` neither applies nor prunes
//! them, and writes the same states itself, so switching between pitrix and an engine is a
//! no-op.

pub mod write_status;

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::compile::{Compiled, Object};
use crate::objects::labels;

pub use write_status::{WriteStatusOptions, write_status};

/// The name of every engine-only object of a catalog: `pitrix-status-<catalog>` (cut, with a
/// hash of the whole, to a DNS label: the Job's name is a label value).
pub fn status_name(catalog: &str) -> String {
    let name = format!("pitrix-status-{catalog}");
    if name.len() <= 63 {
        return name;
    }
    let digest = crate::emit::file_digest(catalog.as_bytes());
    format!(
        "{}-{}",
        name[..54].trim_end_matches('-'),
        &digest["sha256:".len().."sha256:".len() + 8]
    )
}

/// The ConfigMap key holding the desired review states: a JSON array of status bodies
/// (`apiVersion`, `kind`, `metadata.name`, `status`), versions first.
pub const STATES_KEY: &str = "states.json";

/// Label on every engine-only object: the catalog whose states it writes. Not the catalog's
/// own mark ([`labels::PITRIX_CATALOG`]), which would make them orphans to `pitrix apply`.
pub const STATUS_OF: &str = "pitrix.io/status-of";

/// Where the engine-only objects' files go, beside `objects/`.
pub const ENGINE_DIR: &str = "engine";

/// Argo CD's annotations.
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
pub const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
pub const HOOK: &str = "argocd.argoproj.io/hook";
pub const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
/// Flux: an immutable object (the Job) that changed is deleted and created again.
pub const FLUX_FORCE: &str = "kustomize.toolkit.fluxcd.io/force";
/// On the status Job's pod template: the digest of the states, so that a change of states is
/// a change of the Job (Flux re-creates it and so runs it again).
pub const STATES_DIGEST: &str = "pitrix.io/states-digest";

/// Argo CD sync waves, in KubeSphere's dependency order: the storage namespace, categories,
/// repos, ConfigMaps (packages, and the status ConfigMap with the writer's RBAC), apps,
/// versions, then the status Job (a Sync hook), then the releases, and last the `standalone`
/// executor Jobs.
pub const WAVES: &[(&str, i32)] = &[
    ("Namespace", 0),
    ("Category", 1),
    ("Repo", 2),
    ("ConfigMap", 3),
    ("ServiceAccount", 3),
    ("Role", 3),
    ("RoleBinding", 3),
    ("ClusterRole", 3),
    ("ClusterRoleBinding", 3),
    ("Application", 4),
    ("ApplicationVersion", 5),
    ("ApplicationRelease", 7),
    ("Job", 8),
];

/// The status Job's wave: after the versions, before the releases KubeSphere's webhook admits
/// only against a version in a good state.
pub const STATUS_JOB_WAVE: i32 = 6;

/// Options of the engine-only objects.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The image of the status Job: pitrix's release image by default (overridable in the
    /// engine too, with kustomize's `images`).
    pub image: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            image: crate::reconcile::deploy::default_image(),
        }
    }
}

impl EngineOptions {
    /// A compiled catalog's: its `statusImage`, else the default.
    pub fn of(compiled: &Compiled) -> Self {
        match &compiled.status_image {
            Some(image) => EngineOptions {
                image: image.clone(),
            },
            None => EngineOptions::default(),
        }
    }
}

/// The storage namespace of a compiled catalog: its Namespace object.
fn storage_namespace(compiled: &Compiled) -> Option<&str> {
    compiled.objects.iter().find_map(|o| match o {
        Object::Namespace(_) => Some(o.name()),
        _ => None,
    })
}

/// The engine-only objects of a compiled catalog, each with its path in the output: none
/// when it has no review states to write.
pub fn objects(compiled: &Compiled, opts: &EngineOptions) -> Vec<(PathBuf, Value)> {
    let Some(namespace) = storage_namespace(compiled) else {
        return Vec::new();
    };
    if compiled.status.is_empty() {
        return Vec::new();
    }
    let name = status_name(&compiled.catalog);
    let meta = |namespace: Option<&str>| {
        let mut m = json!({
            "name": name,
            "labels": {
                labels::MANAGED_BY: labels::MANAGED_BY_PITRIX,
                STATUS_OF: compiled.catalog,
            },
        });
        if let Some(ns) = namespace {
            m["namespace"] = ns.into();
        }
        m
    };
    let states: Vec<Value> = compiled.status.iter().map(|s| s.to_json()).collect();
    // One state a line: a PR diff of the output shows which changed.
    let mut text = String::from("[\n");
    for (i, s) in states.iter().enumerate() {
        text.push_str(&serde_json::to_string(s).expect("JSON serialises"));
        text.push_str(if i + 1 < states.len() { ",\n" } else { "\n" });
    }
    text.push_str("]\n");
    let states_digest = crate::emit::file_digest(text.as_bytes());
    let names_of = |kind: &str| -> Vec<&str> {
        let mut names: Vec<&str> = compiled
            .status
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.name.as_str())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let apps = names_of("Application");
    let versions = names_of("ApplicationVersion");
    let mut rules = Vec::new();
    for (plural, names) in [("applications", &apps), ("applicationversions", &versions)] {
        if names.is_empty() {
            continue;
        }
        rules.push(json!({
            "apiGroups": [crate::objects::GROUP],
            "resources": [plural],
            "resourceNames": names,
            "verbs": ["get"],
        }));
        rules.push(json!({
            "apiGroups": [crate::objects::GROUP],
            "resources": [format!("{plural}/status")],
            "resourceNames": names,
            "verbs": ["get", "patch", "update"],
        }));
    }
    let subject = json!([{"kind": "ServiceAccount", "name": name, "namespace": namespace}]);
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(Some(namespace)),
        "data": {STATES_KEY: text},
    });
    let service_account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(Some(namespace)),
    });
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(Some(namespace)),
        "rules": [{
            "apiGroups": [""],
            "resources": ["configmaps"],
            "resourceNames": [name],
            "verbs": ["get"],
        }],
    });
    let role_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(Some(namespace)),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": subject,
    });
    let cluster_role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(None),
        "rules": rules,
    });
    let cluster_role_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(None),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
        "subjects": subject,
    });
    let mut job_meta = meta(Some(namespace));
    job_meta["annotations"] = json!({
        HOOK: "Sync",
        HOOK_DELETE_POLICY: "BeforeHookCreation",
        SYNC_WAVE: STATUS_JOB_WAVE.to_string(),
        SYNC_OPTIONS: "ServerSideApply=true",
        FLUX_FORCE: "enabled",
    });
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": job_meta,
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {
                    "labels": {
                        labels::MANAGED_BY: labels::MANAGED_BY_PITRIX,
                        STATUS_OF: compiled.catalog,
                    },
                    "annotations": {STATES_DIGEST: states_digest},
                },
                "spec": {
                    "serviceAccountName": name,
                    "restartPolicy": "Never",
                    "securityContext": {
                        "runAsNonRoot": true,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [{
                        "name": "write-status",
                        "image": opts.image,
                        "args": job_args(&compiled.catalog, namespace, &name),
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "32Mi"},
                            "limits": {"memory": "128Mi"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }],
                },
            },
        },
    });
    [
        config_map,
        service_account,
        role,
        role_binding,
        cluster_role,
        cluster_role_binding,
        job,
    ]
    .into_iter()
    .map(|o| (path(&o), o))
    .collect()
}

/// The status Job's arguments (the image's entrypoint is pitrix).
pub fn job_args(catalog: &str, namespace: &str, config_map: &str) -> Vec<String> {
    [
        "write-status",
        "--catalog",
        catalog,
        "--namespace",
        namespace,
        "--config-map",
        config_map,
    ]
    .map(str::to_string)
    .to_vec()
}

/// `engine/<kind, lowercase>/[<namespace>/]<name>.yaml`.
fn path(o: &Value) -> PathBuf {
    let kind = o["kind"].as_str().unwrap_or_default().to_ascii_lowercase();
    let mut p = PathBuf::from(ENGINE_DIR).join(kind);
    if let Some(ns) = o.pointer("/metadata/namespace").and_then(Value::as_str) {
        p.push(ns);
    }
    p.join(format!(
        "{}.yaml",
        o.pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    ))
}

/// The kustomization patches that give every kind its sync wave (strategic merge patches by
/// kind: kustomize ignores one that matches nothing), and every object `ServerSideApply=true`
/// but the borrowed ones (the storage namespace, KubeSphere's built-in category), which compile
/// with their own sync options (`Prune=false,ServerSideApply=true`): a patch must not change
/// an annotation pitrix applies, or pitrix and the engine would fight over it.
pub fn argocd_patches() -> Vec<Value> {
    let mut patches: Vec<Value> = WAVES
        .iter()
        .map(|(kind, wave)| {
            let api_version = match *kind {
                "Namespace" | "ConfigMap" | "ServiceAccount" => "v1",
                "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding" => {
                    "rbac.authorization.k8s.io/v1"
                }
                "Job" => "batch/v1",
                _ => crate::objects::API_VERSION,
            };
            let patch = format!(
                "apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: any\n  annotations:\n    {SYNC_WAVE}: \"{wave}\"\n"
            );
            let mut target = json!({"kind": kind});
            if *kind == "Job" {
                // The status Job has its own wave, as a hook.
                target["labelSelector"] = format!("!{STATUS_OF}").into();
            }
            json!({"target": target, "patch": patch})
        })
        .collect();
    let options = format!(
        "apiVersion: v1\nkind: any\nmetadata:\n  name: any\n  annotations:\n    {SYNC_OPTIONS}: ServerSideApply=true\n"
    );
    patches.push(json!({
        "target": {"annotationSelector": format!("!{}", labels::PITRIX_PRUNE)},
        "patch": options,
    }));
    patches
}

/// Flux's two kustomizations, `flux/store/` (everything but the releases, with the status
/// Job) and `flux/releases/` (the releases), from the host's kustomization resources. They
/// name the files of the root (`../../objects/…`): Flux builds with kustomize's load
/// restrictions off, inside the source's own tree.
pub fn flux_kustomizations(resources: &[String]) -> Vec<(PathBuf, Value)> {
    let (releases, store): (Vec<&String>, Vec<&String>) = resources
        .iter()
        .partition(|r| r.starts_with("objects/applicationreleases/"));
    let kustomization = |files: Vec<&String>| {
        json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": files.iter().map(|f| format!("../../{f}")).collect::<Vec<_>>(),
        })
    };
    vec![
        (
            PathBuf::from("flux/releases/kustomization.yaml"),
            kustomization(releases),
        ),
        (
            PathBuf::from("flux/store/kustomization.yaml"),
            kustomization(store),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn example() -> Compiled {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/catalog");
        crate::pipeline::build(&root)
            .expect("the example compiles")
            .0
    }

    #[test]
    fn the_status_job_runs_the_catalog_s_status_image() {
        let mut compiled = example();
        let image = |c: &Compiled| {
            let objects = objects(c, &EngineOptions::of(c));
            let job = &objects.iter().find(|(_, o)| o["kind"] == "Job").unwrap().1;
            job["spec"]["template"]["spec"]["containers"][0]["image"].clone()
        };
        assert_eq!(
            image(&compiled),
            json!(crate::reconcile::deploy::default_image())
        );
        compiled.status_image =
            Some("registry.acme.example/pitrix@sha256:".to_string() + &"a".repeat(64));
        assert_eq!(
            image(&compiled),
            json!(format!(
                "registry.acme.example/pitrix@sha256:{}",
                "a".repeat(64)
            ))
        );
    }

    #[test]
    fn the_status_writer_may_touch_exactly_what_it_writes() {
        let compiled = example();
        let objects = objects(&compiled, &EngineOptions::default());
        let of = |kind: &str| &objects.iter().find(|(_, o)| o["kind"] == kind).unwrap().1;
        // The ConfigMap it reads, by name, read only.
        assert_eq!(
            of("Role")["rules"],
            json!([{"apiGroups": [""], "resources": ["configmaps"],
                    "resourceNames": ["pitrix-status-acme-store"], "verbs": ["get"]}])
        );
        // The apps and versions with a state, by name: read them, write their status.
        let names = |kind: &str| -> Vec<String> {
            compiled
                .status
                .iter()
                .filter(|s| s.kind == kind)
                .map(|s| s.name.clone())
                .collect()
        };
        let mut want = Vec::new();
        for (plural, kind) in [
            ("applications", "Application"),
            ("applicationversions", "ApplicationVersion"),
        ] {
            let mut names = names(kind);
            names.sort();
            want.push(
                json!({"apiGroups": [crate::objects::GROUP], "resources": [plural],
                             "resourceNames": names, "verbs": ["get"]}),
            );
            want.push(json!({"apiGroups": [crate::objects::GROUP],
                             "resources": [format!("{plural}/status")],
                             "resourceNames": names, "verbs": ["get", "patch", "update"]}));
        }
        assert_eq!(of("ClusterRole")["rules"], json!(want));
        // Bound to its own ServiceAccount only, which its Job runs as.
        for binding in ["RoleBinding", "ClusterRoleBinding"] {
            assert_eq!(
                of(binding)["subjects"],
                json!([{"kind": "ServiceAccount", "name": "pitrix-status-acme-store",
                        "namespace": "extension-openpitrix"}])
            );
        }
        let pod = &of("Job")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], "pitrix-status-acme-store");
        assert_eq!(
            pod["containers"][0]["args"],
            json!(job_args(
                "acme-store",
                "extension-openpitrix",
                "pitrix-status-acme-store"
            ))
        );
        // The states, versions first, as pitrix apply writes them.
        let states: Vec<Value> =
            serde_json::from_str(of("ConfigMap")["data"][STATES_KEY].as_str().unwrap()).unwrap();
        let intents: Vec<Value> = compiled.status.iter().map(|s| s.to_json()).collect();
        assert_eq!(states, intents);
    }

    #[test]
    fn engine_objects_are_in_kustomization_yaml_and_not_in_the_inventory() {
        let files = crate::emit::render(&example());
        let text = |name: &str| {
            let (_, bytes) = files.iter().find(|(p, _)| p == Path::new(name)).unwrap();
            String::from_utf8(bytes.clone()).unwrap()
        };
        let engine: Vec<String> = files
            .iter()
            .filter(|(p, _)| p.starts_with(ENGINE_DIR))
            .map(|(p, _)| p.to_string_lossy().into_owned())
            .collect();
        assert_eq!(engine.len(), 7, "{engine:?}");
        let kustomization = text("kustomization.yaml");
        let inventory = text("inventory.json");
        let store = text("flux/store/kustomization.yaml");
        for path in &engine {
            assert!(kustomization.contains(path.as_str()), "{path}");
            assert!(store.contains(path.as_str()), "{path}");
            assert!(!inventory.contains(path.as_str()), "{path}");
        }
        let releases = text("flux/releases/kustomization.yaml");
        assert!(releases.contains("objects/applicationreleases/storefront.yaml"));
        assert!(!store.contains("applicationreleases"));
    }

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(status_name("shop"), "pitrix-status-shop");
        let long = "a".repeat(63);
        let name = status_name(&long);
        assert!(name.len() <= 63, "{name}");
        assert_ne!(status_name(&long), status_name(&"a".repeat(62)));
    }
}

#[cfg(test)]
mod health_tests;
