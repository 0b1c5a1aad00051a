//! YAML with positions: a small node tree built from yaml-rust2's marked events, and a serde
//! deserializer over it whose errors point at the node that caused them.
//!
//! serde_yaml keeps no positions for values and marked-yaml loses them on type and
//! unknown-field errors; every diagnostic in pitrix needs file:line, so the tree is ours.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostics::Pos;

mod de;
mod spanned;

pub use de::{DeError, Unknown, from_node};
pub use spanned::{Spanned, text};

/// Aliases may multiply a document; past this many nodes it is refused (billion laughs).
const MAX_NODES: usize = 100_000;

/// A YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// A plain scalar's text as written, where `value` lost it (`1.10` read as a number).
    pub raw: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, or a scalar requested as one: `text` is what the file says, so `version: 1.10`
    /// stays "1.10" where a string is expected.
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key: always its text as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub message: String,
    pub pos: Pos,
}

impl Node {
    /// The scalar as text, as it is written in the file.
    fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::String(s) => Some(s.clone()),
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Null => self.raw.clone(),
            _ => None,
        }
    }

    fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node as plain JSON (release values, manifests): keys as written, scalars typed.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(entries) => entries
                .iter()
                .map(|(k, v)| (k.text.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// Every value under this node with its JSON pointer (prefixed by `prefix`) and position.
    pub fn positions(&self, prefix: &str, out: &mut Vec<(String, Pos)>) {
        out.push((prefix.to_string(), self.pos));
        let escape = |s: &str| s.replace('~', "~0").replace('/', "~1");
        match &self.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    v.positions(&format!("{prefix}/{}", escape(&k.text)), out);
                }
            }
            Value::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    v.positions(&format!("{prefix}/{i}"), out);
                }
            }
            _ => {}
        }
    }

    /// The node at a dotted key path inside mappings, for positioning later diagnostics.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k.text == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

fn pos_of(m: &Marker) -> Pos {
    Pos {
        line: m.line() as u32,
        column: m.col() as u32 + 1,
    }
}

/// Parses one YAML document. An empty file is `Null`.
pub fn parse(text: &str) -> Result<Node, SyntaxError> {
    let mut docs = parse_stream(text)?;
    match docs.len() {
        0 => Ok(Node {
            value: Value::Null,
            pos: Pos { line: 1, column: 1 },
            raw: None,
        }),
        1 => Ok(docs.remove(0)),
        _ => Err(SyntaxError {
            message: "expected one YAML document, found several".into(),
            pos: docs[1].pos,
        }),
    }
}

/// Parses every document of a stream (manifests).
pub fn parse_stream(text: &str) -> Result<Vec<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // Event by event: `Parser::load` recurses per nesting level and a hostile file would
    // overflow the stack; the builder keeps its own stack and limits the depth.
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((event, mark)) => builder.on_event(event, mark),
            Err(e) => {
                return Err(SyntaxError {
                    message: e.info().to_string(),
                    pos: pos_of(e.marker()),
                });
            }
        }
        if builder.error.is_some() {
            break;
        }
    }
    if let Some(err) = builder.error {
        return Err(err);
    }
    Ok(builder.docs)
}

/// Deeper nesting is refused: no catalog file needs it, and every later stage recurses.
const MAX_DEPTH: usize = 128;

enum Frame {
    Seq(Pos, usize, Vec<Node>),
    /// Position, anchor, entries, the key awaiting its value, and the keys seen (duplicates are
    /// found in constant time, not by scanning).
    Map(
        Pos,
        usize,
        Vec<(Key, Node)>,
        Option<Key>,
        HashMap<String, Pos>,
    ),
}

#[derive(Default)]
struct Builder {
    docs: Vec<Node>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<SyntaxError>,
}

impl Builder {
    fn fail(&mut self, message: impl Into<String>, pos: Pos) {
        if self.error.is_none() {
            self.error = Some(SyntaxError {
                message: message.into(),
                pos,
            });
        }
    }

    fn count(&mut self, node: &Node, pos: Pos) {
        self.nodes += count_nodes(node);
        if self.nodes > MAX_NODES {
            self.fail(
                format!("document expands to more than {MAX_NODES} nodes (alias bomb?)"),
                pos,
            );
        }
    }

