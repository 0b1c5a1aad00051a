//! pitrix's integration tests, one binary (ripgrep's layout): each module is one area, linked
//! once. `cargo test --test integration <module>::` runs one area.
//!
//! The real components they run against (kube-apiserver + etcd, KubeSphere's controllers, Helm)
//! come from `scripts/setup-test-env.sh`; the control plane harness and the synthetic catalog
//! generator are the `pitrix-testkit` crate, shared with the benchmarks.

// Harnesses shared by the areas below.
use pitrix_testkit::{cluster, synth};
mod common;
mod diff_common;
mod fuzz_harness;
mod kubesphere;
mod reconcile_support;
mod repo_server;

// The areas.
mod action;
mod apply;
mod apply_lock;
mod chart_corpus;
mod cli;
mod cluster_smoke;
mod compile_diff;
mod determinism;
mod engines;
mod export;
mod fuzz_smoke;
mod golden;
mod helm_oracle;
mod hostile_archives;
mod image;
mod import;
mod kubesphere_controllers;
mod kubesphere_s3;
mod kubesphere_v3;
mod live_diff;
mod object_size;
mod output_dir;
mod ownership;
mod pack_format;
mod path_escape;
mod prerequisites;
mod publish;
mod real_charts;
mod reconcile;
mod reconcile_faults;
mod reconcile_redaction;
mod reconcile_soak;
mod reconcile_source;
mod reconcile_v3;
mod redaction;
mod s3;
mod schema;
mod site;
mod standalone;
mod sync_repos;
mod synth_catalog;
mod target_v3;
mod target_v3_kubesphere;
mod validate_rules;
mod values;
