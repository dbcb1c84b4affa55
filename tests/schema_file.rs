//! The checked-in SDLs are what the server serves: frontend teams build on
//! `schema/schema.graphql`, and gateways compose `schema/subgraph.graphql`.

fn assert_current(file: &str, current: &str, command: &str) {
    let path = format!("{}/schema/{file}", env!("CARGO_MANIFEST_DIR"));
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == current,
        "schema/{file} is out of date; regenerate it with\n\n    {command} > schema/{file}\n"
    );
}

#[test]
fn schema_file_is_current() {
    assert_current("schema.graphql", &pvgraph::graphql::sdl(), "cargo run -- schema");
}

#[test]
fn subgraph_file_is_current() {
    assert_current("subgraph.graphql", &pvgraph::graphql::subgraph_sdl(), "cargo run -- schema --federation");
}
