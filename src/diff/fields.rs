//! Field-level changes between two JSON documents, as RFC 6901 JSON pointers.

use serde_json::Value;

use super::{FieldChange, FieldOp};

/// Every leaf-most change from `old` to `new`: a key or element added or removed as a whole,
/// or a value replaced. Keys in `old`'s order, then keys only `new` has.
pub fn changes(old: &Value, new: &Value) -> Vec<FieldChange> {
    let mut out = Vec::new();
    walk(old, new, &mut String::new(), &mut out);
    out
}

/// `~` → `~0`, `/` → `~1`.
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn walk(old: &Value, new: &Value, path: &mut String, out: &mut Vec<FieldChange>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let len = path.len();
                path.push('/');
                path.push_str(&escape(k));
                match b.get(k) {
                    Some(vb) => walk(va, vb, path, out),
                    None => out.push(FieldChange {
                        path: path.clone(),
                        op: FieldOp::Remove,
                        old: Some(va.clone()),
                        new: None,
                    }),
                }
                path.truncate(len);
            }
            for (k, vb) in b {
                if a.contains_key(k) {
                    continue;
                }
                out.push(FieldChange {
                    path: format!("{path}/{}", escape(k)),
                    op: FieldOp::Add,
                    old: None,
                    new: Some(vb.clone()),
                });
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                match (a.get(i), b.get(i)) {
                    (Some(va), Some(vb)) => walk(va, vb, path, out),
                    (Some(va), None) => out.push(FieldChange {
                        path: path.clone(),
                        op: FieldOp::Remove,
                        old: Some(va.clone()),
                        new: None,
                    }),
                    (None, Some(vb)) => out.push(FieldChange {
                        path: path.clone(),
                        op: FieldOp::Add,
                        old: None,
                        new: Some(vb.clone()),
                    }),
                    (None, None) => {}
                }
                path.truncate(len);
            }
        }
        _ => out.push(FieldChange {
            path: if path.is_empty() {
                String::new()
            } else {
                path.clone()
            },
            op: FieldOp::Replace,
            old: Some(old.clone()),
            new: Some(new.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_and_ops() {
        let old = json!({"metadata": {"labels": {"a/b": "1", "gone": "x"}}, "list": [1, 2, 3]});
        let new = json!({"metadata": {"labels": {"a/b": "2", "new~": "y"}}, "list": [1, 5]});
        let c = changes(&old, &new);
        let got: Vec<(&str, FieldOp)> = c.iter().map(|c| (c.path.as_str(), c.op)).collect();
        assert_eq!(
            got,
            [
                ("/metadata/labels/a~1b", FieldOp::Replace),
                ("/metadata/labels/gone", FieldOp::Remove),
                ("/metadata/labels/new~0", FieldOp::Add),
                ("/list/1", FieldOp::Replace),
                ("/list/2", FieldOp::Remove),
            ]
        );
        assert!(changes(&old, &old).is_empty());
    }
}
