//! A Helm repository's `index.yaml`, read the bounded way: the bytes are capped by the fetcher,
//! and the YAML is deserialised straight into typed entries — no generic tree — keeping only
//! the charts asked for (every other chart is skipped as it is parsed). Invalid entries are
//! dropped the way Helm's `loadIndex` drops them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::catalog::Maintainer;

/// One version of a chart in an index: the fields pitrix reads (Helm's `ChartVersion`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ChartVersion {
    pub name: String,
    pub version: String,
    pub api_version: Option<String>,
    pub app_version: Option<String>,
    pub description: Option<String>,
    pub home: Option<String>,
    pub icon: Option<String>,
    #[serde(deserialize_with = "lenient_maintainers")]
    pub maintainers: Vec<Maintainer>,
    pub keywords: Vec<String>,
    pub deprecated: bool,
    pub urls: Vec<String>,
    /// sha256 hex of the archive (may be empty: Helm allows it, KubeSphere never syncs it).
    pub digest: Option<String>,
    pub created: Option<String>,
}

/// Maintainers with unknown keys or null fields are still maintainers.
fn lenient_maintainers<'de, D: de::Deserializer<'de>>(d: D) -> Result<Vec<Maintainer>, D::Error> {
    #[derive(Deserialize)]
    struct Loose {
        name: Option<String>,
        email: Option<String>,
        url: Option<String>,
    }
    let items: Option<Vec<Option<Loose>>> = Option::deserialize(d)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .map(|m| Maintainer {
            name: m.name,
            email: m.email,
            url: m.url,
        })
        .collect())
}

impl ChartVersion {
    pub fn semver(&self) -> Option<semver::Version> {
        semver::Version::parse(self.version.trim_start_matches('v')).ok()
    }

    /// The digest as bare lowercase hex, if the index gives one.
    pub fn digest_hex(&self) -> Option<String> {
        self.digest
            .as_deref()
            .map(|d| d.trim().trim_start_matches("sha256:").to_ascii_lowercase())
            .filter(|d| !d.is_empty())
    }
}

/// A parsed index: the charts that were asked for, each newest SemVer first.
#[derive(Debug, Clone, Default)]
pub struct Index {
    pub api_version: String,
    pub entries: BTreeMap<String, Vec<ChartVersion>>,
    /// Every chart name in the index, also those not kept (for "did you mean").
    pub names: BTreeSet<String>,
    /// Versions dropped as invalid (no name, no version, not SemVer, no URL).
    pub skipped: usize,
}

impl Index {
    pub fn chart(&self, name: &str) -> Option<&[ChartVersion]> {
        self.entries.get(name).map(Vec::as_slice)
    }

    pub fn version(&self, chart: &str, version: &str) -> Option<&ChartVersion> {
        self.chart(chart)?.iter().find(|v| v.version == version)
    }
}

/// Which charts to keep while parsing.
#[derive(Debug, Clone, Default)]
pub enum Filter {
    #[default]
    All,
    Only(BTreeSet<String>),
}

impl Filter {
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Filter::Only(names.into_iter().map(Into::into).collect())
    }

    fn keeps(&self, name: &str) -> bool {
        match self {
            Filter::All => true,
            Filter::Only(set) => set.contains(name),
        }
    }
}

/// Why an index could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub line: Option<usize>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Parses index.yaml bytes, keeping the charts `filter` names.
pub fn parse(bytes: &[u8], filter: &Filter) -> Result<Index, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|e| ParseError {
        message: format!("not UTF-8 text: {e}"),
        line: None,
    })?;
    let seed = IndexSeed { filter };
    let raw = seed
        .deserialize(serde_yaml::Deserializer::from_str(text))
        .map_err(|e| ParseError {
            message: e.to_string(),
            line: e.location().map(|l| l.line()),
        })?;
    let api_version = raw.api_version.unwrap_or_default();
    if api_version.is_empty() {
        return Err(ParseError {
            message: "no apiVersion: this is not a Helm repository index".into(),
            line: None,
        });
    }
    if api_version != "v1" {
        return Err(ParseError {
            message: format!("apiVersion `{api_version}` (Helm indexes are `v1`)"),
            line: None,
        });
    }
    let Some(entries) = raw.entries else {
        return Err(ParseError {
            message: "no `entries`: this is not a Helm repository index".into(),
            line: None,
        });
    };
    let mut index = Index {
        api_version,
        names: raw.names,
        ..Index::default()
    };
    for (name, versions) in entries {
        let mut kept: Vec<ChartVersion> = Vec::with_capacity(versions.len());
        for v in versions.into_iter().flatten() {
            let valid = !v.version.is_empty()
                && v.name == name
                && v.semver().is_some()
                && !v.urls.is_empty();
            if valid {
                kept.push(v);
            } else {
                index.skipped += 1;
            }
        }
        // Helm's SortEntries: newest SemVer first.
        kept.sort_by_key(|v| std::cmp::Reverse(v.semver()));
        index.entries.insert(name, kept);
    }
    Ok(index)
}

