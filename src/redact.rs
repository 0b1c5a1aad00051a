//! The one place that decides what looks secret and hides it. Every rendering of catalog text
//! (diagnostic messages, source snippets) goes through here, and so does every diff before it
//! is rendered: [`json_pair`] for objects and values, [`yaml_text`] for the files of a chart.
//!
//! A hidden value shows as `***`; where a diff needs to say that it changed, as
//! `*** (changed, sha256:<8 hex>)` ([`changed_mask`]), and in file text as
//! `*** (sha256:<8 hex>)` so that an edited line still shows as edited.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Words that mark a key as holding a secret, matched against the key's words
/// (`dbPassword`, `api_token`, `client-secret` …).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "credential",
    "credentials",
    "apikey",
    "privatekey",
];

/// Whether a key (of YAML, TOML, JSON or an env var) looks like it holds a secret.
pub fn is_secret_key(key: &str) -> bool {
    let words = words(key);
    let last = words.last().map(String::as_str);
    // `passwordEnv` names an environment variable; the name is not the secret.
    if last == Some("env") {
        return false;
    }
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        || (words.len() > 1 && last == Some("key") && !words.iter().any(|w| w == "binary"))
}

/// Splits camelCase, snake_case, kebab-case and dotted keys into lowercase words.
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Hides the user info of every URL (`https://user:password@host` → `https://***@host`).
fn url_user_info(text: &str) -> String {
    url_user_info_as(text, |_| MASK.to_string())
}

/// [`url_user_info`] for diffs: the hidden user info keeps a fingerprint, so that a changed
/// password still shows as a change.
fn url_user_info_marked(text: &str) -> String {
    url_user_info_as(text, |info| {
        format!("{MASK} (sha256:{})", short_hash(info.as_bytes()))
    })
}

