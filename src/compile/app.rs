//! An app of the catalog: its Application, one ApplicationVersion and storage ConfigMap per
//! version, attachment ConfigMaps for screenshots, and the desired review states.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;
use sha2::{Digest as _, Sha256};

use super::meta::MetaFactory;
use super::store::text;
use super::{Object, Part, StatusIntent};
use crate::catalog::{App, Catalog, ChartMeta, Maintainer, Version};
use crate::error::Error;
use crate::names;
use crate::objects::{self, ApplicationSpec, ApplicationVersionSpec, ReviewState, labels};
use crate::yaml::Spanned;

/// The version whose chart speaks for the app where app.yaml is silent: the newest active
/// one, else the newest.
fn latest(app: &App) -> Option<&Version> {
    app.versions
        .iter()
        .rev()
        .find(|v| app.version_state(&v.name) == ReviewState::Active)
        .or(app.versions.last())
}

fn maintainers(list: &[Maintainer]) -> Vec<objects::Maintainer> {
    list.iter()
        .map(|m| objects::Maintainer {
            name: m.name.clone(),
            email: m.email.clone(),
            url: m.url.clone(),
        })
        .collect()
}

/// An attachment's ID: KubeSphere's `<field>-att-<5>` shape, with the 5 characters taken from
/// the content so that it is stable.
pub fn attachment_id(app: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex = crate::names::hex(&digest[..3]);
    format!("{app}-att-{}", &hex[..5])
}

/// A package or attachment in package storage: a ConfigMap, whose `binaryData.BinaryKey`
/// KubeSphere reads by name (§4) — or, with `[storage.s3]`, the S3 object of that name, which
/// KubeSphere 4 reads first (`pkg/simple/client/application/store.go`).
fn stored(catalog: &Catalog, meta: &MetaFactory, name: &str, bytes: &[u8]) -> Object {
    if catalog.settings.packages_in_s3() {
        return Object::Stored(super::Stored {
            metadata: meta.meta(name, None, &[], &[]),
            bytes: bytes.to_vec(),
        });
    }
    Object::ConfigMap(ConfigMap {
        metadata: meta.meta(name, Some(catalog.settings.storage_namespace()), &[], &[]),
        binary_data: Some(BTreeMap::from([(
            labels::STORAGE_KEY.to_string(),
            ByteString(bytes.to_vec()),
        )])),
        immutable: Some(true),
        ..ConfigMap::default()
    })
}

pub fn compile_app(catalog: &Catalog, app: &App, meta: &MetaFactory) -> Result<Part, Error> {
    let mut objects = Vec::new();
    let mut status = Vec::new();
    let latest = latest(app);
    let chart = latest.and_then(|v| v.chart.as_ref());
    let chart_text = |f: fn(&ChartMeta) -> &Option<Spanned<String>>| chart.and_then(|c| text(f(c)));

    let app_type = app.app_type().as_str();
    let workspace = catalog.workspace_of(&app.spec.workspace);
    let category = app
        .spec
        .category
        .as_ref()
        .map(|c| c.value.as_str())
        .unwrap_or(labels::UNCATEGORIZED);
    let display_name = text(&app.spec.display_name).unwrap_or_else(|| app.name.clone());
    let description = text(&app.spec.description).or_else(|| chart_text(|c| &c.description));
    let home = text(&app.spec.home).or_else(|| chart_text(|c| &c.home));
    let app_maintainers = if app.spec.maintainers.is_empty() {
        chart
            .map(|c| maintainers(&c.maintainers))
            .unwrap_or_default()
    } else {
        maintainers(&app.spec.maintainers)
    };
    let first_maintainer = app_maintainers
        .first()
        .and_then(|m| m.name.clone())
        .unwrap_or_default();
    // The console shows raw base64 image bytes; a chart's icon URL is the fallback.
    let icon = app
        .icon
        .as_ref()
        .map(|i| base64::engine::general_purpose::STANDARD.encode(&i.bytes))
        .or_else(|| chart_text(|c| &c.icon));

    let mut attachments = Vec::new();
    for shot in &app.screenshots {
        let id = shot.id(|bytes| attachment_id(&app.name, bytes));
        objects.push(stored(catalog, meta, &id, &shot.bytes));
        attachments.push(id);
    }

    let latest_name = latest.map(|v| v.name.clone()).unwrap_or_default();
    let mut application = objects::Application::new(
        &app.name,
        ApplicationSpec {
            app_home: home.clone(),
            app_type: Some(app_type.to_string()),
            icon,
            abstraction: text(&app.spec.abstraction).or_else(|| description.clone()),
            attachments,
            resources: Vec::new(),
        },
    );
    application.metadata = meta.meta(
        &app.name,
        None,
        &[
            (labels::REPO_NAME, labels::UPLOAD_REPO),
            (labels::APP_TYPE, app_type),
            (labels::APP_CATEGORY_NAME, category),
            (labels::WORKSPACE, workspace),
        ],
        &[
            (labels::ALIAS_NAME, &display_name),
            (
                labels::DESCRIPTION,
                description.as_deref().unwrap_or_default(),
            ),
            (labels::LATEST_APP_VERSION, &latest_name),
            (labels::APP_MAINTAINERS, &first_maintainer),
        ],
    );
    objects.push(Object::Application(application));
    status.push(StatusIntent {
        kind: "Application",
        name: app.name.clone(),
        state: app.state(),
        message: None,
    });

    for v in &app.versions {
        let id = names::version_id(&app.name, &v.name);
        let vchart = v.chart.as_ref();
        let vtext = |f: fn(&ChartMeta) -> &Option<Spanned<String>>| vchart.and_then(|c| text(f(c)));
        let version_maintainers = match vchart {
            Some(c) if !c.maintainers.is_empty() => maintainers(&c.maintainers),
            _ => app_maintainers.clone(),
        };
        let version_description = vtext(|c| &c.description).or_else(|| description.clone());
        let mut version = objects::ApplicationVersion::new(
            &id,
            ApplicationVersionSpec {
                version_name: v.name.clone(),
                app_home: vtext(|c| &c.home).or_else(|| home.clone()),
                icon: vtext(|c| &c.icon).filter(|i| i.starts_with("http")),
                created: None,
                digest: Some(v.digest.clone()),
                app_type: Some(app_type.to_string()),
                maintainer: version_maintainers.clone(),
                pull_url: None,
            },
        );
        version.metadata = meta.meta(
            &id,
            None,
            &[
                (labels::REPO_NAME, labels::UPLOAD_REPO),
                (labels::APP_ID, &app.name),
                (labels::APP_TYPE, app_type),
                (labels::WORKSPACE, workspace),
            ],
            &[
                (labels::ALIAS_NAME, &display_name),
                (
                    labels::DESCRIPTION,
                    version_description.as_deref().unwrap_or_default(),
                ),
                (
                    labels::APP_MAINTAINERS,
                    version_maintainers
                        .first()
                        .and_then(|m| m.name.as_deref())
                        .unwrap_or_default(),
                ),
            ],
        );
        objects.push(Object::ApplicationVersion(version));
        objects.push(stored(catalog, meta, &id, &v.package.bytes()?));
        let intent = app.spec.versions.get(v.name.as_str());
        status.push(StatusIntent {
            kind: "ApplicationVersion",
            name: id,
            state: app.version_state(&v.name),
            message: intent.and_then(|i| text(&i.message)),
        });
    }
    Ok(Part { objects, status })
}
