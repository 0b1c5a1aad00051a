//! Tests of the typed objects and of the generated CRDs.

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Deserialize;
use serde_json::{Value, json};

use super::*;

fn crd_named(plural: &str) -> CustomResourceDefinition {
    crds()
        .into_iter()
        .find(|c| c.spec.names.plural == plural)
        .unwrap_or_else(|| panic!("no CRD for {plural}"))
}

fn root_schema(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .expect("CRD has a schema")
}

fn property<'a>(schema: &'a JSONSchemaProps, name: &str) -> &'a JSONSchemaProps {
    schema
        .properties
        .as_ref()
        .and_then(|p| p.get(name))
        .unwrap_or_else(|| panic!("no property {name}"))
}

fn required(schema: &JSONSchemaProps) -> Vec<&str> {
    schema
        .required
        .iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

fn time(rfc3339: &str) -> Time {
    Time(rfc3339.parse().expect("valid timestamp"))
}

// ---- CRD identity ----------------------------------------------------------------------------

#[test]
fn crds_come_in_fixed_order_with_reference_names() {
    // (kind, plural, singular, shortName, listKind), reference §1.0.
    let expected = [
        (
            "Category",
            "categories",
            "category",
            "appctg",
            "CategoryList",
        ),
        ("Repo", "repos", "repo", "repo", "RepoList"),
        (
            "Application",
            "applications",
            "application",
            "app",
            "ApplicationList",
        ),
        (
            "ApplicationVersion",
            "applicationversions",
            "applicationversion",
            "appver",
            "ApplicationVersionList",
        ),
        (
            "ApplicationRelease",
            "applicationreleases",
            "applicationrelease",
            "apprls",
            "ApplicationReleaseList",
        ),
    ];
    let crds = crds();
    assert_eq!(crds.len(), expected.len());
    for (crd, (kind, plural, singular, short, list_kind)) in crds.iter().zip(expected) {
        let names = &crd.spec.names;
        assert_eq!(names.kind, kind);
        assert_eq!(names.plural, plural);
        assert_eq!(names.singular.as_deref(), Some(singular));
        assert_eq!(names.short_names.as_deref(), Some(&[short.to_owned()][..]));
        assert_eq!(names.list_kind.as_deref(), Some(list_kind));
        assert_eq!(names.categories, None);
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some(format!("{plural}.{GROUP}").as_str())
        );
    }
}

