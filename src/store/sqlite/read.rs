//! Reads: nodes by id, keyset-paginated lists, counts and relationships.
//! Id lists travel as one JSON array parameter (`json_each`), so a statement's
//! text does not depend on how many ids it is given and stays cached; a lookup
//! by ids joins each id of the array to its rows, seeking the index once per id
//! (an `IN (SELECT value FROM json_each(?))` list is copied into a temporary
//! index first). A filter's lists of words bind one parameter per word (see
//! `slots`), so that their expression indexes apply.

use foldhash::{HashMap, HashSet, HashSetExt as _};
use std::sync::LazyLock;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, Row, params_from_iter};
use serde_json::Value as Json;

use super::walks::WalkCache;
use crate::domain::{
    Assertion, Audience, Details, Edge, EdgeProperties, Error, Node, NodeId, NodeKind, RelationshipKind, Result,
    read_timestamp,
};
use crate::store::traverse::{far_end, near_end as near_id};
use crate::store::{Direction, FieldTest, ListQuery, NodeFilter, NodeWithEdges, OrderField};

pub(super) const NODE_COLUMNS: &str =
    "id, title, description, tags, visibility, assertion, created_at, updated_at, details";

/// A relationship of `foreign_edges` (aliased `f`) as the columns `src, kind, dst, assertion, props`.
pub(super) const FOREIGN_EDGE_COLUMNS: &str = "CASE f.outgoing WHEN 1 THEN f.local ELSE f.foreign_id END, f.kind,
     CASE f.outgoing WHEN 1 THEN f.foreign_id ELSE f.local END, f.assertion, f.props";

/// The ids as one JSON array for `?1` of a lookup, each once, in the order first given
/// (`unique`): a lookup joins every id of the array to its rows, so an id given twice would be
/// read twice. A checked id is lower-case letters, digits, hyphens and colons, so it is written
/// as it is, within quotes.
pub(super) fn id_list(ids: &[NodeId]) -> String {
    let ids = unique(ids);
    let mut out = String::with_capacity(2 + ids.iter().map(|id| id.as_str().len() + 3).sum::<usize>());
    out.push('[');
    for id in ids {
        if out.len() > 1 {
            out.push(',');
        }
        out.push('"');
        out.push_str(id.as_str());
        out.push('"');
    }
    out.push(']');
    out
}

/// The ids, each once, in the order first given: a short list finds repeats by looking back,
/// a long one with a hash set.
fn unique(ids: &[NodeId]) -> Vec<&NodeId> {
    const LOOK_BACK: usize = 16;
    let mut out: Vec<&NodeId> = Vec::with_capacity(ids.len());
    if ids.len() <= LOOK_BACK {
        for id in ids {
            if !out.contains(&id) {
                out.push(id);
            }
        }
    } else {
        let mut seen: HashSet<&NodeId> = HashSet::with_capacity(ids.len());
        out.extend(ids.iter().filter(|id| seen.insert(*id)));
    }
    out
}

/// `NODE_COLUMNS`, each prefixed with a table's alias.
fn node_columns(alias: &str) -> String {
    NODE_COLUMNS.split(", ").map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ")
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("a stored row cannot be read: {what}"))
}

fn json_cell<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(corrupt)
}

fn enum_cell<T>(text: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| corrupt(format!("unknown word {text}")))
}

/// Reads a node from a row of `NODE_COLUMNS`.
pub(super) fn node_from_row(row: &Row<'_>) -> Result<Node> {
    node_at(row, 0)
}

/// The text of a row's column.
fn text_at<'r>(row: &'r Row<'_>, column: usize) -> Result<&'r str> {
    row.get_ref(column).and_then(|v| v.as_str().map_err(Into::into)).map_err(corrupt)
}

/// Reads a node from the `NODE_COLUMNS` that start at column `at`. The row was written from a
/// checked node (`NodeRow`), so its id is only read for its shape, its details go straight
/// into the kind's struct and its timestamps are read at their fixed places.
fn node_at(row: &Row<'_>, at: usize) -> Result<Node> {
    let text = |i: usize| text_at(row, at + i);
    let id = NodeId::stored(text(0)?).map_err(corrupt)?;
    let tags = match text(3)? {
        "[]" => Vec::new(),
        tags => json_cell(tags)?,
    };
    Ok(Node {
        details: Details::from_text(id.kind(), text(8)?).map_err(corrupt)?,
        id,
        title: text(1)?.to_owned(),
        description: text(2)?.to_owned(),
        tags,
        visibility: enum_cell(text(4)?, crate::domain::Visibility::parse)?,
        assertion: enum_cell(text(5)?, crate::domain::Assertion::parse)?,
        created_at: read_timestamp(text(6)?).map_err(corrupt)?,
        updated_at: read_timestamp(text(7)?).map_err(corrupt)?,
    })
}

/// Reads an edge from a row of `src, kind, dst, assertion, props`: its ends as stored ids,
/// its properties (`{}` for most relationships) straight into their struct, the whole checked
/// as every edge is (`EdgeProperties::into_edge`).
pub(super) fn edge_from_row(row: &Row<'_>) -> Result<Edge> {
    let text = |i: usize| text_at(row, i);
    let kind = enum_cell(text(1)?, RelationshipKind::parse)?;
    let mut properties = match text(4)? {
        "{}" => EdgeProperties::default(),
        props => EdgeProperties::from_text(props).map_err(corrupt)?,
    };
    properties.assertion = Some(enum_cell(text(3)?, Assertion::parse)?);
    let from = NodeId::stored(text(0)?).map_err(corrupt)?;
    let to = NodeId::stored(text(2)?).map_err(corrupt)?;
    properties.into_edge(kind, from, to).map_err(corrupt)
}

fn collect<T>(conn: &Connection, sql: &str, params: &[Sql], read: fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    each_row(conn, sql, params, |row| {
        out.push(read(row)?);
        Ok(())
    })?;
    Ok(out)
}

/// Runs a statement from the connection's statement cache and hands each of its rows to `take`.
fn each_row(conn: &Connection, sql: &str, params: &[Sql], mut take: impl FnMut(&Row<'_>) -> Result<()>) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql).map_err(Error::internal)?;
    let mut rows = stmt.query(params_from_iter(params.iter())).map_err(Error::internal)?;
    while let Some(row) = rows.next().map_err(Error::internal)? {
        take(row)?;
    }
    Ok(())
}

/// The column of `edges` a lookup that way seeks.
fn near_end(direction: Direction) -> &'static str {
    match direction {
        Direction::Out => "src",
        Direction::In => "dst",
    }
}