struct RawIndex {
    api_version: Option<String>,
    entries: Option<BTreeMap<String, Vec<Option<ChartVersion>>>>,
    names: BTreeSet<String>,
}

struct IndexSeed<'f> {
    filter: &'f Filter,
}

impl<'de> DeserializeSeed<'de> for IndexSeed<'_> {
    type Value = RawIndex;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RawIndex, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for IndexSeed<'_> {
    type Value = RawIndex;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Helm repository index (a mapping with apiVersion and entries)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawIndex, A::Error> {
        let mut raw = RawIndex {
            api_version: None,
            entries: None,
            names: BTreeSet::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "apiVersion" => raw.api_version = map.next_value()?,
                "entries" => {
                    let (entries, names) = map.next_value_seed(EntriesSeed {
                        filter: self.filter,
                    })?;
                    raw.entries = Some(entries);
                    raw.names = names;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(raw)
    }
}

type Entries = BTreeMap<String, Vec<Option<ChartVersion>>>;

struct EntriesSeed<'f> {
    filter: &'f Filter,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = (Entries, BTreeSet<String>);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = (Entries, BTreeSet<String>);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a mapping of chart names to lists of chart versions")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Default::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Entries::new();
        let mut names = BTreeSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if self.filter.keeps(&name) {
                let versions: Option<Vec<Option<ChartVersion>>> = map.next_value()?;
                entries.insert(name.clone(), versions.unwrap_or_default());
            } else {
                map.next_value::<IgnoredAny>()?;
            }
            names.insert(name);
        }
        Ok((entries, names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"
apiVersion: v1
entries:
  redis:
    - name: redis
      version: 19.6.4
      digest: abc
      urls: [https://example.test/redis-19.6.4.tgz]
      maintainers: [{name: A, extra: x}]
      created: "2024-01-01T00:00:00Z"
    - name: redis
      version: 20.0.0
      urls: [redis-20.0.0.tgz]
    - name: redis
      version: not-semver
      urls: [x.tgz]
  nginx:
    - name: nginx
      version: 1.0.0
      urls: [nginx-1.0.0.tgz]
generated: "2024-01-01T00:00:00Z"
"#;

    #[test]
    fn keeps_only_what_is_asked_and_sorts_newest_first() {
        let index = parse(INDEX.as_bytes(), &Filter::only(["redis"])).unwrap();
        assert_eq!(index.entries.len(), 1);
        let redis = index.chart("redis").unwrap();
        assert_eq!(redis[0].version, "20.0.0");
        assert_eq!(redis[1].version, "19.6.4");
        assert_eq!(redis[1].maintainers[0].name.as_deref(), Some("A"));
        assert_eq!(index.skipped, 1);
        assert!(index.names.contains("nginx"));
    }

    #[test]
    fn malformed_indexes_are_errors() {
        assert!(parse(b"apiVersion: v1\nentries: [1, 2", &Filter::All).is_err());
        assert!(parse(b"<html>not found</html>", &Filter::All).is_err());
        assert!(parse(b"entries: {}", &Filter::All).is_err());
        assert!(parse(b"apiVersion: v1\n", &Filter::All).is_err());
        assert!(parse(b"apiVersion: v1\nentries:\n", &Filter::All).is_ok());
    }
}
