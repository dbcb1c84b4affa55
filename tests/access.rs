//! Who may see and change what, over real HTTP and WebSockets: a matrix of
//! every caller (anonymous; viewer, editor, admin of the owner; editor and
//! admin of another organisation) × every visibility × every operation, each
//! cell asserting its exact outcome; then the 401 cases, API tokens through the
//! real binary, JWTs (HS256 and RS256) and the audit trail.

mod common;

use std::time::Duration;

use common::{Client, Socket, TestServer, claims, sign_hs256, temp_dir, text};
use futures::SinkExt;
use pvgraph::auth::{Authenticator, JwtKey, JwtSettings, issue_token};
use pvgraph::domain::{Error, Role};
use pvgraph::store::ApiToken;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Message, http::HeaderValue};

/// The callers of the matrix: a name, and the organisation and role (none: anonymous).
const CALLERS: [(&str, Option<(&str, &str)>); 6] = [
    ("anonymous", None),
    ("owner viewer", Some(("own", "viewer"))),
    ("owner editor", Some(("own", "editor"))),
    ("owner admin", Some(("own", "admin"))),
    ("other editor", Some(("other", "editor"))),
    ("other admin", Some(("other", "admin"))),
];

const VISIBILITIES: [&str; 3] = ["PUBLIC", "PARTNERS", "PRIVATE"];

fn client<'a>(server: &'a TestServer, caller: Option<(&str, &str)>) -> Client<'a> {
    match caller {
        None => server.anonymous(),
        Some((organisation, role)) => server.member(organisation, role),
    }
}

/// Whether a caller may see a node of `own` with this visibility: the rule, written out.
fn sees(caller: Option<(&str, &str)>, visibility: &str) -> bool {
    match (caller, visibility) {
        (_, "PUBLIC") => true,
        (None, _) => false,
        (Some(_), "PARTNERS") => true,
        (Some((organisation, _)), _) => organisation == "own",
    }
}

/// What a change to a node of `own` gets: its data, or the error's code.
fn change_outcome(caller: Option<(&str, &str)>, visibility: &str) -> &'static str {
    match caller {
        None | Some((_, "viewer")) => "FORBIDDEN",
        _ if !sees(caller, visibility) => "NOT_FOUND",
        Some(("own", _)) => "OK",
        Some(_) => "FORBIDDEN",
    }
}

fn principle(visibility: &str) -> String {
    format!("own:principle:{}", visibility.to_lowercase())
}

/// Two organisations; `own` has a PUBLIC value `anchor` upheld by one principle of each
/// visibility, whose titles carry the word `zebrafinch` for search.
async fn world(server: &TestServer) {
    for organisation in ["own", "other"] {
        server
            .member(organisation, "admin")
            .data(
                "mutation($o: String!) { createOrganisation(input: { organisation: $o, title: $o, purpose: \"Serve.\" }) { id } }",
                json!({ "o": organisation }),
            )
            .await;
    }
    let admin = server.member("own", "admin");
    for value in ["anchor", "second"] {
        admin
            .data(
                "mutation($s: String!) { createValue(input: { organisation: \"own\", slug: $s, title: $s }) { id } }",
                json!({ "s": value }),
            )
            .await;
    }
    for visibility in VISIBILITIES {
        admin
            .data(
                "mutation($s: String!, $v: Visibility!) { createPrinciple(input: { organisation: \"own\", slug: $s,
                   title: $s, statement: \"zebrafinch\", visibility: $v }) { id } }",
                json!({ "s": visibility.to_lowercase(), "v": visibility }),
            )
            .await;
        admin
            .data(
                "mutation($p: ID!) { link(input: { from: $p, kind: UPHOLDS, to: \"own:value:anchor\" }) { kind } }",
                json!({ "p": principle(visibility) }),
            )
            .await;
    }
}

/// The outcome of a change: "OK" or the error's code.
fn outcome(body: &Value) -> String {
    match body.get("errors") {
        None => "OK".into(),
        Some(errors) => text(&errors[0]["extensions"]["code"]),
    }
}

