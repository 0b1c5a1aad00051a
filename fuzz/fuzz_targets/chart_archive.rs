#![no_main]
//! `pitrix::chart::read_archive` (default and small limits) and `pack`: hostile packages must be
//! refused without a panic, and what is accepted must pack and read back the same.
//! Input: a `.tgz`, or `F`/`T` + an uncompressed tar (see `fuzz_harness::chart_archive`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::chart_archive(data));
