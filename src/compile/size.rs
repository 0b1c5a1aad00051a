//! Every compiled object against the size the Kubernetes API server can store: etcd refuses a
//! request over its `--max-request-bytes`, 1.5 MiB by default, so an object over it is never
//! applied (an inline value of 50 MB compiles to a 66 MB ApplicationRelease). Checked after
//! compiling and before anything is written, for `validate`, `compile` and `compile --diff`.
//! Package ConfigMaps are not checked here: the 1 MiB package budget (`package-too-large`,
//! validation) refuses them first, and a package within it stays under this limit.

use rayon::prelude::*;
use serde_json::Value;

use super::{Compiled, Object};
use crate::catalog::Catalog;
use crate::diagnostics::{Code, Diagnostic};
use crate::objects::labels;

/// The largest object the API server can store: etcd's `--max-request-bytes` default,
/// 1.5 MiB (1,572,864 bytes), measured on the JSON the API server receives.
pub const MAX_OBJECT_BYTES: usize = 1_572_864;

/// An `object-too-large` error for each compiled object over [`MAX_OBJECT_BYTES`].
pub fn problems(catalog: &Catalog, compiled: &Compiled) -> Vec<Diagnostic> {
    let found = compiled
        .objects
        .par_iter()
        .filter_map(|o| problem(catalog, o))
        .collect();
    sorted(found)
}

/// [`problems`] of one object.
pub fn problem(catalog: &Catalog, o: &Object) -> Option<Diagnostic> {
    // ConfigMaps hold packages (the 1 MiB package budget bounds them) or a release's executor
    // files (its values are the release's, checked on the release): skipped, so that the
    // check does not base64-encode every package of the catalog once more. S3 objects are not
    // the API server's to store.
    if matches!(o, Object::ConfigMap(_) | Object::Stored(_)) {
        return None;
    }
    let json = o.to_json();
    let size = serialized_len(&json);
    (size > MAX_OBJECT_BYTES).then(|| too_large(catalog, o, &json, size))
}

/// Diagnostics in file and position order.
pub fn sorted(mut found: Vec<Diagnostic>) -> Vec<Diagnostic> {
    found.sort_by(|a, b| (&a.file, a.pos, &a.message).cmp(&(&b.file, b.pos, &b.message)));
    found
}

fn serialized_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, v);
    count.0
}

/// The field that makes up most of `json`: descended into while one child holds more than
/// half of its parent (`spec.values`, `binaryData.payload`).
fn biggest_field(json: &Value) -> (String, usize) {
    let mut path = Vec::new();
    let mut node = json;
    let mut size = serialized_len(json);
    loop {
        let children: Vec<(String, &Value)> = match node {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => break,
        };
        let Some((key, child, child_size)) = children
            .into_iter()
            .map(|(k, v)| (k, v, serialized_len(v)))
            .max_by_key(|(_, _, s)| *s)
        else {
            break;
        };
        if child_size * 2 < size {
            break;
        }
        path.push(key);
        node = child;
        size = child_size;
    }
    (path.join("."), size)
}

fn too_large(catalog: &Catalog, o: &Object, json: &Value, size: usize) -> Diagnostic {
    let (field, field_size) = biggest_field(json);
    let what = o.object_ref().display_name();
    let label = |name: &str| {
        o.metadata()
            .labels
            .as_ref()
            .and_then(|l| l.get(name))
            .cloned()
    };
    let release = match o {
        Object::ApplicationRelease(_) => Some(o.name().to_string()),
        _ => label(labels::APP_RELEASE_NAME),
    }
    .and_then(|name| catalog.releases.iter().find(|r| r.name == name));
    let mut message = format!(
        "{what} would be {size} bytes, over the {MAX_OBJECT_BYTES} bytes the API server stores"
    );
    if !field.is_empty() {
        message.push_str(&format!(": `{field}` is {field_size} bytes"));
    }
    let hint = "etcd refuses requests over 1.5 MiB (--max-request-bytes): keep large data out of values (mount it from a ConfigMap or Secret the chart creates, or fetch it at start-up)";
    if let Some(r) = release {
        // The largest top-level value and where it was set.
        let values = r.merged_values();
        let largest = values
            .iter()
            .map(|(k, v)| (k, serialized_len(v)))
            .max_by_key(|(_, s)| *s);
        let mut pos = r.spec.app.pos;
        if let Some((key, bytes)) = largest {
            let pointer = format!("/{}", key.replace('~', "~0").replace('/', "~1"));
            match r.origins.get(&pointer) {
                Some((file, at)) if *file == r.file => {
                    pos = *at;
                    message.push_str(&format!(
                        "; the largest value is `{pointer}` ({bytes} bytes)"
                    ));
                }
                Some((file, _)) => message.push_str(&format!(
                    "; the largest value is `{pointer}` ({bytes} bytes), set in {}",
                    file.display()
                )),
                None => {}
            }
        }
        return Diagnostic::error(
            Code::ObjectTooLarge,
            format!("release `{}`: {message}", r.name),
        )
        .in_file(&r.file)
        .at(pos)
        .hint(hint);
    }
    let app = label(labels::APP_ID).and_then(|id| catalog.apps.iter().find(|a| a.name == id));
    let d = Diagnostic::error(Code::ObjectTooLarge, message).hint(hint);
    match app {
        Some(app) => d.in_file(app.dir.join("app.yaml")),
        None => d,
    }
}
