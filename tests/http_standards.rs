//! GraphQL over HTTP beyond the basics, over real HTTP: the specification's
//! own media type and its status codes, Apollo's automatic persisted queries
//! over GET and POST, the persisted-only mode, and `/metrics`.

mod common;

use std::collections::{BTreeMap, HashMap};

use common::{TestServer, temp_dir};
use pvgraph::http::{HttpOptions, PersistedQueries};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The SHA-256 of a query in lowercase hex, computed here rather than by the server's code.
fn hash(query: &str) -> String {
    Sha256::digest(query.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// A POST of a body with an `Accept` header.
fn posting(server: &TestServer, accept: &str, body: Value) -> reqwest::RequestBuilder {
    server.client().post(format!("{}/graphql", server.url)).header("accept", accept).json(&body)
}

/// POSTs a body with an `Accept` header; returns the status, the content type and the body.
async fn post(server: &TestServer, accept: &str, body: Value) -> (StatusCode, String, Value) {
    answer(posting(server, accept, body).send().await.expect("the server answers")).await
}

/// Every mutation of this file goes through here, so that credentials are added in one place.
/// They act as an editor of King County, whose nodes they make.
async fn mutate(server: &TestServer, accept: &str, body: Value) -> (StatusCode, String, Value) {
    let request = posting(server, accept, body).bearer_auth(server.jwt("kc", "editor"));
    answer(request.send().await.expect("the server answers")).await
}

async fn get(server: &TestServer, params: &[(&str, &str)]) -> (StatusCode, String, Value) {
    let response = server
        .client()
        .get(format!("{}/graphql", server.url))
        .query(params)
        .header("accept", "application/json")
        .send()
        .await
        .expect("the server answers");
    answer(response).await
}

async fn answer(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (status, content_type, response.json().await.expect("a JSON body"))
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or_else(|| panic!("no error code in {body:#}"))
}

#[tokio::test]
async fn the_graphql_response_media_type_answers_request_errors_with_400() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let invalid = json!({ "query": "{ values { colour } }" });

    let (status, content_type, body) = post(&server, GRAPHQL_RESPONSE, invalid.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(content_type.starts_with(GRAPHQL_RESPONSE), "{content_type}");
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert!(body.get("data").is_none(), "a request error has no data: {body}");

    // The same request asking for application/json keeps 200, also without data.
    let (status, content_type, body) = post(&server, "application/json", invalid).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/json"), "{content_type}");
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");
    assert!(body.get("data").is_none());

    // A preference by quality is honoured.
    let accept = "application/json;q=0.5, application/graphql-response+json";
    let (status, content_type, body) = post(&server, accept, json!({ "query": "{ values { totalCount } }" })).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with(GRAPHQL_RESPONSE));
    assert_eq!(body["data"]["values"]["totalCount"], 11);

    // An error while executing is not a request error: 200, with data.
    let refused = json!({ "query":
        r#"mutation { link(input: { from: "kc:value:equity", kind: UPHOLDS, to: "kc:value:trust" }) { kind } }"# });
    let (status, _, body) = mutate(&server, GRAPHQL_RESPONSE, refused).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert!(body.get("data").is_some());
}

#[tokio::test]
async fn automatic_persisted_queries_over_post_and_get() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let query = "query Values { values { totalCount } }";
    let sha = hash(query);

    // Apollo's client first sends the hash alone, and the server does not know it yet.
    let (status, _, body) = post(&server, "application/json", json!({ "extensions": persisted(&sha) })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");
    assert_eq!(body["errors"][0]["message"], "PersistedQueryNotFound");
    // In the specification's media type the same is a request error.
    let (status, _, body) = post(&server, GRAPHQL_RESPONSE, json!({ "extensions": persisted(&sha) })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");

    // Then the query and its hash: it runs, and is remembered.
    let (_, _, body) =
        post(&server, "application/json", json!({ "query": query, "extensions": persisted(&sha) })).await;
    assert_eq!(body["data"]["values"]["totalCount"], 11);
    let (_, _, body) = post(&server, "application/json", json!({ "extensions": persisted(&sha) })).await;
    assert_eq!(body["data"]["values"]["totalCount"], 11);
    let extensions = persisted(&sha).to_string();
    let (status, _, body) = get(&server, &[("extensions", &extensions)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["values"]["totalCount"], 11);
    // Upper-case hex names the same hash.
    let upper = persisted(&sha.to_uppercase()).to_string();
    let (_, _, body) = get(&server, &[("extensions", &upper), ("operationName", "Values")]).await;
    assert_eq!(body["data"]["values"]["totalCount"], 11);

    // A hash that is not the query's is refused, and the query does not run.
    let wrong = hash("{ something else }");
    let (_, _, body) =
        post(&server, "application/json", json!({ "query": query, "extensions": persisted(&wrong) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_HASH_MISMATCH");
    assert!(body.get("data").is_none());
    let (_, _, body) = post(&server, "application/json", json!({ "extensions": persisted(&wrong) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");
}

#[tokio::test]
async fn a_persisted_mutation_is_still_refused_over_get() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mutation =
        r#"mutation Make { createValue(input: { organisation: "kc", title: "By a persisted GET" }) { id } }"#;
    let sha = hash(mutation);
    let (_, _, body) =
        mutate(&server, "application/json", json!({ "query": mutation, "extensions": persisted(&sha) })).await;
    assert_eq!(body["data"]["createValue"]["id"], "kc:value:by-a-persisted-get");
    server.data(r#"mutation { deleteNode(id: "kc:value:by-a-persisted-get") { id } }"#, json!({})).await;

    let extensions = persisted(&sha).to_string();
    let (status, _, body) = get(&server, &[("extensions", &extensions)]).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    let data = server.data(r#"{ node(id: "kc:value:by-a-persisted-get") { id } }"#, json!({})).await;
    assert_eq!(data["node"], Value::Null, "the GET wrote nothing");
}

#[tokio::test]
async fn persisted_only_runs_the_listed_queries_and_nothing_else() {
    let listed = "query Listed { values { totalCount } }";
    let queries = PersistedQueries::new(HashMap::from([(hash(listed), listed.to_owned())]), true);
    let dir = temp_dir();
    let server = TestServer::with_options(dir.path(), HttpOptions { queries, ..HttpOptions::default() }).await;

    let extensions = persisted(&hash(listed)).to_string();
    let (status, _, body) = get(&server, &[("extensions", &extensions)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["values"]["totalCount"], 11);
    // The listed text itself is accepted too.
    let (_, _, body) = post(&server, "application/json", json!({ "query": listed })).await;
    assert_eq!(body["data"]["values"]["totalCount"], 11);

    // Anything else is refused, and automatic persisting cannot add to the list.
    let other = "{ values { totalCount } }";
    let (status, _, body) = post(&server, GRAPHQL_RESPONSE, json!({ "query": other })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_ALLOWED");
    let (_, _, body) =
        post(&server, "application/json", json!({ "query": other, "extensions": persisted(&hash(other)) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_ALLOWED");
    let (_, _, body) = post(&server, "application/json", json!({ "extensions": persisted(&hash(other)) })).await;
    assert_eq!(code(&body), "PERSISTED_QUERY_NOT_FOUND");
}

/// The samples of a Prometheus text page, keyed by metric name and sorted labels.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let key = match series.split_once('{') {
                Some((name, labels)) => {
                    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    labels.sort_unstable();
                    format!("{name}{{{}}}", labels.join(","))
                }
                None => series.to_owned(),
            };
            (key, value.parse().expect("a number"))
        })
        .collect()
}

async fn scrape(server: &TestServer) -> BTreeMap<String, f64> {
    let response = server.client().get(format!("{}/metrics", server.url)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    samples(&response.text().await.unwrap())
}

fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, key: &str) -> f64 {
    after.get(key).copied().unwrap_or(0.0) - before.get(key).copied().unwrap_or(0.0)
}

/// How many times the server asked the store about an API token.
const TOKEN_LOOKUPS: &str = "pvgraph_store_call_duration_seconds_count{method=\"token_by_hash\"}";

/// An API token of a `kc` member with `role`, which the server has confirmed once: its first
/// request waits for the store, and from then on the server knows it.
async fn known_token(server: &TestServer, role: pvgraph::domain::Role) -> String {
    let issued = pvgraph::auth::issue_token("kc", role, pvgraph::domain::now());
    server.store.save_token(&issued.stored).await.unwrap();
    server.bearer(&issued.token).data("{ viewer { organisation } }", json!({})).await;
    issued.token
}

/// A token the server has confirmed before is asked about again with every request, as the
/// metrics count it: a query once (before it starts, when it is served alone on a store that
/// reads tokens at once, SQLite; else alongside its reads); a mutation, on a store that checks
/// the token in the statement that writes (Neo4j), not apart at all.
#[tokio::test]
async fn a_known_tokens_lookups_are_counted_and_a_mutation_on_neo4j_needs_none() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let token = known_token(&server, pvgraph::domain::Role::Editor).await;
    let editor = server.bearer(&token);

    let before = scrape(&server).await;
    editor.data("{ viewer { organisation } }", json!({})).await;
    assert_eq!(moved(&before, &scrape(&server).await, TOKEN_LOOKUPS), 1.0, "a query asks once");

    let before = scrape(&server).await;
    let create = r#"mutation { createValue(input: { organisation: "kc", slug: "counted", title: "Counted" }) { id } }"#;
    let created = editor.data(create, json!({})).await;
    assert_eq!(created["createValue"]["id"], "kc:value:counted");
    let asked = moved(&before, &scrape(&server).await, TOKEN_LOOKUPS);
    match server.store.confirms_callers() {
        true => assert_eq!(asked, 0.0, "the statement that wrote checked the token"),
        false => assert_eq!(asked, 1.0, "the write waited for the lookup"),
    }
}

/// Requests with one API token that arrive while its lookup is on its way share the next lookup
/// rather than each sending one: a burst of them asks fewer lookups than it has requests. (Each
/// is still confirmed by a lookup that began after it arrived; the unit tests of `Lookups`
/// show that order, and `tests/access.rs` that a token revoked meanwhile is refused.) The server
/// runs on several threads, so that the requests are served at once: one served alone is looked
/// up at once instead, where the store can (`a_known_token_served_alone_is_looked_up_at_once_where_the_store_can`),
/// and has nobody to share with.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_with_one_token_share_its_lookups() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let token = known_token(&server, pvgraph::domain::Role::Viewer).await;
    let viewer = server.bearer(&token);

    // Without sharing, every burst asks exactly one lookup a request; with it, a burst whose
    // requests overlap asks fewer. Bursts are sent until one overlaps.
    const BURST: usize = 32;
    let mut asked = Vec::new();
    for _ in 0..10 {
        let before = scrape(&server).await;
        let answers =
            futures::future::join_all((0..BURST).map(|_| viewer.data("{ viewer { organisation } }", json!({})))).await;
        assert!(answers.iter().all(|a| a["viewer"]["organisation"] == "kc"), "{answers:?}");
        let burst = moved(&before, &scrape(&server).await, TOKEN_LOOKUPS);
        assert!((1.0..=BURST as f64).contains(&burst), "a burst asked {burst} lookups");
        if burst < BURST as f64 {
            return;
        }
        asked.push(burst);
    }
    panic!("no burst of {BURST} requests shared a lookup: {asked:?}");
}

#[tokio::test]
async fn metrics_count_requests_errors_and_store_calls() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let before = scrape(&server).await;
    for _ in 0..3 {
        server.data("query CountValues { values { totalCount } }", json!({})).await;
    }
    server.gql("query Broken { values { colour } }", json!({})).await;
    // A document that does not parse names no operation the server could read.
    server.gql("query Unparsed { values {", json!({})).await;
    let (_, _, body) = mutate(
        &server,
        "application/json",
        json!({ "query": r#"mutation Make { createValue(input: { organisation: "kc", title: "Counted" }) { id } }"# }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    let after = scrape(&server).await;

    let count = |name: &str, op: &str, ty: &str| format!("{name}{{operation=\"{op}\",type=\"{ty}\"}}");
    let requests = "pvgraph_graphql_requests_total";
    assert_eq!(moved(&before, &after, &count(requests, "CountValues", "query")), 3.0);
    assert_eq!(moved(&before, &after, &count(requests, "Broken", "query")), 1.0);
    assert_eq!(moved(&before, &after, &count(requests, "Make", "mutation")), 1.0);
    let errors = "pvgraph_graphql_errors_total";
    assert_eq!(moved(&before, &after, &count(errors, "Broken", "query")), 1.0);
    assert_eq!(moved(&before, &after, &count(errors, "CountValues", "query")), 0.0);
    assert_eq!(moved(&before, &after, &count(errors, "anonymous", "unknown")), 1.0);
    let latency = "pvgraph_graphql_request_duration_seconds_count";
    assert_eq!(moved(&before, &after, &count(latency, "CountValues", "query")), 3.0);
    // Each totalCount is one count call; the mutation writes once.
    let store = |method: &str| format!("pvgraph_store_call_duration_seconds_count{{method=\"{method}\"}}");
    assert_eq!(moved(&before, &after, &store("count")), 3.0);
    assert_eq!(moved(&before, &after, &store("apply")), 1.0);
    assert_eq!(after["pvgraph_subscriptions_open"], 0.0);
}

/// On the embedded store, `/metrics` says what its cache of walks holds and how it served: a
/// trace asked again is read from memory where the first read the file, and a write drops all
/// that was held, which the next walk finds. A store without a cache (Neo4j) shows none of it.
#[tokio::test]
async fn metrics_show_what_the_cache_of_walks_holds_and_how_it_served() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    if server.store.cache_figures().is_none() {
        let shown = scrape(&server).await;
        assert!(!shown.keys().any(|k| k.starts_with("pvgraph_walk_cache")), "{shown:?}");
        return;
    }
    let trace = r#"{ trace(from: "kc:learning:time-and-space-for-reflection", direction: DOWNSTREAM, maxDepth: 3)
                     { nodes { node { id } } } }"#;
    let (hit, miss) =
        ("pvgraph_walk_cache_lookups_total{outcome=\"hit\"}", "pvgraph_walk_cache_lookups_total{outcome=\"miss\"}");
    let before = scrape(&server).await;
    assert_eq!(before["pvgraph_walk_cache_room"], pvgraph::store::sqlite::WALK_CACHE_ENTRIES as f64);
    server.data(trace, json!({})).await;
    let first = scrape(&server).await;
    assert!(moved(&before, &first, miss) > 0.0, "the first trace reads the file");
    assert!(first["pvgraph_walk_cache_entries"] > 0.0, "and keeps what it read");
    server.data(trace, json!({})).await;
    let second = scrape(&server).await;
    assert_eq!(moved(&first, &second, miss), 0.0, "the second finds everything held");
    assert_eq!(moved(&first, &second, hit), moved(&before, &first, hit) + moved(&before, &first, miss));
    assert_eq!(second["pvgraph_walk_cache_entries"], first["pvgraph_walk_cache_entries"]);

    let (_, _, body) = mutate(
        &server,
        "application/json",
        json!({ "query": r#"mutation { createValue(input: { organisation: "kc", title: "Changed" }) { id } }"# }),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
    server.data(trace, json!({})).await;
    let third = scrape(&server).await;
    assert_eq!(moved(&second, &third, "pvgraph_walk_cache_drops_total{reason=\"changed\"}"), 1.0);
    assert_eq!(moved(&second, &third, "pvgraph_walk_cache_drops_total{reason=\"full\"}"), 0.0);
    assert_eq!(moved(&second, &third, miss), moved(&before, &first, miss), "the walk read the file again");
}
