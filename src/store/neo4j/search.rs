//! Full-text search over the `node_words` index: the user's words become a
//! Lucene query that cannot carry an operator, and the snippet is cut here,
//! with the matching words between `[` and `]` as SQLite's `snippet()` marks them.

use neo4rs::{Query, Row};
use serde::Deserialize;
use serde_json::Value as Json;

use super::read::{NODE_MAP, NodeRow, Params, audience_condition, corrupt};
use crate::domain::{Node, Result};
use crate::store::{SearchHit, SearchRequest};

/// The long fields whose words are searched besides the title, in the SQLite store's order.
const BODY_FIELDS: &[&str] =
    &["statement", "hypothesis", "quote", "definition", "rationale", "purpose", "failureNotes", "publisher"];

/// How many words of the text a search reads at most, and how many words a snippet shows.
const MAX_WORDS: usize = 16;
const SNIPPET_WORDS: usize = 12;

/// A match in the title weighs this much more than one in the body.
const TITLE_BOOST: u32 = 10;

/// The words of a node's long fields, as the index holds them in `searchText`.
pub(super) fn search_text(node: &Node) -> String {
    let details = node.details.to_json();
    let parts: Vec<&str> = BODY_FIELDS.iter().filter_map(|f| details.get(*f).and_then(Json::as_str)).collect();
    format!("{} {}", node.description, parts.join(" "))
}

/// The user's words, lower-cased: runs of letters and digits, at most `MAX_WORDS`.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_WORDS)
        .map(str::to_lowercase)
        .collect()
}

/// Escapes every character Lucene's query parser gives a meaning to.
fn escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if "+-&|!(){}[]^\"~*?:\\/".contains(c) || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The Lucene query: every word must appear in the title or the body; the last
/// may also be the start of a word. A word is only ever a quoted term or an
/// escaped prefix, so no Lucene operator can come from the user.
pub(super) fn lucene(words: &[String]) -> String {
    let last = words.len().saturating_sub(1);
    words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let w = escape(word);
            let mut clause = format!("title:\"{w}\"^{TITLE_BOOST} OR searchText:\"{w}\"");
            if i == last {
                clause += &format!(" OR title:{w}*^{TITLE_BOOST} OR searchText:{w}*");
            }
            format!("({clause})")
        })
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// The search's query and the user's words, or `None` when the text has no words.
pub(super) fn query(request: &SearchRequest) -> Option<(Query, Vec<String>)> {
    let words = words(&request.text);
    if words.is_empty() {
        return None;
    }
    let kinds: Vec<&str> = request.kinds.iter().map(|k| k.as_str()).collect();
    let mut params = Params::default();
    let visible = audience_condition(&request.audience, "n", &mut params).map(|c| format!(" AND {c}"));
    let text = format!(
        "CALL db.index.fulltext.queryNodes('node_words', {lucene}) YIELD node AS n, score
         WITH n, score WHERE (size({kinds}) = 0 OR n.kind IN {kinds}){visible}
         WITH n, score ORDER BY score DESC, n.id LIMIT {first}
         RETURN n{NODE_MAP} AS node, score",
        lucene = params.add(lucene(&words)),
        kinds = params.add(kinds),
        first = params.add(request.first as i64),
        visible = visible.unwrap_or_default(),
    );
    let query = params.into_query(&text);
    Some((query, words))
}

#[derive(Deserialize)]
struct HitRow {
    node: NodeRow,
    score: f64,
}

pub(super) fn hits(rows: &[Row], words: &[String]) -> Result<Vec<SearchHit>> {
    rows.iter()
        .map(|row| {
            let hit: HitRow = row.to().map_err(corrupt)?;
            let node = hit.node.into_node()?;
            let snippet = snippet(&node.title, &search_text(&node), words);
            Ok(SearchHit { node, score: hit.score, snippet })
        })
        .collect()
}

/// A rough English stem, enough to see which words of a text the index matched.
fn stem(word: &str) -> &str {
    for suffix in ["ies", "ing", "ed", "es", "s"] {
        if let Some(stem) = word.strip_suffix(suffix)
            && stem.chars().count() >= 3
        {
            return stem;
        }
    }
    word
}

/// Up to `SNIPPET_WORDS` words of the title or the body, whichever matches more,
/// around the matches, each matching word between `[` and `]`, `…` where text was cut.
pub(super) fn snippet(title: &str, body: &str, words: &[String]) -> String {
    let last = words.len().saturating_sub(1);
    let matches = |token: &str| {
        let token = token.to_lowercase();
        words
            .iter()
            .enumerate()
            .any(|(i, w)| token == *w || stem(&token) == stem(w) || (i == last && token.starts_with(w.as_str())))
    };
    let tokens = |text: &str| -> Vec<(usize, usize, bool)> {
        let mut out = Vec::new();
        let mut start = None;
        for (at, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
            match (start, c.is_alphanumeric()) {
                (None, true) => start = Some(at),
                (Some(s), false) => {
                    out.push((s, at, matches(&text[s..at])));
                    start = None;
                }
                _ => {}
            }
        }
        out
    };
    let (title_tokens, body_tokens) = (tokens(title), tokens(body));
    let hits = |t: &[(usize, usize, bool)]| t.iter().filter(|(_, _, m)| *m).count();
    let (text, tokens) =
        if hits(&body_tokens) > hits(&title_tokens) { (body, body_tokens) } else { (title, title_tokens) };
    if tokens.is_empty() {
        return String::new();
    }
    // The window with the most matches; among those, the one whose first match sits nearest its third word.
    let width = SNIPPET_WORDS.min(tokens.len());
    let start = (0..=tokens.len() - width)
        .max_by_key(|&s| {
            let window = &tokens[s..s + width];
            let count = window.iter().filter(|(_, _, m)| *m).count();
            let first = window.iter().position(|(_, _, m)| *m).unwrap_or(0);
            (count, std::cmp::Reverse(first.abs_diff(2)), std::cmp::Reverse(s))
        })
        .unwrap_or(0);
    let end = start + width;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = if start == 0 { 0 } else { tokens[start].0 };
    for &(s, e, matched) in &tokens[start..end] {
        out.push_str(&text[at..s]);
        if matched {
            out.push('[');
            out.push_str(&text[s..e]);
            out.push(']');
        } else {
            out.push_str(&text[s..e]);
        }
        at = e;
    }
    if end == tokens.len() {
        out.push_str(&text[at..]);
    } else {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_become_a_lucene_operator() {
        let q = lucene(&words("title:x OR y AND \"z\" ~2 (a) [b TO c] * \\ NOT"));
        assert_eq!(words("x) OR (y:*"), vec!["x", "or", "y"]);
        assert!(!q.contains(" or ") && !q.contains("\\"), "{q}");
        assert!(q.starts_with("(title:\"title\"^10 OR searchText:\"title\")"), "{q}");
        assert!(q.ends_with("(title:\"not\"^10 OR searchText:\"not\" OR title:not*^10 OR searchText:not*)"), "{q}");
        assert_eq!(escape("a:b\"c*"), "a\\:b\\\"c\\*");
    }

    #[test]
    fn snippets_bracket_the_matching_words() {
        let words = words("right risk");
        assert_eq!(snippet("Take the right risks", "", &words), "Take the [right] [risks]");
        let body = "one two three four five six seven eight nine ten eleven twelve thirteen risky fifteen";
        assert_eq!(
            snippet("Title", body, &words),
            "…four five six seven eight nine ten eleven twelve thirteen [risky] fifteen"
        );
        assert_eq!(snippet("Title", "nothing here", &words), "Title");
    }
}