/// The column of `edges` holding the far end of a lookup that way.
fn far_column(direction: Direction) -> &'static str {
    match direction {
        Direction::Out => "dst",
        Direction::In => "src",
    }
}

/// A statement's text for each direction (`Out`, then `In`), written once.
type ByDirection = LazyLock<[String; 2]>;

fn by_direction(texts: &ByDirection, direction: Direction) -> &str {
    match direction {
        Direction::Out => &texts[0],
        Direction::In => &texts[1],
    }
}

static NODES_BY_IDS: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {} FROM json_each(?1) AS j CROSS JOIN nodes n ON n.id = j.value", node_columns("n"))
});

pub(super) fn nodes_by_ids(conn: &Connection, ids: &str) -> Result<Vec<Node>> {
    collect(conn, &NODES_BY_IDS, &[Sql::Text(ids.to_owned())], node_from_row)
}

/// Every relationship of the ids that way, those with a foreign end too.
static EDGES: ByDirection = LazyLock::new(|| {
    [Direction::Out, Direction::In].map(|direction| {
        format!(
            "SELECT e.src, e.kind, e.dst, e.assertion, e.props
             FROM json_each(?1) AS j CROSS JOIN edges e ON e.{} = j.value
             UNION ALL {}",
            near_end(direction),
            foreign_edges(direction)
        )
    })
});

pub(super) fn edges(conn: &Connection, ids: &str, direction: Direction) -> Result<Vec<Edge>> {
    collect(conn, by_direction(&EDGES, direction), &[Sql::Text(ids.to_owned())], edge_from_row)
}

/// The relationships with a foreign end whose `from` (`Out`) or `to` (`In`) is among the ids
/// of `?1`, local or foreign. Most instances hold none: each arm first looks whether the table
/// holds any row at all, and only then reads the ids (the `any_foreign` gate, read first).
fn foreign_edges(direction: Direction) -> String {
    // The local end is on the asked side when the relationship points out of it for `Out`.
    let local_side = match direction {
        Direction::Out => 1,
        Direction::In => 0,
    };
    let arm = |join: &str| {
        format!(
            "SELECT {FOREIGN_EDGE_COLUMNS}
             FROM (SELECT 1 FROM foreign_edges LIMIT 1) AS any_foreign
             CROSS JOIN json_each(?1) AS j CROSS JOIN foreign_edges f ON {join}"
        )
    };
    // An id is on the asked side either as the local end or as the foreign one, never both
    // for one relationship (`outgoing` tells them apart), so the arms share no row.
    format!(
        "{} UNION ALL {}",
        arm(&format!("f.local = j.value AND f.outgoing = {local_side}")),
        arm(&format!("f.foreign_id = j.value AND f.outgoing <> {local_side}"))
    )
}

/// The relationships with a foreign end (see `foreign_edges`) of these ids, that way.
static EDGES_ABROAD: ByDirection = LazyLock::new(|| [Direction::Out, Direction::In].map(foreign_edges));

pub(super) fn edges_abroad(conn: &Connection, ids: &str, direction: Direction) -> Result<Vec<Edge>> {
    collect(conn, by_direction(&EDGES_ABROAD, direction), &[Sql::Text(ids.to_owned())], edge_from_row)
}

/// The relationships of `edges` whose two ends an audience may see, in one statement. Those
/// with a foreign end are not among them: whether its far end may be seen is for its owner to
/// say (`edges_abroad` reads them, and a request's view across partners asks the owner).
pub(super) fn visible_edges(
    conn: &Connection,
    ids: &str,
    direction: Direction,
    audience: &Audience,
) -> Result<Vec<Edge>> {
    let (sql, params) = visible_edges_statement(ids, direction, audience, false);
    collect(conn, &sql, &params, edge_from_row)
}

/// What `visible_edges` reads, with the node at each relationship's far end, each node once:
/// the statement joins the far end to see whether the audience may, so its columns come along
/// for the reading.
fn visible_edges_and_ends(
    conn: &Connection,
    ids: &str,
    direction: Direction,
    audience: &Audience,
) -> Result<(Vec<Edge>, Vec<Node>)> {
    let (sql, params) = visible_edges_statement(ids, direction, audience, true);
    let (mut edges, mut ends) = (Vec::new(), Vec::new());
    let mut read: HashSet<NodeId> = HashSet::new();
    each_row(conn, &sql, &params, |row| {
        let edge = edge_from_row(row)?;
        let far = far_end(&edge, direction);
        if !read.contains(far) {
            read.insert(far.clone());
            ends.push(node_at(row, EDGE_COLUMNS)?);
        }
        edges.push(edge);
        Ok(())
    })?;
    Ok((edges, ends))
}

/// How many columns `edge_from_row` reads.
const EDGE_COLUMNS: usize = 5;

/// The far end's `NODE_COLUMNS` in `visible_edges_statement` (`b` the relationship's `to`, `a` its
/// `from`), after a comma.
static FAR_END_COLUMNS: ByDirection =
    LazyLock::new(|| [format!(", {}", node_columns("b")), format!(", {}", node_columns("a"))]);

/// `visible_edges`' statement; with `ends`, each row goes on with its far end's `NODE_COLUMNS`.
fn visible_edges_statement(ids: &str, direction: Direction, audience: &Audience, ends: bool) -> (String, Vec<Sql>) {
    let mut params = vec![Sql::Text(ids.to_owned())];
    let from = audience_condition(audience, "a.", &mut params);
    let to = audience_condition(audience, "b.", &mut params);
    let far = if ends { by_direction(&FAR_END_COLUMNS, direction) } else { "" };
    let sql = format!(
        "SELECT e.src, e.kind, e.dst, e.assertion, e.props{far}
         FROM json_each(?1) AS j CROSS JOIN edges e ON e.{} = j.value
         JOIN nodes a ON a.id = e.src{from} JOIN nodes b ON b.id = e.dst{to}",
        near_end(direction)
    );
    (sql, params)
}

