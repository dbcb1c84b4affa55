//! Errors as clients see them: every error carries `extensions.code`, and
//! internal causes go to the log, never into a response.

use async_graphql::{ErrorExtensions, Response, ServerError, Value};

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

/// Gives every error that async-graphql raised on its own (validation, choosing the operation,
/// input coercion) a code, as the errors pvgraph raises already have. Parse errors never get
/// here: documents are parsed before execution (`Api`), and refused with `parse_failed`.
///
/// Where an error arose shows in the response: errors raised before execution began come with
/// no data and no path, and async-graphql's own few of them other than validation's are known
/// by their words; an error raised while executing has a path, or comes with data.
pub fn give_codes(response: &mut Response) {
    let before_execution = matches!(response.data, Value::Null) && response.errors.iter().all(|e| e.path.is_empty());
    for error in &mut response.errors {
        let code = if before_execution { request_error_code(&error.message) } else { "BAD_USER_INPUT" };
        give_code(error, code);
    }
}

/// The code of an error that async-graphql raised before executing anything.
fn request_error_code(message: &str) -> &'static str {
    if message.starts_with("The recursion depth of the query cannot be greater than") {
        // Checked as the document is taken in, as parsing's own nesting cap.
        "GRAPHQL_PARSE_FAILED"
    } else if message == "Operation name required in request." || message.starts_with("Unknown operation named") {
        "BAD_REQUEST"
    } else if message == "Subscriptions are not supported on this transport." {
        "BAD_USER_INPUT"
    } else {
        "GRAPHQL_VALIDATION_FAILED"
    }
}

/// A document that does not parse, with its code.
pub fn parse_failed(error: async_graphql::parser::Error) -> ServerError {
    let mut error = ServerError::from(error);
    give_code(&mut error, "GRAPHQL_PARSE_FAILED");
    error
}

fn give_code(error: &mut ServerError, code: &str) {
    let ext = error.extensions.get_or_insert_with(Default::default);
    if ext.get("code").is_none() {
        ext.set("code", code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(response: &Response) -> Vec<String> {
        let code = |e: &ServerError| e.extensions.as_ref().and_then(|x| x.get("code")).map(|c| c.to_string());
        response.errors.iter().map(|e| code(e).unwrap_or_default()).collect()
    }

    #[test]
    fn errors_get_the_code_of_where_they_arose_and_keep_their_own() {
        let mut before = Response::from_errors(vec![
            ServerError::new(r#"Unknown field "colour" on type "Value"."#, None),
            ServerError::new(r#"Unknown operation named "B""#, None),
            ServerError::new("The recursion depth of the query cannot be greater than `32`", None),
            to_gql(Error::invalid("first", "too many")).into_server_error(Default::default()),
        ]);
        give_codes(&mut before);
        let expected = ["GRAPHQL_VALIDATION_FAILED", "BAD_REQUEST", "GRAPHQL_PARSE_FAILED", "BAD_USER_INPUT"];
        assert_eq!(codes(&before), expected.map(|c| format!("\"{c}\"")));

        // Once execution began, an error without a code came from coercing input.
        let mut field = ServerError::new(r#"Unknown field "colour" on type "Value"."#, None);
        field.path = vec![async_graphql::PathSegment::Field("node".into())];
        let mut during = Response::from_errors(vec![field]);
        give_codes(&mut during);
        assert_eq!(codes(&during), ["\"BAD_USER_INPUT\""]);
    }
}
