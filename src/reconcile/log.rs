//! The controller's log: one line per event on stderr, `<time> <level> <message>`, every
//! message through [`crate::redact::text`] so that no secret reaches a log.

use std::fmt::Display;

/// RFC 3339 "now" in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn line(level: &str, message: &dyn Display) {
    eprintln!(
        "{} {level:<5} {}",
        now_rfc3339(),
        crate::redact::text(&message.to_string())
    );
}

pub fn info(message: impl Display) {
    line("INFO", &message);
}

pub fn warn(message: impl Display) {
    line("WARN", &message);
}

pub fn error(message: impl Display) {
    line("ERROR", &message);
}
