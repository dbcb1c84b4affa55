//! Relationships: who may point at whom, and the properties INFLUENCED and
//! CITES carry. A relationship is identified by its two ends and its kind.

use std::sync::Arc;

use chrono::NaiveDate;
use serde_json::{Map, Value as Json};

use super::node::check_opt;
use super::*;

/// A relationship between two nodes, from cause to effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    pub kind: RelationshipKind,
    pub from: NodeId,
    pub to: NodeId,
    pub assertion: Assertion,
    /// Set on INFLUENCED edges only; shared, so that a copy of the relationship (out of the
    /// cache of walks, into a walk's answer) copies none of its text.
    pub influence: Option<Arc<Influence>>,
    /// Set on CITES edges only.
    pub citation: Option<Arc<Citation>>,
}

/// What an INFLUENCED edge says about the influence.
#[derive(Clone, Debug, PartialEq)]
pub struct Influence {
    pub how: InfluenceHow,
    pub system_condition: SystemCondition,
    pub on: NaiveDate,
    pub contribution: Option<String>,
    pub strength: Strength,
    pub sources: Vec<NodeId>,
}

/// Where in a source a CITES edge points.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Citation {
    pub quote: Option<String>,
    pub locator: Option<String>,
}

impl Edge {
    /// A plain relationship without properties.
    pub fn plain(kind: RelationshipKind, from: NodeId, to: NodeId, assertion: Assertion) -> Result<Edge> {
        Edge { kind, from, to, assertion, influence: None, citation: None }.checked()
    }

    /// Checks the rules that need nothing but the edge itself.
    pub fn checked(self) -> Result<Edge> {
        if !self.kind.allows(self.from.kind(), self.to.kind()) {
            return Err(Error::rule(
                "kind",
                "LINK_NOT_ALLOWED",
                format!(
                    "{} cannot link {} ({}) to {} ({}); it links {}",
                    self.kind,
                    self.from,
                    self.from.kind().type_name(),
                    self.to,
                    self.to.kind().type_name(),
                    self.kind.rule()
                ),
            ));
        }
        if self.from == self.to {
            return Err(Error::rule("to", "SELF_LINK", "a node cannot be linked to itself"));
        }
        match (self.kind, &self.influence, &self.citation) {
            (RelationshipKind::Influenced, None, _) => {
                return Err(Error::invalid("how", "an INFLUENCED relationship needs how, systemCondition and on"));
            }
            (RelationshipKind::Influenced, Some(influence), None) => influence.check(self.assertion)?,
            (RelationshipKind::Cites, None, Some(citation)) => {
                check_opt("quote", &citation.quote, MAX_TEXT)?;
                check_opt("locator", &citation.locator, MAX_SHORT)?;
            }
            (RelationshipKind::Cites, None, None) => {}
            (_, None, None) => {}
            (kind, Some(_), _) => {
                return Err(Error::invalid("how", format!("{kind} carries no influence properties")));
            }
            (kind, _, Some(_)) => {
                return Err(Error::invalid("quote", format!("{kind} carries no citation properties")));
            }
        }
        Ok(self)
    }

    /// The edge's properties as stored: everything but its kind and ends.
    pub fn properties(&self) -> Map<String, Json> {
        let mut record = EdgeRecord::from_edge(self).into_json();
        for key in ["kind", "from", "to"] {
            record.remove(key);
        }
        record
    }

    /// The text a store keeps of the edge's properties but its assertion, which
    /// has a column of its own: `properties` as a JSON object, written straight
    /// from the edge.
    pub fn stored_properties(&self) -> String {
        let influence = self.influence.as_ref();
        let citation = self.citation.as_ref();
        let stored = StoredProperties {
            contribution: influence.and_then(|i| i.contribution.as_deref()),
            how: influence.map(|i| i.how),
            locator: citation.and_then(|c| c.locator.as_deref()),
            on: influence.map(|i| i.on),
            quote: citation.and_then(|c| c.quote.as_deref()),
            sources: influence.map(|i| i.sources.as_slice()),
            strength: influence.map(|i| i.strength),
            system_condition: influence.map(|i| i.system_condition),
        };
        match serde_json::to_string(&stored) {
            Ok(text) => text,
            Err(_) => unreachable!("words, dates and ids always serialise"),
        }
    }