/// One node if the audience may see it, and its relationships `directions` as
/// `visible_edges_and_ends` reads them (none for a node it may not see), all from one snapshot;
/// from the cache of walks where it holds the snapshot's version (`Reader::visible_edges_and_ends`).
pub(super) fn node_with_edges(
    conn: &mut Connection,
    cache: Option<&WalkCache>,
    id: &NodeId,
    directions: &[Direction],
    audience: &Audience,
) -> Result<NodeWithEdges> {
    walk(conn, cache, |reader| {
        let ids = std::slice::from_ref(id);
        let node = reader.read_nodes(ids)?.into_iter().find(|n| audience.sees_node(n));
        let mut edges = Vec::with_capacity(directions.len());
        for &direction in directions {
            let (found, ends) = match node {
                Some(_) => reader.visible_edges_and_ends(ids, direction, audience)?,
                None => (Vec::new(), Vec::new()),
            };
            edges.push((direction, found, ends));
        }
        Ok(NodeWithEdges { node, edges })
    })
}

/// The SQL condition (starting with ` AND`, or empty) that keeps to the nodes
/// an audience may see; `alias` is the nodes table's name or alias with its dot.
pub(super) fn audience_condition(audience: &Audience, alias: &str, params: &mut Vec<Sql>) -> String {
    match audience {
        Audience::Everything => String::new(),
        Audience::Public => format!(" AND {alias}visibility = 'PUBLIC'"),
        Audience::Member(organisation) => {
            params.push(Sql::Text(organisation.clone()));
            format!(" AND ({alias}visibility <> 'PRIVATE' OR {alias}organisation = ?{})", params.len())
        }
    }
}

/// Binds each value as a parameter of its own and returns their slots for an
/// `IN (…)` list: SQLite seeks an index for each value of such a list, where
/// it cannot for `IN (SELECT value FROM json_each(?))` on an expression index.
/// The list is padded with its last value to a power of two, so a statement's
/// text takes one of a few forms and stays in the statement cache.
fn slots(params: &mut Vec<Sql>, values: &[String]) -> String {
    if values.is_empty() {
        return "NULL".into(); // matches nothing, as an empty JSON list did
    }
    let padded = values.len().next_power_of_two();
    let mut out = Vec::with_capacity(padded);
    for value in values {
        params.push(Sql::Text(value.clone()));
        out.push(format!("?{}", params.len()));
    }
    let last = out.last().cloned().unwrap_or_default();
    out.resize(padded, last);
    out.join(", ")
}

/// The kinds' own fields with indexes of their own (lists.sql): one for the id
/// order and one for the title order, each the field's value followed by the order's columns.
const INDEXED_FIELDS: [(NodeKind, &str); 5] = [
    (NodeKind::Principle, "status"),
    (NodeKind::Experiment, "status"),
    (NodeKind::Barrier, "kind"),
    (NodeKind::Learning, "kind"),
    (NodeKind::Learning, "embedding"),
];

/// The field a page of a list seeks in its index in the list's order, with its
/// words, each once: the first of the filter's word lists on an indexed field,
/// unless an organisation filter seeks the owner index instead (see
/// `conditions`) or the order (by a date) has no such index.
fn seek_field(kind: NodeKind, order: OrderField, filter: &NodeFilter) -> Option<(&'static str, Vec<String>)> {
    if !filter.organisations.is_empty() || !matches!(order, OrderField::Id | OrderField::Title) {
        return None;
    }
    filter.fields.iter().find_map(|test| match test {
        FieldTest::OneOf(field, words) if INDEXED_FIELDS.contains(&(kind, *field)) && !words.is_empty() => {
            Some((*field, crate::store::distinct_words(words)))
        }
        _ => None,
    })
}

/// The SQL condition and parameters of a kind and a filter; the word list of
/// the field `sought` (if any) is left for the caller to write.
fn conditions(kind: NodeKind, filter: &NodeFilter, sought: Option<&str>, params: &mut Vec<Sql>) -> String {
    // The kind is a closed word, written into the text so that partial indexes apply.
    // Which index a list seeks is chosen here, as the planner (without
    // statistics) cannot weigh them: an organisation owns a small share of the
    // graph, so its filter seeks nodes_by_owner and the kind's own fields are
    // then tested row by row (`+`); without it, a field with expression
    // indexes (lists.sql) seeks one of them, the kind's test being marked as
    // unselective so that the planner does not prefer the kind's column indexes.
    let by_owner = !filter.organisations.is_empty();
    let by_field = !by_owner && filter.fields.iter().any(|t| matches!(t, FieldTest::OneOf(..)));
    let mut sql = if by_field {
        format!("likelihood(kind = '{}', 0.9)", kind.as_str())
    } else {
        format!("kind = '{}'", kind.as_str())
    };
    if by_owner {
        let slots = slots(params, &filter.organisations);
        sql += &format!(" AND organisation IN ({slots})");
    }
    if let Some(text) = &filter.title_contains {
        params.push(Sql::Text(text.to_lowercase()));
        sql += &format!(" AND instr(pv_fold(title), ?{}) > 0", params.len());
    }
    if !filter.tags.is_empty() {
        params.push(Sql::Text(Json::from(filter.tags.clone()).to_string()));
        sql += &format!(
            " AND EXISTS (SELECT 1 FROM json_each(tags) t WHERE t.value IN (SELECT value FROM json_each(?{})))",
            params.len()
        );
    }
    for (relationship, direction, present) in &filter.related {
        let near = match direction {
            Direction::Out => "src",
            Direction::In => "dst",
        };
        let not = if *present { "" } else { "NOT " };
        sql += &format!(
            " AND {not}EXISTS (SELECT 1 FROM edges e WHERE e.{near} = nodes.id AND e.kind = '{}')",
            relationship.as_str()
        );
    }
    for test in &filter.fields {
        match test {
            FieldTest::OneOf(field, _) if Some(*field) == sought => {}
            FieldTest::OneOf(field, words) => {
                let slots = slots(params, words);
                // Only the sought field (or, for a count, the planner's choice) seeks an index.
                let seek = if by_owner || sought.is_some() { "+" } else { "" };
                sql += &format!(" AND {seek}json_extract(details, '$.{field}') IN ({slots})");
            }
            FieldTest::AtLeast(field, low) => {
                params.push(Sql::Integer(*low));
                sql += &format!(" AND json_extract(details, '$.{field}') >= ?{}", params.len());
            }
        }
    }
    sql += &audience_condition(&filter.audience, "", params);
    sql
}