#[test]
fn every_crd_is_cluster_scoped_v2_with_status_subresource() {
    for crd in crds() {
        let kind = &crd.spec.names.kind;
        assert_eq!(crd.spec.group, GROUP, "{kind}");
        assert_eq!(crd.spec.scope, "Cluster", "{kind}");
        assert_eq!(crd.spec.conversion, None, "{kind}");
        assert_eq!(crd.spec.versions.len(), 1, "{kind}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, VERSION, "{kind}");
        assert!(version.served && version.storage, "{kind}");
        let subresources = version.subresources.as_ref().expect("subresources");
        assert!(subresources.status.is_some(), "{kind}");
        assert!(subresources.scale.is_none(), "{kind}");
        assert_eq!(version.deprecated, None, "{kind}");
    }
    assert_eq!(API_VERSION, format!("{GROUP}/{VERSION}"));
}

#[test]
fn printer_columns_match_kubesphere() {
    const WS: &str = r".metadata.labels.kubesphere\.io/workspace";
    const REPO: &str = r".metadata.labels.application\.kubesphere\.io/repo-name";
    const APP: &str = r".metadata.labels.application\.kubesphere\.io/app-id";
    const APPVER: &str = r".metadata.labels.application\.kubesphere\.io/appversion-id";
    const CLUSTER: &str = r".metadata.labels.kubesphere\.io/cluster";
    const NS: &str = r".metadata.labels.kubesphere\.io/namespace";
    const APP_TYPE: &str = ".spec.appType";
    const STATE: &str = ".status.state";
    const AGE: (&str, &str, &str) = ("Age", "date", ".metadata.creationTimestamp");
    // (name, type, jsonPath) per plural.
    type Columns = Vec<(&'static str, &'static str, &'static str)>;
    let expected: [(&str, Columns); 5] = [
        (
            "categories",
            vec![("total", "string", ".status.total"), AGE],
        ),
        (
            "repos",
            vec![
                ("Workspace", "string", WS),
                ("url", "string", ".spec.url"),
                ("State", "string", STATE),
                AGE,
            ],
        ),
        (
            "applications",
            vec![
                ("repo", "string", REPO),
                ("workspace", "string", WS),
                ("appType", "string", APP_TYPE),
                ("State", "string", STATE),
                AGE,
            ],
        ),
        (
            "applicationversions",
            vec![
                ("repo", "string", REPO),
                ("workspace", "string", WS),
                ("app", "string", APP),
                ("appType", "string", APP_TYPE),
                ("State", "string", STATE),
                AGE,
            ],
        ),
        (
            "applicationreleases",
            vec![
                ("workspace", "string", WS),
                ("app", "string", APP),
                ("appversion", "string", APPVER),
                ("appType", "string", APP_TYPE),
                ("Cluster", "string", CLUSTER),
                ("Namespace", "string", NS),
                ("State", "string", STATE),
                AGE,
            ],
        ),
    ];
    for (plural, columns) in expected {
        let crd = crd_named(plural);
        let actual: Vec<(&str, &str, &str)> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.type_.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(actual, columns, "{plural}");
    }
}

// ---- Schemas ---------------------------------------------------------------------------------

#[test]
fn required_fields_follow_the_reference() {
    let cases = [
        ("categories", vec![], vec!["total"]),
        ("repos", vec!["syncPeriod", "url"], vec![]),
        ("applications", vec![], vec!["updateTime"]),
        ("applicationversions", vec!["versionName"], vec![]),
        (
            "applicationreleases",
            vec!["appID", "appVersionID"],
            vec!["state"],
        ),
    ];
    for (plural, spec_required, status_required) in cases {
        let crd = crd_named(plural);
        let root = root_schema(&crd);
        assert!(
            root.required.is_none(),
            "{plural}: nothing required at the root"
        );
        assert_eq!(required(property(root, "spec")), spec_required, "{plural}");
        assert_eq!(
            required(property(root, "status")),
            status_required,
            "{plural}"
        );
    }
}

/// Drops string-valued `description` keys, keeping properties that happen to be named
/// `description` (their value is a schema object).
fn without_descriptions(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, v| !(k == "description" && v.is_string()));
            map.values_mut().for_each(without_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(without_descriptions),
        _ => {}
    }
}

fn wrap_root(spec: Value, status: Value) -> Value {
    json!({
        "properties": {
            "apiVersion": { "type": "string" },
            "kind": { "type": "string" },
            "metadata": { "type": "object" },
            "spec": spec,
            "status": status,
        },
        "type": "object",
    })
}

/// The schemas of KubeSphere's CRDs with descriptions removed: categories, repos and
/// applicationreleases transcribed from `config/ks-core/charts/ks-crds/crds`, applications and
/// applicationversions derived from the Go types by controller-gen's rules.
#[test]
fn schemas_match_kubesphere_field_for_field() {
    let s = json!({ "type": "string" });
    let time = json!({ "format": "date-time", "type": "string" });
    let expected = [
        (
            "categories",
            wrap_root(
                json!({ "properties": { "icon": s }, "type": "object" }),
                json!({
                    "properties": { "total": { "type": "integer" } },
                    "required": ["total"],
                    "type": "object",
                }),
            ),
        ),
        (
            "repos",
            wrap_root(
                json!({
                    "properties": {
                        "credential": {
                            "properties": {
                                "caFile": s, "certFile": s,
                                "insecureSkipTLSVerify": { "type": "boolean" },
                                "keyFile": s, "password": s, "username": s,
                            },
                            "type": "object",
                        },
                        "description": s,
                        "syncPeriod": { "type": "integer" },
                        "url": s,
                    },
                    "required": ["syncPeriod", "url"],
                    "type": "object",
                }),
                json!({
                    "properties": { "lastUpdateTime": time, "state": s },
                    "type": "object",
                }),
            ),
        ),
        (
            "applications",
            wrap_root(
                json!({
                    "properties": {
                        "abstraction": s, "appHome": s, "appType": s,
                        "attachments": { "items": s, "type": "array" },
                        "icon": s,
                        "resources": {
                            "items": {
                                "properties": {
                                    "Desc": s, "Group": s, "Name": s,
                                    "ParentNode": s, "Resource": s, "Version": s,
                                },
                                "type": "object",
                            },
                            "type": "array",
                        },
                    },
                    "type": "object",
                }),
                json!({
                    "properties": { "state": s, "updateTime": time },
                    "required": ["updateTime"],
                    "type": "object",
                }),
            ),
        ),
        (
            "applicationversions",
            wrap_root(
                json!({
                    "properties": {
                        "appHome": s, "appType": s, "created": time, "digest": s, "icon": s,
                        "maintainer": {
                            "items": {
                                "properties": { "email": s, "name": s, "url": s },
                                "type": "object",
                            },
                            "type": "array",
                        },
                        "pullUrl": s, "versionName": s,
                    },
                    "required": ["versionName"],
                    "type": "object",
                }),
                json!({
                    "properties": { "message": s, "state": s, "updated": time, "userName": s },
                    "type": "object",
                }),
            ),
        ),
        (
            "applicationreleases",
            wrap_root(
                json!({
                    "properties": {
                        "appID": s, "appType": s, "appVersionID": s, "icon": s,
                        "values": { "format": "byte", "type": "string" },
                    },
                    "required": ["appID", "appVersionID"],
                    "type": "object",
                }),
                json!({
                    "properties": {
                        "installJobName": s, "lastUpdate": time, "message": s,
                        "realTimeResources": {
                            "items": { "format": "byte", "type": "string" },
                            "type": "array",
                        },
                        "specHash": s, "state": s, "uninstallJobName": s,
                    },
                    "required": ["state"],
                    "type": "object",
                }),
            ),
        ),
    ];
    for (plural, want) in expected {
        let crd = crd_named(plural);
        let mut got = serde_json::to_value(root_schema(&crd)).unwrap();
        without_descriptions(&mut got);
        assert_eq!(got, want, "{plural}");
    }
}

/// Asserts the Kubernetes structural-schema rules (and KubeSphere's plainness) on one node.
fn assert_structural(schema: &JSONSchemaProps, path: &str) {
    let has_type = schema.type_.is_some()
        || schema.x_kubernetes_int_or_string == Some(true)
        || schema.x_kubernetes_preserve_unknown_fields == Some(true);
    assert!(has_type, "{path}: no type");
    assert!(schema.ref_path.is_none(), "{path}: $ref");
    assert!(schema.schema.is_none(), "{path}: $schema");
    assert!(schema.definitions.is_none(), "{path}: definitions");
    assert!(schema.any_of.is_none(), "{path}: anyOf");
    assert!(schema.one_of.is_none(), "{path}: oneOf");
    assert!(schema.all_of.is_none(), "{path}: allOf");
    assert!(schema.not.is_none(), "{path}: not");
    assert!(schema.nullable.is_none(), "{path}: nullable");
    assert!(schema.default.is_none(), "{path}: default");
    assert!(schema.enum_.is_none(), "{path}: enum");
    assert!(schema.title.is_none(), "{path}: title");
    assert!(schema.additional_items.is_none(), "{path}: additionalItems");
    assert!(
        schema.additional_properties.is_none(),
        "{path}: additionalProperties"
    );
    // KubeSphere's App Store CRDs prune unknown fields everywhere.
    assert!(
        schema.x_kubernetes_preserve_unknown_fields.is_none(),
        "{path}: x-kubernetes-preserve-unknown-fields"
    );
    let object = schema.type_.as_deref() == Some("object");
    assert!(
        object || schema.properties.is_none(),
        "{path}: properties on non-object"
    );
    assert!(
        object || schema.required.is_none(),
        "{path}: required on non-object"
    );
    for name in schema.required.iter().flatten() {
        assert!(
            schema
                .properties
                .as_ref()
                .is_some_and(|p| p.contains_key(name)),
            "{path}: required {name} is not a property"
        );
    }
    for (name, property) in schema.properties.iter().flatten() {
        assert_structural(property, &format!("{path}.{name}"));
    }
    match &schema.items {
        Some(JSONSchemaPropsOrArray::Schema(items)) => {
            assert_eq!(schema.type_.as_deref(), Some("array"), "{path}: items");
            assert_structural(items, &format!("{path}[]"));
        }
        Some(JSONSchemaPropsOrArray::Schemas(_)) => panic!("{path}: tuple items"),
        None => assert_ne!(schema.type_.as_deref(), Some("array"), "{path}: no items"),
    }
    if let Some(JSONSchemaPropsOrBool::Schema(extra)) = &schema.additional_properties {
        assert_structural(extra, &format!("{path}{{}}"));
    }
}

#[test]
fn every_schema_is_structural() {
    for crd in crds() {
        let root = root_schema(&crd);
        assert_eq!(root.type_.as_deref(), Some("object"));
        assert_structural(root, &crd.spec.names.kind);
    }
}

#[test]
fn no_forbidden_keyword_anywhere_in_the_json() {
    fn walk(value: &Value, path: &str) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    // Property names are free; only keywords at schema level matter, and
                    // none of our property names collides with these.
                    assert!(
                        !matches!(
                            key.as_str(),
                            "$ref"
                                | "$schema"
                                | "$defs"
                                | "definitions"
                                | "anyOf"
                                | "oneOf"
                                | "allOf"
                                | "nullable"
                                | "default"
                                | "const"
                                | "x-kubernetes-preserve-unknown-fields"
                        ),
                        "{path}: {key}"
                    );
                    walk(child, &format!("{path}.{key}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, path)),
            _ => {}
        }
    }
    for crd in crds() {
        walk(&serde_json::to_value(&crd).unwrap(), &crd.spec.names.kind);
    }
}

// ---- YAML stream -----------------------------------------------------------------------------

#[test]
fn crds_yaml_round_trips_and_is_deterministic() {
    let yaml = crds_yaml();
    assert_eq!(yaml, crds_yaml());
    assert!(yaml.starts_with("---\napiVersion: apiextensions.k8s.io/v1\n"));
    assert_eq!(yaml.matches("\n---\n").count() + 1, 5);
    let parsed: Vec<CustomResourceDefinition> = serde_yaml::Deserializer::from_str(&yaml)
        .map(|doc| CustomResourceDefinition::deserialize(doc).expect("a CRD document"))
        .collect();
    assert_eq!(parsed, crds());
    // kubectl's escaped label path survives YAML (one backslash in the value).
    assert!(yaml.contains(r"jsonPath: .metadata.labels.kubesphere\.io/workspace"));
}

// ---- Objects ---------------------------------------------------------------------------------

#[test]
fn release_serialises_exact_id_keys_and_base64_values() {
    let mut release = ApplicationRelease::new(
        "nginx",
        ApplicationReleaseSpec {
            app_id: "nginx-x7k2q".into(),
            app_version_id: "nginx-x7k2q-1.2.3".into(),
            values: Some(ByteString(b"replicaCount: 2\n".to_vec())),
            app_type: Some(AppType::Helm.to_string()),
            icon: None,
        },
    );
    release
        .metadata
        .labels
        .get_or_insert_default()
        .insert(labels::APP_ID.into(), "nginx-x7k2q".into());
    let value = serde_json::to_value(&release).unwrap();
    assert_eq!(
        value,
        json!({
            "apiVersion": "application.kubesphere.io/v2",
            "kind": "ApplicationRelease",
            "metadata": {
                "labels": { "application.kubesphere.io/app-id": "nginx-x7k2q" },
                "name": "nginx",
            },
            "spec": {
                "appID": "nginx-x7k2q",
                "appVersionID": "nginx-x7k2q-1.2.3",
                "values": "cmVwbGljYUNvdW50OiAyCg==",
                "appType": "helm",
            },
        })
    );
    // Key order follows the Go type (the order KubeSphere hashes).
    let text = serde_json::to_string(&release.spec).unwrap();
    assert_eq!(
        text,
        r#"{"appID":"nginx-x7k2q","appVersionID":"nginx-x7k2q-1.2.3","values":"cmVwbGljYUNvdW50OiAyCg==","appType":"helm"}"#
    );
    assert!(!text.contains("appId") && !text.contains("appVersionId"));
    let back: ApplicationRelease = serde_json::from_value(value).unwrap();
    assert_eq!(back, release);
}

#[test]
fn repo_serialises_sync_period_zero() {
    let repo = Repo::new(
        "bitnami",
        RepoSpec {
            url: "https://charts.bitnami.com/bitnami".into(),
            sync_period: 0,
            ..RepoSpec::default()
        },
    );
    let yaml = serde_yaml::to_string(&repo).unwrap();
    assert!(yaml.contains("\n  syncPeriod: 0\n"), "{yaml}");
    assert_eq!(
        serde_json::to_value(&repo.spec).unwrap(),
        json!({ "url": "https://charts.bitnami.com/bitnami", "syncPeriod": 0 })
    );
    // A Repo without the key is not a valid Repo.
    assert!(serde_json::from_value::<RepoSpec>(json!({ "url": "https://x" })).is_err());
}

#[test]
fn repo_credential_keys_and_tri_state_tls() {
    let spec = RepoSpec {
        url: "oci://registry.example.com/charts".into(),
        credential: Some(RepoCredential {
            username: Some("u".into()),
            password: Some("p".into()),
            ca_file: Some("/etc/ca.pem".into()),
            insecure_skip_tls_verify: Some(false),
            ..RepoCredential::default()
        }),
        description: None,
        sync_period: 3600,
    };
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({
            "url": "oci://registry.example.com/charts",
            "credential": {
                "username": "u", "password": "p", "caFile": "/etc/ca.pem",
                "insecureSkipTLSVerify": false,
            },
            "syncPeriod": 3600,
        })
    );
}

