//! The `standalone` target: per Helm release, the executor Job + ConfigMap pair KubeSphere's
//! release controller would create (reference §5.4), so a cluster without KubeSphere's
//! controllers still installs the catalog. The Job is rendered from a minijinja template a
//! catalog may override (`templates/executor-job.yaml.j2`: the catalog's first, then the
//! built-in one), parsed into a typed Job and checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ConfigMap;
use md5::{Digest as _, Md5};

use super::meta::MetaFactory;
use crate::catalog::{Catalog, Release};
use crate::diagnostics::{Code, Diagnostic, Pos};
use crate::objects::{ApplicationRelease, ApplicationReleaseSpec, labels};

pub const TEMPLATE_NAME: &str = "executor-job.yaml.j2";
const BUILTIN_TEMPLATE: &str = include_str!("../../templates/executor-job.yaml.j2");
/// The executor image of ks-core's defaults.
pub const DEFAULT_IMAGE: &str = "kubesphere/kubectl:v1.27.16";
/// The Secret (key `config`) holding the kubeconfig Helm uses in each target namespace.
pub const DEFAULT_KUBECONFIG_SECRET: &str = "pitrix-executor-kubeconfig";

/// `status.specHash` as KubeSphere computes it: MD5 of the spec's Go JSON (reference §5.6).
pub fn spec_hash(spec: &ApplicationReleaseSpec) -> String {
    let json = serde_json::to_string(spec).unwrap_or_default();
    crate::names::hex(&Md5::digest(json.as_bytes()))
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

/// What the executor works on: a Helm chart, or a YAML app's manifest stream.
#[derive(Debug, Clone)]
pub enum Payload<'a> {
    Chart(std::borrow::Cow<'a, [u8]>),
    Manifests,
}

/// What an executor Job does, as the template's `action` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Install,
    Uninstall,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Uninstall => "uninstall",
        }
    }
}

/// One executor Job to render: its identity and the release it acts on.
struct JobSpec<'a> {
    name: String,
    namespace: &'a str,
    release: &'a str,
    creator: &'a str,
    /// `helm` or `yaml`.
    app_type: &'a str,
    action: Action,
    /// Bytes of `values.yaml` (Helm) or `manifests.yaml` (YAML).
    values: &'a [u8],
    labels: Vec<(&'a str, &'a str)>,
    annotations: Vec<(&'a str, String)>,
}

/// The ConfigMap key of a YAML app's manifest stream.
const MANIFESTS_KEY: &str = "manifests.yaml";

/// What apply needs to install and uninstall in `standalone` mode, kept with the output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Standalone {
    pub image: String,
    pub kubeconfig_secret: String,
    /// The catalog's own executor template, if it has one: uninstall Jobs are rendered from
    /// it at apply time, when the release is gone from the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

impl Standalone {
    pub fn of(catalog: &Catalog) -> Option<Standalone> {
        if catalog.settings.target() != crate::catalog::Target::Standalone {
            return None;
        }
        let settings = &catalog.settings.catalog;
        Some(Standalone {
            image: settings
                .executor_image
                .clone()
                .unwrap_or_else(|| DEFAULT_IMAGE.into()),
            kubeconfig_secret: settings
                .executor_kubeconfig_secret
                .clone()
                .unwrap_or_else(|| DEFAULT_KUBECONFIG_SECRET.into()),
            template: catalog
                .templates
                .get(TEMPLATE_NAME)
                .map(|(_, text)| text.clone()),
        })
    }

    /// The Job + ConfigMap pair that installs one release, or why the template does not give a
    /// valid Job.
    pub fn install(
        &self,
        r: &Release,
        spec: &ApplicationReleaseSpec,
        payload: Payload,
        meta: &MetaFactory,
    ) -> Result<(Job, ConfigMap), Diagnostic> {
        let name = install_job_name(&r.name, spec);
        let values = spec
            .values
            .as_ref()
            .map(|v| v.0.as_slice())
            .unwrap_or_default();
        let creator = r.spec.creator();
        let job = JobSpec {
            name: name.clone(),
            namespace: &r.namespace,
            release: &r.name,
            creator,
            app_type: match payload {
                Payload::Chart(_) => "helm",
                Payload::Manifests => "yaml",
            },
            action: Action::Install,
            values,
            labels: vec![
                (labels::APP_RELEASE_NAME, &r.name),
                (labels::MANAGED, "true"),
                (labels::EXECUTOR_JOB_NAME, &name),
            ],
            annotations: vec![
                (labels::EXECUTOR_ACTION, "install".into()),
                (labels::EXECUTOR_CONFIG_HASH, fnv64a(values)),
                (labels::PITRIX_CLUSTER, r.cluster.clone()),
            ],
        };
        let (file, template) = self.template();
        let data = match payload {
            Payload::Chart(chart) => BTreeMap::from([
                ("values.yaml".to_string(), ByteString(values.to_vec())),
                ("ca-helm.crt".to_string(), ByteString(Vec::new())),
                (format!("{}.tgz", r.name), ByteString(chart.to_vec())),
            ]),
            Payload::Manifests => {
                BTreeMap::from([(MANIFESTS_KEY.to_string(), ByteString(values.to_vec()))])
            }
        };
        self.render(&file, template, &job, data, meta)
    }