#[tokio::test]
async fn every_caller_sees_and_changes_exactly_what_the_rules_allow() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    world(&server).await;
    let admin = server.member("own", "admin");

    for (name, caller) in CALLERS {
        let me = client(&server, caller);
        let visible: Vec<String> = VISIBILITIES.iter().filter(|v| sees(caller, v)).map(|v| principle(v)).collect();

        // The list and its count.
        let list = me
            .data(
                "{ principles(filter: { organisation: [\"own\"] }, orderBy: { field: ID }) { totalCount nodes { id } } }",
                json!({}),
            )
            .await;
        let mut listed: Vec<String> =
            list["principles"]["nodes"].as_array().unwrap().iter().map(|n| text(&n["id"])).collect();
        listed.sort();
        let mut want = visible.clone();
        want.sort();
        assert_eq!(listed, want, "{name}: list");
        assert_eq!(list["principles"]["totalCount"], json!(visible.len()), "{name}: totalCount");

        // The relationship field, the trace and the search.
        let anchor = me
            .data(
                "{ node(id: \"own:value:anchor\") { ... on Value { upheldBy { id } } }
                   trace(from: \"own:value:anchor\", direction: UPSTREAM, maxDepth: 1) { nodes { node { id } } edges { fromId } }
                   search(text: \"zebrafinch\") { node { id } } }",
                json!({}),
            )
            .await;
        let upheld: Vec<String> =
            anchor["node"]["upheldBy"].as_array().unwrap().iter().map(|n| text(&n["id"])).collect();
        let traced: Vec<String> =
            anchor["trace"]["nodes"].as_array().unwrap().iter().map(|n| text(&n["node"]["id"])).collect();
        let trace_edges: Vec<String> =
            anchor["trace"]["edges"].as_array().unwrap().iter().map(|e| text(&e["fromId"])).collect();
        let found: Vec<String> = anchor["search"].as_array().unwrap().iter().map(|h| text(&h["node"]["id"])).collect();

        for visibility in VISIBILITIES {
            let id = principle(visibility);
            let cell = format!("{name} × {visibility}");
            let shown = sees(caller, visibility);

            // Read by id: the node, or null exactly as for a missing one.
            let read = me.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": id })).await;
            assert_eq!(read["data"]["node"], if shown { json!({ "id": id }) } else { Value::Null }, "{cell}: node");
            let missing =
                me.gql("query($id: ID!) { node(id: $id) { id } }", json!({ "id": "own:principle:none" })).await;
            if !shown {
                assert_eq!(read, missing, "{cell}: hidden reads as missing");
            }

            assert_eq!(upheld.contains(&id), shown, "{cell}: upheldBy");
            assert_eq!(traced.contains(&id), shown, "{cell}: trace nodes");
            assert_eq!(trace_edges.contains(&id), shown, "{cell}: trace edges");
            assert_eq!(found.contains(&id), shown, "{cell}: search");

            // Paths from the principle: found when visible, NOT_FOUND (as for a missing node) when not.
            let paths = me
                .gql("query($id: ID!) { paths(from: $id, to: \"own:value:anchor\") { length } }", json!({ "id": id }))
                .await;
            if shown {
                assert_eq!(paths["data"]["paths"], json!([{ "length": 1 }]), "{cell}: paths");
            } else {
                let none = me
                    .gql(
                        "query($id: ID!) { paths(from: $id, to: \"own:value:anchor\") { length } }",
                        json!({ "id": "own:principle:none" }),
                    )
                    .await;
                assert_eq!(outcome(&paths), "NOT_FOUND", "{cell}: paths");
                assert_eq!(
                    paths["errors"][0]["message"].as_str().unwrap().replace(&id, "ID"),
                    none["errors"][0]["message"].as_str().unwrap().replace("own:principle:none", "ID"),
                    "{cell}: the same message as a missing node"
                );
            }

            let expected = change_outcome(caller, visibility);
            // Update.
            let update = me
                .gql(
                    "mutation($id: ID!) { updatePrinciple(id: $id, input: { description: \"changed\" }) { id } }",
                    json!({ "id": id }),
                )
                .await;
            assert_eq!(outcome(&update), expected, "{cell}: update {update}");

            // Link from the node (undone by the owner's admin when it succeeded).
            let link = me
                .gql(
                    "mutation($id: ID!) { link(input: { from: $id, kind: UPHOLDS, to: \"own:value:second\" }) { kind } }",
                    json!({ "id": id }),
                )
                .await;
            assert_eq!(outcome(&link), expected, "{cell}: link {link}");
            if expected == "OK" {
                admin
                    .data(
                        "mutation($id: ID!) { unlink(from: $id, kind: UPHOLDS, to: \"own:value:second\") { kind } }",
                        json!({ "id": id }),
                    )
                    .await;
            }

            // Delete, of a node made for this cell.
            let doomed = format!("{}-{}", visibility.to_lowercase(), name.replace(' ', "-"));
            admin
                .data(
                    "mutation($s: String!, $v: Visibility!) { createValue(input: { organisation: \"own\", slug: $s,
                       title: $s, visibility: $v }) { id } }",
                    json!({ "s": doomed, "v": visibility }),
                )
                .await;
            let doomed = format!("own:value:{doomed}");
            let delete = me.gql("mutation($id: ID!) { deleteNode(id: $id) { id } }", json!({ "id": doomed })).await;
            assert_eq!(outcome(&delete), expected, "{cell}: delete {delete}");
            let still = admin.data("query($id: ID!) { node(id: $id) { id } }", json!({ "id": doomed })).await;
            assert_eq!(still["node"].is_null(), expected == "OK", "{cell}: a refused delete keeps the node");
        }

        // Creating: members of `own` who may change it, nobody else; the organisation node: admins only.
        let create = me
            .gql(
                "mutation($s: String!) { createValue(input: { organisation: \"own\", slug: $s, title: $s }) { id } }",
                json!({ "s": format!("made-by-{}", name.replace(' ', "-")) }),
            )
            .await;
        let may_create = matches!(caller, Some(("own", "editor" | "admin")));
        assert_eq!(outcome(&create), if may_create { "OK" } else { "FORBIDDEN" }, "{name}: create {create}");
    }
}

