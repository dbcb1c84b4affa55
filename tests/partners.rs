//! Two governments' instances, each the other's partner: King County's
//! (`seed/king-county.json` with `seed/kc-links-to-northwind.json`) and the
//! fictional Northwind County's (`seed/northwind.json` with
//! `seed/northwind-links.json`), each the real binary on 127.0.0.1 with a
//! token the other issued. A trace crosses from one into the other and back;
//! Northwind's PRIVATE nodes never reach King County; with Northwind stopped,
//! the same trace returns King County's part and names the partner it could
//! not reach.

mod common;

use std::path::Path;

use common::{pvgraph, serve_binary_at, temp_dir, test_jwt, text};
use serde_json::{Value, json};

/// A learning of King County whose influence on a Northwind experiment leads, through Northwind's
/// own graph, back to a King County learning.
const START: &str = "kc:learning:time-and-space-for-reflection";
const NORTHWIND_EXPERIMENT: &str = "northwind:experiment:reflection-fridays";
const NORTHWIND_LEARNING: &str = "northwind:learning:reflection-needs-shift-cover";
const BACK_IN_KC: &str = "kc:learning:reflection-needs-leader-sponsorship";
/// Produced by the Northwind experiment above, and PRIVATE to Northwind.
const PRIVATE: &str = "staff-survey-raw-findings";
/// A Northwind experiment shared with partners only (PARTNERS).
const PARTNERS_ONLY: &str = "northwind:experiment:risk-review-pilot";

const TRACE: &str = r#"query($from: ID!, $depth: Int) {
  trace(from: $from, direction: DOWNSTREAM, maxDepth: $depth) {
    nodes { depth node { id title visibility organisation { id } } }
    edges { kind fromId toId }
    truncated truncation
    unreachable { organisation reason ids message }
  }
}"#;

struct Instance {
    child: Option<tokio::process::Child>,
    url: String,
}

