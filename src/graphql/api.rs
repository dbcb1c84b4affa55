//! The schema and the work that runs around each execution rather than inside it:
//! the document parsed (or found parsed), the limits async-graphql leaves out,
//! codes on its errors, the partner report, and what the metrics need.
//!
//! None of it is an async-graphql extension: with any extension registered,
//! async-graphql resolves every field and every list item on its slow path (a
//! boxed future and a call down the extensions per field, and the field's type
//! looked up by name), and none of this work needs a field's hook.

use std::any::TypeId;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::parse_query;
use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Data, Executor, Request, Response, ServerError};
use futures::stream::{self, BoxStream, StreamExt};
use lru::LruCache;

use super::limits::{Survey, word_refusals};
use super::{PvSchema, error, partner};
use crate::limits::Limits;
use crate::partner::Report;

/// The schema with what runs before and after it; cheap to clone. Run requests through
/// `execute` (or `run`), never through the schema alone: its errors would go without codes
/// and its limits unchecked.
#[derive(Clone)]
pub struct Api {
    schema: PvSchema,
    parsed: Arc<ParsedQueries>,
    limits: Arc<Limits>,
}

/// What a request turned out to be, for the metrics: the operation it ran and its type
/// (`query`, `mutation`, `subscription`, or `unknown` when the document did not parse or did
/// not hold the operation asked for).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Operation {
    pub name: Option<String>,
    pub kind: &'static str,
}

impl Operation {
    fn of(document: Option<&ExecutableDocument>, asked: Option<&str>) -> Operation {
        let chosen = document.and_then(|document| match asked {
            Some(name) => document.operations.iter().find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
            None => {
                let mut all = document.operations.iter();
                all.next().filter(|_| all.next().is_none())
            }
        });
        match chosen {
            Some((name, definition)) => Operation {
                name: name.map(|n| n.to_string()),
                kind: match definition.node.ty {
                    OperationType::Query => "query",
                    OperationType::Mutation => "mutation",
                    OperationType::Subscription => "subscription",
                },
            },
            None => Operation { name: asked.map(str::to_owned), kind: "unknown" },
        }
    }
}

impl Api {
    pub fn new(schema: PvSchema, limits: Arc<Limits>) -> Api {
        Api { schema, parsed: Arc::default(), limits }
    }

    /// The schema itself, for what needs no execution (its SDL, say).
    pub fn schema(&self) -> &PvSchema {
        &self.schema
    }

    /// Executes one query or mutation (see `super::prepare` for what it needs attached).
    pub async fn execute(&self, request: Request) -> Response {
        self.run(request).await.0
    }

    /// Executes a request as `caller` over `store`, as the HTTP handler does: with the request's
    /// own view of the store and loaders (`graphql::prepare`), its loaders batching a whole poll
    /// (`Batching`). Says what operation it was.
    pub async fn run_as(
        &self,
        request: Request,
        store: &crate::store::Store,
        caller: crate::domain::Caller,
        confirmation: Option<crate::auth::Confirmation>,
        partners: Option<&Arc<crate::partner::Partners>>,
    ) -> (Response, Operation) {
        let batching = super::Batching::default();
        let request = super::prepare(request, store, caller, confirmation, partners, &batching);
        batching.run(self.run(request)).await
    }

    /// Executes one query or mutation, and says what operation it was.
    pub async fn run(&self, mut request: Request) -> (Response, Operation) {
        let report = data::<Report>(&request.data).cloned();
        let (admitted, operation) = self.admit(&mut request);
        let response = match admitted {
            Ok(()) => self.finish(self.schema.execute(request).await),
            Err(refusal) => Response::from_errors(vec![refusal]),
        };
        let response = match report {
            Some(report) => partner::report_unreachable(response, &report),
            None => response,
        };
        (response, operation)
    }

    /// Gives the request its parsed document, or refuses it: a document that does not parse, or
    /// that a limit checked here refuses.
    fn admit(&self, request: &mut Request) -> (Result<(), ServerError>, Operation) {
        let parsed = self.parsed.get(&request.query);
        let operation = Operation::of(parsed.as_ref().ok().map(|p| &p.document), request.operation_name.as_deref());
        let admitted = parsed.and_then(|parsed| {
            if let Some(refusal) = parsed.survey.refusal(&self.limits) {
                return Err(refusal);
            }
            request.set_parsed_query(parsed.document.clone());
            Ok(())
        });
        (admitted, operation)
    }

