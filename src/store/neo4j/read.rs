//! Reads: the Cypher of nodes by id, keyset-paginated lists, counts,
//! relationships and the analysts' queries, and turning rows back into nodes
//! and edges. Every value is a parameter; see the module doc.

use chrono::{DateTime, Utc};
use neo4rs::{BoltType, Query, Row};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

use crate::domain::{Audience, Details, Edge, Embedding, Error, Node, NodeId, NodeKind, RelationshipKind, Result};
use crate::store::{Direction, FieldTest, ListQuery, NodeFilter, NodeWithEdges, OrderField};

/// The map projection a node is read back from (`n{…}`).
pub(super) const NODE_MAP: &str =
    "{.id, .title, .description, .tags, .visibility, .assertion, .createdAt, .updatedAt, .details}";

/// The map projection of a relationship `r` from `a` to `b`.
pub(super) const EDGE_MAP: &str = "{src: a.id, kind: type(r), dst: b.id, assertion: r.assertion, props: r.props}";

/// The map projection of a relationship `r` read from its own ends, whichever way it was matched.
pub(super) const STEP_MAP: &str =
    "{src: startNode(r).id, kind: type(r), dst: endNode(r).id, assertion: r.assertion, props: r.props}";

pub(super) fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("a stored Neo4j value cannot be read: {what}"))
}

/// A node as `NODE_MAP` returns it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct NodeRow {
    id: String,
    title: String,
    description: String,
    tags: Vec<String>,
    visibility: String,
    assertion: String,
    created_at: String,
    updated_at: String,
    details: String,
}

impl NodeRow {
    pub(super) fn into_node(self) -> Result<Node> {
        let id = NodeId::parse(&self.id).map_err(corrupt)?;
        let details: Map<String, Json> = serde_json::from_str(&self.details).map_err(corrupt)?;
        let time = |text: &str| -> Result<DateTime<Utc>> {
            DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(corrupt)
        };
        Ok(Node {
            details: Details::from_json(id.kind(), details).map_err(corrupt)?,
            id,
            title: self.title,
            description: self.description,
            tags: self.tags,
            visibility: crate::domain::Visibility::parse(&self.visibility).ok_or_else(|| corrupt(&self.visibility))?,
            assertion: crate::domain::Assertion::parse(&self.assertion).ok_or_else(|| corrupt(&self.assertion))?,
            created_at: time(&self.created_at)?,
            updated_at: time(&self.updated_at)?,
        })
    }
}

/// A relationship as `EDGE_MAP` returns it.
#[derive(Deserialize)]
pub(super) struct EdgeRow {
    pub(super) src: String,
    pub(super) kind: String,
    pub(super) dst: String,
    pub(super) assertion: String,
    pub(super) props: String,
}

impl EdgeRow {
    pub(super) fn into_edge(self) -> Result<Edge> {
        let kind = RelationshipKind::parse(&self.kind).ok_or_else(|| corrupt(&self.kind))?;
        let mut props: Map<String, Json> = serde_json::from_str(&self.props).map_err(corrupt)?;
        props.insert("assertion".into(), self.assertion.into());
        Edge::from_properties(kind, &self.src, &self.dst, props).map_err(corrupt)
    }
}

fn column<'r, T: Deserialize<'r>>(row: &'r Row, name: &str) -> Result<T> {
    row.get(name).map_err(|e| corrupt(format!("column {name}: {e}")))
}

/// The nodes of rows with a `node` column.
pub(super) fn nodes(rows: &[Row]) -> Result<Vec<Node>> {
    rows.iter().map(|row| column::<NodeRow>(row, "node")?.into_node()).collect()
}

/// The edges of rows with an `edge` column.
pub(super) fn edges(rows: &[Row]) -> Result<Vec<Edge>> {
    rows.iter().map(|row| column::<EdgeRow>(row, "edge")?.into_edge()).collect()
}

/// Pairs of nodes from rows with `first` and `second` columns.
pub(super) fn pairs(rows: &[Row]) -> Result<Vec<(Node, Node)>> {
    rows.iter()
        .map(|row| Ok((column::<NodeRow>(row, "first")?.into_node()?, column::<NodeRow>(row, "second")?.into_node()?)))
        .collect()
}

/// The ids as one list parameter, each once, in the order first given.
pub(super) fn id_list(ids: &[NodeId]) -> BoltType {
    let mut seen = std::collections::HashSet::new();
    ids.iter().filter(|id| seen.insert(*id)).map(|id| id.as_str()).collect()
}

