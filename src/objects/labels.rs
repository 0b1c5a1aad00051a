//! Label, annotation and finalizer keys, and fixed names, of the KubeSphere App Store
//! (reference §2, §4, §10). Each doc line says who reads the key.

// ---- Labels ----------------------------------------------------------------------------------

/// Label on Application/ApplicationVersion: repo name or [`UPLOAD_REPO`]; read by repo sync, the release controller (download vs store), category counts and the review list.
pub const REPO_NAME: &str = "application.kubesphere.io/repo-name";

/// Label on ApplicationVersion and ApplicationRelease: the Application name; read by version listing, latest-version logic, the app action and printer columns.
pub const APP_ID: &str = "application.kubesphere.io/app-id";

/// Label on ApplicationRelease: the ApplicationVersion name; read by the appversion controller (keeps stored data while referenced) and release clean-up.
pub const APP_VERSION_ID: &str = "application.kubesphere.io/appversion-id";

/// Label on Application/ApplicationVersion/ApplicationRelease: `helm`, `yaml` or `edge`; informational, controllers read `spec.appType`.
pub const APP_TYPE: &str = "application.kubesphere.io/app-type";

/// Label on Application: its Category name; read by the category controller (counts) and the console filter.
pub const APP_CATEGORY_NAME: &str = "application.kubesphere.io/app-category-name";

/// Label on Application: whether the chart ships CRDs (may be empty); read by the console only.
pub const HAS_CRD: &str = "application.kubesphere.io/hascrd";

/// Label on Application, `"true"` once activated in the store; read by nothing in KubeSphere's Go code.
pub const APP_STORE: &str = "application.kubesphere.io/app-store";

/// Label on executor Jobs/ConfigMaps: the release name; read by the release controller's uninstall clean-up.
pub const APP_RELEASE_NAME: &str = "application.kubesphere.io/app-release-name";

/// Label on Repo/Application/ApplicationVersion/ApplicationRelease; read by the repo controller (workspace must exist) and list filters.
pub const WORKSPACE: &str = "kubesphere.io/workspace";

/// Label on ApplicationRelease: target cluster (missing means [`DEFAULT_CLUSTER`]); read by the release controller.
pub const CLUSTER: &str = "kubesphere.io/cluster";

/// Label on ApplicationRelease: target namespace (missing means [`DEFAULT_NAMESPACE`]); read by the release controller.
pub const NAMESPACE: &str = "kubesphere.io/namespace";

/// Label `"true"` on executor Jobs/ConfigMaps; read by nothing.
pub const MANAGED: &str = "kubesphere.io/managed";

/// Label on executor install Jobs/ConfigMaps holding the Job name; read by nothing.
pub const EXECUTOR_JOB_NAME: &str = "name";

// ---- Annotations -----------------------------------------------------------------------------

/// Annotation on ApplicationRelease: the user to impersonate; read by the release controller (Helm `--kube-as-user`, YAML installer).
pub const CREATOR: &str = "kubesphere.io/creator";

/// Annotation on Application/ApplicationVersion/Repo/Category: display name; read by the console.
pub const ALIAS_NAME: &str = "kubesphere.io/alias-name";

/// Annotation on Application/ApplicationVersion/Category: description; read by the console.
pub const DESCRIPTION: &str = "kubesphere.io/description";

/// Annotation (despite KubeSphere's "LabelKey" name) on Application/ApplicationRelease: original chart name; read by the console.
pub const APP_ORIGINAL_NAME: &str = "application.kubesphere.io/app-originalName";

/// Annotation on Application/ApplicationVersion: first maintainer's name; read by the console.
pub const APP_MAINTAINERS: &str = "application.kubesphere.io/app-maintainers";

/// Annotation on Application: its latest version name; read by the console's app cards.
pub const LATEST_APP_VERSION: &str = "application.kubesphere.io/latest-app-version";

/// Annotation on ApplicationRelease: timeout recheck counter; read (and written) by the release controller.
pub const TIMEOUT_RECHECK: &str = "application.kubesphere.io/timeout-recheck";

/// Annotation on ApplicationRelease set by the console (the version); read by the console only.
pub const CONSOLE_APP_VERSION: &str = "application.kubesphere.io/app-version";

