//! Nodes: the fields every node shares, the fields of each kind, and the rules
//! each must keep. A node is read from and written to one JSON record shape
//! (the seed format), so the API, the importer and the stores check input in
//! one place.

use chrono::{DateTime, Datelike, NaiveDate, SubsecRound, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Map, Value as Json};

use super::id::clip;
use super::*;

/// A node of any kind.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub id: NodeId,
    pub title: String,
    pub description: String,
    pub tags: Vec<String>,
    pub visibility: Visibility,
    pub assertion: Assertion,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub details: Details,
}

/// The fields that belong to one kind of node.
#[derive(Clone, Debug, PartialEq)]
pub enum Details {
    Organisation(OrganisationDetails),
    Value(ValueDetails),
    Principle(PrincipleDetails),
    Barrier(BarrierDetails),
    Experiment(ExperimentDetails),
    Learning(LearningDetails),
    Source(SourceDetails),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrganisationDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// What the organisation is for, e.g. King County's "True North".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrincipleDetails {
    pub statement: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(default)]
    pub status: PrincipleStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted_on: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BarrierDetails {
    pub kind: BarrierKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<i32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExperimentDetails {
    pub hypothesis: String,
    #[serde(default)]
    pub status: ExperimentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_on: Option<NaiveDate>,
    /// Nesta standards of evidence, 1 to 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_level: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_notes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearningDetails {
    pub statement: String,
    pub kind: LearningKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    #[serde(default)]
    pub embedding: Embedding,
    /// When the learning was first recorded; it cannot influence anything earlier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedded_on: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SourceDetails {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locator: Option<String>,
}

/// The fields every node has, by their record names; the rest are the kind's.
const COMMON: &[&str] = &["id", "title", "description", "tags", "visibility", "assertion", "createdAt", "updatedAt"];

/// The current time at the precision the stores keep (microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl Node {
    pub fn kind(&self) -> NodeKind {
        self.id.kind()
    }

    pub fn organisation(&self) -> &str {
        self.id.organisation()
    }

    /// Reads a node from its record, checking every rule. Missing timestamps become `now`.
    pub fn from_record(record: Map<String, Json>, now: DateTime<Utc>) -> Result<Node> {
        let mut record = record;
        let id: NodeId = take(&mut record, "id")?.ok_or_else(|| Error::invalid("id", "is required"))?;
        let title: String = take(&mut record, "title")?.ok_or_else(|| Error::invalid("title", "is required"))?;
        let created_at: DateTime<Utc> = take(&mut record, "createdAt")?.unwrap_or(now);
        let node = Node {
            title: title.trim().to_owned(),
            description: take(&mut record, "description")?.unwrap_or_default(),
            tags: take(&mut record, "tags")?.unwrap_or_default(),
            visibility: take(&mut record, "visibility")?.unwrap_or_default(),
            assertion: take(&mut record, "assertion")?.unwrap_or_default(),
            updated_at: take::<DateTime<Utc>>(&mut record, "updatedAt")?
                .unwrap_or(created_at.max(now))
                .trunc_subsecs(6),
            created_at: created_at.trunc_subsecs(6),
            details: Details::from_json(id.kind(), record)?,
            id,
        };
        node.validate()?;
        Ok(node)
    }

    /// The node as a record: common fields first, then the kind's own.
    pub fn to_record(&self) -> Map<String, Json> {
        let mut record = Map::new();
        record.insert("id".into(), self.id.as_str().into());
        record.insert("title".into(), self.title.clone().into());
        if !self.description.is_empty() {
            record.insert("description".into(), self.description.clone().into());
        }
        if !self.tags.is_empty() {
            record.insert("tags".into(), self.tags.clone().into());
        }
        record.insert("visibility".into(), self.visibility.as_str().into());
        record.insert("assertion".into(), self.assertion.as_str().into());
        record.insert("createdAt".into(), timestamp(self.created_at).into());
        record.insert("updatedAt".into(), timestamp(self.updated_at).into());
        record.extend(self.details.to_json());
        record
    }

    /// Applies a merge patch: a field set to `null` is cleared, an absent one kept.
    pub fn patched(&self, patch: &NodePatch, now: DateTime<Utc>) -> Result<Node> {
        let mut record = self.to_record();
        for (field, value) in &patch.0 {
            if matches!(field.as_str(), "id" | "createdAt" | "updatedAt") {
                return Err(Error::invalid(field.as_str(), "cannot be changed"));
            }
            if value.is_null() {
                record.remove(field);
            } else {
                record.insert(field.clone(), value.clone());
            }
        }
        record.insert("updatedAt".into(), timestamp(now.max(self.created_at)).into());
        Node::from_record(record, now)
    }

    /// The day from which the node existed: the day it was recorded, or the day its own dates
    /// say it began if that is earlier (a learning's `capturedOn`, a principle's `adoptedOn`,
    /// an experiment's `startedOn`, a source's `publishedOn`). A learning cannot influence
    /// anything before this day, and `asOf` shows a node from this day on.
    pub fn existed_since(&self) -> NaiveDate {
        let recorded = self.created_at.date_naive();
        let began = match &self.details {
            Details::Learning(l) => l.captured_on,
            Details::Principle(p) => p.adopted_on,
            Details::Experiment(e) => e.started_on,
            Details::Source(s) => s.published_on,
            _ => None,
        };
        began.map_or(recorded, |day| day.min(recorded))
    }

    fn validate(&self) -> Result<()> {
        if self.title.is_empty() {
            return Err(Error::invalid("title", "must not be empty"));
        }
        check_len("title", &self.title, MAX_TITLE)?;
        check_len("description", &self.description, MAX_TEXT)?;
        if self.tags.len() > MAX_TAGS {
            return Err(Error::invalid("tags", format!("at most {MAX_TAGS} tags are allowed")));
        }
        for (i, tag) in self.tags.iter().enumerate() {
            if tag.trim().is_empty() {
                return Err(Error::invalid(format!("tags[{i}]"), "must not be empty"));
            }
            check_len(&format!("tags[{i}]"), tag, MAX_TAG)?;
        }
        if self.updated_at < self.created_at {
            return Err(Error::invalid("updatedAt", "must not be before createdAt"));
        }
        self.details.validate()
    }
}

