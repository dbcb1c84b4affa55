//! The analysts' questions over a real server, each checked against an
//! independent count over the seed file: `impact`, `valueFunnel`, unaddressed
//! barriers, `crossOrganisationInfluences`, `embeddingLag` and `provenance`;
//! and `pvgraph export --format prov-json` from the built binary.

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use chrono::NaiveDate;
use common::{Seed, TestServer, pvgraph, seed, temp_dir, text};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------
// The oracle: the seed file read as plain JSON
// ---------------------------------------------------------------------------

fn organisation(id: &str) -> &str {
    id.split(':').next().unwrap()
}

impl Seed {
    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.relationships.iter().filter(move |r| r["kind"] == kind)
    }

    /// Downstream along INFLUENCED and PRODUCED, as far as it goes.
    fn reach(&self, start: &str) -> BTreeSet<String> {
        let mut seen = BTreeSet::from([start.to_owned()]);
        let mut queue = VecDeque::from([start.to_owned()]);
        while let Some(at) = queue.pop_front() {
            for r in self.relationships.iter().filter(|r| r["kind"] == "INFLUENCED" || r["kind"] == "PRODUCED") {
                if r["from"] == at.as_str() && seen.insert(text(&r["to"])) {
                    queue.push_back(text(&r["to"]));
                }
            }
        }
        seen
    }
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array().unwrap_or_else(|| panic!("not a list: {list}")).iter().map(|n| text(&n["id"])).collect()
}

fn counts(list: &Value, field: &str) -> BTreeMap<String, i64> {
    list.as_array().unwrap().iter().map(|c| (text(&c[field]), c["count"].as_i64().unwrap())).collect()
}

fn tally<'a>(words: impl Iterator<Item = &'a str>) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for w in words {
        *out.entry(w.to_owned()).or_default() += 1;
    }
    out
}

fn learnings(seed: &Seed) -> Vec<String> {
    seed.nodes.keys().filter(|id| id.contains(":learning:")).cloned().collect()
}

// ---------------------------------------------------------------------------
// impact
// ---------------------------------------------------------------------------

const IMPACT: &str = "query($l: ID!) { impact(learning: $l) {
  learning { id } reached truncated
  byKind { kind count } byHow { how count } bySystemCondition { systemCondition count }
  timeline { kind from { id } to { id } how systemCondition on }
} }";

const TRACE: &str =
    "query($l: ID!) { trace(from: $l, direction: DOWNSTREAM, maxDepth: 10, via: [INFLUENCED, PRODUCED]) {
  nodes { depth node { __typename id } }
  edges { kind from { id } to { id } }
} }";

#[tokio::test]
async fn impact_agrees_with_the_trace_and_the_seed() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let start = "kc:learning:right-risk-review-makes-risk-discussable";
    let impact = server.data(IMPACT, json!({ "l": start })).await["impact"].clone();
    let trace = server.data(TRACE, json!({ "l": start })).await["trace"].clone();
    assert_eq!(impact["learning"]["id"], start);
    assert_eq!(impact["truncated"], false);

    // Counts by kind are the trace's nodes by kind, the start left out.
    let nodes = trace["nodes"].as_array().unwrap();
    let by_kind = tally(nodes.iter().filter(|n| n["depth"] != 0).map(|n| n["node"]["__typename"].as_str().unwrap()));
    let by_kind: BTreeMap<String, i64> = by_kind.into_iter().map(|(k, c)| (k.to_uppercase(), c)).collect();
    assert_eq!(counts(&impact["byKind"], "kind"), by_kind);
    assert_eq!(impact["reached"].as_u64().unwrap() as usize, nodes.len() - 1);
    // And the seed's own reach, counted by the kind in each id.
    let reach = seed.reach(start);
    let expected = tally(reach.iter().filter(|id| *id != start).map(|id| id.split(':').nth(1).unwrap()));
    let expected: BTreeMap<String, i64> = expected.into_iter().map(|(k, c)| (k.to_uppercase(), c)).collect();
    assert_eq!(by_kind, expected);

    // The timeline is the trace's influences, oldest first; byHow and bySystemCondition count it.
    let timeline = impact["timeline"].as_array().unwrap();
    let keys = |edges: &[Value]| -> BTreeSet<(String, String)> {
        edges.iter().map(|e| (text(&e["from"]["id"]), text(&e["to"]["id"]))).collect()
    };
    let traced: Vec<Value> =
        trace["edges"].as_array().unwrap().iter().filter(|e| e["kind"] == "INFLUENCED").cloned().collect();
    assert_eq!(keys(timeline), keys(&traced));
    assert_eq!(timeline.len(), traced.len());
    assert!(timeline.iter().all(|e| e["kind"] == "INFLUENCED"));
    let days: Vec<String> = timeline.iter().map(|e| text(&e["on"])).collect();
    assert!(days.windows(2).all(|w| w[0] <= w[1]), "oldest first: {days:?}");
    assert_eq!(counts(&impact["byHow"], "how"), tally(timeline.iter().map(|e| e["how"].as_str().unwrap())));
    assert_eq!(
        counts(&impact["bySystemCondition"], "systemCondition"),
        tally(timeline.iter().map(|e| e["systemCondition"].as_str().unwrap()))
    );
    // Against the seed: every influence leaving a reached node.
    let seed_influences: BTreeSet<(String, String)> = seed
        .of_kind("INFLUENCED")
        .filter(|r| reach.contains(r["from"].as_str().unwrap()))
        .map(|r| (text(&r["from"]), text(&r["to"])))
        .collect();
    assert_eq!(keys(timeline), seed_influences);
    let how_total: i64 = counts(&impact["byHow"], "how").values().sum();
    assert_eq!(how_total as usize, seed_influences.len());
}

