//! The library's typed error: what kind of thing failed, the message people read, the exit
//! status of a command that meets it, and a stable label for metrics.
//!
//! Shaped as kube-rs controllers' errors are (`Error::metric_label`): the controller counts
//! failures by [`Error::metric_label`] in `pitrix_errors_total{stage=…}`, and the binary turns
//! any error into its exit status in one place with [`Error::exit_code`]. Modules that still
//! report a message (`Result<_, String>`) meet this type through `From` both ways: `?` turns an
//! [`Error`] into its message, and [`Error::Message`] carries one into the typed world.

use std::path::PathBuf;

use crate::storage::S3Error;

/// `Result` with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value given to pitrix (a flag, an option) that it cannot use.
    #[error("{0}")]
    InvalidValue(String),
    /// A local file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A catalog directory pitrix writes (export's target) that it cannot use as one.
    #[error("{0}")]
    Catalog(String),
    /// The catalog's git source: opening, fetching or checking out a revision.
    #[error("{0}")]
    Git(String),
    /// The Kubernetes API: a request to read or write objects that failed.
    #[error("{0}")]
    Cluster(String),
    /// Leader election or an apply lock: reading, taking, renewing or releasing a Lease.
    #[error("{0}")]
    Lease(String),
    /// Recording an outcome in the cluster: the inventory's status annotations, Events.
    #[error("{0}")]
    Status(String),
    /// What pitrix reads back is not what it wrote: a status ConfigMap's states, a cached
    /// object.
    #[error("{0}")]
    Corrupt(String),
    /// The /healthz, /readyz and /metrics server could not listen.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The S3-compatible object store of `[storage.s3]`, its kind kept (refused credentials,
    /// a missing bucket, the network, a key that holds other bytes), after what pitrix was
    /// doing when there is more to say than the store's own message.
    #[error("{}{source}", context.map(|c| format!("{c}: ")).unwrap_or_default())]
    Storage {
        context: Option<&'static str>,
        #[source]
        source: Box<S3Error>,
    },
    /// Objects the store must hold before anything names them were not all uploaded (or
    /// could not be: a key that holds other bytes). Nothing that names them was applied.
    #[error("{0}")]
    Upload(String),
    /// An apply that a guard stops before it writes anything (a mass prune not allowed).
    #[error("{0}")]
    Refused(String),
    /// One failure met by several callers (a compiled body that could not be read, kept for
    /// everyone who asks for it): its message, kind and label.
    #[error(transparent)]
    Shared(std::sync::Arc<Error>),
    /// The async runtime or one of its tasks failed.
    #[error("{0}")]
    Runtime(String),
    /// A failure reported as a message by a module without a typed error yet.
    #[error("{0}")]
    Message(String),
}

impl Error {
    /// The exit status of a command that fails with this error. Every error is trouble (2),
    /// as for diff(1) and `kubectl diff`: 1 is kept for findings (a catalog's errors, changes).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Shared(e) => e.exit_code(),
            Error::InvalidValue(_)
            | Error::Io { .. }
            | Error::Catalog(_)
            | Error::Git(_)
            | Error::Cluster(_)
            | Error::Lease(_)
            | Error::Status(_)
            | Error::Corrupt(_)
            | Error::Listen { .. }
            | Error::Storage { .. }
            | Error::Upload(_)
            | Error::Refused(_)
            | Error::Runtime(_)
            | Error::Message(_) => 2,
        }
    }

    /// A label for metrics that never changes with the message: the stage that failed, as
    /// `pitrix_errors_total{stage=…}` counts it (a git failure is the `fetch` stage's).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Shared(e) => e.metric_label(),
            Error::InvalidValue(_) => "invalid_value",
            Error::Io { .. } => "io",
            Error::Catalog(_) => "catalog",
            Error::Git(_) => "fetch",
            Error::Cluster(_) => "cluster",
            Error::Lease(_) => "lease",
            Error::Status(_) => "status",
            Error::Corrupt(_) => "corrupt",
            Error::Listen { .. } => "listen",
            Error::Storage { source, .. } => source.metric_label(),
            Error::Upload(_) => "upload",
            Error::Refused(_) => "refused",
            Error::Runtime(_) => "runtime",
            Error::Message(_) => "other",
        }
    }

    /// An [`Error::Storage`] that says what pitrix was doing: "`context`: `source`".
    pub fn storage(context: &'static str, source: S3Error) -> Error {
        Error::Storage {
            context: Some(context),
            source: Box::new(source),
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// `?` on the object store's calls: the store's message as it is.
impl From<S3Error> for Error {
    fn from(source: S3Error) -> Error {
        Error::Storage {
            context: None,
            source: Box::new(source),
        }
    }
}

/// `?` in a function that still returns `Result<_, String>`: the message.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

/// `?` on a message-returning function inside a typed one.
impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::Message(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_stable_and_messages_unchanged() {
        let io = Error::io(
            "/srv/cache",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(io.to_string(), "/srv/cache: denied");
        assert_eq!(io.metric_label(), "io");
        assert!(std::error::Error::source(&io).is_some());
        let git = Error::Git("cannot fetch https://git.example/c.git: timed out".into());
        assert_eq!(git.metric_label(), "fetch");
        assert_eq!(
            String::from(git),
            "cannot fetch https://git.example/c.git: timed out"
        );
        let lease = Error::Lease("forbidden".into());
        assert_eq!((lease.metric_label(), lease.exit_code()), ("lease", 2));
        let refused = crate::storage::S3Client::new(
            "http://127.0.0.1:9000",
            "Bad_Bucket",
            "us-east-1",
            true,
            "AK",
            "secret",
        )
        .unwrap_err();
        let shown = refused.to_string();
        let storage = Error::storage("cannot read KubeSphere's package store", refused);
        assert_eq!(
            storage.to_string(),
            format!("cannot read KubeSphere's package store: {shown}")
        );
        assert_eq!(
            (storage.metric_label(), storage.exit_code()),
            ("storage_config", 2)
        );
        let shared = Error::Shared(std::sync::Arc::new(Error::Corrupt("edited".into())));
        assert_eq!(
            (shared.to_string().as_str(), shared.metric_label()),
            ("edited", "corrupt")
        );
        assert_eq!(Error::Upload("1 upload(s)".into()).metric_label(), "upload");
        assert_eq!(
            Error::Refused("mass prune".into()).metric_label(),
            "refused"
        );
        let message = Error::from("apply failed".to_string());
        assert_eq!(message.metric_label(), "other");
    }
}
