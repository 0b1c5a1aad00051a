//! Objects as YAML text, as serde_yaml writes them, without making serde_yaml's emitter walk
//! the chart packages character by character (it was most of the time spent rendering).
//!
//! A long base64 string — a package, an icon — is written by serde_yaml as a plain scalar on
//! one line. So the value is emitted with each such string swapped for a short placeholder
//! that is written the same way, and the strings are put back in the text. Should a
//! placeholder not come out exactly once (some other string of the object holds it), the
//! whole value is emitted the slow way instead: the bytes are always serde_yaml's.

use serde_json::Value;

/// Strings at least this long are worth taking out of the emitter's way.
const LONG: usize = 256;

/// `value` as YAML, byte for byte what `serde_yaml::to_string` gives.
pub fn to_yaml(value: &Value) -> Vec<u8> {
    let mut long = Vec::new();
    let shell = take_long_strings(value, &mut long);
    if long.is_empty() {
        return emit(value);
    }
    let text = emit(&shell);
    put_back(&text, &long).unwrap_or_else(|| emit(value))
}

fn emit(value: &Value) -> Vec<u8> {
    serde_yaml::to_string(value)
        .unwrap_or_default()
        .into_bytes()
}

/// A placeholder: the same fixed width for every index, so that none is a prefix of another.
fn placeholder(index: usize) -> String {
    format!("PITRIXLONGSTRING{index:010}X")
}

/// A copy of `value` with every long string serde_yaml writes plain swapped for a placeholder;
/// the strings are pushed on `long`, in placeholder order.
fn take_long_strings<'a>(value: &'a Value, long: &mut Vec<&'a str>) -> Value {
    match value {
        Value::String(s) if s.len() >= LONG && is_plain_base64(s) => {
            long.push(s);
            Value::String(placeholder(long.len() - 1))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| take_long_strings(v, long)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), take_long_strings(v, long)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Base64 starting with a letter: serde_yaml quotes a string only when it would read back as
/// something else (a number, a bool, null — none starts with a letter and is this long) and
/// libyaml only when it holds an indicator, a space or a line break (none in base64), so it is
/// written plain, on one line, like the placeholder.
fn is_plain_base64(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
        && trailing_base64(s.as_bytes()) == s.len()
}

/// `key: value` where the value is the line's trailing run of base64 characters: found from
/// the end, in one pass over a value of tens of kilobytes.
fn split_base64_value(line: &str) -> Option<(&str, &str)> {
    let start = line.len() - trailing_base64(line.as_bytes());
    let key = line[..start].strip_suffix(": ")?;
    Some((key, &line[start..]))
}

/// `[A-Za-z0-9+/=]`, in compares the compiler turns into vector code (a table lookup per
/// byte is not): the check runs over every package.
fn is_base64(b: u8) -> bool {
    let letter = (b | 0x20).wrapping_sub(b'a') < 26;
    let digit = b.wrapping_sub(b'0') < 10;
    letter | digit | (b == b'+') | (b == b'/') | (b == b'=')
}

/// How many bytes at the end of `bytes` are base64 characters: whole blocks tested at once,
/// from the end, the one holding another byte searched byte by byte.
fn trailing_base64(bytes: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let mut end = bytes.len();
    while end > 0 {
        let block = &bytes[end.saturating_sub(BLOCK)..end];
        if block
            .iter()
            .fold(0u8, |other, &b| other | u8::from(!is_base64(b)))
            == 0
        {
            end -= block.len();
            continue;
        }
        let other = block.iter().rposition(|&b| !is_base64(b)).unwrap_or(0);
        return bytes.len() - (end - block.len() + other + 1);
    }
    bytes.len()
}

/// The text with each placeholder replaced by its string; `None` when a placeholder does not
/// occur exactly once.
fn put_back(text: &[u8], long: &[&str]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(text).ok()?;
    let mut found: Vec<(usize, usize)> = Vec::with_capacity(long.len());
    for (index, _) in long.iter().enumerate() {
        let marker = placeholder(index);
        let mut at = text.match_indices(&marker).map(|(at, _)| at);
        let first = at.next()?;
        if at.next().is_some() {
            return None;
        }
        found.push((first, index));
    }
    found.sort_unstable();
    let width = placeholder(0).len();
    let mut out = Vec::with_capacity(text.len() + long.iter().map(|s| s.len()).sum::<usize>());
    let mut from = 0;
    for (at, index) in found {
        out.extend_from_slice(text.get(from..at)?.as_bytes());
        out.extend_from_slice(long[index].as_bytes());
        from = at + width;
    }
    out.extend_from_slice(text.get(from..)?.as_bytes());
    Some(out)
}

/// YAML text as serde_yaml reads it, the long base64 strings taken out of the parser's way the
/// same way (they were most of the time `apply --from` spent reading an output directory).
/// Each `key: <long base64>` line's value is swapped for a placeholder before parsing and put
/// back after; should a placeholder not come back as a whole string exactly once, the text is
/// parsed as it is. Callers that know the digest of the value check it (and may fall back to
/// plain serde_yaml).
pub fn from_yaml(text: &str) -> Result<Value, serde_yaml::Error> {
    let mut long: Vec<&str> = Vec::new();
    let mut shell = String::with_capacity(text.len().min(1 << 16));
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        match split_base64_value(body) {
            Some((key, value)) if value.len() >= LONG && is_plain_base64(value) => {
                shell.push_str(key);
                shell.push_str(": ");
                shell.push_str(&placeholder(long.len()));
                shell.push_str(&line[body.len()..]);
                long.push(value);
            }
            _ => shell.push_str(line),
        }
    }
    if long.is_empty() {
        return serde_yaml::from_str(text);
    }
    let mut value: Value = serde_yaml::from_str(&shell)?;
    let mut seen = vec![0usize; long.len()];
    restore(&mut value, &long, &mut seen);
    if seen.iter().all(|n| *n == 1) {
        Ok(value)
    } else {
        serde_yaml::from_str(text)
    }
}

