//! Stage 4, emit: the compiled objects as files — one object per file at a predictable path,
//! an all-in-one stream, a kustomization.yaml for Argo CD and Flux, and an inventory of every
//! object with the digest of its canonical form. Written atomically: all or nothing, into a
//! directory that carries pitrix's marker ([`MARKER_FILE`], not part of [`render`]'s files): an
//! existing directory without one is never replaced (see `write`).

mod inventory;
mod write;
mod yaml;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fs::{self, File};
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, mpsc};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use crate::cluster::ObjectRef;
use crate::compile::{Compiled, Object, StatusIntent};
pub use yaml::from_yaml;
use yaml::to_yaml as yaml;

pub use inventory::{Inventory, InventoryEntry};
pub use write::{MARKER_FILE, MARKER_FORMAT, WriteError, write_atomic};

pub const INVENTORY_FILE: &str = "inventory.json";
pub const ALL_FILE: &str = "all.yaml";
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// The output tree: relative path → bytes, sorted by path.
pub type Files = Vec<(PathBuf, Vec<u8>)>;

/// Where an object's file goes: `objects/<plural>/[<namespace>/]<name>.yaml`, under
/// `clusters/<cluster>/` for a member cluster's executor objects.
pub fn object_path(o: &Object) -> PathBuf {
    let mut p = cluster_dir(o.object_ref().cluster.as_deref())
        .join("objects")
        .join(o.plural());
    if let Some(ns) = o.namespace() {
        p.push(ns);
    }
    p.join(format!("{}.yaml", o.name()))
}

/// The output directory of one cluster's objects: the root for the host, `clusters/<name>/`
/// for a member cluster — each with its own kustomization.yaml and all.yaml, so Argo CD or
/// Flux can point one Application/Kustomization at each cluster.
fn cluster_dir(cluster: Option<&str>) -> PathBuf {
    match cluster {
        Some(c) => PathBuf::from("clusters").join(c),
        None => PathBuf::new(),
    }
}

/// Where a status intent's file goes: `status/<plural>/<name>.yaml`.
pub fn status_path(s: &StatusIntent) -> PathBuf {
    PathBuf::from("status")
        .join(s.plural())
        .join(format!("{}.yaml", s.name))
}

/// `sha256:<hex>` of the canonical form: compact JSON with a fixed key order.
pub fn digest(value: &serde_json::Value) -> String {
    // Streamed into the hash: a storage ConfigMap's JSON is a whole package in base64.
    let mut hasher = Sha256::new();
    serde_json::to_writer(&mut hasher, value).expect("a JSON value serialises");
    hex_digest(hasher)
}

/// `sha256:<hex>` of `bytes`.
pub fn file_digest(bytes: &[u8]) -> String {
    hex_digest(Sha256::new_with_prefix(bytes))
}

fn hex_digest(hasher: Sha256) -> String {
    format!("sha256:{}", crate::names::hex(&hasher.finalize()))
}

/// Every file of the output, in path order. Pure: the same compile gives the same bytes.
pub fn render(compiled: &Compiled) -> Files {
    let files = Mutex::new(Files::new());
    let mut streams: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
    let keep = |path: &Path, bytes: &[u8]| {
        lock(&files).push((path.to_path_buf(), bytes.to_vec()));
        Ok(())
    };
    render_into(compiled, keep, |path: &Path, text: &[u8]| {
        streams
            .entry(path.to_path_buf())
            .or_default()
            .extend_from_slice(text);
        Ok(())
    })
    .expect("only the sinks fail, and these in-memory ones do not");
    let mut files = files.into_inner().unwrap_or_else(PoisonError::into_inner);
    files.extend(streams);
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

/// Writes the output of `compiled`, plus `extra` files, as the whole content of `out`
/// (atomically, as [`write_atomic`]). The same bytes as [`render`] then [`write_atomic`], but
/// rendered and written in parallel, a chunk of objects at a time, and without holding the
/// whole output in memory: the chart packages make it hundreds of MiB for a large catalog.
pub fn write(out: &Path, compiled: &Compiled, extra: &Files) -> Result<(), WriteError> {
    write::replace_atomic(out, |staging| {
        let put = |rel: &Path, bytes: &[u8]| write::put(staging, rel, bytes);
        let mut streams: BTreeMap<PathBuf, BufWriter<File>> = BTreeMap::new();
        render_into(compiled, put, |rel: &Path, text: &[u8]| {
            let path = staging.join(rel);
            let io = |e| WriteError::Io(path.clone(), e);
            let stream = match streams.entry(rel.to_path_buf()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    if let Some(dir) = path.parent() {
                        fs::create_dir_all(dir).map_err(io)?;
                    }
                    e.insert(BufWriter::new(File::create(&path).map_err(io)?))
                }
            };
            stream.write_all(text).map_err(io)
        })?;
        for (rel, mut stream) in streams {
            stream
                .flush()
                .map_err(|e| WriteError::Io(staging.join(rel), e))?;
        }
        extra
            .par_iter()
            .try_for_each(|(rel, bytes)| put(rel, bytes))
    })
}

/// Objects rendered in parallel at a time: enough to keep the threads busy, few enough that
/// their YAML (a chart package each, for the storage ConfigMaps) stays small.
const CHUNK: usize = 256;

