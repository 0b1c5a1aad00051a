//! The `standalone` target: per Helm release, the executor Job + ConfigMap pair KubeSphere's
//! release controller would create (reference §5.4), so a cluster without KubeSphere's
//! controllers still installs the catalog. The Job is rendered from a minijinja template a
//! catalog may override (`templates/executor-job.yaml.j2`: the catalog's first, then the
//! built-in one), parsed into a typed Job and checked.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use md5::{Digest as _, Md5};

use super::meta::MetaFactory;
use crate::catalog::{Catalog, Release};
use crate::diagnostics::{Code, Diagnostic, Pos};
use crate::objects::{ApplicationReleaseSpec, labels};

pub const TEMPLATE_NAME: &str = "executor-job.yaml.j2";
const BUILTIN_TEMPLATE: &str = include_str!("../../templates/executor-job.yaml.j2");
/// The executor image of ks-core's defaults.
pub const DEFAULT_IMAGE: &str = "kubesphere/kubectl:v1.27.16";
/// The Secret (key `config`) holding the kubeconfig Helm uses in each target namespace.
pub const DEFAULT_KUBECONFIG_SECRET: &str = "pitrix-executor-kubeconfig";

/// The template in force and where it comes from.
pub fn template(catalog: &Catalog) -> (PathBuf, &str) {
    match catalog.templates.get(TEMPLATE_NAME) {
        Some((file, text)) => (file.clone(), text.as_str()),
        None => (
            PathBuf::from("templates").join(TEMPLATE_NAME),
            BUILTIN_TEMPLATE,
        ),
    }
}

/// `status.specHash` as KubeSphere computes it: MD5 of the spec's Go JSON (reference §5.6).
pub fn spec_hash(spec: &ApplicationReleaseSpec) -> String {
    let json = serde_json::to_string(spec).unwrap_or_default();
    Md5::digest(json.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// FNV-64a, hex: the executor's `config-hash` of the values bytes.
pub fn fnv64a(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:x}")
}

/// `helm-install-<release>-<first 6 of the spec hash>`: the same spec, the same Job.
pub fn install_job_name(release: &str, spec: &ApplicationReleaseSpec) -> String {
    format!("helm-install-{release}-{}", &spec_hash(spec)[..6])
}

/// The Job + ConfigMap pair of one release, or why the template does not give a valid Job.
pub fn executor(
    catalog: &Catalog,
    r: &Release,
    spec: &ApplicationReleaseSpec,
    chart: &[u8],
    meta: &MetaFactory,
) -> Result<(Job, ConfigMap), Diagnostic> {
    let name = install_job_name(&r.name, spec);
    let values = spec
        .values
        .as_ref()
        .map(|v| v.0.clone())
        .unwrap_or_default();
    let job_labels = BTreeMap::from([
        (labels::APP_RELEASE_NAME.to_string(), r.name.clone()),
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::EXECUTOR_JOB_NAME.to_string(), name.clone()),
    ]);
    let job_meta = meta.meta(
        &name,
        Some(&r.namespace),
        &job_labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        &[
            (labels::EXECUTOR_ACTION, "install"),
            (labels::EXECUTOR_CONFIG_HASH, &fnv64a(&values)),
            (labels::PITRIX_CLUSTER, &r.cluster),
        ],
    );
    let creator = r
        .spec
        .creator
        .as_ref()
        .map(|c| c.value.as_str())
        .unwrap_or_default();
    let (file, text) = template(catalog);
    let context = serde_json::json!({
        "job": {
            "name": name,
            "namespace": r.namespace,
            "labels": job_meta.labels,
            "annotations": job_meta.annotations,
        },
        "release": {
            "name": r.name,
            "namespace": r.namespace,
            "creator": creator,
            "has_values": !values.is_empty(),
        },
        "image": catalog.settings.catalog.executor_image.as_deref().unwrap_or(DEFAULT_IMAGE),
        "kubeconfig_secret": catalog
            .settings
            .catalog
            .executor_kubeconfig_secret
            .as_deref()
            .unwrap_or(DEFAULT_KUBECONFIG_SECRET),
    });
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let rendered = env.render_str(text, &context).map_err(|e| {
        Diagnostic::error(Code::Template, format!("{TEMPLATE_NAME}: {}", e.kind()))
            .in_file(&file)
            .at(Pos {
                line: e.line().unwrap_or(1) as u32,
                column: 1,
            })
            .hint(
                e.detail()
                    .unwrap_or("the executor Job template must render")
                    .to_string(),
            )
    })?;
    let job: Job = serde_yaml::from_str(&rendered).map_err(|e| {
        let line = e.location().map(|l| l.line() as u32).unwrap_or(1);
        Diagnostic::error(
            Code::Template,
            format!("{TEMPLATE_NAME} does not give a Job: {e}"),
        )
        .in_file(&file)
        .at(Pos { line, column: 1 })
        .hint("the rendered text must be one batch/v1 Job (the line is of the rendered output)")
    })?;
    check_job(&job, &name, &r.namespace).map_err(|why| {
        Diagnostic::error(
            Code::Template,
            format!("{TEMPLATE_NAME} gives an invalid Job: {why}"),
        )
        .in_file(&file)
        .hint("keep the name, namespace, labels and the helm container of the built-in template")
    })?;
    let mut job = job;
    job.metadata = job_meta.clone();

    let mut data = BTreeMap::from([
        ("values.yaml".to_string(), ByteString(values)),
        ("ca-helm.crt".to_string(), ByteString(Vec::new())),
    ]);
    data.insert(format!("{}.tgz", r.name), ByteString(chart.to_vec()));
    let config_map = ConfigMap {
        metadata: job_meta,
        binary_data: Some(data),
        ..ConfigMap::default()
    };
    Ok((job, config_map))
}

