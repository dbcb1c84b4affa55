//! `trace` over a real server: depths, relationships and paths checked against
//! an independent breadth-first walk over the seed file itself; cycles, the
//! depth cap, the `via`, `kinds` and `asOf` filters, and the errors.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use common::{Seed, TestServer, seed, temp_dir, text};
use serde_json::{Value, json};

const START: &str = "kc:learning:right-risk-review-makes-risk-discussable";
const RELAUNCH: &str = "kc:principle:relaunched-true-north-and-values-2023";

const TRACE: &str = "query($from: ID!, $direction: TraceDirection!, $maxDepth: Int, $via: [RelationshipKind!], \
    $kinds: [NodeKind!], $asOf: Date) {
  trace(from: $from, direction: $direction, maxDepth: $maxDepth, via: $via, kinds: $kinds, asOf: $asOf) {
    start { id }
    nodes { depth node { __typename id } }
    edges { kind from { id } to { id } assertion how systemCondition on contribution strength sources { id } }
    paths { length nodes { id } edges { kind from { id } to { id } } }
    truncated
    truncation
  }
}";

// ---------------------------------------------------------------------------
// The oracle: the seed file read as plain JSON, walked without pvgraph's code
// ---------------------------------------------------------------------------

type Key = (String, String, String);

fn key(kind: &str, from: &str, to: &str) -> Key {
    (kind.to_owned(), from.to_owned(), to.to_owned())
}

fn seed_key(r: &Value) -> Key {
    key(r["kind"].as_str().unwrap(), r["from"].as_str().unwrap(), r["to"].as_str().unwrap())
}

/// What the oracle walk may use: which way, which kinds, which day.
struct Walk<'a> {
    direction: &'a str,
    via: &'a [&'a str],
    as_of: Option<&'a str>,
}

impl Seed {
    fn visible_node(&self, id: &str, as_of: Option<&str>) -> bool {
        let created = &text(&self.nodes[id]["createdAt"])[..10];
        as_of.is_none_or(|day| created <= day)
    }

    fn visible(&self, r: &Value, walk: &Walk) -> bool {
        let kind_ok = walk.via.is_empty() || walk.via.contains(&r["kind"].as_str().unwrap());
        let date_ok = match (r["on"].as_str(), walk.as_of) {
            (Some(on), Some(day)) => on <= day,
            _ => true,
        };
        kind_ok && date_ok
    }

    /// The steps one may take from `id`: (the relationship, the other end).
    fn steps<'s>(&'s self, id: &str, walk: &Walk) -> Vec<(&'s Value, String)> {
        let mut out = Vec::new();
        for r in self.relationships.iter().filter(|r| self.visible(r, walk)) {
            let (from, to) = (text(&r["from"]), text(&r["to"]));
            if walk.direction != "UPSTREAM" && from == id {
                out.push((r, to.clone()));
            }
            if walk.direction != "DOWNSTREAM" && to == id {
                out.push((r, from));
            }
        }
        out
    }

    /// Every node reachable from `start` with its fewest steps, however far.
    fn depths(&self, start: &str, walk: &Walk) -> BTreeMap<String, u32> {
        let mut depth = BTreeMap::from([(start.to_owned(), 0)]);
        let mut queue = VecDeque::from([start.to_owned()]);
        while let Some(at) = queue.pop_front() {
            for (_, there) in self.steps(&at, walk) {
                if !depth.contains_key(&there) && self.visible_node(&there, walk.as_of) {
                    depth.insert(there.clone(), depth[&at] + 1);
                    queue.push_back(there);
                }
            }
        }
        depth
    }

    /// The relationships a whole (untruncated) walk follows: every visible one leaving a reached node.
    fn followed(&self, reached: &BTreeMap<String, u32>, walk: &Walk) -> BTreeSet<Key> {
        let mut keys = BTreeSet::new();
        for at in reached.keys() {
            for (r, there) in self.steps(at, walk) {
                if reached.contains_key(&there) {
                    keys.insert(seed_key(r));
                }
            }
        }
        keys
    }
}

