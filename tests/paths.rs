//! `paths` over a real server: the simple paths between two nodes, checked
//! against an independent enumeration over the seed file; `first`, `maxDepth`,
//! `via` and direction; the weakest link of each path; the errors.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{TestServer, create_acme as create, temp_dir, text};
use serde_json::{Value, json};

const FROM: &str = "kc:learning:right-risk-review-makes-risk-discussable";
const TO: &str = "kc:principle:take-the-right-risks";

const PATHS: &str = "query($from: ID!, $to: ID!, $direction: TraceDirection!, $maxDepth: Int, \
    $via: [RelationshipKind!], $first: Int!) {
  paths(from: $from, to: $to, direction: $direction, maxDepth: $maxDepth, via: $via, first: $first) {
    length
    nodes { id }
    edges { kind from { id } to { id } strength assertion }
    weakestLink { strength assertion speculative }
  }
}";

type Key = (String, String, String);

fn key(kind: &str, from: &str, to: &str) -> Key {
    (kind.to_owned(), from.to_owned(), to.to_owned())
}

fn relationships() -> Vec<Value> {
    let file: Value = serde_json::from_str(include_str!("../seed/king-county.json")).expect("the seed is JSON");
    file["relationships"].as_array().unwrap().clone()
}

/// What the oracle enumeration walks over.
struct Enumeration<'a> {
    rels: &'a [Value],
    to: &'a str,
    direction: &'a str,
    via: &'a [&'a str],
    max: usize,
    found: BTreeSet<Vec<Key>>,
}

impl Enumeration<'_> {
    fn walk(&mut self, nodes: &mut Vec<String>, steps: &mut Vec<Key>) {
        let at = nodes.last().unwrap().clone();
        if at == self.to {
            self.found.insert(steps.clone());
            return;
        }
        if steps.len() == self.max {
            return;
        }
        for r in self.rels {
            let (kind, f, t) = (r["kind"].as_str().unwrap(), r["from"].as_str().unwrap(), r["to"].as_str().unwrap());
            if !self.via.is_empty() && !self.via.contains(&kind) {
                continue;
            }
            let mut nexts = Vec::new();
            if self.direction != "UPSTREAM" && f == at {
                nexts.push(t);
            }
            if self.direction != "DOWNSTREAM" && t == at {
                nexts.push(f);
            }
            for next in nexts {
                if nodes.iter().any(|n| n == next) {
                    continue;
                }
                nodes.push(next.to_owned());
                steps.push(key(kind, f, t));
                self.walk(nodes, steps);
                steps.pop();
                nodes.pop();
            }
        }
    }
}

/// Every simple path from `from` to `to` of at most `max` steps, each as its relationships in order.
fn all_paths(rels: &[Value], from: &str, to: &str, direction: &str, via: &[&str], max: usize) -> BTreeSet<Vec<Key>> {
    let mut e = Enumeration { rels, to, direction, via, max, found: BTreeSet::new() };
    e.walk(&mut vec![from.to_owned()], &mut Vec::new());
    e.found
}

fn vars(from: &str, to: &str, direction: &str, max_depth: Option<i64>, via: &[&str], first: i64) -> Value {
    json!({ "from": from, "to": to, "direction": direction, "maxDepth": max_depth,
        "via": if via.is_empty() { Value::Null } else { json!(via) }, "first": first })
}

async fn paths(server: &TestServer, vars: Value) -> Vec<Value> {
    server.data(PATHS, vars).await["paths"].as_array().unwrap().clone()
}