#[tokio::test]
async fn impact_of_every_seed_learning_counts_its_reach() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    for learning in learnings(&seed) {
        let impact = server.data(IMPACT, json!({ "l": learning })).await["impact"].clone();
        let reach = seed.reach(&learning);
        assert_eq!(impact["reached"].as_u64().unwrap() as usize, reach.len() - 1, "{learning}");
        let expected = tally(reach.iter().filter(|id| **id != learning).map(|id| id.split(':').nth(1).unwrap()));
        let expected: BTreeMap<String, i64> = expected.into_iter().map(|(k, c)| (k.to_uppercase(), c)).collect();
        assert_eq!(counts(&impact["byKind"], "kind"), expected, "{learning}");
        let influences: Vec<&Value> =
            seed.of_kind("INFLUENCED").filter(|r| reach.contains(r["from"].as_str().unwrap())).collect();
        assert_eq!(impact["timeline"].as_array().unwrap().len(), influences.len(), "{learning}");
        assert_eq!(
            counts(&impact["byHow"], "how"),
            tally(influences.iter().map(|r| r["how"].as_str().unwrap())),
            "{learning}"
        );
        assert_eq!(
            counts(&impact["bySystemCondition"], "systemCondition"),
            tally(influences.iter().map(|r| r["systemCondition"].as_str().unwrap())),
            "{learning}"
        );
    }
}

#[tokio::test]
async fn impact_of_something_not_a_learning_is_bad_input() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for id in ["kc:principle:take-the-right-risks", "kc:experiment:fail-forward-retrospectives", "kc:organisation:kc"] {
        assert_eq!(server.error_code(IMPACT, json!({ "l": id })).await, "BAD_USER_INPUT", "{id}");
    }
    assert_eq!(server.error_code(IMPACT, json!({ "l": "learning" })).await, "BAD_USER_INPUT");
    assert_eq!(server.error_code(IMPACT, json!({ "l": "kc:learning:never-learnt" })).await, "NOT_FOUND");
}

// ---------------------------------------------------------------------------
// valueFunnel
// ---------------------------------------------------------------------------

const FUNNEL: &str = "query($v: ID!) { valueFunnel(value: $v) {
  value { id }
  stages { stage count conversion }
  principlesWithoutExperiments { id }
  experimentsWithoutLearnings { id }
  learningsNotEmbedded { id }
} }";

struct Funnel {
    principles: BTreeSet<String>,
    experiments: BTreeSet<String>,
    learnings: BTreeSet<String>,
    embedded: BTreeSet<String>,
    principles_without_experiments: BTreeSet<String>,
    experiments_without_learnings: BTreeSet<String>,
}

fn funnel(seed: &Seed, value: &str) -> Funnel {
    let froms = |kind: &str, into: &BTreeSet<String>| -> Vec<(String, String)> {
        seed.of_kind(kind)
            .filter(|r| into.contains(r["to"].as_str().unwrap()))
            .map(|r| (text(&r["from"]), text(&r["to"])))
            .collect()
    };
    let principles: BTreeSet<String> =
        froms("UPHOLDS", &BTreeSet::from([value.to_owned()])).into_iter().map(|(f, _)| f).collect();
    let guided = froms("GUIDED_BY", &principles);
    let experiments: BTreeSet<String> = guided.iter().map(|(f, _)| f.clone()).collect();
    let produced: Vec<(String, String)> = seed
        .of_kind("PRODUCED")
        .filter(|r| experiments.contains(r["from"].as_str().unwrap()))
        .map(|r| (text(&r["from"]), text(&r["to"])))
        .collect();
    let learnings: BTreeSet<String> = produced.iter().map(|(_, t)| t.clone()).collect();
    let embedded = learnings.iter().filter(|l| seed.nodes[*l]["embedding"] == "EMBEDDED").cloned().collect();
    let guiding: BTreeSet<&String> = guided.iter().map(|(_, t)| t).collect();
    let producing: BTreeSet<&String> = produced.iter().map(|(f, _)| f).collect();
    Funnel {
        principles_without_experiments: principles.iter().filter(|p| !guiding.contains(p)).cloned().collect(),
        experiments_without_learnings: experiments.iter().filter(|e| !producing.contains(e)).cloned().collect(),
        principles,
        experiments,
        learnings,
        embedded,
    }
}

