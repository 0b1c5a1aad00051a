//! `pitrix new DIR`: a catalog with one example of everything, plus the JSON Schemas its
//! files point their editors at.

use std::fs;
use std::path::Path;

use crate::schema::catalog_schemas;

/// The scaffold, embedded from `templates/new/`.
const FILES: &[(&str, &str)] = &[
    (
        "apps/hello/0.1.0/Chart.yaml",
        include_str!("../templates/new/apps/hello/0.1.0/Chart.yaml"),
    ),
    (
        "apps/hello/0.1.0/templates/deployment.yaml",
        include_str!("../templates/new/apps/hello/0.1.0/templates/deployment.yaml"),
    ),
    (
        "apps/hello/0.1.0/templates/service.yaml",
        include_str!("../templates/new/apps/hello/0.1.0/templates/service.yaml"),
    ),
    (
        "apps/hello/0.1.0/values.yaml",
        include_str!("../templates/new/apps/hello/0.1.0/values.yaml"),
    ),
    (
        "apps/hello/app.yaml",
        include_str!("../templates/new/apps/hello/app.yaml"),
    ),
    (
        "apps/hello/icon.svg",
        include_str!("../templates/new/apps/hello/icon.svg"),
    ),
    (
        "categories/tools.yaml",
        include_str!("../templates/new/categories/tools.yaml"),
    ),
    ("pitrix.toml", include_str!("../templates/new/pitrix.toml")),
    (
        "releases/host/default/hello.yaml",
        include_str!("../templates/new/releases/host/default/hello.yaml"),
    ),
    (
        "repos/bitnami.yaml",
        include_str!("../templates/new/repos/bitnami.yaml"),
    ),
    (
        "values/common.yaml",
        include_str!("../templates/new/values/common.yaml"),
    ),
];

/// Writes a new catalog into `dir`, which must not exist or be empty.
pub fn new_catalog(dir: &Path) -> std::io::Result<Vec<String>> {
    if dir.exists() && fs::read_dir(dir)?.next().is_some() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists and is not empty", dir.display()),
        ));
    }
    let mut written = Vec::new();
    let schemas = catalog_schemas();
    let schema_files = schemas
        .iter()
        .map(|(name, text)| (format!("schema/{name}"), text.as_str()));
    let files = FILES
        .iter()
        .map(|(p, t)| (p.to_string(), *t))
        .chain(schema_files);
    for (rel, text) in files {
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&path, text)?;
        written.push(rel);
    }
    Ok(written)
}
