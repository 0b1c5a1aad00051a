//! Charts: Chart.yaml as Helm validates it, the version it is filed under, and the 1 MiB
//! ConfigMap storage budget.

use crate::catalog::{App, Catalog, ChartMeta, Version, VersionSource};
use crate::diagnostics::{Code, Diagnostic, Diagnostics, Pos};
use crate::yaml::Spanned;

/// KubeSphere's upload limit when packages live in ConfigMaps (reference §4).
pub const MAX_PACKAGE_BYTES: usize = 1_048_576;

pub fn check(catalog: &Catalog, diags: &mut Diagnostics) {
    // S3 has no 1 MiB budget; only ConfigMaps do.
    let budgeted = !catalog.settings.packages_in_s3();
    for app in &catalog.apps {
        for v in &app.versions {
            if budgeted {
                check_package_size(v, diags);
            }
            if let Some(meta) = &v.chart {
                check_chart_meta(app, v, meta, diags);
            }
        }
        check_version_intents(app, diags);
    }
    check_install_budget(catalog, budgeted, diags);
}

/// What a KubeSphere 4 Helm executor's ConfigMap holds besides the chart and the values: the
/// kubeconfig (2 KiB with a token, several with client certificates), the post-renderer and
/// the kustomization (tests/integration/kubesphere_s3.rs measured 2,133 bytes), with room.
const EXECUTOR_OVERHEAD_BYTES: usize = 16 * 1024;

/// A release's chart travels to KubeSphere 4's Helm executor Job in one ConfigMap, with its
/// values and a kubeconfig (`kubesphere.io/utils/helm` `createConfigMap`), and the API server
/// caps a ConfigMap at 1 MiB: a package stored in S3 may be larger, but no release can install
/// it, and one just under the storage budget may not fit either. (3.x installs in process.)
fn check_install_budget(catalog: &Catalog, budgeted: bool, diags: &mut Diagnostics) {
    if catalog.settings.target() == crate::catalog::Target::KubesphereV3 {
        return;
    }
    for r in &catalog.releases {
        let crate::catalog::AppRef::Catalog(name) = r.app_ref() else {
            continue;
        };
        let Some(v) = catalog
            .app(name)
            .and_then(|a| a.version(&r.spec.version.value))
        else {
            continue;
        };
        // Over the storage budget already: that error says it.
        if budgeted && v.package.len() > MAX_PACKAGE_BYTES {
            continue;
        }
        let merged = r.merged_values();
        let values = match merged.is_empty() {
            true => 0,
            false => serde_yaml::to_string(&merged).map(|t| t.len()).unwrap_or(0),
        };
        // Values too large for the release object itself (base64 in its spec): one root
        // cause, which `object-too-large` names after compiling.
        if values.div_ceil(3) * 4 > crate::compile::size::MAX_OBJECT_BYTES {
            continue;
        }
        let needed = v.package.len() + values + EXECUTOR_OVERHEAD_BYTES;
        if needed > MAX_PACKAGE_BYTES {
            diags.push(
                Diagnostic::error(
                    Code::PackageTooLarge,
                    format!(
                        "release `{}` installs {} {}, whose package ({} bytes) and values ({values} bytes) do not fit the 1 MiB ConfigMap KubeSphere's Helm executor Job reads, with the kubeconfig it adds ({EXECUTOR_OVERHEAD_BYTES} bytes are kept for it)",
                        r.name,
                        name,
                        v.name,
                        v.package.len()
                    ),
                )
                .in_file(&r.file)
                .at(r.spec.version.pos)
                .hint("KubeSphere can store it (in S3) but not install it: make the chart smaller (.helmignore, fewer vendored files) or install it another way"),
            );
        }
    }
}

/// The share of the budget from which a package gets a warning: 90 %.
const NEAR_LIMIT_BYTES: usize = MAX_PACKAGE_BYTES / 10 * 9;