/// Puts each placeholder string of `value` back, counting how often each was found.
fn restore(value: &mut Value, long: &[&str], seen: &mut [usize]) {
    match value {
        Value::String(s) => {
            if let Some(index) = s
                .strip_prefix("PITRIXLONGSTRING")
                .and_then(|rest| rest.strip_suffix('X'))
                .and_then(|digits| digits.parse::<usize>().ok())
                .filter(|i| *i < long.len() && *s == placeholder(*i))
            {
                seen[index] += 1;
                *s = long[index].to_string();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| restore(v, long, seen)),
        Value::Object(map) => map.values_mut().for_each(|v| restore(v, long, seen)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::json;

    use super::*;

    fn base64(len: usize, seed: u64) -> String {
        let mut x = seed;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn base64_runs_are_measured_exactly() {
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || b"+/=".contains(&b);
            assert_eq!(is_base64(b), expected, "byte {b}");
        }
        // Another byte at every offset of strings spanning several blocks.
        for len in [0, 1, 42, 43, 44, 100] {
            let run = "Ab+/=9".repeat(len).into_bytes();
            assert_eq!(trailing_base64(&run), run.len());
            for at in 0..run.len() {
                let mut text = run.clone();
                text[at] = b' ';
                assert_eq!(
                    trailing_base64(&text),
                    run.len() - at - 1,
                    "len {len} at {at}"
                );
            }
        }
        assert_eq!(split_base64_value("  key: QUJD"), Some(("  key", "QUJD")));
        assert_eq!(split_base64_value("key: QU JD"), None);
        assert_eq!(split_base64_value("QUJD"), None);
    }

    #[test]
    fn gives_serde_yaml_s_bytes() {
        let mut values = vec![
            json!({"kind": "ConfigMap", "binaryData": {"BinaryKey": base64(40_000, 1)}}),
            json!({"spec": {"icon": base64(3_000, 2), "attachments": [base64(500, 3), "short"]}}),
            json!({"a": base64(300, 4), "b": base64(300, 5), "c": [1, true, null]}),
            // A string holding a placeholder: the slow path, same bytes.
            json!({"a": base64(300, 6), "b": placeholder(0)}),
            json!({"a": format!("{}{}", placeholder(0), base64(300, 7)), "b": base64(300, 8)}),
            // Long strings that are not plain base64 stay with the emitter.
            json!({"a": format!("1{}", base64(300, 9)), "b": format!("{} x", base64(300, 10))}),
            json!({"a": "x".repeat(300), "b": "1".repeat(300), "c": "e".repeat(300)}),
            json!("just a string"),
        ];
        for seed in 0..200 {
            values.push(json!({"k": base64(200 + seed as usize, seed), "n": seed}));
        }
        for v in &values {
            assert_eq!(
                String::from_utf8(to_yaml(v)).unwrap(),
                serde_yaml::to_string(v).unwrap(),
                "{v}"
            );
        }
    }

    #[test]
    fn takes_long_base64_out_of_the_emitter() {
        let v = json!({"a": base64(300, 1), "b": "x y ".repeat(100), "c": "short"});
        let mut long = Vec::new();
        let shell = take_long_strings(&v, &mut long);
        assert_eq!(long, vec![v["a"].as_str().unwrap()]);
        assert_eq!(shell["a"], json!(placeholder(0)));
        assert_eq!(shell["b"], v["b"]);
    }

    #[test]
    fn reads_what_serde_yaml_reads() {
        let b = base64(2_000, 11);
        let texts = [
            serde_yaml::to_string(
                &json!({"binaryData": {"BinaryKey": b, "icon": base64(300, 12)}}),
            )
            .unwrap(),
            // A long base64 line inside a block scalar is part of that string: the slow path.
            format!("data:\n  text: |\n    key: {b}\n    more\n  other: x\n"),
            // The same value twice is two placeholders, each restored once.
            format!("a: {b}\nb: {b}\n"),
            // A list item, a quoted key, and a value that holds a placeholder-like string.
            format!("- k: {b}\n- 'x: y': {b}\n- v: {}\n", placeholder(0)),
            // Not base64 (a space), a number-looking start: left to the parser.
            format!("a: {b} x\nb: 1{b}\n"),
            "plain: short\n".to_string(),
        ];
        for text in &texts {
            let expected: Value = serde_yaml::from_str(text).unwrap();
            assert_eq!(from_yaml(text).unwrap(), expected, "{text}");
        }
        assert!(from_yaml("a: [\n").is_err());
    }
}