fn url_user_info_as(text: &str, mask: impl Fn(&str) -> String) -> String {
    if !text.contains("://") {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(at) => {
                out.push_str(&mask(&tail[..at]));
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// Hides the value of a `key: value` or `key = value` line whose key looks secret, and the
/// user info of URLs.
pub fn line(line: &str) -> String {
    let line = &url_user_info(line);
    for sep in [':', '='] {
        if let Some(i) = line.find(sep) {
            let key = line[..i]
                .trim()
                .trim_start_matches("- ")
                .trim_matches(['"', '\'']);
            let value = line[i + 1..].trim();
            if !key.is_empty() && !value.is_empty() && is_secret_key(key) {
                return format!("{}{sep} ***", &line[..i]);
            }
            break;
        }
    }
    line.to_string()
}

/// [`line`] over every line of a text.
pub fn text(text: &str) -> String {
    text.lines().map(line).collect::<Vec<_>>().join("\n")
}

/// What a hidden value shows as.
pub const MASK: &str = "***";

/// The first 8 hex digits of the sha256 of a value: of a string's text, else of its compact
/// JSON. Enough to see that a value changed; never the value.
pub fn fingerprint(value: &Value) -> String {
    let bytes = match value {
        Value::String(s) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap_or_default(),
    };
    short_hash(&bytes)
}

fn short_hash(bytes: &[u8]) -> String {
    crate::names::hex(&Sha256::digest(bytes)[..4])
}

/// `*** (changed, sha256:<8 hex>)`: a hidden value that differs from the other side.
pub fn changed_mask(value: &Value) -> String {
    format!("{MASK} (changed, sha256:{})", fingerprint(value))
}

/// A value's path in a document: keys, and array indexes as decimal text.
pub type Path<'a> = [&'a str];

/// Hides, in place, every secret value of the two sides of a JSON document (either may be
/// absent: an added or removed object). A value is secret when its key looks secret
/// ([`is_secret_key`]), when it is the `data`/`stringData` of a Kubernetes Secret, or when
/// `write_only` says its path is (a chart's `writeOnly` values, see [`WriteOnly`]); a secret
/// mapping or list is hidden as a whole. The old side shows `***`; the new side `***` when it
/// is the same, else [`changed_mask`].
pub fn json_pair(
    old: Option<&mut Value>,
    new: Option<&mut Value>,
    write_only: &dyn Fn(&Path) -> bool,
) {
    let mut path = Vec::new();
    walk_pair(old, new, &mut path, write_only);
}

fn is_secret_manifest(v: &Option<&mut Value>) -> bool {
    v.as_ref()
        .and_then(|v| v.get("kind"))
        .and_then(Value::as_str)
        == Some("Secret")
}

fn walk_pair(
    old: Option<&mut Value>,
    new: Option<&mut Value>,
    path: &mut Vec<String>,
    write_only: &dyn Fn(&Path) -> bool,
) {
    let (mut old, mut new) = (old, new);
    // Strings: the user info of URLs (`postgres://user:password@db`), whatever the key.
    for v in [old.as_deref_mut(), new.as_deref_mut()]
        .into_iter()
        .flatten()
    {
        if let Value::String(text) = v
            && text.contains("://")
        {
            *text = url_user_info_marked(text);
        }
    }
    let is_object = |v: &Option<&mut Value>| v.as_ref().is_some_and(|v| v.is_object());
    let is_array = |v: &Option<&mut Value>| v.as_ref().is_some_and(|v| v.is_array());
    if is_object(&old) || is_object(&new) {
        let secret_manifest = is_secret_manifest(&old) || is_secret_manifest(&new);
        let mut old = old.and_then(Value::as_object_mut);
        let mut new = new.and_then(Value::as_object_mut);
        let mut keys: Vec<String> = Vec::new();
        for m in [&old, &new].into_iter().flatten() {
            for k in m.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
        }
        for key in keys {
            path.push(key.clone());
            let o = old.as_mut().and_then(|m| m.get_mut(&key));
            let n = new.as_mut().and_then(|m| m.get_mut(&key));
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let secret = is_secret_key(&key)
                || (secret_manifest && (key == "data" || key == "stringData"))
                || write_only(&segments);
            if secret {
                mask_pair(o, n);
            } else {
                walk_pair(o, n, path, write_only);
            }
            path.pop();
        }
    } else if is_array(&old) || is_array(&new) {
        let mut old = old.and_then(Value::as_array_mut);
        let mut new = new.and_then(Value::as_array_mut);
        let len = [&old, &new]
            .into_iter()
            .flatten()
            .map(|a| a.len())
            .max()
            .unwrap_or(0);
        for i in 0..len {
            path.push(i.to_string());
            let o = old.as_mut().and_then(|a| a.get_mut(i));
            let n = new.as_mut().and_then(|a| a.get_mut(i));
            walk_pair(o, n, path, write_only);
            path.pop();
        }
    }
}

fn mask_pair(old: Option<&mut Value>, new: Option<&mut Value>) {
    match (old, new) {
        (Some(o), Some(n)) => {
            *n = Value::String(if *o == *n {
                MASK.to_string()
            } else {
                changed_mask(n)
            });
            *o = Value::String(MASK.into());
        }
        (Some(o), None) => *o = Value::String(MASK.into()),
        (None, Some(n)) => *n = Value::String(changed_mask(n)),
        (None, None) => {}
    }
}

/// The `writeOnly` paths of a chart's `values.schema.json`: values a user writes but nobody
/// should read back (passwords with innocent names). Paths are keys from the values' root; `*`
/// stands for any key (`additionalProperties`, `patternProperties`) or any list index (`items`).
///
/// A schema too large or too recursive to read within [`WRITE_ONLY_BUDGET`] (`$ref`s that
/// branch in a cycle) that has `writeOnly` anywhere hides every value: masking too much is
/// the safe side.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOnly {
    patterns: Vec<Vec<String>>,
    /// Every value is hidden (the schema was over the budget).
    everything: bool,
}

/// The most schema nodes the writeOnly walk visits for one schema.
pub const WRITE_ONLY_BUDGET: usize = 100_000;

impl WriteOnly {
    /// Reads the `writeOnly: true` paths of a JSON Schema (local `$ref`s followed, to a depth).
    pub fn from_schema(schema: &Value) -> Self {
        let mut walk = WriteOnlyWalk {
            root: schema,
            out: Vec::new(),
            seen: std::collections::HashSet::new(),
            budget: WRITE_ONLY_BUDGET,
        };
        if collect_write_only(&mut walk, schema, &mut Vec::new(), 0).is_none() {
            return WriteOnly {
                patterns: Vec::new(),
                everything: has_write_only(schema),
            };
        }
        let mut patterns = walk.out;
        patterns.sort();
        patterns.dedup();
        WriteOnly {
            patterns,
            everything: false,
        }
    }

    /// Both sides' paths: a value hidden on one side is hidden on the other.
    pub fn union(mut self, other: &WriteOnly) -> Self {
        self.patterns.extend(other.patterns.iter().cloned());
        self.patterns.sort();
        self.patterns.dedup();
        self.everything |= other.everything;
        self
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty() && !self.everything
    }

    /// Whether `path` (from the values' root) is a writeOnly value.
    pub fn matches(&self, path: &Path) -> bool {
        (self.everything && !path.is_empty())
            || self.patterns.iter().any(|p| {
                p.len() == path.len() && p.iter().zip(path).all(|(p, s)| p == "*" || p == s)
            })
    }
}

/// Whether `writeOnly: true` appears anywhere in `schema`.
fn has_write_only(schema: &Value) -> bool {
    let mut stack = vec![schema];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                if map.get("writeOnly").and_then(Value::as_bool) == Some(true) {
                    return true;
                }
                stack.extend(map.values());
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    false
}

/// The writeOnly walk of one schema: every (schema node, path) is visited once, and at most
/// [`WRITE_ONLY_BUDGET`] visits in all (`anyOf` of `$ref`s back to the root would otherwise
/// branch at every level).
struct WriteOnlyWalk<'a> {
    root: &'a Value,
    out: Vec<Vec<String>>,
    seen: std::collections::HashSet<(*const Value, Vec<String>)>,
    budget: usize,
}

