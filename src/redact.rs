//! The one place that decides what looks secret and hides it. Every rendering of catalog text
//! (diagnostic messages, source snippets) goes through here, and so does every diff before it
//! is rendered: [`json_pair`] for objects and values, [`yaml_text`] for the files of a chart.
//!
//! A hidden value shows as `***`; where a diff needs to say that it changed, as
//! `*** (changed, sha256:<8 hex>)` ([`changed_mask`]), and in file text as
//! `*** (sha256:<8 hex>)` so that an edited line still shows as edited.

use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Words that mark a key as holding a secret wherever they stand among the key's words
/// (`dbPassword`, `api_token`, `client-secret`), also as adjacent words run together, so that
/// the separator and the case do not matter (`connectionString`, `connection_string`,
/// `CONNECTION-STRING`, `connectionstring`; kubeconfig's `client-key-data`, `clientKeyData`).
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "htpasswd",
    "pgpass",
    "netrc",
    "secret",
    "token",
    "credential",
    "credentials",
    "apikey",
    "privatekey",
    "keydata",
    "connectionstring",
    "dockerconfigjson",
    "dockercfg",
    "idrsa",
    "iddsa",
    "idecdsa",
    "ided25519",
];

/// Runs of letters that mark a key as secret even inside a word (`dbpassword`, `PGPASSWORD`,
/// `MYSQLROOTPASSWORD`): long and specific enough never to be part of an innocent word.
const SECRET_INFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "privatekey",
    "apikey",
    "connectionstring",
    "dockerconfigjson",
    "dockercfg",
];

/// Words that mark a key as secret only as its last word: `dbPass`, `redis_pass` but not
/// `passThrough`; `auth`, `basicAuth`, `proxy-auth`, docker's `"auth"` but not `authEnabled`,
/// `authType`, `author` or `oauthEnabled`; `Authorization` (an HTTP header); a `kubeconfig`
/// but not a `kubeconfigPath`.
const SECRET_LAST_WORDS: &[&str] = &["pass", "auth", "authorization", "salt", "kubeconfig"];

/// Of [`SECRET_LAST_WORDS`], the ones whose mapping is usually a section, not a secret:
/// `auth: {enabled, username, password}` (most Helm charts) is walked into, its `password`
/// hidden and the rest shown; `auth: <string>` is hidden.
const SECTION_WORDS: &[&str] = &["auth", "authorization"];

/// Whether a key (of YAML, TOML, JSON or an env var) looks like it holds a secret.
///
/// The rules, on the key's words ([`words`]: camelCase, snake_case, kebab-case, dotted, any
/// case): a word of [`SECRET_WORDS`], or adjacent words that run together into one
/// (`api_key`, `connection-string`, `client-key-data`, `.dockerconfigjson`); a run of
/// [`SECRET_INFIXES`] anywhere (`dbpassword`); a last word of [`SECRET_LAST_WORDS`]; a last
/// word `key` after another word (`accessKey`, `tls.key`, not `key` nor `BinaryKey`). A key
/// whose last word is `env` names an environment variable (`passwordEnv`): never secret.
pub fn is_secret_key(key: &str) -> bool {
    let words = words(key);
    let Some(last) = words.last().map(String::as_str) else {
        return false;
    };
    // `passwordEnv` names an environment variable; the name is not the secret.
    if last == "env" {
        return false;
    }
    SECRET_LAST_WORDS.contains(&last) || secret_without_last_word_rules(&words)
}

fn secret_without_last_word_rules(words: &[String]) -> bool {
    let last = words.last().map(String::as_str);
    let runs = (0..words.len()).any(|i| {
        let mut run = String::new();
        words[i..].iter().any(|w| {
            run.push_str(w);
            SECRET_WORDS.contains(&run.as_str())
        })
    });
    let joined = words.concat();
    runs || SECRET_INFIXES.iter().any(|s| joined.contains(s))
        || (words.len() > 1 && last == Some("key") && !words.iter().any(|w| w == "binary"))
}

/// Whether a mapping or list under `key` is a section to look into rather than a secret to
/// hide whole: the key is secret only for its last word `auth` (see [`SECTION_WORDS`]).
fn is_section_key(key: &str) -> bool {
    let words = words(key);
    words
        .last()
        .is_some_and(|w| SECTION_WORDS.contains(&w.as_str()))
        && !secret_without_last_word_rules(&words)
}