fn order_column(field: OrderField) -> &'static str {
    match field {
        OrderField::Id => "id",
        OrderField::Title => "title",
        OrderField::CreatedAt => "created_at",
        OrderField::UpdatedAt => "updated_at",
    }
}

pub(super) fn list(conn: &Connection, query: &ListQuery) -> Result<Vec<Node>> {
    let (sql, params) = list_statement(query);
    let mut nodes = collect(conn, &sql, &params, node_from_row)?;
    if query.from_end {
        nodes.reverse();
    }
    Ok(nodes)
}

/// The statement of a page of a list, and its parameters. A list filtered by
/// an indexed field reads each of the field's words in an index that is in the
/// list's order and stops after the page; several words are several such
/// reads, merged (`UNION ALL` of at most a page each, then ordered again).
fn list_statement(query: &ListQuery) -> (String, Vec<Sql>) {
    let mut params = Vec::new();
    let seek = seek_field(query.kind, query.order, &query.filter);
    let mut condition = conditions(query.kind, &query.filter, seek.as_ref().map(|s| s.0), &mut params);
    let column = order_column(query.order);
    // Keyset bounds compare (column, id) pairs (the id alone when it is the
    // order, so that the bound is a range of the index); descending order flips them.
    let (later, earlier) = if query.descending { ("<", ">") } else { (">", "<") };
    for (position, op) in [(&query.after, later), (&query.before, earlier)] {
        if let Some(p) = position {
            if query.order == OrderField::Id {
                params.push(Sql::Text(p.id.clone()));
                condition += &format!(" AND id {op} ?{}", params.len());
            } else {
                params.push(Sql::Text(p.key.clone()));
                params.push(Sql::Text(p.id.clone()));
                condition += &format!(" AND ({column}, id) {op} (?{}, ?{})", params.len() - 1, params.len());
            }
        }
    }
    let ascending = query.descending == query.from_end;
    let dir = if ascending { "ASC" } else { "DESC" };
    let order = if query.order == OrderField::Id {
        format!("ORDER BY id {dir}")
    } else {
        format!("ORDER BY {column} {dir}, id {dir}")
    };
    params.push(Sql::Integer(query.limit as i64));
    let limit = format!("LIMIT ?{}", params.len());
    let page = |condition: &str| format!("SELECT {NODE_COLUMNS} FROM nodes WHERE {condition} {order} {limit}");
    let Some((field, words)) = seek else {
        return (page(&condition), params);
    };
    let arms: Vec<String> = words
        .into_iter()
        .map(|word| {
            params.push(Sql::Text(word));
            page(&format!("{condition} AND json_extract(details, '$.{field}') = ?{}", params.len()))
        })
        .collect();
    let sql = match &arms[..] {
        [one] => one.clone(),
        _ => {
            let arms: Vec<String> = arms.iter().map(|arm| format!("SELECT * FROM ({arm})")).collect();
            format!("{} {order} {limit}", arms.join(" UNION ALL "))
        }
    };
    (sql, params)
}

pub(super) fn count(conn: &Connection, kind: NodeKind, filter: &NodeFilter) -> Result<u64> {
    let mut params = Vec::new();
    let sql = format!("SELECT count(*) FROM nodes WHERE {}", conditions(kind, filter, None, &mut params));
    let mut stmt = conn.prepare_cached(&sql).map_err(Error::internal)?;
    let n: i64 = stmt.query_row(params_from_iter(params.iter()), |r| r.get(0)).map_err(Error::internal)?;
    Ok(n as u64)
}

pub(super) fn dump(conn: &Connection) -> Result<(Vec<Node>, Vec<Edge>)> {
    let nodes = collect(conn, &format!("SELECT {NODE_COLUMNS} FROM nodes ORDER BY seq"), &[], node_from_row)?;
    let sql = format!(
        "SELECT src, kind, dst, assertion, props FROM edges
         UNION ALL SELECT {FOREIGN_EDGE_COLUMNS} FROM foreign_edges f ORDER BY 1, 2, 3"
    );
    let edges = collect(conn, &sql, &[], edge_from_row)?;
    Ok((nodes, edges))
}

/// A reader connection as the traversals see it. Its lookups are synchronous
/// SQLite calls: the futures are ready at once. A walk may have a budget of rows
/// (`walk_within`): a lookup that would read past it stops, and so does the walk.
/// With a cache (`WalkCache`) of the walk's snapshot, lookups take what it holds
/// and keep what they read; nodes and relationships taken from it count against
/// the budget as rows read do.
pub(super) struct Reader<'c> {
    conn: &'c mut Connection,
    /// How many more rows the walk may read; `usize::MAX` for no budget.
    rows_left: usize,
    /// Whether a lookup stopped because the budget ran out.
    outgrown: bool,
    /// What earlier walks read, when they read it at this walk's version of the graph.
    cache: Option<(&'c WalkCache, i64)>,
}

/// Counts `rows` against a walk's budget (`rows_left`). Past the budget the lookup stops at
/// once, with an error the walk carries up, and `outgrown` says why.
fn spend(rows_left: &mut usize, outgrown: &mut bool, rows: usize) -> Result<()> {
    *rows_left = rows_left.checked_sub(rows).ok_or_else(|| {
        *outgrown = true;
        Error::internal(anyhow::anyhow!("the walk read more rows than its budget"))
    })?;
    Ok(())
}

/// The ids of `ids` whose entry the cache did not hold.
fn not_held<T>(ids: &[&NodeId], found: &[Option<T>]) -> Vec<NodeId> {
    ids.iter().zip(found).filter(|(_, held)| held.is_none()).map(|(id, _)| (*id).clone()).collect()
}

