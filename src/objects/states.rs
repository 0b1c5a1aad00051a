//! The closed vocabularies KubeSphere stores as plain strings: review states, app types, Repo
//! sync states and ApplicationRelease states (reference §1, §5.3, §6).
//!
//! The CR fields themselves stay `String`s, as on the wire (the review REST handler stores any
//! string, and a cluster may hold values pitrix does not know). These enums are for code that
//! writes or inspects those fields.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A string that is not one of the values of a state enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseStateError {
    /// The enum that was asked for, for example `ReviewState`.
    pub kind: &'static str,
    /// The string that did not match.
    pub value: String,
}

impl fmt::Display for ParseStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.kind, self.value)
    }
}

impl std::error::Error for ParseStateError {}

/// Declares an enum whose variants are fixed wire strings, with `as_str`, `ALL`, `Display`,
/// `FromStr` and serde in terms of those strings.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $( $(#[$variant_meta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The exact string KubeSphere stores.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseStateError;

            /// Exact, case-sensitive match on the stored string.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok(Self::$variant),)+
                    _ => Err(ParseStateError { kind: stringify!($name), value: s.to_owned() }),
                }
            }
        }
    };
}

string_enum! {
    /// Review state of an Application or ApplicationVersion (`status.state`, reference §6).
    /// No controller moves these; only the REST handlers, or pitrix writing `/status` itself.
    pub enum ReviewState {
        /// Initial state of uploads; also what "cancel" sends.
        Draft = "draft",
        /// Waiting for review.
        Submitted = "submitted",
        /// Reviewed; still not installable until `active`.
        Passed = "passed",
        /// Review refused.
        Rejected = "rejected",
        /// Released: the only state the release webhook accepts for a version.
        Active = "active",
        /// Taken off the store.
        Suspended = "suspended",
    }
}

string_enum! {
    /// `spec.appType` of Application, ApplicationVersion and ApplicationRelease.
    /// Only `helm` selects the Helm path; everything else is installed as YAML.
    pub enum AppType {
        /// A Helm chart, installed by the executor Job.
        Helm = "helm",
        /// A multi-document YAML manifest, applied in-controller.
        Yaml = "yaml",
        /// Edge app; installed by the YAML path.
        Edge = "edge",
    }
}

string_enum! {
    /// Repo `status.state` values the repo controller writes or reacts to (reference §1.1, §7).
    pub enum RepoState {
        /// Created, never synced.
        Created = "created",
        /// A sync is running.
        Syncing = "syncing",
        /// The last sync succeeded.
        Successful = "successful",
        /// Written by a client to ask for a sync now.
        ManualTrigger = "manualTrigger",
    }
}

string_enum! {
    /// ApplicationRelease `status.state` values the release controller writes (reference §5.3).
    pub enum ReleaseState {
        /// First reconcile; the install is about to start.
        Creating = "creating",
        /// The install Job was created.
        Created = "created",
        /// The spec hash changed; an upgrade is about to start.
        Upgrading = "upgrading",
        /// The upgrade Job was created.
        Upgraded = "upgraded",
        /// Installed and ready.
        Active = "active",
        /// Helm reported a failure, or the Job could not be created. Terminal.
        Failed = "failed",
        /// The install Job failed or vanished. Terminal.
        DeployFailed = "deployFailed",
        /// Helm hit its deadline; the controller rechecks readiness.
        Timeout = "timeout",
        /// The CR is being deleted; the uninstall runs.
        Deleting = "deleting",
        /// The target Cluster is being deleted.
        ClusterDeleted = "clusterDeleted",
    }
}

impl ReleaseState {
    /// States the controller leaves alone until the spec changes.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::DeployFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn review_states_round_trip_lowercase() {
        for state in ReviewState::ALL {
            let text = state.as_str();
            assert_eq!(text, text.to_lowercase());
            assert_eq!(text.parse::<ReviewState>(), Ok(*state));
            assert_eq!(state.to_string(), text);
            assert_eq!(serde_json::to_value(state).unwrap(), Value::from(text));
            let back: ReviewState = serde_json::from_value(Value::from(text)).unwrap();
            assert_eq!(back, *state);
        }
        assert_eq!(ReviewState::ALL.len(), 6);
    }

    #[test]
    fn parse_is_exact() {
        let err = "Active".parse::<ReviewState>().unwrap_err();
        assert_eq!(err.kind, "ReviewState");
        assert_eq!(err.to_string(), "unknown ReviewState \"Active\"");
        assert_eq!(
            "manualTrigger".parse::<RepoState>(),
            Ok(RepoState::ManualTrigger)
        );
        assert_eq!("deployFailed".parse(), Ok(ReleaseState::DeployFailed));
        assert!("HELM".parse::<AppType>().is_err());
        assert_eq!(AppType::Helm.as_str(), "helm");
    }
}
