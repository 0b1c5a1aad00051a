//! The controller's log: one line per record on stderr, every message through
//! [`crate::redact::text`] first (on the whole message, so that a secret in a multi-line block
//! is recognised as such) so that no secret reaches a log.
//!
//! - `--log-format text`: `<time> <LEVEL> <message>`, the message's line breaks written `\n`;
//! - `--log-format json`: one object per line, `{"time":…,"level":…,"msg":…}`.
//!
//! `--log-level` drops what is less severe.
//!
//! Written by hand rather than on `tracing` (weighed for issue #16). Redaction is not what
//! stands in the way: a small `tracing-subscriber` Layer could format each event, redact the
//! whole message and write these same lines. The one gain would be kube-rs's own events reaching
//! this log, and measured it is none: with such a layer recording every event, the 22 reconcile
//! integration tests (24 controller processes) saw no kube-rs event at info or warn, and at
//! error only 86 lines "failed with error client error (Connect)" from kube-client's HTTP trace
//! layer (74 in one process during an outage) — one per failed request, each retried and then
//! reported by pitrix with what it was doing, so they would only double pitrix's own lines,
//! without the throttle pitrix puts on a failure that repeats (a watch's, once a minute; the
//! lease's, when it changes) — as would kube-runtime's watcher, which warns of a 403 on every
//! retry (not met in those tests: their RBAC suffices). Below info kube-client, hyper-util and tower wrote
//! 37,000 debug and trace events, which `--log-level debug` would have to filter back out by
//! target. It would bring four crates (tracing-subscriber, sharded-slab, thread_local,
//! lazy_static) to replace the few lines of `record`, and pitrix's call sites (a message each)
//! would gain nothing from turning into macros.

use std::fmt::Display;
use std::io::Write as _;
use std::sync::OnceLock;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `<time> <LEVEL> <message>`, one line per record.
    #[default]
    Text,
    /// One JSON object per line: `time`, `level`, `msg`.
    Json,
}

/// `--log-level`: the least severe records written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
}

impl LogFormat {
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// The name `--log-format` takes.
    pub fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl LogLevel {
    pub const ALL: [LogLevel; 4] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
    ];

    /// The name `--log-level` takes, and a JSON record's `level`.
    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        }
    }
}

super::named_enum!(LogFormat, "a log format");
super::named_enum!(LogLevel, "a log level");

static CONFIG: OnceLock<(LogFormat, LogLevel)> = OnceLock::new();

/// Sets the format and level for the rest of the process (the first call wins).
pub fn init(format: LogFormat, level: LogLevel) {
    let _ = CONFIG.set((format, level));
}

/// RFC 3339 "now" in UTC with milliseconds.
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// One record as one line (with its `\n`), the message redacted.
fn format_line(format: LogFormat, time: &str, level: LogLevel, message: &str) -> String {
    let message = crate::redact::text(message);
    match format {
        LogFormat::Text => {
            let mut one_line = String::with_capacity(message.len());
            for c in message.trim_end().chars() {
                match c {
                    '\n' => one_line.push_str("\\n"),
                    '\r' => one_line.push_str("\\r"),
                    c => one_line.push(c),
                }
            }
            format!(
                "{time} {:<5} {one_line}\n",
                level.name().to_ascii_uppercase()
            )
        }
        LogFormat::Json => {
            // serde_json escapes every control character: the object stays on one line.
            let record = serde_json::json!({
                "time": time,
                "level": level.name(),
                "msg": message.trim_end(),
            });
            format!("{record}\n")
        }
    }
}

fn record(level: LogLevel, message: &dyn Display) {
    let (format, max) = CONFIG.get().copied().unwrap_or_default();
    if level > max {
        return;
    }
    let line = format_line(format, &now_rfc3339(), level, &message.to_string());
    // One write per line, so that lines from several threads do not interleave.
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

pub fn debug(message: impl Display) {
    record(LogLevel::Debug, &message);
}

pub fn info(message: impl Display) {
    record(LogLevel::Info, &message);
}

pub fn warn(message: impl Display) {
    record(LogLevel::Warn, &message);
}

pub fn error(message: impl Display) {
    record(LogLevel::Error, &message);
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "ghp_0123456789abcdefghijABCDEFGHIJ012345";

    #[test]
    fn json_is_one_object_per_line_with_secrets_masked() {
        let message = format!(
            "cannot fetch https://pitrix:{TOKEN}@git.example/c.git:\n  values:\n    password: hunter2\n  \"quoted\" \t tab"
        );
        let line = format_line(
            LogFormat::Json,
            "2026-01-01T00:00:00.000Z",
            LogLevel::Warn,
            &message,
        );
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(!line.contains(TOKEN) && !line.contains("hunter2"), "{line}");
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["time"], "2026-01-01T00:00:00.000Z");
        let msg = v["msg"].as_str().unwrap();
        assert!(msg.contains("https://***@git.example/c.git"), "{msg}");
        assert!(msg.contains("password: ***"), "{msg}");
        assert!(msg.contains("\"quoted\""), "{msg}");
    }

    #[test]
    fn text_is_one_line_per_record_with_secrets_masked() {
        let message = format!("line one\npassword: hunter2\nBearer {TOKEN}\n");
        let line = format_line(
            LogFormat::Text,
            "2026-01-01T00:00:00.000Z",
            LogLevel::Error,
            &message,
        );
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(
            line.starts_with("2026-01-01T00:00:00.000Z ERROR line one\\npassword: ***\\n"),
            "{line}"
        );
        assert!(!line.contains(TOKEN) && !line.contains("hunter2"), "{line}");
    }

    #[test]
    fn levels_in_order_of_verbosity() {
        assert!(LogLevel::Error < LogLevel::Warn);
        assert!(LogLevel::Warn < LogLevel::Info);
        assert!(LogLevel::Info < LogLevel::Debug);
        assert_eq!(LogLevel::default(), LogLevel::Info);
        assert_eq!(LogFormat::default(), LogFormat::Text);
    }
}