#[test]
fn empty_objects_are_minimal() {
    let category = Category::new(labels::UNCATEGORIZED, CategorySpec::default());
    assert_eq!(
        serde_json::to_value(&category).unwrap(),
        json!({
            "apiVersion": "application.kubesphere.io/v2",
            "kind": "Category",
            "metadata": { "name": "kubesphere-app-uncategorized" },
            "spec": {},
        })
    );
    let app = Application::new("nginx-x7k2q", ApplicationSpec::default());
    assert_eq!(serde_json::to_value(&app.spec).unwrap(), json!({}));
    assert_eq!(
        serde_json::to_value(ApplicationReleaseStatus {
            state: ReleaseState::Active.to_string(),
            ..Default::default()
        })
        .unwrap(),
        json!({ "state": "active" })
    );
}

#[test]
fn statuses_serialise_rfc3339_and_review_states() {
    let at = time("2025-01-02T03:04:05Z");
    let status = ApplicationStatus::new(ReviewState::Active, at.clone());
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({ "state": "active", "updateTime": "2025-01-02T03:04:05Z" })
    );
    assert_eq!(status.review_state(), Some(Ok(ReviewState::Active)));

    let version = ApplicationVersionStatus::new(ReviewState::Draft, at);
    assert_eq!(
        serde_json::to_value(&version).unwrap(),
        json!({ "state": "draft", "updated": "2025-01-02T03:04:05Z" })
    );
    assert_eq!(version.review_state(), Some(Ok(ReviewState::Draft)));
    assert_eq!(ApplicationVersionStatus::default().review_state(), None);

    // updateTime is required on Application status, as in the CRD.
    assert!(serde_json::from_value::<ApplicationStatus>(json!({ "state": "draft" })).is_err());
}