pub(super) fn nodes_query(ids: &[NodeId]) -> Query {
    // Each id is an index seek; the input order is kept, as SQLite keeps it.
    neo4rs::query(&format!(
        "UNWIND range(0, size($ids) - 1) AS i
         MATCH (n:Node {{id: $ids[i]}})
         WITH i, n ORDER BY i
         RETURN n{NODE_MAP} AS node"
    ))
    .param("ids", id_list(ids))
}

/// Which relationships an edge lookup reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reach {
    /// Those between two nodes of this store (which an audience's view reads).
    Local,
    /// Those with one foreign end (a `:ForeignNode` stub), by the local end or the foreign id.
    Abroad,
    /// Both.
    All,
}

/// The relationships of `ids` that way, as an `edge` column; with `with_ends`, the node at each
/// one's far end too, as a `node` column (only for `Reach::Local`, where the far end is a node here).
pub(super) fn edges_query(
    ids: &[NodeId],
    direction: Direction,
    audience: &Audience,
    reach: Reach,
    with_ends: bool,
) -> Query {
    // Grouped by the given id, then by kind and the other end, as SQLite's
    // primary key (src, kind, dst) and its index (dst, kind, src) give them.
    // A stub is found by its own label's index, so each arm seeks one index.
    let (local, abroad, other): (&str, [&str; 2], &str) = match direction {
        Direction::Out => (
            "(a:Node {id: $ids[i]})-[r]->(b:Node)",
            ["(a:Node {id: $ids[i]})-[r]->(b:ForeignNode)", "(a:ForeignNode {id: $ids[i]})-[r]->(b:Node)"],
            "b",
        ),
        Direction::In => (
            "(a:Node)-[r]->(b:Node {id: $ids[i]})",
            ["(a:ForeignNode)-[r]->(b:Node {id: $ids[i]})", "(a:Node)-[r]->(b:ForeignNode {id: $ids[i]})"],
            "a",
        ),
    };
    let mut params = Params::default();
    let ends: Vec<String> = ["a", "b"].iter().filter_map(|n| audience_condition(audience, n, &mut params)).collect();
    let visible = if ends.is_empty() { String::new() } else { format!(" WHERE {}", ends.join(" AND ")) };
    let matched = match reach {
        // The hot path stays one pattern, as it was before stubs existed.
        Reach::Local => format!("MATCH {local}{visible}"),
        Reach::Abroad => {
            format!("CALL (i) {{ MATCH {} RETURN a, r, b UNION MATCH {} RETURN a, r, b }}", abroad[0], abroad[1])
        }
        Reach::All => format!(
            "CALL (i) {{ MATCH {local} RETURN a, r, b UNION MATCH {} RETURN a, r, b UNION MATCH {} RETURN a, r, b }}",
            abroad[0], abroad[1]
        ),
    };
    debug_assert!(reach == Reach::Local || visible.is_empty(), "only local relationships are read for an audience");
    debug_assert!(reach == Reach::Local || !with_ends, "far ends are read only for local relationships");
    let node = if with_ends { format!(", {other}{NODE_MAP} AS node") } else { String::new() };
    let text = format!(
        "UNWIND range(0, size($ids) - 1) AS i
         {matched}
         WITH i, a, r, b ORDER BY i, type(r), {other}.id
         RETURN {EDGE_MAP} AS edge{node}"
    );
    params.into_query(&text).param("ids", id_list(ids))
}

/// One node the audience may see (`node`), and for each of `directions` its relationships that
/// way to nodes the audience may see, each with its far end (`out`, `in`: lists of `edge` and
/// `node`; null for a direction not asked). No row when there is no such node.
pub(super) fn node_with_edges_query(id: &NodeId, directions: &[Direction], audience: &Audience) -> Query {
    let mut params = Params::default();
    let near = audience_condition(audience, "a", &mut params).map_or(String::new(), |c| format!(" WHERE {c}"));
    let far = audience_condition(audience, "b", &mut params).map_or(String::new(), |c| format!(" WHERE {c}"));
    let list = |direction: Direction| {
        if !directions.contains(&direction) {
            return "null".to_owned();
        }
        let pattern = match direction {
            Direction::Out => "(a)-[r]->(b:Node)",
            Direction::In => "(b:Node)-[r]->(a)",
        };
        format!("[{pattern}{far} | {{edge: r{STEP_MAP}, node: b{NODE_MAP}}}]")
    };
    let text = format!(
        "MATCH (a:Node {{id: $id}}){near}
         RETURN a{NODE_MAP} AS node, {} AS out, {} AS in",
        list(Direction::Out),
        list(Direction::In)
    );
    params.into_query(&text).param("id", id.as_str())
}