fn seed(name: &str) -> String {
    format!("{}/seed/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A store loaded with `files`, in order.
async fn store(db: &Path, files: &[&str]) -> String {
    store_at(&format!("sqlite://{}", db.display()), files).await
}

async fn store_at(location: &str, files: &[&str]) -> String {
    let location = location.to_owned();
    for file in files {
        pvgraph(&["import", &seed(file), "--store", &location]).await;
    }
    location
}

/// A token issued by the instance at `store` to a partner organisation, as its operator would.
async fn issue(store: &str, organisation: &str) -> String {
    let out = pvgraph(&["token", "create", "--organisation", organisation, "--role", "viewer", "--store", store]).await;
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

struct Pair {
    kc: Instance,
    northwind: Instance,
    _dir: tempfile::TempDir,
    northwind_store: String,
    /// This test's turn on the Neo4j server, when King County's instance runs on it.
    _turn: Option<tokio::sync::MutexGuard<'static, ()>>,
}

/// King County's store: a SQLite file, or the emptied Neo4j graph when the suite runs on Neo4j
/// (Northwind's then stays on SQLite: one Neo4j server holds one graph here).
async fn king_county(db: &Path, files: &[&str]) -> (String, Option<tokio::sync::MutexGuard<'static, ()>>) {
    match common::neo4j_uri() {
        None => (store(db, files).await, None),
        Some(uri) => {
            let (_, turn) = common::open_store(db).await;
            (store_at(&uri, files).await, turn)
        }
    }
}

/// Both instances, running, each the other's partner.
async fn pair() -> Pair {
    let dir = temp_dir();
    let kc_db = dir.path().join("kc.db");
    let nw_db = dir.path().join("northwind.db");
    let (kc_store, turn) = king_county(&kc_db, &["king-county.json", "kc-links-to-northwind.json"]).await;
    let nw_store = store(&nw_db, &["northwind.json", "northwind-links.json"]).await;
    let (kc_address, nw_address) = (free_address(), free_address());
    // Each operator issues a token to the other and hands it over.
    let for_kc = issue(&nw_store, "kc").await;
    let for_northwind = issue(&kc_store, "northwind").await;
    let partner = |org: &str, address: &str| format!("{org}=http://{address}/graphql");
    let (kc, kc_url) = serve_binary_at(
        &kc_db,
        &kc_store,
        &kc_address,
        &["--no-seed", "--partner", &partner("northwind", &nw_address), "--partner-timeout", "2"],
        &[("PVGRAPH_PARTNER_TOKEN_NORTHWIND".into(), for_kc)],
    )
    .await;
    let (nw, nw_url) = serve_binary_at(
        &nw_db,
        &nw_store,
        &nw_address,
        &["--no-seed", "--partner", &partner("kc", &kc_address), "--partner-timeout", "2"],
        &[("PVGRAPH_PARTNER_TOKEN_KC".into(), for_northwind)],
    )
    .await;
    Pair {
        kc: Instance { child: Some(kc), url: kc_url },
        northwind: Instance { child: Some(nw), url: nw_url },
        _dir: dir,
        northwind_store: nw_store,
        _turn: turn,
    }
}

/// Posts a query, as a member of `organisation` when given, and returns the whole response.
async fn ask(url: &str, member: Option<&str>, query: &str, variables: Value) -> Value {
    let mut request = reqwest::Client::new().post(format!("{url}/graphql"));
    if let Some(organisation) = member {
        request = request.bearer_auth(test_jwt(organisation, "editor"));
    }
    let response = request.json(&json!({ "query": query, "variables": variables })).send().await.unwrap();
    response.json().await.unwrap()
}

fn ids(trace: &Value) -> Vec<String> {
    trace["nodes"].as_array().unwrap().iter().map(|n| text(&n["node"]["id"])).collect()
}

fn depth_of(trace: &Value, id: &str) -> Option<i64> {
    trace["nodes"].as_array().unwrap().iter().find(|n| n["node"]["id"] == id).map(|n| n["depth"].as_i64().unwrap())
}

#[tokio::test]
async fn a_trace_crosses_into_the_partner_and_back_with_fields_from_both_sides() {
    let pair = pair().await;
    let answer = ask(&pair.kc.url, Some("kc"), TRACE, json!({ "from": START, "depth": 3 })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let trace = &answer["data"]["trace"];
    assert_eq!(trace["unreachable"], json!([]), "{trace}");
    // Into Northwind by King County's own claim, on through Northwind's graph, and back into King
    // County by a claim Northwind holds.
    assert_eq!(depth_of(trace, NORTHWIND_EXPERIMENT), Some(1), "{trace}");
    assert_eq!(depth_of(trace, NORTHWIND_LEARNING), Some(2), "{trace}");
    // King County reaches that learning by its own graph too, sooner; the crossing shows in the edges.
    assert!(depth_of(trace, BACK_IN_KC).is_some(), "{trace}");
    let experiment = trace["nodes"].as_array().unwrap().iter().find(|n| n["node"]["id"] == NORTHWIND_EXPERIMENT);
    let experiment = &experiment.unwrap()["node"];
    assert_eq!(experiment["organisation"]["id"], "northwind:organisation:northwind", "{experiment}");
    assert!(text(&experiment["title"]).to_lowercase().contains("reflection"), "{experiment}");
    let edges = trace["edges"].as_array().unwrap();
    let has = |kind: &str, from: &str, to: &str| {
        edges.iter().any(|e| e["kind"] == kind && e["fromId"] == from && e["toId"] == to)
    };
    assert!(has("INFLUENCED", START, NORTHWIND_EXPERIMENT), "King County's claim: {trace}");
    assert!(has("PRODUCED", NORTHWIND_EXPERIMENT, NORTHWIND_LEARNING), "Northwind's own: {trace}");
    assert!(has("INFLUENCED", NORTHWIND_LEARNING, BACK_IN_KC), "Northwind's claim: {trace}");

    // The README's example, as an analyst pastes it into King County's GraphiQL.
    let readme = include_str!("../README.md")
        .split("```graphql\n")
        .map(|block| block.split("```").next().unwrap())
        .find(|block| block.contains("unreachable {") && block.contains("trace(from:"))
        .expect("the README shows the cross-government trace");
    let answer = ask(&pair.kc.url, None, readme, json!({})).await;
    let trace = &answer["data"]["trace"];
    assert_eq!(depth_of(trace, NORTHWIND_EXPERIMENT), Some(1), "{answer}");
    assert_eq!(depth_of(trace, NORTHWIND_LEARNING), Some(2), "{answer}");
    let titles = trace["nodes"].as_array().unwrap().iter().map(|n| text(&n["node"]["organisation"]["title"]));
    assert!(titles.clone().any(|t| t.contains("Northwind")) && titles.clone().any(|t| t.contains("King County")));

    // And a path search finds the way through Northwind among King County's own.
    let paths = r#"query($from: ID!, $to: ID!) { paths(from: $from, to: $to, maxDepth: 3, via: [INFLUENCED, PRODUCED]) {
        nodes { id } } }"#;
    let answer = ask(&pair.kc.url, Some("kc"), paths, json!({ "from": START, "to": BACK_IN_KC })).await;
    let found: Vec<Vec<String>> = answer["data"]["paths"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"))
        .iter()
        .map(|p| p["nodes"].as_array().unwrap().iter().map(|n| text(&n["id"])).collect())
        .collect();
    let across = vec![START.to_owned(), NORTHWIND_EXPERIMENT.into(), NORTHWIND_LEARNING.into(), BACK_IN_KC.into()];
    assert!(found.contains(&across), "{found:?}");
    assert!(found.iter().any(|p| p.iter().all(|id| id.starts_with("kc:"))), "{found:?}");

    // The same relationships answer relationship fields: King County's learning shows what
    // influenced it, though only Northwind holds that claim.
    let query = r#"query($id: ID!) { node(id: $id) { ... on Learning { influencedBy { totalCount edges {
        how node { id title } } } } } }"#;
    let answer = ask(&pair.kc.url, None, query, json!({ "id": BACK_IN_KC })).await;
    let influences = &answer["data"]["node"]["influencedBy"];
    assert!(influences["edges"].as_array().unwrap().iter().any(|e| e["node"]["id"] == NORTHWIND_LEARNING), "{answer}");
}

