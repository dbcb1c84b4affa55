//! Property-based fuzzing (proptest): generated GraphQL documents, variables
//! and seed files thrown at the real schema (in process, over a seeded SQLite
//! file) and at the importer. Nothing may panic, and every error must carry
//! `extensions.code`.
//!
//! `PVGRAPH_FUZZ_CASES` sets the total number of cases (default 3,000), split
//! over the three targets as 6 : 2 : 2. The README's Security section records the runs.

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pvgraph::domain::{Caller, Member, Role};
use pvgraph::graphql::{Api, ChangeFeed, api};
use pvgraph::store::{Store, StoreLocation};
use serde_json::{Value, json};

fn total_cases() -> u32 {
    std::env::var("PVGRAPH_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

fn runner(share: u32) -> TestRunner {
    let cases = (total_cases() * share / 10).max(1);
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

/// Every identifier the schema's SDL spells: field, argument, type and enum names.
fn schema_words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let sdl = pvgraph::graphql::sdl();
        let mut words: Vec<String> = sdl
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_'))
            .map(str::to_owned)
            .collect();
        words.extend(["__schema", "__type", "__typename", "kc:value:equity"].map(str::to_owned));
        words.sort();
        words.dedup();
        words
    })
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(schema_words()),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        1 => "\\PC{1,6}",
    ]
}