/// `None` when the budget ran out.
fn collect_write_only(
    walk: &mut WriteOnlyWalk,
    node: &Value,
    path: &mut Vec<String>,
    depth: usize,
) -> Option<()> {
    // Deep enough for any real chart, and a stop for `$ref` cycles.
    if depth > 32 || path.len() > 32 {
        return Some(());
    }
    let Some(node) = node.as_object() else {
        return Some(());
    };
    // The same schema node at the same path gives the same paths: once is enough.
    if !walk
        .seen
        .insert((node as *const _ as *const Value, path.clone()))
    {
        return Some(());
    }
    walk.budget = walk.budget.checked_sub(1)?;
    let root = walk.root;
    if node.get("writeOnly").and_then(Value::as_bool) == Some(true) && !path.is_empty() {
        walk.out.push(path.clone());
        return Some(());
    }
    if let Some(Value::String(r)) = node.get("$ref")
        && let Some(target) = r.strip_prefix('#').and_then(|p| root.pointer(p))
    {
        collect_write_only(walk, target, path, depth + 1)?;
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(list)) = node.get(key) {
            for sub in list {
                collect_write_only(walk, sub, path, depth + 1)?;
            }
        }
    }
    for key in ["then", "else", "if"] {
        if let Some(sub) = node.get(key) {
            collect_write_only(walk, sub, path, depth + 1)?;
        }
    }
    if let Some(Value::Object(props)) = node.get("properties") {
        for (name, sub) in props {
            path.push(name.clone());
            collect_write_only(walk, sub, path, depth + 1)?;
            path.pop();
        }
    }
    let mut any_key = |walk: &mut WriteOnlyWalk, sub: &Value| {
        path.push("*".into());
        let done = collect_write_only(walk, sub, path, depth + 1);
        path.pop();
        done
    };
    if let Some(sub @ Value::Object(_)) = node.get("additionalProperties") {
        any_key(walk, sub)?;
    }
    if let Some(Value::Object(pattern)) = node.get("patternProperties") {
        for sub in pattern.values() {
            any_key(walk, sub)?;
        }
    }
    match node.get("items") {
        Some(sub @ Value::Object(_)) => any_key(walk, sub)?,
        Some(Value::Array(list)) => {
            for sub in list {
                any_key(walk, sub)?;
            }
        }
        _ => {}
    }
    Some(())
}

/// A value that is only a template expression (`{{ .Values.auth.password | b64enc }}`): it
/// names a secret, it is not one.
fn is_template_expression(value: &str) -> bool {
    let v = value.trim().trim_matches(['"', '\'']).trim();
    v.starts_with("{{") && v.ends_with("}}") && v.matches("{{").count() == 1
}

fn unquote(value: &str) -> &str {
    let v = value.trim();
    for q in ['"', '\''] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            return &v[1..v.len() - 1];
        }
    }
    v
}

/// Whether a mapping value opens a block (nested mapping or list, block scalar, anchor).
fn opens_block(value: &str) -> bool {
    let v = value.split(" #").next().unwrap_or_default().trim();
    v.is_empty()
        || v.starts_with('|')
        || v.starts_with('>')
        || (v.starts_with('&') && !v.contains(' '))
        || v == "{"
        || v == "["
}