fn assert_funnel(got: &Value, expected: &Funnel, value: &str) {
    assert_eq!(got["value"]["id"], value);
    let stages = got["stages"].as_array().unwrap();
    let wanted =
        [expected.principles.len(), expected.experiments.len(), expected.learnings.len(), expected.embedded.len()];
    let counts: Vec<usize> = stages.iter().map(|s| s["count"].as_u64().unwrap() as usize).collect();
    assert_eq!(counts, wanted, "{value}: {stages:#?}");
    assert_eq!(stages[0]["conversion"], Value::Null, "{value}");
    for i in 1..stages.len() {
        let conversion = &stages[i]["conversion"];
        if wanted[i - 1] == 0 {
            assert_eq!(*conversion, Value::Null, "{value} stage {i} after an empty one");
        } else {
            let expected = wanted[i] as f64 / wanted[i - 1] as f64;
            let got = conversion.as_f64().unwrap_or_else(|| panic!("{value} stage {i}: {conversion}"));
            assert!((got - expected).abs() < 1e-9, "{value} stage {i}: {got} ≠ {expected}");
        }
    }
    assert!(stages.iter().all(|s| !s["stage"].as_str().unwrap().is_empty()));
    assert_eq!(ids(&got["principlesWithoutExperiments"]), expected.principles_without_experiments, "{value}");
    assert_eq!(ids(&got["experimentsWithoutLearnings"]), expected.experiments_without_learnings, "{value}");
    let not_embedded: BTreeSet<String> = expected.learnings.difference(&expected.embedded).cloned().collect();
    assert_eq!(ids(&got["learningsNotEmbedded"]), not_embedded, "{value}");
}

#[tokio::test]
async fn value_funnel_of_equity_counts_as_the_seed_does() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let expected = funnel(&seed, "kc:value:equity");
    assert!(expected.principles.len() > 1 && !expected.embedded.is_empty(), "a funnel with something in it");
    assert!(expected.learnings.len() > expected.embedded.len(), "and a leak");
    let got = server.data(FUNNEL, json!({ "v": "kc:value:equity" })).await["valueFunnel"].clone();
    assert_funnel(&got, &expected, "kc:value:equity");
}

#[tokio::test]
async fn value_funnel_of_every_seed_value_counts_as_the_seed_does() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let values: Vec<&String> = seed.nodes.keys().filter(|id| id.contains(":value:")).collect();
    assert!(values.len() > 5);
    for value in values {
        let got = server.data(FUNNEL, json!({ "v": value })).await["valueFunnel"].clone();
        assert_funnel(&got, &funnel(&seed, value), value);
    }
}

#[tokio::test]
async fn value_funnel_of_something_else_is_refused() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let code = server.error_code(FUNNEL, json!({ "v": "kc:principle:take-the-right-risks" })).await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert_eq!(server.error_code(FUNNEL, json!({ "v": "kc:value:nothing-of-value" })).await, "NOT_FOUND");
    assert_eq!(server.error_code(FUNNEL, json!({ "v": "equity" })).await, "BAD_USER_INPUT");
}

// ---------------------------------------------------------------------------
// barriers(filter: { addressed })
// ---------------------------------------------------------------------------

#[tokio::test]
async fn addressed_splits_the_barriers_as_the_seed_does() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let all: BTreeSet<String> = seed.nodes.keys().filter(|id| id.contains(":barrier:")).cloned().collect();
    let addressed: BTreeSet<String> = seed.of_kind("ADDRESSES").map(|r| text(&r["to"])).collect();
    let unaddressed: BTreeSet<String> = all.difference(&addressed).cloned().collect();
    assert!(!unaddressed.is_empty() && !addressed.is_empty());

    let query = "query($a: Boolean) { barriers(first: 100, filter: { addressed: $a }) {
        totalCount nodes { id addressedBy { id } } } }";
    let list = async |a: Value| server.data(query, json!({ "a": a })).await["barriers"].clone();
    let no = list(json!(false)).await;
    assert_eq!(ids(&no["nodes"]), unaddressed);
    assert_eq!(no["totalCount"].as_u64().unwrap() as usize, unaddressed.len());
    assert!(no["nodes"].as_array().unwrap().iter().all(|b| b["addressedBy"] == json!([])));
    let yes = list(json!(true)).await;
    assert_eq!(ids(&yes["nodes"]), addressed);
    assert_eq!(yes["totalCount"].as_u64().unwrap() as usize, addressed.len());
    assert!(yes["nodes"].as_array().unwrap().iter().all(|b| b["addressedBy"] != json!([])));
    let either = list(Value::Null).await;
    assert_eq!(ids(&either["nodes"]), all);

    // The filter follows the graph: address one of the unaddressed, and it moves over.
    let barrier = unaddressed.iter().next().unwrap();
    let link = "mutation($i: LinkInput!) { link(input: $i) { kind } }";
    let input = json!({ "from": "kc:experiment:fail-forward-retrospectives", "kind": "ADDRESSES", "to": barrier });
    server.data(link, json!({ "i": input })).await;
    assert!(!ids(&list(json!(false)).await["nodes"]).contains(barrier));
    assert!(ids(&list(json!(true)).await["nodes"]).contains(barrier));
}