#[tokio::test]
async fn an_organisation_node_is_created_by_its_own_admin_only() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let create =
        "mutation { createOrganisation(input: { organisation: \"neworg\", title: \"New\", purpose: \"P\" }) { id } }";
    assert_eq!(server.member("neworg", "editor").error_code(create, json!({})).await, "FORBIDDEN");
    assert_eq!(server.member("other", "admin").error_code(create, json!({})).await, "FORBIDDEN");
    assert_eq!(server.anonymous().error_code(create, json!({})).await, "FORBIDDEN");
    server.member("neworg", "admin").data(create, json!({})).await;
}

#[tokio::test]
async fn a_relationship_into_a_hidden_node_is_refused_as_if_the_node_were_missing() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    world(&server).await;
    let other = server.member("other", "admin");
    other
        .data(
            "mutation { createValue(input: { organisation: \"other\", slug: \"v\", title: \"V\" }) { id } }",
            json!({}),
        )
        .await;
    other
        .data(
            "mutation { createPrinciple(input: { organisation: \"other\", slug: \"p\", title: \"P\", statement: \"s\" }) { id } }",
            json!({}),
        )
        .await;
    for visibility in ["PARTNERS", "PRIVATE"] {
        server
            .member("own", "admin")
            .data(
                "mutation($s: String!, $v: Visibility!) { createValue(input: { organisation: \"own\", slug: $s,
                   title: $s, visibility: $v }) { id } }",
                json!({ "s": visibility.to_lowercase(), "v": visibility }),
            )
            .await;
    }
    // `other` may link from its own principle to `own`'s PUBLIC and PARTNERS nodes, not to a PRIVATE one.
    let link = "mutation($to: ID!) { link(input: { from: \"other:principle:p\", kind: UPHOLDS, to: $to }) { kind } }";
    other.data(link, json!({ "to": "own:value:anchor" })).await;
    other.data(link, json!({ "to": "own:value:partners" })).await;
    let hidden = other.gql(link, json!({ "to": "own:value:private" })).await;
    let missing = other.gql(link, json!({ "to": "own:value:none" })).await;
    assert_eq!(outcome(&hidden), "NOT_FOUND", "{hidden}");
    assert_eq!(
        text(&hidden["errors"][0]["message"]).replace("own:value:private", "ID"),
        text(&missing["errors"][0]["message"]).replace("own:value:none", "ID")
    );
    // Its own principle's relationships, read back, show the visible ends only: for `own`, all three.
    let upholds = "{ node(id: \"other:principle:p\") { ... on Principle { upholds { id } } } }";
    assert_eq!(other.data(upholds, json!({})).await["node"]["upholds"].as_array().unwrap().len(), 2);
    assert_eq!(
        server.anonymous().data(upholds, json!({})).await["node"]["upholds"],
        json!([{ "id": "own:value:anchor" }])
    );
}

