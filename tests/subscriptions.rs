//! `graphChanged` over a real WebSocket with the graphql-transport-ws
//! protocol: events arrive for mutations made over HTTP, filters apply, and
//! protocol mistakes are answered as the protocol says.

mod common;

use std::time::Duration;

use common::{TestServer, temp_dir};
use futures::{SinkExt, StreamExt};
use pvgraph::http::HttpOptions;
use serde_json::{Value, json};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

use common::Socket;

async fn connect(server: &TestServer, protocol: &str) -> Socket {
    let url = format!("{}/graphql", server.url.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(protocol).unwrap());
    let (socket, response) = connect_async(request).await.expect("the upgrade succeeds");
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::Text(message.to_string().into())).await.unwrap();
}

async fn next(socket: &mut Socket) -> Option<Value> {
    common::ws_next(socket).await
}

async fn subscribed(server: &TestServer, query: &str) -> Socket {
    let mut socket = connect(server, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": query } })).await;
    // Give the server a moment to register the subscription before the test mutates.
    tokio::time::sleep(Duration::from_millis(200)).await;
    socket
}

const EVENTS: &str =
    "subscription { graphChanged { type node { id title } relationship { kind fromId toId how on strength } } }";

#[tokio::test]
async fn node_and_relationship_events_arrive_with_their_properties() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut socket = subscribed(&server, EVENTS).await;

    server
        .data(
            r#"mutation { createLearning(input: { organisation: "kc", title: "Events travel", statement: "s",
                kind: PROCESS, capturedOn: "2024-01-01" }) { id } }"#,
            json!({}),
        )
        .await;
    let created = next(&mut socket).await.unwrap();
    assert_eq!(created["type"], "next");
    assert_eq!(created["id"], "1");
    assert_eq!(created["payload"]["data"]["graphChanged"]["type"], "NODE_CREATED");
    assert_eq!(created["payload"]["data"]["graphChanged"]["node"]["id"], "kc:learning:events-travel");

    server
        .data(
            r#"mutation { recordInfluence(input: { from: "kc:learning:events-travel", to: "kc:value:equity",
                how: SHIFTED_MINDSET, systemCondition: MENTAL_MODELS, on: "2024-02-01", strength: WEAK }) { kind } }"#,
            json!({}),
        )
        .await;
    let linked = next(&mut socket).await.unwrap();
    let event = &linked["payload"]["data"]["graphChanged"];
    assert_eq!(event["type"], "RELATIONSHIP_CREATED");
    assert_eq!(
        event["relationship"],
        json!({ "kind": "INFLUENCED", "fromId": "kc:learning:events-travel", "toId": "kc:value:equity",
                "how": "SHIFTED_MINDSET", "on": "2024-02-01", "strength": "WEAK" })
    );

    server.data(r#"mutation { deleteNode(id: "kc:learning:events-travel") { id } }"#, json!({})).await;
    let unlinked = next(&mut socket).await.unwrap();
    assert_eq!(unlinked["payload"]["data"]["graphChanged"]["type"], "RELATIONSHIP_DELETED");
    let deleted = next(&mut socket).await.unwrap();
    assert_eq!(deleted["payload"]["data"]["graphChanged"]["type"], "NODE_DELETED");
    assert_eq!(deleted["payload"]["data"]["graphChanged"]["node"]["title"], "Events travel");
}

#[tokio::test]
async fn filters_pass_only_matching_events() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let query = r#"subscription { graphChanged(kinds: [BARRIER], organisation: "kc") { type node { id } } }"#;
    let mut socket = subscribed(&server, query).await;
    // A value of kc, then a barrier of cpi: neither matches; a barrier of kc does.
    for (kind, org, extra) in
        [("Value", "kc", ""), ("Barrier", "cpi", "kind: CULTURAL,"), ("Barrier", "kc", "kind: PERSONAL,")]
    {
        let mutation = format!(
            r#"mutation {{ create{kind}(input: {{ organisation: "{org}", title: "Filtered {kind} {org}", {extra} }}) {{ id }} }}"#
        );
        server.data(&mutation, json!({})).await;
    }
    let only = next(&mut socket).await.unwrap();
    assert_eq!(only["payload"]["data"]["graphChanged"]["node"]["id"], "kc:barrier:filtered-barrier-kc");
}

#[tokio::test]
async fn a_failed_mutation_announces_nothing() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut socket = subscribed(&server, EVENTS).await;
    let refused = server
        .error_code(
            r#"mutation { link(input: { from: "kc:value:equity", kind: UPHOLDS, to: "kc:value:trust" }) { kind } }"#,
            json!({}),
        )
        .await;
    assert_eq!(refused, "BAD_USER_INPUT");
    server
        .data(
            r#"mutation { createValue(input: { organisation: "kc", title: "After the refusal" }) { id } }"#,
            json!({}),
        )
        .await;
    let first = next(&mut socket).await.unwrap();
    assert_eq!(first["payload"]["data"]["graphChanged"]["node"]["id"], "kc:value:after-the-refusal");
}

/// The close code and reason the server ends the connection with (failing if it sends anything else).
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("the server answers");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(Message::Text(text))) if text.contains("\"connection_ack\"") => continue,
            other => panic!("expected the server to close the socket, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn subscribing_before_init_closes_with_4401() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let mut socket = connect(&server, "graphql-transport-ws").await;
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    assert_eq!(close_code(&mut socket).await, 4401);
}