fn check_package_size(v: &Version, diags: &mut Diagnostics) {
    let size = v.package.len();
    if size > MAX_PACKAGE_BYTES {
        diags.push(
            Diagnostic::error(
                Code::PackageTooLarge,
                format!(
                    "version {} packs to {size} bytes; KubeSphere stores at most {MAX_PACKAGE_BYTES} bytes (1 MiB) per version{}",
                    v.path.display(),
                    largest_files(v)
                ),
            )
            .in_file(&v.path)
            .hint(OVER_BUDGET_HINT),
        );
    } else if size >= NEAR_LIMIT_BYTES {
        diags.push(
            Diagnostic::warning(
                Code::PackageNearLimit,
                format!(
                    "version {} packs to {size} bytes, {:.1} % of KubeSphere's {MAX_PACKAGE_BYTES}-byte (1 MiB) budget per version{}",
                    v.path.display(),
                    size as f64 * 100.0 / MAX_PACKAGE_BYTES as f64,
                    largest_files(v)
                ),
            )
            .in_file(&v.path)
            .hint(format!(
                "a few more KiB and it cannot be stored; {OVER_BUDGET_HINT}"
            )),
        );
    }
}

const OVER_BUDGET_HINT: &str = "packages live in a ConfigMap: drop files the chart does not need with .helmignore, \
     commit the Helm-built package (`helm package`, filed as apps/<app>/<version>.tgz), \
     publish the chart in a synced repo, or store packages in KubeSphere's S3 store";

/// "; largest files (unpacked): a (n bytes), b (m bytes), …": the five largest files of the
/// chart, empty when it has none to list (a YAML app).
fn largest_files(v: &Version) -> String {
    let Some(files) = v.chart_files() else {
        return String::new();
    };
    let mut sizes: Vec<(&String, usize)> = files.files.iter().map(|(p, d)| (p, d.len())).collect();
    sizes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let listed: Vec<String> = sizes
        .iter()
        .take(5)
        .map(|(p, n)| format!("{} ({n} bytes)", crate::diff::render::escape_controls(p)))
        .collect();
    if listed.is_empty() {
        return String::new();
    }
    format!("; largest files (unpacked): {}", listed.join(", "))
}