/// A relationship with its far end, as `node_with_edges_query` lists them.
#[derive(Deserialize)]
struct LinkRow {
    edge: EdgeRow,
    node: NodeRow,
}

/// The row of `node_with_edges_query`.
#[derive(Deserialize)]
struct NodeWithEdgesRow {
    node: NodeRow,
    out: Option<Vec<LinkRow>>,
    #[serde(rename = "in")]
    into: Option<Vec<LinkRow>>,
}

/// The node and its relationships of `node_with_edges_query`'s rows, each direction's in the
/// order of `edges_query` (by type, then far end).
pub(super) fn node_with_edges(rows: &[Row], directions: &[Direction]) -> Result<NodeWithEdges> {
    let Some(row) = rows.first() else {
        return Ok(NodeWithEdges {
            node: None,
            edges: directions.iter().map(|&d| (d, Vec::new(), Vec::new())).collect(),
        });
    };
    let row: NodeWithEdgesRow = row.to().map_err(|e| corrupt(format!("a node with its relationships: {e}")))?;
    let mut read = NodeWithEdges { node: Some(row.node.into_node()?), edges: Vec::new() };
    let (mut out, mut into) = (row.out, row.into);
    for &direction in directions {
        let list = match direction {
            Direction::Out => out.take(),
            Direction::In => into.take(),
        };
        let mut links = list
            .unwrap_or_default()
            .into_iter()
            .map(|link| Ok((link.edge.into_edge()?, link.node.into_node()?)))
            .collect::<Result<Vec<(Edge, Node)>>>()?;
        links.sort_by(|(a, x), (b, y)| (a.kind.as_str(), &x.id).cmp(&(b.kind.as_str(), &y.id)));
        let (edges, ends) = links.into_iter().unzip();
        read.edges.push((direction, edges, ends));
    }
    Ok(read)
}

/// Query parameters, named `$p0`, `$p1`, … in the order they are added.
#[derive(Default)]
pub(super) struct Params(Vec<(String, BoltType)>);

impl Params {
    pub(super) fn add(&mut self, value: impl Into<BoltType>) -> String {
        let name = format!("p{}", self.0.len());
        self.0.push((name.clone(), value.into()));
        format!("${name}")
    }

    pub(super) fn into_query(self, text: &str) -> Query {
        neo4rs::query(text).params(self.0)
    }
}

/// The node property a kind's filterable field is copied to (see `write::node_properties`).
pub(super) fn field_property(kind: NodeKind, field: &str) -> Option<&'static str> {
    Some(match (kind, field) {
        (NodeKind::Principle | NodeKind::Experiment, "status") => "status",
        (NodeKind::Barrier, "kind") => "barrierKind",
        (NodeKind::Learning, "kind") => "learningKind",
        (NodeKind::Barrier, "severity") => "severity",
        (NodeKind::Experiment, "evidenceLevel") => "evidenceLevel",
        (NodeKind::Learning, "confidence") => "confidence",
        (NodeKind::Learning, "embedding") => "embedding",
        _ => return None,
    })
}

/// The Cypher condition that keeps to the nodes `node` an audience may see (none for every node).
pub(super) fn audience_condition(audience: &Audience, node: &str, params: &mut Params) -> Option<String> {
    match audience {
        Audience::Everything => None,
        Audience::Public => Some(format!("{node}.visibility = 'PUBLIC'")),
        Audience::Member(organisation) => Some(format!(
            "({node}.visibility <> 'PRIVATE' OR {node}.organisation = {})",
            params.add(organisation.clone())
        )),
    }
}