// ---------------------------------------------------------------------------
// Reading a trace
// ---------------------------------------------------------------------------

async fn trace(server: &TestServer, vars: Value) -> Value {
    server.data(TRACE, vars).await["trace"].clone()
}

fn vars(from: &str, direction: &str, max_depth: Option<i64>, via: &[&str]) -> Value {
    json!({ "from": from, "direction": direction, "maxDepth": max_depth,
        "via": if via.is_empty() { Value::Null } else { json!(via) } })
}

fn depths_of(trace: &Value) -> BTreeMap<String, u32> {
    let mut depths = BTreeMap::new();
    for n in trace["nodes"].as_array().unwrap() {
        let id = text(&n["node"]["id"]);
        let depth = n["depth"].as_u64().unwrap() as u32;
        assert!(depths.insert(id.clone(), depth).is_none(), "{id} is listed twice: {trace:#}");
    }
    depths
}

fn edge_keys(edges: &Value) -> Vec<Key> {
    edges
        .as_array()
        .unwrap()
        .iter()
        .map(|e| key(e["kind"].as_str().unwrap(), e["from"]["id"].as_str().unwrap(), e["to"]["id"].as_str().unwrap()))
        .collect()
}

fn edge_set(trace: &Value) -> BTreeSet<Key> {
    let keys = edge_keys(&trace["edges"]);
    let set: BTreeSet<Key> = keys.iter().cloned().collect();
    assert_eq!(set.len(), keys.len(), "a relationship is listed twice: {keys:#?}");
    set
}

/// The listed nodes come nearest first, the start alone at depth 0.
fn assert_nearest_first(trace: &Value, start: &str) {
    let nodes = trace["nodes"].as_array().unwrap();
    assert_eq!(text(&trace["start"]["id"]), start);
    assert_eq!(text(&nodes[0]["node"]["id"]), start);
    assert_eq!(nodes[0]["depth"], 0);
    let depths: Vec<u64> = nodes.iter().map(|n| n["depth"].as_u64().unwrap()).collect();
    assert!(depths.windows(2).all(|w| w[0] <= w[1]), "not nearest first: {depths:?}");
    assert_eq!(depths.iter().filter(|d| **d == 0).count(), 1, "only the start is at depth 0");
}

/// Each path leads from the start to one listed node along the trace's own
/// relationships, as many steps as that node's depth, each step joining the
/// node before it to the node after it the way the trace walks.
fn assert_paths_consistent(trace: &Value, start: &str, direction: &str) {
    let depths = depths_of(trace);
    let edges = edge_set(trace);
    let paths = trace["paths"].as_array().unwrap();
    let mut ends = BTreeSet::new();
    for path in paths {
        let nodes: Vec<String> = path["nodes"].as_array().unwrap().iter().map(|n| text(&n["id"])).collect();
        let steps = edge_keys(&path["edges"]);
        let end = nodes.last().unwrap().clone();
        assert_eq!(nodes[0], start, "a path starts at the start: {path:#}");
        assert!(ends.insert(end.clone()), "two paths lead to {end}");
        assert_eq!(path["length"].as_u64().unwrap() as usize, steps.len(), "{path:#}");
        assert_eq!(nodes.len(), steps.len() + 1, "a path of n steps has n + 1 nodes: {path:#}");
        assert_eq!(steps.len() as u32, depths[&end], "the path to {end} is as long as its depth: {path:#}");
        for (i, (kind, from, to)) in steps.iter().enumerate() {
            let (here, next) = (&nodes[i], &nodes[i + 1]);
            let forward = from == here && to == next;
            let backward = to == here && from == next;
            let ok = match direction {
                "DOWNSTREAM" => forward,
                "UPSTREAM" => backward,
                _ => forward || backward,
            };
            assert!(ok, "step {i} ({kind} {from}→{to}) does not join {here} to {next} {direction}");
            assert!(edges.contains(&key(kind, from, to)), "a path step is one of the trace's relationships");
            assert_eq!(depths[next], depths[here] + 1, "each step goes one deeper: {path:#}");
        }
    }
    let listed: BTreeSet<String> = depths.keys().filter(|id| *id != start).cloned().collect();
    assert_eq!(ends, listed, "one path to each listed node but the start");
}

