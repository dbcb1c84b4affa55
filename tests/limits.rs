//! Every limit over real HTTP: each set low through `Limits`, as the flags set
//! it, and each refusal answered with a code that names the limit and its
//! value, after which the server keeps serving.

mod common;

use common::{TestServer, temp_dir, text};
use pvgraph::limits::Limits;
use reqwest::StatusCode;
use reqwest::header::{ACCESS_CONTROL_ALLOW_ORIGIN, AUTHORIZATION, CONTENT_TYPE, ORIGIN, RETRY_AFTER};
use serde_json::{Value, json};

async fn server_with(dir: &std::path::Path, limits: Limits) -> TestServer {
    TestServer::limited(&dir.join("pvgraph.db"), true, limits).await
}

/// The first error's extensions, failing the test when there is none.
fn refusal(body: &Value) -> &Value {
    let ext = &body["errors"][0]["extensions"];
    assert!(ext["code"].is_string(), "expected an error with a code, got {body:#}");
    ext
}

/// The server still answers a plain query.
async fn still_serves(server: &TestServer) {
    let data = server.data("{ values { totalCount } }", json!({})).await;
    assert_eq!(data["values"]["totalCount"], 11);
}

fn aliases(n: usize) -> String {
    let fields: Vec<String> = (0..n).map(|i| format!("a{i}: __typename")).collect();
    format!("{{ {} }}", fields.join(" "))
}

#[tokio::test]
async fn aliases_over_the_limit_are_refused_naming_it() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { max_aliases: 3, ..Limits::default() }).await;
    let body = server.gql(&aliases(3), json!({})).await;
    assert_eq!(body["data"]["a2"], "Query", "{body:#}");
    // Aliases in fragments count too.
    let query = "{ ...F a3: __typename } fragment F on Query { a0: __typename a1: __typename a2: __typename }";
    for query in [aliases(4).as_str(), query] {
        let body = server.gql(query, json!({})).await;
        let ext = refusal(&body);
        assert_eq!(ext["code"], "LIMIT_EXCEEDED", "{body:#}");
        assert_eq!(ext["limit"], "max-aliases");
        assert_eq!(ext["max"], 3);
        assert!(body["data"].is_null(), "{body:#}");
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn the_default_alias_limit_refuses_ten_thousand_aliases() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let body = server.gql(&aliases(10_000), json!({})).await;
    assert_eq!(refusal(&body)["limit"], "max-aliases", "{body:#}");
    assert_eq!(refusal(&body)["max"], 100);
    still_serves(&server).await;
}

#[tokio::test]
async fn depth_and_complexity_refusals_name_their_limits() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { max_depth: 4, max_complexity: 12, ..Limits::default() }).await;
    // Depth 4 passes; depth 5 does not.
    server.data("{ principles { nodes { upholds { id } } } }", json!({})).await;
    let body = server.gql("{ principles { nodes { upholds { upheldBy { id } } } } }", json!({})).await;
    assert_eq!(refusal(&body)["code"], "LIMIT_EXCEEDED", "{body:#}");
    assert_eq!(refusal(&body)["limit"], "max-depth");
    assert_eq!(refusal(&body)["max"], 4);
    // Seven lists of one field each: 14 fields.
    let wide: Vec<String> = (0..7).map(|i| format!("f{i}: values {{ totalCount }}")).collect();
    let body = server.gql(&format!("{{ {} }}", wide.join(" ")), json!({})).await;
    assert_eq!(refusal(&body)["limit"], "max-complexity", "{body:#}");
    assert_eq!(refusal(&body)["max"], 12);
    still_serves(&server).await;
}