async fn socket(server: &TestServer, init: Value) -> Socket {
    let url = format!("{}/graphql", server.url.replace("http://", "ws://"));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("graphql-transport-ws"));
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("the upgrade succeeds");
    socket.send(Message::Text(json!({ "type": "connection_init", "payload": init }).to_string().into())).await.unwrap();
    socket
}

async fn next(socket: &mut Socket) -> Option<Value> {
    common::ws_next(socket).await
}

#[tokio::test]
async fn each_subscriber_hears_only_of_nodes_and_relationships_it_may_see() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    world(&server).await;
    let mut sockets = Vec::new();
    for (name, caller) in CALLERS {
        let init = match caller {
            None => json!({}),
            Some((organisation, role)) => {
                json!({ "Authorization": format!("Bearer {}", server.jwt(organisation, role)) })
            }
        };
        let mut socket = socket(&server, init).await;
        assert_eq!(next(&mut socket).await.unwrap()["type"], "connection_ack", "{name}");
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { graphChanged { type node { id } relationship { fromId toId } } }" } });
        socket.send(Message::Text(subscribe.to_string().into())).await.unwrap();
        sockets.push((name, caller, socket));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = server.member("own", "admin");
    for visibility in VISIBILITIES {
        let id = principle(visibility);
        admin
            .data(
                "mutation($id: ID!) { updatePrinciple(id: $id, input: { description: \"d\" }) { id } }",
                json!({ "id": id }),
            )
            .await;
        admin
            .data(
                "mutation($id: ID!) { link(input: { from: $id, kind: UPHOLDS, to: \"own:value:second\" }) { kind } }",
                json!({ "id": id }),
            )
            .await;
    }
    // A PUBLIC node last: everyone hears of it, so each subscriber knows when to stop listening.
    admin
        .data(
            "mutation { createValue(input: { organisation: \"own\", slug: \"last\", title: \"Last\" }) { id } }",
            json!({}),
        )
        .await;
    for (name, caller, mut socket) in sockets {
        let mut updated = Vec::new();
        let mut linked = Vec::new();
        loop {
            let message = next(&mut socket).await.unwrap_or_else(|| panic!("{name}: the stream ended"));
            let event = &message["payload"]["data"]["graphChanged"];
            match event["type"].as_str() {
                Some("NODE_CREATED") if event["node"]["id"] == "own:value:last" => break,
                Some("NODE_UPDATED") => updated.push(text(&event["node"]["id"])),
                Some("RELATIONSHIP_CREATED") => linked.push(text(&event["relationship"]["fromId"])),
                other => panic!("{name}: unexpected {other:?} {message}"),
            }
        }
        for visibility in VISIBILITIES {
            let id = principle(visibility);
            let shown = sees(caller, visibility);
            assert_eq!(updated.contains(&id), shown, "{name} × {visibility}: update event");
            assert_eq!(linked.contains(&id), shown, "{name} × {visibility}: relationship event");
        }
    }
}