impl Details {
    pub fn kind(&self) -> NodeKind {
        match self {
            Details::Organisation(_) => NodeKind::Organisation,
            Details::Value(_) => NodeKind::Value,
            Details::Principle(_) => NodeKind::Principle,
            Details::Barrier(_) => NodeKind::Barrier,
            Details::Experiment(_) => NodeKind::Experiment,
            Details::Learning(_) => NodeKind::Learning,
            Details::Source(_) => NodeKind::Source,
        }
    }

    /// Reads a kind's fields; a field the kind does not have is refused.
    pub fn from_json(kind: NodeKind, fields: Map<String, Json>) -> Result<Details> {
        if let Some(field) = fields.keys().find(|k| COMMON.contains(&k.as_str())) {
            return Err(Error::invalid(field.as_str(), "appears twice"));
        }
        let mut track = serde_path_to_error::Track::new();
        let fields = serde_path_to_error::Deserializer::new(Json::Object(fields), &mut track);
        Details::of_kind(kind, fields).map_err(|e| {
            let path = track.path().to_string();
            let message = e.to_string();
            Error::invalid(field_of(&path, &message), message)
        })
    }

    /// Reads a kind's fields from the JSON text a store keeps (`to_json`, written), straight
    /// into the kind's own struct.
    pub fn from_text(kind: NodeKind, text: &str) -> Result<Details> {
        let mut json = serde_json::Deserializer::from_str(text);
        let details = Details::of_kind(kind, &mut json).and_then(|details| json.end().map(|()| details));
        details.map_err(|e| Error::invalid("details", e.to_string()))
    }

    fn of_kind<'de, D: serde::Deserializer<'de>>(kind: NodeKind, fields: D) -> std::result::Result<Details, D::Error> {
        Ok(match kind {
            NodeKind::Organisation => Details::Organisation(Deserialize::deserialize(fields)?),
            NodeKind::Value => Details::Value(Deserialize::deserialize(fields)?),
            NodeKind::Principle => Details::Principle(Deserialize::deserialize(fields)?),
            NodeKind::Barrier => Details::Barrier(Deserialize::deserialize(fields)?),
            NodeKind::Experiment => Details::Experiment(Deserialize::deserialize(fields)?),
            NodeKind::Learning => Details::Learning(Deserialize::deserialize(fields)?),
            NodeKind::Source => Details::Source(Deserialize::deserialize(fields)?),
        })
    }