#[tokio::test]
async fn a_node_the_partner_keeps_private_never_appears_and_shared_ones_follow_the_callers_rights() {
    let pair = pair().await;
    // Northwind's own members see its PRIVATE learning on Northwind's instance …
    let own =
        ask(&pair.northwind.url, Some("northwind"), TRACE, json!({ "from": NORTHWIND_EXPERIMENT, "depth": 1 })).await;
    assert!(own.to_string().contains(PRIVATE), "{own}");
    // … but no answer King County gives mentions it, to its members or to anyone else.
    for member in [Some("kc"), None] {
        let trace = ask(&pair.kc.url, member, TRACE, json!({ "from": START, "depth": 4 })).await;
        assert!(trace.get("errors").is_none(), "{trace}");
        assert!(!trace.to_string().contains(PRIVATE), "{member:?}: {trace}");
        let node = ask(
            &pair.kc.url,
            member,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": format!("northwind:learning:{PRIVATE}") }),
        )
        .await;
        assert_eq!(node["data"]["node"], Value::Null, "{node}");
        assert!(!node.to_string().contains("PARTNER_"), "a node not shared is simply not there: {node}");
    }
    // A PARTNERS node is shared with King County: its members see it, anonymous readers do not.
    let from = "kc:learning:right-risk-review-makes-risk-discussable";
    let member = ask(&pair.kc.url, Some("kc"), TRACE, json!({ "from": from, "depth": 1 })).await;
    assert!(ids(&member["data"]["trace"]).contains(&PARTNERS_ONLY.to_owned()), "{member}");
    let anonymous = ask(&pair.kc.url, None, TRACE, json!({ "from": from, "depth": 1 })).await;
    assert!(!anonymous.to_string().contains(PARTNERS_ONLY), "{anonymous}");
}

#[tokio::test]
async fn with_the_partner_stopped_the_trace_returns_the_local_part_and_names_the_partner() {
    let mut pair = pair().await;
    let whole = ask(&pair.kc.url, Some("kc"), TRACE, json!({ "from": START, "depth": 3 })).await;
    let whole = ids(&whole["data"]["trace"]);
    assert!(whole.contains(&NORTHWIND_EXPERIMENT.to_owned()));

    let mut northwind = pair.northwind.child.take().unwrap();
    northwind.kill().await.unwrap();
    northwind.wait().await.unwrap();

    let answer = ask(&pair.kc.url, Some("kc"), TRACE, json!({ "from": START, "depth": 3 })).await;
    assert!(answer.get("errors").is_none(), "a partner down fails nothing whole: {answer}");
    let trace = &answer["data"]["trace"];
    let reached = ids(trace);
    assert_eq!(reached[0], START);
    // Every node this instance holds that the whole trace reached by a way that stays here.
    let held_here = |id: &&String| !id.starts_with("northwind:");
    assert!(reached.iter().all(|id| held_here(&id)), "{trace}");
    let local: Vec<&String> = whole.iter().filter(held_here).collect();
    assert!(local.len() > 5);
    for id in &local {
        assert!(reached.contains(id), "{id} is this instance's own and still reached: {trace}");
    }
    assert_eq!(trace["truncated"], true);
    let unreachable = trace["unreachable"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{trace}");
    assert_eq!(unreachable[0]["organisation"], "northwind");
    assert_eq!(unreachable[0]["reason"], "UNAVAILABLE", "{trace}");
    assert!(unreachable[0]["ids"].as_array().unwrap().iter().any(|id| id == START || id == NORTHWIND_EXPERIMENT));
    assert!(text(&trace["truncation"][0]).starts_with("northwind:"), "{trace}");
    // The response says it too, for clients that read only extensions.
    assert_eq!(answer["extensions"]["unreachable"][0]["organisation"], "northwind", "{answer}");

    // A field that is nothing but the partner's node is an error that names the partner.
    let node = ask(
        &pair.kc.url,
        Some("kc"),
        "query($id: ID!) { node(id: $id) { id } }",
        json!({ "id": NORTHWIND_EXPERIMENT }),
    )
    .await;
    assert_eq!(node["errors"][0]["extensions"]["code"], "PARTNER_UNAVAILABLE", "{node}");
    assert_eq!(node["errors"][0]["extensions"]["partner"], "northwind", "{node}");

    // A change that would point at the partner's node cannot be checked, so it is refused.
    let record = r#"mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind } }"#;
    let input = json!({ "from": "kc:learning:embrace-uncertainty-and-failure", "to": "northwind:principle:learn-in-public",
        "how": "REPLICATED_ELSEWHERE", "systemCondition": "MENTAL_MODELS", "on": "2024-05-01" });
    let refused = ask(&pair.kc.url, Some("kc"), record, json!({ "i": input })).await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "PARTNER_UNAVAILABLE", "{refused}");
    drop(pair.kc.child.take());
}