/// Chart.yaml's checks, as Helm's `Metadata.Validate` and KubeSphere's upload do them.
fn check_chart_meta(app: &App, v: &Version, meta: &ChartMeta, diags: &mut Diagnostics) {
    let at = |pos: Option<Pos>| if meta.in_archive { None } else { pos };
    let err = |code: Code, message: String, pos: Option<Pos>| {
        let message = if meta.in_archive {
            format!("{message} (Chart.yaml inside {})", v.path.display())
        } else {
            message
        };
        Diagnostic::error(code, message)
            .in_file(&meta.file)
            .at_opt(at(pos))
    };
    let pos_of = |s: &Option<Spanned<String>>| s.as_ref().map(|s| s.pos);

    match meta.api_version.as_ref().map(|s| s.value.as_str()) {
        Some("v1" | "v2") => {}
        Some(other) => diags.push(
            err(
                Code::ChartInvalid,
                format!("apiVersion `{other}` is not a Helm chart API version"),
                pos_of(&meta.api_version),
            )
            .hint("use `apiVersion: v2` (Helm 3)"),
        ),
        None => diags.push(
            err(
                Code::ChartInvalid,
                "Chart.yaml has no `apiVersion`".into(),
                None,
            )
            .hint("add `apiVersion: v2`"),
        ),
    }
    match meta.name.as_ref().map(|s| s.value.as_str()) {
        None | Some("") => diags.push(
            err(Code::ChartInvalid, "Chart.yaml has no `name`".into(), None)
                .hint(format!("add `name: {}`", app.name)),
        ),
        Some(n) if n.contains(['/', '\\']) || n == "." || n == ".." => diags.push(
            err(
                Code::ChartInvalid,
                format!("chart name `{n}` must be a bare file name"),
                pos_of(&meta.name),
            )
            .hint("Helm refuses chart names with path separators"),
        ),
        Some(_) => {}
    }
    if let Some(t) = &meta.chart_type {
        if !matches!(t.value.as_str(), "application" | "library") {
            diags.push(
                err(
                    Code::ChartInvalid,
                    format!(
                        "chart type `{}` is neither `application` nor `library`",
                        t.value
                    ),
                    Some(t.pos),
                )
                .hint("Helm accepts only these two types"),
            );
        } else if t.value == "library" {
            diags.push(
                err(Code::ChartInvalid, "a library chart cannot be installed as an app".into(), Some(t.pos))
                    .hint("library charts are dependencies of other charts; publish them in a Helm repo instead"),
            );
        }
    }
    match &meta.version {
        None => diags.push(
            err(
                Code::ChartInvalid,
                "Chart.yaml has no `version`".into(),
                None,
            )
            .hint(format!(
                "add `version: {}`, the version it is filed under",
                v.name
            )),
        ),
        Some(version) => {
            if let Some(read) = &meta.version_as_helm_reads {
                diags.push(
                    Diagnostic::warning(
                        Code::ChartVersionNumber,
                        format!(
                            "`version: {}` is a YAML number: Helm reads it as `{read}`, not as written",
                            version.value
                        ),
                    )
                    .in_file(&meta.file)
                    .at_opt(at(Some(version.pos)))
                    .hint(format!("quote it: `version: \"{}\"`", version.value)),
                );
            }
            let strict = semver::Version::parse(&version.value);
            let v_prefixed = version
                .value
                .strip_prefix('v')
                .is_some_and(|rest| semver::Version::parse(rest).is_ok());
            if strict.is_err()
                && !v_prefixed
                && crate::load::deps::parse_version(&version.value).is_some()
            {
                // Helm loads `1.0` and `1` too (Masterminds' loose form; `helm lint` warns), but
                // KubeSphere orders versions with a strict SemVer parse and skips one that
                // fails (pkg/simple/client/application/helper.go:305-309).
                diags.push(
                    Diagnostic::warning(
                        Code::ChartVersionNotSemver,
                        format!(
                            "chart version `{}` is not a valid SemVer 2; Helm accepts it, but KubeSphere skips it when it picks the app's latest version",
                            version.value
                        ),
                    )
                    .in_file(&meta.file)
                    .at_opt(at(Some(version.pos)))
                    .hint("`helm lint` warns about it too; spell it with three numbers, e.g. `1.0.0`"),
                );
            } else if strict.is_err() && v_prefixed {
                // Helm loads it (Masterminds' NewVersion takes a leading `v`); `helm lint` warns
                // "version 'v1.19.6' is not a valid SemVerV2". cert-manager versions every
                // release so, and KubeSphere orders them with the `v` trimmed. The version ID
                // keeps it (`cert-manager-v1.19.6`): FormatVersion leaves a DNS-1123 version as
                // it is (kubesphere 04a29b5, pkg/simple/client/application/helper.go:587-589).
                diags.push(
                    Diagnostic::warning(
                        Code::ChartVersionNotSemver,
                        format!(
                            "chart version `{}` is not a valid SemVer 2 (a leading `v`); Helm and KubeSphere accept it",
                            version.value
                        ),
                    )
                    .in_file(&meta.file)
                    .at_opt(at(Some(version.pos)))
                    .hint(format!(
                        "`helm lint` warns about it too; `{}` is the SemVer 2 spelling",
                        &version.value[1..]
                    )),
                );
            } else if let Err(e) = strict {
                diags.push(
                    err(
                        Code::ChartVersionNotSemver,
                        format!("chart version `{}` is not SemVer 2: {e}", version.value),
                        Some(version.pos),
                    )
                    .hint("Helm and KubeSphere require SemVer 2, e.g. `1.2.0` or `1.2.0-rc.1`"),
                );
            }
            if version.value != v.name {
                let filed = match v.source {
                    VersionSource::ChartArchive => format!("{}.tgz", version.value),
                    _ => version.value.clone(),
                };
                diags.push(
                    err(
                        Code::ChartVersionMismatch,
                        format!(
                            "app `{}` files this chart as version `{}`, but its Chart.yaml says `{}`",
                            app.name, v.name, version.value
                        ),
                        Some(version.pos),
                    )
                    .hint(format!("rename {} to {filed}, or set the chart's version to `{}`", v.path.display(), v.name)),
                );
            }
        }
    }
}