// ---------------------------------------------------------------------------
// crossOrganisationInfluences
// ---------------------------------------------------------------------------

const CROSS: &str = "query($from: String, $to: String, $first: Int! = 100) {
  crossOrganisationInfluences(fromOrganisation: $from, toOrganisation: $to, first: $first) {
    kind on how from { id organisationSlug } to { id organisationSlug }
  }
}";

fn pairs(list: &Value) -> Vec<(String, String)> {
    list.as_array().unwrap().iter().map(|e| (text(&e["from"]["id"]), text(&e["to"]["id"]))).collect()
}

#[tokio::test]
async fn cross_organisation_influences_are_the_seeds() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let across: Vec<&Value> = seed
        .of_kind("INFLUENCED")
        .filter(|r| organisation(r["from"].as_str().unwrap()) != organisation(r["to"].as_str().unwrap()))
        .collect();
    let expected: BTreeSet<(String, String)> = across.iter().map(|r| (text(&r["from"]), text(&r["to"]))).collect();
    assert!(expected.len() > 3);

    let all = server.data(CROSS, json!({})).await["crossOrganisationInfluences"].clone();
    let got = pairs(&all);
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(got.len(), expected.len(), "each once");
    for e in all.as_array().unwrap() {
        assert_eq!(e["kind"], "INFLUENCED");
        assert_ne!(e["from"]["organisationSlug"], e["to"]["organisationSlug"]);
    }
    let days: Vec<String> = all.as_array().unwrap().iter().map(|e| text(&e["on"])).collect();
    assert!(days.windows(2).all(|w| w[0] <= w[1]), "oldest first: {days:?}");

    // Narrowed by either end's organisation, or both.
    for (from, to) in [
        (Some("kc"), None),
        (Some("cpi"), None),
        (None, Some("kc")),
        (None, Some("cpi")),
        (Some("cpi"), Some("kc")),
        (Some("kc"), Some("cpi")),
    ] {
        let got = server.data(CROSS, json!({ "from": from, "to": to })).await["crossOrganisationInfluences"].clone();
        let wanted: BTreeSet<(String, String)> = expected
            .iter()
            .filter(|(f, t)| from.is_none_or(|o| organisation(f) == o) && to.is_none_or(|o| organisation(t) == o))
            .cloned()
            .collect();
        assert!(!wanted.is_empty(), "{from:?} → {to:?}");
        assert_eq!(pairs(&got).into_iter().collect::<BTreeSet<_>>(), wanted, "{from:?} → {to:?}");
    }
    for (from, to) in [(Some("kc"), Some("kc")), (Some("nobody"), None), (None, Some("nobody"))] {
        let got = server.data(CROSS, json!({ "from": from, "to": to })).await["crossOrganisationInfluences"].clone();
        assert_eq!(got, json!([]), "{from:?} → {to:?}");
    }

    // first caps the list, keeping the oldest.
    let three = server.data(CROSS, json!({ "first": 3 })).await["crossOrganisationInfluences"].clone();
    assert_eq!(pairs(&three), got[..3]);
    for first in [0, 1001] {
        assert_eq!(server.error_code(CROSS, json!({ "first": first })).await, "BAD_USER_INPUT", "first {first}");
    }
}

// ---------------------------------------------------------------------------
// embeddingLag
// ---------------------------------------------------------------------------

const LAG: &str = "query($o: String) { embeddingLag(organisation: $o) {
  pairs { experiment { id } learning { id } endedOn embeddedOn days }
  medianDays meanDays
} }";

fn day(v: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(v.as_str().unwrap(), "%Y-%m-%d").unwrap()
}