/// A whole trace matches the oracle in nodes, depths and relationships.
fn assert_matches_oracle(trace: &Value, start: &str, walk: &Walk) {
    let seed = seed();
    let expected = seed.depths(start, walk);
    assert_nearest_first(trace, start);
    assert_eq!(depths_of(trace), expected, "nodes and depths");
    assert_eq!(edge_set(trace), seed.followed(&expected, walk), "relationships followed");
    assert_eq!(trace["truncated"], false, "{:#}", trace["truncation"]);
    assert_eq!(trace["truncation"], json!([]));
    assert_paths_consistent(trace, start, walk.direction);
}

// ---------------------------------------------------------------------------
// The King County seed
// ---------------------------------------------------------------------------

#[tokio::test]
async fn downstream_trace_reaches_the_risk_chain_at_the_seeds_depths() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let walk = Walk { direction: "DOWNSTREAM", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let expected = seed().depths(START, &walk);
    // The chain the brief names, at the depths the seed file gives it.
    assert_eq!(expected["kc:experiment:fail-forward-retrospectives"], 1);
    assert_eq!(expected["kc:learning:small-safe-failures-build-tolerance"], 2);
    assert_eq!(expected["kc:learning:embrace-uncertainty-and-failure"], 3);
    assert_eq!(expected[RELAUNCH], 4);
    // take-the-right-risks is at the end of that chain too, but the learning also influenced it directly.
    assert_eq!(expected["kc:principle:take-the-right-risks"], 1);
    assert_eq!(expected.values().max(), Some(&4));

    let result = trace(&server, vars(START, "DOWNSTREAM", Some(10), &["INFLUENCED", "PRODUCED"])).await;
    assert_matches_oracle(&result, START, &walk);

    // Nodes carry their kind; the deepest ones are the seed's.
    let typename = |id: &str| {
        result["nodes"].as_array().unwrap().iter().find(|n| n["node"]["id"] == id).unwrap()["node"]["__typename"]
            .clone()
    };
    assert_eq!(typename("kc:experiment:fail-forward-retrospectives"), "Experiment");
    assert_eq!(typename("kc:principle:take-the-right-risks"), "Principle");
    assert_eq!(typename(START), "Learning");

    // INFLUENCED relationships carry their properties as the seed states them; others carry none.
    let seed = seed();
    for edge in result["edges"].as_array().unwrap() {
        let k = key(
            edge["kind"].as_str().unwrap(),
            edge["from"]["id"].as_str().unwrap(),
            edge["to"]["id"].as_str().unwrap(),
        );
        let stated = seed.relationships.iter().find(|r| seed_key(r) == k).unwrap();
        assert_eq!(edge["assertion"], stated["assertion"], "{k:?}");
        if k.0 == "INFLUENCED" {
            for field in ["how", "systemCondition", "on", "contribution", "strength"] {
                assert_eq!(edge[field], stated[field], "{field} of {k:?}");
            }
            let sources: BTreeSet<String> =
                edge["sources"].as_array().unwrap().iter().map(|s| text(&s["id"])).collect();
            let stated_sources: BTreeSet<String> =
                stated["sources"].as_array().map(|a| a.iter().map(text).collect()).unwrap_or_default();
            assert_eq!(sources, stated_sources, "sources of {k:?}");
        } else {
            for field in ["how", "systemCondition", "on", "contribution", "strength"] {
                assert_eq!(edge[field], Value::Null, "{field} of {k:?}");
            }
        }
    }
    let influenced = result["edges"].as_array().unwrap().iter().filter(|e| e["kind"] == "INFLUENCED").count();
    assert!(influenced >= 5, "the chain's influences are listed: {influenced}");
}