#[tokio::test]
async fn bad_expired_or_unknown_tokens_get_401_unauthenticated() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let query = "{ viewer { anonymous organisation role subject } }";
    let mut wrong_key = claims("own", "admin", 3600);
    wrong_key.sub = Some("forger".into());
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &wrong_key,
        &jsonwebtoken::EncodingKey::from_secret(b"another secret of at least thirty-two bytes"),
    )
    .unwrap();
    let bad = [
        ("an expired JWT", format!("Bearer {}", sign_hs256(&claims("own", "admin", -3600)))),
        ("a JWT with another key", format!("Bearer {forged}")),
        ("an unknown role", format!("Bearer {}", sign_hs256(&claims("own", "owner", 3600)))),
        ("a bad organisation", format!("Bearer {}", sign_hs256(&claims("Not A Slug", "admin", 3600)))),
        ("garbage", "Bearer not-a-token".into()),
        ("an unknown API token", "Bearer pvg_0011223344556677_secret".into()),
        ("another scheme", format!("Basic {}", server.jwt("own", "admin"))),
        ("no token after Bearer", "Bearer ".into()),
    ];
    for (what, header) in bad {
        let client = server.authorized(&header);
        let (status, body) = client.post(query, json!({})).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}: {body}");
        assert!(body.get("data").is_none(), "{what}: {body}");
    }
    let (status, body) = server.anonymous().post(query, json!({})).await;
    assert_eq!((status, &body["data"]["viewer"]["anonymous"]), (200, &json!(true)));
    let (status, body) = server.member("own", "editor").post(query, json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"]["viewer"],
        json!({ "anonymous": false, "organisation": "own", "role": "EDITOR", "subject": "jwt:test" })
    );

    // A WebSocket whose connection_init carries a bad token is refused.
    let mut refused = socket(&server, json!({ "Authorization": "Bearer not-a-token" })).await;
    let answer = next(&mut refused).await;
    assert!(answer.is_none() || answer.as_ref().is_some_and(|a| a["type"] != "connection_ack"), "{answer:?}");
}

#[tokio::test]
async fn anonymous_access_can_be_switched_off() {
    let dir = temp_dir();
    let server = TestServer::with_auth(dir.path().join("pvgraph.db").as_path(), true, |store| {
        common::test_authenticator(store).with_anonymous(false)
    })
    .await;
    let (status, body) = server.anonymous().post("{ values(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, body) = server.member("kc", "viewer").post("{ values(first: 1) { totalCount } }", json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["values"]["totalCount"].as_u64().unwrap() > 0);
    // A WebSocket without a token in connection_init is refused too.
    let mut refused = socket(&server, json!({})).await;
    let answer = next(&mut refused).await;
    assert!(answer.is_none() || answer.as_ref().is_some_and(|a| a["type"] != "connection_ack"), "{answer:?}");
}

/// The store URL the binary should use: the test's SQLite file, or the Neo4j server under test.
fn store_url(db: &std::path::Path) -> String {
    common::neo4j_uri().unwrap_or_else(|| format!("sqlite://{}", db.display()))
}

#[tokio::test]
async fn api_tokens_are_issued_listed_and_revoked_through_the_binary() {
    let dir = temp_dir();
    let db = dir.path().join("pvgraph.db");
    let server = TestServer::seeded(dir.path()).await;
    let store = store_url(&db);
    let out =
        common::pvgraph(&["token", "create", "--organisation", "kc", "--role", "editor", "--store", &store]).await;
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("pvg_"), "{token}");
    let id = token.trim_start_matches("pvg_").split('_').next().unwrap().to_owned();

    let list = common::pvgraph(&["token", "list", "--store", &store]).await;
    let list = String::from_utf8(list.stdout).unwrap();
    assert!(list.contains(&id) && list.contains("kc\teditor"), "{list}");
    assert!(!list.contains(&token), "the list never shows a secret");
    let stored = server.store.tokens().await.unwrap();
    assert!(stored.iter().all(|t| t.hash != token && !t.hash.contains(&token)), "only a hash is kept");

    let editor = server.bearer(&token);
    let viewer = editor.data("{ viewer { organisation role subject } }", json!({})).await;
    assert_eq!(viewer["viewer"], json!({ "organisation": "kc", "role": "EDITOR", "subject": format!("token:{id}") }));
    editor
        .data("mutation { createValue(input: { organisation: \"kc\", title: \"By token\" }) { id } }", json!({}))
        .await;
    let refused =
        editor.gql("mutation { createValue(input: { organisation: \"acme\", title: \"X\" }) { id } }", json!({})).await;
    assert_eq!(outcome(&refused), "FORBIDDEN");

    common::pvgraph(&["token", "revoke", &id, "--store", &store]).await;
    let (status, body) = editor.post("{ viewer { organisation } }", json!({})).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errors"][0]["message"], "the token was revoked");
    let list = String::from_utf8(common::pvgraph(&["token", "list", "--store", &store]).await.stdout).unwrap();
    let line = list.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(!line.ends_with("\t-"), "the list shows when it was revoked: {line}");
    // Revoking twice says so.
    let again = tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
        .args(["token", "revoke", &id, "--store", &store])
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
}

