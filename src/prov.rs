//! W3C PROV-JSON for a set of nodes and relationships. Experiments are
//! activities, organisations are agents, every other kind is an entity;
//! PRODUCED becomes wasGeneratedBy, INFLUENCED wasInfluencedBy, CITES
//! hadPrimarySource, and ownership wasAttributedTo / wasAssociatedWith.
//! A node id `kc:learning:x` is the qualified name `kc:learning:x`, whose
//! prefix `kc` stands for `urn:pvgraph:kc:`.

use serde_json::{Map, Value as Json, json};

use crate::domain::{Details, Edge, Node, NodeKind, RelationshipKind, timestamp};

fn put(doc: &mut Map<String, Json>, section: &str, key: String, value: Json) {
    let section = doc.entry(section).or_insert_with(|| Json::Object(Map::new()));
    if let Json::Object(map) = section {
        map.insert(key, value);
    }
}

/// Whether a node is a PROV entity: everything but experiments (activities) and organisations (agents).
fn is_entity(id: &crate::domain::NodeId) -> bool {
    !matches!(id.kind(), NodeKind::Experiment | NodeKind::Organisation)
}

fn node_attributes(node: &Node) -> Map<String, Json> {
    let mut attrs = Map::new();
    attrs.insert("prov:label".into(), node.title.clone().into());
    attrs.insert(
        "prov:type".into(),
        json!({ "$": format!("pv.vocab:{}", node.kind().type_name()), "type": "prov:QUALIFIED_NAME" }),
    );
    attrs.insert("pv.vocab:assertion".into(), node.assertion.as_str().into());
    attrs.insert("pv.vocab:createdAt".into(), json!({ "$": timestamp(node.created_at), "type": "xsd:dateTime" }));
    if !node.description.is_empty() {
        attrs.insert("pv.vocab:description".into(), node.description.clone().into());
    }
    for (field, value) in node.details.to_json() {
        attrs.insert(format!("pv.vocab:{field}"), value);
    }
    attrs
}

/// Builds a PROV-JSON document.
pub fn document(nodes: &[Node], edges: &[Edge]) -> Json {
    let mut doc = Map::new();
    let mut prefixes = Map::new();
    // The vocabulary's prefix has a dot, which no organisation slug can have.
    prefixes.insert("pv.vocab".into(), "urn:pvgraph:vocabulary:".into());
    for node in nodes {
        let org = node.organisation();
        prefixes.entry(org.to_owned()).or_insert_with(|| format!("urn:pvgraph:{org}:").into());
    }
    for edge in edges {
        for id in [&edge.from, &edge.to] {
            let org = id.organisation();
            prefixes.entry(org.to_owned()).or_insert_with(|| format!("urn:pvgraph:{org}:").into());
        }
    }
    doc.insert("prefix".into(), Json::Object(prefixes));
    for node in nodes {
        let id = node.id.to_string();
        let mut attrs = node_attributes(node);
        let section = match node.kind() {
            NodeKind::Organisation => {
                attrs.insert("prov:type".into(), json!({ "$": "prov:Organization", "type": "prov:QUALIFIED_NAME" }));
                "agent"
            }
            NodeKind::Experiment => {
                if let Details::Experiment(e) = &node.details {
                    if let Some(start) = e.started_on {
                        attrs.insert("prov:startTime".into(), format!("{start}T00:00:00Z").into());
                    }
                    if let Some(end) = e.ended_on {
                        attrs.insert("prov:endTime".into(), format!("{end}T00:00:00Z").into());
                    }
                }
                "activity"
            }
            _ => "entity",
        };
        put(&mut doc, section, id.clone(), Json::Object(attrs));
        if node.kind() != NodeKind::Organisation {
            let owner = format!("{0}:organisation:{0}", node.organisation());
            let (relation, role) = match node.kind() {
                NodeKind::Experiment => ("wasAssociatedWith", "prov:activity"),
                _ => ("wasAttributedTo", "prov:entity"),
            };
            put(&mut doc, relation, format!("_:owner-{id}"), json!({ role: id, "prov:agent": owner }));
        }
    }
    for (n, edge) in edges.iter().enumerate() {
        let (from, to) = (edge.from.to_string(), edge.to.to_string());
        match edge.kind {
            RelationshipKind::Produced => {
                put(&mut doc, "wasGeneratedBy", format!("_:g{n}"), json!({ "prov:entity": to, "prov:activity": from }));
            }
            RelationshipKind::Influenced => {
                let mut attrs = Map::new();
                attrs.insert("prov:influencee".into(), to.into());
                attrs.insert("prov:influencer".into(), from.into());
                for (field, value) in edge.properties() {
                    attrs.insert(format!("pv.vocab:{field}"), value);
                }
                put(&mut doc, "wasInfluencedBy", format!("_:i{n}"), Json::Object(attrs));
            }
            // hadPrimarySource joins entities; an activity or an agent citing a source is a typed influence.
            RelationshipKind::Cites if is_entity(&edge.from) => {
                let mut attrs = Map::new();
                attrs.insert("prov:generatedEntity".into(), from.into());
                attrs.insert("prov:usedEntity".into(), to.into());
                for (field, value) in edge.properties() {
                    attrs.insert(format!("pv.vocab:{field}"), value);
                }
                put(&mut doc, "hadPrimarySource", format!("_:s{n}"), Json::Object(attrs));
            }
            other => {
                // The model's other links have no PROV term of their own: a plain influence from
                // cause to effect, typed with the relationship's kind. A cited source is the cause.
                let (influencee, influencer) = if other == RelationshipKind::Cites { (from, to) } else { (to, from) };
                put(
                    &mut doc,
                    "wasInfluencedBy",
                    format!("_:r{n}"),
                    json!({
                        "prov:influencee": influencee,
                        "prov:influencer": influencer,
                        "prov:type": { "$": format!("pv.vocab:{other}"), "type": "prov:QUALIFIED_NAME" },
                        "pv.vocab:assertion": edge.assertion.as_str(),
                    }),
                );
            }
        }
    }
    Json::Object(doc)
}
