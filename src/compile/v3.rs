//! The `kubesphere-v3` target: the catalog as KubeSphere 3.x's `application.kubesphere.io/v1alpha1`
//! objects and the S3 objects (packages, icons, screenshots) they refer to
//! (docs/kubesphere-v3.md §11).
//!
//! Names are pitrix's own, deterministic and readable, in the shapes the console makes
//! (`ctg-`, `app-`, `appv-`, `rls-`, `att-`); KubeSphere checks none of the prefixes (§3.2).
//! Review states live on versions; KubeSphere derives the app's state from them (§5.2).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest as _, Sha256};

use super::meta::MetaFactory;
use super::store::text;
use super::{Object, Part, StatusIntent, Stored};
use crate::catalog::{App, AppRef, AppType, Catalog, ChartMeta, Release, Version};
use crate::error::Error;
use crate::names;
use crate::objects::v1alpha1::{
    self, ChartMaintainer, ChartMetadata, HelmApplication, HelmApplicationSpec,
    HelmApplicationVersion, HelmApplicationVersionSpec, HelmCategory, HelmCategorySpec,
    HelmRelease, HelmReleaseSpec, HelmRepo, HelmRepoSpec,
};
use crate::objects::{ReviewState, labels};
use crate::yaml::Spanned;

/// The HelmCategory of a catalog category; KubeSphere's `uncategorized` for its own.
pub fn category_id(name: &str) -> String {
    if name == labels::UNCATEGORIZED {
        return v1alpha1::UNCATEGORIZED.to_string();
    }
    format!("ctg-{name}")
}

/// The HelmApplication of a catalog app. Its App Store copy is this plus [`v1alpha1::STORE_SUFFIX`].
pub fn app_id(app: &str) -> String {
    format!("app-{app}")
}

/// The HelmApplicationVersion of a catalog version: a label value (releases name it), so at
/// most 63 characters — a digest stands in for the tail of a longer one.
pub fn version_id(app: &str, version: &str) -> String {
    let id = format!("appv-{}", names::version_id(app, version));
    fit_label(id, &format!("{app}\n{version}"))
}

/// The HelmRelease of a catalog release: unique per cluster, namespace and name.
pub fn release_id(r: &Release) -> String {
    let digest = Sha256::digest(format!("{}\n{}\n{}", r.cluster, r.namespace, r.name));
    format!("rls-{}-{}", r.name, &names::hex(&digest)[..8])
}

/// The S3 key of an attachment (icon or screenshot): a digest of its content and the catalog,
/// so that a changed image gets a new key and no two catalogs share one (each prunes its own).
pub fn attachment_key(catalog: &str, bytes: &[u8]) -> String {
    let mut hasher = Sha256::new_with_prefix(catalog.as_bytes());
    hasher.update([0]);
    hasher.update(bytes);
    format!("att-{}", &names::hex(&hasher.finalize())[..20])
}

/// The S3 key of a version's package: `<workspace>/<version id>`, where KubeSphere's release
/// controller reads it (§4.1).
pub fn package_key(workspace: &str, version_id: &str) -> String {
    format!("{workspace}/{version_id}")
}

fn fit_label(id: String, identity: &str) -> String {
    if id.len() <= names::MAX_LABEL_VALUE {
        return id;
    }
    let hash = names::hex(&Sha256::digest(identity.as_bytes()));
    let keep = names::MAX_LABEL_VALUE - 9;
    let head = id[..keep].trim_end_matches(['-', '.']);
    format!("{head}-{}", &hash[..8])
}

/// A version's review state on 3.x: an app suspended as a whole suspends its active versions
/// (3.x's app `suspend` action does exactly that, §5.1).
pub fn version_state(app: &App, version: &str) -> ReviewState {
    match app.version_state(version) {
        ReviewState::Active if app.state() == ReviewState::Suspended => ReviewState::Suspended,
        state => state,
    }
}

