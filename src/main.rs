//! The `pvgraph` binary: parse the command line and run it.

fn main() -> std::process::ExitCode {
    pvgraph::cli::run()
}
