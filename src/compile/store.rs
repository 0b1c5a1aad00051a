//! Catalog-wide objects: the storage namespace, categories and synced repos.

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Object;
use super::meta::{KEEP_ON_PRUNE, MetaFactory};
use crate::catalog::{Catalog, Repo};
use crate::duration::parse_seconds;
use crate::objects::{self, CategorySpec, RepoSpec, labels};
use crate::yaml;

/// The namespace chart packages are stored in. It belongs to KubeSphere's OpenPitrix
/// extension; pitrix makes sure it exists but never prunes it.
pub fn storage_namespace(catalog: &Catalog, meta: &MetaFactory) -> Option<Object> {
    if catalog.apps.is_empty() || catalog.settings.packages_in_s3() {
        return None;
    }
    Some(Object::Namespace(Namespace {
        metadata: meta.meta(
            catalog.settings.storage_namespace(),
            None,
            &[],
            KEEP_ON_PRUNE,
        ),
        ..Namespace::default()
    }))
}

pub fn categories(catalog: &Catalog, meta: &MetaFactory) -> Vec<Object> {
    let mut out: Vec<Object> = catalog
        .categories
        .iter()
        .map(|c| {
            let text = |s| yaml::text(s).to_owned();
            let display = text(&c.spec.display_name);
            let description = text(&c.spec.description);
            let mut category = objects::Category::new(
                &c.name,
                CategorySpec {
                    icon: c.spec.icon.as_ref().map(|i| i.value.clone()),
                },
            );
            category.metadata = meta.meta(
                &c.name,
                None,
                &[],
                &[
                    (labels::ALIAS_NAME, &display),
                    (labels::DESCRIPTION, &description),
                ],
            );
            Object::Category(category)
        })
        .collect();
    // KubeSphere creates its built-in category lazily; uncategorized apps need it now.
    let uncategorized_used = catalog.apps.iter().any(|a| a.spec.category.is_none());
    if uncategorized_used && catalog.category(labels::UNCATEGORIZED).is_none() {
        let mut category = objects::Category::new(labels::UNCATEGORIZED, CategorySpec::default());
        category.metadata = meta.meta(labels::UNCATEGORIZED, None, &[], KEEP_ON_PRUNE);
        out.push(Object::Category(category));
    }
    out
}

pub fn repos(catalog: &Catalog, meta: &MetaFactory) -> Vec<Object> {
    catalog
        .repos
        .iter()
        .map(|r| {
            let mut repo = objects::Repo::new(
                &r.name,
                RepoSpec {
                    url: r.spec.url.value.clone(),
                    credential: None,
                    description: r.spec.description.as_ref().map(|d| d.value.clone()),
                    sync_period: sync_period(r).unwrap_or(0),
                },
            );
            repo.metadata = repo_meta(catalog, r, meta, &r.name);
            Object::Repo(repo)
        })
        .collect()
}

/// A repo's sync period in seconds, when it has a valid one.
pub(super) fn sync_period(r: &Repo) -> Option<i64> {
    r.spec
        .sync_period
        .as_ref()
        .and_then(|p| parse_seconds(&p.value).ok())
}

/// A repo object's metadata, `name` on either target: its workspace, and the environment
/// variables the applier reads its credentials from (credentials never land in the output).
pub(super) fn repo_meta(catalog: &Catalog, r: &Repo, meta: &MetaFactory, name: &str) -> ObjectMeta {
    let creds = r.spec.credentials.as_ref().map(|c| &c.value);
    let env =
        |v: Option<&crate::yaml::Spanned<String>>| v.map(|s| s.value.clone()).unwrap_or_default();
    let username_env = env(creds.and_then(|c| c.username_env.as_ref()));
    let password_env = env(creds.and_then(|c| c.password_env.as_ref()));
    meta.meta(
        name,
        None,
        &[(labels::WORKSPACE, catalog.workspace_of(&r.spec.workspace))],
        &[
            (labels::PITRIX_USERNAME_ENV, &username_env),
            (labels::PITRIX_PASSWORD_ENV, &password_env),
        ],
    )
}

/// Optional text of a catalog file, `None` when empty.
pub(super) fn text(s: &Option<crate::yaml::Spanned<String>>) -> Option<String> {
    Some(crate::yaml::text(s))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
