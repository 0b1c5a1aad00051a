//! `pitrix new DIR`: a catalog with one example of everything, plus the JSON Schemas its
//! files point their editors at.

use std::fs;
use std::path::Path;

use crate::error::Error;
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

/// The name the scaffold's pitrix.toml carries.
pub const EXAMPLE_NAME: &str = "my-store";

/// Writes a new catalog named [`EXAMPLE_NAME`] into `dir`, which must not exist or be empty.
pub fn new_catalog(dir: &Path) -> std::io::Result<Vec<String>> {
    new_named(dir, EXAMPLE_NAME)
}

/// The catalog name `pitrix new DIR` gives: DIR's own name when it is a DNS-1123 label (the
/// name labels every object the catalog owns, so two catalogs must not share one).
pub fn name_for(dir: &Path) -> Result<String, Error> {
    let base = dir
        .canonicalize()
        .ok()
        .or_else(|| std::env::current_dir().ok().map(|cwd| cwd.join(dir)))
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    crate::names::dns1123_label(&base)
        .map(|()| base.clone())
        .map_err(|why| {
            Error::InvalidValue(format!(
                "`{base}` cannot name the catalog ({why}); give one with --name"
            ))
        })
}

/// Writes a new catalog named `name` into `dir`, which must not exist or be empty.
pub fn new_named(dir: &Path, name: &str) -> std::io::Result<Vec<String>> {
    crate::names::dns1123_label(name).map_err(|why| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("catalog name `{name}`: {why}"),
        )
    })?;
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
        match rel.as_str() {
            "pitrix.toml" => fs::write(
                &path,
                text.replacen(
                    &format!("name = \"{EXAMPLE_NAME}\""),
                    &format!("name = \"{name}\""),
                    1,
                ),
            )?,
            _ => fs::write(&path, text)?,
        }
        written.push(rel);
    }
    Ok(written)
}

#[cfg(test)]
mod naming_tests {
    use super::*;

    #[test]
    fn a_new_catalog_is_named_after_its_directory_or_as_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("team-a");
        assert_eq!(name_for(&dir).unwrap(), "team-a");
        new_named(&dir, &name_for(&dir).unwrap()).unwrap();
        let toml = fs::read_to_string(dir.join("pitrix.toml")).unwrap();
        assert!(toml.contains("\nname = \"team-a\""), "{toml}");
        assert!(!toml.contains(&format!("name = \"{EXAMPLE_NAME}\"")));

        let why = name_for(&tmp.path().join("Team_A")).unwrap_err();
        assert_eq!(why.metric_label(), "invalid_value");
        assert!(why.to_string().contains("--name"), "{why}");
        assert!(new_named(&tmp.path().join("x"), "Not A Label").is_err());
        assert!(!tmp.path().join("x").exists(), "written despite a bad name");
    }
}
