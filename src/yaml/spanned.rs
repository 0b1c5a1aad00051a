//! A value with the position it came from: what every catalog type holds where a diagnostic may
//! need to point, and how the deserializer in this module hands it over.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};

use crate::diagnostics::Pos;

/// A value with the position it came from. Deserialise it only from a [`Node`]. Compares,
/// orders and hashes by value alone, so it can key a map looked up by plain values.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T: PartialOrd> PartialOrd for Spanned<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.value.partial_cmp(&other.value)
    }
}

impl<T: Ord> Ord for Spanned<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.value.cmp(&other.value)
    }
}

impl<T: std::hash::Hash> std::hash::Hash for Spanned<T> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.value.hash(state)
    }
}

impl std::borrow::Borrow<str> for Spanned<String> {
    fn borrow(&self) -> &str {
        &self.value
    }
}

impl<T> Spanned<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        Spanned { value, pos }
    }
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

pub(super) const SPANNED: &str = "$pitrix::Spanned";
pub(super) const SPANNED_FIELDS: [&str; 3] = ["$line", "$column", "$value"];

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Spanned<T> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpannedVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for SpannedVisitor<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value with a position")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Spanned<T>, A::Error> {
                let mut line = 0u32;
                let mut column = 0u32;
                while let Some(key) = map.next_key::<&str>()? {
                    match key {
                        "$line" => line = map.next_value()?,
                        "$column" => column = map.next_value()?,
                        _ => {
                            let value = map.next_value()?;
                            return Ok(Spanned {
                                value,
                                pos: Pos { line, column },
                            });
                        }
                    }
                }
                Err(de::Error::custom("positioned value without a value"))
            }
        }
        deserializer.deserialize_struct(
            SPANNED,
            &SPANNED_FIELDS,
            SpannedVisitor(std::marker::PhantomData),
        )
    }
}

impl<T: serde::Serialize> serde::Serialize for Spanned<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The text of an optional string, `""` when it is absent.
pub fn text(s: &Option<Spanned<String>>) -> &str {
    s.as_ref().map_or("", |s| s.value.as_str())
}
