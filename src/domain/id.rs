//! Node ids: `<organisation>:<kind>:<slug>`, readable, stable and unique across
//! federated partners, because the owner and the kind are part of the id.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

pub use super::vocabulary::NodeKind;
use super::{Error, Result};

/// Organisation slugs that would clash with the prefixes of standard vocabularies in exports.
const RESERVED_ORGANISATIONS: &[&str] = &["prov", "xsd", "xsi", "rdf", "rdfs", "owl"];

/// The longest organisation slug and the longest node slug.
const MAX_ORG_SLUG: usize = 32;
const MAX_SLUG: usize = 80;

/// What each byte may be in a stored id (`NodeId::stored`): a letter of a slug (lower-case
/// letters, digits, hyphens), a colon, or neither.
const STORED_ID_BYTES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            b'a'..=b'z' | b'0'..=b'9' | b'-' => LETTER,
            b':' => COLON,
            _ => 0,
        };
        b += 1;
    }
    table
};
const LETTER: u8 = 1;
const COLON: u8 = 2;

/// A parsed, valid node id. Its text is shared: ids are copied into every set, map and
/// relationship a walk keeps, and a copy only counts a reference. The kind and the
/// organisation's length follow from the text, so the text alone compares and hashes.
#[derive(Clone)]
pub struct NodeId {
    text: Arc<str>,
    kind: NodeKind,
    org_len: usize,
}

impl PartialEq for NodeId {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for NodeId {}

impl Hash for NodeId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.text.hash(state)
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.text.cmp(&other.text)
    }
}

impl NodeId {
    pub fn parse(text: &str) -> Result<NodeId> {
        let invalid = |why: &str| Error::invalid("id", format!("`{}` {why}", clip(text)));
        // Exactly two colons, found with memchr: every imported record's ends are parsed here.
        let mut colons = memchr::memchr_iter(b':', text.as_bytes());
        let (Some(first), Some(second), None) = (colons.next(), colons.next(), colons.next()) else {
            return Err(invalid("is not of the form <organisation>:<kind>:<slug>"));
        };
        let (org, kind, slug) = (&text[..first], &text[first + 1..second], &text[second + 1..]);
        check_slug(org, MAX_ORG_SLUG).map_err(|why| invalid(&format!("has an organisation slug that {why}")))?;
        if RESERVED_ORGANISATIONS.contains(&org) {
            return Err(invalid(&format!("uses `{org}`, a reserved word, as its organisation slug")));
        }
        check_slug(slug, MAX_SLUG).map_err(|why| invalid(&format!("has a slug that {why}")))?;
        let kind = NodeKind::from_segment(kind).ok_or_else(|| {
            invalid("names no node kind (organisation, value, principle, barrier, experiment, learning, source)")
        })?;
        if kind == NodeKind::Organisation && org != slug {
            return Err(invalid("must be <org>:organisation:<org> for an organisation"));
        }
        Ok(NodeId { text: text.into(), kind, org_len: org.len() })
    }

    /// An id as a store holds it, written there after `parse` checked it: only its shape is
    /// read again (its letters, the organisation's end and the kind's segment), not each slug's
    /// rules.
    pub fn stored(text: &str) -> Result<NodeId> {
        let shape = || Error::invalid("id", format!("`{}` is not a stored node id", clip(text)));
        // One pass over the bytes checks the letters and finds the first two colons, which
        // end the organisation and the kind's segment.
        let mut colons = [0usize; 2];
        let mut found = 0;
        for (at, &b) in text.as_bytes().iter().enumerate() {
            match STORED_ID_BYTES[b as usize] {
                LETTER => {}
                COLON => {
                    if found < 2 {
                        colons[found] = at;
                    }
                    found += 1;
                }
                _ => return Err(shape()),
            }
        }
        if found < 2 {
            return Err(shape());
        }
        let [org_len, kind_end] = colons;
        let kind = NodeKind::from_segment(&text[org_len + 1..kind_end]).ok_or_else(shape)?;
        Ok(NodeId { text: text.into(), kind, org_len })
    }

    /// Builds an id from its parts, checking each.
    pub fn new(organisation: &str, kind: NodeKind, slug: &str) -> Result<NodeId> {
        NodeId::parse(&format!("{organisation}:{}:{slug}", kind.segment()))
    }