#[tokio::test]
async fn links_to_partner_nodes_are_checked_with_the_partner_and_a_revoked_token_is_named() {
    let pair = pair().await;
    let record = r#"mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind fromId toId } }"#;
    let input = |to: &str| {
        json!({ "i": { "from": "kc:learning:embrace-uncertainty-and-failure", "to": to,
        "how": "REPLICATED_ELSEWHERE", "systemCondition": "MENTAL_MODELS", "on": "2024-05-01" } })
    };
    let linked = ask(&pair.kc.url, Some("kc"), record, input("northwind:principle:learn-in-public")).await;
    assert_eq!(linked["data"]["recordInfluence"]["toId"], "northwind:principle:learn-in-public", "{linked}");
    // A node the partner does not share is, to King County, not there.
    let hidden = ask(&pair.kc.url, Some("kc"), record, input(&format!("northwind:learning:{PRIVATE}"))).await;
    assert_eq!(hidden["errors"][0]["extensions"]["code"], "NOT_FOUND", "{hidden}");
    // Nor is a node of an organisation that is no partner.
    let stranger = ask(&pair.kc.url, Some("kc"), record, input("lakeshore:principle:anything")).await;
    assert_eq!(stranger["errors"][0]["extensions"]["code"], "NOT_FOUND", "{stranger}");

    // Northwind's operator revokes the token it issued to King County.
    let list = pvgraph(&["token", "list", "--store", &pair.northwind_store]).await;
    let list = String::from_utf8(list.stdout).unwrap();
    let id = list.lines().find(|l| l.contains("\tkc\t")).unwrap().split('\t').next().unwrap().to_owned();
    pvgraph(&["token", "revoke", &id, "--store", &pair.northwind_store]).await;
    let trace = ask(&pair.kc.url, Some("kc"), TRACE, json!({ "from": START, "depth": 2 })).await;
    let unreachable = &trace["data"]["trace"]["unreachable"];
    assert_eq!(unreachable[0]["reason"], "UNAUTHORISED", "{trace}");
    let _ = &pair.northwind.url;
}

#[tokio::test]
async fn a_partner_that_never_answers_costs_the_timeout_once_and_is_named() {
    let dir = temp_dir();
    let db = dir.path().join("kc.db");
    let (location, _turn) = king_county(&db, &["king-county.json", "kc-links-to-northwind.json"]).await;
    // A socket that accepts connections and never answers: a partner hanging on every request.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            open.push(socket);
        }
    });
    let (_kc, url) = serve_binary_at(
        &db,
        &location,
        "127.0.0.1:0",
        &["--no-seed", "--partner", &format!("northwind=http://{address}/graphql"), "--partner-timeout", "0.5"],
        &[("PVGRAPH_PARTNER_TOKEN_NORTHWIND".into(), "pvg_any_token".into())],
    )
    .await;
    let answer = ask(&url, Some("kc"), TRACE, json!({ "from": START, "depth": 3 })).await;
    assert!(answer.get("errors").is_none(), "{answer}");
    let trace = &answer["data"]["trace"];
    assert_eq!(ids(trace)[0], START);
    let unreachable = trace["unreachable"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{trace}");
    assert_eq!(unreachable[0]["reason"], "TIMEOUT", "{trace}");
    assert!(text(&unreachable[0]["message"]).contains("0.5 s"), "{trace}");
    // The partner that failed is not asked again within the request.
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    held.abort();
}

