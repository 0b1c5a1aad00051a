//! The stable diagnostic codes. A code never changes meaning once released; scripts and the
//! GitHub annotations key on them.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $text:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text,)*
                }
            }

            /// One line on what the code means.
            pub fn summary(self) -> &'static str {
                match self {
                    $(Code::$variant => concat!($($doc),*).trim_ascii(),)*
                }
            }
        }
    };
}

codes! {
    /// A file could not be read.
    Io => "io",
    /// pitrix's own spool or cache (not the catalog) could not be written or read back: its
    /// disk space or permissions.
    CacheIo => "cache-io",
    /// A YAML file does not parse.
    YamlSyntax => "yaml-syntax",
    /// pitrix.toml does not parse.
    TomlSyntax => "toml-syntax",
    /// A key that the file format does not have.
    UnknownKey => "unknown-key",
    /// A required key is missing.
    MissingKey => "missing-key",
    /// A value of the wrong type or outside the allowed set.
    InvalidValue => "invalid-value",
    /// The catalog has no pitrix.toml.
    MissingSettings => "missing-settings",
    /// A file or directory where the catalog layout has no place for it.
    UnexpectedFile => "unexpected-file",
    /// A name that is not a DNS-1123 label.
    InvalidName => "invalid-name",
    /// A name or derived ID longer than KubeSphere can carry.
    NameTooLong => "name-too-long",
    /// Two files that give one object the same name (`x.yaml` and `x.yml`, `1.0.0/` and `1.0.0.tgz`).
    DuplicateName => "duplicate-name",
    /// Two releases with one name (ApplicationRelease is cluster-scoped).
    DuplicateRelease => "duplicate-release",
    /// A name KubeSphere reserves.
    ReservedName => "reserved-name",
    /// A chart version without Chart.yaml.
    ChartMissing => "chart-missing",
    /// Chart.yaml that Helm would refuse.
    ChartInvalid => "chart-invalid",
    /// A chart version that is not SemVer 2.
    ChartVersionNotSemver => "chart-version-not-semver",
    /// The chart's version differs from the version it is filed under.
    ChartVersionMismatch => "chart-version-mismatch",
    /// A package over the 1 MiB ConfigMap storage budget.
    PackageTooLarge => "package-too-large",
    /// A packaged chart that is unsafe or broken (path traversal, links, bombs, corruption).
    ChartArchive => "chart-archive",
    /// A chart over Helm's size limits (100 MiB unpacked, 5 MiB per file).
    ChartTooLarge => "chart-too-large",
    /// A reference to a category the catalog does not have.
    UnknownCategory => "unknown-category",
    /// A release of an app the catalog does not have.
    UnknownApp => "unknown-app",
    /// A reference to a version the app does not have.
    UnknownVersion => "unknown-version",
    /// A release of a synced-repo chart whose repo the catalog does not have.
    UnknownRepo => "unknown-repo",
    /// A release in a cluster that pitrix.toml does not declare.
    UnknownCluster => "unknown-cluster",
    /// A `standalone` release in a member cluster that no kubeconfig context is mapped to.
    ClusterWithoutContext => "cluster-without-context",
    /// A release of a version that is not active (KubeSphere's webhook refuses it).
    VersionNotActive => "version-not-active",
    /// An app in state active with no active or passed version.
    NoActiveVersion => "no-active-version",
    /// A review state KubeSphere does not know.
    InvalidState => "invalid-state",
    /// A repository URL that is neither http(s) nor oci.
    RepoUrl => "repo-url",
    /// A secret written into a catalog file.
    LiteralSecret => "literal-secret",
    /// A duration that does not parse.
    InvalidDuration => "invalid-duration",
    /// A YAML-app manifest that is not a Kubernetes object.
    ManifestInvalid => "manifest-invalid",
    /// An icon or screenshot that is missing, of the wrong format or too large.
    InvalidImage => "invalid-image",
    /// A values file that is missing or not a mapping.
    InvalidValues => "invalid-values",
    /// A values template that does not render (undefined name, bad filter, syntax).
    Template => "template",
    /// Merged values the chart's values.schema.json refuses.
    ValuesSchema => "values-schema",
    /// A release the `standalone` target cannot install (e.g. a synced-repo chart).
    Standalone => "standalone",
    /// `--env` names an environment pitrix.toml does not have.
    UnknownEnvironment => "unknown-environment",
    /// A version whose package differs from the one the base revision stores (packages are immutable).
    PackageChanged => "package-changed",
    /// A synced repo's index could not be fetched or read (`--online`, `pitrix lock`).
    RepoIndex => "repo-index",
    /// A release of `<repo>/<chart>` whose repo index has no such chart.
    UnknownChart => "unknown-chart",
    /// pitrix.lock disagrees with the repo's index (a published version changed upstream).
    LockMismatch => "lock-mismatch",
    /// pitrix.lock does not parse.
    LockInvalid => "lock-invalid",
    /// A release of a synced-repo chart that neither pitrix.lock nor `--online` verified.
    UnverifiedRelease => "unverified-release",
    /// Two apps that would publish one chart name to the Helm repository (`--publish`).
    PublishConflict => "publish-conflict",
    /// A path the catalog names that resolves (through a symlink) outside the catalog root.
    PathEscape => "path-escape",
    /// A values template that ran out of its instruction budget (loops too large).
    TemplateBudget => "template-budget",
    /// A values.schema.json too large or too recursive to check within the node budget.
    SchemaBudget => "schema-budget",
    /// A compiled object over etcd's 1.5 MiB request limit.
    ObjectTooLarge => "object-too-large",
    /// A live object the catalog wants that is not the catalog's (no mark, or another catalog's).
    NotOwned => "not-owned",
    /// Something KubeSphere needs first is missing in the cluster (a workspace, a namespace, a Cluster).
    MissingPrerequisite => "missing-prerequisite",
    /// A dependency the chart names (Chart.yaml, requirements.yaml) that is not in charts/.
    ChartDependencyMissing => "chart-dependency-missing",
    /// A chart package at 90 % or more of KubeSphere's 1 MiB storage budget.
    PackageNearLimit => "package-near-limit",
    /// Chart.yaml's `version` written as a YAML number that Helm reads as other text
    /// (`1.10` → `1.1`).
    ChartVersionNumber => "chart-version-number",
    /// A catalog KubeSphere 3.x (`target = "kubesphere-v3"`) cannot hold as it is: an app,
    /// release, category or repo outside 3.x's rules, or no `[storage.s3]`.
    KubesphereV3 => "kubesphere-v3",
    /// A subchart in charts/ that the chart's `dependencies` do not name: Helm installs it,
    /// `helm lint` fails (`chart metadata is missing these dependencies`).
    ChartSubchartUndeclared => "chart-subchart-undeclared",
    /// A vendored subchart archive (`charts/*.tgz`, at any depth) that cannot be unpacked or
    /// has no Chart.yaml: Helm refuses to load the chart.
    ChartSubchartUnreadable => "chart-subchart-unreadable",
    /// A screenshot `id` that is not an attachment ID of the target's KubeSphere
    /// (4.x: `<field>-att-<5 of a-z0-9>`, a ConfigMap name; 3.x: `att-<letters and digits>`).
    InvalidAttachmentId => "invalid-attachment-id",
    /// Two screenshots stored under one attachment ID (IDs are store-wide, not per app).
    DuplicateAttachmentId => "duplicate-attachment-id",
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown diagnostic code `{text}`")))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
