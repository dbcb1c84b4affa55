//! GraphML: one `<node>` per node and one `<edge>` per relationship, each
//! field of the seed format (and a node's kind and organisation) as a `<data>` element under a typed `<key>`
//! (`long`, `double`, `boolean` or `string`; lists are written as JSON
//! text). Written with quick-xml, which escapes every value. A foreign end of
//! a relationship is a `<node>` with `foreign` true and only its id, kind and
//! organisation.

use std::collections::BTreeMap;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use serde_json::{Map, Value};

use crate::domain::{Edge, Node, SeedFile};

/// The type GraphML gives a key.
fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "long",
        Value::Number(_) => "double",
        _ => "string",
    }
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The keys of one domain (`node` or `edge`): each field's name and type, `string` when its
/// values disagree.
fn keys<'a>(records: impl Iterator<Item = &'a Map<String, Value>>, skip: &[&str]) -> BTreeMap<String, &'static str> {
    let mut keys = BTreeMap::new();
    for record in records {
        for (field, value) in record {
            if skip.contains(&field.as_str()) || value.is_null() {
                continue;
            }
            let ty = type_of(value);
            keys.entry(field.clone()).and_modify(|t| *t = if *t == ty { ty } else { "string" }).or_insert(ty);
        }
    }
    keys
}

/// The graph as a GraphML document.
pub fn graphml(nodes: &[Node], edges: &[Edge]) -> anyhow::Result<String> {
    let seed = serde_json::to_value(SeedFile::from_graph(nodes, edges))?;
    let empty = Vec::new();
    let objects = |name: &str| -> Vec<Map<String, Value>> {
        seed[name].as_array().unwrap_or(&empty).iter().filter_map(|v| v.as_object().cloned()).collect()
    };
    let (mut node_records, edge_records) = (objects("nodes"), objects("relationships"));
    // The seed format leaves the kind and owner to the id; drawing tools colour and filter by them.
    for (record, node) in node_records.iter_mut().zip(nodes) {
        record.insert("kind".into(), node.kind().as_str().into());
        record.insert("organisation".into(), node.organisation().into());
    }
    // A foreign end is drawn too, so that every edge joins two nodes, with only what its id says.
    for id in super::foreign_ends(nodes, edges) {
        let mut record = Map::new();
        record.insert("id".into(), id.as_str().into());
        record.insert("kind".into(), id.kind().as_str().into());
        record.insert("organisation".into(), id.organisation().into());
        record.insert("foreign".into(), true.into());
        node_records.push(record);
    }
    let node_keys = keys(node_records.iter(), &["id"]);
    let edge_keys = keys(edge_records.iter(), &["from", "to"]);

    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let root = BytesStart::new("graphml").with_attributes([
        ("xmlns", "http://graphml.graphdrawing.org/xmlns"),
        ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
        (
            "xsi:schemaLocation",
            "http://graphml.graphdrawing.org/xmlns http://graphml.graphdrawing.org/xmlns/1.0/graphml.xsd",
        ),
    ]);
    writer.write_event(Event::Start(root))?;
    for (domain, prefix, keys) in [("node", "n_", &node_keys), ("edge", "e_", &edge_keys)] {
        for (name, ty) in keys {
            let id = format!("{prefix}{name}");
            let key = BytesStart::new("key").with_attributes([
                ("id", id.as_str()),
                ("for", domain),
                ("attr.name", name.as_str()),
                ("attr.type", ty),
            ]);
            writer.write_event(Event::Empty(key))?;
        }
    }
    writer.write_event(Event::Start(
        BytesStart::new("graph").with_attributes([("id", "pvgraph"), ("edgedefault", "directed")]),
    ))?;
    for record in &node_records {
        let id = record.get("id").map(text_of).unwrap_or_default();
        writer.write_event(Event::Start(BytesStart::new("node").with_attributes([("id", id.as_str())])))?;
        write_data(&mut writer, "n_", record, &node_keys)?;
        writer.write_event(Event::End(BytesEnd::new("node")))?;
    }
    for (index, record) in edge_records.iter().enumerate() {
        let (from, to) =
            (record.get("from").map(text_of).unwrap_or_default(), record.get("to").map(text_of).unwrap_or_default());
        let id = format!("e{index}");
        let label = record.get("kind").map(text_of).unwrap_or_default();
        let edge = BytesStart::new("edge").with_attributes([
            ("id", id.as_str()),
            ("source", from.as_str()),
            ("target", to.as_str()),
            ("label", label.as_str()),
        ]);
        writer.write_event(Event::Start(edge))?;
        write_data(&mut writer, "e_", record, &edge_keys)?;
        writer.write_event(Event::End(BytesEnd::new("edge")))?;
    }
    writer.write_event(Event::End(BytesEnd::new("graph")))?;
    writer.write_event(Event::End(BytesEnd::new("graphml")))?;
    Ok(String::from_utf8(writer.into_inner())?)
}

fn write_data(
    writer: &mut Writer<Vec<u8>>,
    prefix: &str,
    record: &Map<String, Value>,
    keys: &BTreeMap<String, &'static str>,
) -> anyhow::Result<()> {
    for (field, value) in record {
        if !keys.contains_key(field) || value.is_null() {
            continue;
        }
        let key = format!("{prefix}{field}");
        writer.write_event(Event::Start(BytesStart::new("data").with_attributes([("key", key.as_str())])))?;
        writer.write_event(Event::Text(BytesText::new(&text_of(value))))?;
        writer.write_event(Event::End(BytesEnd::new("data")))?;
    }
    Ok(())
}