fn steps_of(path: &Value) -> Vec<Key> {
    path["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| key(e["kind"].as_str().unwrap(), e["from"]["id"].as_str().unwrap(), e["to"]["id"].as_str().unwrap()))
        .collect()
}

/// Each path starts and ends right, is as long as it says, joins its nodes
/// with its relationships the way asked, repeats no node; the list is shortest first.
fn assert_well_formed(paths: &[Value], from: &str, to: &str, direction: &str) {
    let lengths: Vec<u64> = paths.iter().map(|p| p["length"].as_u64().unwrap()).collect();
    assert!(lengths.windows(2).all(|w| w[0] <= w[1]), "shortest first: {lengths:?}");
    let mut seen = BTreeSet::new();
    for path in paths {
        let nodes: Vec<String> = path["nodes"].as_array().unwrap().iter().map(|n| text(&n["id"])).collect();
        let steps = steps_of(path);
        assert!(seen.insert(steps.clone()), "a path is listed twice: {path:#}");
        assert_eq!(path["length"].as_u64().unwrap() as usize, steps.len());
        assert!(!steps.is_empty());
        assert_eq!(nodes.len(), steps.len() + 1, "{path:#}");
        assert_eq!(nodes.first().map(String::as_str), Some(from));
        assert_eq!(nodes.last().map(String::as_str), Some(to));
        let distinct: BTreeSet<&String> = nodes.iter().collect();
        assert_eq!(distinct.len(), nodes.len(), "no node repeats: {nodes:?}");
        for (i, (kind, f, t)) in steps.iter().enumerate() {
            let forward = f == &nodes[i] && t == &nodes[i + 1];
            let backward = t == &nodes[i] && f == &nodes[i + 1];
            let ok = match direction {
                "DOWNSTREAM" => forward,
                "UPSTREAM" => backward,
                _ => forward || backward,
            };
            assert!(ok, "step {i} {kind} {f}→{t} does not join {} to {} {direction}", nodes[i], nodes[i + 1]);
        }
    }
}

const STRENGTHS: [&str; 4] = ["STRONG", "MODERATE", "WEAK", "UNTESTED"];
const ASSERTIONS: [&str; 3] = ["SOURCED", "INFERRED", "HYPOTHETICAL"];

fn rank(words: &[&str], word: &Value) -> usize {
    let word = word.as_str().unwrap_or_else(|| panic!("not a word: {word}"));
    words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("unknown word {word}"))
}

/// The weakest link, worked out from the path's own relationships.
fn expected_weakest(path: &Value) -> Value {
    let edges = path["edges"].as_array().unwrap();
    let strength = edges
        .iter()
        .filter(|e| e["kind"] == "INFLUENCED")
        .map(|e| rank(&STRENGTHS, &e["strength"]))
        .max()
        .map_or(Value::Null, |r| json!(STRENGTHS[r]));
    let assertion = edges.iter().map(|e| rank(&ASSERTIONS, &e["assertion"])).max().unwrap();
    json!({ "strength": strength, "assertion": ASSERTIONS[assertion], "speculative": assertion > 0 })
}

// ---------------------------------------------------------------------------
// The King County seed
// ---------------------------------------------------------------------------

#[tokio::test]
async fn paths_are_the_seeds_simple_paths_shortest_first() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let expected = all_paths(&relationships(), FROM, TO, "DOWNSTREAM", &[], 6);
    assert!(expected.len() > 5 && expected.len() < 100, "the oracle found {} paths", expected.len());
    let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &[], 100)).await;
    assert_well_formed(&found, FROM, TO, "DOWNSTREAM");
    let got: BTreeSet<Vec<Key>> = found.iter().map(steps_of).collect();
    assert_eq!(got, expected, "the default maxDepth (6) gives every simple path up to 6 steps");
    // The direct influence comes first.
    assert_eq!(steps_of(&found[0]), vec![key("INFLUENCED", FROM, TO)]);
    // The chain through the experiment, its learning and embrace-uncertainty is among them.
    let chain = vec![
        key("INFLUENCED", FROM, "kc:experiment:fail-forward-retrospectives"),
        key("PRODUCED", "kc:experiment:fail-forward-retrospectives", "kc:learning:small-safe-failures-build-tolerance"),
        key(
            "INFLUENCED",
            "kc:learning:small-safe-failures-build-tolerance",
            "kc:learning:embrace-uncertainty-and-failure",
        ),
        key("INFLUENCED", "kc:learning:embrace-uncertainty-and-failure", TO),
    ];
    assert!(got.contains(&chain));
}

#[tokio::test]
async fn first_limits_to_the_shortest() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let expected = all_paths(&relationships(), FROM, TO, "DOWNSTREAM", &[], 6);
    let mut lengths: Vec<usize> = expected.iter().map(Vec::len).collect();
    lengths.sort();
    for first in [1, 2, 3, 5] {
        let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &[], first)).await;
        assert_eq!(found.len(), first as usize, "first {first}");
        assert_well_formed(&found, FROM, TO, "DOWNSTREAM");
        let got: Vec<usize> = found.iter().map(|p| steps_of(p).len()).collect();
        assert_eq!(got, lengths[..first as usize], "first {first} gives the {first} shortest");
        assert!(found.iter().all(|p| expected.contains(&steps_of(p))));
    }
    // The default is 10.
    let query = "query($from: ID!, $to: ID!) { paths(from: $from, to: $to) { length } }";
    let found = server.data(query, json!({ "from": FROM, "to": TO })).await;
    assert_eq!(found["paths"].as_array().unwrap().len(), expected.len().min(10));
}

