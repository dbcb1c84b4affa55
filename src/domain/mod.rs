//! The public-value graph as the domain sees it: node kinds, relationship kinds,
//! their vocabularies and the rules a change must follow. No I/O lives here.
//!
//! The vocabularies derive `async_graphql::Enum` directly: one list of words for
//! the API, the seed format and both stores, at the cost of a compile-time
//! dependency on the GraphQL crate.

mod caller;
mod change;
mod error;
mod id;
mod node;
pub mod record;
mod relationship;
mod vocabulary;

pub use caller::{Actor, Audience, Caller, Confirmation, Member, PartnerOrgs, Role, TokenAnswer, confirmed};
pub use change::{Applied, Change, NodePatch};
pub use error::{Error, Result};
pub use id::{NodeId, NodeKind, slugify};
pub use node::{
    BarrierDetails, Details, ExperimentDetails, LearningDetails, Node, OrganisationDetails, PrincipleDetails,
    SourceDetails, ValueDetails, now, read_timestamp, timestamp,
};
pub use record::{EdgeProperties, EdgeRecord, NodeRecord, SeedFile};
pub use relationship::{Citation, Edge, Influence, check_influence_date, check_influence_since};
pub use vocabulary::*;

/// The longest title a node may have.
pub const MAX_TITLE: usize = 200;
/// The longest long text (description, statement, hypothesis, quote…).
pub const MAX_TEXT: usize = 10_000;
/// The longest short text (jurisdiction, publisher, locator…).
pub const MAX_SHORT: usize = 500;
/// How many tags a node may carry, and how long each may be.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG: usize = 64;