impl Reader<'_> {
    /// Counts `rows` taken from the cache against the walk's budget, as rows read are.
    fn spend(&mut self, rows: usize) -> Result<()> {
        spend(&mut self.rows_left, &mut self.outgrown, rows)
    }

    /// Runs a lookup's statement and reads each row with `read`, counting the rows against the
    /// walk's budget (`spend`).
    fn collect<T>(&mut self, sql: &str, params: &[Sql], read: fn(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
        let mut out = Vec::new();
        let (rows_left, outgrown) = (&mut self.rows_left, &mut self.outgrown);
        each_row(self.conn, sql, params, |row| {
            spend(rows_left, outgrown, 1)?;
            out.push(read(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// The nodes of the ids, each once, in the order first given: those the cache holds from
    /// it, the others read and kept.
    fn cached_nodes(&mut self, cache: &WalkCache, version: i64, ids: &[NodeId]) -> Result<Vec<Node>> {
        let ids = unique(ids);
        let mut found = cache.nodes(version, &ids);
        self.spend(found.iter().flatten().flatten().count())?;
        let missing = not_held(&ids, &found);
        if !missing.is_empty() {
            let read = self.read_and_keep(cache, version, &missing)?;
            let mut read: HashMap<NodeId, Node> = read.into_iter().map(|n| (n.id.clone(), n)).collect();
            for (slot, id) in found.iter_mut().zip(&ids) {
                if slot.is_none() {
                    *slot = Some(read.remove(*id));
                }
            }
        }
        Ok(found.into_iter().flatten().flatten().collect())
    }

    /// The nodes of the ids, none of them held, read from the file and kept, with the ids
    /// that are no node kept as such.
    fn read_and_keep(&mut self, cache: &WalkCache, version: i64, ids: &[NodeId]) -> Result<Vec<Node>> {
        let read = self.collect(&NODES_BY_IDS, &[Sql::Text(id_list(ids))], node_from_row)?;
        cache.keep_read(version, ids, &read);
        Ok(read)
    }

    /// Which of the ids are nodes the audience may see: those the cache holds looked at where
    /// they are kept, the others read and kept.
    fn cached_seen(
        &mut self,
        cache: &WalkCache,
        version: i64,
        ids: &[NodeId],
        audience: &Audience,
    ) -> Result<HashSet<NodeId>> {
        let ids = unique(ids);
        let found = cache.seen(version, &ids, audience);
        self.spend(found.iter().flatten().count())?;
        let missing = not_held(&ids, &found);
        let mut seen: HashSet<NodeId> =
            ids.iter().zip(&found).filter(|(_, v)| **v == Some(true)).map(|(id, _)| (*id).clone()).collect();
        if !missing.is_empty() {
            let read = self.read_and_keep(cache, version, &missing)?;
            seen.extend(read.into_iter().filter(|n| audience.sees_node(n)).map(|n| n.id));
        }
        Ok(seen)
    }

    /// Every relationship of the ids that way, as `EDGES` reads them: the lists the cache holds
    /// from it, the others read and kept, each id's whole list, an empty one too.
    fn cached_edges(
        &mut self,
        cache: &WalkCache,
        version: i64,
        ids: &[NodeId],
        direction: Direction,
    ) -> Result<Vec<Edge>> {
        let ids = unique(ids);
        let mut found = cache.edges(version, direction, &ids);
        self.spend(found.iter().flatten().map(Vec::len).sum())?;
        let missing = not_held(&ids, &found);
        if !missing.is_empty() {
            let read = self.collect(by_direction(&EDGES, direction), &[Sql::Text(id_list(&missing))], edge_from_row)?;
            let mut lists: HashMap<NodeId, Vec<Edge>> = missing.into_iter().map(|id| (id, Vec::new())).collect();
            for edge in read {
                if let Some(list) = lists.get_mut(near_id(&edge, direction)) {
                    list.push(edge);
                }
            }
            for (slot, id) in found.iter_mut().zip(&ids) {
                if slot.is_none() {
                    *slot = lists.get(*id).cloned();
                }
            }
            cache.keep_edges(version, direction, lists.into_iter().collect());
        }
        Ok(found.into_iter().flatten().flatten().collect())
    }
}

/// Runs a traversal over a reader connection, all its lookups in one read transaction
/// (`snapshot`), with the cache of walks when it holds the snapshot's version of the graph.
pub(super) fn walk<T>(
    conn: &mut Connection,
    cache: Option<&WalkCache>,
    traversal: impl FnOnce(&mut Reader<'_>) -> Result<T>,
) -> Result<T> {
    snapshot(conn, |conn| {
        let cache = entered(conn, cache)?;
        traversal(&mut Reader { conn, rows_left: usize::MAX, outgrown: false, cache })
    })
}

/// Runs a traversal as `walk` does, unless it reads more than `rows` rows: then it stops there,
/// and the answer is `None`.
pub(super) fn walk_within<T>(
    conn: &mut Connection,
    cache: Option<&WalkCache>,
    rows: usize,
    traversal: impl FnOnce(&mut Reader<'_>) -> Result<T>,
) -> Result<Option<T>> {
    snapshot(conn, |conn| {
        let cache = entered(conn, cache)?;
        let mut reader = Reader { conn, rows_left: rows, outgrown: false, cache };
        match traversal(&mut reader) {
            _ if reader.outgrown => Ok(None),
            answer => answer.map(Some),
        }
    })
}

/// The cache and the graph's version, inside a read transaction, when the cache may serve it
/// (`WalkCache::enter`). Reading the version is the transaction's first read, so it is the
/// version of every lookup after it.
fn entered<'c>(conn: &Connection, cache: Option<&'c WalkCache>) -> Result<Option<(&'c WalkCache, i64)>> {
    let Some(cache) = cache else { return Ok(None) };
    let version: i64 = conn
        .prepare_cached("SELECT n FROM graph_version")
        .and_then(|mut stmt| stmt.query_row([], |r| r.get(0)))
        .map_err(Error::internal)?;
    Ok(cache.enter(version).then_some((cache, version)))
}

/// Runs several reads in one read transaction: they see one snapshot of the graph, and each
/// statement finds the read lock already held rather than taking and releasing it.
fn snapshot<T>(conn: &mut Connection, reads: impl FnOnce(&mut Connection) -> Result<T>) -> Result<T> {
    // Reads that never finish (a panic) leave the transaction to the pool's checkout to end.
    run_cached(conn, "BEGIN")?;
    let answer = reads(conn);
    // Nothing was written: ending the transaction only releases the snapshot.
    run_cached(conn, "COMMIT")?;
    answer
}

/// Runs a statement without parameters from the connection's statement cache.
fn run_cached(conn: &Connection, sql: &str) -> Result<()> {
    conn.prepare_cached(sql).and_then(|mut stmt| stmt.execute([])).map(drop).map_err(Error::internal)
}

impl Reader<'_> {
    /// The nodes of the ids, each once: from the cache where the walk has it, else in one statement.
    fn read_nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Node>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((cache, version)) = self.cache {
            return self.cached_nodes(cache, version, ids);
        }
        self.collect(&NODES_BY_IDS, &[Sql::Text(id_list(ids))], node_from_row)
    }

    /// The relationships of the ids that way whose two ends the audience may see, with the node
    /// at each far end, each once: what the free `visible_edges_and_ends` reads in one statement.
    /// From the cache, every relationship as `EDGES` reads it, kept where its near end and its
    /// far end are nodes the audience may see, as the statement's two joins keep them; a
    /// relationship with a foreign end has no node at that end here, so it is not kept, as the
    /// statement does not read it.
    pub(super) fn visible_edges_and_ends(
        &mut self,
        ids: &[NodeId],
        direction: Direction,
        audience: &Audience,
    ) -> Result<(Vec<Edge>, Vec<Node>)> {
        if ids.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let Some((cache, version)) = self.cache else {
            let read = visible_edges_and_ends(self.conn, &id_list(ids), direction, audience)?;
            self.spend(read.0.len())?;
            return Ok(read);
        };
        let near = self.cached_seen(cache, version, ids, audience)?;
        let mut edges = self.cached_edges(cache, version, ids, direction)?;
        edges.retain(|e| near.contains(near_id(e, direction)));
        let far: Vec<NodeId> = edges.iter().map(|e| far_end(e, direction).clone()).collect();
        let mut ends = self.cached_nodes(cache, version, &far)?;
        ends.retain(|n| audience.sees_node(n));
        let shown: HashSet<&NodeId> = ends.iter().map(|n| &n.id).collect();
        edges.retain(|e| shown.contains(far_end(e, direction)));
        Ok((edges, ends))
    }
}

#[async_trait::async_trait]
impl crate::store::traverse::Neighbours for Reader<'_> {
    async fn nodes(&mut self, ids: &[NodeId]) -> Result<Vec<Node>> {
        self.read_nodes(ids)
    }

    async fn edges(&mut self, ids: &[NodeId], direction: Direction) -> Result<Vec<Edge>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if let Some((cache, version)) = self.cache {
            return self.cached_edges(cache, version, ids, direction);
        }
        self.collect(by_direction(&EDGES, direction), &[Sql::Text(id_list(ids))], edge_from_row)
    }

    async fn seen(&mut self, ids: &[NodeId], audience: &Audience) -> Result<HashSet<NodeId>> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        if let Some((cache, version)) = self.cache {
            return self.cached_seen(cache, version, ids, audience);
        }
        let (sql, params) = seen_statement(&id_list(ids), audience);
        let found = self.collect(&sql, &params, |row| NodeId::stored(text_at(row, 0)?).map_err(corrupt))?;
        Ok(found.into_iter().collect())
    }

    async fn edges_seen(
        &mut self,
        ids: &[NodeId],
        direction: Direction,
        audience: &Audience,
    ) -> Result<Option<Vec<Edge>>> {
        if ids.is_empty() {
            return Ok(Some(Vec::new()));
        }
        if let Some((cache, version)) = self.cache {
            // From the cache, the relationships and then their far ends, as the default does; a
            // foreign end is no node here, so it is not seen, as in the statement below.
            let edges = self.cached_edges(cache, version, ids, direction)?;
            let far: Vec<NodeId> = edges.iter().map(|e| far_end(e, direction).clone()).collect();
            let seen = self.cached_seen(cache, version, &far, audience)?;
            return Ok(Some(edges.into_iter().filter(|e| seen.contains(far_end(e, direction))).collect()));
        }
        let (sql, params) = far_seen_edges_statement(&id_list(ids), direction, audience);
        self.collect(&sql, &params, edge_from_row).map(Some)
    }
}

/// The relationships of `edges` of the ids that way whose far end an audience may see, in one
/// statement: each relationship found seeks its far end, instead of a second statement asking
/// which of the far ends may be seen. Those with a foreign end are not among them, as `seen`
/// finds no foreign node.
fn far_seen_edges_statement(ids: &str, direction: Direction, audience: &Audience) -> (String, Vec<Sql>) {
    let mut params = vec![Sql::Text(ids.to_owned())];
    let far = audience_condition(audience, "n.", &mut params);
    let sql = format!(
        "SELECT e.src, e.kind, e.dst, e.assertion, e.props
         FROM json_each(?1) AS j CROSS JOIN edges e ON e.{} = j.value
         CROSS JOIN nodes n ON n.id = e.{}{far}",
        near_end(direction),
        far_column(direction)
    );
    (sql, params)
}

/// Which of the ids are nodes an audience may see: only the ids, from the columns visibility
/// needs, so that no node is decoded.
fn seen_statement(ids: &str, audience: &Audience) -> (String, Vec<Sql>) {
    let mut params = vec![Sql::Text(ids.to_owned())];
    let visible = audience_condition(audience, "n.", &mut params);
    (format!("SELECT n.id FROM json_each(?1) AS j CROSS JOIN nodes n ON n.id = j.value{visible}"), params)
}

/// Turns a user's words into an FTS5 query: every word must appear, the last
/// may be the start of a word, and no FTS5 operator can be smuggled in.
fn match_expression(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(16)
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect();
    let last = words.len().checked_sub(1)?;
    Some(
        words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == last { format!("{w}*") } else { w.clone() })
            .collect::<Vec<_>>()
            .join(" "),
    )
}