/// Compiles a valid catalog for KubeSphere 3.x.
/// The objects apps share: categories and repos.
pub(crate) fn shared(catalog: &Catalog, meta: &MetaFactory) -> Part {
    let mut objects = Vec::new();
    for c in &catalog.categories {
        if c.name == labels::UNCATEGORIZED {
            continue; // KubeSphere's own `ctg-uncategorized`, which its controller keeps.
        }
        let id = category_id(&c.name);
        let mut category = HelmCategory::new(
            &id,
            HelmCategorySpec {
                name: text(&c.spec.display_name).unwrap_or_else(|| c.name.clone()),
                description: text(&c.spec.description),
                locale: None,
            },
        );
        category.metadata = meta.meta(&id, None, &[], &[]);
        objects.push(Object::HelmCategory(category));
    }
    for r in &catalog.repos {
        objects.push(repo(catalog, r, meta));
    }
    Part {
        objects,
        status: Vec::new(),
    }
}

/// The releases: one HelmRelease each.
pub(crate) fn releases(catalog: &Catalog, meta: &MetaFactory) -> Part {
    Part {
        objects: (catalog.releases.iter())
            .filter_map(|r| release(catalog, r, meta))
            .collect(),
        status: Vec::new(),
    }
}

fn repo(catalog: &Catalog, r: &crate::catalog::Repo, meta: &MetaFactory) -> Object {
    let id = format!("repo-{}", r.name);
    let mut repo = HelmRepo::new(
        &id,
        HelmRepoSpec {
            name: r.name.clone(),
            url: r.spec.url.value.clone(),
            credential: None,
            description: r.spec.description.as_ref().map(|d| d.value.clone()),
            sync_period: super::store::sync_period(r),
            version: None,
        },
    );
    repo.metadata = super::store::repo_meta(catalog, r, meta, &id);
    Object::HelmRepo(repo)
}

/// An S3 object of the catalog.
fn stored(meta: &MetaFactory, key: String, bytes: &[u8]) -> Object {
    Object::Stored(Stored {
        metadata: meta.meta(&key, None, &[], &[]),
        bytes: bytes.to_vec(),
    })
}

