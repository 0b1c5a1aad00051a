//! A serde deserializer over the [`Node`] tree whose errors carry the position of the node
//! that caused them, and feed [`Spanned`](super::Spanned) values their positions.

use std::fmt;

use serde::de::{
    self, DeserializeSeed, Error as _, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

use super::spanned::{SPANNED, SPANNED_FIELDS};
use super::{Key, Node, Value};
use crate::diagnostics::Pos;

/// Why a node did not fit the type asked of it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub message: String,
    pub pos: Option<Pos>,
    /// Set for unknown keys and values: what was given and what is allowed there.
    pub unknown: Option<Unknown>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    pub given: String,
    pub expected: Vec<&'static str>,
    /// A key of a mapping, rather than a value from a fixed set.
    pub is_key: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
            unknown: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!("unknown key `{field}`"),
            pos: None,
            unknown: Some(Unknown {
                given: field.to_string(),
                expected: expected.to_vec(),
                is_key: true,
            }),
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            message: format!(
                "`{variant}` is not one of {}",
                expected
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            pos: None,
            unknown: Some(Unknown {
                given: variant.to_string(),
                expected: expected.to_vec(),
                is_key: false,
            }),
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::custom(format!("missing required key `{field}`"))
    }
}

impl DeError {
    fn at(mut self, pos: Pos) -> Self {
        self.pos.get_or_insert(pos);
        self
    }
}

/// Deserialises a `T` from a node; errors carry the position of the innermost node at fault.
pub fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    T::deserialize(node)
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Seq(items) => visitor.visit_seq(NodeSeq(items.iter())),
            Value::Map(entries) => visitor.visit_map(NodeMap {
                entries: entries.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(self.pos))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value {
            Value::String(s) => visitor
                .visit_borrowed_str(s)
                .map_err(|e: DeError| e.at(self.pos)),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                let text = self.scalar_text().unwrap_or_default();
                visitor
                    .visit_string(text)
                    .map_err(|e: DeError| e.at(self.pos))
            }
            _ => Err(
                DeError::custom(format!("expected a string, found {}", self.type_name()))
                    .at(self.pos),
            ),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            return visitor.visit_map(SpannedAccess {
                pos: self.pos,
                inner: self,
                step: 0,
            });
        }
        match &self.value {
            // An empty file or key is an empty mapping: every key optional means valid.
            Value::Null => visitor
                .visit_map(NodeMap {
                    entries: [].iter(),
                    value: None,
                })
                .map_err(|e| e.at(self.pos)),
            Value::Map(_) => self.deserialize_any(visitor),
            _ => {
                let _ = fields;
                Err(
                    DeError::custom(format!("expected a mapping, found {}", self.type_name()))
                        .at(self.pos),
                )
            }
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Null => visitor.visit_map(NodeMap {
                entries: [].iter(),
                value: None,
            }),
            Value::Map(_) => self.deserialize_any(visitor),
            _ => Err(
                DeError::custom(format!("expected a mapping, found {}", self.type_name()))
                    .at(self.pos),
            ),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Null => visitor.visit_seq(NodeSeq([].iter())),
            Value::Seq(_) => self.deserialize_any(visitor),
            _ => Err(
                DeError::custom(format!("expected a list, found {}", self.type_name()))
                    .at(self.pos),
            ),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.value {
            Value::String(s) => visitor
                .visit_enum(s.as_str().into_deserializer())
                .map_err(|e: DeError| e.at(self.pos)),
            _ => Err(
                DeError::custom(format!("expected a string, found {}", self.type_name()))
                    .at(self.pos),
            ),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf unit
        unit_struct tuple tuple_struct identifier ignored_any
    }
}

struct NodeSeq<'de>(std::slice::Iter<'de, Node>);

impl<'de> SeqAccess<'de> for NodeSeq<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.0.next() {
            Some(node) => seed.deserialize(node).map(Some).map_err(|e| e.at(node.pos)),
            None => Ok(None),
        }
    }
}

struct NodeMap<'de> {
    entries: std::slice::Iter<'de, (Key, Node)>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for NodeMap<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDeserializer(key))
                    .map(Some)
                    .map_err(|e| e.at(key.pos))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| DeError::custom("value without a key"))?;
        seed.deserialize(node).map_err(|e| e.at(node.pos))
    }
}

/// Feeds a [`Spanned`](super::Spanned) its position, then its value from `inner`.
struct SpannedAccess<D> {
    pos: Pos,
    inner: D,
    step: u8,
}

impl<'de, D: de::Deserializer<'de, Error = DeError> + Copy> MapAccess<'de> for SpannedAccess<D> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(key) = SPANNED_FIELDS.get(self.step as usize) else {
            return Ok(None);
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        self.step += 1;
        match self.step {
            1 => seed.deserialize(self.pos.line.into_deserializer()),
            2 => seed.deserialize(self.pos.column.into_deserializer()),
            _ => seed.deserialize(self.inner),
        }
    }
}

/// Mapping keys are strings, and may be [`Spanned`].
#[derive(Clone, Copy)]
struct KeyDeserializer<'de>(&'de Key);

impl<'de> de::Deserializer<'de> for KeyDeserializer<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_borrowed_str(&self.0.text)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == SPANNED {
            visitor.visit_map(SpannedAccess {
                pos: self.0.pos,
                inner: self,
                step: 0,
            })
        } else {
            Err(DeError::custom("expected a mapping, found a key"))
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}
