//! Every GraphQL example in the README runs without errors on the King County
//! seed, so the front door never shows a query that fails.

mod common;

use common::{TestServer, temp_dir};
use serde_json::{Value, json};

fn readme_queries() -> Vec<String> {
    let readme = include_str!("../README.md");
    let mut queries = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```graphql") => current = Some(String::new()),
            (Some(query), "```") => {
                queries.push(std::mem::take(query));
                current = None;
            }
            (Some(query), text) => {
                query.push_str(text);
                query.push('\n');
            }
            (None, _) => {}
        }
    }
    queries
}

/// Whether a JSON answer holds any non-empty list: a query that answers only
/// empty lists on the seed would make a poor example.
fn has_content(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => map.values().any(has_content),
        _ => false,
    }
}

#[tokio::test]
async fn every_readme_query_runs_on_the_seed_and_finds_something() {
    let queries = readme_queries();
    assert!(queries.len() >= 9, "the README should show at least nine queries, found {}", queries.len());
    let dir = temp_dir();
    let server = TestServer::seeded(dir.path()).await;
    for query in queries {
        let body = server.gql(&query, json!({})).await;
        assert!(body.get("errors").is_none(), "README query failed:\n{query}\n{body:#}");
        assert!(has_content(&body["data"]), "README query found nothing on the seed:\n{query}\n{body:#}");
    }
}

/// The lines of a text with their indentation and trailing blanks removed.
fn lines(text: &str) -> Vec<&str> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).collect()
}

#[test]
fn graphiqls_example_tabs_are_shown_in_the_readme() {
    // The README test above runs the README's queries, so a tab that is in the
    // README is a tab that works; the subscription is run by the browser tests.
    let readme = lines(include_str!("../README.md"));
    for example in pvgraph::http::EXAMPLES {
        let example = lines(example);
        assert!(
            readme.windows(example.len()).any(|window| window == example),
            "GraphiQL's example tab is not in the README:\n{}",
            example.join("\n")
        );
    }
}