#[test]
fn version_spec_uses_singular_maintainer_and_pull_url() {
    let spec = ApplicationVersionSpec {
        version_name: "1.2.3".into(),
        app_type: Some(AppType::Helm.to_string()),
        maintainer: vec![Maintainer {
            name: Some("Jane".into()),
            email: Some("jane@example.com".into()),
            url: None,
        }],
        pull_url: Some("https://charts.example.com/nginx-1.2.3.tgz".into()),
        ..ApplicationVersionSpec::default()
    };
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({
            "versionName": "1.2.3",
            "appType": "helm",
            "maintainer": [{ "name": "Jane", "email": "jane@example.com" }],
            "pullUrl": "https://charts.example.com/nginx-1.2.3.tgz",
        })
    );
}

#[test]
fn application_resources_use_capitalised_keys() {
    let spec = ApplicationSpec {
        resources: vec![GroupVersionResource {
            group: Some("example.com".into()),
            version: Some("v1".into()),
            resource: Some("widgets".into()),
            parent_node: Some("root".into()),
            ..GroupVersionResource::default()
        }],
        attachments: vec!["screenshot-att-ab1cd".into()],
        ..ApplicationSpec::default()
    };
    assert_eq!(
        serde_json::to_value(&spec).unwrap(),
        json!({
            "attachments": ["screenshot-att-ab1cd"],
            "resources": [{
                "Group": "example.com", "Version": "v1",
                "Resource": "widgets", "ParentNode": "root",
            }],
        })
    );
}