#[tokio::test]
async fn max_depth_and_via_narrow_the_paths() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let rels = relationships();
    for depth in [1, 2, 3, 10] {
        let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", Some(depth), &[], 100)).await;
        assert_well_formed(&found, FROM, TO, "DOWNSTREAM");
        let got: BTreeSet<Vec<Key>> = found.iter().map(steps_of).collect();
        assert_eq!(got, all_paths(&rels, FROM, TO, "DOWNSTREAM", &[], depth as usize), "maxDepth {depth}");
    }
    let via = ["INFLUENCED", "PRODUCED"];
    let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &via, 100)).await;
    let got: BTreeSet<Vec<Key>> = found.iter().map(steps_of).collect();
    let expected = all_paths(&rels, FROM, TO, "DOWNSTREAM", &via, 6);
    assert_eq!(got, expected);
    let mut lengths: Vec<usize> = expected.iter().map(Vec::len).collect();
    lengths.sort();
    assert_eq!(lengths, vec![1, 4], "the direct influence and the chain");
    for path in &found {
        for (kind, ..) in steps_of(path) {
            assert!(via.contains(&kind.as_str()), "{kind}");
        }
    }
}

#[tokio::test]
async fn upstream_paths_are_the_downstream_ones_read_backwards() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let down = paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &[], 100)).await;
    let up = paths(&server, vars(TO, FROM, "UPSTREAM", None, &[], 100)).await;
    assert_well_formed(&up, TO, FROM, "UPSTREAM");
    let reversed: BTreeSet<Vec<Key>> = down
        .iter()
        .map(|p| {
            let mut steps = steps_of(p);
            steps.reverse();
            steps
        })
        .collect();
    assert_eq!(up.iter().map(steps_of).collect::<BTreeSet<_>>(), reversed);
    // Downstream from the principle back to the learning there is none.
    assert!(paths(&server, vars(TO, FROM, "DOWNSTREAM", None, &[], 100)).await.is_empty());
}

#[tokio::test]
async fn both_ways_paths_match_the_oracle() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let via = ["INFLUENCED", "PRODUCED"];
    let expected = all_paths(&relationships(), FROM, TO, "BOTH", &via, 4);
    assert!(expected.len() < 100);
    let found = paths(&server, vars(FROM, TO, "BOTH", Some(4), &via, 100)).await;
    assert_well_formed(&found, FROM, TO, "BOTH");
    assert_eq!(found.iter().map(steps_of).collect::<BTreeSet<_>>(), expected);
}

#[tokio::test]
async fn weakest_link_is_the_weakest_influence_and_least_certain_step() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let rels = relationships();
    let stated: BTreeMap<Key, &Value> = rels
        .iter()
        .map(|r| (key(r["kind"].as_str().unwrap(), r["from"].as_str().unwrap(), r["to"].as_str().unwrap()), r))
        .collect();
    let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &[], 100)).await;
    assert!(found.len() > 5);
    let mut speculative = 0;
    for path in &found {
        // The relationships are the seed's, with its strength and assertion.
        for edge in path["edges"].as_array().unwrap() {
            let k = key(
                edge["kind"].as_str().unwrap(),
                edge["from"]["id"].as_str().unwrap(),
                edge["to"]["id"].as_str().unwrap(),
            );
            let r = stated[&k];
            assert_eq!(edge["assertion"], r["assertion"], "{k:?}");
            assert_eq!(edge["strength"], r.get("strength").cloned().unwrap_or(Value::Null), "{k:?}");
        }
        assert_eq!(path["weakestLink"], expected_weakest(path), "{path:#}");
        speculative += usize::from(path["weakestLink"]["speculative"] == true);
    }
    // In this seed every way from the learning to the principle leans on something unsourced.
    assert_eq!(speculative, found.len());
    // The direct one: a WEAK, INFERRED influence.
    assert_eq!(found[0]["weakestLink"], json!({ "strength": "WEAK", "assertion": "INFERRED", "speculative": true }));
}

