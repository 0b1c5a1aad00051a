//! KubeSphere 3.x's own rules (`target = "kubesphere-v3"`, docs/kubesphere-v3.md §3.2, §4, §7):
//! what its controllers and console need of names, and what 3.x cannot hold at all. pitrix
//! writes the objects directly, so the uniqueness the 3.x REST API enforces is checked here.

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::{AppRef, AppType, Catalog, SETTINGS_FILE, Target};
use crate::compile::v3::{app_id, category_id};
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::names::MAX_LABEL_VALUE;
use crate::objects::v1alpha1::STORE_SUFFIX;
use crate::yaml;

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    if catalog.settings.target() != Target::KubesphereV3 {
        return;
    }
    let v3 = |message: String| Diagnostic::error(Code::KubesphereV3, message);
    if catalog.settings.storage.s3.is_none() {
        diags.push(
            v3("target `kubesphere-v3` keeps packages and images in S3, and pitrix.toml has no [storage.s3]".into())
                .in_file(SETTINGS_FILE)
                .hint("add [storage.s3] with `endpoint` and `bucket` — KubeSphere's `openpitrix.s3` (MinIO in a default 3.x install: endpoint = \"http://minio.kubesphere-system.svc:9000\", bucket = \"app-store\")"),
        );
    }

    let mut display_names: BTreeMap<(&str, String), &Path> = BTreeMap::new();
    for app in &catalog.apps {
        if app.app_type() != AppType::Helm {
            diags.push(
                v3(format!(
                    "app `{}` is a YAML app; KubeSphere 3.x's App Store holds Helm charts only",
                    app.name
                ))
                .in_file(&app.file)
                .at_opt(app.spec.app_type.as_ref().map(|t| t.pos))
                .hint("package the manifests as a chart, or use target `kubesphere` (4.x)"),
            );
        }
        let id = app_id(&app.name);
        if id.len() + STORE_SUFFIX.len() > MAX_LABEL_VALUE {
            diags.push(
                v3(format!(
                    "app `{}` is {} characters; KubeSphere 3.x names its App Store copy `{id}{STORE_SUFFIX}`, which must fit {MAX_LABEL_VALUE}",
                    app.name,
                    app.name.len()
                ))
                .in_file(&app.file)
                .hint(format!(
                    "shorten the app directory name to at most {} characters",
                    MAX_LABEL_VALUE - STORE_SUFFIX.len() - (id.len() - app.name.len())
                )),
            );
        }
        if app.name.ends_with(STORE_SUFFIX) {
            diags.push(
                v3(format!("app `{}` ends in `{STORE_SUFFIX}`, which KubeSphere 3.x takes for an App Store copy", app.name))
                    .in_file(&app.file)
                    .hint("rename the app directory"),
            );
        }
        // The console shows apps by this name; 3.x's REST API keeps it unique per workspace.
        let display = Some(yaml::text(&app.spec.display_name))
            .filter(|d| !d.is_empty())
            .unwrap_or(&app.name)
            .to_string();
        let workspace = catalog.workspace_of(&app.spec.workspace);
        if let Some(first) = display_names.insert((workspace, display.clone()), &app.file) {
            diags.push(
                v3(format!("two apps of workspace `{workspace}` are both named `{display}`; KubeSphere 3.x keeps app names unique per workspace"))
                    .in_file(&app.file)
                    .at_opt(app.spec.display_name.as_ref().map(|d| d.pos))
                    .hint(format!("the other is {}; give one a different displayName", first.display())),
            );
        }
    }

    let mut category_names: BTreeMap<String, &Path> = BTreeMap::new();
    for c in &catalog.categories {
        let id = category_id(&c.name);
        if id.len() > MAX_LABEL_VALUE {
            diags.push(
                v3(format!(
                    "category `{}` makes the id `{id}`, over {MAX_LABEL_VALUE} characters",
                    c.name
                ))
                .in_file(&c.file)
                .hint("shorten the category file name"),
            );
        }
        let display = Some(yaml::text(&c.spec.display_name))
            .filter(|d| !d.is_empty())
            .unwrap_or(&c.name)
            .to_string();
        if let Some(first) = category_names.insert(display.clone(), &c.file) {
            diags.push(
                v3(format!("two categories are both named `{display}`; KubeSphere 3.x keeps category names unique"))
                    .in_file(&c.file)
                    .hint(format!("the other is {}", first.display())),
            );
        }
    }

    for r in &catalog.repos {
        if r.name.starts_with("builtin-") {
            diags.push(
                v3(format!("repo `{}`: KubeSphere 3.x gives repos named `builtin-*` its built-in behaviour (apps listed in the App Store, ids of its own)", r.name))
                    .in_file(&r.file)
                    .hint("rename the repo file"),
            );
        }
    }

    for r in &catalog.releases {
        if let AppRef::Repo { repo, chart } = r.app_ref() {
            diags.push(
                v3(format!("release `{}` installs `{repo}/{chart}` from a synced repo; KubeSphere 3.x gives a repo's charts random ids that only its sync knows", r.name))
                    .in_file(&r.file)
                    .at(r.spec.app.pos)
                    .hint("import the chart into the catalog (`pitrix import`) and release that app"),
            );
        }
    }
}