/// (experiment, learning, endedOn, embeddedOn, days) for each embedded learning an ended experiment produced.
fn seed_lags(seed: &Seed, org: Option<&str>) -> BTreeSet<(String, String, String, String, i64)> {
    seed.of_kind("PRODUCED")
        .filter_map(|r| {
            let (e, l) = (&seed.nodes[r["from"].as_str().unwrap()], &seed.nodes[r["to"].as_str().unwrap()]);
            if l["embedding"] != "EMBEDDED" || l["embeddedOn"].is_null() || e["endedOn"].is_null() {
                return None;
            }
            if org.is_some_and(|o| organisation(l["id"].as_str().unwrap()) != o) {
                return None;
            }
            let days = (day(&l["embeddedOn"]) - day(&e["endedOn"])).num_days();
            Some((text(&e["id"]), text(&l["id"]), text(&e["endedOn"]), text(&l["embeddedOn"]), days))
        })
        .collect()
}

fn lag_tuples(got: &Value) -> BTreeSet<(String, String, String, String, i64)> {
    got["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                text(&p["experiment"]["id"]),
                text(&p["learning"]["id"]),
                text(&p["endedOn"]),
                text(&p["embeddedOn"]),
                p["days"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn median(mut days: Vec<i64>) -> Option<f64> {
    days.sort();
    let n = days.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(days[n / 2] as f64),
        _ => Some((days[n / 2 - 1] + days[n / 2]) as f64 / 2.0),
    }
}

#[tokio::test]
async fn embedding_lag_is_embedded_on_less_ended_on() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let expected = seed_lags(&seed, None);
    assert!(expected.len() >= 2, "{expected:?}");
    let got = server.data(LAG, json!({})).await["embeddingLag"].clone();
    assert_eq!(lag_tuples(&got), expected);
    assert_eq!(got["pairs"].as_array().unwrap().len(), expected.len());
    let days: Vec<i64> = expected.iter().map(|t| t.4).collect();
    let median = median(days.clone()).unwrap();
    let mean = days.iter().sum::<i64>() as f64 / days.len() as f64;
    assert!((got["medianDays"].as_f64().unwrap() - median).abs() < 1e-9, "{got:#}");
    assert!((got["meanDays"].as_f64().unwrap() - mean).abs() < 1e-9, "{got:#}");

    // By organisation: King County's learnings are all of these; CPI's embedded none.
    let kc = server.data(LAG, json!({ "o": "kc" })).await["embeddingLag"].clone();
    assert_eq!(lag_tuples(&kc), seed_lags(&seed, Some("kc")));
    let cpi = server.data(LAG, json!({ "o": "cpi" })).await["embeddingLag"].clone();
    assert_eq!(lag_tuples(&cpi), seed_lags(&seed, Some("cpi")));
    if seed_lags(&seed, Some("cpi")).is_empty() {
        assert_eq!(cpi, json!({ "pairs": [], "medianDays": null, "meanDays": null }));
    }
}

#[tokio::test]
async fn embedding_lag_median_of_an_even_count_is_the_middle_two_averaged() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let org = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";
    server.data(org, json!({ "i": { "organisation": "acme", "title": "Acme" } })).await;
    let experiment = "mutation($i: CreateExperimentInput!) { createExperiment(input: $i) { id } }";
    let learning = "mutation($i: CreateLearningInput!) { createLearning(input: $i) { id } }";
    let link = "mutation($i: LinkInput!) { link(input: $i) { kind } }";
    // Four pairs, all ended 2022-01-01, embedded 10, 20, 40 and 100 days later.
    for (n, lag) in [10, 20, 40, 100].into_iter().enumerate() {
        let e = format!("acme:experiment:e{n}");
        let l = format!("acme:learning:l{n}");
        server
            .data(
                experiment,
                json!({ "i": { "organisation": "acme", "slug": format!("e{n}"), "title": format!("E{n}"),
                "hypothesis": "h", "startedOn": "2021-06-01", "endedOn": "2022-01-01", "status": "COMPLETED" } }),
            )
            .await;
        let embedded = NaiveDate::from_ymd_opt(2022, 1, 1).unwrap() + chrono::Duration::days(lag);
        server
            .data(
                learning,
                json!({ "i": { "organisation": "acme", "slug": format!("l{n}"), "title": format!("L{n}"),
                "statement": "s", "kind": "PROCESS", "embedding": "EMBEDDED", "capturedOn": "2021-12-01",
                "embeddedOn": embedded.to_string() } }),
            )
            .await;
        server.data(link, json!({ "i": { "from": e, "kind": "PRODUCED", "to": l } })).await;
    }
    let got = server.data(LAG, json!({})).await["embeddingLag"].clone();
    let days: Vec<i64> = got["pairs"].as_array().unwrap().iter().map(|p| p["days"].as_i64().unwrap()).collect();
    let mut sorted = days.clone();
    sorted.sort();
    assert_eq!(sorted, vec![10, 20, 40, 100]);
    assert_eq!(got["medianDays"], json!(30.0));
    assert_eq!(got["meanDays"], json!(42.5));
}