#[tokio::test]
async fn upstream_trace_finds_the_learnings_behind_the_relaunch() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let walk = Walk { direction: "UPSTREAM", via: &[], as_of: None };
    let expected = seed().depths(RELAUNCH, &walk);
    assert!(*expected.values().max().unwrap() < 10, "the oracle walk ends before the cap");
    let result = trace(&server, vars(RELAUNCH, "UPSTREAM", Some(10), &[])).await;
    assert_matches_oracle(&result, RELAUNCH, &walk);

    // Its direct influencers are exactly the seed's learnings that influenced it, one of them CPI's.
    let seed = seed();
    let influencers: BTreeSet<String> = seed
        .relationships
        .iter()
        .filter(|r| r["kind"] == "INFLUENCED" && r["to"] == RELAUNCH)
        .map(|r| text(&r["from"]))
        .collect();
    assert!(influencers.contains("cpi:learning:culture-change-needs-top-down-and-bottom-up"));
    assert!(influencers.len() >= 4);
    let depths = depths_of(&result);
    for learning in &influencers {
        assert_eq!(depths.get(learning), Some(&1), "{learning}");
    }
    let learnings_at_1: BTreeSet<String> = result["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["depth"] == 1 && n["node"]["__typename"] == "Learning")
        .map(|n| text(&n["node"]["id"]))
        .collect();
    assert_eq!(learnings_at_1, influencers);
    // Upstream never lists what the relaunch itself upholds.
    for r in seed.relationships.iter().filter(|r| r["from"] == RELAUNCH && r["kind"] == "UPHOLDS") {
        assert!(!depths.contains_key(&text(&r["to"])), "{r}");
    }
}

#[tokio::test]
async fn upstream_trace_of_influences_and_production_reaches_the_start_learning() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let walk = Walk { direction: "UPSTREAM", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let result = trace(&server, vars(RELAUNCH, "UPSTREAM", Some(10), &["INFLUENCED", "PRODUCED"])).await;
    assert_matches_oracle(&result, RELAUNCH, &walk);
    // The downstream chain read backwards: relaunch ← embrace ← small-safe ← fail-forward ← the start.
    assert_eq!(depths_of(&result)[START], 4);
}

#[tokio::test]
async fn both_ways_trace_matches_the_oracle() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let walk = Walk { direction: "BOTH", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let expected = seed().depths(START, &walk);
    assert!(*expected.values().max().unwrap() < 10);
    // Both ways reaches what produced the start, which neither one-way walk does downstream.
    assert_eq!(expected["kc:experiment:rescope-public-health-intern-duties"], 1);
    let result = trace(&server, vars(START, "BOTH", Some(10), &["INFLUENCED", "PRODUCED"])).await;
    assert_matches_oracle(&result, START, &walk);
    let downstream = seed().depths(START, &Walk { direction: "DOWNSTREAM", ..walk });
    assert!(depths_of(&result).len() > downstream.len());
}

#[tokio::test]
async fn default_depth_is_three_and_says_it_was_cut_short() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let result = trace(&server, vars(START, "DOWNSTREAM", None, &["INFLUENCED", "PRODUCED"])).await;
    let depths = depths_of(&result);
    assert_eq!(depths.values().max(), Some(&3));
    let walk = Walk { direction: "DOWNSTREAM", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let expected: BTreeMap<String, u32> = seed().depths(START, &walk).into_iter().filter(|(_, d)| *d <= 3).collect();
    assert_eq!(depths, expected);
    assert_eq!(result["truncated"], true);
    assert_paths_consistent(&result, START, "DOWNSTREAM");
}

// ---------------------------------------------------------------------------
// The depth cap
// ---------------------------------------------------------------------------