/// What apply needs to install and uninstall in `standalone` mode, kept with the output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Standalone {
    pub image: String,
    pub kubeconfig_secret: String,
}

impl Standalone {
    pub fn of(catalog: &Catalog) -> Option<Standalone> {
        (catalog.settings.target() == crate::catalog::Target::Standalone).then(|| Standalone {
            image: catalog
                .settings
                .catalog
                .executor_image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.into()),
            kubeconfig_secret: catalog
                .settings
                .catalog
                .executor_kubeconfig_secret
                .clone()
                .unwrap_or_else(|| DEFAULT_KUBECONFIG_SECRET.into()),
        })
    }

    /// The uninstall Job of a release removed from the catalog (reference §5.7), as JSON
    /// bodies for apply: its ConfigMap first, then the Job.
    pub fn uninstall(
        &self,
        catalog: &str,
        release: &str,
        namespace: &str,
        cluster: &str,
    ) -> [serde_json::Value; 2] {
        let tag: String = Md5::digest(format!("uninstall/{namespace}/{release}").as_bytes())
            .iter()
            .take(3)
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("helm-uninstall-{release}-{tag}");
        let job_labels = serde_json::json!({
            labels::APP_RELEASE_NAME: release,
            labels::MANAGED: "true",
            labels::MANAGED_BY: labels::MANAGED_BY_PITRIX,
            labels::PITRIX_CATALOG: catalog,
        });
        let command = format!(
            "cp -r /tmp/helm-executor-source/. /tmp/helm-executor && helm uninstall {release} --namespace {namespace} --kubeconfig kube.config --debug --wait"
        );
        let config_map = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": {
                labels::MANAGED_BY: labels::MANAGED_BY_PITRIX,
                labels::PITRIX_CATALOG: catalog,
            }, "annotations": {labels::PITRIX_CLUSTER: cluster}},
        });
        let job = serde_json::json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": job_labels,
                "annotations": {
                    labels::EXECUTOR_ACTION: "uninstall",
                    labels::PITRIX_CLUSTER: cluster,
                },
            },
            "spec": {
                "backoffLimit": 0,
                "template": {"spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "securityContext": {"runAsUser": 65534, "runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{
                        "name": "helm",
                        "image": self.image,
                        "imagePullPolicy": "IfNotPresent",
                        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
                        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "500m", "memory": "500Mi"}},
                        "env": [{"name": "HELM_CACHE_HOME", "value": "/tmp/helm-executor"}],
                        "workingDir": "/tmp/helm-executor",
                        "command": ["/bin/sh", "-c", command],
                        "volumeMounts": [
                            {"name": "source", "mountPath": "/tmp/helm-executor-source"},
                            {"name": "data", "mountPath": "/tmp/helm-executor"},
                        ],
                    }],
                    "volumes": [
                        {"name": "source", "projected": {"defaultMode": 0o755, "sources": [
                            {"configMap": {"name": name}},
                            {"secret": {"name": self.kubeconfig_secret, "items": [{"key": "config", "path": "kube.config"}]}},
                        ]}},
                        {"name": "data", "emptyDir": {}},
                    ],
                }},
            },
        });
        [config_map, job]
    }
}

/// What KubeSphere's executor relies on, whatever the template says.
fn check_job(job: &Job, name: &str, namespace: &str) -> Result<(), String> {
    if job.metadata.name.as_deref() != Some(name) {
        return Err(format!("its name must be `{name}` (job.name)"));
    }
    if job.metadata.namespace.as_deref() != Some(namespace) {
        return Err(format!(
            "its namespace must be `{namespace}` (job.namespace)"
        ));
    }
    let spec = job.spec.as_ref().ok_or("it has no spec")?;
    if spec.backoff_limit != Some(0) {
        return Err("backoffLimit must be 0: a failed Helm run is reported, not retried".into());
    }
    let pod = spec.template.spec.as_ref().ok_or("it has no pod spec")?;
    if pod.restart_policy.as_deref() != Some("Never") {
        return Err("restartPolicy must be Never".into());
    }
    let helm = pod
        .containers
        .iter()
        .find(|c| c.name == "helm")
        .ok_or("it has no `helm` container")?;
    if helm.image.as_deref().is_none_or(str::is_empty) {
        return Err("the helm container has no image".into());
    }
    let mounts_source = pod.volumes.iter().flatten().any(|v| v.name == "source");
    if !mounts_source {
        return Err("it does not mount the `source` volume (chart, values, kubeconfig)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    /// Reference §5.6's example, computed by KubeSphere's own code.
    #[test]
    fn spec_hash_matches_kubesphere() {
        let spec = ApplicationReleaseSpec {
            app_id: "upload-nginx-abcde".into(),
            app_version_id: "nginx-abcde-1.2.3".into(),
            values: Some(ByteString(b"replicaCount: 2\n".to_vec())),
            app_type: Some("helm".into()),
            icon: None,
        };
        let json = serde_json::to_string(&spec).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"replicaCount: 2\n");
        assert_eq!(
            json,
            format!(
                r#"{{"appID":"upload-nginx-abcde","appVersionID":"nginx-abcde-1.2.3","values":"{b64}","appType":"helm"}}"#
            )
        );
        assert_eq!(spec_hash(&spec), "566dfea536f96509fb6cc702e2c9f227");
    }

    #[test]
    fn fnv64a_known_values() {
        assert_eq!(fnv64a(b""), "cbf29ce484222325");
        assert_eq!(fnv64a(b"a"), "af63dc4c8601ec8c");
    }
}