#[tokio::test]
async fn embedding_lag_leaves_out_learnings_embedded_before_the_experiment_ended() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let org = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";
    server.data(org, json!({ "i": { "organisation": "acme", "title": "Acme" } })).await;
    let experiment = json!({ "organisation": "acme", "slug": "long-pilot", "title": "Long pilot", "hypothesis": "h",
        "startedOn": "2022-01-01", "endedOn": "2022-12-31" });
    server
        .data("mutation($i: CreateExperimentInput!) { createExperiment(input: $i) { id } }", json!({ "i": experiment }))
        .await;
    // Learnt and embedded mid-way through the pilot.
    let learning = json!({ "organisation": "acme", "slug": "early", "title": "Early lesson", "statement": "s",
        "kind": "PROCESS", "embedding": "EMBEDDED", "capturedOn": "2022-03-01", "embeddedOn": "2022-06-01" });
    server
        .data("mutation($i: CreateLearningInput!) { createLearning(input: $i) { id } }", json!({ "i": learning }))
        .await;
    let link = json!({ "from": "acme:experiment:long-pilot", "kind": "PRODUCED", "to": "acme:learning:early" });
    server.data("mutation($i: LinkInput!) { link(input: $i) { kind } }", json!({ "i": link })).await;
    let got = server.data(LAG, json!({})).await["embeddingLag"].clone();
    // "For each learning embedded after an experiment that produced it ended": this one was not.
    assert_eq!(got["pairs"], json!([]), "{got:#}");
}

// ---------------------------------------------------------------------------
// provenance and the PROV-JSON export
// ---------------------------------------------------------------------------

const PROVENANCE: &str = "query($id: ID!, $depth: Int!) { provenance(id: $id, depth: $depth) }";

const SECTIONS: [&str; 3] = ["entity", "activity", "agent"];

/// Where each id of the document's nodes is declared.
fn declared(doc: &Value) -> BTreeMap<String, &'static str> {
    let mut at = BTreeMap::new();
    for section in SECTIONS {
        for id in doc[section].as_object().map(|m| m.keys().cloned().collect::<Vec<_>>()).unwrap_or_default() {
            assert!(at.insert(id.clone(), section).is_none(), "{id} is in two sections");
        }
    }
    at
}

fn members(doc: &Value, relation: &str) -> Vec<Map<String, Value>> {
    match doc.get(relation) {
        None => Vec::new(),
        Some(Value::Object(map)) => map.values().map(|v| v.as_object().unwrap().clone()).collect(),
        Some(other) => panic!("{relation} is not an object: {other}"),
    }
}

/// A relation's roles, each with the section its node must be declared in, if any.
type Roles = &'static [(&'static str, Option<&'static str>)];

/// The document's shape: declared prefixes, nodes in one section each with a
/// label and type, relations whose members are strings naming declared nodes.
fn assert_prov_shape(doc: &Value) {
    let doc_map = doc.as_object().unwrap_or_else(|| panic!("not an object: {doc}"));
    let prefixes = doc_map["prefix"].as_object().expect("a prefix object");
    assert!(prefixes.values().all(Value::is_string));
    let has_prefix = |name: &str| {
        let (prefix, local) = name.split_once(':').unwrap_or_else(|| panic!("{name} is not a qualified name"));
        assert!(!local.is_empty(), "{name}");
        assert!(prefix == "prov" || prefix == "xsd" || prefixes.contains_key(prefix), "{name}: undeclared prefix");
    };
    for section in SECTIONS {
        let nodes = doc_map[section].as_object().unwrap_or_else(|| panic!("{section} is not an object"));
        for (id, attrs) in nodes {
            has_prefix(id);
            assert!(attrs["prov:label"].is_string(), "{id}");
            let ty = text(&attrs["prov:type"]["$"]);
            has_prefix(&ty);
            assert_eq!(attrs["prov:type"]["type"], "prov:QUALIFIED_NAME", "{id}");
        }
    }
    let at = declared(doc);
    let roles: [(&str, Roles); 5] = [
        ("wasGeneratedBy", &[("prov:entity", Some("entity")), ("prov:activity", Some("activity"))]),
        ("wasInfluencedBy", &[("prov:influencee", None), ("prov:influencer", None)]),
        ("hadPrimarySource", &[("prov:generatedEntity", None), ("prov:usedEntity", Some("entity"))]),
        ("wasAttributedTo", &[("prov:entity", Some("entity")), ("prov:agent", Some("agent"))]),
        ("wasAssociatedWith", &[("prov:activity", Some("activity")), ("prov:agent", Some("agent"))]),
    ];
    for (relation, roles) in roles {
        for (key, _) in doc.get(relation).and_then(Value::as_object).into_iter().flatten() {
            assert!(key.starts_with("_:"), "{relation} {key} is a blank identifier");
        }
        for member in members(doc, relation) {
            for (role, section) in roles {
                let id = member
                    .get(*role)
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("{relation} {member:?} has no {role}"));
                has_prefix(id);
                let found = at.get(id).unwrap_or_else(|| panic!("{relation} names {id}, which is not declared"));
                if let Some(section) = section {
                    assert_eq!(found, section, "{relation}'s {role} {id}");
                }
            }
        }
    }
}

