//! The one error type of the domain and the stores. Each variant reads well on
//! its own; internal causes stay in the log and never reach a client.

/// Why an operation on the graph failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a rule of the model; `field` names the part at fault.
    #[error("{field}: {message}")]
    Invalid {
        field: String,
        message: String,
        /// A stable word for the rule broken, for clients that branch on it.
        reason: Option<&'static str>,
    },
    /// What was looked for and not found, in words.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The caller's credentials are missing where required, bad, expired or revoked.
    #[error("{0}")]
    Unauthenticated(String),
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Invalid { field: field.into(), message: message.into(), reason: None }
    }

    /// A broken model rule with a stable reason word.
    pub fn rule(field: impl Into<String>, reason: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid { field: field.into(), message: message.into(), reason: Some(reason) }
    }

    pub fn no_node(id: impl std::fmt::Display) -> Error {
        Error::NotFound(format!("no node has the id {id}"))
    }

    pub fn forbidden(message: impl Into<String>) -> Error {
        Error::Forbidden(message.into())
    }

    pub fn internal(cause: impl Into<anyhow::Error>) -> Error {
        Error::Internal(cause.into())
    }

    /// The `extensions.code` a client sees.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "BAD_USER_INPUT",
            Error::NotFound(_) => "NOT_FOUND",
            Error::Conflict(_) => "CONFLICT",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Unavailable(_) => "UNAVAILABLE",
            Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// Prefixes the field at fault, e.g. with the record's place in a seed file.
    pub fn within(self, place: &str) -> Error {
        match self {
            Error::Invalid { field, message, reason } => Error::Invalid {
                field: if field.is_empty() { place.to_owned() } else { format!("{place}.{field}") },
                message,
                reason,
            },
            Error::NotFound(message) => {
                Error::Invalid { field: place.to_owned(), message, reason: Some("UNKNOWN_NODE") }
            }
            Error::Conflict(message) => Error::Invalid { field: place.to_owned(), message, reason: Some("CONFLICT") },
            other => other,
        }
    }
}