// ---------------------------------------------------------------------------
// Graphs built through the API
// ---------------------------------------------------------------------------

async fn link(server: &TestServer, from: &str, kind: &str, to: &str, assertion: &str) {
    let query = "mutation($i: LinkInput!) { link(input: $i) { kind } }";
    server.data(query, json!({ "i": { "from": from, "kind": kind, "to": to, "assertion": assertion } })).await;
}

async fn influence(server: &TestServer, from: &str, to: &str, strength: &str, assertion: &str, sources: &[&str]) {
    let query = "mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind } }";
    let input = json!({ "from": from, "to": to, "how": "REVISED_PRINCIPLE", "systemCondition": "POLICIES",
        "on": "2022-06-01", "strength": strength, "assertion": assertion, "sources": sources });
    server.data(query, json!({ "i": input })).await;
}

struct Chain {
    source: String,
    experiment: String,
    learning: String,
    principle: String,
    value: String,
}

/// experiment -PRODUCED-> learning -INFLUENCED(STRONG)-> principle -UPHOLDS-> value, all SOURCED.
async fn sourced_chain(server: &TestServer) -> Chain {
    let org = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";
    server.data(org, json!({ "i": { "organisation": "acme", "title": "Acme" } })).await;
    let chain = Chain {
        source: create(server, "createSource", json!({ "title": "Annual report", "url": "https://example.org/r" }))
            .await,
        experiment: create(server, "createExperiment", json!({ "title": "Pilot", "hypothesis": "It helps." })).await,
        learning: create(
            server,
            "createLearning",
            json!({ "title": "Pilots teach", "statement": "They do.", "kind": "PROCESS", "capturedOn": "2022-01-01" }),
        )
        .await,
        principle: create(server, "createPrinciple", json!({ "title": "Try first", "statement": "Try." })).await,
        value: create(server, "createValue", json!({ "title": "Learning" })).await,
    };
    link(server, &chain.experiment, "PRODUCED", &chain.learning, "SOURCED").await;
    influence(server, &chain.learning, &chain.principle, "STRONG", "SOURCED", &[&chain.source]).await;
    link(server, &chain.principle, "UPHOLDS", &chain.value, "SOURCED").await;
    chain
}

#[tokio::test]
async fn an_all_sourced_chain_is_not_speculative() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let c = sourced_chain(&server).await;
    let found = paths(&server, vars(&c.experiment, &c.value, "DOWNSTREAM", None, &[], 10)).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_well_formed(&found, &c.experiment, &c.value, "DOWNSTREAM");
    assert_eq!(found[0]["length"], 3);
    assert_eq!(found[0]["weakestLink"], json!({ "strength": "STRONG", "assertion": "SOURCED", "speculative": false }));

    // A path with no influence has no strength to be weak in.
    let found = paths(&server, vars(&c.principle, &c.value, "DOWNSTREAM", None, &[], 10)).await;
    assert_eq!(found[0]["weakestLink"], json!({ "strength": null, "assertion": "SOURCED", "speculative": false }));

    // One hypothetical step beside the chain makes that way speculative, and only that way.
    link(&server, &c.experiment, "GUIDED_BY", &c.principle, "HYPOTHETICAL").await;
    let found = paths(&server, vars(&c.experiment, &c.value, "DOWNSTREAM", None, &[], 10)).await;
    assert_well_formed(&found, &c.experiment, &c.value, "DOWNSTREAM");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["length"], 2);
    assert_eq!(
        found[0]["weakestLink"],
        json!({ "strength": null, "assertion": "HYPOTHETICAL", "speculative": true }),
        "{:#}",
        found[0]
    );
    assert_eq!(found[1]["weakestLink"], json!({ "strength": "STRONG", "assertion": "SOURCED", "speculative": false }));

    // An INFERRED, WEAK influence in a longer chain sets both.
    let learning2 = create(
        &server,
        "createLearning",
        json!({ "title": "Pilots need time", "statement": "Yes.", "kind": "PROCESS", "capturedOn": "2022-01-01" }),
    )
    .await;
    let inferred = "mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind } }";
    let input = json!({ "from": c.learning, "to": learning2, "how": "SHIFTED_MINDSET", "systemCondition": "MENTAL_MODELS",
        "on": "2022-02-01", "strength": "WEAK" });
    server.data(inferred, json!({ "i": input })).await;
    influence(&server, &learning2, &c.principle, "MODERATE", "SOURCED", &[&c.source]).await;
    let found = paths(&server, vars(&c.learning, &c.principle, "DOWNSTREAM", None, &[], 10)).await;
    assert_eq!(found.len(), 2);
    assert_eq!(found[0]["weakestLink"], json!({ "strength": "STRONG", "assertion": "SOURCED", "speculative": false }));
    assert_eq!(found[1]["weakestLink"], json!({ "strength": "WEAK", "assertion": "INFERRED", "speculative": true }));
}

