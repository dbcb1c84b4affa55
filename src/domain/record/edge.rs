//! Reading a relationship record straight from any deserializer: a JSON value
//! (GraphQL mutations, a partner's answer, stored properties) or the stream of
//! a seed file, without building a generic JSON object first. The record's own
//! faults (an unknown or missing field, a value of the wrong kind) read exactly
//! as serde's derive would word them from a JSON value, without a position in
//! the file; only the reader's own failures (broken JSON) stop the stream.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer, StrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Unexpected, Visitor,
};
use serde_json::{Error as JsonError, Value as Json};

use super::{EdgeProperties, EdgeRecord};
use crate::domain::{Error, RelationshipKind, Result};

/// Reads one relationship record. The outer error is the deserializer's own
/// (broken JSON); the inner one is the record's fault, worded for its place.
pub struct EdgeRecordReader;

impl<'de> DeserializeSeed<'de> for EdgeRecordReader {
    type Value = Result<EdgeRecord>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let record = deserializer.deserialize_any(RecordVisitor)?;
        Ok(record.map_err(|e| Error::invalid("", e.to_string())))
    }
}

/// A record's fields, as the seed format spells them.
#[derive(Clone, Copy)]
enum Field {
    Kind,
    From,
    To,
    Assertion,
    How,
    SystemCondition,
    On,
    Contribution,
    Strength,
    Sources,
    Quote,
    Locator,
}

/// Every field's name, in the order of `Field` and of `EdgeRecord`, which
/// the error for an unknown field lists.
const NAMES: &[&str] = &[
    "kind",
    "from",
    "to",
    "assertion",
    "how",
    "systemCondition",
    "on",
    "contribution",
    "strength",
    "sources",
    "quote",
    "locator",
];

impl Field {
    const ALL: [Field; 12] = [
        Field::Kind,
        Field::From,
        Field::To,
        Field::Assertion,
        Field::How,
        Field::SystemCondition,
        Field::On,
        Field::Contribution,
        Field::Strength,
        Field::Sources,
        Field::Quote,
        Field::Locator,
    ];

    fn name(self) -> &'static str {
        NAMES[self as usize]
    }
}

/// A key of a record: one of its fields, or a name it does not have.
enum Key {
    Field(Field),
    Unknown(String),
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Key, E> {
        Ok(match NAMES.iter().position(|known| *known == name) {
            Some(at) => Key::Field(Field::ALL[at]),
            None => Key::Unknown(name.to_owned()),
        })
    }
}

/// The fields read so far.
#[derive(Default)]
struct Fields {
    /// Which fields were met, by `Field`, for refusing one met twice.
    seen: u16,
    kind: Option<RelationshipKind>,
    from: Option<String>,
    to: Option<String>,
    properties: EdgeProperties,
}

