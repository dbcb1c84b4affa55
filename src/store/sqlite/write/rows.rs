//! Rows as the insert statements bind them, and the thread that writes an
//! import's rows. A row's text (the JSON of a node's details and tags, its
//! timestamps, a relationship's properties) is built where the rules run; the
//! writer's thread only binds and steps its statements, prepared once, so the
//! two overlap on two cores.

use std::sync::mpsc::Receiver;

use rusqlite::{Connection, Statement, params};
use serde_json::Value as Json;

use super::{INSERT_EDGE, INSERT_FOREIGN_EDGE, INSERT_NODE, db};
use crate::domain::{Edge, Error, Node, Result, timestamp};
use crate::store::{Failed, ForeignEnd};

/// A node's columns, in the order of `INSERT_NODE`.
pub(super) struct NodeRow {
    id: String,
    kind: &'static str,
    /// The organisation is the id's first segment.
    organisation_len: usize,
    title: String,
    description: String,
    tags: String,
    visibility: &'static str,
    assertion: &'static str,
    created_at: String,
    updated_at: String,
    details: String,
}

impl NodeRow {
    pub(super) fn of(node: &Node) -> Result<NodeRow> {
        Ok(NodeRow {
            id: node.id.as_str().to_owned(),
            kind: node.kind().as_str(),
            organisation_len: node.organisation().len(),
            title: node.title.clone(),
            description: node.description.clone(),
            tags: serde_json::to_string(&node.tags).map_err(Error::internal)?,
            visibility: node.visibility.as_str(),
            assertion: node.assertion.as_str(),
            created_at: timestamp(node.created_at),
            updated_at: timestamp(node.updated_at),
            details: Json::Object(node.details.to_json()).to_string(),
        })
    }

    /// Runs an insert or update of a node's columns, in the order of `INSERT_NODE`.
    pub(super) fn write(&self, stmt: &mut Statement<'_>) -> Result<()> {
        stmt.execute(params![
            self.id,
            self.kind,
            &self.id[..self.organisation_len],
            self.title,
            self.description,
            self.tags,
            self.visibility,
            self.assertion,
            self.created_at,
            self.updated_at,
            self.details,
        ])
        .map_err(db)?;
        Ok(())
    }
}

/// A relationship's columns: its ends, kind, assertion and stored properties.
pub(super) struct EdgeRow {
    from: String,
    kind: &'static str,
    to: String,
    assertion: &'static str,
    props: String,
    /// Which end, if either, is a foreign id (such a relationship goes to
    /// `foreign_edges`), with the length of that id's organisation.
    foreign: Option<(ForeignEnd, usize)>,
}

impl EdgeRow {
    pub(super) fn of(edge: &Edge, foreign: Option<ForeignEnd>) -> EdgeRow {
        EdgeRow {
            from: edge.from.as_str().to_owned(),
            kind: edge.kind.as_str(),
            to: edge.to.as_str().to_owned(),
            assertion: edge.assertion.as_str(),
            props: edge.stored_properties(),
            foreign: foreign.map(|end| (end, end.split(&edge.from, &edge.to).2.organisation().len())),
        }
    }

    /// Runs `INSERT_EDGE` or, with a foreign end, `INSERT_FOREIGN_EDGE`.
    pub(super) fn write(&self, stmt: &mut Statement<'_>) -> Result<()> {
        let (kind, assertion, props) = (self.kind, self.assertion, &self.props);
        let done = match self.foreign {
            None => stmt.execute(params![self.from, kind, self.to, assertion, props]),
            Some((end, owner_len)) => {
                let (local, outgoing, far) = match end {
                    ForeignEnd::To => (&self.from, true, &self.to),
                    ForeignEnd::From => (&self.to, false, &self.from),
                };
                stmt.execute(params![local, outgoing, kind, far, &far[..owner_len], assertion, props])
            }
        };
        done.map_err(db)?;
        Ok(())
    }
}

/// A row of an import, with the index of the change that wrote it.
pub(super) enum Row {
    Node(usize, NodeRow),
    Edge(usize, EdgeRow),
}

/// What the thread that writes an import's rows is handed, in order.
pub(super) enum Job {
    Rows(Vec<Row>),
    /// Work on the connection that needs every row before it written: the
    /// rules' questions the loader cannot answer from memory, and its rare writes.
    Ask(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// The statements an import's rows need, prepared once.
pub(super) struct Statements<'c> {
    node: Statement<'c>,
    edge: Statement<'c>,
    foreign_edge: Statement<'c>,
}

impl Statements<'_> {
    fn prepare(conn: &Connection) -> Result<Statements<'_>> {
        Ok(Statements {
            node: conn.prepare(INSERT_NODE).map_err(db)?,
            edge: conn.prepare(INSERT_EDGE).map_err(db)?,
            foreign_edge: conn.prepare(INSERT_FOREIGN_EDGE).map_err(db)?,
        })
    }
}

/// Writes the jobs' rows until the sender hangs up, stopping at the first row
/// SQLite refuses.
pub(super) fn write(conn: &mut Connection, jobs: Receiver<Job>) -> Result<(), Failed> {
    let mut last = 0;
    loop {
        let asked = {
            let mut statements = Statements::prepare(conn).map_err(|error| Failed { index: last, error })?;
            loop {
                let Ok(job) = jobs.recv() else { return Ok(()) };
                let rows = match job {
                    Job::Rows(rows) => rows,
                    Job::Ask(work) => break work,
                };
                for row in rows {
                    let (index, written) = match &row {
                        Row::Node(index, node) => (*index, node.write(&mut statements.node)),
                        Row::Edge(index, edge) => {
                            let stmt = match edge.foreign {
                                None => &mut statements.edge,
                                Some(_) => &mut statements.foreign_edge,
                            };
                            (*index, edge.write(stmt))
                        }
                    };
                    last = index;
                    written.map_err(|error| Failed { index, error })?;
                }
            }
        };
        asked(conn);
    }
}