/// The Cypher condition on `n` of a kind and a filter. The kind is a parameter
/// (served by the `node_kind` index) rather than a label in the text, so that
/// the kinds share statement texts and Neo4j plans each filter's shape once.
/// The word list of the property `sought` (if any) is left for the caller to write.
fn conditions(kind: NodeKind, filter: &NodeFilter, sought: Option<&str>, params: &mut Params) -> Result<String> {
    let mut parts = vec![format!("n.kind = {}", params.add(kind.as_str()))];
    if !filter.organisations.is_empty() {
        parts.push(format!("n.organisation IN {}", params.add(filter.organisations.clone())));
    }
    if let Some(text) = &filter.title_contains {
        parts.push(format!("n.titleFold CONTAINS {}", params.add(text.to_lowercase())));
    }
    if !filter.tags.is_empty() {
        parts.push(format!("any(tag IN n.tags WHERE tag IN {})", params.add(filter.tags.clone())));
    }
    for (relationship, direction, present) in &filter.related {
        // The relationship type is a closed word from the Rust enum. Only relationships between
        // nodes here count, as on SQLite: lists are of this store's own graph.
        let pattern = match direction {
            Direction::Out => format!("(n)-[:{}]->(:Node)", relationship.as_str()),
            Direction::In => format!("(n)<-[:{}]-(:Node)", relationship.as_str()),
        };
        let not = if *present { "" } else { "NOT " };
        parts.push(format!("{not}EXISTS {{ MATCH {pattern} }}"));
    }
    for test in &filter.fields {
        let (field, condition) = match test {
            FieldTest::OneOf(field, _) if Some(*field) == sought => continue,
            FieldTest::OneOf(field, words) => (*field, format!("IN {}", params.add(words.clone()))),
            FieldTest::AtLeast(field, low) => (*field, format!(">= {}", params.add(*low))),
        };
        let property = field_property(kind, field).ok_or_else(|| {
            Error::internal(anyhow::anyhow!("the Neo4j store cannot filter {} by {field}", kind.type_name()))
        })?;
        parts.push(format!("n.{property} {condition}"));
    }
    if let Some(visible) = audience_condition(&filter.audience, "n", params) {
        parts.push(visible);
    }
    Ok(parts.join(" AND "))
}

fn order_property(field: OrderField) -> &'static str {
    match field {
        OrderField::Id => "id",
        OrderField::Title => "title",
        OrderField::CreatedAt => "createdAt",
        OrderField::UpdatedAt => "updatedAt",
    }
}

/// The properties with an index for the id and the title order (6-lists.cypher): `(kind, property, order, id)`.
const INDEXED_PROPERTIES: [&str; 4] = ["status", "barrierKind", "learningKind", "embedding"];

/// The field a page seeks in its `(kind, property, order, id)` index, with the
/// property and the words, each once: the first word list on an indexed
/// property, unless an organisation filter narrows the list first or the
/// order (by a date) has no such index.
fn seek_field(
    kind: NodeKind,
    order: OrderField,
    filter: &NodeFilter,
) -> Option<(&'static str, &'static str, Vec<String>)> {
    if !filter.organisations.is_empty() || !matches!(order, OrderField::Id | OrderField::Title) {
        return None;
    }
    filter.fields.iter().find_map(|test| match test {
        FieldTest::OneOf(field, words) if !words.is_empty() => {
            let property = field_property(kind, field).filter(|p| INDEXED_PROPERTIES.contains(p))?;
            Some((*field, property, crate::store::distinct_words(words)))
        }
        _ => None,
    })
}