#[tokio::test]
async fn max_depth_one_on_a_chain_is_truncated_and_says_why() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let result = trace(&server, vars(START, "DOWNSTREAM", Some(1), &["INFLUENCED", "PRODUCED"])).await;
    assert_eq!(result["truncated"], true);
    let reasons = result["truncation"].as_array().unwrap();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].as_str().unwrap().contains("maxDepth"), "{reasons:?}");
    let depths = depths_of(&result);
    assert!(depths.values().all(|d| *d <= 1));
    let walk = Walk { direction: "DOWNSTREAM", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let expected: BTreeMap<String, u32> = seed().depths(START, &walk).into_iter().filter(|(_, d)| *d <= 1).collect();
    assert_eq!(depths, expected);
    // Only the start's own relationships were followed.
    assert!(edge_set(&result).iter().all(|(_, from, _)| from == START));
}

#[tokio::test]
async fn max_depth_exactly_the_graphs_depth_is_not_truncated() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let walk = Walk { direction: "DOWNSTREAM", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let deepest = *seed().depths(START, &walk).values().max().unwrap() as i64;
    let whole = trace(&server, vars(START, "DOWNSTREAM", Some(deepest), &["INFLUENCED", "PRODUCED"])).await;
    // The deepest nodes' relationships lead only back into the trace, so nothing lies beyond.
    assert_eq!(depths_of(&whole), seed().depths(START, &walk));
    assert_eq!(whole["truncated"], false, "{:#}", whole["truncation"]);
    assert_eq!(whole["truncation"], json!([]));
    let cut = trace(&server, vars(START, "DOWNSTREAM", Some(deepest - 1), &["INFLUENCED", "PRODUCED"])).await;
    assert_eq!(cut["truncated"], true);
    assert!(cut["truncation"][0].as_str().unwrap().contains(&format!("maxDepth {}", deepest - 1)), "{cut:#}");
}

#[tokio::test]
async fn max_depth_outside_one_to_ten_is_bad_user_input() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for depth in [0, 11, -1, 1000] {
        let code = server.error_code(TRACE, vars(START, "DOWNSTREAM", Some(depth), &[])).await;
        assert_eq!(code, "BAD_USER_INPUT", "maxDepth {depth}");
    }
    for depth in [1, 10] {
        trace(&server, vars(START, "DOWNSTREAM", Some(depth), &[])).await;
    }
}

// ---------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------

#[tokio::test]
async fn via_follows_only_the_kinds_named() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for via in [&["INFLUENCED"][..], &["PRODUCED"], &["GUIDED_BY", "UPHOLDS"], &["CITES"]] {
        for (start, direction) in [(START, "DOWNSTREAM"), (RELAUNCH, "UPSTREAM"), (RELAUNCH, "BOTH")] {
            let walk = Walk { direction, via, as_of: None };
            let result = trace(&server, vars(start, direction, Some(10), via)).await;
            assert_matches_oracle(&result, start, &walk);
            for (kind, from, to) in edge_set(&result) {
                assert!(via.contains(&kind.as_str()), "{kind} {from}→{to} followed with via {via:?}");
            }
        }
    }
    // Influences only: from the start, one step, no production and so no chain.
    let result = trace(&server, vars(START, "DOWNSTREAM", Some(10), &["INFLUENCED"])).await;
    let depths = depths_of(&result);
    assert!(!depths.contains_key("kc:learning:small-safe-failures-build-tolerance"));
    assert_eq!(depths["kc:experiment:fail-forward-retrospectives"], 1);
}