/// A request on a token the server confirmed before, served while no other such request is, is
/// looked up at once where the store can do that without waiting (SQLite with a connection
/// idle), and starts with its caller settled. One that comes while another is served is admitted
/// alongside its lookup, as every request is on a store that cannot (Neo4j). Either way a token
/// revoked before the request arrived is refused to it.
#[tokio::test]
async fn a_known_token_served_alone_is_looked_up_at_once_where_the_store_can() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let issued = issue_token("kc", Role::Viewer, pvgraph::domain::now());
    server.store.save_token(&issued.stored).await.unwrap();
    let auth = Authenticator::new(server.store.clone());
    let header = format!("Bearer {}", issued.token);
    let hash = pvgraph::auth::hash_token(&issued.token);
    let at_once = server.store.token_by_hash_at_once(&hash).await.is_some();
    assert_eq!(at_once, server.store.backend() == "sqlite", "SQLite reads a token at once when a connection is idle");

    let first = auth.admit(Some(&header)).await.unwrap();
    assert!(first.confirmation.is_none(), "a token not known yet is waited for");
    drop(first);
    let alone = auth.admit(Some(&header)).await.unwrap();
    assert_eq!(alone.confirmation.is_none(), at_once, "served alone: settled at once where the store can");
    let beside = auth.admit(Some(&header)).await.unwrap();
    let confirmation = beside.confirmation.as_ref().expect("another is being served: its lookup comes alongside");
    assert_eq!(confirmation.outcome().await.unwrap(), alone.caller);
    drop((alone, beside));

    assert!(server.store.revoke_token(&issued.stored.id).await.unwrap());
    match auth.admit(Some(&header)).await {
        Err(error) => {
            assert!(at_once, "refused before it starts only where the token is read at once");
            assert!(matches!(&error, Error::Unauthenticated(m) if m == "the token was revoked"), "{error:?}");
        }
        Ok(admitted) => {
            assert!(!at_once, "a store that reads the token at once refuses the request at once");
            let confirmation = admitted.confirmation.expect("admitted ahead of its lookup");
            let error = confirmation.outcome().await.unwrap_err();
            assert!(matches!(&*error, Error::Unauthenticated(m) if m == "the token was revoked"), "{error:?}");
        }
    }
}

/// A token the server has confirmed before admits its next request at once, the store asked
/// alongside (`Authenticator::admit`). Revoked meanwhile, the request is refused and writes nothing.
#[tokio::test]
async fn a_known_token_revoked_meanwhile_is_refused_and_writes_nothing() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let issued = issue_token("kc", Role::Editor, pvgraph::domain::now());
    server.store.save_token(&issued.stored).await.unwrap();
    let editor = server.bearer(&issued.token);
    for _ in 0..2 {
        let viewer = editor.data("{ viewer { organisation } }", json!({})).await;
        assert_eq!(viewer["viewer"]["organisation"], "kc");
    }
    assert!(server.store.revoke_token(&issued.stored.id).await.unwrap());
    let create = "mutation { createValue(input: { organisation: \"kc\", slug: \"after-revocation\", title: \"After\" }) { id } }";
    for _ in 0..2 {
        let (status, body) = editor.post(create, json!({})).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["errors"][0]["message"], "the token was revoked", "{body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{body}");
        assert!(body.get("data").is_none(), "nothing of the refused request is sent: {body}");
    }
    let read = server.member("kc", "admin").data("{ node(id: \"kc:value:after-revocation\") { id } }", json!({})).await;
    assert_eq!(read["node"], Value::Null, "the refused change was not written");
}