/// Annotation on ApplicationRelease set by the console (the version name); read by the console only.
pub const CONSOLE_APP_VERSION_NAME: &str = "application.kubesphere.io/app-versionName";

/// Annotation on ApplicationRelease set by the console (the app display name); read by the console only.
pub const CONSOLE_APP_DISPLAY_NAME: &str = "application.kubesphere.io/app-displayName";

/// Annotation on executor Jobs: `install` (also for upgrades) or `uninstall`; read by nothing.
pub const EXECUTOR_ACTION: &str = "executor.kubesphere.io/action";

/// Annotation on executor install Jobs: FNV-64a hex of the values bytes; read by nothing.
pub const EXECUTOR_CONFIG_HASH: &str = "executor.kubesphere.io/config-hash";

// ---- Finalizers ------------------------------------------------------------------------------

/// Finalizer on ApplicationRelease; added and removed by the release controller around uninstall.
pub const RELEASE_FINALIZER: &str = "helmrelease.application.kubesphere.io";

/// Finalizer on ApplicationVersion; handled by the appversion controller (deletes stored package).
pub const VERSION_CLEANUP_FINALIZER: &str = "application.kubesphere.io/cleanup";

/// Old ApplicationVersion finalizer; the appversion controller migrates it to [`VERSION_CLEANUP_FINALIZER`].
pub const LEGACY_STORE_CLEAN_FINALIZER: &str = "storeCleanFinalizer.application.kubesphere.io";

/// Finalizer on Category; removed by the category controller only while `status.total` is 0.
pub const CATEGORY_FINALIZER: &str = "categories.application.kubesphere.io";

// ---- Fixed values and names ------------------------------------------------------------------

/// [`REPO_NAME`] value for uploaded apps; read by the release controller (fetch from storage) and the public store/review views.
pub const UPLOAD_REPO: &str = "upload";

/// Built-in Category name and default of [`APP_CATEGORY_NAME`]; read by the category controller and the console.
pub const UNCATEGORIZED: &str = "kubesphere-app-uncategorized";

/// Namespace of package-storage ConfigMaps; read by the release and appversion controllers.
pub const STORAGE_NAMESPACE: &str = "extension-openpitrix";

/// The single `binaryData` key of a storage ConfigMap; read by the release controller.
pub const STORAGE_KEY: &str = "BinaryKey";

/// The built-in workspace, default for [`WORKSPACE`]; read by the repo controller (must exist).
pub const DEFAULT_WORKSPACE: &str = "system-workspace";

/// Cluster the release controller targets when [`CLUSTER`] is missing.
pub const DEFAULT_CLUSTER: &str = "host";

/// Namespace the release controller targets when [`NAMESPACE`] is missing.
pub const DEFAULT_NAMESPACE: &str = "default";

/// [`APP_STORE`] value once an app is activated; read by nothing in Go code.
pub const APP_STORE_TRUE: &str = "true";

// pitrix's own keys.

/// Label on every object pitrix compiles: the tool that manages it (Kubernetes' recommended key).
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Value of [`MANAGED_BY`].
pub const MANAGED_BY_PITRIX: &str = "pitrix";

/// Label on every object pitrix compiles: the catalog it comes from. Prune selects by it.
pub const PITRIX_CATALOG: &str = "pitrix.io/catalog";

/// Annotation `disabled` on objects pitrix must never prune (the storage namespace, KubeSphere's
/// built-in category).
pub const PITRIX_PRUNE: &str = "pitrix.io/prune";

/// Annotation on a Repo: the environment variable the applier reads the user name from.
pub const PITRIX_USERNAME_ENV: &str = "pitrix.io/username-env";

/// Annotation on a Repo: the environment variable the applier reads the password from.
pub const PITRIX_PASSWORD_ENV: &str = "pitrix.io/password-env";

/// Annotation on `standalone` executor Jobs and ConfigMaps: the catalog cluster (`releases/<cluster>/`)
/// they run in; apply sends them to that cluster's kubeconfig context (`[clusters.<name>]`).
pub const PITRIX_CLUSTER: &str = "pitrix.io/cluster";

/// A label of an object held as JSON.
pub fn label<'a>(object: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// An annotation of an object held as JSON.
pub fn annotation<'a>(object: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
}