/// Splits camelCase, snake_case, kebab-case and dotted keys into lowercase words; a run of
/// capitals is one word (`DBPassword` → `db`, `password`).
fn words(key: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = key.chars().collect();
    let mut prev_lower = false;
    let mut prev_upper = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            prev_lower = false;
            prev_upper = false;
            continue;
        }
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && !current.is_empty() && (prev_lower || (prev_upper && next_lower)) {
            words.push(std::mem::take(&mut current));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        prev_upper = c.is_uppercase();
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

/// One line of text (a diagnostic's source line): [`text`].
pub fn line(line: &str) -> String {
    text(line)
}

/// A YAML line with its value hidden whatever its key (`  phrase: ***`, `- ***`), for the
/// source line of a diagnostic about a value that may be a secret its key does not reveal (a
/// chart's `writeOnly` values). A key opening a block (`auth:`) shows as it is.
pub fn line_without_value(line: &str) -> String {
    let mut head = line.len() - line.trim_start().len();
    while let Some(r) = line[head..]
        .strip_prefix("- ")
        .or_else(|| (&line[head..] == "-").then_some(""))
    {
        head = line.len() - r.trim_start().len();
    }
    let rest = &line[head..];
    match split_key(rest) {
        Some((_, _, value))
            if value
                .split(" #")
                .next()
                .is_some_and(|v| v.trim().is_empty()) =>
        {
            text(line)
        }
        Some((_, at, _)) => {
            let key = &line[..head + at + 1];
            let space = if key.ends_with(':') { " " } else { "" };
            format!("{key}{space}{MASK}")
        }
        None if rest.trim().is_empty() || rest.starts_with('#') => text(line),
        None => format!("{}{MASK}", &line[..head]),
    }
}

/// Free text — a message, a hint, a log line, an Event's note, a source line — with every
/// secret hidden as `***`. The one redaction of prose: every rendering of a diagnostic, every
/// controller log line, Event and status annotation goes through it. It hides:
///
/// - the value of a `key: value`, `key = value`, `"key": "value"` or `--key=value` pair whose
///   key looks secret ([`is_secret_key`]): a quoted value to its closing quote, a `{…}`/`[…]`
///   value to its closing bracket, a block scalar (`key: |`) with its indented lines, a plain
///   value to the end of the line when the key starts the line (YAML, TOML, `.env`) and to the
///   next space otherwise; `Authorization: Bearer <token>` both words;
/// - the user info of URLs (`https://user:password@host` → `https://***@host`);
/// - the body of PEM blocks (`-----BEGIN … KEY-----***-----END … KEY-----`);
/// - tokens of well-known shapes wherever they stand: GitHub (`ghp_…`, `github_pat_…`),
///   GitLab (`glpat-…`), Slack (`xoxb-…`), AWS access key IDs, JWTs, and what follows `Bearer`.
///
/// Template expressions (`password: {{ .Values.password }}`) are kept: they name secrets.
/// Already hidden text stays as it is, so redacting twice is redacting once.
pub fn text(text: &str) -> String {
    let text = pem_blocks(text);
    let text = url_user_info(&text);
    let text = pairs(&text);
    known_tokens(&text)
}

const PEM_BEGIN: &str = "-----BEGIN ";
const PEM_END: &str = "-----END ";

/// Hides the body of every PEM block; a block without its end hides the rest of the text.
fn pem_blocks(text: &str) -> String {
    pem_blocks_as(text, |_| true, |_| MASK.to_string())
}

/// [`pem_blocks`] for diffs: the bodies of private keys (wherever they are: a private key is
/// never innocent), each as `*** (sha256:<8 hex>)`. Certificates are public: they show.
fn private_keys_marked(text: &str) -> String {
    pem_blocks_as(
        text,
        |header| header.contains("PRIVATE KEY"),
        |body| format!("{MASK} (sha256:{})", short_hash(body.trim().as_bytes())),
    )
}

/// The PEM blocks of `text` whose header (`-----BEGIN … -----`) `hide` picks, their bodies
/// replaced by `mask(body)`; a block without its end hides the rest of the text.
fn pem_blocks_as(text: &str, hide: impl Fn(&str) -> bool, mask: impl Fn(&str) -> String) -> String {
    if !text.contains(PEM_BEGIN) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(PEM_BEGIN) {
        let after = &rest[i + PEM_BEGIN.len()..];
        let line_end = after.find('\n').unwrap_or(after.len());
        let header = after[..line_end]
            .find("-----")
            .map_or(line_end, |h| h + "-----".len());
        let head = i + PEM_BEGIN.len() + header;
        out.push_str(&rest[..head]);
        let body = &rest[head..];
        if !hide(&rest[i..head]) {
            rest = body;
            continue;
        }
        match body.find(PEM_END) {
            Some(e) => {
                if !body[..e].trim().is_empty() {
                    out.push_str(&mask(&body[..e]));
                }
                rest = &body[e..];
            }
            None if body.trim().is_empty() => {
                rest = body;
                break;
            }
            None => {
                out.push_str(&mask(body));
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Hides the values of `key: value` / `key = value` pairs with a secret-looking key.
fn pairs(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b':' | b'=')
            && let Some((key_start, key)) = secret_key_before(text, i)
            && let Some((from, to)) = secret_value_after(text, i, key_start, key)
        {
            out.push_str(&text[copied..from]);
            out.push_str(MASK);
            copied = to;
            i = to.max(i + 1);
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

fn is_key_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// The secret-looking key (and where it starts, opening quote included) before the separator
/// at `sep`: `key:`, `"key":`, `'key' =`, `--key=`. Not `://`, `::`, `==`, `!=`, `<=`, `>=`.
fn secret_key_before(text: &str, sep: usize) -> Option<(usize, &str)> {
    let b = text.as_bytes();
    let next = b.get(sep + 1).copied();
    let prev = sep.checked_sub(1).map(|p| b[p]);
    let not_a_pair = match b[sep] {
        b':' => next == Some(b':') || prev == Some(b':') || text[sep + 1..].starts_with("//"),
        _ => next == Some(b'=') || matches!(prev, Some(b'=' | b'!' | b'<' | b'>')),
    };
    if not_a_pair {
        return None;
    }
    let mut k = sep;
    while k > 0 && matches!(b[k - 1], b' ' | b'\t') {
        k -= 1;
    }
    let quote = match k.checked_sub(1).map(|p| b[p]) {
        Some(q @ (b'"' | b'\'')) => {
            k -= 1;
            Some(q)
        }
        _ => None,
    };
    let end = k;
    while k > 0 && is_key_byte(b[k - 1]) {
        k -= 1;
    }
    if k == end {
        return None;
    }
    let key = &text[k..end];
    if let Some(q) = quote {
        if k == 0 || b[k - 1] != q {
            return None;
        }
        k -= 1;
    }
    is_secret_key(key).then_some((k, key))
}

/// Authorization schemes: `Authorization: Bearer <token>` hides both words.
const AUTH_SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "negotiate"];

/// The byte range of the value after the separator at `sep` to hide, if any.
fn secret_value_after(
    text: &str,
    sep: usize,
    key_start: usize,
    key: &str,
) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let mut v = sep + 1;
    while v < b.len() && matches!(b[v], b' ' | b'\t') {
        v += 1;
    }
    let line_end = text[v..].find('\n').map_or(text.len(), |e| v + e);
    let rest = &text[v..line_end];
    let after_mask = rest.strip_prefix(MASK);
    if rest.trim().is_empty()
        || (b[sep] == b':' && rest.starts_with("# "))
        || is_template_expression(rest)
        || after_mask.is_some_and(|r| r.is_empty() || r.starts_with([' ', ',', '"', '\'']))
    {
        // A nested block (its own keys are looked at), a YAML comment, a template, or hidden
        // already.
        return None;
    }
    let line_start = text[..key_start].rfind('\n').map_or(0, |i| i + 1);
    let starts_line = text[line_start..key_start]
        .trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '#')
        .is_empty();
    match b[v] {
        q @ (b'"' | b'\'' | b'`') => {
            let mut j = v + 1;
            while j < line_end {
                if b[j] == b'\\' && q == b'"' {
                    j += 2;
                    continue;
                }
                if b[j] == q {
                    if q == b'\'' && b.get(j + 1) == Some(&b'\'') {
                        j += 2;
                        continue;
                    }
                    return Some((v, j + 1));
                }
                j += 1;
            }
            Some((v, line_end))
        }
        b'|' | b'>' => {
            // A block scalar: the following lines indented deeper than the key's line.
            let indent = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
            let key_indent = indent(&text[line_start..]);
            let mut end = line_end;
            while end < text.len() {
                let next_end = text[end + 1..]
                    .find('\n')
                    .map_or(text.len(), |e| end + 1 + e);
                let next = &text[end + 1..next_end];
                if !next.trim().is_empty() && indent(next) <= key_indent {
                    break;
                }
                end = next_end;
            }
            Some((v, end))
        }
        open @ (b'{' | b'[') => {
            if is_section_key(key) {
                return None;
            }
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut quoted: Option<u8> = None;
            let mut j = v;
            while j < b.len() {
                let c = b[j];
                match quoted {
                    Some(q) if c == b'\\' && q == b'"' => j += 1,
                    Some(q) if c == q => quoted = None,
                    Some(_) => {}
                    None if c == b'"' || c == b'\'' => quoted = Some(c),
                    None if c == open => depth += 1,
                    None if c == close => {
                        depth -= 1;
                        if depth == 0 {
                            return Some((v, j + 1));
                        }
                    }
                    None => {}
                }
                j += 1;
            }
            Some((v, line_end))
        }
        _ if starts_line => Some((v, line_end)),
        _ => {
            let word_end = |from: usize| {
                text[from..]
                    .find(char::is_whitespace)
                    .map_or(text.len(), |e| from + e)
            };
            let mut end = word_end(v);
            if AUTH_SCHEMES.contains(&text[v..end].to_ascii_lowercase().as_str()) {
                let mut w = end;
                while w < line_end && matches!(b[w], b' ' | b'\t') {
                    w += 1;
                }
                if w < line_end {
                    end = word_end(w);
                }
            }
            Some((v, end))
        }
    }
}

/// Prefixes of tokens that say what they are (and are secret whatever their key).
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxa-",
    "xoxb-",
    "xoxp-",
    "xoxr-",
    "xoxs-",
    "sk_live_",
    "rk_live_",
];

fn is_known_token(t: &str) -> bool {
    let upper_alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    };
    (t.len() >= 20 && TOKEN_PREFIXES.iter().any(|p| t.starts_with(p)))
        || (t.len() == 20 && (t.starts_with("AKIA") || t.starts_with("ASIA")) && upper_alnum(t))
        || (t.starts_with("eyJ") && t.split('.').count() == 3 && t.split('.').all(|p| p.len() >= 8))
}

/// Hides tokens of well-known shapes, and the word after `Bearer`.
fn known_tokens(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_bearer = false;
    for piece in text.split_inclusive(char::is_whitespace) {
        let word = piece.trim_end_matches(char::is_whitespace);
        if !word.is_empty() {
            if after_bearer && word != MASK {
                out.push_str(MASK);
            } else {
                out.push_str(&tokens_in_word(word));
            }
            after_bearer = word.eq_ignore_ascii_case("bearer");
        }
        out.push_str(&piece[word.len()..]);
    }
    out
}

/// [`known_tokens`] within one word: its runs of token characters.
fn tokens_in_word(word: &str) -> String {
    let is_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !is_part(c)).unwrap_or(rest.len());
        let token = rest[..end].trim_end_matches('.');
        if is_known_token(token) {
            out.push_str(MASK);
            out.push_str(&rest[token.len()..end]);
        } else {
            out.push_str(&rest[..end]);
        }
        rest = &rest[end..];
        let sep = rest.find(is_part).unwrap_or(rest.len());
        out.push_str(&rest[..sep]);
        rest = &rest[sep..];
    }
    out
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
    // Strings: the user info of URLs (`postgres://user:password@db`) and private keys,
    // whatever the key.
    for v in [old.as_deref_mut(), new.as_deref_mut()]
        .into_iter()
        .flatten()
    {
        if let Value::String(text) = v {
            if text.contains("://") {
                *text = url_user_info_marked(text);
            }
            if text.contains(PEM_BEGIN) {
                *text = private_keys_marked(text);
            }
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
            let is_container =
                |v: &Option<&mut Value>| v.as_ref().is_none_or(|v| v.is_object() || v.is_array());
            // `auth: {enabled, password}`: a section, looked into; `auth: <string>`: a secret.
            let section = is_section_key(&key) && is_container(&o) && is_container(&n);
            let secret = (is_secret_key(&key) && !section)
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

/// Whether a chart file (its path in the chart, subcharts' included) is a values file, whose
/// values are data and may be secrets: `values.yaml`, `values-prod.yaml`, `values.prod.yaml`,
/// chart-testing's `ci/prod-values.yaml` (`.yml` and `.json` too) — not `values.schema.json`.
pub fn is_values_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let Some(stem) = [".yaml", ".yml", ".json"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
    else {
        return false;
    };
    stem != "values.schema"
        && (stem == "values"
            || stem.starts_with("values-")
            || stem.starts_with("values.")
            || stem.starts_with("values_")
            || stem.ends_with("-values")
            || stem.ends_with(".values")
            || stem.ends_with("_values"))
}

/// The text of a chart file for a diff. A values file ([`is_values_file`]) is values:
/// [`yaml_text`], its writeOnly paths (`write_only`) hidden too. Any other file — templates,
/// helpers, docs, `files/` — is code a reviewer must read, shown as it is (`export
/// REDIS_PASSWORD=…` in a template is a line of a script, not a secret), except what is never
/// innocent: a document that is a Secret manifest (`kind: Secret`) is hidden as
/// [`yaml_text`] hides it, the body of a private key as `*** (sha256:…)`, and the user info of
/// a URL written out (`https://bot:pw@host`; one made of template or shell expressions shows).
pub fn chart_file_text(path: &str, text: &str, write_only: &dyn Fn(&Path) -> bool) -> String {
    if is_values_file(path) {
        return yaml_text(text, write_only);
    }
    let mut out: Vec<String> = Vec::new();
    let mut docs: Vec<Vec<&str>> = vec![Vec::new()];
    for line in text.lines() {
        if line.starts_with("---") {
            docs.push(vec![line]);
        } else if let Some(d) = docs.last_mut() {
            d.push(line);
        }
    }
    for doc in docs {
        if is_secret_document(&doc) {
            redact_document(&doc, true, &|_| false, &mut out);
        } else {
            literal_secrets(&doc, &mut out);
        }
    }
    let mut text_out = out.join("\n");
    if text.ends_with('\n') && !text_out.is_empty() {
        text_out.push('\n');
    }
    text_out
}

/// Whether a YAML document (a template's, with its `{{ }}` lines) is a Secret manifest.
fn is_secret_document(doc: &[&str]) -> bool {
    doc.iter().any(|l| {
        let l = l.trim_end();
        l == "kind: Secret" || l == "kind: \"Secret\"" || l == "kind: 'Secret'"
    })
}

/// The lines of a document shown as they are but for private key bodies and URL user info
/// written out (see [`chart_file_text`]).
fn literal_secrets(lines: &[&str], out: &mut Vec<String>) {
    let mut private_key: Option<(usize, Sha256)> = None;
    for raw in lines {
        let line = private_keys_marked(&url_user_info_as(raw, |info| {
            if info.contains("{{") || info.contains('$') || info.contains('%') {
                info.to_string()
            } else {
                format!("{MASK} (sha256:{})", short_hash(info.as_bytes()))
            }
        }));
        let indent = line.len() - line.trim_start_matches(' ').len();
        if hide_private_key(&line, indent, &mut private_key, out) {
            continue;
        }
        out.push(line);
    }
    if let Some((at, hasher)) = private_key {
        let hash = crate::names::hex(&hasher.finalize()[..4]);
        out.push(format!("{}{MASK} (sha256:{hash})", " ".repeat(at)));
    }
}

/// A private key's body (whatever its key) shows as one masked line with a hash: feeds `line`
/// to the key being read (true: the line is swallowed), ends it at its END line, or starts one
/// at a BEGIN line.
fn hide_private_key(
    line: &str,
    indent: usize,
    key: &mut Option<(usize, Sha256)>,
    out: &mut Vec<String>,
) -> bool {
    if let Some((at, hasher)) = key.as_mut() {
        if !line.contains(PEM_END) {
            hasher.update(line.trim().as_bytes());
            hasher.update(b"\n");
            return true;
        }
        let at = *at;
        let hash = key.take().map(|(_, h)| h.finalize()).unwrap_or_default();
        out.push(format!(
            "{}{MASK} (sha256:{})",
            " ".repeat(at),
            crate::names::hex(&hash[..4])
        ));
    } else if line.contains(PEM_BEGIN) && line.contains("PRIVATE KEY") && !line.contains(PEM_END) {
        *key = Some((indent, Sha256::new()));
    }
    false
}

fn redact_document(
    lines: &[&str],
    secret_manifest: bool,
    write_only: &dyn Fn(&Path) -> bool,
    out: &mut Vec<String>,
) {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut open: Option<OpenSecret> = None;
    // The body of a private key being read (whatever its key): hidden as one line.
    let mut private_key: Option<(usize, Sha256)> = None;
    for raw in lines {
        let line = private_keys_marked(&url_user_info_marked(raw));
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        if open.is_none() && hide_private_key(&line, indent, &mut private_key, out) {
            continue;
        }
        if let Some(o) = open.as_mut() {
            if blank || indent > o.indent {
                o.hasher.update(line.trim().as_bytes());
                o.hasher.update(b"\n");
                continue;
            }
            out.push(open.take().map(OpenSecret::close).unwrap_or_default());
        }
        // A document marker is at the start of a line; an indented `---` is block scalar text.
        if blank || line.starts_with("---") {
            if line.starts_with("---") {
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
            // A list may stand at its key's indentation (`key:\n- a`): the key stays.
            stack.retain(|(i, k)| *i < col || (*i == col && k != "*"));
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
        // `auth:` opening a nested mapping is a section, looked into (see [`SECTION_WORDS`]).
        let section = is_section_key(&key)
            && value
                .split(" #")
                .next()
                .is_some_and(|v| v.trim().is_empty());
        stack.push((col, key));
        if !secret || section || is_template_expression(value) {
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
    if let Some((at, hasher)) = private_key {
        let hash = crate::names::hex(&hasher.finalize()[..4]);
        out.push(format!("{}{MASK} (sha256:{hash})", " ".repeat(at)));
    }
}

/// `key: value` / `"key": value` / `key=value`: the key (unquoted), the separator's offset in
/// `rest`, and the value text after it.
fn split_key(rest: &str) -> Option<(String, usize, &str)> {
    // A quoted key (`'a: b':`, `"#":`) ends at its closing quote, whatever it holds.
    if let Some(quote) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let mut key = String::new();
        let mut chars = rest.char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                // '' is a quote inside single quotes; \x an escape inside double quotes.
                '\'' if quote == '\'' && chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                    chars.next();
                    key.push('\'');
                }
                '\\' if quote == '"' => {
                    if let Some((_, n)) = chars.next() {
                        key.push(n);
                    }
                }
                c if c == quote => {
                    let after = &rest[i + 1..];
                    let at = i + 1 + (after.len() - after.trim_start().len());
                    let sep = rest[at..].chars().next()?;
                    let next = rest[at + 1..].chars().next();
                    return (sep == ':' && next.is_none_or(|n| n == ' ' || n == '\t')
                        || sep == '=')
                        .then(|| (key, at, &rest[at + 1..]));
                }
                c => key.push(c),
            }
        }
        return None;
    }
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
            // Any separator, any case.
            "connectionString",
            "ConnectionString",
            "connection_string",
            "CONNECTION-STRING",
            "connectionstring",
            "db.connectionString",
            "passphrase",
            "sshKeyPassphrase",
            "PASS_PHRASE",
            "htpasswd",
            ".htpasswd",
            "pgpass",
            // `auth` as the last word: docker's `"auth"`, basic auth.
            "auth",
            "AUTH",
            "basicAuth",
            "proxy_auth",
            "redis-auth",
            "Authorization",
            // kubeconfig and image pull secrets.
            "client-key-data",
            "clientKeyData",
            "CLIENT_KEY_DATA",
            "kubeconfig",
            ".dockerconfigjson",
            "dockerConfigJson",
            "DOCKER_CONFIG_JSON",
            ".dockercfg",
            "ssh-privatekey",
            "id_rsa",
            "id_ed25519",
            "tls.key",
            // A password inside one word, and capitals run together.
            "PGPASSWORD",
            "mysqlrootpassword",
            "DBPassword",
            "dbPass",
            "redis_pass",
            "wordpressSalt",
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
            "author",
            "authors",
            "oauthEnabled",
            "authEnabled",
            "authType",
            "auth.enabled",
            "authUrl",
            "passThrough",
            "passHostHeader",
            "bypass",
            "compass",
            "passwordEnv",
            "CONNECTION_STRING_ENV",
            "connectionTimeout",
            "client-certificate-data",
            "certificate-authority-data",
            "kubeconfigPath",
            "monkeyData",
            "imagePullSecrets",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
    }

    #[test]
    fn text_hides_pairs_wherever_they_stand() {
        for (input, secret) in [
            ("cannot log in with password=hunter2 as admin", "hunter2"),
            ("--set db.password=s3cr3t,user=x", "s3cr3t"),
            (r#"{"password":"hunter 2","user":"x"}"#, "hunter"),
            (
                r#"{"auths":{"r.io":{"auth":"c2VjcmV0","username":"u"}}}"#,
                "c2VjcmV0",
            ),
            (
                "at `/db`: connectionString: 'Server=db;Password=pw1' is long",
                "pw1",
            ),
            ("CONNECTION_STRING=Server=db;Password=pw2", "pw2"),
            (
                "users:\n- user:\n    client-key-data: LS0tLS1CRUdJTi0k\n",
                "LS0tLS1",
            ),
            ("  client-key-data: LS0tLS1CRUdJTi0k", "LS0tLS1"),
            (
                "header Authorization: Bearer abc.def.ghi was refused",
                "abc.def",
            ),
            ("sent Bearer tok-123 to the server", "tok-123"),
            ("apiKey = `k-123`", "k-123"),
            ("htpasswd: admin:$apr1$hash", "$apr1$"),
            ("credentials: {user: u1, pass: p1} given", "p1"),
            ("token: 'it''s a secret' and more", "s a secret"),
        ] {
            let out = text(input);
            assert!(!out.contains(secret), "{secret} leaked: {out}");
            assert!(out.contains(MASK), "{out}");
            assert_eq!(text(&out), out, "redacting twice is redacting once");
        }
        assert_eq!(
            text("cannot log in with password=hunter2 as admin"),
            "cannot log in with password=*** as admin"
        );
        assert_eq!(
            text(r#"{"password":"hunter 2","user":"x"}"#),
            r#"{"password":***,"user":"x"}"#
        );
        assert_eq!(
            text(r#"{"auth":"c2VjcmV0","username":"u"}"#),
            r#"{"auth":***,"username":"u"}"#
        );
    }

    #[test]
    fn text_hides_blocks_pem_and_known_tokens() {
        let yaml = "tls:\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    MIIEsecret\n    -----END RSA PRIVATE KEY-----\n  cert: ok\nauth:\n  enabled: true\n  password: hunter2\n";
        let out = text(yaml);
        assert!(
            !out.contains("MIIEsecret") && !out.contains("hunter2"),
            "{out}"
        );
        assert!(out.contains("  cert: ok\n"), "{out}");
        assert!(
            out.contains("auth:\n  enabled: true\n  password: ***\n"),
            "a section is looked into:\n{out}"
        );
        assert_eq!(
            text(
                "the key -----BEGIN PRIVATE KEY-----\nMIIEsecret\n-----END PRIVATE KEY----- is bad"
            ),
            "the key -----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY----- is bad"
        );
        assert_eq!(
            text("cut: -----BEGIN PRIVATE KEY----- MIIEsecret"),
            "cut: -----BEGIN PRIVATE KEY-----***"
        );
        let tokens = [
            "ghp_0123456789abcdefghijABCDEFGHIJ012345",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "glpat-0123456789abcdefghij",
            "xoxb-1234567890-abcdefghij",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlMTIz",
        ];
        for t in tokens {
            let out = text(&format!("fetch failed ({t}): 401."));
            assert_eq!(out, "fetch failed (***): 401.", "{t}");
        }
    }

    #[test]
    fn auth_is_a_secret_as_a_string_and_a_section_as_a_mapping() {
        use serde_json::json;
        let mut v = json!({"auths": {"r.io": {"auth": "c2VjcmV0", "email": "a@b"}},
                           "auth": {"enabled": true, "password": "pw"}, "basicAuth": "u:pw2"});
        json_pair(None, Some(&mut v), &|_| false);
        let s = v.to_string();
        assert!(!s.contains("c2VjcmV0") && !s.contains("pw"), "{s}");
        assert_eq!(v["auths"]["r.io"]["email"], "a@b");
        assert_eq!(v["auth"]["enabled"], true);
        let out = yaml_text(
            "auth:\n  enabled: true\n  password: pw\nregistry:\n  auth: c2VjcmV0\n",
            &|_| false,
        );
        assert!(
            out.contains("auth:\n  enabled: true\n  password: *** (sha256:"),
            "{out}"
        );
        assert!(out.contains("  auth: *** (sha256:"), "{out}");
    }

    #[test]
    fn diffs_hide_private_keys_under_any_key() {
        use serde_json::json;
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsecret\n-----END RSA PRIVATE KEY-----\n";
        let cert = "-----BEGIN CERTIFICATE-----\nMIICpublic\n-----END CERTIFICATE-----\n";
        let mut v = json!({"tls": {"cert": pem, "ca": cert}});
        json_pair(None, Some(&mut v), &|_| false);
        let s = v.to_string();
        assert!(!s.contains("MIIEsecret") && s.contains("MIICpublic"), "{s}");
        assert!(s.contains("PRIVATE KEY-----*** (sha256:"), "{s}");
        let text = format!(
            "tls:\n  cert: |\n    {}\n  ca: |\n    {}\nafter: 1\n",
            pem.trim_end().replace('\n', "\n    "),
            cert.trim_end().replace('\n', "\n    ")
        );
        let out = yaml_text(&text, &|_| false);
        assert!(
            !out.contains("MIIEsecret") && out.contains("MIICpublic"),
            "{out}"
        );
        assert!(
            out.contains("    -----BEGIN RSA PRIVATE KEY-----\n    *** (sha256:"),
            "{out}"
        );
        assert!(out.ends_with("after: 1\n"), "{out}");
        let cut = yaml_text(
            "k: |\n  -----BEGIN PRIVATE KEY-----\n  MIIEsecret\n",
            &|_| false,
        );
        assert!(!cut.contains("MIIEsecret"), "{cut}");
    }

    #[test]
    fn lines_without_their_value() {
        assert_eq!(line_without_value("  phrase: open sesame"), "  phrase: ***");
        assert_eq!(line_without_value("  - phrase: \"x\""), "  - phrase: ***");
        assert_eq!(line_without_value("  - open sesame"), "  - ***");
        assert_eq!(line_without_value("auth:"), "auth:");
        assert_eq!(
            line_without_value("auth: # the section"),
            "auth: # the section"
        );
        assert_eq!(line_without_value("n=42"), "n=***");
    }

    #[test]
    fn text_leaves_prose_alone() {
        for s in [
            "unknown key `displayNam`",
            "did you mean `password`?",
            "missing `password`: set it",
            "author: Jane Doe",
            "authEnabled: true",
            "at 12:30, a == b and c != d",
            "see https://example.com/x?a=b#c and oci://r.io/x:1.0",
            "password: {{ .Values.auth.password | quote }}",
            "passwordEnv: REPO_PASSWORD",
            "auth:",
            "password: ***",
            "password: *** (sha256:0123abcd)",
            "tokenizer=fast",
            "line one\nline two\n",
        ] {
            assert_eq!(text(s), s);
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

    #[test]
    fn values_files_are_the_chart_files_whose_values_hide() {
        for p in [
            "values.yaml",
            "values.yml",
            "values-production.yaml",
            "values.prod.yaml",
            "charts/redis/values.yaml",
            "ci/prod-values.yaml",
            "Values.JSON",
        ] {
            assert!(is_values_file(p), "{p}");
        }
        for p in [
            "values.schema.json",
            "templates/secret.yaml",
            "templates/values-configmap.tpl",
            "README.md",
            "files/values.txt",
            "Chart.yaml",
        ] {
            assert!(!is_values_file(p), "{p}");
        }
    }

    #[test]
    fn chart_templates_show_as_they_are_but_secret_manifests_and_values_hide() {
        let none = |_: &Path| false;
        let script = "apiVersion: v1\nkind: ConfigMap\ndata:\n  start.sh: |\n    export REDIS_PASSWORD=$(cat /secrets/pw)\n    password: {{ .Values.auth.password }}\n    DB_PASSWORD=plain-in-template\n    url: redis://:$(REDIS_PASSWORD)@redis:6379\n";
        assert_eq!(
            chart_file_text("templates/configmap.yaml", script, &none),
            script,
            "template code shows as it is"
        );
        // A Secret template hides its data, whatever the order of its keys.
        let secret = "apiVersion: v1\ndata:\n  password: c2VjcmV0LXRwbA==\n  {{- if .Values.x }}\n  token: {{ .Values.token | b64enc }}\n  {{- end }}\nkind: Secret\n---\nkind: ConfigMap\ndata:\n  PASSWORD: shown-in-configmap\n";
        let out = chart_file_text("templates/secret.yaml", secret, &none);
        assert!(!out.contains("c2VjcmV0LXRwbA"), "{out}");
        assert!(out.contains("data: *** (sha256:"), "{out}");
        assert!(out.contains("  PASSWORD: shown-in-configmap\n"), "{out}");
        // Values files hide as before, writeOnly paths too.
        let values = "auth:\n  password: hunter2\n  phrase: sesame\nreplicaCount: 1\n";
        let wo = |p: &Path| p == ["auth", "phrase"];
        for path in ["values.yaml", "values-prod.yaml", "charts/sub/values.yaml"] {
            let out = chart_file_text(path, values, &wo);
            assert!(!out.contains("hunter2") && !out.contains("sesame"), "{out}");
            assert!(out.contains("  password: *** (sha256:"), "{out}");
            assert!(out.contains("replicaCount: 1"), "{out}");
        }
        // What is never innocent hides in any file: a private key, a URL's written password.
        let doc = "# README\nClone https://bot:pw-literal@git.example.com/x\nor https://{{ .Values.user }}@h\n  -----BEGIN RSA PRIVATE KEY-----\n  MIIEsecret\n  -----END RSA PRIVATE KEY-----\nafter\n";
        let out = chart_file_text("README.md", doc, &none);
        assert!(
            !out.contains("pw-literal") && !out.contains("MIIEsecret"),
            "{out}"
        );
        assert!(out.contains("https://{{ .Values.user }}@h"), "{out}");
        assert!(
            out.contains("  *** (sha256:") && out.ends_with("after\n"),
            "{out}"
        );
        // Changed template lines stay changed lines.
        assert_ne!(
            chart_file_text("templates/a.sh", "PASSWORD=a\n", &none),
            chart_file_text("templates/a.sh", "PASSWORD=b\n", &none)
        );
    }
}