    pub fn to_json(&self) -> Map<String, Json> {
        let json = match self {
            Details::Organisation(d) => serde_json::to_value(d),
            Details::Value(d) => serde_json::to_value(d),
            Details::Principle(d) => serde_json::to_value(d),
            Details::Barrier(d) => serde_json::to_value(d),
            Details::Experiment(d) => serde_json::to_value(d),
            Details::Learning(d) => serde_json::to_value(d),
            Details::Source(d) => serde_json::to_value(d),
        };
        match json {
            Ok(Json::Object(map)) => map,
            _ => unreachable!("details always serialise to a JSON object"),
        }
    }

    fn validate(&self) -> Result<()> {
        match self {
            Details::Organisation(d) => {
                check_opt("jurisdiction", &d.jurisdiction, MAX_SHORT)?;
                check_opt("purpose", &d.purpose, MAX_TEXT)
            }
            Details::Value(d) => check_opt("definition", &d.definition, MAX_TEXT),
            Details::Principle(d) => {
                check_required("statement", &d.statement, MAX_TEXT)?;
                check_opt("rationale", &d.rationale, MAX_TEXT)
            }
            Details::Barrier(d) => check_range("severity", d.severity, 1, 5),
            Details::Experiment(d) => {
                check_required("hypothesis", &d.hypothesis, MAX_TEXT)?;
                check_opt("failureNotes", &d.failure_notes, MAX_TEXT)?;
                check_range("evidenceLevel", d.evidence_level, 1, 5)?;
                check_order("endedOn", d.started_on, d.ended_on, "startedOn")
            }
            Details::Learning(d) => {
                check_required("statement", &d.statement, MAX_TEXT)?;
                if d.embedded_on.is_some() && d.embedding != Embedding::Embedded {
                    return Err(Error::invalid("embeddedOn", "is only set when embedding is EMBEDDED"));
                }
                check_order("embeddedOn", d.captured_on, d.embedded_on, "capturedOn")
            }
            Details::Source(d) => {
                check_len("url", &d.url, 2_000)?;
                check_url(&d.url)?;
                check_opt("publisher", &d.publisher, MAX_SHORT)?;
                check_opt("quote", &d.quote, MAX_TEXT)?;
                check_opt("locator", &d.locator, MAX_SHORT)
            }
        }
    }
}

/// A merge patch over a node's record, as sent by an update mutation.
#[derive(Clone, Debug, Default)]
pub struct NodePatch(pub Map<String, Json>);

/// Formats a timestamp the way the stores keep it: fixed width, so text order is time order.
pub fn timestamp(at: DateTime<Utc>) -> String {
    // RFC 3339 spells four-digit years exactly as the pattern does, without parsing a pattern
    // for each call (an import writes two per node).
    match at.year() {
        0..=9999 => at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        _ => at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
    }
}

/// Reads a timestamp as `timestamp` spells it, `YYYY-MM-DDTHH:MM:SS.ffffffZ`, from its digits
/// at their fixed places; any other text (a year beyond four digits, a leap second, another
/// offset) goes through the general RFC 3339 parser, whose answer this always equals.
pub fn read_timestamp(text: &str) -> Result<DateTime<Utc>> {
    fixed_timestamp(text).map_or_else(
        || {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| Error::invalid("timestamp", format!("`{}` {e}", clip(text))))
        },
        Ok,
    )
}

fn fixed_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 27 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[19] != b'.' || b[26] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| {
        b[from..to].iter().try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    let date = NaiveDate::from_ymd_opt(number(0, 4)? as i32, number(5, 7)?, number(8, 10)?)?;
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    if second > 59 {
        return None;
    }
    let time = chrono::NaiveTime::from_hms_micro_opt(hour, minute, second, number(20, 26)?)?;
    Some(date.and_time(time).and_utc())
}

/// The field a serde error is about: its path, or the field named in a
/// "missing field `x`" or "unknown field `x`" message.
fn field_of(path: &str, message: &str) -> String {
    if !path.is_empty() && path != "." {
        return path.to_owned();
    }
    message.split('`').nth(1).filter(|_| message.contains(" field `")).unwrap_or_default().to_owned()
}

fn take<T: DeserializeOwned>(record: &mut Map<String, Json>, field: &str) -> Result<Option<T>> {
    match record.remove(field) {
        None | Some(Json::Null) => Ok(None),
        Some(value) => serde_json::from_value(value).map(Some).map_err(|e| Error::invalid(field, e.to_string())),
    }
}

