//! The JSON shapes of the seed format (docs/seed-format.md): a whole file, a
//! node record and a relationship record. Errors name the record at fault.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::de::DeserializeSeed;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::*;

mod edge;

pub use edge::EdgeRecordReader;

/// The format word a seed file declares.
pub const FORMAT: &str = "pvgraph/1";

/// A whole seed file: nodes, then relationships.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub format: String,
    #[serde(default)]
    pub nodes: Vec<Map<String, Json>>,
    #[serde(default)]
    pub relationships: Vec<Json>,
}

/// A node as the seed format writes it.
pub type NodeRecord = Map<String, Json>;

/// A relationship as the seed format writes it. It is read by `EdgeRecordReader`,
/// from a JSON value or straight off a stream, in the words of serde's derive,
/// which the tests keep as the reference.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(Deserialize), serde(deny_unknown_fields))]
#[serde(rename_all = "camelCase")]
pub struct EdgeRecord {
    pub kind: RelationshipKind,
    pub from: String,
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assertion: Option<Assertion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<InfluenceHow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_condition: Option<SystemCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strength: Option<Strength>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locator: Option<String>,
}

impl EdgeRecord {
    pub fn from_json(json: Json) -> Result<EdgeRecord> {
        // A JSON value has no syntax left to fail on: any fault is the record's.
        EdgeRecordReader.deserialize(json).unwrap_or_else(|e| Err(Error::invalid("", e.to_string())))
    }

    pub fn into_json(self) -> Map<String, Json> {
        match serde_json::to_value(self) {
            Ok(Json::Object(map)) => map,
            _ => unreachable!("an edge record always serialises to an object"),
        }
    }

    pub fn from_edge(edge: &Edge) -> EdgeRecord {
        let influence = edge.influence.as_ref();
        let citation = edge.citation.as_ref();
        EdgeRecord {
            kind: edge.kind,
            from: edge.from.to_string(),
            to: edge.to.to_string(),
            assertion: Some(edge.assertion),
            how: influence.map(|i| i.how),
            system_condition: influence.map(|i| i.system_condition),
            on: influence.map(|i| i.on),
            contribution: influence.and_then(|i| i.contribution.clone()),
            strength: influence.map(|i| i.strength),
            sources: influence.map(|i| i.sources.iter().map(ToString::to_string).collect()),
            quote: citation.and_then(|c| c.quote.clone()),
            locator: citation.and_then(|c| c.locator.clone()),
        }
    }

    /// Checks the record and turns it into an edge.
    pub fn into_edge(self) -> Result<Edge> {
        let from = NodeId::parse(&self.from).map_err(|e| e.within("from"))?;
        let to = NodeId::parse(&self.to).map_err(|e| e.within("to"))?;
        let properties = EdgeProperties {
            assertion: self.assertion,
            how: self.how,
            system_condition: self.system_condition,
            on: self.on,
            contribution: self.contribution,
            strength: self.strength,
            sources: self.sources,
            quote: self.quote,
            locator: self.locator,
        };
        properties.into_edge(self.kind, from, to)
    }
}

/// A relationship's own properties: its record but for its kind and ends. A store keeps them
/// as this JSON object (`Edge::properties`), read back here without the record around them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EdgeProperties {
    pub assertion: Option<Assertion>,
    pub how: Option<InfluenceHow>,
    pub system_condition: Option<SystemCondition>,
    pub on: Option<NaiveDate>,
    pub contribution: Option<String>,
    pub strength: Option<Strength>,
    pub sources: Option<Vec<String>>,
    pub quote: Option<String>,
    pub locator: Option<String>,
}

impl EdgeProperties {
    /// Reads the JSON object a store keeps.
    pub fn from_text(text: &str) -> Result<EdgeProperties> {
        serde_json::from_str(text).map_err(|e| Error::invalid("", e.to_string()))
    }

    /// Checks the properties and makes an edge of them between two ends.
    pub fn into_edge(self, kind: RelationshipKind, from: NodeId, to: NodeId) -> Result<Edge> {
        let is_influence = kind == RelationshipKind::Influenced;
        let has_influence_fields = self.how.is_some()
            || self.system_condition.is_some()
            || self.on.is_some()
            || self.contribution.is_some()
            || self.strength.is_some()
            || self.sources.is_some();
        let influence = if is_influence {
            let missing = |field: &str| Error::invalid(field, "is required on an INFLUENCED relationship");
            let sources = self
                .sources
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, s)| NodeId::parse(s).map_err(|e| e.within(&format!("sources[{i}]"))))
                .collect::<Result<Vec<_>>>()?;
            Some(Arc::new(Influence {
                how: self.how.ok_or_else(|| missing("how"))?,
                system_condition: self.system_condition.ok_or_else(|| missing("systemCondition"))?,
                on: self.on.ok_or_else(|| missing("on"))?,
                contribution: self.contribution,
                strength: self.strength.unwrap_or_default(),
                sources,
            }))
        } else if has_influence_fields {
            return Err(Error::invalid("how", format!("{kind} carries no influence properties")));
        } else {
            None
        };
        let citation = if self.quote.is_some() || self.locator.is_some() {
            Some(Arc::new(Citation { quote: self.quote, locator: self.locator }))
        } else if kind == RelationshipKind::Cites {
            Some(Arc::default())
        } else {
            None
        };
        Edge { kind, from, to, assertion: self.assertion.unwrap_or_default(), influence, citation }.checked()
    }
}

impl SeedFile {
    /// Reads a seed file's text; syntax errors name the line and column.
    pub fn parse(text: &str) -> Result<SeedFile> {
        let file: SeedFile = serde_json::from_str(text).map_err(|e| Error::invalid("file", e.to_string()))?;
        if file.format != FORMAT {
            return Err(Error::invalid("format", format!("is `{}`; this version reads `{FORMAT}`", file.format)));
        }
        Ok(file)
    }

    /// Checks every record and turns the file into one change set: organisations
    /// first, then the other nodes, then the relationships. `labels` gets the
    /// place of each change in the file, for errors found when it is applied.
    pub fn into_changes(self, now: chrono::DateTime<chrono::Utc>) -> Result<(Vec<Change>, Vec<String>)> {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for (i, record) in self.nodes.into_iter().enumerate() {
            let place = format!("nodes[{i}]");
            let node = Node::from_record(record, now).map_err(|e| e.within(&place))?;
            nodes.push((place, node));
        }
        // Organisations go first so that every other node finds its owner.
        nodes.sort_by_key(|(_, n)| n.kind() != NodeKind::Organisation);
        let mut changes = Vec::with_capacity(nodes.len() + self.relationships.len());
        let mut labels = Vec::with_capacity(changes.capacity());
        for (place, node) in nodes {
            labels.push(place);
            changes.push(Change::Create(node));
        }
        for (i, json) in self.relationships.into_iter().enumerate() {
            let place = format!("relationships[{i}]");
            let edge = EdgeRecord::from_json(json).and_then(EdgeRecord::into_edge).map_err(|e| e.within(&place))?;
            labels.push(place);
            changes.push(Change::Link(edge));
        }
        Ok((changes, labels))
    }

    /// A seed file holding a whole graph, as `export --format json` writes it.
    pub fn from_graph(nodes: &[Node], edges: &[Edge]) -> SeedFile {
        SeedFile {
            format: FORMAT.into(),
            nodes: nodes.iter().map(Node::to_record).collect(),
            relationships: edges.iter().map(|e| Json::Object(EdgeRecord::from_edge(e).into_json())).collect(),
        }
    }
}