#[tokio::test]
async fn kinds_lists_only_those_kinds_and_the_start() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let walk = Walk { direction: "DOWNSTREAM", via: &["INFLUENCED", "PRODUCED"], as_of: None };
    let all = seed().depths(START, &walk);
    let mut v = vars(START, "DOWNSTREAM", Some(10), &["INFLUENCED", "PRODUCED"]);
    v["kinds"] = json!(["PRINCIPLE"]);
    let result = trace(&server, v).await;
    let depths = depths_of(&result);
    let expected: BTreeMap<String, u32> =
        all.into_iter().filter(|(id, _)| id == START || id.contains(":principle:")).collect();
    // The walk passes through experiments and learnings to reach the relaunch at depth 4.
    assert_eq!(expected[RELAUNCH], 4);
    assert_eq!(depths, expected);
    for n in result["nodes"].as_array().unwrap() {
        if n["node"]["id"] != START {
            assert_eq!(n["node"]["__typename"], "Principle", "{n}");
        }
    }
    assert_eq!(result["start"]["id"], START);

    // Two kinds, and a start of a kind not asked for is still listed first.
    let mut v = vars(START, "DOWNSTREAM", Some(10), &["INFLUENCED", "PRODUCED"]);
    v["kinds"] = json!(["BARRIER", "EXPERIMENT"]);
    let result = trace(&server, v).await;
    assert_nearest_first(&result, START);
    let kinds: BTreeSet<String> =
        result["nodes"].as_array().unwrap()[1..].iter().map(|n| text(&n["node"]["__typename"])).collect();
    assert_eq!(kinds, BTreeSet::from(["Barrier".to_owned(), "Experiment".to_owned()]));
}

#[tokio::test]
async fn kinds_keeps_each_path_whole() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let mut v = vars(START, "DOWNSTREAM", Some(10), &["INFLUENCED", "PRODUCED"]);
    v["kinds"] = json!(["PRINCIPLE"]);
    let result = trace(&server, v).await;
    let to_relaunch = result["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["nodes"].as_array().unwrap().last().unwrap()["id"] == RELAUNCH)
        .expect("a path to the relaunch")
        .clone();
    assert_eq!(to_relaunch["length"], 4);
    // A path is "the nodes along the path, start to end": the experiment and learnings in between belong to it.
    assert_eq!(to_relaunch["nodes"].as_array().unwrap().len(), 5, "{to_relaunch:#}");
}

// ---------------------------------------------------------------------------
// asOf
// ---------------------------------------------------------------------------

#[tokio::test]
async fn as_of_hides_later_influences_and_later_nodes() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let via = ["INFLUENCED", "PRODUCED"];

    // 2022-09-01: before the learning influenced take-the-right-risks (2022-10-03) and before
    // embrace-uncertainty did (2022-09-30).
    let mut v = vars(START, "DOWNSTREAM", Some(10), &via);
    v["asOf"] = json!("2022-09-01");
    let result = trace(&server, v).await;
    let walk = Walk { direction: "DOWNSTREAM", via: &via, as_of: Some("2022-09-01") };
    assert_matches_oracle(&result, START, &walk);
    let depths = depths_of(&result);
    assert!(!depths.contains_key("kc:principle:take-the-right-risks"), "{depths:?}");
    assert!(!depths.contains_key("kc:barrier:logic-of-risk-avoidance"));
    assert_eq!(depths["kc:learning:embrace-uncertainty-and-failure"], 3);
    let edges = edge_set(&result);
    assert!(!edges.contains(&key("INFLUENCED", START, "kc:principle:take-the-right-risks")));
    for edge in result["edges"].as_array().unwrap().iter().filter(|e| e["kind"] == "INFLUENCED") {
        assert!(edge["on"].as_str().unwrap() <= "2022-09-01", "{edge}");
    }
    // The whole graph, for contrast, has the direct influence.
    let now = trace(&server, vars(START, "DOWNSTREAM", Some(10), &via)).await;
    assert!(edge_set(&now).contains(&key("INFLUENCED", START, "kc:principle:take-the-right-risks")));

    // 2022-06-03: the influence on fail-forward-retrospectives is dated 2022-06-01, but that
    // experiment was created on 2022-06-06; neither it nor the relationship to it shows.
    let mut v = vars(START, "DOWNSTREAM", Some(10), &via);
    v["asOf"] = json!("2022-06-03");
    let result = trace(&server, v).await;
    assert_eq!(depths_of(&result), BTreeMap::from([(START.to_owned(), 0)]));
    assert_eq!(result["edges"], json!([]));
    assert_eq!(result["paths"], json!([]));

    // On the start's own creation day the start is there.
    let mut v = vars(START, "DOWNSTREAM", Some(10), &via);
    v["asOf"] = json!("2022-05-27");
    assert_eq!(trace(&server, v).await["start"]["id"], START);
}

