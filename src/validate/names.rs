//! Names: DNS-1123 labels, the length budgets of derived IDs, unique release names.

use std::collections::BTreeMap;
use std::path::Path;

use crate::catalog::SETTINGS_FILE;
use crate::catalog::{AppRef, Catalog};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos};
use crate::load::pos_at_offset;
use crate::names::{self, MAX_LABEL_VALUE, MAX_RELEASE_NAME};
use crate::objects::labels;
use crate::yaml::Spanned;

fn label(what: &str, name: &str, file: &Path, pos: Option<Pos>, diags: &mut Diagnostics) -> bool {
    match names::dns1123_label(name) {
        Ok(()) => true,
        Err(why) => {
            diags.push(
                Diagnostic::error(Code::InvalidName, format!("{what} name `{name}` {why}"))
                    .in_file(file)
                    .at_opt(pos)
                    .hint(format!(
                        "{what} names become Kubernetes names and label values: lowercase letters, digits and '-', at most {MAX_LABEL_VALUE} characters"
                    )),
            );
            false
        }
    }
}

/// Where a pitrix.toml value is.
fn settings_pos(catalog: &Catalog, span: std::ops::Range<usize>) -> Option<Pos> {
    (!catalog.settings_text.is_empty()).then(|| pos_at_offset(&catalog.settings_text, span.start))
}

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    let settings = Path::new(SETTINGS_FILE);
    let name = &catalog.settings.catalog.name;
    if !name.get_ref().is_empty() {
        label(
            "catalog",
            name.get_ref(),
            settings,
            settings_pos(catalog, name.span()),
            diags,
        );
    }
    if let Some(ns) = &catalog.settings.catalog.storage_namespace {
        label(
            "storage namespace",
            ns.get_ref(),
            settings,
            settings_pos(catalog, ns.span()),
            diags,
        );
    }
    if let Some(image) = &catalog.settings.catalog.status_image
        && let Err(why) = crate::names::image_reference(image.get_ref())
    {
        diags.push(
            Diagnostic::error(Code::InvalidValue, format!("statusImage: {why}"))
                .in_file(settings)
                .at_opt(settings_pos(catalog, image.span()))
                .hint("the image of the status Job Argo CD and Flux run, e.g. `ghcr.io/acme/pitrix:0.1.0` or `…@sha256:<digest>`"),
        );
    }
    let settings_workspaces = catalog.settings.catalog.workspace.iter().chain(
        catalog
            .settings
            .env
            .values()
            .filter_map(|e| e.workspace.as_ref()),
    );
    for ws in settings_workspaces {
        label(
            "workspace",
            ws.get_ref(),
            settings,
            settings_pos(catalog, ws.span()),
            diags,
        );
    }
    check_workspaces(catalog, diags);
    for c in &catalog.categories {
        label("category", &c.name, &c.file, None, diags);
    }
    for r in &catalog.repos {
        if label("repo", &r.name, &r.file, None, diags) && r.name == labels::UPLOAD_REPO {
            diags.push(
                Diagnostic::error(Code::ReservedName, "a repo cannot be named `upload`")
                    .in_file(&r.file)
                    .hint("KubeSphere labels uploaded apps `repo-name=upload`; rename the file"),
            );
        }
    }
    for app in &catalog.apps {
        if !label("app", &app.name, &app.file, None, diags) {
            continue;
        }
        for v in &app.versions {
            let id = names::version_id(&app.name, &v.name);
            if id.len() > MAX_LABEL_VALUE {
                diags.push(
                    Diagnostic::error(
                        Code::NameTooLong,
                        format!("version ID `{id}` is {} characters; at most {MAX_LABEL_VALUE} fit a label value", id.len()),
                    )
                    .in_file(&v.path)
                    .hint("shorten the app directory name or the version"),
                );
            }
        }
    }
    check_releases(catalog, diags);
}

fn check_releases(catalog: &Catalog, diags: &mut Diagnostics) {
    // KubeSphere 3.x installs in process (no Job to name) and names each HelmRelease apart:
    // Helm's own limit, and one name per namespace.
    let v3 = catalog.settings.target() == crate::catalog::Target::KubesphereV3;
    let (max_name, why) = match v3 {
        true => (
            names::MAX_HELM_RELEASE_NAME,
            "Helm refuses release names over 53 characters",
        ),
        false => (
            MAX_RELEASE_NAME,
            "KubeSphere names the uninstall Job `helm-uninstall-<release>-<6 chars>`, which must fit 63 characters",
        ),
    };
    let mut seen: BTreeMap<&str, &Path> = BTreeMap::new();
    let mut checked_dirs = std::collections::BTreeSet::new();
    for r in &catalog.releases {
        if checked_dirs.insert((&r.cluster, &r.namespace)) {
            let dir = r.file.parent().unwrap_or(Path::new(""));
            label("cluster", &r.cluster, dir, None, diags);
            label("namespace", &r.namespace, dir, None, diags);
        }
        if label("release", &r.name, &r.file, None, diags) && r.name.len() > max_name {
            diags.push(
                Diagnostic::error(
                    Code::NameTooLong,
                    format!(
                        "release name `{}` is {} characters; at most {max_name} are allowed",
                        r.name,
                        r.name.len()
                    ),
                )
                .in_file(&r.file)
                .hint(why),
            );
        }
        if v3 {
            continue;
        }
        if let Some(first) = seen.get(r.name.as_str()) {
            diags.push(
                Diagnostic::error(
                    Code::DuplicateRelease,
                    format!("release `{}` is also defined in {}", r.name, first.display()),
                )
                .in_file(&r.file)
                .hint("ApplicationRelease is cluster-scoped: a release name is unique across all clusters and namespaces"),
            );
        } else {
            seen.insert(&r.name, &r.file);
        }
        if let AppRef::Repo { repo, chart } = r.app_ref() {
            let id = names::version_id(&names::repo_app_id(repo, chart), &r.spec.version.value);
            if id.len() > MAX_LABEL_VALUE {
                diags.push(
                    Diagnostic::error(
                        Code::NameTooLong,
                        format!("version ID `{id}` is {} characters; at most {MAX_LABEL_VALUE} fit a label value", id.len()),
                    )
                    .in_file(&r.file)
                    .at(r.spec.app.pos)
                    .hint("KubeSphere names it <repo>-<chart short name>-<version>: shorten the repo's name"),
                );
            }
        }
    }
}

/// Workspaces become the `kubesphere.io/workspace` label and name a WorkspaceTemplate.
fn check_workspaces(catalog: &Catalog, diags: &mut Diagnostics) {
    let mut check = |ws: &Option<Spanned<String>>, file: &Path| {
        if let Some(ws) = ws {
            label("workspace", &ws.value, file, Some(ws.pos), diags);
        }
    };
    for r in &catalog.repos {
        check(&r.spec.workspace, &r.file);
    }
    for a in &catalog.apps {
        check(&a.spec.workspace, &a.file);
    }
    for r in &catalog.releases {
        check(&r.spec.workspace, &r.file);
    }
}