fn literal() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| format!("{n:?}")),
        "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
        word(),
        Just("null".to_owned()),
        Just("true".to_owned()),
        "[a-z]{1,4}".prop_map(|v| format!("${v}")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|items| format!("[{}]", items.join(", "))),
            proptest::collection::vec((word(), inner), 0..4).prop_map(|fields| {
                let fields: Vec<String> = fields.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

fn field_head() -> impl Strategy<Value = String> {
    (proptest::option::weighted(0.2, word()), word(), proptest::collection::vec((word(), literal()), 0..3)).prop_map(
        |(alias, name, args)| {
            let alias = alias.map(|a| format!("{a}: ")).unwrap_or_default();
            let args: Vec<String> = args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let args = if args.is_empty() { String::new() } else { format!("({})", args.join(", ")) };
            format!("{alias}{name}{args}")
        },
    )
}

fn selection() -> impl Strategy<Value = String> {
    field_head().prop_recursive(8, 64, 5, |inner| {
        prop_oneof![
            (field_head(), proptest::collection::vec(inner.clone(), 1..5))
                .prop_map(|(head, items)| format!("{head} {{ {} }}", items.join(" "))),
            (word(), proptest::collection::vec(inner.clone(), 1..4))
                .prop_map(|(ty, items)| format!("... on {ty} {{ {} }}", items.join(" "))),
            "[A-Z][a-z]{0,3}".prop_map(|f| format!("...{f}")),
        ]
    })
}

/// A document: operations and fragments built from the schema's words, then perhaps damaged.
fn document() -> impl Strategy<Value = String> {
    let operation = (
        prop_oneof![
            Just(""),
            Just("query"),
            Just("mutation"),
            Just("subscription"),
            Just("query Q($a: ID, $b: [String!])")
        ],
        proptest::collection::vec(selection(), 1..5),
    )
        .prop_map(|(kind, items)| format!("{kind} {{ {} }}", items.join(" ")));
    let fragment = ("[A-Z][a-z]{0,3}", word(), proptest::collection::vec(selection(), 1..4))
        .prop_map(|(name, ty, items)| format!("fragment {name} on {ty} {{ {} }}", items.join(" ")));
    let damage = proptest::collection::vec((any::<prop::sample::Index>(), "\\PC{0,3}"), 0..3);
    (proptest::collection::vec(prop_oneof![3 => operation, 1 => fragment], 1..4), damage).prop_map(|(parts, damage)| {
        let mut text = parts.join("\n");
        for (at, junk) in damage {
            let mut at = at.index(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &junk);
        }
        text
    })
}

/// Arbitrary JSON, for variables and seed fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map(Value::Number).unwrap_or(Value::Null)),
        "\\PC{0,16}".prop_map(Value::from),
        proptest::sample::select(schema_words()).prop_map(Value::from),
        "(kc|acme|zz):(value|principle|barrier|experiment|learning|source|organisation):[a-z-]{0,8}"
            .prop_map(Value::from),
        "20[0-9]{2}-[0-1][0-9]-[0-3][0-9]".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![proptest::sample::select(schema_words()), "[a-z]{1,6}".prop_map(String::from)],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

struct Target {
    runtime: tokio::runtime::Runtime,
    schema: Api,
    store: Store,
    _dir: tempfile::TempDir,
}

fn target() -> Target {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = common::temp_dir();
    let store = runtime.block_on(async {
        let store = pvgraph::store::open(&StoreLocation::Sqlite(dir.path().join("fuzz.db"))).await.unwrap();
        pvgraph::seed::load(&store, pvgraph::seed::KING_COUNTY).await.unwrap();
        store
    });
    Target { runtime, schema: api(store.clone(), ChangeFeed::default()), store, _dir: dir }
}

impl Target {
    fn run(&self, query: &str, variables: Value) -> Result<(), TestCaseError> {
        let request = async_graphql::Request::new(query).variables(async_graphql::Variables::from_json(variables));
        // An admin of King County, so that generated mutations reach the store's own checks.
        let caller = Caller::Member(Member { organisation: "kc".into(), role: Role::Admin, subject: "fuzz".into() });
        let (response, _) = self.runtime.block_on(self.schema.run_as(request, &self.store, caller, None, None));
        for error in &response.errors {
            let coded = error.extensions.as_ref().is_some_and(|e| e.get("code").is_some());
            prop_assert!(coded, "an error without a code: {error:?} for {query}");
        }
        Ok(())
    }
}

#[test]
fn generated_documents_never_panic_and_every_error_has_a_code() {
    let target = target();
    runner(6).run(&document(), |query| target.run(&query, json!({}))).unwrap();
}

/// Real operations, with whatever variables.
const OPERATIONS: [&str; 8] = [
    "query($id: ID!) { node(id: $id) { id ... on Value { title } } }",
    "query($ids: [ID!]!) { nodes(ids: $ids) { id } }",
    "query($f: NodeFilter, $n: Int, $a: String) { values(filter: $f, first: $n, after: $a) { totalCount nodes { id } } }",
    "query($t: String!, $k: [NodeKind!], $n: Int) { search(text: $t, kinds: $k, first: $n) { score node { id } } }",
    "query($f: ID!, $d: Int, $v: [RelationshipKind!], $o: Date) { trace(from: $f, maxDepth: $d, via: $v, asOf: $o) { truncated nodes { depth } } }",
    "mutation($i: CreateValueInput!) { createValue(input: $i) { id } }",
    "mutation($i: LinkInput!) { link(input: $i) { kind } }",
    "mutation($i: RecordInfluenceInput!) { recordInfluence(input: $i) { kind } }",
];

#[test]
fn generated_variables_never_panic_and_every_error_has_a_code() {
    let target = target();
    let cases =
        (proptest::sample::select(&OPERATIONS[..]), proptest::collection::btree_map("[a-z]{1,2}", json_value(), 0..5));
    runner(2)
        .run(&cases, |(query, variables)| target.run(query, Value::Object(variables.into_iter().collect())))
        .unwrap();
}

/// Seed files shaped like the real ones: nodes with id-like ids and known fields, relationships
/// between them, and now and then anything at all.
fn seed_file() -> impl Strategy<Value = String> {
    let node = (
        "(zz|kc):(value|principle|barrier|experiment|learning|source|organisation):[a-z]{1,6}",
        proptest::collection::btree_map(proptest::sample::select(schema_words()), json_value(), 0..6),
    )
        .prop_map(|(id, mut fields)| {
            fields.insert("id".into(), Value::from(id));
            fields.entry("title".into()).or_insert_with(|| Value::from("A title"));
            Value::Object(fields.into_iter().collect())
        });
    let relationship = (
        prop_oneof![proptest::sample::select(schema_words()), Just("UPHOLDS".to_owned()), Just("CITES".to_owned())],
        "zz:(value|principle|source):[a-z]{1,3}",
        "zz:(value|principle|source):[a-z]{1,3}",
        proptest::collection::btree_map(proptest::sample::select(schema_words()), json_value(), 0..3),
    )
        .prop_map(|(kind, from, to, mut rest)| {
            rest.insert("kind".into(), Value::from(kind));
            rest.insert("from".into(), Value::from(from));
            rest.insert("to".into(), Value::from(to));
            Value::Object(rest.into_iter().collect())
        });
    let shaped = (proptest::collection::vec(node, 0..8), proptest::collection::vec(relationship, 0..8)).prop_map(
        |(nodes, relationships)| {
            json!({ "format": "pvgraph/1", "nodes": nodes, "relationships": relationships }).to_string()
        },
    );
    prop_oneof![
        6 => shaped,
        1 => json_value().prop_map(|v| v.to_string()),
        1 => "\\PC{0,64}",
    ]
}

#[test]
fn generated_seed_files_never_panic_the_importer() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = common::temp_dir();
    let store = runtime
        .block_on(pvgraph::store::open(&StoreLocation::Sqlite(dir.path().join("import.db"))))
        .expect("the store opens");
    runner(2)
        .run(&seed_file(), |text| {
            // Refusals are fine; what is loaded is loaded whole (the durability suite checks that).
            let _ = runtime.block_on(pvgraph::seed::load(&store, &text));
            Ok(())
        })
        .unwrap();
}
