#![no_main]
//! The whole catalog loader: `pitrix::pipeline::check` over a catalog directory written from the
//! input, the diagnostics rendered, and compile + emit when it validates.
//! Input: `%%% <path>` sections, one per file (see `fuzz_harness::catalog_loader`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::catalog_loader(data));
