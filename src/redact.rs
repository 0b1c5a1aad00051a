//! The one place that decides what looks secret and hides it. Every rendering of catalog text
//! (diagnostic messages, source snippets) goes through here.

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
                out.push_str("***");
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
}