#[tokio::test]
async fn a_partner_is_refused_at_start_when_it_is_one_of_our_organisations_or_has_no_token() {
    let dir = temp_dir();
    let db = dir.path().join("kc.db");
    let location = store(&db, &["king-county.json"]).await;
    let serve = |partner: &'static str| {
        let location = location.clone();
        async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_pvgraph"))
                .args(["serve", "--listen", "127.0.0.1:0", "--no-seed", "--store", &location, "--partner", partner])
                .env_remove("PVGRAPH_PARTNER_TOKEN_KC")
                .env_remove("PVGRAPH_PARTNER_TOKEN_NORTHWIND")
                .env_remove("PVGRAPH_PARTNER_TOKEN_NORTHWIND_FILE")
                .output()
                .await
                .unwrap()
        }
    };
    for (partner, says) in [
        ("kc=http://127.0.0.1:9/graphql", "is an organisation of this instance"),
        ("northwind=http://127.0.0.1:9/graphql", "PVGRAPH_PARTNER_TOKEN_NORTHWIND"),
        ("northwind=http://partner.example/graphql", "https"),
    ] {
        let out = serve(partner).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{partner}");
        assert!(stderr.contains(says), "{partner}: {stderr}");
    }
}

/// A server that answers every partner call with one fixed status and body: a partner that
/// speaks another version of the protocol, lies about what it owns, or refuses.
async fn misbehaving_partner(status: u16, body: Value) -> String {
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move || {
            let body = body.clone();
            async move { (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(body)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("northwind=http://{address}/graphql")
}

#[tokio::test]
async fn a_partner_of_another_version_a_lying_one_and_a_refusing_one_are_each_named_for_what_they_did() {
    let info = |protocol: &str| json!({ "protocol": protocol, "organisations": ["northwind"] });
    let walk = |node: Value| json!({ "nodes": [node], "edges": [], "expanded": [], "truncation": [] });
    // A well-formed node record, of an organisation that is not the partner's.
    let northwind: Value = serde_json::from_str(include_str!("../seed/northwind.json")).unwrap();
    let mut foreign_node =
        northwind["nodes"].as_array().unwrap().iter().find(|n| n["id"] == NORTHWIND_EXPERIMENT).unwrap().clone();
    foreign_node["id"] = json!("lakeshore:experiment:reflection-fridays");
    for (status, body, reason) in [
        (
            200,
            json!({ "data": { "partnerInfo": info("pvgraph-partner/2"), "partnerWalk": walk(json!({})) } }),
            "INCOMPATIBLE",
        ),
        (
            200,
            json!({ "data": { "partnerInfo": info("pvgraph-partner/1"), "partnerWalk": walk(foreign_node) } }),
            "INVALID_ANSWER",
        ),
        (429, json!({ "errors": [{ "message": "slow down", "extensions": { "code": "RATE_LIMITED" } }] }), "REFUSED"),
        (
            200,
            json!({ "errors": [{ "message": "no such field", "extensions": { "code": "GRAPHQL_VALIDATION_FAILED" } }] }),
            "INCOMPATIBLE",
        ),
    ] {
        let dir = temp_dir();
        let db = dir.path().join("kc.db");
        let location = store(&db, &["king-county.json", "kc-links-to-northwind.json"]).await;
        let partner = misbehaving_partner(status, body).await;
        let env = [("PVGRAPH_PARTNER_TOKEN_NORTHWIND".to_owned(), "pvg_any_token".to_owned())];
        let (_kc, url) =
            serve_binary_at(&db, &location, "127.0.0.1:0", &["--no-seed", "--partner", &partner], &env).await;
        let answer = ask(&url, Some("kc"), TRACE, json!({ "from": START, "depth": 2 })).await;
        assert!(answer.get("errors").is_none(), "{answer}");
        let trace = &answer["data"]["trace"];
        assert_eq!(trace["unreachable"][0]["reason"], reason, "{trace}");
        // Nothing of what the partner sent is taken: not the node it may not vouch for, nor any other.
        assert!(ids(trace).iter().all(|id| !id.starts_with("northwind:") && !id.starts_with("lakeshore:")), "{trace}");
        if reason == "INVALID_ANSWER" {
            let message = text(&trace["unreachable"][0]["message"]);
            assert!(message.contains("lakeshore:experiment:reflection-fridays"), "{message}");
        }
    }
}