    fn push(&mut self, node: Node, anchor: usize) {
        if self.error.is_some() {
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, _, items)) => items.push(node),
            Some(Frame::Map(_, _, entries, pending, seen)) => match pending.take() {
                None => {
                    let Some(text) = node.scalar_text() else {
                        let pos = node.pos;
                        self.fail("mapping keys must be plain strings", pos);
                        return;
                    };
                    if let Some((first, _)) = entries.iter().find(|(k, _)| k.text == text) {
                        let message =
                            format!("duplicate key `{text}` (first at line {})", first.pos.line);
                        let pos = node.pos;
                        self.fail(message, pos);
                        return;
                    }
                    seen.insert(text.clone(), node.pos);
                    *pending = Some(Key {
                        text,
                        pos: node.pos,
                    });
                }
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|(_, v)| count_nodes(v)).sum::<usize>(),
        _ => 1,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let pos = pos_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.as_ref());
                let raw = (!matches!(value, Value::String(_))).then_some(text);
                let node = Node { value, pos, raw };
                self.nodes += 1;
                self.push(node, anchor);
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(format!("nested more than {MAX_DEPTH} levels deep"), pos)
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq(pos, anchor, Vec::new())),
            Event::MappingStart(anchor, _) => {
                self.stack
                    .push(Frame::Map(pos, anchor, Vec::new(), None, HashMap::new()))
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq(p, a, items)) => (
                        Node {
                            value: Value::Seq(items),
                            pos: p,
                            raw: None,
                        },
                        a,
                    ),
                    Some(Frame::Map(p, a, entries, _, _)) => {
                        // A block mapping's start event is marked after its first key;
                        // the mapping starts where that key does.
                        let pos = match entries.first() {
                            Some((k, _)) if k.pos < p => k.pos,
                            _ => p,
                        };
                        (
                            Node {
                                value: Value::Map(entries),
                                pos,
                                raw: None,
                            },
                            a,
                        )
                    }
                    None => return,
                };
                self.nodes += 1;
                self.push(node, anchor);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => {
                    self.count(&node, pos);
                    self.push(node, 0);
                }
                None => self.fail("alias to an unknown anchor", pos),
            },
            _ => {}
        }
        if self.nodes > MAX_NODES {
            self.fail(format!("document has more than {MAX_NODES} nodes"), pos);
        }
    }
}

/// YAML 1.2 core schema for plain scalars; quoted and block scalars are strings.
fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:")
        && !matches!(tag.suffix.as_str(), "int" | "float" | "bool" | "null")
    {
        return Value::String(text.to_string());
    }
    if style != TScalarStyle::Plain {
        return Value::String(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    if let Some(i) = parse_int(text) {
        return Value::Int(i);
    }
    if looks_like_float(text)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::String(text.to_string())
}

fn parse_int(text: &str) -> Option<i64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok();
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return i64::from_str_radix(oct, 8).ok();
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn looks_like_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let mut parts = mantissa.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(whole) && digits(f) && !(whole.is_empty() && f.is_empty()),
        None => !whole.is_empty() && digits(whole),
    };
    let exponent_ok = match exponent {
        Some(e) => {
            let e = e.strip_prefix(['-', '+']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
        None => frac.is_some(),
    };
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Doc {
        display_name: Option<Spanned<String>>,
        #[allow(dead_code)]
        count: Option<u32>,
        version: Option<Spanned<String>>,
        #[allow(dead_code)]
        sub: Option<Sub>,
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Sub {
        #[allow(dead_code)]
        x: Option<String>,
    }

    fn doc(text: &str) -> Result<Doc, DeError> {
        let node = parse(text).expect("parses");
        from_node(&node)
    }

    #[test]
    fn positions_of_values() {
        let d = doc("count: 3\ndisplayName: Nginx\n").unwrap();
        let name = d.display_name.unwrap();
        assert_eq!(name.value, "Nginx");
        assert_eq!(
            name.pos,
            Pos {
                line: 2,
                column: 14
            }
        );
    }

    #[test]
    fn unknown_key_points_at_key() {
        let e = doc("displayName: x\nsub:\n  x: a\n  yy: b\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 4, column: 3 }));
        let unknown = e.unknown.unwrap();
        assert_eq!(
            (unknown.given.as_str(), unknown.expected),
            ("yy", vec!["x"])
        );
    }

    #[test]
    fn type_error_points_at_value() {
        let e = doc("count: many\n").unwrap_err();
        assert_eq!(e.pos, Some(Pos { line: 1, column: 8 }));
        let e = doc("displayName: [1]\n").unwrap_err();
        assert!(e.message.contains("expected a string"), "{}", e.message);
    }

    #[test]
    fn numbers_read_as_strings_keep_their_text() {
        let d = doc("version: 1.10\n").unwrap();
        assert_eq!(d.version.unwrap().value, "1.10");
    }

    #[test]
    fn scalars_resolve_by_core_schema() {
        let node = parse("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: 1.2.3\ng: 0x1f\n").unwrap();
        let json = node.to_json();
        assert_eq!(
            json,
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": null, "e": 1.5, "f": "1.2.3", "g": 31})
        );
    }

    #[test]
    fn keys_keep_their_text() {
        let node = parse("versions:\n  1.10: {}\n  1.0.0: {}\n  true: {}\n").unwrap();
        let Value::Map(entries) = &node.get("versions").unwrap().value else {
            panic!("a mapping")
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.text.as_str()).collect();
        assert_eq!(keys, ["1.10", "1.0.0", "true"]);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(e.pos.line, 3);
        assert!(e.message.contains("duplicate key `a`"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1);
        let e = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(e.message.contains("several"));
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("nodes"), "{}", e.message);
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = "- ".repeat(100_000) + "x\n";
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("nested"), "{}", e.message);
        let flow = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(&format!("a: {flow}\n")).is_ok());
    }

    #[test]
    fn empty_document_is_an_empty_struct() {
        let d = doc("").unwrap();
        assert!(d.display_name.is_none());
    }
}