#[test]
fn reads_objects_as_kubesphere_writes_them() {
    // Go writes empty structs and zero times; make sure such objects still parse.
    let repo: Repo = serde_json::from_value(json!({
        "apiVersion": "application.kubesphere.io/v2",
        "kind": "Repo",
        "metadata": { "name": "bitnami", "labels": { "kubesphere.io/workspace": "system-workspace" } },
        "spec": { "url": "https://charts.bitnami.com/bitnami", "credential": {}, "syncPeriod": 0 },
        "status": { "lastUpdateTime": null, "state": "successful" },
    }))
    .unwrap();
    assert_eq!(repo.spec.credential, Some(RepoCredential::default()));
    let status = repo.status.expect("status");
    assert_eq!(status.last_update_time, None);
    assert_eq!(
        status.state.as_deref().map(str::parse),
        Some(Ok(RepoState::Successful))
    );

    let release: ApplicationRelease = serde_json::from_value(json!({
        "apiVersion": "application.kubesphere.io/v2",
        "kind": "ApplicationRelease",
        "metadata": { "name": "nginx" },
        "spec": { "appID": "a", "appVersionID": "a-1" },
        "status": { "state": "deployFailed", "lastUpdate": "2025-01-02T03:04:05Z" },
    }))
    .unwrap();
    let status = release.status.expect("status");
    assert_eq!(status.release_state(), Some(Ok(ReleaseState::DeployFailed)));
    assert_eq!(status.last_update, Some(time("2025-01-02T03:04:05Z")));
}
