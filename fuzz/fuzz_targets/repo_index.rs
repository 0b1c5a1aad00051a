#![no_main]
//! `pitrix::repo::index::parse`: a hostile index.yaml must be refused without a panic, and
//! what is kept is valid, filtered consistently and reads back the same.
//! Input: an index.yaml (see `fuzz_harness::repo_index`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::repo_index(data));
