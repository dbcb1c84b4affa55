//! The cost limits as GraphQL sees them: a survey of each parsed document that
//! counts aliases and notes introspection, refused before execution when over the
//! limit or switched off (async-graphql does neither), and the wording of
//! async-graphql's depth and complexity refusals with a code, the limit's name
//! and its value. Arguments past a limit (page sizes,
//! trace depths) are refused where they are read, with `over_limit`.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Context, ErrorExtensions, ServerError};

use crate::limits::Limits;

use super::error::bad_input;

/// The limits of the schema's server; the defaults when none were given.
pub fn limits<'a>(ctx: &Context<'a>) -> &'a Limits {
    static DEFAULT: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);
    ctx.data_opt::<Limits>().unwrap_or(&DEFAULT)
}

/// A refusal of a query's shape: code `LIMIT_EXCEEDED`, the limit's flag and its value.
fn exceeded(limit: &str, max: u64, message: String) -> ServerError {
    let mut error = ServerError::new(message, None);
    let ext = error.extensions.get_or_insert_with(Default::default);
    ext.set("code", "LIMIT_EXCEEDED");
    ext.set("limit", limit);
    ext.set("max", max);
    error
}

/// An argument outside `min..=max`, where `max` is the limit of flag `limit`: BAD_USER_INPUT
/// naming the argument, the limit and its value.
pub fn over_limit(field: &str, limit: &str, min: i64, max: u64) -> async_graphql::Error {
    bad_input(field, format!("must be from {min} to {max} (the server's --{limit})")).extend_with(|_, ext| {
        ext.set("limit", limit);
        ext.set("max", max);
    })
}

/// What a document holds that a limit looks at, found once per parsed text.
#[derive(Default)]
pub(super) struct Survey {
    aliases: u64,
    introspects: bool,
    /// Whether the document nests past async-graphql's own recursion cap, which it refuses
    /// before the limits here are looked at.
    too_deep_to_run: bool,
}

impl Survey {
    pub(super) fn of(doc: &ExecutableDocument) -> Survey {
        let mut survey = Survey::default();
        for (_, operation) in doc.operations.iter() {
            survey.visit(&operation.node.selection_set.node);
            survey.too_deep_to_run |= nests_deeper(doc, &operation.node.selection_set.node, 0);
        }
        for fragment in doc.fragments.values() {
            survey.visit(&fragment.node.selection_set.node);
        }
        survey
    }

    // The parser caps how deeply a document nests, so this recursion is bounded.
    fn visit(&mut self, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.aliases += u64::from(field.alias.is_some());
                    self.introspects |= matches!(field.name.node.as_str(), "__schema" | "__type");
                    self.visit(&field.selection_set.node);
                }
                Selection::InlineFragment(fragment) => self.visit(&fragment.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }

    /// The refusal of a document that introspects on a server that does not allow it, or that
    /// holds more aliases than allowed; `None` for one that async-graphql refuses itself first.
    pub(super) fn refusal(&self, limits: &Limits) -> Option<ServerError> {
        if self.too_deep_to_run {
            return None;
        }
        if self.introspects && !limits.introspection {
            let mut error = ServerError::new("introspection is switched off on this server", None);
            error.extensions.get_or_insert_with(Default::default).set("code", "INTROSPECTION_DISABLED");
            return Some(error);
        }
        let max = u64::from(limits.max_aliases);
        (self.aliases > max).then(|| {
            exceeded("max-aliases", max, format!("the request holds {} aliases; the limit is {max}", self.aliases))
        })
    }
}

/// async-graphql's own cap on how deeply selection sets nest, spreads followed (its default).
const RECURSION_CAP: usize = 32;

/// Whether `set` nests past `RECURSION_CAP`, counted as async-graphql counts before it
/// validates; the cap bounds the recursion, fragment cycles included.
fn nests_deeper(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
    if depth > RECURSION_CAP {
        return true;
    }
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            let inner = &field.node.selection_set.node;
            !inner.items.is_empty() && nests_deeper(doc, inner, depth + 1)
        }
        Selection::FragmentSpread(spread) => doc
            .fragments
            .get(&spread.node.fragment_name.node)
            .is_some_and(|fragment| nests_deeper(doc, &fragment.node.selection_set.node, depth + 1)),
        Selection::InlineFragment(fragment) => nests_deeper(doc, &fragment.node.selection_set.node, depth + 1),
    })
}

/// Words async-graphql's depth and complexity refusals with a code, the limit's name and its
/// value. They come alone, before execution.
pub(super) fn word_refusals(errors: &mut [ServerError], limits: &Limits) {
    let (depth, complexity) = (u64::from(limits.max_depth), u64::from(limits.max_complexity));
    for error in errors {
        match error.message.as_str() {
            "Query is nested too deep." => {
                *error =
                    exceeded("max-depth", depth, format!("the query nests deeper than the limit of {depth} levels"))
            }
            "Query is too complex." => {
                *error = exceeded(
                    "max-complexity",
                    complexity,
                    format!("the query is more complex than the limit of {complexity}"),
                )
            }
            _ => {}
        }
    }
}
