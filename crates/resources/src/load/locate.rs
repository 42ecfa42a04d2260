//! Finding the line of a field path inside a document's text.
//!
//! Resources are decoded from a parsed [`Value`], which has no positions. To point an
//! error at a line, the document text is deserialized once more with a probe that walks
//! the path and fails on arrival: the YAML and JSON deserializers stamp that failure with
//! the position of the node being read, which is the position we want.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_norway::Value;

use crate::field::{FieldPath, Segment};
use crate::load::source::{Document, Syntax};

/// Marks the probe's own failure, to tell it apart from anything else going wrong.
const ARRIVED: &str = "bulkhead-probe-arrived";

/// The file line of the deepest node of `path` present in the document, or `None` when
/// not even the first segment exists (callers then use the document's start line).
pub(crate) fn line_of(doc: &Document<'_>, value: &Value, path: &FieldPath) -> Option<usize> {
    let depth = existing_depth(value, path.segments());
    if depth == 0 {
        return None;
    }
    let target = &path.segments()[..depth];
    let relative = match doc.syntax {
        Syntax::Yaml => {
            let de = serde_norway::Deserializer::from_str(doc.text);
            match (Probe { path: target }).deserialize(de) {
                Err(e) if e.to_string().contains(ARRIVED) => e.location().map(|l| l.line()),
                _ => None,
            }
        }
        Syntax::Json => {
            let mut de = serde_json::Deserializer::from_str(doc.text);
            match (Probe { path: target }).deserialize(&mut de) {
                Err(e) if e.to_string().contains(ARRIVED) && e.line() > 0 => Some(e.line()),
                _ => None,
            }
        }
    }?;
    Some(doc.first_line + relative - 1)
}

/// How many leading segments of `segments` name nodes that exist in `value`.
fn existing_depth(mut value: &Value, segments: &[Segment]) -> usize {
    for (depth, segment) in segments.iter().enumerate() {
        match child(value, segment) {
            Some(next) => value = next,
            None => return depth,
        }
    }
    segments.len()
}

/// The child of `value` named by `segment`, looking through YAML tags.
pub(crate) fn child<'v>(value: &'v Value, segment: &Segment) -> Option<&'v Value> {
    match (untag(value), segment) {
        (Value::Mapping(map), Segment::Key(key)) => map
            .iter()
            .find(|(k, _)| key_text(k).as_deref() == Some(key.as_str()))
            .map(|(_, v)| v),
        (Value::Sequence(seq), Segment::Index(i)) => seq.get(*i),
        _ => None,
    }
}

/// `value` without any YAML tags around it.
pub(crate) fn untag(mut value: &Value) -> &Value {
    while let Value::Tagged(tagged) = value {
        value = &tagged.value;
    }
    value
}

/// A scalar mapping key as text, the way field paths spell it (`8080`, `true`, `name`).
fn key_text(key: &Value) -> Option<String> {
    match untag(key) {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Walks `path`; fails with [`ARRIVED`] when it reaches the node at its end.
struct Probe<'p> {
    path: &'p [Segment],
}

impl<'de> DeserializeSeed<'de> for Probe<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Probe<'_> {
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.path.is_empty() {
            Err(E::custom(ARRIVED))
        } else {
            Ok(())
        }
    }
}

impl<'de> Visitor<'de> for Probe<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(wanted), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(ARRIVED));
        };
        // The path ends at this key: stop on the key itself, so that a field whose value is
        // a block mapping or sequence is reported on its own line, not its first child's.
        let seed = KeySeed {
            wanted: rest.is_empty().then_some(wanted.as_str()),
        };
        while let Some(KeyText(key)) = map.next_key_seed(seed)? {
            if key.as_deref() == Some(wanted.as_str()) {
                return map.next_value_seed(Probe { path: rest });
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(wanted), rest)) = self.path.split_first() else {
            return Err(de::Error::custom(ARRIVED));
        };
        for _ in 0..*wanted {
            if seq.next_element::<IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Probe { path: rest }).map(|_| ())
    }
}

/// A mapping key read as text; `None` for keys that are not scalars.
struct KeyText(Option<String>);

/// Reads a mapping key; fails with [`ARRIVED`] when it is `wanted`.
#[derive(Clone, Copy)]
struct KeySeed<'p> {
    wanted: Option<&'p str>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = KeyText;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<KeyText, D::Error> {
        deserializer.deserialize_any(KeyVisitor {
            wanted: self.wanted,
        })
    }
}

struct KeyVisitor<'p> {
    wanted: Option<&'p str>,
}

impl KeyVisitor<'_> {
    fn text<E: de::Error>(&self, text: String) -> Result<KeyText, E> {
        if self.wanted == Some(text.as_str()) {
            return Err(E::custom(ARRIVED));
        }
        Ok(KeyText(Some(text)))
    }
}

impl<'de> Visitor<'de> for KeyVisitor<'_> {
    type Value = KeyText;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
        self.text(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
        self.text(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
        self.text(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
        self.text(v.to_owned())
    }

    fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
        Ok(KeyText(None))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<KeyText, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(KeyText(None))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyText, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(KeyText(None))
    }
}