/// A token's grant rewritten in the store (as restoring a copy over it can) is taken as it now
/// stands, even by a request admitted as it was: the change it would have made as the old grant
/// is not made, and the request is answered as the new one.
#[tokio::test]
async fn a_known_token_rewritten_meanwhile_answers_as_it_now_stands() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    server
        .member("acme", "admin")
        .data(
            "mutation { createOrganisation(input: { organisation: \"acme\", title: \"Acme\", purpose: \"Test.\" }) { id } }",
            json!({}),
        )
        .await;
    let issued = issue_token("kc", Role::Editor, pvgraph::domain::now());
    server.store.save_token(&issued.stored).await.unwrap();
    let editor = server.bearer(&issued.token);
    assert_eq!(editor.data("{ viewer { organisation } }", json!({})).await["viewer"]["organisation"], "kc");

    let rewritten = ApiToken { organisation: "acme".into(), ..issued.stored.clone() };
    server.store.restore_access(&[rewritten], &[]).await.unwrap();
    let create =
        "mutation($o: String!) { createValue(input: { organisation: $o, slug: \"rewritten\", title: \"R\" }) { id } }";
    let refused = editor.gql(create, json!({ "o": "kc" })).await;
    assert_eq!(outcome(&refused), "FORBIDDEN", "{refused}");
    let kc = server.member("kc", "admin").data("{ node(id: \"kc:value:rewritten\") { id } }", json!({})).await;
    assert_eq!(kc["node"], Value::Null, "nothing was written as the old grant");

    assert_eq!(editor.data("{ viewer { organisation } }", json!({})).await["viewer"]["organisation"], "acme");
    let created = editor.data(create, json!({ "o": "acme" })).await;
    assert_eq!(created["createValue"]["id"], "acme:value:rewritten");
}

/// An RSA key pair in PEM made by the openssl command, (private, public).
fn rsa_pair(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the openssl command runs");
        assert!(status.success(), "openssl {args:?}");
    };
    run(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", private.to_str().unwrap()]);
    run(&["pkey", "-in", private.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
    (std::fs::read(private).unwrap(), std::fs::read(public).unwrap())
}

#[tokio::test]
async fn rs256_jwts_are_checked_with_the_public_key_issuer_and_audience() {
    let dir = temp_dir();
    let (private, public) = rsa_pair(dir.path());
    let server = TestServer::with_auth(dir.path().join("pvgraph.db").as_path(), true, move |store| {
        let jwt = JwtSettings::new(JwtKey::Rs256Pem(public), Some("https://idp.example"), Some("pvgraph")).unwrap();
        Authenticator::new(store).with_jwt(jwt)
    })
    .await;
    let sign = |iss: &str, aud: &str| {
        let mut c = claims("kc", "admin", 3600);
        c.iss = Some(iss.into());
        c.aud = Some(aud.into());
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(&private).unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &c, &key).unwrap()
    };
    let good = server.bearer(&sign("https://idp.example", "pvgraph"));
    good.data(
        "mutation { createValue(input: { organisation: \"kc\", title: \"Signed by the IdP\" }) { id } }",
        json!({}),
    )
    .await;
    for (what, token) in [
        ("another issuer", sign("https://evil.example", "pvgraph")),
        ("another audience", sign("https://idp.example", "other")),
        ("an HS256 token", server.jwt("kc", "admin")),
    ] {
        let (status, body) = server.bearer(&token).post("{ viewer { role } }", json!({})).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{what}");
    }
}

#[tokio::test]
async fn admins_read_their_organisations_audit_trail_and_nobody_else_does() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    world(&server).await;
    let editor = server.member("own", "editor");
    editor
        .data(
            "mutation { updatePrinciple(id: \"own:principle:public\", input: { title: \"Renamed\" }) { id } }",
            json!({}),
        )
        .await;
    // A refused change leaves no entry.
    let refused = server
        .member("other", "editor")
        .gql("mutation { deleteNode(id: \"own:principle:public\") { id } }", json!({}))
        .await;
    assert_eq!(outcome(&refused), "FORBIDDEN");

    let log =
        "query($after: String) { auditLog(first: 1, after: $after) { totalCount pageInfo { hasNextPage endCursor }
                 nodes { operation organisation role subject changes } } }";
    let first = server.member("own", "admin").data(log, json!({})).await;
    // The world: the organisation node, two values, three principles, three links; then the update.
    assert_eq!(first["auditLog"]["totalCount"], 10);
    let newest = &first["auditLog"]["nodes"][0];
    assert_eq!(newest["operation"], "updatePrinciple");
    assert_eq!(newest["organisation"], "own");
    assert_eq!(newest["role"], "EDITOR");
    assert_eq!(newest["subject"], "jwt:test");
    let change = &newest["changes"][0];
    assert_eq!(change["op"], "update");
    assert_eq!(change["before"]["title"], "public");
    assert_eq!(change["after"]["title"], "Renamed");

    let second =
        server.member("own", "admin").data(log, json!({ "after": first["auditLog"]["pageInfo"]["endCursor"] })).await;
    assert_eq!(second["auditLog"]["nodes"][0]["operation"], "link");

    let other = server.member("other", "admin").data(log, json!({})).await;
    assert_eq!(other["auditLog"]["totalCount"], 1, "only `other`'s own organisation node");
    assert_eq!(other["auditLog"]["nodes"][0]["operation"], "createOrganisation");
    for client in [server.anonymous(), server.member("own", "editor"), server.member("own", "viewer")] {
        assert_eq!(client.error_code(log, json!({})).await, "FORBIDDEN");
    }
}

