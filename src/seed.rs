//! Loading seed files: the whole file in one transaction, or nothing, with
//! errors that name the record at fault.

use crate::domain::{Error, Result, SeedFile, now};
use crate::store::Store;

/// King County's *Reimagining public value* programme, built into the binary.
pub const KING_COUNTY: &str = include_str!("../seed/king-county.json");

/// What a load wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    pub nodes: usize,
    pub relationships: usize,
}

/// Loads a seed file's text into the store.
pub async fn load(store: &Store, text: &str) -> Result<Loaded> {
    let file = SeedFile::parse(text)?;
    let loaded = Loaded { nodes: file.nodes.len(), relationships: file.relationships.len() };
    let (changes, labels) = file.into_changes(now())?;
    store.apply(changes).await.map_err(|failed| match labels.get(failed.index) {
        Some(place) => failed.error.within(place),
        None => failed.error,
    })?;
    Ok(loaded)
}

/// Loads a seed file from disk.
pub async fn load_file(store: &Store, path: &std::path::Path) -> Result<Loaded> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| Error::invalid("file", format!("{} cannot be read: {e}", path.display())))?;
    load(store, &text).await
}