/// Every version app.yaml gives a state must exist.
fn check_version_intents(app: &App, diags: &mut Diagnostics) {
    for key in app.spec.versions.keys() {
        if app.version(&key.value).is_none() && !app.unloaded_versions.contains(&key.value) {
            let known: Vec<&str> = app.versions.iter().map(|v| v.name.as_str()).collect();
            let d = Diagnostic::error(
                Code::UnknownVersion,
                format!(
                    "app.yaml sets the state of version `{}`, which app `{}` does not have",
                    key.value, app.name
                ),
            )
            .in_file(&app.file)
            .at(key.pos);
            diags.push(
                match crate::diagnostics::did_you_mean(&key.value, known.iter().copied()) {
                    Some(m) => d.hint(format!("did you mean `{m}`?")),
                    None => d.hint(format!(
                        "add the chart as {}/{}/ or {}/{}.tgz",
                        app.dir.display(),
                        key.value,
                        app.dir.display(),
                        key.value
                    )),
                },
            );
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;
    use crate::catalog::VersionSource;
    use crate::diagnostics::Severity;

    /// Incompressible bytes (xorshift), so that the package is about as big as the file.
    fn noise(len: usize) -> Vec<u8> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn version(blob: usize) -> Version {
        let mut files = crate::chart::ChartFiles::new();
        files
            .insert(
                "Chart.yaml",
                b"apiVersion: v2\nname: big\nversion: 1.0.0\n".to_vec(),
            )
            .unwrap();
        files.insert("files/blob.bin", noise(blob)).unwrap();
        files.insert("files/small.txt", b"x".to_vec()).unwrap();
        for i in 0..5 {
            files
                .insert(&format!("templates/t{i}.yaml"), vec![b'a'; 100 + i])
                .unwrap();
        }
        let package = crate::chart::pack("big", &files);
        Version {
            name: "1.0.0".into(),
            path: "apps/big/1.0.0".into(),
            source: VersionSource::ChartDir,
            chart: None,
            digest: crate::chart::digest(&package),
            package: package.into(),
        }
    }

    fn check(v: &Version) -> Vec<crate::diagnostics::Diagnostic> {
        let mut diags = Diagnostics::default();
        check_package_size(v, &mut diags);
        diags.iter().cloned().collect()
    }

    #[test]
    fn a_package_near_the_budget_is_a_warning_naming_the_largest_files() {
        let v = version(960 * 1024);
        let found = check(&v);
        assert_eq!(found.len(), 1, "{found:?}");
        let d = &found[0];
        assert_eq!(d.code, Code::PackageNearLimit);
        assert_eq!(d.severity, Severity::Warning);
        assert!(d.message.contains("% of KubeSphere's"), "{}", d.message);
        assert!(
            d.message
                .contains(&format!("files/blob.bin ({} bytes)", 960 * 1024)),
            "{}",
            d.message
        );
        assert!(d.hint.as_deref().unwrap().contains(".helmignore"));
    }

    #[test]
    fn a_package_over_the_budget_lists_the_five_largest_files_and_the_ways_out() {
        let v = version(1100 * 1024);
        let found = check(&v);
        assert_eq!(found.len(), 1, "{found:?}");
        let d = &found[0];
        assert_eq!(d.code, Code::PackageTooLarge);
        assert_eq!(d.severity, Severity::Error);
        let listed = d
            .message
            .split("largest files (unpacked): ")
            .nth(1)
            .unwrap();
        assert_eq!(
            listed,
            format!(
                "files/blob.bin ({} bytes), templates/t4.yaml (104 bytes), templates/t3.yaml (103 bytes), templates/t2.yaml (102 bytes), templates/t1.yaml (101 bytes)",
                1100 * 1024
            )
        );
        let hint = d.hint.as_deref().unwrap();
        for way in [".helmignore", "helm package", ".tgz", "synced repo", "S3"] {
            assert!(hint.contains(way), "{way}: {hint}");
        }
    }

    #[test]
    fn a_small_package_says_nothing() {
        assert!(check(&version(1024)).is_empty());
    }
}