struct RecordVisitor;

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Result<EdgeRecord, JsonError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // serde's derive named the record so; the messages stay as they were.
        f.write_str("struct EdgeRecord")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let read = match key {
                Key::Unknown(name) => {
                    map.next_value::<IgnoredAny>().map(|_| Err(JsonError::unknown_field(&name, NAMES)))?
                }
                Key::Field(field) => fields.read(field, &mut map)?,
            };
            if let Err(fault) = read {
                // The rest of the record is read past, so that the reader stands after it.
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                return Ok(Err(fault));
            }
        }
        Ok(fields.into_record())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err(JsonError::invalid_type(Unexpected::Seq, &self)))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Err(JsonError::invalid_type(Unexpected::Bool(v), &self)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Err(JsonError::invalid_type(Unexpected::Signed(v), &self)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Err(JsonError::invalid_type(Unexpected::Unsigned(v), &self)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Err(JsonError::invalid_type(Unexpected::Float(v), &self)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Err(JsonError::invalid_type(Unexpected::Str(v), &self)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Err(JsonError::invalid_type(Unexpected::Unit, &self)))
    }
}

impl Fields {
    /// Reads the value of `field`; the outer error is the reader's, the inner one the record's.
    fn read<'de, A: MapAccess<'de>>(&mut self, field: Field, map: &mut A) -> Result<Result<(), JsonError>, A::Error> {
        let bit = 1 << field as u16;
        if self.seen & bit != 0 {
            map.next_value::<IgnoredAny>()?;
            return Ok(Err(JsonError::duplicate_field(field.name())));
        }
        self.seen |= bit;
        let read = match field {
            Field::Kind => map.next_value_seed(Typed::new())?.and_then(required).map(|v| self.kind = Some(v)),
            Field::From => map.next_value_seed(Typed::new())?.and_then(required).map(|v| self.from = Some(v)),
            Field::To => map.next_value_seed(Typed::new())?.and_then(required).map(|v| self.to = Some(v)),
            Field::Assertion => map.next_value_seed(Typed::new())?.map(|v| self.properties.assertion = v),
            Field::How => map.next_value_seed(Typed::new())?.map(|v| self.properties.how = v),
            Field::SystemCondition => map.next_value_seed(Typed::new())?.map(|v| self.properties.system_condition = v),
            Field::On => map.next_value_seed(Typed::new())?.map(|v| self.properties.on = v),
            Field::Contribution => map.next_value_seed(Typed::new())?.map(|v| self.properties.contribution = v),
            Field::Strength => map.next_value_seed(Typed::new())?.map(|v| self.properties.strength = v),
            Field::Sources => map.next_value_seed(Typed::new())?.map(|v| self.properties.sources = v),
            Field::Quote => map.next_value_seed(Typed::new())?.map(|v| self.properties.quote = v),
            Field::Locator => map.next_value_seed(Typed::new())?.map(|v| self.properties.locator = v),
        };
        Ok(read)
    }

    /// The record, or the first of its required fields it lacks.
    fn into_record(self) -> Result<EdgeRecord, JsonError> {
        let kind = self.kind.ok_or_else(|| JsonError::missing_field("kind"))?;
        let from = self.from.ok_or_else(|| JsonError::missing_field("from"))?;
        let to = self.to.ok_or_else(|| JsonError::missing_field("to"))?;
        let EdgeProperties { assertion, how, system_condition, on, contribution, strength, sources, quote, locator } =
            self.properties;
        Ok(EdgeRecord {
            kind,
            from,
            to,
            assertion,
            how,
            system_condition,
            on,
            contribution,
            strength,
            sources,
            quote,
            locator,
        })
    }
}

/// A required field's value; `null` is refused as serde's derive refuses it.
fn required<T: DeserializeOwned>(value: Option<T>) -> Result<T, JsonError> {
    match value {
        Some(value) => Ok(value),
        None => T::deserialize(Json::Null),
    }
}

/// Reads one field's value as a `T`, `null` as `None`. A string, the common
/// case, is read in place; any other value is read as JSON first, so that a
/// value of the wrong kind is refused in the words it was refused before.
struct Typed<T>(PhantomData<T>);

impl<T> Typed<T> {
    fn new() -> Typed<T> {
        Typed(PhantomData)
    }

    fn of_json(json: Json) -> Result<Option<T>, JsonError>
    where
        T: DeserializeOwned,
    {
        T::deserialize(json).map(Some)
    }
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Typed<T> {
    type Value = Result<Option<T>, JsonError>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for Typed<T> {
    type Value = Result<Option<T>, JsonError>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::deserialize(StrDeserializer::<JsonError>::new(v)).map(Some))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(T::deserialize(StringDeserializer::<JsonError>::new(v)).map(Some))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Self::of_json(Json::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Self::of_json(Json::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Self::of_json(Json::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Self::of_json(Json::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(Self::of_json(Json::deserialize(SeqAccessDeserializer::new(seq))?))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Ok(Self::of_json(Json::deserialize(MapAccessDeserializer::new(map))?))
    }
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeSeed;
    use serde_json::{Value as Json, json};

    use super::EdgeRecordReader;
    use crate::domain::{EdgeRecord, Error};

    /// What a reading gave: the record as JSON, or the error's words.
    fn outcome(read: Result<EdgeRecord, Error>) -> Result<Json, String> {
        match read {
            Ok(record) => Ok(Json::Object(record.into_json())),
            Err(Error::Invalid { field, message, reason: None }) if field.is_empty() => Err(message),
            Err(other) => panic!("an unexpected error: {other:?}"),
        }
    }

    /// Reads `text` off a stream, as an import does, with more of the file after it.
    fn streamed(text: &str) -> Result<Json, String> {
        let file = format!("{text} 1");
        let mut stream = serde_json::Deserializer::from_reader(file.as_bytes());
        let read = EdgeRecordReader.deserialize(&mut stream).expect("the JSON itself is sound");
        // The reader stands right after the record, whatever it thought of it.
        let next: u8 = serde::Deserialize::deserialize(&mut stream).expect("the value after the record");
        assert_eq!(next, 1, "{text}");
        stream.end().expect("nothing after that");
        outcome(read)
    }

    const RECORDS: &[&str] = &[
        r#"{"kind": "UPHOLDS", "from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"to": "a:value:v", "kind": "UPHOLDS", "from": "a:principle:p", "assertion": "SOURCED"}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "how": "SHIFTED_MINDSET",
            "systemCondition": "MENTAL_MODELS", "on": "2020-01-01", "contribution": "c", "strength": "STRONG",
            "sources": ["a:source:s"], "assertion": null, "quote": null}"#,
        r#"{"kind": "CITES", "from": "a:value:v", "to": "a:source:s", "quote": "q", "locator": "p. 4"}"#,
        r#"{"kind": "UPHOLDS", "from": "a:principle:p", "to": "a:value:v", "weight": 3}"#,
        r#"{"kind": "UPHOLDS", "from": "a:principle:p"}"#,
        r#"{"from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"kind": "UPHOLDS", "to": "a:value:v"}"#,
        r#"{}"#,
        r#"{"kind": null, "from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"kind": "UPHOLDS", "from": null, "to": "a:value:v"}"#,
        r#"{"kind": 5, "from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"kind": "LIKES", "from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"kind": ["UPHOLDS"], "from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"kind": {"UPHOLDS": null}, "from": "a:principle:p", "to": "a:value:v"}"#,
        r#"{"kind": "UPHOLDS", "from": 7, "to": "a:value:v"}"#,
        r#"{"kind": "UPHOLDS", "from": "a:principle:p", "to": ["a:value:v"]}"#,
        r#"{"kind": "UPHOLDS", "from": "a:principle:p", "to": "a:value:v", "assertion": "SURE"}"#,
        r#"{"kind": "UPHOLDS", "from": "a:principle:p", "to": "a:value:v", "assertion": true}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "how": -1}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "systemCondition": {"a": 1}}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "on": "2024-13-01"}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "on": "yesterday"}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "on": 20240101}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "contribution": false}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "strength": 1.5}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "strength": 2.0}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "sources": "a:source:s"}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "sources": [1]}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "sources": [null]}"#,
        r#"{"kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v", "sources": {"a": "b"}}"#,
        r#"{"kind": "CITES", "from": "a:value:v", "to": "a:source:s", "quote": 3}"#,
        r#"{"kind": "CITES", "from": "a:value:v", "to": "a:source:s", "locator": [{"deep": [1, 2]}]}"#,
        r#""UPHOLDS a:principle:p a:value:v""#,
        r#"12"#,
        r#"-12"#,
        r#"1.0"#,
        r#"true"#,
        r#"null"#,
    ];

    #[test]
    fn a_record_reads_as_serdes_derive_read_it_from_a_value_and_off_a_stream() {
        for text in RECORDS {
            let json: Json = serde_json::from_str(text).unwrap();
            // serde's derive, as the record was read before.
            let before = serde_json::from_value::<EdgeRecord>(json.clone())
                .map(|record| serde_json::to_value(record).unwrap())
                .map_err(|e| e.to_string());
            assert_eq!(outcome(EdgeRecord::from_json(json)), before, "from a value: {text}");
            assert_eq!(streamed(text), before, "off a stream: {text}");
        }
    }

    #[test]
    fn a_field_given_twice_is_refused_off_a_stream() {
        let text = r#"{"kind": "UPHOLDS", "from": "a:principle:p", "to": "a:value:v", "kind": "HINDERS"}"#;
        assert_eq!(streamed(text), Err("duplicate field `kind`".to_owned()));
    }

    #[test]
    fn a_record_written_as_a_list_is_refused() {
        let list = json!(["UPHOLDS", "a:principle:p", "a:value:v"]);
        let expected = Err("invalid type: sequence, expected struct EdgeRecord".to_owned());
        assert_eq!(outcome(EdgeRecord::from_json(list.clone())), expected);
        assert_eq!(streamed(&list.to_string()), expected);
    }
}
