//! `compile --publish`: a static HTML preview of the store in `out/site/` — categories, app
//! cards with icons, each app's versions and review states, its README rendered from Markdown,
//! and the releases per cluster. Rendered with minijinja from `templates/site/` built into
//! pitrix; a catalog overrides any of them with a file of the same name in its own
//! `templates/site/`. Self-contained: no script, no external stylesheet, font or image, so it
//! can be served from anywhere (GitHub Pages, a bucket, `file://`).

mod markdown;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{Environment, context};
use serde::Serialize;

use crate::catalog::{App, AppRef, Catalog, Release, Version};
use crate::duration::parse_seconds;
use crate::emit::Files;
use crate::error::Error;
use crate::lock::Lock;
use crate::objects::{ReviewState, labels};
use crate::{names, publish, redact, yaml};

pub use markdown::render as markdown_to_html;

/// Where the preview goes inside the output directory.
pub const SITE_DIR: &str = "site";
/// Where a catalog keeps its overrides of the site templates.
pub const OVERRIDE_DIR: &str = "templates/site";

/// The built-in templates; a catalog's `templates/site/<name>` replaces one.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/site/base.html")),
    (
        "index.html",
        include_str!("../../templates/site/index.html"),
    ),
    ("app.html", include_str!("../../templates/site/app.html")),
    (
        "releases.html",
        include_str!("../../templates/site/releases.html"),
    ),
    ("style.css", include_str!("../../templates/site/style.css")),
];

#[derive(Debug, Serialize)]
struct SiteCatalog {
    name: String,
    apps: usize,
    versions: usize,
    releases: usize,
    clusters: usize,
}

#[derive(Debug, Serialize)]
struct CategoryView {
    name: String,
    display_name: String,
    description: String,
    apps: Vec<AppCard>,
}

#[derive(Debug, Clone, Serialize)]
struct AppCard {
    name: String,
    display_name: String,
    abstraction: String,
    icon: Option<String>,
    initial: String,
    /// Colour of the letter shown when the app has no icon.
    hue: u32,
    state: String,
    app_type: String,
    latest: Option<String>,
    versions: usize,
    releases: usize,
    href: String,
}

#[derive(Debug, Serialize)]
struct VersionView {
    name: String,
    id: String,
    app_version: String,
    state: String,
    message: String,
    digest: String,
    size: String,
    source: String,
    releases: Vec<String>,
    published: bool,
}

#[derive(Debug, Serialize)]
struct ReleaseView {
    name: String,
    cluster: String,
    namespace: String,
    workspace: String,
    app: String,
    app_href: Option<String>,
    app_display: String,
    icon: Option<String>,
    version: String,
    state: String,
    creator: String,
    source: String,
    verified: Option<String>,
}

#[derive(Debug, Serialize)]
struct ClusterView {
    name: String,
    context: String,
    namespaces: usize,
    releases: Vec<ReleaseView>,
}

#[derive(Debug, Serialize)]
struct RepoView {
    name: String,
    url: String,
    sync: String,
    description: String,
    workspace: String,
    private: bool,
}

