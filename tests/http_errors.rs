//! The HTTP surface as a client meets it: raw requests over TCP, bad bodies,
//! bad queries and bad input, each answered with a status and an error code,
//! and never with the server's insides.

mod common;

use common::{TestServer, temp_dir};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

/// Words that would give away the server's insides.
const INTERNAL: [&str; 6] = ["rusqlite", "sqlite", "sql", "panicked", "backtrace", "src/"];

/// Checks that every error of a response has a code and a message that shows nothing internal.
fn assert_clean_errors(body: &Value) {
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("expected errors, got {body:#}"));
    assert!(!errors.is_empty(), "{body:#}");
    for error in errors {
        assert!(error["extensions"]["code"].is_string(), "an error without a code: {error:#}");
        let message = error["message"].as_str().unwrap_or_else(|| panic!("an error without a message: {error:#}"));
        let lower = message.to_lowercase();
        for word in INTERNAL {
            assert!(!lower.contains(word), "the message shows `{word}`: {message}");
        }
    }
}

fn code(body: &Value) -> &str {
    assert_clean_errors(body);
    body["errors"][0]["extensions"]["code"].as_str().unwrap()
}

async fn post_raw(
    server: &TestServer,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let mut request = server.client().post(format!("{}/graphql", server.url)).body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: the body is not JSON: {text}"));
    (status, json)
}

async fn get(server: &TestServer, path: &str, query: &[(&str, &str)], accept: Option<&str>) -> reqwest::Response {
    let mut request = server.client().get(format!("{}{path}", server.url)).query(query);
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    request.send().await.expect("the server answers")
}

// ---------------------------------------------------------------------------
// Request bodies
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_malformed_json_body_is_a_400_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for body in ["{\"query\":", "not json at all", "{\"query\": 42}", "[1, 2", ""] {
        let (status, json) = post_raw(&server, Some("application/json"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {json:#}");
        assert_eq!(code(&json), "BAD_REQUEST", "{body:?}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_by_its_content_type_is_a_415_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let good = json!({ "query": "{ values { totalCount } }" }).to_string();
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let (status, json) = post_raw(&server, content_type, good.clone()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}: {json:#}");
        assert_eq!(code(&json), "UNSUPPORTED_MEDIA_TYPE");
    }
    // The same body as JSON is fine, with or without a charset.
    for content_type in ["application/json", "application/json; charset=utf-8"] {
        let (status, json) = post_raw(&server, Some(content_type), good.clone()).await;
        assert_eq!(status, StatusCode::OK, "{json:#}");
        assert_eq!(json["data"]["values"]["totalCount"], 11);
    }
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_a_413() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let padding = "x".repeat(1 << 20);
    let body = json!({ "query": "{ values { totalCount } }", "variables": { "padding": padding } }).to_string();
    let response = server
        .client()
        .post(format!("{}/graphql", server.url))
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Just under the limit is read and answered.
    let padding = "x".repeat((1 << 20) - 200);
    let body = json!({ "query": "{ values { totalCount } }", "variables": { "padding": padding } }).to_string();
    let (status, json) = post_raw(&server, Some("application/json"), body).await;
    assert_eq!(status, StatusCode::OK, "{json:#}");
    assert_eq!(json["data"]["values"]["totalCount"], 11);
}

/// Every other request error is JSON with `errors[0].extensions.code`; `http::rejection`
/// even maps PayloadTooLarge to one, but the body-limit layer answers first, in plain text.
#[tokio::test]
async fn a_body_over_one_mebibyte_is_answered_in_json_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let padding = "x".repeat(1 << 20);
    let body = json!({ "query": "{ values { totalCount } }", "variables": { "padding": padding } }).to_string();
    let (status, json) = post_raw(&server, Some("application/json"), body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(&json), "PAYLOAD_TOO_LARGE");
}

// ---------------------------------------------------------------------------
// Queries the schema refuses
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_syntax_error_is_graphql_parse_failed() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for query in
        ["{ values { totalCount }", "{ values(first: ) { totalCount } }", "query {", "mutation { link(input: {) }"]
    {
        let body = server.gql(query, json!({})).await;
        assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "{query}: {body:#}");
        assert!(body["data"].is_null(), "{query}: nothing ran");
    }
}

#[tokio::test]
async fn an_unknown_field_is_graphql_validation_failed() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for (query, name) in [
        ("{ values { totalCount colour } }", "colour"),
        ("{ valuez { totalCount } }", "valuez"),
        ("{ node(id: \"kc:value:trust\") { ... on Value { upholds { id } } } }", "upholds"),
        ("{ values(colour: RED) { totalCount } }", "colour"),
        ("mutation { deleteEverything { id } }", "deleteEverything"),
    ] {
        let body = server.gql(query, json!({})).await;
        assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED", "{query}: {body:#}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains(name), "{body:#}");
    }
}

#[tokio::test]
async fn an_unknown_field_in_an_input_object_is_refused_and_nothing_is_written() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let with_variables = server
        .gql(
            "mutation($i: CreateValueInput!) { createValue(input: $i) { id } }",
            json!({ "i": { "organisation": "kc", "title": "Curiosity", "defintion": "A typo." } }),
        )
        .await;
    let inline = server
        .gql("mutation { createValue(input: { organisation: \"kc\", title: \"Curiosity\", defintion: \"A typo.\" }) { id } }", json!({}))
        .await;
    let in_filter = server
        .gql("query($f: BarrierFilter) { barriers(filter: $f) { totalCount } }", json!({ "f": { "severity": 3 } }))
        .await;
    for body in [&with_variables, &inline, &in_filter] {
        code(body);
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("defintion") || message.contains("severity"),
            "the message names the field: {message}"
        );
    }
    let data = server.data("{ node(id: \"kc:value:curiosity\") { id } }", json!({})).await;
    assert_eq!(data["node"], Value::Null);
}