    /// Words what async-graphql answered as pvgraph answers.
    fn finish(&self, mut response: Response) -> Response {
        if matches!(response.data, async_graphql::Value::Null) {
            word_refusals(&mut response.errors, &self.limits);
        }
        error::give_codes(&mut response);
        response
    }
}

/// A value of the request's data, by type.
fn data<T: 'static>(data: &Data) -> Option<&T> {
    data.get(&TypeId::of::<T>()).and_then(|value| value.downcast_ref::<T>())
}

/// For WebSocket sessions: the same work around each subscription, and around each query or
/// mutation sent over the socket.
impl Executor for Api {
    async fn execute(&self, request: Request) -> Response {
        Api::execute(self, request).await
    }

    fn execute_stream(&self, mut request: Request, session_data: Option<Arc<Data>>) -> BoxStream<'static, Response> {
        match self.admit(&mut request).0 {
            Ok(()) => {
                let api = self.clone();
                self.schema
                    .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                    .map(move |response| api.finish(response))
                    .boxed()
            }
            Err(refusal) => stream::once(async move { Response::from_errors(vec![refusal]) }).boxed(),
        }
    }
}

/// A parsed document and what the limits look at in it.
struct Parsed {
    document: ExecutableDocument,
    survey: Survey,
}

impl Parsed {
    fn new(text: &str) -> Result<Parsed, ServerError> {
        let document = parse_query(text).map_err(error::parse_failed)?;
        Ok(Parsed { survey: Survey::of(&document), document })
    }
}

/// Parsed query documents by their text. Parsing was more than half of the
/// instructions a small query cost (callgrind, see benches/HISTORY.md), and clients
/// send the same few texts again and again with other variables, so each text
/// is parsed (and surveyed for the limits) once. Validation still runs on every
/// request.
struct ParsedQueries(Mutex<LruCache<String, Arc<Parsed>>>);

impl ParsedQueries {
    /// How many texts are kept, the least recently used leaving first.
    const CAPACITY: usize = 512;
    /// Longer texts are parsed every time, so that the cache stays small.
    const LONGEST: usize = 16 * 1024;

    /// The document of a text, parsed now or earlier. A text that does not parse is not kept.
    fn get(&self, text: &str) -> Result<Arc<Parsed>, ServerError> {
        if text.len() > Self::LONGEST {
            return Parsed::new(text).map(Arc::new);
        }
        if let Some(parsed) = self.0.lock().unwrap_or_else(PoisonError::into_inner).get(text) {
            return Ok(parsed.clone());
        }
        let parsed = Arc::new(Parsed::new(text)?);
        self.0.lock().unwrap_or_else(PoisonError::into_inner).put(text.to_owned(), parsed.clone());
        Ok(parsed)
    }
}

impl Default for ParsedQueries {
    fn default() -> Self {
        let capacity = NonZeroUsize::new(Self::CAPACITY).unwrap_or(NonZeroUsize::MIN);
        ParsedQueries(Mutex::new(LruCache::new(capacity)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached(queries: &ParsedQueries) -> usize {
        queries.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    #[test]
    fn a_query_text_is_parsed_once_and_a_broken_one_is_refused_and_not_kept() {
        let queries = ParsedQueries::default();
        let text = "query($id: ID!) { node(id: $id) { id } }";
        let first = queries.get(text).unwrap();
        let second = queries.get(text).unwrap();
        assert_eq!(cached(&queries), 1);
        assert!(Arc::ptr_eq(&first, &second), "the second is the first, not parsed again");

        let broken = queries.get("{ node(id: ").err().expect("a parse error");
        assert_eq!(cached(&queries), 1);
        let code = broken.extensions.as_ref().and_then(|e| e.get("code")).cloned();
        assert_eq!(code, Some(async_graphql::Value::from("GRAPHQL_PARSE_FAILED")));
    }

    #[test]
    fn the_operation_is_the_one_asked_for_or_the_only_one() {
        let document = parse_query("query A { a } mutation B { b }").unwrap();
        let named = |name: &str, kind| Operation { name: Some(name.to_owned()), kind };
        assert_eq!(Operation::of(Some(&document), Some("B")), named("B", "mutation"));
        assert_eq!(Operation::of(Some(&document), Some("C")), named("C", "unknown"));
        assert_eq!(Operation::of(Some(&document), None), Operation { name: None, kind: "unknown" });
        let single = parse_query("{ a }").unwrap();
        assert_eq!(Operation::of(Some(&single), None), Operation { name: None, kind: "query" });
        assert_eq!(Operation::of(None, Some("A")), named("A", "unknown"));
    }
}