/// Every file of the preview, under `site/`. What can fail is the catalog's own: its
/// templates under [`OVERRIDE_DIR`] ([`Error::Catalog`]).
pub fn render(root: &Path, catalog: &Catalog, lock: Option<&Lock>) -> Result<Files, Error> {
    // A catalog may bring its own templates: each page renders within a budget that grows with
    // the catalog (see crate::template).
    let rows = catalog.apps.len()
        + catalog.apps.iter().map(|a| a.versions.len()).sum::<usize>()
        + catalog.releases.len();
    let limits = crate::template::site_limits(rows);
    let mut env = Environment::new();
    // HTML escaping without minijinja's `/` → `&#x2f;`: URLs stay readable in the source.
    crate::template::set_formatter(&mut env, limits, |out, state, value| {
        if state.auto_escape() == minijinja::AutoEscape::Html
            && !value.is_safe()
            && !value.is_none()
            && !value.is_undefined()
        {
            out.write_str(&escape_html(&value.to_string()))
                .map_err(|e| {
                    minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())
                })
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    let mut sources: BTreeMap<String, String> = BTreeMap::new();
    for (name, builtin) in TEMPLATES {
        let text = match crate::confine::read_to_string(root, &Path::new(OVERRIDE_DIR).join(name)) {
            Ok(t) => t,
            Err(crate::confine::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                builtin.to_string()
            }
            Err(e) => return Err(Error::Catalog(format!("{OVERRIDE_DIR}/{name}: {e}"))),
        };
        sources.insert(name.to_string(), text);
    }
    for (name, text) in &sources {
        if name.ends_with(".html") {
            env.add_template_owned(name.clone(), text.clone())
                .map_err(|e| template_error(name, &e))?;
        }
    }
    let html: Vec<&str> = sources
        .iter()
        .filter(|(name, _)| name.ends_with(".html"))
        .map(|(_, text)| text.as_str())
        .collect();
    crate::template::guard(&mut env, limits, &html);

    let mut files: Files = Vec::new();
    let mut assets: BTreeMap<String, String> = BTreeMap::new(); // app → icon path
    for app in &catalog.apps {
        if let Some(icon) = &app.icon {
            let ext = icon
                .file
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_else(|| "png".into());
            let rel = format!("assets/icons/{}.{ext}", app.name);
            files.push((PathBuf::from(SITE_DIR).join(&rel), icon.bytes.clone()));
            assets.insert(app.name.clone(), rel);
        }
        for shot in &app.screenshots {
            let file = shot
                .file
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = format!("assets/screenshots/{}/{file}", app.name);
            files.push((PathBuf::from(SITE_DIR).join(rel), shot.bytes.clone()));
        }
    }
    files.push((
        PathBuf::from(SITE_DIR).join("assets/style.css"),
        sources["style.css"].clone().into_bytes(),
    ));

    let clusters: Vec<&str> = {
        let mut c: Vec<&str> = catalog
            .releases
            .iter()
            .map(|r| r.cluster.as_str())
            .collect();
        c.sort();
        c.dedup();
        c
    };
    let site = SiteCatalog {
        name: catalog.settings.catalog.name.get_ref().clone(),
        apps: catalog.apps.len(),
        versions: catalog.apps.iter().map(|a| a.versions.len()).sum(),
        releases: catalog.releases.len(),
        clusters: clusters.len(),
    };
    let published: Vec<(String, String)> = publish::published(catalog)
        .into_iter()
        .map(|(a, v)| (a.name.clone(), v.name.clone()))
        .collect();

    let cards: Vec<AppCard> = catalog
        .apps
        .iter()
        .map(|a| card(catalog, a, assets.get(&a.name)))
        .collect();
    let categories = categories(catalog, &cards);
    let repos = repos(catalog);

    let page = |template: &str, ctx: minijinja::Value| -> Result<Vec<u8>, Error> {
        env.get_template(template)
            .and_then(|t| t.render(ctx))
            .and_then(|html| crate::template::check_output(&html, limits).map(|()| html))
            .map(String::into_bytes)
            .map_err(|e| template_error(template, &e))
    };

    for app in &catalog.apps {
        let c = cards.iter().find(|c| c.name == app.name).cloned();
        let versions: Vec<VersionView> = app
            .versions
            .iter()
            .rev()
            .map(|v| version_view(catalog, app, v, &published))
            .collect();
        let releases: Vec<ReleaseView> = catalog
            .releases
            .iter()
            .filter(|r| r.app_ref() == AppRef::Catalog(&app.name))
            .map(|r| release_view(catalog, r, lock, &assets))
            .collect();
        let readme = readme(root, app).map(|md| markdown::render(&md));
        let screenshots: Vec<String> = app
            .screenshots
            .iter()
            .filter_map(|s| s.file.file_name())
            .map(|f| format!("assets/screenshots/{}/{}", app.name, f.to_string_lossy()))
            .collect();
        let category = app
            .spec
            .category
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_else(|| labels::UNCATEGORIZED.into());
        let category_display = catalog
            .category(&category)
            .and_then(|c| c.spec.display_name.as_ref().map(|d| d.value.clone()))
            .unwrap_or_else(|| {
                if category == labels::UNCATEGORIZED {
                    "Uncategorized".into()
                } else {
                    category.clone()
                }
            });
        let text = |s| yaml::text(s).to_owned();
        let maintainers: Vec<BTreeMap<&str, String>> = app
            .spec
            .maintainers
            .iter()
            .map(|m| {
                let mut o = BTreeMap::new();
                o.insert("name", m.name.clone().unwrap_or_default());
                o.insert("email", m.email.clone().unwrap_or_default());
                o.insert(
                    "url",
                    m.url.clone().filter(|u| is_web(u)).unwrap_or_default(),
                );
                o
            })
            .collect();
        let home = text(&app.spec.home);
        files.push((
            PathBuf::from(SITE_DIR).join(format!("apps/{}.html", app.name)),
            page(
                "app.html",
                context! {
                    root => "../", page => "apps", catalog => &site, app => c,
                    description => text(&app.spec.description),
                    home => if is_web(&home) { home } else { String::new() },
                    workspace => catalog.workspace_of(&app.spec.workspace),
                    category => category, category_display => category_display,
                    maintainers => maintainers, versions => versions, releases => releases,
                    readme => readme.map(minijinja::Value::from_safe_string),
                    screenshots => screenshots,
                },
            )?,
        ));
    }

    let mut by_cluster: BTreeMap<&str, Vec<&Release>> = BTreeMap::new();
    for r in &catalog.releases {
        by_cluster.entry(&r.cluster).or_default().push(r);
    }
    let clusters: Vec<ClusterView> = by_cluster
        .into_iter()
        .map(|(name, mut rs)| {
            rs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
            let mut namespaces: Vec<&str> = rs.iter().map(|r| r.namespace.as_str()).collect();
            namespaces.dedup();
            ClusterView {
                name: name.to_string(),
                context: catalog
                    .settings
                    .clusters
                    .get(name)
                    .and_then(|c| c.context.clone())
                    .unwrap_or_default(),
                namespaces: namespaces.len(),
                releases: rs
                    .into_iter()
                    .map(|r| release_view(catalog, r, lock, &assets))
                    .collect(),
            }
        })
        .collect();
    files.push((
        PathBuf::from(SITE_DIR).join("index.html"),
        page(
            "index.html",
            context! { root => "", page => "apps", catalog => &site, categories => &categories, repos => &repos, clusters => &clusters },
        )?,
    ));

    files.push((
        PathBuf::from(SITE_DIR).join("releases.html"),
        page(
            "releases.html",
            context! { root => "", page => "releases", catalog => &site, clusters => &clusters, repos => &repos },
        )?,
    ));
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

fn template_error(name: &str, e: &minijinja::Error) -> Error {
    let mut message = format!("site template {name}: {e}");
    if crate::template::exceeded(e).is_some() {
        message = format!("{message} ({})", crate::template::HINT);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    Error::Catalog(message)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn is_web(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn state_of(app: &App) -> ReviewState {
    app.state()
}

/// The version the store shows first: the newest active one, else the newest.
fn latest(app: &App) -> Option<&Version> {
    app.versions
        .iter()
        .rev()
        .find(|v| app.version_state(&v.name) == ReviewState::Active)
        .or(app.versions.last())
}

fn card(catalog: &Catalog, app: &App, icon: Option<&String>) -> AppCard {
    let text = |s| yaml::text(s).trim().to_owned();
    let display_name = Some(text(&app.spec.display_name))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| app.name.clone());
    let abstraction = Some(text(&app.spec.abstraction))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| text(&app.spec.description));
    AppCard {
        name: app.name.clone(),
        initial: display_name
            .chars()
            .next()
            .map(|c| c.to_uppercase().to_string())
            .unwrap_or_default(),
        display_name,
        abstraction,
        icon: icon.cloned(),
        hue: app
            .name
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
            % 360,
        state: state_of(app).as_str().to_string(),
        app_type: app.app_type().as_str().to_string(),
        latest: latest(app).map(|v| v.name.clone()),
        versions: app.versions.len(),
        releases: catalog
            .releases
            .iter()
            .filter(|r| r.app_ref() == AppRef::Catalog(&app.name))
            .count(),
        href: format!("apps/{}.html", app.name),
    }
}

fn categories(catalog: &Catalog, cards: &[AppCard]) -> Vec<CategoryView> {
    let mut out: Vec<CategoryView> = Vec::new();
    let category_of = |a: &App| {
        a.spec
            .category
            .as_ref()
            .map(|c| c.value.clone())
            .unwrap_or_else(|| labels::UNCATEGORIZED.into())
    };
    let mut names: Vec<String> = catalog.categories.iter().map(|c| c.name.clone()).collect();
    if catalog
        .apps
        .iter()
        .any(|a| category_of(a) == labels::UNCATEGORIZED)
        && !names.iter().any(|n| n == labels::UNCATEGORIZED)
    {
        names.push(labels::UNCATEGORIZED.into());
    }
    for name in names {
        let c = catalog.category(&name);
        let text = |s: Option<&crate::yaml::Spanned<String>>| {
            s.map(|s| s.value.clone()).unwrap_or_default()
        };
        let apps: Vec<AppCard> = catalog
            .apps
            .iter()
            .filter(|a| category_of(a) == name)
            .filter_map(|a| cards.iter().find(|c| c.name == a.name).cloned())
            .collect();
        let display_name = Some(text(c.and_then(|c| c.spec.display_name.as_ref())))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if name == labels::UNCATEGORIZED {
                    "Uncategorized".into()
                } else {
                    name.clone()
                }
            });
        out.push(CategoryView {
            display_name,
            description: text(c.and_then(|c| c.spec.description.as_ref())),
            name,
            apps,
        });
    }
    out
}

fn repos(catalog: &Catalog) -> Vec<RepoView> {
    catalog
        .repos
        .iter()
        .map(|r| {
            let seconds = r
                .spec
                .sync_period
                .as_ref()
                .and_then(|p| parse_seconds(&p.value).ok())
                .unwrap_or(0);
            RepoView {
                name: r.name.clone(),
                url: redact::text(&r.spec.url.value),
                sync: human_period(seconds),
                description: r
                    .spec
                    .description
                    .as_ref()
                    .map(|d| d.value.clone())
                    .unwrap_or_default(),
                workspace: catalog.workspace_of(&r.spec.workspace).to_string(),
                private: r.spec.credentials.is_some(),
            }
        })
        .collect()
}

fn human_period(seconds: i64) -> String {
    match seconds {
        s if s <= 0 => "manual".into(),
        s if s % 86400 == 0 => format!("every {}d", s / 86400),
        s if s % 3600 == 0 => format!("every {}h", s / 3600),
        s if s % 60 == 0 => format!("every {}m", s / 60),
        s => format!("every {s}s"),
    }
}

fn version_view(
    catalog: &Catalog,
    app: &App,
    v: &Version,
    published: &[(String, String)],
) -> VersionView {
    let intent = app.spec.versions.get(v.name.as_str());
    let app_version = v
        .chart
        .as_ref()
        .and_then(|c| c.app_version.as_ref())
        .map(|s| s.value.clone())
        .unwrap_or_default();
    VersionView {
        id: names::version_id(&app.name, &v.name),
        name: v.name.clone(),
        app_version,
        state: app.version_state(&v.name).as_str().to_string(),
        message: intent
            .and_then(|i| i.message.as_ref())
            .map(|m| m.value.clone())
            .unwrap_or_default(),
        digest: v.digest.chars().take(12).collect(),
        size: human_size(v.package.len()),
        source: match v.source {
            crate::catalog::VersionSource::ChartDir => "chart directory",
            crate::catalog::VersionSource::ChartArchive => "packaged chart",
            crate::catalog::VersionSource::Manifests => "manifests",
        }
        .into(),
        releases: catalog
            .releases
            .iter()
            .filter(|r| r.app_ref() == AppRef::Catalog(&app.name) && r.spec.version.value == v.name)
            .map(|r| format!("{}/{}/{}", r.cluster, r.namespace, r.name))
            .collect(),
        published: published
            .iter()
            .any(|(a, n)| a == &app.name && n == &v.name),
    }
}

fn human_size(bytes: usize) -> String {
    if bytes < 1024 {
        format!("{bytes} B")
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

fn release_view(
    catalog: &Catalog,
    r: &Release,
    lock: Option<&Lock>,
    icons: &BTreeMap<String, String>,
) -> ReleaseView {
    let workspace = catalog.workspace_of(&r.spec.workspace).to_string();
    let creator = r.spec.creator().to_string();
    let version = r.spec.version.value.clone();
    let (app_href, app_display, icon, state, source, verified) = match r.app_ref() {
        AppRef::Catalog(name) => {
            let app = catalog.app(name);
            let display = app
                .and_then(|a| a.spec.display_name.as_ref())
                .map(|d| d.value.clone())
                .unwrap_or_else(|| name.to_string());
            let state = app
                .map(|a| a.version_state(&version).as_str().to_string())
                .unwrap_or_default();
            (
                Some(format!("apps/{name}.html")),
                display,
                icons.get(name).cloned(),
                state,
                "catalog".to_string(),
                None,
            )
        }
        AppRef::Repo { repo, chart } => {
            let url = catalog
                .repo(repo)
                .map(|x| x.spec.url.value.clone())
                .unwrap_or_default();
            let verified = lock
                .and_then(|l| l.entry(repo, &url, chart, &version))
                .map(|e| e.digest.chars().take(19).collect::<String>())
                .unwrap_or_else(|| "unverified".to_string());
            (
                None,
                chart.to_string(),
                None,
                "synced".to_string(),
                format!("repo {repo}"),
                Some(verified),
            )
        }
    };
    ReleaseView {
        name: r.name.clone(),
        cluster: r.cluster.clone(),
        namespace: r.namespace.clone(),
        workspace,
        app: r.spec.app.value.clone(),
        app_href,
        app_display,
        icon,
        version,
        state,
        creator,
        source,
        verified,
    }
}

/// The app's README: `apps/<app>/README.md`, else the newest version's chart README.
fn readme(root: &Path, app: &App) -> Option<String> {
    if let Ok(text) = crate::confine::read_to_string(root, &app.dir.join("README.md")) {
        return Some(text);
    }
    let v = latest(app)?;
    let bytes = v.chart_file("README.md")?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}