fn chart_metadata(app: &App, v: &Version) -> ChartMetadata {
    let chart = v.chart.as_ref();
    let get = |f: fn(&ChartMeta) -> &Option<Spanned<String>>| chart.and_then(|c| text(f(c)));
    ChartMetadata {
        // The release controller hands Helm the chart under this name.
        name: get(|c| &c.name).unwrap_or_else(|| app.name.clone()),
        home: get(|c| &c.home),
        sources: Vec::new(),
        version: v.name.clone(),
        // The REST upload cuts it to 512 bytes (§1.2); so does pitrix.
        description: get(|c| &c.description).map(|d| cut(&d, 512)),
        keywords: chart.map(|c| c.keywords.clone()).unwrap_or_default(),
        maintainers: chart
            .map(|c| {
                c.maintainers
                    .iter()
                    .map(|m| ChartMaintainer {
                        name: m.name.clone(),
                        email: m.email.clone(),
                        url: m.url.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        icon: get(|c| &c.icon).filter(|i| i.starts_with("http")),
        api_version: get(|c| &c.api_version),
        app_version: get(|c| &c.app_version),
        kube_version: None,
        chart_type: get(|c| &c.chart_type),
        annotations: BTreeMap::new(),
    }
}

/// At most `max` bytes, cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// An app: its HelmApplication (and the store copy), its versions, their S3 objects.
pub(crate) fn app(catalog: &Catalog, app: &App, meta: &MetaFactory) -> Result<Part, Error> {
    let mut objects = Vec::new();
    let mut status = Vec::new();
    let id = app_id(&app.name);
    let workspace = catalog.workspace_of(&app.spec.workspace);
    let latest = app
        .versions
        .iter()
        .rev()
        .find(|v| version_state(app, &v.name) == ReviewState::Active)
        .or(app.versions.last());
    let chart = latest.and_then(|v| v.chart.as_ref());
    let chart_text = |f: fn(&ChartMeta) -> &Option<Spanned<String>>| chart.and_then(|c| text(f(c)));
    let description = text(&app.spec.description).or_else(|| chart_text(|c| &c.description));

    let icon = match &app.icon {
        Some(icon) => {
            let key = attachment_key(catalog.settings.catalog.name.get_ref(), &icon.bytes);
            objects.push(stored(meta, key.clone(), &icon.bytes));
            Some(key)
        }
        None => chart_text(|c| &c.icon).filter(|i| i.starts_with("http")),
    };
    let mut attachments = Vec::new();
    for shot in &app.screenshots {
        let key = shot.id(|bytes| attachment_key(catalog.settings.catalog.name.get_ref(), bytes));
        objects.push(stored(meta, key.clone(), &shot.bytes));
        attachments.push(key);
    }
    let spec = HelmApplicationSpec {
        name: text(&app.spec.display_name).unwrap_or_else(|| app.name.clone()),
        description: description.as_deref().map(|d| cut(d, 512)),
        abstraction: text(&app.spec.abstraction),
        app_home: text(&app.spec.home).or_else(|| chart_text(|c| &c.home)),
        icon,
        attachments,
    };
    let category = app
        .spec
        .category
        .as_ref()
        .map(|c| category_id(&c.value))
        .unwrap_or_else(|| v1alpha1::UNCATEGORIZED.to_string());

    let mut application = HelmApplication::new(&id, spec.clone());
    application.metadata = meta.meta(
        &id,
        None,
        &[
            (labels::WORKSPACE, workspace),
            (v1alpha1::APP_CATEGORY_ID, &category),
        ],
        &[],
    );
    let released = app.versions.iter().any(|v| {
        matches!(
            version_state(app, &v.name),
            ReviewState::Active | ReviewState::Suspended
        )
    });
    if released {
        objects.push(Object::HelmApplication(store_copy(&application, workspace)));
    }
    objects.push(Object::HelmApplication(application));

    for v in &app.versions {
        let vid = version_id(&app.name, &v.name);
        let state = version_state(app, &v.name);
        let mut version = HelmApplicationVersion::new(
            &vid,
            HelmApplicationVersionSpec {
                metadata: chart_metadata(app, v),
                created: None,
                digest: Some(format!("sha256:{}", v.digest)),
            },
        );
        let mut version_labels = vec![
            (labels::APP_ID, id.as_str()),
            (labels::WORKSPACE, workspace),
        ];
        // KubeSphere adds it once a version is active; written here, it is no diff.
        if matches!(state, ReviewState::Active | ReviewState::Suspended) {
            version_labels.push((v1alpha1::REPO_ID, v1alpha1::STORE_REPO));
        }
        version.metadata = meta.meta(&vid, None, &version_labels, &[]);
        objects.push(Object::HelmApplicationVersion(version));
        objects.push(stored(
            meta,
            package_key(workspace, &vid),
            &v.package.bytes()?,
        ));
        let intent = app.spec.versions.get(v.name.as_str());
        status.push(StatusIntent {
            kind: "HelmApplicationVersion",
            name: vid,
            state,
            message: intent.and_then(|i| text(&i.message)),
        });
    }
    Ok(Part { objects, status })
}

/// The App Store's copy of a released app, in the shape KubeSphere's app controller gives it
/// (§5.2) — which it only ever creates: written by pitrix, later changes reach the store.
fn store_copy(app: &HelmApplication, workspace: &str) -> HelmApplication {
    let name = format!(
        "{}{}",
        app.metadata.name.as_deref().unwrap_or_default(),
        v1alpha1::STORE_SUFFIX
    );
    let mut labels = app.metadata.labels.clone().unwrap_or_default();
    labels.remove(labels::WORKSPACE);
    labels.insert(v1alpha1::REPO_ID.into(), v1alpha1::STORE_REPO.into());
    labels.insert(WORKSPACE_ORIGIN.into(), workspace.into());
    let mut copy = HelmApplication::new(&name, app.spec.clone());
    copy.metadata = ObjectMeta {
        name: Some(name),
        labels: Some(labels),
        annotations: app.metadata.annotations.clone(),
        ..ObjectMeta::default()
    };
    copy
}

/// Label on the App Store copy: the workspace the app came from (§2).
const WORKSPACE_ORIGIN: &str = "kubesphere.io/workspace-origin";

fn release(catalog: &Catalog, r: &Release, meta: &MetaFactory) -> Option<Object> {
    // Validation refuses the others: a synced repo's chart ids are KubeSphere's random ones.
    let AppRef::Catalog(name) = r.app_ref() else {
        return None;
    };
    let app = catalog.app(name)?;
    if app.app_type() != AppType::Helm {
        return None;
    }
    let version = app.version(&r.spec.version.value)?;
    let vid = version_id(&app.name, &version.name);
    let aid = app_id(&app.name);
    let metadata = chart_metadata(app, version);
    let merged = r.merged_values();
    let values = (!merged.is_empty()).then(|| serde_yaml::to_string(&merged).unwrap_or_default());
    let mut spec = HelmReleaseSpec {
        name: r.name.clone(),
        chart_name: metadata.name,
        chart_version: version.name.clone(),
        values: values.map(|v| ByteString(v.into_bytes())),
        chart_app_ver: metadata.app_version,
        version: 0,
        app_id: Some(aid.clone()),
        app_ver_id: Some(vid.clone()),
        repo_id: Some(v1alpha1::STORE_REPO.to_string()),
        description: None,
    };
    spec.version = upgrade_trigger(&spec);
    let id = release_id(r);
    let mut release = HelmRelease::new(&id, spec);
    release.metadata = meta.meta(
        &id,
        None,
        &[
            (labels::WORKSPACE, catalog.workspace_of(&r.spec.workspace)),
            (labels::NAMESPACE, &r.namespace),
            (labels::CLUSTER, &r.cluster),
            (labels::APP_ID, &aid),
            (v1alpha1::APP_VERSION_ID, &vid),
            (v1alpha1::REPO_ID, v1alpha1::STORE_REPO),
        ],
        &[(labels::CREATOR, r.spec.creator())],
    );
    Some(Object::HelmRelease(release))
}

/// `spec.version`, the only field whose change makes KubeSphere 3.x upgrade a release (§6):
/// derived from everything else in the spec, so that any change is an upgrade and an
/// unchanged spec is none. Positive and within 31 bits (KubeSphere's Go `int`s, JSON numbers).
fn upgrade_trigger(spec: &HelmReleaseSpec) -> i64 {
    let body = serde_json::to_vec(spec).expect("a release spec serialises");
    let digest = Sha256::digest(&body);
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & 0x7fff_ffff;
    i64::from(n.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_ids_fit_a_label_and_stay_distinct() {
        let app = "a".repeat(50);
        let one = version_id(&app, "1.0.0-really-long-prerelease-name");
        let two = version_id(&app, "1.0.0-really-long-prerelease-name2");
        assert!(one.len() <= 63 && two.len() <= 63, "{one} {two}");
        assert_ne!(one, two);
        assert!(names::dns1123_label(&one).is_ok(), "{one}");
        assert_eq!(version_id("redis", "11.3.4"), "appv-redis-11.3.4");
    }

    #[test]
    fn the_upgrade_trigger_follows_the_spec() {
        let spec = HelmReleaseSpec {
            name: "r".into(),
            chart_name: "redis".into(),
            chart_version: "11.3.4".into(),
            ..HelmReleaseSpec::default()
        };
        let mut changed = spec.clone();
        changed.values = Some(ByteString(b"a: 1\n".to_vec()));
        let (a, b) = (upgrade_trigger(&spec), upgrade_trigger(&changed));
        assert!(a > 0 && b > 0 && a <= i64::from(i32::MAX));
        assert_ne!(a, b);
        assert_eq!(a, upgrade_trigger(&spec.clone()));
    }
}