pub(super) fn search(conn: &Connection, request: &crate::store::SearchRequest) -> Result<Vec<crate::store::SearchHit>> {
    let Some(expression) = match_expression(&request.text) else {
        return Err(Error::invalid("text", "has no words to search for"));
    };
    let kinds: Vec<&str> = request.kinds.iter().map(|k| k.as_str()).collect();
    let mut params =
        vec![Sql::Text(expression), Sql::Text(Json::from(kinds).to_string()), Sql::Integer(request.first as i64)];
    let visible = audience_condition(&request.audience, "n.", &mut params);
    // bm25 weighs a match in the title ten times one in the body; lower is better.
    let sql = format!(
        "SELECT {cols}, bm25(node_words, 10.0, 1.0) AS rank,
                snippet(node_words, -1, '[', ']', '…', 12)
         FROM node_words JOIN nodes n ON n.seq = node_words.rowid
         WHERE node_words MATCH ?1 AND (?2 = '[]' OR n.kind IN (SELECT value FROM json_each(?2))){visible}
         ORDER BY rank LIMIT ?3",
        cols = node_columns("n")
    );
    collect(conn, &sql, &params, |row| {
        let rank: f64 = row.get(9).map_err(Error::internal)?;
        let snippet: String = row.get(10).map_err(Error::internal)?;
        Ok(crate::store::SearchHit { node: node_from_row(row)?, score: -rank, snippet })
    })
}