struct OpenSecret {
    /// The line up to and including the separator.
    head: String,
    indent: usize,
    hasher: Sha256,
}

impl OpenSecret {
    fn close(self) -> String {
        let hash = crate::names::hex(&self.hasher.finalize()[..4]);
        format!("{} {MASK} (sha256:{hash})", self.head)
    }
}

/// YAML-like text (values.yaml, templates, manifests, JSON, `key=value` files) with every
/// secret value hidden as `*** (sha256:<8 hex>)`: values under a secret-looking key, under
/// `data`/`stringData` of a Secret manifest, or at a path `write_only` names (keys tracked by
/// indentation, `*` for list items). A secret's nested block collapses into its key's line.
/// Template expressions (`{{ … }}`) are kept: they name secrets, they do not hold them.
pub fn yaml_text(text: &str, write_only: &dyn Fn(&Path) -> bool) -> String {
    let mut out: Vec<String> = Vec::new();
    // Documents are scanned first for `kind: Secret`, which may come after `data:`.
    let mut docs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        if line.starts_with("---") {
            docs.push(vec![line]);
        } else {
            if let Some(d) = docs.last_mut() {
                d.push(line);
            }
        }
    }
    for doc in docs {
        let secret_manifest = doc
            .iter()
            .any(|l| l.trim_end() == "kind: Secret" || l.trim_end() == "kind: \"Secret\"");
        redact_document(&doc, secret_manifest, write_only, &mut out);
    }
    let mut text_out = out.join("\n");
    if text.ends_with('\n') && !text_out.is_empty() {
        text_out.push('\n');
    }
    text_out
}

fn redact_document(
    lines: &[&str],
    secret_manifest: bool,
    write_only: &dyn Fn(&Path) -> bool,
    out: &mut Vec<String>,
) {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut open: Option<OpenSecret> = None;
    for raw in lines {
        let line = url_user_info_marked(raw);
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if let Some(o) = open.as_mut() {
            if blank || indent > o.indent {
                o.hasher.update(line.trim().as_bytes());
                o.hasher.update(b"\n");
                continue;
            }
            out.push(open.take().map(OpenSecret::close).unwrap_or_default());
        }
        if blank || line.trim_start().starts_with("---") {
            if line.trim_start().starts_with("---") {
                stack.clear();
            }
            out.push(line);
            continue;
        }
        // `- - key: v`: each dash is a list level, `*` in the path.
        let mut col = indent;
        let mut rest = &line[indent..];
        while let Some(r) = rest
            .strip_prefix("- ")
            .or_else(|| (rest == "-").then_some(""))
        {
            stack.retain(|(i, _)| *i < col);
            stack.push((col, "*".into()));
            col += 2 + (r.len() - r.trim_start_matches(' ').len());
            rest = r.trim_start_matches(' ');
        }
        let Some((key, sep_at, value)) = split_key(rest) else {
            out.push(line);
            continue;
        };
        stack.retain(|(i, _)| *i < col);
        let path: Vec<&str> = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .chain([key.as_str()])
            .collect();
        let secret = is_secret_key(&key)
            || (secret_manifest && stack.is_empty() && (key == "data" || key == "stringData"))
            || write_only(&path);
        stack.push((col, key));
        if !secret || is_template_expression(value) {
            out.push(line);
            continue;
        }
        let head = line[..line.len() - rest.len() + sep_at + 1].to_string();
        let mut hasher = Sha256::new();
        if opens_block(value) {
            hasher.update(value.trim().as_bytes());
            hasher.update(b"\n");
            open = Some(OpenSecret {
                head,
                indent: col,
                hasher,
            });
        } else {
            let v = unquote(value.trim().trim_end_matches(','));
            out.push(format!(
                "{head} {MASK} (sha256:{})",
                short_hash(v.as_bytes())
            ));
        }
    }
    if let Some(o) = open {
        out.push(o.close());
    }
}

