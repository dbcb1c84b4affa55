//! Store locations as URLs: `sqlite://data/pvgraph.db` (relative to the working
//! directory), `sqlite:///var/lib/pvgraph/graph.db` (absolute), or a Neo4j
//! server as `neo4j://host:7687` or `bolt://host:7687`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Neo4j(String),
}

impl FromStr for StoreLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://data/pvgraph.db".into());
            }
            return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("neo4j://")
            || text.starts_with("bolt://")
            || text.starts_with("neo4j+s://")
            || text.starts_with("bolt+s://")
        {
            return Ok(StoreLocation::Neo4j(text.to_owned()));
        }
        if text.contains("://") {
            return Err(format!("`{text}` names no store this version knows (sqlite://, neo4j://, bolt://)"));
        }
        // A bare path is a SQLite file.
        Ok(StoreLocation::Sqlite(PathBuf::from(text)))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            StoreLocation::Neo4j(uri) => f.write_str(uri),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_relative_and_absolute_sqlite_paths() {
        assert_eq!("sqlite://data/pvgraph.db".parse(), Ok(StoreLocation::Sqlite("data/pvgraph.db".into())));
        assert_eq!("sqlite:///var/lib/g.db".parse(), Ok(StoreLocation::Sqlite("/var/lib/g.db".into())));
        assert_eq!("bolt://127.0.0.1:7687".parse(), Ok(StoreLocation::Neo4j("bolt://127.0.0.1:7687".into())));
        assert!("postgres://x".parse::<StoreLocation>().is_err());
        assert!("sqlite://".parse::<StoreLocation>().is_err());
    }
}