pub(super) fn list_query(query: &ListQuery) -> Result<Query> {
    let seek = seek_field(query.kind, query.order, &query.filter);
    let mut params = Params::default();
    let mut condition = conditions(query.kind, &query.filter, seek.as_ref().map(|s| s.0), &mut params)?;
    let property = order_property(query.order);
    let (later, earlier) = if query.descending { ("<", ">") } else { (">", "<") };
    let ascending = query.descending == query.from_end;
    let dir = if ascending { "ASC" } else { "DESC" };
    let Some((_, sought, words)) = seek else {
        // Keyset bounds compare (property, id) pairs; descending order flips them.
        // A missing bound is a null parameter, so that a page's statement text (and
        // Neo4j's cached plan) is the same whichever bounds it has.
        for (position, op) in [(&query.after, later), (&query.before, earlier)] {
            let key = params.add(position.as_ref().map(|p| p.key.clone()));
            let id = params.add(position.as_ref().map(|p| p.id.clone()));
            condition += &format!(
                " AND ({key} IS NULL OR n.{property} {op} {key} OR (n.{property} = {key} AND n.id {op} {id}))"
            );
        }
        let limit = params.add(query.limit as i64);
        let text = format!(
            "MATCH (n:Node) WHERE {condition}
             WITH n ORDER BY n.{property} {dir}, n.id {dir} LIMIT {limit}
             RETURN n{NODE_MAP} AS node"
        );
        return Ok(params.into_query(&text));
    };
    // Each word is read from the index in the list's order, and the read stops
    // after a page: every property of the index is bounded (a range, or only
    // present) so that the seek gives the index's order, and a bound's tie on
    // the order property is settled row by row in a form that the planner
    // cannot split into a union of seeks.
    let mut columns = vec!["kind".to_owned(), sought.to_owned()];
    let mut id_bounded = false;
    if query.order != OrderField::Id {
        columns.push(property.to_owned());
        let mut ranged = false;
        for (position, op) in [(&query.after, later), (&query.before, earlier)] {
            if let Some(p) = position {
                let (key, id) = (params.add(p.key.clone()), params.add(p.id.clone()));
                condition += &format!(
                    " AND n.{property} {op}= {key} AND CASE WHEN n.{property} = {key} THEN n.id {op} {id} ELSE true END"
                );
                ranged = true;
            }
        }
        if !ranged {
            condition += &format!(" AND n.{property} IS NOT NULL");
        }
    } else {
        for (position, op) in [(&query.after, later), (&query.before, earlier)] {
            if let Some(p) = position {
                condition += &format!(" AND n.id {op} {}", params.add(p.id.clone()));
                id_bounded = true;
            }
        }
    }
    columns.push("id".into());
    if !id_bounded {
        condition += " AND n.id IS NOT NULL";
    }
    let index = columns.join(", ");
    let index_order: Vec<String> = columns.iter().map(|c| format!("n.{c} {dir}")).collect();
    let words = params.add(words);
    let limit = params.add(query.limit as i64);
    let text = format!(
        "UNWIND {words} AS word
         CALL (word) {{
             MATCH (n:Node) USING INDEX n:Node({index}) WHERE n.{sought} = word AND {condition}
             WITH n ORDER BY {} LIMIT {limit}
             RETURN n
         }}
         WITH n ORDER BY {} LIMIT {limit}
         RETURN n{NODE_MAP} AS node",
        index_order.join(", "),
        // The pages of the words merged: the order without the sought kind and word.
        index_order[2..].join(", ")
    );
    Ok(params.into_query(&text))
}

pub(super) fn count_query(kind: NodeKind, filter: &NodeFilter) -> Result<Query> {
    let mut params = Params::default();
    let condition = conditions(kind, filter, None, &mut params)?;
    let text = format!("MATCH (n:Node) WHERE {condition} RETURN count(n) AS count");
    Ok(params.into_query(&text))
}

pub(super) fn dump_nodes_query() -> Query {
    neo4rs::query(&format!("MATCH (n:Node) WITH n ORDER BY n.id RETURN n{NODE_MAP} AS node"))
}

/// Every relationship of a `kind` (any, when empty) as `a, r, b`: between nodes, or between a
/// node and a foreign stub either way round.
fn every_edge(kind: &str) -> String {
    format!(
        "CALL () {{
             MATCH (a:Node)-[r{kind}]->(b) WHERE b:Node OR b:ForeignNode RETURN a, r, b
             UNION ALL MATCH (a:ForeignNode)-[r{kind}]->(b:Node) RETURN a, r, b
         }}"
    )
}

pub(super) fn dump_edges_query() -> Query {
    neo4rs::query(&format!("{} WITH a, r, b ORDER BY a.id, type(r), b.id RETURN {EDGE_MAP} AS edge", every_edge("")))
}

/// A stub carries its id's organisation and kind, so it answers as a node would here.
pub(super) fn influences_across_query(from: Option<&str>, to: Option<&str>, limit: usize) -> Query {
    neo4rs::query(&format!(
        "{}
         WITH a, r, b WHERE a.organisation <> b.organisation
           AND ($from IS NULL OR a.organisation = $from) AND ($to IS NULL OR b.organisation = $to)
         WITH a, r, b ORDER BY r.on, a.id, b.id LIMIT $limit
         RETURN {EDGE_MAP} AS edge",
        every_edge(":INFLUENCED")
    ))
    .param("from", from)
    .param("to", to)
    .param("limit", limit as i64)
}

pub(super) fn embedding_pairs_query(organisation: Option<&str>) -> Query {
    neo4rs::query(&format!(
        "MATCH (e:Node)-[:PRODUCED]->(l:Learning)
         WHERE l.embedding = $embedded AND ($organisation IS NULL OR l.organisation = $organisation)
         WITH e, l ORDER BY l.id, e.id
         RETURN e{NODE_MAP} AS first, l{NODE_MAP} AS second"
    ))
    .param("embedded", Embedding::Embedded.as_str())
    .param("organisation", organisation)
}
