//! The checked-in SDL is what the server serves: frontend teams build on it.

#[test]
fn schema_file_is_current() {
    let current = pvgraph::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/schema.graphql");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == current,
        "schema/schema.graphql is out of date; regenerate it with\n\n    cargo run -- schema > schema/schema.graphql\n"
    );
}