#[tokio::test]
async fn a_wrong_enum_value_is_refused_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let bodies = [
        server.gql("{ barriers(filter: { kind: [SOCIAL] }) { totalCount } }", json!({})).await,
        server.gql("query($k: [BarrierKind!]) { barriers(filter: { kind: $k }) { totalCount } }", json!({ "k": ["SOCIAL"] })).await,
        server.gql("query($k: [BarrierKind!]) { barriers(filter: { kind: $k }) { totalCount } }", json!({ "k": ["cultural"] })).await,
        server.gql("{ values(orderBy: { field: NAME }) { totalCount } }", json!({})).await,
        server
            .gql(
                "mutation($i: LinkInput!) { link(input: $i) { kind } }",
                json!({ "i": { "from": "kc:principle:take-the-right-risks", "kind": "SUPPORTS", "to": "kc:value:trust" } }),
            )
            .await,
    ];
    for body in &bodies {
        let code = code(body);
        assert!(["GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"].contains(&code), "{body:#}");
    }
}

#[tokio::test]
async fn a_wrong_scalar_is_refused_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let cases = [
        json!({ "organisation": "kc", "title": "T", "statement": "S", "adoptedOn": "17/11/2021" }),
        json!({ "organisation": "kc", "title": "T", "statement": "S", "adoptedOn": "2021-02-30" }),
        json!({ "organisation": "kc", "title": 7, "statement": "S" }),
        json!({ "organisation": "kc", "statement": "S" }),
    ];
    for input in cases {
        let body = server
            .gql("mutation($i: CreatePrincipleInput!) { createPrinciple(input: $i) { id } }", json!({ "i": input }))
            .await;
        let code = code(&body);
        assert!(["GRAPHQL_VALIDATION_FAILED", "BAD_USER_INPUT"].contains(&code), "{input}: {body:#}");
    }
    let body = server.gql("{ values(first: 99999999999) { totalCount } }", json!({})).await;
    code(&body);
}

// ---------------------------------------------------------------------------
// Input the model refuses
// ---------------------------------------------------------------------------

