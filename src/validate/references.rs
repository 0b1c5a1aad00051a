//! References between files: categories, the app and version of each release, and the review
//! states KubeSphere's webhook and app actions insist on.

use crate::catalog::{App, AppRef, AppType, Catalog, Release, Target};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, did_you_mean};
use crate::objects::{ReviewState, labels};

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    for app in &catalog.apps {
        check_category(catalog, app, diags);
        check_app_state(app, diags);
    }
    for release in &catalog.releases {
        check_release(catalog, release, diags);
    }
}

fn with_suggestion<'a>(
    d: Diagnostic,
    given: &str,
    known: impl IntoIterator<Item = &'a str>,
    otherwise: String,
) -> Diagnostic {
    match did_you_mean(given, known) {
        Some(m) => d.hint(format!("did you mean `{m}`?")),
        None => d.hint(otherwise),
    }
}

fn check_category(catalog: &Catalog, app: &App, diags: &mut Diagnostics) {
    let Some(category) = &app.spec.category else {
        return;
    };
    if category.value == labels::UNCATEGORIZED || catalog.category(&category.value).is_some() {
        return;
    }
    let d = Diagnostic::error(
        Code::UnknownCategory,
        format!(
            "app `{}` names category `{}`, which the catalog does not have",
            app.name, category.value
        ),
    )
    .in_file(&app.file)
    .at(category.pos);
    diags.push(with_suggestion(
        d,
        &category.value,
        catalog.categories.iter().map(|c| c.name.as_str()),
        format!(
            "add categories/{}.yaml, or leave `category` out for `{}`",
            category.value,
            labels::UNCATEGORIZED
        ),
    ));
}

/// KubeSphere activates an app only when a version is active or passed (reference §6).
fn check_app_state(app: &App, diags: &mut Diagnostics) {
    if app.state() != ReviewState::Active {
        return;
    }
    // A version that did not load has its own error; it counts as what app.yaml says it is.
    let usable = app
        .versions
        .iter()
        .map(|v| v.name.as_str())
        .chain(app.unloaded_versions.iter().map(String::as_str))
        .any(|v| {
            matches!(
                app.version_state(v),
                ReviewState::Active | ReviewState::Passed
            )
        });
    if !usable {
        diags.push(
            Diagnostic::error(
                Code::NoActiveVersion,
                format!(
                    "app `{}` is active but has no active or passed version",
                    app.name
                ),
            )
            .in_file(&app.file)
            .at_opt(app.spec.state.as_ref().map(|s| s.pos))
            .hint("add a version, mark one `active`, or set the app's `state: draft`"),
        );
    }
}

fn check_release(catalog: &Catalog, r: &Release, diags: &mut Diagnostics) {
    if !catalog.settings.clusters.is_empty() && !catalog.settings.clusters.contains_key(&r.cluster)
    {
        let d = Diagnostic::error(
            Code::UnknownCluster,
            format!(
                "release `{}` is filed under cluster `{}`, which pitrix.toml does not declare",
                r.name, r.cluster
            ),
        )
        .in_file(&r.file);
        diags.push(with_suggestion(
            d,
            &r.cluster,
            catalog.settings.clusters.keys().map(String::as_str),
            format!("add [clusters.{}] to pitrix.toml", r.cluster),
        ));
    }
    // pitrix itself runs a standalone release's executor Job: in the release's cluster, which
    // must be reachable (the host is wherever apply connects).
    if catalog.settings.target() == Target::Standalone
        && r.cluster != labels::DEFAULT_CLUSTER
        && !catalog.cluster_contexts().contains_key(&r.cluster)
    {
        let env = catalog
            .environment
            .as_ref()
            .map(|e| format!(" (or [env.{e}.clusters.{}])", r.cluster))
            .unwrap_or_default();
        diags.push(
            Diagnostic::error(
                Code::ClusterWithoutContext,
                format!(
                    "release `{}` is filed under cluster `{}`, but pitrix.toml maps no kubeconfig context to it, so its executor Job has nowhere to run",
                    r.name, r.cluster
                ),
            )
            .in_file(&r.file)
            .hint(format!(
                "add `context = \"...\"` under [clusters.{}] in pitrix.toml{env}, or file the release under releases/{}/",
                r.cluster,
                labels::DEFAULT_CLUSTER
            )),
        );
    }
    match r.app_ref() {
        AppRef::Repo { repo, chart } => {
            if catalog.repo(repo).is_none() {
                let d = Diagnostic::error(Code::UnknownRepo, format!("release `{}` installs `{repo}/{chart}`, but the catalog has no repo `{repo}`", r.name))
                    .in_file(&r.file)
                    .at(r.spec.app.pos);
                diags.push(with_suggestion(
                    d,
                    repo,
                    catalog.repos.iter().map(|x| x.name.as_str()),
                    format!("add repos/{repo}.yaml, or name a catalog app"),
                ));
            }
        }
        AppRef::Catalog(name) => {
            let Some(app) = catalog.app(name) else {
                if catalog.unloaded_apps.contains(name) {
                    // The app's own error says why it did not load: one root cause, one error.
                    return;
                }
                let d = Diagnostic::error(
                    Code::UnknownApp,
                    format!(
                        "release `{}` installs app `{name}`, which the catalog does not have",
                        r.name
                    ),
                )
                .in_file(&r.file)
                .at(r.spec.app.pos);
                diags.push(with_suggestion(
                    d,
                    name,
                    catalog.apps.iter().map(|a| a.name.as_str()),
                    "name an app of apps/, or `<repo>/<chart>` of a synced repo".into(),
                ));
                return;
            };
            check_release_version(app, r, diags);
            if app.app_type() == AppType::Yaml
                && (r.spec.values.is_some() || !r.spec.values_files.is_empty())
            {
                let pos = r.spec.values.as_ref().map(|v| v.pos).or(r
                    .spec
                    .values_files
                    .first()
                    .map(|v| v.pos));
                diags.push(
                    Diagnostic::error(Code::InvalidValues, format!("app `{}` is a YAML app: its releases take no values", app.name))
                        .in_file(&r.file)
                        .at_opt(pos)
                        .hint("a YAML app installs its manifests as they are; change them in a new version"),
                );
            }
        }
    }
}

fn check_release_version(app: &App, r: &Release, diags: &mut Diagnostics) {
    let version = &r.spec.version;
    if app.unloaded_versions.contains(&version.value) {
        // The version's own error says why it did not load.
        return;
    }
    if app.version(&version.value).is_none() {
        let d = Diagnostic::error(
            Code::UnknownVersion,
            format!(
                "release `{}` installs {} version `{}`, which the app does not have",
                r.name, app.name, version.value
            ),
        )
        .in_file(&r.file)
        .at(version.pos);
        let known: Vec<&str> = app.versions.iter().map(|v| v.name.as_str()).collect();
        diags.push(with_suggestion(
            d,
            &version.value,
            known.iter().copied(),
            if known.is_empty() {
                format!(
                    "app {} has no version yet: add one under {}",
                    app.name,
                    app.dir.display()
                )
            } else {
                format!("versions of {}: {}", app.name, known.join(", "))
            },
        ));
        return;
    }
    let state = app.version_state(&version.value);
    if state != ReviewState::Active {
        diags.push(
            Diagnostic::error(
                Code::VersionNotActive,
                format!("release `{}` installs {} {}, whose state is `{}`", r.name, app.name, version.value, state.as_str()),
            )
            .in_file(&r.file)
            .at(version.pos)
            .hint(format!(
                "KubeSphere's admission webhook admits releases of active versions only: set the version `active` in {}",
                app.file.display()
            )),
        );
    }
}