#[tokio::test]
async fn as_of_before_the_start_existed_is_not_found() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for day in ["2022-05-26", "2000-01-01"] {
        let mut v = vars(START, "DOWNSTREAM", None, &[]);
        v["asOf"] = json!(day);
        assert_eq!(server.error_code(TRACE, v).await, "NOT_FOUND", "asOf {day}");
    }
    let mut v = vars(START, "DOWNSTREAM", None, &[]);
    v["asOf"] = json!("2022-13-01");
    assert_eq!(server.error_code(TRACE, v).await, "BAD_USER_INPUT", "an impossible date");
}

#[tokio::test]
async fn as_of_does_not_claim_hidden_nodes_lie_beyond_the_cap() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    // rescope-public-health-intern-duties produced the start; on 2022-06-03 the start's influence
    // on fail-forward-retrospectives (dated 2022-06-01) is visible but the experiment (created
    // 2022-06-06) is not, so depth 2 adds nothing to depth 1.
    let rescope = "kc:experiment:rescope-public-health-intern-duties";
    let at = |depth: i64| {
        let mut v = vars(rescope, "DOWNSTREAM", Some(depth), &["INFLUENCED", "PRODUCED"]);
        v["asOf"] = json!("2022-06-03");
        v
    };
    let one = trace(&server, at(1)).await;
    let two = trace(&server, at(2)).await;
    assert_eq!(depths_of(&one), depths_of(&two), "a deeper trace finds nothing more");
    assert_eq!(two["truncated"], false);
    assert_eq!(one["truncated"], false, "nothing visible lies beyond depth 1: {:#}", one["truncation"]);
}

// ---------------------------------------------------------------------------
// Cycles, through the API
// ---------------------------------------------------------------------------

const RECORD: &str = "mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind } }";

async fn learning(server: &TestServer, slug: &str, captured_on: &str) -> String {
    let query = "mutation($i: CreateLearningInput!) { createLearning(input: $i) { id } }";
    let input = json!({ "organisation": "acme", "slug": slug, "title": format!("Learning {slug}"),
        "statement": "Something learnt.", "kind": "MINDSET", "capturedOn": captured_on });
    text(&server.data(query, json!({ "i": input })).await["createLearning"]["id"])
}

async fn influence(server: &TestServer, from: &str, to: &str, on: &str) {
    let input = json!({ "from": from, "to": to, "how": "SHIFTED_MINDSET", "systemCondition": "MENTAL_MODELS",
        "on": on, "strength": "WEAK" });
    server.data(RECORD, json!({ "i": input })).await;
}

async fn acme(dir: &std::path::Path) -> TestServer {
    let server = TestServer::empty(dir).await;
    let query = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";
    server.data(query, json!({ "i": { "organisation": "acme", "title": "Acme" } })).await;
    server
}

#[tokio::test]
async fn a_cycle_of_two_ends_with_each_node_once() {
    let dir = temp_dir();
    let server = acme(dir.path()).await;
    let a = learning(&server, "a", "2022-01-10").await;
    let b = learning(&server, "b", "2022-02-01").await;
    influence(&server, &a, &b, "2022-03-01").await;
    influence(&server, &b, &a, "2022-04-01").await;
    for direction in ["DOWNSTREAM", "UPSTREAM", "BOTH"] {
        let result = trace(&server, vars(&a, direction, Some(10), &[])).await;
        assert_nearest_first(&result, &a);
        assert_eq!(depths_of(&result), BTreeMap::from([(a.clone(), 0), (b.clone(), 1)]), "{direction}");
        assert_eq!(
            edge_set(&result),
            BTreeSet::from([key("INFLUENCED", &a, &b), key("INFLUENCED", &b, &a)]),
            "{direction}: both relationships between the two, each once"
        );
        assert_eq!(result["truncated"], false, "{direction}: a cycle is not a cut: {result:#}");
        assert_paths_consistent(&result, &a, direction);
    }
}

