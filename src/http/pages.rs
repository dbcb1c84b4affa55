//! The pages pvgraph serves itself: GraphiQL at `/` and the trace explorer at
//! `/explore`, with every file they load under `/assets/`. All of it is
//! embedded in the binary, so the pages work on a network with no way out;
//! `scripts/vendor-web` keeps `web/vendor/` equal to the locked npm packages.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The example queries GraphiQL opens with, one tab each; the README shows
/// every one of them and its test runs them.
pub const EXAMPLES: [&str; 5] = [
    include_str!("../../docs/examples/trace.graphql"),
    include_str!("../../docs/examples/path.graphql"),
    include_str!("../../docs/examples/value-funnel.graphql"),
    include_str!("../../docs/examples/search.graphql"),
    include_str!("../../docs/examples/graph-changed.graphql"),
];

/// Where the pages may load from and talk to: this server only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'self'";

/// A file the pages load, as it lies under `web/`.
macro_rules! asset {
    ($path:literal) => {
        ($path, include_bytes!(concat!("../../web/", $path)).as_slice())
    };
}

/// Every file under `/assets/`, by its path there.
const ASSETS: [(&str, &[u8]); 14] = [
    asset!("graphiql.js"),
    asset!("explore.js"),
    asset!("explore.css"),
    asset!("vendor/graphiql/graphiql.min.js"),
    asset!("vendor/graphiql/graphiql.min.css"),
    asset!("vendor/graphiql/LICENSE"),
    asset!("vendor/react/react.production.min.js"),
    asset!("vendor/react/LICENSE"),
    asset!("vendor/react-dom/react-dom.production.min.js"),
    asset!("vendor/react-dom/LICENSE"),
    asset!("vendor/graphql-ws/graphql-ws.min.js"),
    asset!("vendor/graphql-ws/LICENSE.md"),
    asset!("vendor/cytoscape/cytoscape.min.js"),
    asset!("vendor/cytoscape/LICENSE"),
];

/// An embedded file ready to send: its bytes, type and entity tag.
struct Served {
    body: Bytes,
    content_type: &'static str,
    etag: HeaderValue,
}

impl Served {
    fn new(name: &str, body: impl Into<Bytes>) -> Served {
        let body = body.into();
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let etag = HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish())).expect("hex is a valid header");
        Served { body, content_type: content_type(name), etag }
    }

    /// The file, or 304 when the browser already holds this version. Browsers
    /// revalidate each time, so a new binary's files show at once.
    fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == self.etag || tag.trim() == "*"));
        let headers = [
            (header::ETAG, self.etag.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (headers, [(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type))], self.body.clone())
            .into_response()
    }
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, extension)| extension) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/plain; charset=utf-8",
    }
}

static FILES: LazyLock<HashMap<&'static str, Served>> =
    LazyLock::new(|| ASSETS.iter().map(|&(name, body)| (name, Served::new(name, body))).collect());

/// GraphiQL's page, with the example queries written into it.
static GRAPHIQL: LazyLock<Served> = LazyLock::new(|| {
    let examples: Vec<_> = EXAMPLES.iter().map(|query| serde_json::json!({ "query": query.trim_end() })).collect();
    // `<\/` keeps a query's text from closing the script element it sits in.
    let examples = serde_json::to_string(&examples).expect("strings serialise").replace("</", "<\\/");
    let page = include_str!("../../web/graphiql.html").replace("{{examples}}", &examples);
    Served::new("graphiql.html", page)
});

static EXPLORE: LazyLock<Served> =
    LazyLock::new(|| Served::new("explore.html", include_bytes!("../../web/explore.html").as_slice()));

/// The routes of the pages and their files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { graphiql(&headers) }))
        .route("/explore", get(|headers: HeaderMap| async move { EXPLORE.respond(&headers) }))
        .route("/assets/{*path}", get(asset))
}

/// GraphiQL, for `/` and for browsers that open `/graphql`.
pub fn graphiql(request: &HeaderMap) -> Response {
    GRAPHIQL.respond(request)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match FILES.get(path.as_str()) {
        Some(file) => file.respond(&headers),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
