//! What pitrix's integration tests (`tests/integration`) and benchmarks (`benches/`) share:
//! a real control plane started by the test itself, a real S3 server, and the synthetic catalog
//! generator.

pub mod cluster;
pub mod s3;
pub mod synth;