#[tokio::test]
async fn the_analysts_queries_count_only_what_the_caller_may_see() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    world(&server).await;
    let own = server.member("own", "admin");
    // Two learnings of `own`, one PUBLIC and one PRIVATE, each influencing `other`'s value.
    server
        .member("other", "admin")
        .data(
            "mutation { createValue(input: { organisation: \"other\", slug: \"v\", title: \"V\" }) { id } }",
            json!({}),
        )
        .await;
    for visibility in ["PUBLIC", "PRIVATE"] {
        let slug = format!("l-{}", visibility.to_lowercase());
        own.data(
            "mutation($s: String!, $v: Visibility!) { createLearning(input: { organisation: \"own\", slug: $s, title: $s,
               statement: \"s\", kind: PROCESS, capturedOn: \"2024-01-01\", visibility: $v }) { id } }",
            json!({ "s": slug, "v": visibility }),
        )
        .await;
        own.data(
            "mutation($from: ID!) { recordInfluence(input: { from: $from, to: \"other:value:v\", how: SHIFTED_MINDSET,
               systemCondition: MENTAL_MODELS, on: \"2024-02-01\" }) { kind } }",
            json!({ "from": format!("own:learning:{slug}") }),
        )
        .await;
    }
    let query = "{ crossOrganisationInfluences { fromId }
                   provenance(id: \"other:value:v\")
                   impact(learning: \"own:learning:l-public\") { reached } }";
    for (name, caller) in CALLERS {
        let seen = client(&server, caller).data(query, json!({})).await;
        let mut from: Vec<String> =
            seen["crossOrganisationInfluences"].as_array().unwrap().iter().map(|e| text(&e["fromId"])).collect();
        from.sort();
        let private_too = sees(caller, "PRIVATE");
        let want: Vec<&str> = if private_too {
            vec!["own:learning:l-private", "own:learning:l-public"]
        } else {
            vec!["own:learning:l-public"]
        };
        assert_eq!(from, want, "{name}: crossOrganisationInfluences");
        let provenance = seen["provenance"].to_string();
        assert!(provenance.contains("own:learning:l-public"), "{name}: provenance");
        assert_eq!(provenance.contains("own:learning:l-private"), private_too, "{name}: provenance");
        assert_eq!(seen["impact"]["reached"], 1, "{name}: impact");
        // Impact of the hidden learning is refused exactly as for a missing one.
        let hidden = client(&server, caller)
            .gql("{ impact(learning: \"own:learning:l-private\") { reached } }", json!({}))
            .await;
        let want = if private_too { "OK" } else { "NOT_FOUND" };
        assert_eq!(outcome(&hidden), want, "{name}: impact of the hidden learning {hidden}");
    }
}
