//! The `pvgraph` binary: parse the command line and run it.

/// mimalloc rather than the system allocator: a request allocates and frees a
/// few hundred small values (parsed variables, GraphQL values, futures), and
/// glibc's malloc and free were a fifth of a small query's instructions (see
/// benches/HISTORY.md). The library leaves the choice to the binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pvgraph::cli::run()
}
