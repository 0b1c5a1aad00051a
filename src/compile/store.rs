//! Catalog-wide objects: the storage namespace, categories and synced repos.

use k8s_openapi::api::core::v1::Namespace;

use super::Object;
use super::meta::{KEEP_ON_PRUNE, MetaFactory};
use crate::catalog::Catalog;
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
            let workspace = catalog.workspace_of(&r.spec.workspace);
            let sync_period = r
                .spec
                .sync_period
                .as_ref()
                .and_then(|p| parse_seconds(&p.value).ok())
                .unwrap_or(0);
            let creds = r.spec.credentials.as_ref().map(|c| &c.value);
            let env = |v: Option<&crate::yaml::Spanned<String>>| {
                v.map(|s| s.value.clone()).unwrap_or_default()
            };
            let username_env = env(creds.and_then(|c| c.username_env.as_ref()));
            let password_env = env(creds.and_then(|c| c.password_env.as_ref()));
            let mut repo = objects::Repo::new(
                &r.name,
                RepoSpec {
                    url: r.spec.url.value.clone(),
                    credential: None,
                    description: r.spec.description.as_ref().map(|d| d.value.clone()),
                    sync_period,
                },
            );
            // Credentials never land in the output: the applier reads these variables.
            repo.metadata = meta.meta(
                &r.name,
                None,
                &[(labels::WORKSPACE, workspace)],
                &[
                    (labels::PITRIX_USERNAME_ENV, &username_env),
                    (labels::PITRIX_PASSWORD_ENV, &password_env),
                ],
            );
            Object::Repo(repo)
        })
        .collect()
}