/// How many of each relation a set of seed relationships makes.
fn relation_counts(rels: &[&Value]) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for r in rels {
        // hadPrimarySource joins entities only: a citing activity or agent is a typed influence.
        let relation = match r["kind"].as_str().unwrap() {
            "PRODUCED" => "wasGeneratedBy",
            "CITES" if section_of(r["from"].as_str().unwrap()) == "entity" => "hadPrimarySource",
            _ => "wasInfluencedBy",
        };
        *out.entry(relation).or_default() += 1;
    }
    out
}

fn section_of(id: &str) -> &'static str {
    match id.split(':').nth(1).unwrap() {
        "experiment" => "activity",
        "organisation" => "agent",
        _ => "entity",
    }
}

#[tokio::test]
async fn provenance_of_a_learning_is_its_neighbourhood_in_prov_json() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let seed = seed();
    let id = "kc:learning:embrace-uncertainty-and-failure";
    let doc = server.data(PROVENANCE, json!({ "id": id, "depth": 1 })).await["provenance"].clone();
    assert_prov_shape(&doc);
    for key in ["prefix", "entity", "activity", "agent", "wasGeneratedBy", "wasInfluencedBy", "hadPrimarySource"] {
        assert!(doc[key].is_object(), "{key} is missing: {doc:#}");
    }
    assert_eq!(doc["prefix"]["kc"], "urn:pvgraph:kc:");

    // Depth 1: the learning, the nodes at the ends of its relationships with their owners, and
    // every relationship among those nodes, each once.
    let incident: Vec<&Value> = seed.relationships.iter().filter(|r| r["from"] == id || r["to"] == id).collect();
    let mut nodes: BTreeSet<String> = BTreeSet::from([id.to_owned()]);
    for r in &incident {
        nodes.insert(text(&r["from"]));
        nodes.insert(text(&r["to"]));
    }
    let among: Vec<&Value> = seed
        .relationships
        .iter()
        .filter(|r| nodes.contains(&text(&r["from"])) && nodes.contains(&text(&r["to"])))
        .collect();
    let counts = relation_counts(&among);
    for relation in ["wasGeneratedBy", "wasInfluencedBy", "hadPrimarySource"] {
        assert_eq!(members(&doc, relation).len(), counts.get(relation).copied().unwrap_or(0), "{relation}");
    }
    let owners: Vec<String> = nodes.iter().map(|n| format!("{0}:organisation:{0}", organisation(n))).collect();
    nodes.extend(owners);
    let at = declared(&doc);
    assert_eq!(at.keys().cloned().collect::<BTreeSet<_>>(), nodes);
    for (node, section) in &at {
        assert_eq!(*section, section_of(node), "{node}");
    }
    // The learning was generated by the programme that produced it.
    let generated = members(&doc, "wasGeneratedBy");
    assert!(generated.iter().any(|g| g["prov:entity"] == id
        && g["prov:activity"] == "kc:experiment:reimagining-public-value-programme"));
    // Its influences keep their properties.
    let influence = members(&doc, "wasInfluencedBy")
        .into_iter()
        .find(|i| i["prov:influencer"] == id && i["prov:influencee"] == "kc:principle:take-the-right-risks")
        .expect("the influence on take-the-right-risks");
    assert_eq!(influence["pv.vocab:strength"], "MODERATE");
    assert_eq!(influence["pv.vocab:on"], "2022-09-30");

    // Depth 2 holds depth 1 and more.
    let wider = server.data(PROVENANCE, json!({ "id": id, "depth": 2 })).await["provenance"].clone();
    assert_prov_shape(&wider);
    let wider_at = declared(&wider);
    assert!(at.keys().all(|k| wider_at.contains_key(k)));
    assert!(wider_at.len() > at.len());
}

#[tokio::test]
async fn provenance_refuses_bad_depths_and_unknown_nodes() {
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    let id = "kc:learning:embrace-uncertainty-and-failure";
    for depth in [0, 11, -1] {
        let code = server.error_code(PROVENANCE, json!({ "id": id, "depth": depth })).await;
        assert_eq!(code, "BAD_USER_INPUT", "depth {depth}");
    }
    let code = server.error_code(PROVENANCE, json!({ "id": "kc:learning:unknown", "depth": 1 })).await;
    assert_eq!(code, "NOT_FOUND");
    let code = server.error_code(PROVENANCE, json!({ "id": "nope", "depth": 1 })).await;
    assert_eq!(code, "BAD_USER_INPUT");
    // The default depth is 1.
    let default = server.data("query($id: ID!) { provenance(id: $id) }", json!({ "id": id })).await;
    let one = server.data(PROVENANCE, json!({ "id": id, "depth": 1 })).await;
    assert_eq!(default["provenance"], one["provenance"]);
}