#[tokio::test]
async fn a_second_subscription_under_a_used_id_closes_with_4409() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let mut socket = subscribed(&server, EVENTS).await;
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    assert_eq!(close_code(&mut socket).await, 4409);
}

#[tokio::test]
async fn an_id_is_free_again_once_completed() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut socket = subscribed(&server, EVENTS).await;
    send(&mut socket, json!({ "id": "1", "type": "complete" })).await;
    send(&mut socket, json!({ "id": "1", "type": "subscribe", "payload": { "query": EVENTS } })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server
        .data(r#"mutation { createValue(input: { organisation: "kc", title: "Reused id" }) { id } }"#, json!({}))
        .await;
    let event = loop {
        let message = next(&mut socket).await.expect("the socket stays open");
        if message["type"] == "next" {
            break message;
        }
    };
    assert_eq!(event["id"], "1");
    assert_eq!(event["payload"]["data"]["graphChanged"]["node"]["id"], "kc:value:reused-id");
}

#[tokio::test]
async fn messages_outside_the_protocol_close_with_4400() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    for message in [
        "this is not JSON".to_owned(),
        json!({ "type": "hello" }).to_string(),
        json!({ "id": 1 }).to_string(),
        json!({ "type": "subscribe", "payload": { "query": EVENTS } }).to_string(),
    ] {
        let mut socket = connect(&server, "graphql-transport-ws").await;
        send(&mut socket, json!({ "type": "connection_init" })).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
        socket.send(Message::Text(message.clone().into())).await.unwrap();
        assert_eq!(close_code(&mut socket).await, 4400, "{message}");
    }
}

#[tokio::test]
async fn a_second_connection_init_closes_with_4429() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let mut socket = connect(&server, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(close_code(&mut socket).await, 4429);
}

#[tokio::test]
async fn no_connection_init_in_time_closes_with_4408() {
    let dir = temp_dir();
    let options = HttpOptions { ws_init_timeout: Duration::from_millis(300), ..HttpOptions::default() };
    let server = TestServer::with_options(dir.path(), options).await;
    let mut socket = connect(&server, "graphql-transport-ws").await;
    assert_eq!(close_code(&mut socket).await, 4408);
}

#[tokio::test]
async fn open_subscriptions_show_in_the_metrics() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let open = || async {
        let page = server.client().get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
        let line = page.lines().find(|l| l.starts_with("pvgraph_subscriptions_open ")).expect("the gauge").to_owned();
        line["pvgraph_subscriptions_open ".len()..].parse::<f64>().unwrap()
    };
    assert_eq!(open().await, 0.0);
    let mut first = subscribed(&server, EVENTS).await;
    let second = subscribed(&server, EVENTS).await;
    assert_eq!(open().await, 2.0);
    drop(second);
    send(&mut first, json!({ "id": "1", "type": "complete" })).await;
    // Closing is asynchronous: wait until the server has let both go.
    let mut left = open().await;
    for _ in 0..100 {
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = open().await;
    }
    assert_eq!(left, 0.0);
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_also_streams_events() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut socket = connect(&server, "graphql-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    send(&mut socket, json!({ "id": "a", "type": "start", "payload": { "query": EVENTS } })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server
        .data(r#"mutation { createValue(input: { organisation: "kc", title: "Old protocol" }) { id } }"#, json!({}))
        .await;
    let event = loop {
        let message = next(&mut socket).await.unwrap();
        if message["type"] != "ka" {
            break message;
        }
    };
    assert_eq!(event["type"], "data");
    assert_eq!(event["payload"]["data"]["graphChanged"]["node"]["id"], "kc:value:old-protocol");
}

#[tokio::test]
async fn refused_subscriptions_carry_codes_and_the_limits_hold_over_the_socket() {
    let dir = temp_dir();
    let limits = pvgraph::limits::Limits { max_aliases: 1, ..pvgraph::limits::Limits::default() };
    let server = TestServer::with_options(dir.path(), HttpOptions { limits, ..HttpOptions::default() }).await;
    let mut socket = connect(&server, "graphql-transport-ws").await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack");
    let cases = [
        ("subscription { graphChanged { type }", "GRAPHQL_PARSE_FAILED"),
        ("subscription { graphChanged { colour } }", "GRAPHQL_VALIDATION_FAILED"),
        ("subscription { changes: graphChanged { kind: type } }", "LIMIT_EXCEEDED"),
        ("subscription A { graphChanged { type } } subscription B { graphChanged { type } }", "BAD_REQUEST"),
    ];
    for (id, (query, code)) in cases.into_iter().enumerate() {
        let id = id.to_string();
        send(&mut socket, json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
        let answer = next(&mut socket).await.expect("an answer");
        assert_eq!((answer["type"].as_str(), answer["id"].as_str()), (Some("next"), Some(id.as_str())), "{answer}");
        let error = &answer["payload"]["errors"][0];
        assert_eq!(error["extensions"]["code"], code, "{query}: {answer}");
        assert!(answer["payload"]["data"].is_null(), "{answer}");
        assert_eq!(next(&mut socket).await.unwrap()["type"], "complete");
    }
}