    /// The uninstall Job + ConfigMap of a release removed from the catalog (reference §5.7),
    /// from the release object as it was applied (live, or compiled).
    pub fn uninstall(
        &self,
        catalog: &str,
        release: &ApplicationRelease,
    ) -> Result<(ConfigMap, Job), Diagnostic> {
        let name = release.metadata.name.as_deref().unwrap_or_default();
        let label = |key: &str, default: &'static str| {
            release
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .map(String::as_str)
                .unwrap_or(default)
        };
        let namespace = label(labels::NAMESPACE, labels::DEFAULT_NAMESPACE);
        let cluster = label(labels::CLUSTER, labels::DEFAULT_CLUSTER);
        let yaml = release
            .spec
            .app_type
            .as_deref()
            .is_some_and(|t| t != "helm");
        // A YAML app's objects are deleted from the manifests it was installed with.
        let manifests = match (yaml, &release.spec.values) {
            (true, Some(v)) => v.0.as_slice(),
            _ => &[],
        };
        let tag: String = Md5::digest(format!("uninstall/{namespace}/{name}").as_bytes())
            .iter()
            .take(3)
            .map(|b| format!("{b:02x}"))
            .collect();
        let job = JobSpec {
            name: format!("helm-uninstall-{name}-{tag}"),
            namespace,
            release: name,
            creator: "",
            app_type: if yaml { "yaml" } else { "helm" },
            action: Action::Uninstall,
            values: manifests,
            labels: vec![(labels::APP_RELEASE_NAME, name), (labels::MANAGED, "true")],
            annotations: vec![
                (labels::EXECUTOR_ACTION, "uninstall".into()),
                (labels::PITRIX_CLUSTER, cluster.to_string()),
            ],
        };
        let data = if yaml {
            BTreeMap::from([(MANIFESTS_KEY.to_string(), ByteString(manifests.to_vec()))])
        } else {
            BTreeMap::new()
        };
        let (file, template) = self.template();
        let (job, config_map) =
            self.render(&file, template, &job, data, &MetaFactory::new(catalog))?;
        Ok((config_map, job))
    }

    /// The template in force (the catalog's own, else the built-in one) and its file.
    fn template(&self) -> (PathBuf, &str) {
        let template = self.template.as_deref().unwrap_or(BUILTIN_TEMPLATE);
        (PathBuf::from("templates").join(TEMPLATE_NAME), template)
    }

    /// Renders the template for `job`, parses and checks the Job, and pairs it with its
    /// ConfigMap (same name, namespace and metadata; `data` in binaryData).
    fn render(
        &self,
        file: &Path,
        template: &str,
        job: &JobSpec,
        data: BTreeMap<String, ByteString>,
        meta: &MetaFactory,
    ) -> Result<(Job, ConfigMap), Diagnostic> {
        let annotations: Vec<(&str, &str)> = job
            .annotations
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let job_meta = meta.meta(&job.name, Some(job.namespace), &job.labels, &annotations);
        let context = serde_json::json!({
            "job": {
                "name": job.name,
                "namespace": job.namespace,
                "labels": job_meta.labels,
                "annotations": job_meta.annotations,
            },
            "action": job.action.as_str(),
            "release": {
                "name": job.release,
                "namespace": job.namespace,
                "creator": job.creator,
                "app_type": job.app_type,
                "has_values": !job.values.is_empty(),
            },
            "image": self.image,
            "kubeconfig_secret": self.kubeconfig_secret,
        });
        let limits = crate::template::EXECUTOR;
        let mut env = crate::template::environment(limits, &[template]);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let rendered =
            crate::template::render_str(&env, template, &context, limits).map_err(|e| {
                if let Some(budget) = crate::template::exceeded(&e) {
                    let message = e
                        .detail()
                        .map_or_else(|| budget.to_string(), str::to_string);
                    return Diagnostic::error(
                        Code::TemplateBudget,
                        format!("{TEMPLATE_NAME}: {message}"),
                    )
                    .in_file(file)
                    .at(Pos {
                        line: e.line().unwrap_or(1) as u32,
                        column: 1,
                    })
                    .hint(crate::template::HINT);
                }
                Diagnostic::error(Code::Template, format!("{TEMPLATE_NAME}: {}", e.kind()))
                    .in_file(file)
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
        let parsed: Job = serde_yaml::from_str(&rendered).map_err(|e| {
            let line = e.location().map(|l| l.line() as u32).unwrap_or(1);
            Diagnostic::error(
                Code::Template,
                format!(
                    "{TEMPLATE_NAME} does not give a Job ({} of {} `{}`): {e}",
                    job.action.as_str(),
                    job.app_type,
                    job.release
                ),
            )
            .in_file(file)
            .at(Pos { line, column: 1 })
            .hint(format!(
                "the rendered text must be one batch/v1 Job; line {line} of the rendered output is `{}`",
                rendered.lines().nth(line.saturating_sub(1) as usize).unwrap_or_default().trim()
            ))
        })?;
        check_job(&parsed, &job.name, job.namespace).map_err(|why| {
            Diagnostic::error(
                Code::Template,
                format!("{TEMPLATE_NAME} gives an invalid Job: {why}"),
            )
            .in_file(file)
            .hint(
                "keep the name, namespace, labels and the helm container of the built-in template",
            )
        })?;
        let mut parsed = parsed;
        parsed.metadata = job_meta.clone();
        let config_map = ConfigMap {
            metadata: job_meta,
            binary_data: (!data.is_empty()).then_some(data),
            ..ConfigMap::default()
        };
        Ok((parsed, config_map))
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