#[tokio::test]
async fn a_cycle_of_three_gives_each_node_its_shortest_depth() {
    let dir = temp_dir();
    let server = acme(dir.path()).await;
    let a = learning(&server, "a", "2022-01-10").await;
    let b = learning(&server, "b", "2022-01-10").await;
    let c = learning(&server, "c", "2022-01-10").await;
    influence(&server, &a, &b, "2022-03-01").await;
    influence(&server, &b, &c, "2022-03-02").await;
    influence(&server, &c, &a, "2022-03-03").await;
    let down = trace(&server, vars(&a, "DOWNSTREAM", Some(10), &[])).await;
    assert_eq!(depths_of(&down), BTreeMap::from([(a.clone(), 0), (b.clone(), 1), (c.clone(), 2)]));
    assert_eq!(edge_set(&down).len(), 3);
    assert_paths_consistent(&down, &a, "DOWNSTREAM");
    let up = trace(&server, vars(&a, "UPSTREAM", Some(10), &[])).await;
    assert_eq!(depths_of(&up), BTreeMap::from([(a.clone(), 0), (c.clone(), 1), (b.clone(), 2)]));
    assert_paths_consistent(&up, &a, "UPSTREAM");
    let both = trace(&server, vars(&a, "BOTH", Some(10), &[])).await;
    assert_eq!(depths_of(&both), BTreeMap::from([(a.clone(), 0), (b.clone(), 1), (c.clone(), 1)]));
    assert_eq!(edge_set(&both).len(), 3);
    assert_paths_consistent(&both, &a, "BOTH");
}

#[tokio::test]
async fn a_self_contained_graph_is_not_truncated_at_its_own_depth() {
    let dir = temp_dir();
    let server = acme(dir.path()).await;
    let a = learning(&server, "a", "2022-01-10").await;
    let b = learning(&server, "b", "2022-01-10").await;
    influence(&server, &a, &b, "2022-03-01").await;
    influence(&server, &b, &a, "2022-04-01").await;
    // At depth 1 the only relationship left leads back to the start: nothing lies beyond.
    let result = trace(&server, vars(&a, "DOWNSTREAM", Some(1), &[])).await;
    assert_eq!(result["truncated"], false, "{result:#}");
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unknown_start_is_not_found_and_a_malformed_one_bad_input() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let code = server.error_code(TRACE, vars("kc:learning:no-such-learning", "DOWNSTREAM", None, &[])).await;
    assert_eq!(code, "NOT_FOUND");
    let code = server.error_code(TRACE, vars("zz:principle:nothing-here", "UPSTREAM", None, &[])).await;
    assert_eq!(code, "NOT_FOUND");
    for bad in ["not-an-id", "kc:widget:thing", "kc:learning:", "KC:Learning:X", "kc:learning:a:b", ""] {
        let code = server.error_code(TRACE, vars(bad, "DOWNSTREAM", None, &[])).await;
        assert_eq!(code, "BAD_USER_INPUT", "{bad:?}");
    }
}

#[tokio::test]
async fn as_of_sees_a_learning_entered_later_from_the_day_it_was_captured() {
    let dir = temp_dir();
    let server = acme(dir.path()).await;
    // Both learnings are entered today but say they were captured in January 2022, and the API
    // accepts an influence between them dated March 2022 because of it.
    let a = learning(&server, "a", "2022-01-10").await;
    let b = learning(&server, "b", "2022-01-10").await;
    influence(&server, &a, &b, "2022-03-01").await;
    let mut v = vars(&a, "DOWNSTREAM", None, &[]);
    v["asOf"] = json!("2023-01-01");
    let body = server.gql(TRACE, v).await;
    assert!(body.get("errors").is_none(), "the graph as it stood on 2023-01-01 has the learning: {body:#}");
    let depths = depths_of(&body["data"]["trace"]);
    assert_eq!(depths, BTreeMap::from([(a.clone(), 0), (b.clone(), 1)]));
}