#[tokio::test]
async fn over_long_text_is_bad_user_input_naming_the_field() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let create = "mutation($i: CreateValueInput!) { createValue(input: $i) { id title description } }";
    let cases = [
        (json!({ "organisation": "kc", "title": "Long words", "description": "d".repeat(10_001) }), "description"),
        (json!({ "organisation": "kc", "slug": "long-title", "title": "t".repeat(201) }), "title"),
        (json!({ "organisation": "kc", "title": "Tagged", "tags": ["x".repeat(65)] }), "tags[0]"),
        (
            json!({ "organisation": "kc", "title": "Many tags", "tags": (0..33).map(|i| format!("t{i}")).collect::<Vec<_>>() }),
            "tags",
        ),
        (json!({ "organisation": "kc", "title": "Defined", "definition": "d".repeat(10_001) }), "definition"),
        (json!({ "organisation": "kc", "title": "Nul\u{0}byte" }), "title"),
        (json!({ "organisation": "kc", "slug": "blank", "title": "   " }), "title"),
    ];
    for (input, field) in cases {
        let body = server.gql(create, json!({ "i": input })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{field}: {body:#}");
        assert_eq!(body["errors"][0]["extensions"]["field"], field, "{body:#}");
        assert!(body["errors"][0]["message"].as_str().unwrap().starts_with(field), "{body:#}");
    }
    let data = server.data("{ values { totalCount } }", json!({})).await;
    assert_eq!(data["values"]["totalCount"], 11, "nothing was created");

    // The limits themselves are allowed.
    let input = json!({ "organisation": "kc", "slug": "at-the-limits", "title": "t".repeat(200), "description": "d".repeat(10_000) });
    let data = server.data(create, json!({ "i": input })).await;
    assert_eq!(data["createValue"]["title"].as_str().unwrap().chars().count(), 200);
    assert_eq!(data["createValue"]["description"].as_str().unwrap().chars().count(), 10_000);
    // Characters, not bytes.
    let input = json!({ "organisation": "kc", "slug": "accents", "title": "é".repeat(200) });
    server.data(create, json!({ "i": input })).await;
}

#[tokio::test]
async fn an_invalid_id_is_bad_user_input() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let cases = [
        ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": "nope" })),
        ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": "KC:value:trust" })),
        ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": "kc:policy:trust" })),
        ("query($id: ID!) { node(id: $id) { id } }", json!({ "id": "kc:value:trust:extra" })),
        ("query($id: ID!) { nodes(ids: [\"kc:value:trust\", $id]) { id } }", json!({ "id": "nope" })),
        ("mutation($id: ID!) { deleteNode(id: $id) { id } }", json!({ "id": "nope" })),
        ("mutation($id: ID!) { updateValue(id: $id, input: { title: \"T\" }) { id } }", json!({ "id": "nope" })),
        (
            "mutation($id: ID!) { unlink(from: $id, kind: UPHOLDS, to: \"kc:value:trust\") { kind } }",
            json!({ "id": "nope" }),
        ),
        (
            "mutation($id: ID!) { link(input: { from: $id, kind: UPHOLDS, to: \"kc:value:trust\" }) { kind } }",
            json!({ "id": "kc:principle:Take-The-Right-Risks" }),
        ),
    ];
    for (query, variables) in cases {
        let body = server.gql(query, variables.clone()).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{query} {variables}: {body:#}");
    }
    let many: Vec<String> = (0..101).map(|i| format!("kc:value:v{i}")).collect();
    let body = server.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": many })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
}

#[tokio::test]
async fn a_query_nested_too_deep_is_refused_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut selection = "id".to_owned();
    for _ in 0..10 {
        selection = format!("upholds {{ upheldBy {{ {selection} }} }}");
    }
    let query = format!("{{ principles {{ nodes {{ {selection} }} }} }}");
    let body = server.gql(&query, json!({})).await;
    code(&body);
    assert!(body["data"].is_null(), "{body:#}");
}

