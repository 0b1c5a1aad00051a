//! Whether a live object already is what pitrix would apply: every field pitrix sets has the
//! same value live. Fields others own (finalizers, status, controller annotations) are theirs.

use serde_json::Value;

/// `desired ⊆ live`: mappings by key, lists element-wise and of equal length, scalars equal.
pub fn contains(live: &Value, desired: &Value) -> bool {
    match (live, desired) {
        (Value::Object(l), Value::Object(d)) => d
            .iter()
            .all(|(k, dv)| l.get(k).is_some_and(|lv| contains(lv, dv))),
        (Value::Array(l), Value::Array(d)) => {
            l.len() == d.len() && l.iter().zip(d).all(|(lv, dv)| contains(lv, dv))
        }
        (Value::Number(l), Value::Number(d)) => l.as_f64() == d.as_f64(),
        (l, d) => l == d,
    }
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn subset_semantics() {
        let live = json!({"metadata": {"name": "a", "uid": "1", "labels": {"x": "1", "y": "2"}}, "spec": {"l": [1, 2]}, "status": {}});
        assert!(contains(
            &live,
            &json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"l": [1, 2]}})
        ));
        assert!(!contains(
            &live,
            &json!({"metadata": {"labels": {"x": "2"}}})
        ));
        assert!(!contains(&live, &json!({"spec": {"l": [1]}})));
        assert!(!contains(&live, &json!({"spec": {"missing": true}})));
    }
}
