//! The S3 objects of `kubesphere-v3` (packages, icons, screenshots): uploaded before any
//! Kubernetes object that names them, never overwritten, deleted by prune.
//!
//! KubeSphere 3.x reads a version's package from S3 and nothing else (docs/kubesphere-v3.md
//! §4): so every upload must succeed before anything else is written — one that fails refuses
//! the whole apply, and what was uploaded is referenced by nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine as _;

use super::{ApplyOptions, ApplyReport, Desired, DesiredObject, Outcome};
use crate::catalog::S3Location;
use crate::cluster::ObjectRef;
use crate::error::Error;
use crate::storage::s3::{PutOutcome, S3Client};

/// Objects uploaded at once: S3 servers take parallel PUTs well, and each holds a package.
const PARALLEL: usize = 8;

/// The client of the catalog's object store, with credentials from the environment.
pub fn client(store: Option<&S3Location>) -> Result<S3Client, Error> {
    let store = store.ok_or_else(|| {
        Error::InvalidValue(
            "the catalog has S3 objects but names no object store: pitrix.toml needs [storage.s3]"
                .into(),
        )
    })?;
    Ok(S3Client::from_location(store, |var| {
        std::env::var(var).ok()
    })?)
}

/// The bytes an S3 object of the output carries.
fn bytes(o: &DesiredObject) -> Result<Vec<u8>, Error> {
    let body = o.to_body()?;
    let data = body["data"].as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| Error::Corrupt(format!("{} is not base64: {e}", o.r.display_name())))
}

/// Uploads `objects` where they are missing (a dry run only looks). `Err` when any upload
/// fails: the apply must then write nothing that would name a missing package.
pub async fn upload_all(
    desired: &Desired,
    objects: Vec<&DesiredObject>,
    opts: &ApplyOptions,
    report: &mut ApplyReport,
) -> Result<(), Error> {
    if objects.is_empty() {
        return Ok(());
    }
    let store = desired.object_store.clone();
    let dry_run = opts.dry_run;
    // The S3 client blocks: all of it on threads of their own, PARALLEL uploads at a time.
    let (client, pool) = blocking(move || {
        let client = client(store.as_ref())?;
        client.check_bucket()?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(PARALLEL)
            .build()
            .map_err(|e| Error::Runtime(e.to_string()))?;
        Ok((Arc::new(client), Arc::new(pool)))
    })
    .await?;
    // A few rounds' packages in memory at a time, read as their turn comes.
    let mut results = Vec::with_capacity(objects.len());
    for chunk in objects.chunks(PARALLEL * 4) {
        let work: Vec<(ObjectRef, Result<Vec<u8>, Error>)> =
            chunk.iter().map(|o| (o.r.clone(), bytes(o))).collect();
        let (client, pool) = (client.clone(), pool.clone());
        results.extend(
            blocking(move || {
                Ok(pool.install(|| {
                    use rayon::prelude::*;
                    work.into_par_iter()
                        .map(|(r, bytes)| {
                            let outcome = bytes.and_then(|b| put(&client, &r.name, &b, dry_run));
                            (r, outcome)
                        })
                        .collect::<Vec<_>>()
                }))
            })
            .await?,
        );
    }
    let mut failed = Vec::new();
    for (r, outcome) in results {
        match outcome {
            Ok(o) => report.push(r, o),
            Err(why) => {
                failed.push(format!("{}: {why}", r.name));
                report.push(r, Outcome::Failed(why.to_string()));
            }
        }
    }
    match failed.len() {
        0 => Ok(()),
        n => Err(Error::Upload(format!(
            "{n} upload(s) to S3 failed, so nothing that names them was applied: {}",
            failed.join("; ")
        ))),
    }
}

/// Runs S3 work off the async runtime (the client is blocking).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Runtime(format!("the S3 work stopped: {e}")))?
}

fn put(client: &S3Client, key: &str, bytes: &[u8], dry_run: bool) -> Result<Outcome, Error> {
    if dry_run {
        return match client.head(key)? {
            None => Ok(Outcome::WouldCreate),
            Some(stored) if stored.size == bytes.len() as u64 => Ok(Outcome::Unchanged),
            Some(_) => Err(Error::Upload(format!(
                "S3 already holds other bytes under `{key}`; a stored package is never overwritten"
            ))),
        };
    }
    match client.put_if_absent(key, bytes)? {
        PutOutcome::Uploaded => Ok(Outcome::Created),
        PutOutcome::Unchanged => Ok(Outcome::Unchanged),
    }
}

/// The keys of `desired`'s S3 objects that the store holds (for `pitrix diff`).
pub async fn stored_keys(desired: &Desired) -> Result<BTreeSet<String>, Error> {
    let keys: Vec<String> = desired
        .objects
        .iter()
        .filter(|o| o.kind.write.in_object_store)
        .map(|o| o.r.name.clone())
        .collect();
    if keys.is_empty() {
        return Ok(BTreeSet::new());
    }
    let store = desired.object_store.clone();
    blocking(move || held_keys(store.as_ref(), &keys)).await
}

/// Which of `keys` the store holds: a listing per prefix ([`list_prefix`]), not a request per
/// key. The client blocks: call it off the async threads.
pub fn held_keys(store: Option<&S3Location>, keys: &[String]) -> Result<BTreeSet<String>, Error> {
    let client = client(store)?;
    let prefixes: BTreeSet<&str> = keys.iter().map(|k| list_prefix(k)).collect();
    let mut listed = BTreeSet::new();
    for prefix in prefixes {
        listed.extend(client.list(prefix)?);
    }
    Ok(keys
        .iter()
        .filter(|k| listed.contains(*k))
        .cloned()
        .collect())
}

/// The prefix an S3 key is listed under: its workspace (`<workspace>/<version>`, packages) or
/// its kind (`att-<digest>`, images) — a few listings, not a request per key.
pub fn list_prefix(key: &str) -> &str {
    key.find('/')
        .or_else(|| key.find('-'))
        .map_or(key, |i| &key[..=i])
}

/// Deletes one S3 object the catalog no longer holds (prune).
pub async fn delete(store: Option<&S3Location>, key: &str, dry_run: bool) -> Outcome {
    let store = store.cloned();
    let key = key.to_string();
    let deleted = blocking(move || {
        let client = client(store.as_ref())?;
        if client.head(&key)?.is_none() {
            return Ok(Outcome::Pruned);
        }
        if dry_run {
            return Ok(Outcome::WouldPrune);
        }
        client.delete(&key)?;
        Ok(Outcome::Pruned)
    })
    .await;
    deleted.unwrap_or_else(|e| Outcome::Failed(e.to_string()))
}