/// The influence cursor is an index; a crafted one overflows `index + 1`.
#[tokio::test]
async fn a_crafted_influence_cursor_is_bad_user_input() {
    use base64::Engine;
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(usize::MAX.to_string());
    let query = "query($after: String) { node(id: \"kc:learning:time-and-space-for-reflection\") { \
                 ... on Learning { influences(after: $after) { totalCount edges { on } } } } }";
    let response = server
        .client()
        .post(format!("{}/graphql", server.url))
        .json(&json!({ "query": query, "variables": { "after": cursor } }))
        .send()
        .await
        .expect("the server answers rather than dropping the connection");
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
}

#[tokio::test]
async fn a_cursor_past_the_end_of_the_influences_gives_an_empty_page() {
    use base64::Engine;
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let query = "query($after: String) { node(id: \"kc:learning:time-and-space-for-reflection\") { \
                 ... on Learning { influences(after: $after) { totalCount edges { on } pageInfo { hasNextPage } } } } }";
    let cursor = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("999");
    let data = server.data(query, json!({ "after": cursor })).await;
    assert_eq!(data["node"]["influences"]["edges"], json!([]));
    assert_eq!(data["node"]["influences"]["pageInfo"]["hasNextPage"], false);
    let body = server.gql(query, json!({ "after": "garbage!" })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
}

// ---------------------------------------------------------------------------
// GET, GraphiQL and health
// ---------------------------------------------------------------------------

#[tokio::test]
async fn get_runs_queries() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let response = get(&server, "/graphql", &[("query", "{ values { totalCount } }")], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["values"]["totalCount"], 11);

    let query = "query($id: ID!) { node(id: $id) { title } }";
    let variables = json!({ "id": "kc:value:trust" }).to_string();
    let response = get(&server, "/graphql", &[("query", query), ("variables", &variables)], None).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["node"]["title"], "Trust");

    // A browser asking for a query's answer gets the answer, not the page.
    let response = get(&server, "/graphql", &[("query", "{ values { totalCount } }")], Some("text/html")).await;
    let body: Value = response.json().await.expect("JSON, not GraphiQL");
    assert_eq!(body["data"]["values"]["totalCount"], 11);

    // Errors over GET carry codes too.
    let response = get(&server, "/graphql", &[("query", "{ values { colour } }")], None).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn get_refuses_mutations_with_405_and_writes_nothing() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mutations = [
        "mutation { createValue(input: { organisation: \"kc\", title: \"By GET\" }) { id } }",
        "query Q { values { totalCount } } mutation M { createValue(input: { organisation: \"kc\", title: \"By GET\" }) { id } }",
    ];
    for mutation in mutations {
        let response = get(&server, "/graphql", &[("query", mutation), ("operationName", "M")], None).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{mutation}");
        assert_eq!(response.headers().get(ALLOW).map(|v| v.to_str().unwrap()), Some("POST"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(code(&body), "METHOD_NOT_ALLOWED");
    }
    let data = server.data("{ node(id: \"kc:value:by-get\") { id } }", json!({})).await;
    assert_eq!(data["node"], Value::Null);
}

#[tokio::test]
async fn browsers_get_graphiql_and_probes_get_ok() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for (path, accept) in [("/graphql", Some("text/html,application/xhtml+xml")), ("/", None), ("/", Some("text/html"))]
    {
        let response = get(&server, path, &[], accept).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers().get(CONTENT_TYPE).unwrap().to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/html"), "{path}: {content_type}");
        let page = response.text().await.unwrap();
        assert!(page.to_lowercase().contains("graphiql"), "{path}: not GraphiQL");
        assert!(page.contains("/graphql"), "{path}: GraphiQL points at the endpoint");
    }

    let response = get(&server, "/healthz", &[], None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok");

    let response = get(&server, "/no-such-page", &[], None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rule_errors_carry_a_code_field_and_reason_and_nothing_internal() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let body = server
        .gql(
            "mutation { link(input: { from: \"kc:value:trust\", kind: UPHOLDS, to: \"kc:principle:take-the-right-risks\" }) { kind } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["reason"], "LINK_NOT_ALLOWED");
    assert_eq!(body["errors"][0]["extensions"]["field"], "kind");
    assert_eq!(body["errors"][0]["path"], json!(["link"]));

    // Conflicts and misses from the store read as plainly.
    let body = server
        .gql(
            "mutation { link(input: { from: \"kc:principle:take-the-right-risks\", kind: UPHOLDS, to: \"kc:value:equity\" }) { kind } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "CONFLICT");
    let body = server.gql("mutation { deleteNode(id: \"kc:value:gone\") { id } }", json!({})).await;
    assert_eq!(code(&body), "NOT_FOUND");
    let body = server.gql("mutation { deleteNode(id: \"kc:organisation:kc\") { id } }", json!({})).await;
    assert_eq!(code(&body), "CONFLICT");
}

// ---------------------------------------------------------------------------
// Abuse: each gets a clear error, and the server keeps serving
// ---------------------------------------------------------------------------

/// Every mutation of the abuse tests goes through here (one place to add credentials).
async fn mutate(server: &TestServer, query: &str, variables: Value) -> Value {
    server.gql(query, variables).await
}

/// The server answers a plain query after whatever came before.
async fn still_serves(server: &TestServer) {
    let data = server.data("{ values { totalCount } }", json!({})).await;
    assert!(data["values"]["totalCount"].as_u64().unwrap() >= 11, "{data:#}");
}

#[tokio::test]
async fn fragment_cycles_are_refused_and_the_server_keeps_serving() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for query in [
        "{ ...A } fragment A on Query { ...A }",
        "{ values { nodes { ...A } } } fragment A on Value { id ...B } fragment B on Value { title ...A }",
        "{ node(id: \"kc:value:equity\") { ...A } } fragment A on Node { ... on Value { upheldBy { ...B } } } \
         fragment B on Principle { upholds { ...A } }",
    ] {
        let body = server.gql(query, json!({})).await;
        // Caught by the parser's recursion cap (following the spreads) or by validation.
        let refused = ["GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"];
        assert!(refused.contains(&code(&body)), "{query}: {body:#}");
        assert!(body["data"].is_null(), "{body:#}");
    }
    still_serves(&server).await;
}

#[tokio::test]
async fn thousands_of_nested_braces_are_refused_without_a_stack_overflow() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for depth in [64, 5_000, 100_000] {
        let query = format!("{}{}", "{ a ".repeat(depth), "}".repeat(depth));
        let body = server.gql(&query, json!({})).await;
        assert_eq!(code(&body), "GRAPHQL_PARSE_FAILED", "depth {depth}: {body:#}");
        // And as deep lists in an argument.
        let query = format!("{{ nodes(ids: {}\"x\"{}) {{ id }} }}", "[".repeat(depth), "]".repeat(depth));
        let body = server.gql(&query, json!({})).await;
        code(&body);
    }
    // Deep nesting in the variables' JSON is a bad request.
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let body =
        format!(r#"{{"query": "query($v: [ID!]) {{ nodes(ids: $v) {{ id }} }}", "variables": {{"v": {deep}}}}}"#);
    let (status, json) = post_raw(&server, Some("application/json"), body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json:#}");
    assert_eq!(code(&json), "BAD_REQUEST");
    still_serves(&server).await;
}

#[tokio::test]
async fn a_body_that_is_not_utf8_is_a_400_with_a_code() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut bodies: Vec<Vec<u8>> =
        vec![vec![0xff, 0xfe, 0xfd], b"{\"query\": \"{ values { totalCount } }\xc3\x28\"}".to_vec()];
    bodies.push([b"{\"query\": \"".as_slice(), &[0x80; 64], b"\"}"].concat());
    for body in bodies {
        let (status, json) = post_raw(&server, Some("application/json"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {json:#}");
        assert_eq!(code(&json), "BAD_REQUEST");
    }
    // Nor in a GET's query string.
    let response = server.client().get(format!("{}/graphql?query=%7B%20%FF%20%7D", server.url)).send().await.unwrap();
    let body: Value = response.json().await.expect("a JSON answer");
    code(&body);
    assert!(body["data"].is_null(), "{body:#}");
    still_serves(&server).await;
}

#[tokio::test]
async fn oversized_strings_and_lists_in_variables_are_refused() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let huge = "w".repeat(900_000);
    let body = server.gql("query($t: String!) { search(text: $t) { score } }", json!({ "t": huge })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    let body = server
        .gql("query($t: String) { values(filter: { titleContains: $t }) { totalCount } }", json!({ "t": huge }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    let ids: Vec<String> = (0..50_000).map(|i| format!("kc:value:v{i}")).collect();
    let body = server.gql("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", json!({ "ids": ids })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    let tags: Vec<String> = (0..50_000).map(|i| format!("t{i}")).collect();
    let create = "mutation($i: CreateValueInput!) { createValue(input: $i) { id } }";
    let body = mutate(&server, create, json!({ "i": { "organisation": "kc", "title": "Tags", "tags": tags } })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    let body = mutate(&server, create, json!({ "i": { "organisation": "kc", "title": huge } })).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body:#}");
    let data = server.data("{ values { totalCount } }", json!({})).await;
    assert_eq!(data["values"]["totalCount"], 11, "nothing was created");
}

/// Strings shaped like SQL, Cypher, FTS5 queries, HTML and paths: stored and given back as
/// written, never run.
const INJECTIONS: [&str; 8] = [
    "Robert'); DROP TABLE nodes; --",
    "x' OR '1'='1",
    "MATCH (n) DETACH DELETE n",
    "}) RETURN n //",
    "<script>alert('x')</script>",
    "title:* OR NEAR(a b) \"",
    "%_\\%",
    "../../etc/passwd\u{202e}",
];

#[tokio::test]
async fn injection_shaped_strings_are_stored_and_returned_verbatim() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let create = "mutation($i: CreateValueInput!) { createValue(input: $i) { id title description tags } }";
    let mut ids = Vec::new();
    for (n, text) in INJECTIONS.iter().enumerate() {
        let input = json!({ "organisation": "kc", "slug": format!("injected-{n}"), "title": text,
                            "description": text, "tags": [text] });
        let body = mutate(&server, create, json!({ "i": input })).await;
        assert!(body.get("errors").is_none(), "{text}: {body:#}");
        let created = &body["data"]["createValue"];
        assert_eq!(created["title"], *text);
        assert_eq!(created["description"], *text);
        assert_eq!(created["tags"], json!([text]));
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    // Read back as written, by id.
    let data =
        server.data("query($ids: [ID!]!) { nodes(ids: $ids) { ... on Value { title } } }", json!({ "ids": ids })).await;
    let titles: Vec<&str> = data["nodes"].as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap()).collect();
    assert_eq!(titles, INJECTIONS);
    // Filters and search read them as text: each finds only what contains it.
    for text in INJECTIONS {
        let data = server
            .data(
                "query($t: String) { values(filter: { titleContains: $t }) { nodes { title } } }",
                json!({ "t": text }),
            )
            .await;
        for node in data["values"]["nodes"].as_array().unwrap() {
            assert!(node["title"].as_str().unwrap().contains(text), "{text} matched {node}");
        }
        let body = server.gql("query($t: String!) { search(text: $t) { node { id } } }", json!({ "t": text })).await;
        // Words are searched as words; a text of punctuation alone has none, and says so.
        if body.get("errors").is_some() {
            assert_eq!(code(&body), "BAD_USER_INPUT", "{text}: {body:#}");
            assert_eq!(body["errors"][0]["extensions"]["field"], "text");
        }
    }
    // Injection-shaped ids are malformed ids, nothing more.
    for text in INJECTIONS {
        let body = server.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": text })).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "{text}: {body:#}");
    }
    let data = server.data("{ values { totalCount } principles { totalCount } }", json!({})).await;
    assert_eq!(data["values"]["totalCount"], 11 + INJECTIONS.len(), "{data:#}");
    assert!(data["principles"]["totalCount"].as_u64().unwrap() > 0, "the seed is still there");
}