    /// The id of an organisation's own node.
    pub fn organisation_node(organisation: &str) -> Result<NodeId> {
        NodeId::new(organisation, NodeKind::Organisation, organisation)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> NodeKind {
        self.kind
    }

    /// The slug of the owning organisation.
    pub fn organisation(&self) -> &str {
        &self.text[..self.org_len]
    }

    pub fn slug(&self) -> &str {
        let skip = self.org_len + 1 + self.kind.segment().len() + 1;
        &self.text[skip..]
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}

impl serde::Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        NodeId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Checks a slug: lower-case letters and digits in words joined by single hyphens.
fn check_slug(slug: &str, max: usize) -> std::result::Result<(), String> {
    if slug.is_empty() {
        return Err("is empty".into());
    }
    if slug.len() > max {
        return Err(format!("is longer than {max} characters"));
    }
    if !well_formed(slug) {
        return Err("is not lower-case letters and digits joined by single hyphens".into());
    }
    Ok(())
}

/// Lower-case letters and digits joined by single hyphens, in one pass over the bytes.
fn well_formed(slug: &str) -> bool {
    // A slug may not start with a hyphen: as if one came before it.
    let mut after_hyphen = true;
    for &b in slug.as_bytes() {
        if b == b'-' {
            if after_hyphen {
                return false;
            }
            after_hyphen = true;
        } else if b.is_ascii_lowercase() || b.is_ascii_digit() {
            after_hyphen = false;
        } else {
            return false;
        }
    }
    !after_hyphen
}

/// Derives a slug from a title: `Take the right risks!` becomes `take-the-right-risks`.
/// Letters outside ASCII are dropped after their accents are; the result may be empty.
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    let mut gap = false;
    for c in title.chars() {
        let c = fold_accent(c).to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            if gap && !slug.is_empty() {
                slug.push('-');
            }
            slug.push(c);
            gap = false;
        } else {
            gap = true;
        }
        if slug.len() >= MAX_SLUG {
            break;
        }
    }
    slug.truncate(MAX_SLUG);
    slug.trim_end_matches('-').to_owned()
}

/// Maps common accented Latin letters to their base letter.
fn fold_accent(c: char) -> char {
    match c {
        'à'..='å' | 'À'..='Å' => 'a',
        'ç' | 'Ç' => 'c',
        'è'..='ë' | 'È'..='Ë' => 'e',
        'ì'..='ï' | 'Ì'..='Ï' => 'i',
        'ñ' | 'Ñ' => 'n',
        'ò'..='ö' | 'Ò'..='Ö' | 'ø' | 'Ø' => 'o',
        'ù'..='ü' | 'Ù'..='Ü' => 'u',
        'ý' | 'ÿ' | 'Ý' => 'y',
        other => other,
    }
}

/// Shortens user text quoted back in an error message.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 100;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_parts_of_an_id() {
        let id = NodeId::parse("kc:principle:take-the-right-risks").unwrap();
        assert_eq!(id.organisation(), "kc");
        assert_eq!(id.kind(), NodeKind::Principle);
        assert_eq!(id.slug(), "take-the-right-risks");
    }

    #[test]
    fn refuses_malformed_ids() {
        for bad in [
            "",
            "kc:principle",
            "kc:principle:a:b",
            "KC:principle:x",
            "kc:policy:x",
            "kc:principle:double--hyphen",
            "kc:principle:-lead",
            "kc:organisation:cpi",
        ] {
            assert!(NodeId::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_stored_id_reads_as_its_parse_does() {
        for text in
            ["kc:principle:take-the-right-risks", "kc:organisation:kc", "org5:learning:learning-3", "a:source:b"]
        {
            let (stored, parsed) = (NodeId::stored(text).unwrap(), NodeId::parse(text).unwrap());
            assert_eq!(stored, parsed);
            assert_eq!(
                (stored.kind(), stored.organisation(), stored.slug()),
                (parsed.kind(), parsed.organisation(), parsed.slug())
            );
        }
        for kind in NodeKind::ALL {
            assert_eq!(NodeKind::from_segment(kind.segment()), Some(*kind));
        }
        let shapeless = ["", "kc", "kc:principle", "kc:policy:x", ":x:y", "kc:value:\"x\"", "KC:value:x", "kc:value:é"];
        for shapeless in shapeless.into_iter().chain(["kc::value:x", "kc:value", "kc:value:x y", "kc:value:x\0"]) {
            assert!(NodeId::stored(shapeless).is_err(), "{shapeless} was read");
        }
    }

    /// The one pass says what splitting at hyphens said, for every short string of these bytes.
    #[test]
    fn a_slug_is_well_formed_as_its_words_are() {
        let by_words = |slug: &str| {
            slug.split('-')
                .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        };
        let letters = ["a", "z", "0", "9", "-", "A", "_", " ", "é", ":"];
        let mut slugs = vec![String::new()];
        for _ in 0..4 {
            slugs = slugs.iter().flat_map(|s| letters.iter().map(move |l| format!("{s}{l}"))).collect();
            for slug in &slugs {
                assert_eq!(well_formed(slug), by_words(slug), "{slug}");
            }
        }
        assert!(
            well_formed("take-the-right-risks") && !well_formed("a--b") && !well_formed("-a") && !well_formed("a-")
        );
    }

    #[test]
    fn slugs_come_from_titles() {
        assert_eq!(slugify("Take the right risks!"), "take-the-right-risks");
        assert_eq!(slugify("  Équité & trust  "), "equite-trust");
        assert_eq!(slugify("???"), "");
        assert!(slugify(&"word ".repeat(100)).len() <= MAX_SLUG);
    }
}