#[tokio::test]
async fn page_sizes_follow_the_configured_limit() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { max_page_size: 5, ..Limits::default() }).await;
    let data = server.data("{ values(first: 5) { edges { cursor } } }", json!({})).await;
    assert_eq!(data["values"]["edges"].as_array().unwrap().len(), 5);
    // Without `first`, a list gives the smaller of its default and the limit.
    let data = server.data("{ values { edges { cursor } } }", json!({})).await;
    assert_eq!(data["values"]["edges"].as_array().unwrap().len(), 5);
    for query in [
        "{ values(first: 6) { totalCount } }",
        "{ values(last: 6) { totalCount } }",
        "{ search(text: \"risk\", first: 6) { score } }",
        "{ paths(from: \"kc:learning:right-risk-review-makes-risk-discussable\", to: \"kc:principle:take-the-right-risks\", first: 6) { length } }",
    ] {
        let body = server.gql(query, json!({})).await;
        let ext = refusal(&body);
        assert_eq!(ext["code"], "BAD_USER_INPUT", "{query}: {body:#}");
        assert_eq!(ext["limit"], "max-page-size", "{query}");
        assert_eq!(ext["max"], 5, "{query}");
    }
}

#[tokio::test]
async fn trace_depth_and_size_follow_the_configured_limits() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { max_trace_depth: 2, max_trace_nodes: 4, ..Limits::default() }).await;
    let from = "kc:learning:right-risk-review-makes-risk-discussable";
    let body = server.gql("query($f: ID!) { trace(from: $f, maxDepth: 3) { truncated } }", json!({ "f": from })).await;
    let ext = refusal(&body);
    assert_eq!(ext["limit"], "max-trace-depth", "{body:#}");
    assert_eq!(ext["max"], 2);
    let data = server
        .data(
            "query($f: ID!) { trace(from: $f, direction: BOTH, maxDepth: 2) { truncated truncation nodes { depth } } }",
            json!({ "f": from }),
        )
        .await;
    let trace = &data["trace"];
    assert_eq!(trace["truncated"], true, "{data:#}");
    assert_eq!(trace["nodes"].as_array().unwrap().len(), 4, "{data:#}");
    assert!(trace["truncation"].to_string().contains("4 nodes"), "{data:#}");
    // The default depth of a path search (6) gives way to a lower limit rather than failing.
    server.data("{ paths(from: \"kc:learning:right-risk-review-makes-risk-discussable\", to: \"kc:principle:take-the-right-risks\") { length } }", json!({})).await;
}

/// The node cap counts the nodes a caller is shown: `hidden`'s PRIVATE principles come first
/// among those upholding the hub, and a caller who may not see them still gets the cap's worth.
#[tokio::test]
async fn the_trace_node_cap_counts_only_nodes_the_caller_sees() {
    let dir = temp_dir();
    let server =
        TestServer::limited(&dir.path().join("pvgraph.db"), false, Limits { max_trace_nodes: 3, ..Limits::default() })
            .await;
    let principle =
        |id: &str, visibility: &str| json!({"id": id, "title": id, "statement": id, "visibility": visibility});
    let mut nodes = vec![
        json!({"id": "hidden:organisation:hidden", "title": "Hidden", "purpose": "Serve."}),
        json!({"id": "shown:organisation:shown", "title": "Shown", "purpose": "Serve."}),
        json!({"id": "shown:value:hub", "title": "Hub"}),
    ];
    let mut relationships = Vec::new();
    let ids =
        ["hidden:principle:a", "hidden:principle:b", "shown:principle:c", "shown:principle:d", "shown:principle:e"];
    for id in ids {
        nodes.push(principle(id, if id.starts_with("hidden") { "PRIVATE" } else { "PUBLIC" }));
        relationships.push(json!({"kind": "UPHOLDS", "from": id, "to": "shown:value:hub"}));
    }
    let seed = json!({"format": "pvgraph/1", "nodes": nodes, "relationships": relationships});
    pvgraph::seed::load(&server.store, &seed.to_string()).await.expect("the graph loads");
    let query = "{ trace(from: \"shown:value:hub\", direction: UPSTREAM, maxDepth: 2) { nodes { node { id } } truncated truncation } }";
    let traced = |data: &Value| -> Vec<String> {
        data["trace"]["nodes"].as_array().unwrap().iter().map(|n| text(&n["node"]["id"])).collect()
    };
    // Anonymous: three nodes it may see, and more it may see were left out.
    let data = server.anonymous().data(query, json!({})).await;
    assert_eq!(traced(&data), ["shown:value:hub", "shown:principle:c", "shown:principle:d"], "{data:#}");
    assert_eq!(data["trace"]["truncated"], true, "{data:#}");
    assert_eq!(data["trace"]["truncation"], json!(["the trace stopped at 3 nodes (--max-trace-nodes)"]));
    // The owner of the PRIVATE principles sees them first.
    let data = server.member("hidden", "viewer").data(query, json!({})).await;
    assert_eq!(traced(&data), ["shown:value:hub", "hidden:principle:a", "hidden:principle:b"], "{data:#}");
    assert_eq!(data["trace"]["truncated"], true, "{data:#}");
    // With the last PUBLIC principle gone, the anonymous trace is whole within the cap.
    server.member("shown", "admin").data("mutation { deleteNode(id: \"shown:principle:e\") { id } }", json!({})).await;
    let data = server.anonymous().data(query, json!({})).await;
    assert_eq!(traced(&data), ["shown:value:hub", "shown:principle:c", "shown:principle:d"], "{data:#}");
    assert_eq!(data["trace"]["truncated"], false, "{data:#}");
}