/// `key: value` / `"key": value` / `key=value`: the key (unquoted), the separator's offset in
/// `rest`, and the value text after it.
fn split_key(rest: &str) -> Option<(String, usize, &str)> {
    let colon = rest
        .char_indices()
        .find(|&(i, c)| {
            c == ':'
                && rest[i + 1..]
                    .chars()
                    .next()
                    .is_none_or(|n| n == ' ' || n == '\t')
        })
        .map(|(i, _)| i);
    let at = colon.or_else(|| rest.find('='))?;
    let key = rest[..at].trim().trim_matches(['"', '\'']).trim();
    if key.is_empty() || key.starts_with('#') && key.len() == 1 {
        return None;
    }
    Some((key.to_string(), at, &rest[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for k in [
            "password",
            "dbPassword",
            "api_token",
            "client-secret",
            "accessKey",
            "AWS_SECRET_ACCESS_KEY",
            "tls.privateKey",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "displayName",
            "keywords",
            "key",
            "BinaryKey",
            "monkey",
            "tokenizer",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn lines_hide_secret_values() {
        assert_eq!(line("  password: hunter2"), "  password: ***");
        assert_eq!(line("apiToken = \"abc\""), "apiToken = ***");
        assert_eq!(line("displayName: Nginx"), "displayName: Nginx");
        assert_eq!(
            line("  passwordEnv: REPO_PASSWORD"),
            "  passwordEnv: REPO_PASSWORD"
        );
        assert_eq!(
            line("url: https://admin:hunter2@charts.example.com/x?a=b@c"),
            "url: https://***@charts.example.com/x?a=b@c"
        );
        assert_eq!(
            text("see oci://u@r.io and http://h/p@x"),
            "see oci://***@r.io and http://h/p@x"
        );
    }

    #[test]
    fn json_pairs_hide_secrets_and_say_when_they_change() {
        use serde_json::json;
        let mut old = json!({"db": {"password": "hunter2", "host": "a"}, "apiToken": "t1",
            "auth": {"rootPhrase": "open sesame"}, "credentials": {"user": "u", "pass": "p"}});
        let mut new = json!({"db": {"password": "hunter3", "host": "b"}, "apiToken": "t1",
            "auth": {"rootPhrase": "open sesame!"}, "credentials": {"user": "u", "pass": "p"}});
        let wo = |p: &Path| p == ["auth", "rootPhrase"];
        json_pair(Some(&mut old), Some(&mut new), &wo);
        let text = format!("{old}{new}");
        for secret in ["hunter", "t1", "sesame", "\"u\"", "\"p\""] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(old["db"]["password"], "***");
        assert_eq!(
            new["db"]["password"],
            format!("*** (changed, sha256:{})", fingerprint(&json!("hunter3")))
        );
        assert_eq!(new["apiToken"], "***", "unchanged secrets say nothing more");
        assert_eq!(
            new["credentials"], "***",
            "a secret mapping is hidden whole"
        );
        assert!(
            new["auth"]["rootPhrase"]
                .as_str()
                .unwrap()
                .starts_with("*** (changed")
        );
        assert_eq!(new["db"]["host"], "b");
        // One side only: an added object shows its secrets as changed.
        let mut added = json!({"password": "x"});
        json_pair(None, Some(&mut added), &|_| false);
        assert!(
            added["password"]
                .as_str()
                .unwrap()
                .starts_with("*** (changed, sha256:")
        );
    }

    #[test]
    fn json_pairs_hide_url_credentials_and_still_show_a_change() {
        use serde_json::json;
        let mut old = json!({"databaseUrl": "postgres://app:pw-one@db:5432/app", "n": 1});
        let mut new = json!({"databaseUrl": {"url": "postgres://app:pw-two@db:5432/app"}, "n": 2});
        json_pair(Some(&mut old), Some(&mut new), &|_| false);
        let text = format!("{old}{new}");
        assert!(!text.contains("pw-"), "{text}");
        assert!(text.contains("postgres://*** (sha256:"), "{text}");
        let mut a = json!("https://u:one@h/x");
        let mut b = json!("https://u:two@h/x");
        json_pair(Some(&mut a), Some(&mut b), &|_| false);
        assert_ne!(a, b, "a changed password is still a change");
    }

    #[test]
    fn json_pairs_hide_secret_manifests_data() {
        use serde_json::json;
        let mut docs = json!([{"kind": "Secret", "data": {"tls.crt": "AAAA"}, "stringData": {"x": "y"}},
                              {"kind": "ConfigMap", "data": {"a": "b"}}]);
        json_pair(None, Some(&mut docs), &|_| false);
        assert!(docs[0]["data"].as_str().unwrap().starts_with("***"));
        assert!(docs[0]["stringData"].as_str().unwrap().starts_with("***"));
        assert_eq!(docs[1]["data"]["a"], "b");
    }

    #[test]
    fn yaml_text_hides_values_blocks_and_write_only_paths() {
        let text = "auth:\n  password: hunter2\n  user: admin\n  rootPhrase: open sesame\ntls:\n  privateKey: |\n    -----BEGIN KEY-----\n    MIIsecret\n  cert: ok\nitems:\n  - name: a\n    apiToken: \"tok\"\nenv: {{ .Values.password }}\npassword: {{ .Values.auth.password | quote }}\n";
        let wo = |p: &Path| p == ["auth", "rootPhrase"];
        let out = yaml_text(text, &wo);
        for secret in ["hunter2", "sesame", "MIIsecret", "BEGIN KEY", "tok\""] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("  user: admin\n"));
        assert!(
            out.contains("  cert: ok\n"),
            "the block ends where the indentation does:\n{out}"
        );
        assert!(out.contains("  privateKey: *** (sha256:"));
        assert!(
            out.contains("password: {{ .Values.auth.password | quote }}"),
            "templates stay"
        );
        // The same value hides the same way, a different one differently.
        assert_eq!(
            yaml_text("password: a\n", &|_| false),
            yaml_text("password: \"a\"\n", &|_| false)
        );
        assert_ne!(
            yaml_text("password: a\n", &|_| false),
            yaml_text("password: b\n", &|_| false)
        );
    }

    #[test]
    fn yaml_text_hides_secret_manifest_data() {
        let text = "apiVersion: v1\ndata:\n  tls.crt: QUFBQQ==\nkind: Secret\n---\nkind: ConfigMap\ndata:\n  a: b\n";
        let out = yaml_text(text, &|_| false);
        assert!(!out.contains("QUFBQQ"), "{out}");
        assert!(out.contains("  a: b"));
    }

    #[test]
    fn write_only_paths_from_a_schema() {
        let schema = serde_json::json!({
            "type": "object",
            "definitions": {"cred": {"type": "string", "writeOnly": true}},
            "properties": {
                "auth": {"properties": {"rootPhrase": {"type": "string", "writeOnly": true},
                                        "user": {"type": "string"}}},
                "extra": {"additionalProperties": {"$ref": "#/definitions/cred"}},
                "list": {"items": {"properties": {"key": {"writeOnly": true}}}}
            }
        });
        let wo = WriteOnly::from_schema(&schema);
        assert!(wo.matches(&["auth", "rootPhrase"]));
        assert!(!wo.matches(&["auth", "user"]));
        assert!(wo.matches(&["extra", "anything"]));
        assert!(wo.matches(&["list", "3", "key"]));
        assert!(!wo.matches(&["list", "3"]));
    }

    #[test]
    fn write_only_walk_is_bounded_on_branching_reference_cycles() {
        let started = std::time::Instant::now();
        // Eight references back to the root at every level: 8^32 paths without memoizing.
        let branching = serde_json::json!({
            "properties": {
                "secret": {"writeOnly": true},
                "a": {"anyOf": vec![serde_json::json!({"$ref": "#"}); 8]},
            },
            "anyOf": vec![serde_json::json!({"$ref": "#"}); 8],
        });
        let wo = WriteOnly::from_schema(&branching);
        assert!(wo.matches(&["secret"]));
        assert!(wo.matches(&["a", "a", "secret"]));
        assert!(!wo.matches(&["a", "b"]));
        // A binary tree of references (2^32 distinct paths) is over the budget: with a
        // writeOnly anywhere, every value is hidden; without, none.
        let tree = |write_only: bool| {
            serde_json::json!({
                "$defs": {"n": {"properties": {
                    "l": {"$ref": "#/$defs/n"}, "r": {"$ref": "#/$defs/n"},
                    "k": {"writeOnly": write_only}}}},
                "$ref": "#/$defs/n",
            })
        };
        let wo = WriteOnly::from_schema(&tree(true));
        assert!(wo.matches(&["l", "anything"]) && wo.matches(&["x"]) && !wo.is_empty());
        assert!(!wo.matches(&[]));
        assert!(WriteOnly::from_schema(&tree(false)).is_empty());
        assert!(
            WriteOnly::default()
                .union(&WriteOnly::from_schema(&tree(true)))
                .matches(&["x"])
        );
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
