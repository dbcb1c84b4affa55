//! The cost limits as GraphQL sees them: an extension that counts aliases and
//! refuses introspection when it is switched off (async-graphql does neither),
//! and that words the depth and complexity refusals of async-graphql with a
//! code, the limit's name and its value. Arguments past a limit (page sizes,
//! trace depths) are refused where they are read, with `over_limit`.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Context, ErrorExtensions, ServerError, ServerResult, ValidationResult, Variables};

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

/// Checks what async-graphql leaves out, and words its own limit errors.
pub struct CostLimits(pub Arc<Limits>);

impl ExtensionFactory for CostLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostLimits(self.0.clone()))
    }
}

/// What a document holds that a limit looks at.
#[derive(Default)]
struct Survey {
    aliases: u64,
    introspects: bool,
}

impl Survey {
    fn of(doc: &ExecutableDocument) -> Survey {
        let mut survey = Survey::default();
        for (_, operation) in doc.operations.iter() {
            survey.visit(&operation.node.selection_set.node);
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
}

#[async_trait::async_trait]
impl Extension for CostLimits {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let survey = Survey::of(&doc);
        if survey.introspects && !self.0.introspection {
            let mut error = ServerError::new("introspection is switched off on this server", None);
            error.extensions.get_or_insert_with(Default::default).set("code", "INTROSPECTION_DISABLED");
            return Err(error);
        }
        let max = u64::from(self.0.max_aliases);
        if survey.aliases > max {
            return Err(exceeded(
                "max-aliases",
                max,
                format!("the request holds {} aliases; the limit is {max}", survey.aliases),
            ));
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let depth = u64::from(self.0.max_depth);
        let complexity = u64::from(self.0.max_complexity);
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|error| match error.message.as_str() {
                    "Query is nested too deep." => {
                        exceeded("max-depth", depth, format!("the query nests deeper than the limit of {depth} levels"))
                    }
                    "Query is too complex." => exceeded(
                        "max-complexity",
                        complexity,
                        format!("the query is more complex than the limit of {complexity}"),
                    ),
                    _ => error,
                })
                .collect()
        })
    }
}