#[tokio::test]
async fn a_cycle_gives_only_simple_paths() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let c = sourced_chain(&server).await;
    let b = create(
        &server,
        "createLearning",
        json!({ "title": "Loops", "statement": "Round.", "kind": "MINDSET", "capturedOn": "2022-01-01" }),
    )
    .await;
    influence(&server, &c.learning, &b, "WEAK", "INFERRED", &[]).await;
    influence(&server, &b, &c.learning, "WEAK", "INFERRED", &[]).await;
    let found = paths(&server, vars(&c.learning, &b, "DOWNSTREAM", Some(10), &[], 100)).await;
    assert_eq!(found.iter().map(steps_of).collect::<Vec<_>>(), vec![vec![key("INFLUENCED", &c.learning, &b)]]);
    // Both ways, each of the two relationships is a path of one step.
    let found = paths(&server, vars(&c.learning, &b, "BOTH", Some(10), &[], 100)).await;
    assert_well_formed(&found, &c.learning, &b, "BOTH");
    assert_eq!(
        found.iter().map(steps_of).collect::<BTreeSet<_>>(),
        BTreeSet::from([vec![key("INFLUENCED", &c.learning, &b)], vec![key("INFLUENCED", &b, &c.learning)]])
    );
}

// ---------------------------------------------------------------------------
// No path, and errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn no_path_is_an_empty_list() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    // Values only receive relationships: nothing runs downstream from one.
    let found = paths(&server, vars("kc:value:equity", TO, "DOWNSTREAM", Some(10), &[], 10)).await;
    assert!(found.is_empty());
    // A path longer than maxDepth is none.
    let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", Some(3), &["INFLUENCED", "PRODUCED"], 10)).await;
    assert_eq!(found.len(), 1, "only the direct influence within 3 steps");
    let found = paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &["CITES"], 10)).await;
    assert!(found.is_empty());
    // A node on its own: no path from it to itself.
    let body = server.gql(PATHS, vars(FROM, FROM, "DOWNSTREAM", None, &[], 10)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
    assert_eq!(body["data"]["paths"], json!([]));
}

#[tokio::test]
async fn unknown_nodes_are_not_found_and_bad_arguments_bad_input() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let missing = "kc:principle:no-such-principle";
    assert_eq!(server.error_code(PATHS, vars(FROM, missing, "DOWNSTREAM", None, &[], 10)).await, "NOT_FOUND");
    assert_eq!(server.error_code(PATHS, vars(missing, TO, "DOWNSTREAM", None, &[], 10)).await, "NOT_FOUND");
    for first in [0, 101, -1] {
        let code = server.error_code(PATHS, vars(FROM, TO, "DOWNSTREAM", None, &[], first)).await;
        assert_eq!(code, "BAD_USER_INPUT", "first {first}");
    }
    for first in [1, 100] {
        paths(&server, vars(FROM, TO, "DOWNSTREAM", None, &[], first)).await;
    }
    for depth in [0, 11] {
        let code = server.error_code(PATHS, vars(FROM, TO, "DOWNSTREAM", Some(depth), &[], 10)).await;
        assert_eq!(code, "BAD_USER_INPUT", "maxDepth {depth}");
    }
    for bad in ["nonsense", "kc:gadget:x"] {
        assert_eq!(server.error_code(PATHS, vars(bad, TO, "DOWNSTREAM", None, &[], 10)).await, "BAD_USER_INPUT");
        assert_eq!(server.error_code(PATHS, vars(FROM, bad, "DOWNSTREAM", None, &[], 10)).await, "BAD_USER_INPUT");
    }
}
