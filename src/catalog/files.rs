//! The catalog's YAML files, exactly as users write them. Unknown keys are errors.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::objects::ReviewState;
use crate::yaml::Spanned;

/// `categories/<name>.yaml`: a Category of the App Store.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix category")]
pub struct CategoryFile {
    /// Name shown in the console.
    pub display_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// An icon name from the KubeSphere console's icon set (e.g. `database`).
    pub icon: Option<Spanned<String>>,
}

/// `repos/<name>.yaml`: an external Helm repository that KubeSphere syncs.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix repo")]
pub struct RepoFile {
    /// Base URL: `https://…` (index.yaml is appended) or `oci://host/path`.
    pub url: Spanned<String>,
    /// How often KubeSphere syncs: a duration like `1h`, `30m`, `90s`, or `0` for never.
    pub sync_period: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// Workspace label of the Repo (default: the catalog's).
    pub workspace: Option<Spanned<String>>,
    /// Basic-auth credentials, named by environment variable and read at apply time.
    pub credentials: Option<Spanned<Credentials>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Credentials {
    /// Environment variable holding the user name.
    pub username_env: Option<Spanned<String>>,
    /// Environment variable holding the password.
    pub password_env: Option<Spanned<String>>,
}

/// Helm charts or plain manifests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppType {
    #[default]
    Helm,
    Yaml,
}

impl AppType {
    pub fn as_str(self) -> &'static str {
        match self {
            AppType::Helm => "helm",
            AppType::Yaml => "yaml",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Maintainer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub url: Option<String>,
}

/// `apps/<app>/app.yaml`: an app template and the desired review state of its versions.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix app")]
pub struct AppFile {
    pub display_name: Option<Spanned<String>>,
    pub description: Option<Spanned<String>>,
    /// One-line summary on the app card.
    pub abstraction: Option<Spanned<String>>,
    /// Home page URL.
    pub home: Option<Spanned<String>>,
    /// A category of the catalog (default: `kubesphere-app-uncategorized`).
    pub category: Option<Spanned<String>>,
    /// Icon file in the app directory: png, jpg or svg, ≤ 512 KiB, ≤ 512×512.
    pub icon: Option<Spanned<String>>,
    /// Screenshots: a file in the app directory, or `{file, id}` where the store already
    /// holds the screenshot under the attachment ID `id` (what `pitrix export` writes).
    #[serde(default)]
    pub screenshots: Vec<ScreenshotEntry>,
    /// `helm` (chart versions) or `yaml` (plain manifests).
    #[serde(rename = "type")]
    pub app_type: Option<Spanned<AppType>>,
    #[serde(default)]
    pub maintainers: Vec<Maintainer>,
    /// Workspace of the app (default: the catalog's).
    pub workspace: Option<Spanned<String>>,
    /// Desired state of the app (default `active`).
    pub state: Option<Spanned<ReviewState>>,
    /// Desired review state per version (a version not listed is `active`).
    #[serde(default)]
    pub versions: BTreeMap<Spanned<String>, VersionIntent>,
}

/// A screenshot of `app.yaml`: `screenshots/home.png`, or
/// `{file: screenshots/home.png, id: screenshot-att-k3x9p}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenshotEntry {
    /// The image file, relative to the app directory.
    pub file: Spanned<String>,
    /// The attachment ID the store keeps it under (KubeSphere 4: `<field>-att-<5 of a-z0-9>`,
    /// KubeSphere 3: `att-<id>`); none: an ID derived from the image.
    pub id: Option<Spanned<String>>,
}

/// A screenshot: an image file in the app directory (stored under an attachment ID derived
/// from it), or `{file, id}` (stored under the attachment ID the store already keeps it under).
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
enum ScreenshotForm {
    /// The image file, relative to the app directory.
    File(String),
    Stored(StoredScreenshot),
}

/// A screenshot the store already holds under an attachment ID.
#[derive(Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct StoredScreenshot {
    /// The image file, relative to the app directory.
    file: Spanned<String>,
    /// The attachment ID the store keeps it under (`<field>-att-<5 of a-z0-9>` on KubeSphere
    /// 4, `att-<id>` on 3.x), as `pitrix export` writes it: kept, so that adopting the store
    /// changes no `spec.attachments` and stores no copy.
    id: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for ScreenshotEntry {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A plain file name takes the entry's position; a mapping, its keys' own.
        struct Form(ScreenshotForm);
        impl<'de> Deserialize<'de> for Form {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Form;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str("a file name, or a mapping with `file` and `id`")
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Form, E> {
                        Ok(Form(ScreenshotForm::File(s.to_string())))
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        map: A,
                    ) -> Result<Form, A::Error> {
                        StoredScreenshot::deserialize(serde::de::value::MapAccessDeserializer::new(
                            map,
                        ))
                        .map(|s| Form(ScreenshotForm::Stored(s)))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let entry = Spanned::<Form>::deserialize(d)?;
        Ok(match entry.value.0 {
            ScreenshotForm::File(file) => ScreenshotEntry {
                file: Spanned::new(file, entry.pos),
                id: None,
            },
            ScreenshotForm::Stored(s) => ScreenshotEntry {
                file: s.file,
                id: s.id,
            },
        })
    }
}

impl Serialize for ScreenshotEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.id {
            None => self.file.serialize(s),
            Some(id) => StoredScreenshot {
                file: self.file.clone(),
                id: Some(id.clone()),
            }
            .serialize(s),
        }
    }
}

impl JsonSchema for ScreenshotEntry {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Screenshot".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        ScreenshotForm::json_schema(generator)
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionIntent {
    pub state: Option<Spanned<ReviewState>>,
    /// Review note, shown with the version.
    pub message: Option<Spanned<String>>,
}

/// `releases/<cluster>/<namespace>/<release>.yaml`: a desired ApplicationRelease.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "pitrix release")]
pub struct ReleaseFile {
    /// A catalog app, or `<repo>/<chart>` of a synced repo.
    pub app: Spanned<String>,
    /// The version to install; it must be active.
    pub version: Spanned<String>,
    /// Workspace label (default: the catalog's).
    pub workspace: Option<Spanned<String>>,
    /// Helm values, merged over the values files.
    pub values: Option<Spanned<serde_json::Map<String, serde_json::Value>>>,
    /// Values files, relative to the catalog root, merged in order.
    #[serde(default)]
    pub values_files: Vec<Spanned<String>>,
    /// User Helm impersonates (`--kube-as-user`); none means no impersonation.
    pub creator: Option<Spanned<String>>,
}

impl ReleaseFile {
    /// The creator, empty when none is named.
    pub fn creator(&self) -> &str {
        self.creator.as_ref().map_or("", |c| c.value.as_str())
    }
}