fn store_arg(db: &Path) -> String {
    format!("sqlite://{}", db.display())
}

/// The seed imported by the binary into a fresh store, exported as PROV-JSON.
async fn exported_prov(dir: &Path) -> Value {
    let db = dir.join("export.db");
    let seed_file = concat!(env!("CARGO_MANIFEST_DIR"), "/seed/king-county.json");
    pvgraph(&["import", seed_file, "--store", &store_arg(&db)]).await;
    let out = pvgraph(&["export", "--format", "prov-json", "--store", &store_arg(&db)]).await;
    serde_json::from_slice(&out.stdout).expect("the export is JSON")
}

#[tokio::test]
async fn export_as_prov_json_is_the_whole_seed() {
    let dir = temp_dir();
    let doc = exported_prov(dir.path()).await;
    let seed = seed();
    assert_prov_shape(&doc);
    for key in ["prefix", "entity", "activity", "agent", "wasGeneratedBy", "wasInfluencedBy", "hadPrimarySource"] {
        assert!(doc[key].is_object(), "{key} is missing");
    }
    let at = declared(&doc);
    assert_eq!(at.keys().cloned().collect::<BTreeSet<_>>(), seed.nodes.keys().cloned().collect());
    for (node, section) in &at {
        assert_eq!(*section, section_of(node), "{node}");
    }
    let all: Vec<&Value> = seed.relationships.iter().collect();
    for (relation, count) in relation_counts(&all) {
        assert_eq!(members(&doc, relation).len(), count, "{relation}");
    }
    let activities = at.values().filter(|s| **s == "activity").count();
    let entities = at.values().filter(|s| **s == "entity").count();
    assert_eq!(members(&doc, "wasAssociatedWith").len(), activities);
    assert_eq!(members(&doc, "wasAttributedTo").len(), entities);
    let mut orgs: Vec<&str> = seed.nodes.keys().map(|id| organisation(id)).collect();
    orgs.dedup();
    for org in orgs {
        assert_eq!(doc["prefix"][org], format!("urn:pvgraph:{org}:"));
    }
    // The same file with --output.
    let out = dir.path().join("prov.json");
    let db = dir.path().join("export.db");
    pvgraph(&["export", "--format", "prov-json", "--store", &store_arg(&db), "--output", out.to_str().unwrap()]).await;
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written, doc);
}

#[tokio::test]
async fn prov_primary_sources_join_entities_only() {
    let dir = temp_dir();
    let doc = exported_prov(dir.path()).await;
    let at = declared(&doc);
    let wrong: Vec<String> = members(&doc, "hadPrimarySource")
        .iter()
        .map(|m| text(&m["prov:generatedEntity"]))
        .filter(|id| at[id] != "entity")
        .collect();
    // PROV-DM: hadPrimarySource(e2, e1) is a derivation of entity e2 from entity e1, and
    // PROV-CONSTRAINTS makes entities and activities (and so agents typed otherwise) disjoint.
    assert!(wrong.is_empty(), "{} primary-source derivations start at a non-entity: {wrong:?}", wrong.len());
}

#[tokio::test]
async fn prov_prefixes_do_not_collide_with_organisation_slugs() {
    let dir = temp_dir();
    let server = TestServer::empty(dir.path()).await;
    let org = "mutation($i: CreateOrganisationInput!) { createOrganisation(input: $i) { id } }";
    server.data(org, json!({ "i": { "organisation": "pvgraph", "title": "A council called pvgraph" } })).await;
    let learning = "mutation($i: CreateLearningInput!) { createLearning(input: $i) { id } }";
    let input = json!({ "organisation": "pvgraph", "title": "Names clash", "statement": "s", "kind": "PROCESS" });
    let id = text(&server.data(learning, json!({ "i": input })).await["createLearning"]["id"]);
    let doc = server.data(PROVENANCE, json!({ "id": id, "depth": 1 })).await["provenance"].clone();
    assert!(doc["entity"].get(&id).is_some());
    // The learning's qualified name must expand to its organisation's namespace, while the
    // vocabulary's terms (pvgraph:Learning, pvgraph:assertion…) keep theirs: one prefix cannot do both.
    let expansion = text(&doc["prefix"]["pvgraph"]);
    assert_eq!(expansion, "urn:pvgraph:pvgraph:", "{:#}", doc["prefix"]);
}