#[tokio::test]
async fn a_body_over_the_configured_size_is_a_413_naming_the_limit() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { max_body_bytes: 2_000, ..Limits::default() }).await;
    let body = json!({ "query": "{ values { totalCount } }", "variables": { "pad": "x".repeat(2_000) } }).to_string();
    let response = server
        .client()
        .post(format!("{}/graphql", server.url))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.expect("a JSON body");
    let ext = refusal(&body);
    assert_eq!(ext["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(ext["limit"], "max-body-bytes");
    assert_eq!(ext["max"], 2_000);
    still_serves(&server).await;
}

#[tokio::test]
async fn a_query_past_the_time_limit_is_cancelled_with_a_timeout_error() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { request_timeout: 0.001, ..Limits::default() }).await;
    // Forty wide traces take far longer than a millisecond, on blocking threads. The server sees
    // the deadline when the request next waits for something after it has passed, not while its
    // traces run: so each trace's nodes also ask for their links, which the request waits for
    // after the traces, however fast the traces ran and however late the request's thread got
    // to run again.
    let traces: Vec<String> = (0..40)
        .map(|i| {
            format!(
                "t{i}: trace(from: \"kc:value:equity\", direction: BOTH, maxDepth: 10) {{ nodes {{ node {{ links {{ kind }} }} }} }}"
            )
        })
        .collect();
    let response = server
        .client()
        .post(format!("{}/graphql", server.url))
        .json(&json!({ "query": format!("{{ {} }}", traces.join(" ")) }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.expect("a JSON body");
    let ext = refusal(&body);
    assert_eq!(ext["code"], "TIMEOUT", "{body:#}");
    assert_eq!(ext["limit"], "request-timeout");
    assert_eq!(ext["max"], 0.001);
    // The server is still there.
    let health = server.client().get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
}

async fn post_as(server: &TestServer, token: Option<&str>) -> reqwest::Response {
    let mut request =
        server.client().post(format!("{}/graphql", server.url)).json(&json!({ "query": "{ __typename }" }));
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    request.send().await.unwrap()
}

async fn assert_rate_limited(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()[RETRY_AFTER].to_str().unwrap().parse().expect("Retry-After in seconds");
    assert!(wait >= 1, "Retry-After {wait}");
    let body: Value = response.json().await.unwrap();
    let ext = refusal(&body);
    assert_eq!(ext["code"], "RATE_LIMITED", "{body:#}");
    assert_eq!(ext["limit"], "rate-limit");
    assert_eq!(ext["max"], 1);
}

#[tokio::test]
async fn a_client_address_over_the_rate_gets_429_with_retry_after() {
    let dir = temp_dir();
    let server = server_with(dir.path(), Limits { rate_limit: 1, rate_limit_burst: 2, ..Limits::default() }).await;
    for _ in 0..2 {
        assert_eq!(post_as(&server, None).await.status(), StatusCode::OK);
    }
    assert_rate_limited(post_as(&server, None).await).await;
    // A token does not escape the limit of the address it comes from.
    assert_rate_limited(post_as(&server, Some("another-token")).await).await;
}

#[tokio::test]
async fn each_token_has_its_own_rate() {
    // Served without connection info, the server knows no addresses: only tokens are counted.
    let dir = temp_dir();
    let store = pvgraph::store::open(&pvgraph::store::StoreLocation::Sqlite(dir.path().join("g.db"))).await.unwrap();
    let limits = Limits { rate_limit: 1, rate_limit_burst: 2, ..Limits::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let state =
        pvgraph::http::AppState::with_limits(store.clone(), limits).with_auth(common::test_authenticator(store));
    let router = pvgraph::http::app(state);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let client = reqwest::Client::new();
    // Two valid tokens: the rate is counted per token, and an unknown one would be refused first.
    let (a, b) = (common::test_jwt("kc", "viewer"), common::test_jwt("kc", "editor"));
    let post = |token: &str| {
        client
            .post(format!("{url}/graphql"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(post(&a).await.unwrap().status(), StatusCode::OK);
    }
    assert_rate_limited(post(&a).await.unwrap()).await;
    assert_eq!(post(&b).await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let dir = temp_dir();
    let open = TestServer::seeded(dir.path()).await;
    let data = open.data("{ __schema { queryType { name } } }", json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    let dir = temp_dir();
    let closed = server_with(dir.path(), Limits { introspection: false, ..Limits::default() }).await;
    for query in [
        "{ __schema { types { name } } }",
        "{ __type(name: \"Value\") { fields { name } } }",
        "query { values { totalCount } ...F } fragment F on Query { __schema { queryType { name } } }",
    ] {
        let body = closed.gql(query, json!({})).await;
        assert_eq!(refusal(&body)["code"], "INTROSPECTION_DISABLED", "{query}: {body:#}");
        assert!(body["data"].is_null(), "{body:#}");
    }
    // __typename is not introspection of the schema, and stays.
    let data = closed.data("{ values { __typename totalCount } }", json!({})).await;
    assert_eq!(data["values"]["totalCount"], 11);
}

async fn preflight(server: &TestServer, origin: &str) -> reqwest::Response {
    server
        .client()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", server.url))
        .header(ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_is_closed_unless_origins_are_configured() {
    let dir = temp_dir();
    let closed = TestServer::seeded(dir.path()).await;
    let response = preflight(&closed, "https://app.example.org").await;
    assert!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "{:?}", response.headers());
    let response = closed
        .client()
        .post(format!("{}/graphql", closed.url))
        .header(ORIGIN, "https://app.example.org")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let dir = temp_dir();
    let limits = Limits { cors_origins: vec!["https://app.example.org".into()], ..Limits::default() };
    let open = server_with(dir.path(), limits).await;
    let response = preflight(&open, "https://app.example.org").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example.org");
    let response = preflight(&open, "https://elsewhere.example.org").await;
    assert!(response.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
}

#[tokio::test]
async fn the_binary_takes_the_limits_as_flags() {
    let out = common::pvgraph(&["serve", "--help"]).await;
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--max-depth",
        "--max-complexity",
        "--max-aliases",
        "--max-trace-depth",
        "--max-trace-nodes",
        "--max-page-size",
        "--max-body-bytes",
        "--request-timeout",
        "--rate-limit",
        "--rate-limit-burst",
        "--introspection",
        "--cors-origin",
    ] {
        assert!(help.contains(flag), "{flag} is missing from the help");
    }
    let refused = tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(["serve", "--cors-origin", "not an origin"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not an origin"));
}
