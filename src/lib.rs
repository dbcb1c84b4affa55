//! pvgraph: a GraphQL knowledge graph of public-sector experiments. It links an
//! organisation's values, guiding principles, barriers, experiments and
//! learnings, so that people can trace how embedded learnings influenced the
//! system. Data flows one way: HTTP → GraphQL → domain → store.

pub mod auth;
pub mod cli;
pub mod domain;
pub mod export;
pub mod generate;
pub mod graphql;
pub mod http;
pub mod limits;
pub mod partner;
pub mod prov;
pub mod seed;
pub mod server;
pub mod store;