pub(crate) fn check_len(field: &str, text: &str, max: usize) -> Result<()> {
    let count = text.chars().count();
    if count > max {
        return Err(Error::invalid(field, format!("is {count} characters long; at most {max} are allowed")));
    }
    if text.contains('\0') {
        return Err(Error::invalid(field, "must not contain a NUL character"));
    }
    Ok(())
}

pub(crate) fn check_opt(field: &str, text: &Option<String>, max: usize) -> Result<()> {
    text.as_deref().map_or(Ok(()), |t| check_len(field, t, max))
}

fn check_required(field: &str, text: &str, max: usize) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    check_len(field, text, max)
}

fn check_range(field: &str, value: Option<i32>, low: i32, high: i32) -> Result<()> {
    match value {
        Some(v) if !(low..=high).contains(&v) => {
            Err(Error::invalid(field, format!("is {v}; it must be from {low} to {high}")))
        }
        _ => Ok(()),
    }
}

fn check_order(field: &str, earlier: Option<NaiveDate>, later: Option<NaiveDate>, other: &str) -> Result<()> {
    match (earlier, later) {
        (Some(a), Some(b)) if b < a => Err(Error::invalid(field, format!("({b}) is before {other} ({a})"))),
        _ => Ok(()),
    }
}

fn check_url(url: &str) -> Result<()> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !url.contains(char::is_whitespace) => Ok(()),
        _ => Err(Error::invalid("url", format!("`{}` is not an http or https address", clip(url)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_spelled_at_fixed_width_to_the_microsecond() {
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc);
        assert_eq!(timestamp(at("2014-01-01T00:00:00Z")), "2014-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(at("2026-11-29T06:33:21.123456789+01:00")), "2026-11-29T05:33:21.123456Z");
        assert_eq!(timestamp(at("0001-02-03T04:05:06.7Z")), "0001-02-03T04:05:06.700000Z");
        assert_eq!(timestamp(at("0000-01-01T00:30:00+01:00")), "-0001-12-31T23:30:00.000000Z");
    }

    /// What the general parser makes of a text, or `None` where it refuses it.
    fn general(text: &str) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
    }

    #[test]
    fn a_timestamp_reads_back_as_the_general_parser_reads_it() {
        for text in [
            "2014-01-01T00:00:00.000000Z",
            "2026-11-29T04:58:43.365215Z",
            "0000-01-01T00:00:00.000000Z",
            "9999-12-31T23:59:59.999999Z",
            "2016-12-31T23:59:60.500000Z",
            "2024-02-29T12:00:00.000001Z",
        ] {
            assert_eq!(read_timestamp(text).ok(), general(text), "{text}");
            assert!(read_timestamp(text).is_ok(), "{text}");
        }
        for bad in [
            "2023-02-29T12:00:00.000000Z",
            "2024-13-01T12:00:00.000000Z",
            "2024-01-01T24:00:00.000000Z",
            "2024-01-01T12:60:00.000000Z",
            "2024-01-01T12:00:61.000000Z",
            "2024-01-01T12:00:00.00000aZ",
            "+024-01-01T12:00:00.000000Z",
            "2024-01-01T12:00:00.000000",
            "",
        ] {
            assert_eq!(read_timestamp(bad).ok(), general(bad), "{bad}");
            assert!(read_timestamp(bad).is_err(), "{bad}");
        }
        // Years beyond four digits (which `timestamp` spells otherwise), offsets, a space for the
        // `T`: what the fixed places do not hold reads as the general parser reads it.
        let odd = ["-0001-12-31T23:30:00.000000Z", "+10000-01-01T00:00:00.000000Z", "2024-01-01T12:00:00+02:00"];
        for odd in odd.into_iter().chain(["2024-01-01 12:00:00.000000Z"]) {
            assert_eq!(read_timestamp(odd).ok(), general(odd), "{odd}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_written_timestamp_reads_back_as_itself(micros in -62_135_596_800_000_000i64..253_402_300_800_000_000) {
            let at = DateTime::from_timestamp_micros(micros).unwrap();
            let text = timestamp(at);
            proptest::prop_assert_eq!(read_timestamp(&text).unwrap(), at);
            proptest::prop_assert_eq!(general(&text), Some(at));
        }
    }
}