    /// Rebuilds an edge from its kind, ends and stored properties.
    pub fn from_properties(
        kind: RelationshipKind,
        from: &str,
        to: &str,
        mut properties: Map<String, Json>,
    ) -> Result<Edge> {
        properties.insert("kind".into(), kind.as_str().into());
        properties.insert("from".into(), from.into());
        properties.insert("to".into(), to.into());
        EdgeRecord::from_json(Json::Object(properties))?.into_edge()
    }
}

/// An edge's stored properties, borrowed from it. The fields are in the order
/// of the keys of a JSON object (`Edge::properties`), so that the text is the same.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredProperties<'e> {
    #[serde(skip_serializing_if = "Option::is_none")]
    contribution: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    how: Option<InfluenceHow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locator: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quote: Option<&'e str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<&'e [NodeId]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strength: Option<Strength>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_condition: Option<SystemCondition>,
}

impl Influence {
    fn check(&self, assertion: Assertion) -> Result<()> {
        check_opt("contribution", &self.contribution, MAX_TEXT)?;
        if let Some(bad) = self.sources.iter().find(|s| s.kind() != NodeKind::Source) {
            return Err(Error::invalid("sources", format!("{bad} is not a source")));
        }
        if assertion == Assertion::Sourced && self.sources.is_empty() {
            return Err(Error::rule(
                "sources",
                "SOURCED_WITHOUT_SOURCE",
                "a SOURCED influence must name at least one source; otherwise mark it INFERRED or HYPOTHETICAL",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = self.sources.iter().find(|s| !seen.insert(*s)) {
            return Err(Error::invalid("sources", format!("{twice} is named twice")));
        }
        if self.sources.len() > 100 {
            return Err(Error::invalid("sources", "at most 100 sources are allowed"));
        }
        Ok(())
    }
}

/// Refuses an influence dated before its learning existed.
pub fn check_influence_date(learning: &Node, edge: &Edge) -> Result<()> {
    check_influence_since(&learning.id, learning.existed_since(), edge)
}

/// Refuses an influence dated before `since`, the day its learning began to exist
/// (`Node::existed_since`), for a caller that has that day without the learning itself.
pub fn check_influence_since(learning: &NodeId, since: NaiveDate, edge: &Edge) -> Result<()> {
    let Some(influence) = &edge.influence else { return Ok(()) };
    if influence.on < since {
        return Err(Error::rule(
            "on",
            "INFLUENCE_BEFORE_LEARNING",
            format!(
                "the influence is dated {}, but the learning {} only existed from {since}; a learning cannot influence anything before it existed",
                influence.on, learning
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use crate::domain::{Edge, EdgeRecord};

    fn edge(record: Json) -> Edge {
        EdgeRecord::from_json(record).and_then(EdgeRecord::into_edge).expect("a valid edge")
    }

    #[test]
    fn the_stored_properties_are_the_properties_but_the_assertion_as_json_text() {
        let influence = |extra: Json| {
            let mut record = json!({ "kind": "INFLUENCED", "from": "a:learning:l", "to": "a:value:v",
                                     "how": "SHIFTED_MINDSET", "systemCondition": "MENTAL_MODELS", "on": "2020-01-01" });
            record.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            edge(record)
        };
        let edges = [
            edge(json!({ "kind": "UPHOLDS", "from": "a:principle:p", "to": "a:value:v", "assertion": "SOURCED" })),
            edge(json!({ "kind": "CITES", "from": "a:value:v", "to": "a:source:s" })),
            edge(json!({ "kind": "CITES", "from": "a:value:v", "to": "a:source:s", "quote": "\"Quoted\"\n\u{e9}" })),
            edge(json!({ "kind": "CITES", "from": "a:value:v", "to": "a:source:s", "quote": "q", "locator": "p. 4" })),
            influence(json!({})),
            influence(json!({ "contribution": "tabs\tand \\ slashes", "strength": "STRONG" })),
            influence(json!({ "assertion": "SOURCED", "sources": ["a:source:s", "b:source:t"] })),
        ];
        for edge in edges {
            let mut properties = edge.properties();
            properties.remove("assertion");
            assert_eq!(edge.stored_properties(), Json::Object(properties).to_string(), "{edge:?}");
        }
    }
}
