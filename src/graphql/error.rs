//! Errors as clients see them: every error carries `extensions.code`, and
//! internal causes go to the log, never into a response.

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ErrorExtensions, Response, ServerError, ServerResult, ValidationResult, Variables};
use std::sync::Arc;

use crate::domain::Error;

/// Turns a domain error into a GraphQL error with its code.
pub fn to_gql(error: Error) -> async_graphql::Error {
    let message = match &error {
        Error::Internal(cause) => {
            tracing::error!(error = ?cause, "internal error");
            "internal error; the server log has the details".to_owned()
        }
        Error::Unavailable(cause) => {
            tracing::warn!(error = ?cause, "store unavailable");
            "the store is unavailable; try again shortly".to_owned()
        }
        other => other.to_string(),
    };
    async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", error.code());
        if let Error::Invalid { field, reason, .. } = &error {
            if !field.is_empty() {
                ext.set("field", field.as_str());
            }
            if let Some(reason) = reason {
                ext.set("reason", *reason);
            }
        }
    })
}

/// Reads a node id from an argument, naming the argument when it is malformed.
pub fn parse_id(field: &str, id: &str) -> async_graphql::Result<crate::domain::NodeId> {
    crate::domain::NodeId::parse(id).map_err(|e| to_gql(e.within(field)))
}

/// A client error raised in the GraphQL layer itself.
pub fn bad_input(field: &str, message: impl Into<String>) -> async_graphql::Error {
    to_gql(Error::invalid(field, message))
}

/// Gives every error that async-graphql raises on its own (parsing, validation,
/// input coercion) a code, as the errors pvgraph raises already have.
pub struct ErrorCodes;

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes)
    }
}

fn give_code(error: &mut ServerError, code: &str) {
    let ext = error.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
}

#[async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        // What is left fails between the hooks below: choosing the operation to run.
        response.errors.iter_mut().for_each(|e| give_code(e, "BAD_REQUEST"));
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut e| {
            give_code(&mut e, "GRAPHQL_PARSE_FAILED");
            e
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            errors.iter_mut().for_each(|e| give_code(e, "GRAPHQL_VALIDATION_FAILED"));
            errors
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        // pvgraph's own errors carry codes; what is left came from coercing input.
        response.errors.iter_mut().for_each(|e| give_code(e, "BAD_USER_INPUT"));
        response
    }
}