/// The organisation slug of an id column, in SQL.
fn owner(column: &str) -> String {
    format!("substr({column}, 1, instr({column}, ':') - 1)")
}

pub(super) fn influences_across(
    conn: &Connection,
    from: Option<&str>,
    to: Option<&str>,
    limit: usize,
) -> Result<Vec<Edge>> {
    let sql = format!(
        "SELECT src, kind, dst, assertion, props FROM (
             SELECT src, kind, dst, assertion, props FROM edges
             UNION ALL SELECT {FOREIGN_EDGE_COLUMNS} FROM foreign_edges f)
         WHERE kind = 'INFLUENCED' AND {src} <> {dst}
           AND (?1 IS NULL OR {src} = ?1) AND (?2 IS NULL OR {dst} = ?2)
         ORDER BY json_extract(props, '$.on'), src, dst LIMIT ?3",
        src = owner("src"),
        dst = owner("dst")
    );
    let params = [
        from.map_or(Sql::Null, |f| Sql::Text(f.to_owned())),
        to.map_or(Sql::Null, |t| Sql::Text(t.to_owned())),
        Sql::Integer(limit as i64),
    ];
    collect(conn, &sql, &params, edge_from_row)
}

pub(super) fn embedding_pairs(conn: &Connection, organisation: Option<&str>) -> Result<Vec<(Node, Node)>> {
    let sql = format!(
        "SELECT {e}, {l} FROM nodes l
         JOIN edges p ON p.dst = l.id AND p.kind = 'PRODUCED'
         JOIN nodes e ON e.id = p.src
         WHERE l.kind = 'LEARNING' AND json_extract(l.details, '$.embedding') = 'EMBEDDED'
           AND (?1 IS NULL OR l.organisation = ?1)
         ORDER BY l.id, e.id",
        e = node_columns("e"),
        l = node_columns("l")
    );
    let params = [organisation.map_or(Sql::Null, |o| Sql::Text(o.to_owned()))];
    collect(conn, &sql, &params, |row| Ok((node_at(row, 0)?, node_at(row, 9)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NodeKind::{Learning, Principle};
    use crate::store::Position;

    /// A page of 50 of a kind, filtered, in id order.
    fn page(kind: NodeKind, organisations: &[&str], fields: Vec<FieldTest>) -> ListQuery {
        let filter = NodeFilter {
            organisations: organisations.iter().map(|o| o.to_string()).collect(),
            fields,
            audience: Audience::Member("org1".into()),
            ..Default::default()
        };
        ListQuery {
            kind,
            filter,
            order: OrderField::Id,
            descending: false,
            after: None,
            before: None,
            limit: 50,
            from_end: false,
        }
    }

    /// How SQLite's bundled planner runs a page of a list: the details of its
    /// query plan, joined.
    fn plan_of(query: &ListQuery) -> String {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::configure(&conn).unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let (sql, params) = list_statement(query);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("; ")
    }

    fn plan(kind: NodeKind, organisations: &[&str], fields: Vec<FieldTest>) -> String {
        plan_of(&page(kind, organisations, fields))
    }

    fn one_of(field: &'static str, words: &[&str]) -> FieldTest {
        FieldTest::OneOf(field, words.iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn a_field_filter_seeks_its_expression_index() {
        for words in [&["EMBEDDED"][..], &["EMBEDDED", "PILOTED"], &["EMBEDDED", "PILOTED", "NOT_YET"]] {
            let plan = plan(Learning, &[], vec![one_of("embedding", words)]);
            assert!(plan.contains("learnings_by_embedding_id"), "{words:?}: {plan}");
        }
        let plan = plan(Principle, &[], vec![one_of("status", &["ADOPTED"])]);
        assert!(plan.contains("principles_by_status_id"), "{plan}");
    }

    #[test]
    fn a_page_of_one_word_is_read_in_index_order_by_id_and_title_both_ways() {
        let orders = [(OrderField::Id, "id"), (OrderField::Title, "title")];
        for (kind, field) in INDEXED_FIELDS {
            for (order, suffix) in orders {
                for (descending, from_end) in [(false, false), (true, false), (false, true), (true, true)] {
                    let bound = Some(Position { key: "k".into(), id: "i".into() });
                    for (after, before) in [(None, None), (bound.clone(), None), (None, bound.clone())] {
                        let mut query = page(kind, &[], vec![one_of(field, &["A"]), one_of("confidence", &["HIGH"])]);
                        query.filter.tags = vec!["t".into()];
                        (query.order, query.descending, query.from_end) = (order, descending, from_end);
                        (query.after, query.before) = (after, before);
                        let plan = plan_of(&query);
                        let index = format!("{}s_by_{field}_{suffix}", kind.as_str().to_lowercase());
                        assert!(plan.contains(&format!("USING INDEX {index} (")), "{index}: {plan}");
                        assert!(!plan.contains("TEMP B-TREE"), "{index}: {plan}");
                        if query.after.is_some() || query.before.is_some() {
                            // The bound narrows the index's range rather than being tested row by row.
                            let range = if order == OrderField::Id { "AND id" } else { "id)" };
                            let bounded = ["<", ">"].iter().any(|op| {
                                let value = if order == OrderField::Id { "?" } else { "(?,?)" };
                                plan.contains(&format!("{range}{op}{value})"))
                            });
                            assert!(bounded, "{plan}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_page_by_date_seeks_a_field_index_and_sorts_what_it_finds() {
        for order in [OrderField::CreatedAt, OrderField::UpdatedAt] {
            for words in [&["EMBEDDED"][..], &["EMBEDDED", "SHARED"]] {
                let mut query = page(Learning, &[], vec![one_of("embedding", words)]);
                query.order = order;
                let plan = plan_of(&query);
                assert!(plan.contains("USING INDEX learnings_by_embedding_"), "{order:?} {words:?}: {plan}");
            }
        }
    }

    #[test]
    fn a_page_of_several_words_sorts_at_most_a_page_of_each() {
        let mut query = page(Learning, &[], vec![one_of("embedding", &["EMBEDDED", "SHARED", "EMBEDDED"])]);
        query.order = OrderField::Title;
        let (sql, _) = list_statement(&query);
        assert_eq!(sql.matches("UNION ALL").count(), 1, "{sql}");
        let plan = plan_of(&query);
        assert_eq!(plan.matches("USING INDEX learnings_by_embedding_title (").count(), 2, "{plan}");
        // Each word's read is in index order and stops after a page; only each
        // word's page (at most 50 rows) is sorted again for the merge.
        let sorts: Vec<&str> = plan.split("; ").collect();
        for (at, step) in sorts.iter().enumerate() {
            if step.contains("TEMP B-TREE") {
                assert!(sorts[at - 1].starts_with("SCAN (subquery-"), "{plan}");
            }
        }
        assert!(plan.starts_with("MERGE (UNION ALL)"), "{plan}");
    }

    #[test]
    fn an_organisation_filter_seeks_the_owner_index_before_a_field_index() {
        let plan = plan(Learning, &["org1", "org2"], vec![one_of("embedding", &["EMBEDDED"])]);
        assert!(plan.contains("nodes_by_owner"), "{plan}");
    }

    /// The details of a statement's query plan, one step a line.
    fn steps_of(sql: &str, params: &[Sql]) -> Vec<String> {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::configure(&conn).unwrap();
        super::super::migrations().to_latest(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(params_from_iter(params.iter()), |r| r.get::<_, String>(3)).unwrap();
        rows.map(|r| r.unwrap()).collect()
    }

    /// Every lookup by ids, with the name of its test.
    fn lookups() -> Vec<(String, String, Vec<Sql>)> {
        let ids = id_list(&[NodeId::parse("o:learning:a").unwrap(), NodeId::parse("o:principle:b").unwrap()]);
        let one = vec![Sql::Text(ids.clone())];
        let mut out = vec![("nodes".to_owned(), NODES_BY_IDS.clone(), one.clone())];
        for direction in [Direction::Out, Direction::In] {
            out.push((format!("edges {direction:?}"), by_direction(&EDGES, direction).to_owned(), one.clone()));
            out.push((format!("abroad {direction:?}"), by_direction(&EDGES_ABROAD, direction).to_owned(), one.clone()));
            for audience in [Audience::Everything, Audience::Public, Audience::Member("o".into())] {
                for ends in [false, true] {
                    let (sql, params) = visible_edges_statement(&ids, direction, &audience, ends);
                    out.push((format!("visible {direction:?} {audience:?} ends {ends}"), sql, params));
                }
                let (sql, params) = far_seen_edges_statement(&ids, direction, &audience);
                out.push((format!("far seen {direction:?} {audience:?}"), sql, params));
            }
        }
        for audience in [Audience::Everything, Audience::Public, Audience::Member("o".into())] {
            let (sql, params) = seen_statement(&ids, &audience);
            out.push((format!("seen {audience:?}"), sql, params));
        }
        out
    }

    #[test]
    fn a_lookup_by_ids_seeks_an_index_once_per_id_without_temporary_indexes() {
        for (name, sql, params) in lookups() {
            let steps = steps_of(&sql, &params);
            let plan = steps.join("; ");
            for costly in ["TEMP B-TREE", "LIST SUBQUERY", "AUTOMATIC", "BLOOM"] {
                assert!(!plan.contains(costly), "{name}: {plan}");
            }
            // The ids drive each read: the array is scanned, every table is sought by key.
            for (at, step) in steps.iter().enumerate() {
                if step.starts_with("SCAN j ") {
                    let next = steps.get(at + 1).map(String::as_str).unwrap_or_default();
                    assert!(next.starts_with("SEARCH ") && next.contains("=?"), "{name}: {plan}");
                } else if step.starts_with("SCAN ") {
                    assert!(
                        step.starts_with("SCAN any_foreign") || step.starts_with("SCAN foreign_edges"),
                        "{name}: {plan}"
                    );
                }
            }
            assert!(steps.iter().any(|s| s.starts_with("SCAN j ")), "{name}: {plan}");
        }
    }

    #[test]
    fn a_lookup_reads_its_ids_for_foreign_relationships_only_when_there_are_any() {
        for direction in [Direction::Out, Direction::In] {
            for sql in [by_direction(&EDGES, direction), by_direction(&EDGES_ABROAD, direction)] {
                let steps = steps_of(sql, &[Sql::Text("[]".into())]);
                let plan = steps.join("; ");
                // Each arm over foreign_edges first looks for any row (the gate), then scans the ids.
                let arms: Vec<usize> =
                    steps.iter().enumerate().filter(|(_, s)| s.starts_with("SEARCH f ")).map(|(at, _)| at).collect();
                assert_eq!(arms.len(), 2, "{plan}");
                for at in arms {
                    assert!(steps[at - 1].starts_with("SCAN j "), "{plan}");
                    assert!(steps[at - 2].starts_with("SCAN any_foreign"), "{plan}");
                }
            }
        }
    }

    #[test]
    fn an_id_list_names_each_id_once_in_the_order_first_given() {
        let id = |text: &str| NodeId::parse(text).unwrap();
        let ids = [id("o:learning:b"), id("o:learning:a"), id("o:learning:b"), id("o:learning:a")];
        assert_eq!(id_list(&ids), r#"["o:learning:b","o:learning:a"]"#);
        assert_eq!(id_list(&[]), "[]");
        // Short lists look back, long ones keep a set: both name each id once, as JSON does.
        for count in [1, 16, 17, 100] {
            let ids: Vec<NodeId> = (0..count).map(|n| id(&format!("o{}:learning:l-{}", n % 7, n % 11))).collect();
            let mut distinct: Vec<&str> = Vec::new();
            for id in &ids {
                if !distinct.contains(&id.as_str()) {
                    distinct.push(id.as_str());
                }
            }
            assert_eq!(id_list(&ids), Json::from(distinct).to_string(), "{count}");
        }
    }

    #[test]
    fn slots_pad_to_a_power_of_two_with_the_last_value() {
        let mut params = vec![Sql::Integer(1)];
        let words = ["a", "b", "c"].map(String::from);
        assert_eq!(slots(&mut params, &words), "?2, ?3, ?4, ?4");
        assert_eq!(params.len(), 4);
        assert_eq!(slots(&mut params, &[]), "NULL");
    }
}
