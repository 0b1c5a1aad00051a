#![no_main]
//! `pitrix::diff::diff` of two compiles made from the input, rendered as text, Markdown and
//! JSON: secrets planted under secret-looking and `writeOnly` keys must show in no rendering.
//! Input: `%%% [old:|new:]<edit>` sections: values, chart files, objects … (see `fuzz_harness::diff`).

#[allow(dead_code)]
#[path = "../../tests/integration/fuzz_harness/mod.rs"]
mod fuzz_harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_harness::diff(data));