/// Renders every file but the all-in-one streams, handing each to `put` (from several threads,
/// in no particular order), and the streams to `append` (path, text) piece by piece, in order.
fn render_into(
    compiled: &Compiled,
    put: impl Fn(&Path, &[u8]) -> Result<(), WriteError> + Sync,
    mut append: impl FnMut(&Path, &[u8]) -> Result<(), WriteError> + Send,
) -> Result<(), WriteError> {
    let mut inventory = Inventory::new(&compiled.catalog);
    inventory.standalone = compiled.standalone.clone();
    inventory.environment = compiled.environment.clone();
    inventory.contexts = compiled.contexts.clone();
    inventory.object_store = compiled.object_store.clone();
    // Per cluster (None: the host, always there): the kustomization's resources.
    let mut resources: BTreeMap<Option<String>, Vec<String>> = BTreeMap::from([(None, Vec::new())]);
    append(Path::new(ALL_FILE), b"")?;

    // The streams are appended on a thread of their own while the next chunk renders: written
    // in line, they left the other cores idle for a quarter of a large compile.
    std::thread::scope(|scope| {
        let (batches, received) = mpsc::sync_channel::<Vec<(PathBuf, Vec<u8>)>>(1);
        let appender = scope.spawn(move || {
            for (all, text) in received.into_iter().flatten() {
                append(&all, b"---\n")?;
                append(&all, &text)?;
            }
            Ok(())
        });
        let rendered = render_objects(compiled, &put, |batch| batches.send(batch).is_ok());
        drop(batches);
        let appended = appender
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        // The appender's error first: it is why a send failed.
        appended.and(rendered)
    })
    .map(|entries| {
        for entry in entries {
            let dir = cluster_dir(entry.cluster.as_deref());
            let path = Path::new(&entry.path);
            let relative = path.strip_prefix(&dir).unwrap_or(path);
            // S3 objects are pitrix's to upload: no Kubernetes tool may apply them.
            if !in_object_store(&entry.kind) {
                resources
                    .entry(entry.cluster.clone())
                    .or_default()
                    .push(relative.to_string_lossy().replace('\\', "/"));
            }
            inventory.objects.push(entry);
        }
    })?;
    inventory.status = compiled
        .status
        .par_iter()
        .map(|s| render_file(s.object_ref(), &status_path(s), &s.to_json(), &put).map(|(e, _)| e))
        .collect::<Result<_, WriteError>>()?;

    // GitOps engines: the status writer's objects, in kustomization.yaml but not in the
    // inventory (pitrix apply writes the states itself), and the Argo CD and Flux layout.
    // KubeSphere 3.x's review states and S3 uploads are `pitrix apply`'s: no status Job.
    let kubesphere_v3 = compiled
        .objects
        .iter()
        .any(|o| o.api_version() == crate::objects::v1alpha1::API_VERSION);
    let engine = match kubesphere_v3 {
        true => Vec::new(),
        false => crate::gitops::objects(compiled, &crate::gitops::EngineOptions::of(compiled)),
    };
    for (path, body) in &engine {
        put(path, &yaml(body))?;
        let path = path.to_string_lossy().replace('\\', "/");
        resources.entry(None).or_default().push(path);
    }
    let host = resources.get(&None).cloned().unwrap_or_default();
    for (path, kustomization) in crate::gitops::flux_kustomizations(&host) {
        put(&path, &yaml(&kustomization))?;
    }
    for (cluster, resources) in resources {
        let kustomization = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
            "patches": crate::gitops::argocd_patches(),
        });
        let dir = cluster_dir(cluster.as_deref());
        put(&dir.join(KUSTOMIZATION_FILE), &yaml(&kustomization))?;
    }
    put(Path::new(INVENTORY_FILE), &inventory.to_bytes())
}

/// Renders the objects a chunk at a time, each chunk in parallel: every file goes to `put`, and
/// each chunk's texts in order, with the all-in-one stream each belongs to, to `stream` (which
/// returns false when it takes no more). Returns each object's inventory entry.
fn render_objects(
    compiled: &Compiled,
    put: &(impl Fn(&Path, &[u8]) -> Result<(), WriteError> + Sync),
    mut stream: impl FnMut(Vec<(PathBuf, Vec<u8>)>) -> bool,
) -> Result<Vec<InventoryEntry>, WriteError> {
    let mut entries = Vec::with_capacity(compiled.objects.len());
    for chunk in compiled.objects.chunks(CHUNK) {
        let rendered: Vec<(InventoryEntry, Vec<u8>)> = chunk
            .par_iter()
            .map(|o| render_file(o.object_ref(), &object_path(o), &o.to_json(), put))
            .collect::<Result<_, WriteError>>()?;
        let mut batch = Vec::with_capacity(rendered.len());
        for (entry, text) in rendered {
            if !in_object_store(&entry.kind) {
                let dir = cluster_dir(entry.cluster.as_deref());
                batch.push((dir.join(ALL_FILE), text));
            }
            entries.push(entry);
        }
        if !stream(batch) {
            break;
        }
    }
    Ok(entries)
}

/// One object's file, handed to `put`, with its inventory entry.
fn render_file(
    r: ObjectRef,
    path: &Path,
    json: &serde_json::Value,
    put: &(impl Fn(&Path, &[u8]) -> Result<(), WriteError> + Sync),
) -> Result<(InventoryEntry, Vec<u8>), WriteError> {
    let text = yaml(json);
    put(path, &text)?;
    Ok((InventoryEntry::new(r, path, digest(json), &text), text))
}

/// Whether objects of `kind` live in the S3 store rather than the API server.
fn in_object_store(kind: &str) -> bool {
    crate::cluster::KindInfo::of(kind).is_some_and(|k| k.write.in_object_store)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
