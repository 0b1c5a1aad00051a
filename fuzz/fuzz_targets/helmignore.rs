#![no_main]
//! The `.helmignore` matcher: no panic, deterministic, and the direct matches of literal and
//! `*suffix` rules agree with the port of Go's `filepath.Match`.
//! Input: `%%% rules` and `%%% paths` sections, or text that is both (see `fuzz_harness::helmignore`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::helmignore(data));
