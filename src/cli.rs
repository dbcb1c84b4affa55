//! The command line: `serve` (the default), `import`, `export` and `schema`.
//! Every flag is also a `PVGRAPH_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::domain::SeedFile;
use crate::store::{self, StoreLocation};

#[derive(Parser, Debug)]
#[command(name = "pvgraph", version, about = "A GraphQL knowledge graph of public-sector experiments")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve GraphQL and GraphiQL (the default).
    Serve(ServeArgs),
    /// Load a seed file into the store, all of it or nothing.
    Import {
        /// The seed file (JSON, see docs/seed-format.md).
        file: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Write the whole graph out.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Where to write; standard output when left out.
        #[arg(long, short)]
        output: Option<PathBuf>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Write a synthetic graph in the seed format, the same for the same seed.
    Generate {
        /// How many organisations; each brings about 100 nodes.
        #[arg(long, default_value_t = 10)]
        organisations: usize,
        /// The random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where to write; standard output when left out.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum ExportFormat {
    /// The seed format, re-importable without loss.
    Json,
    /// W3C PROV-JSON.
    ProvJson,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StoreArg {
    /// Where the graph lives: sqlite://PATH (relative), sqlite:///PATH (absolute), or neo4j://HOST:PORT.
    #[arg(long = "store", env = "PVGRAPH_STORE", default_value = "sqlite://data/pvgraph.db")]
    pub location: StoreLocation,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "PVGRAPH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArg,
    /// A seed file to load into an empty store; the built-in King County data when left out.
    #[arg(long, env = "PVGRAPH_SEED", conflicts_with = "no_seed")]
    pub seed: Option<PathBuf>,
    /// Start with an empty store rather than seeding it.
    #[arg(long, env = "PVGRAPH_NO_SEED")]
    pub no_seed: bool,
    /// Log format.
    #[arg(long, env = "PVGRAPH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Parses the command line and runs the command.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("pvgraph: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pvgraph: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => crate::server::serve(cli.serve).await,
        Some(Command::Serve(args)) => crate::server::serve(args).await,
        Some(Command::Schema) => {
            print!("{}", crate::graphql::sdl());
            Ok(())
        }
        Some(Command::Generate { organisations, seed, output }) => {
            let plan = crate::generate::Plan { organisations, seed };
            let made = match output {
                Some(path) => crate::generate::write(plan, std::fs::File::create(&path)?)?,
                None => crate::generate::write(plan, std::io::stdout().lock())?,
            };
            eprintln!("generated {} nodes and {} relationships", made.nodes, made.relationships);
            Ok(())
        }
        Some(Command::Import { file, store }) => {
            let store = open(&store.location).await?;
            let loaded = crate::seed::load_file(&store, &file).await?;
            eprintln!(
                "imported {} nodes and {} relationships from {}",
                loaded.nodes,
                loaded.relationships,
                file.display()
            );
            Ok(())
        }
        Some(Command::Export { format, output, store }) => {
            let store = open(&store.location).await?;
            let (nodes, edges) = store.dump().await?;
            let mut text = match format {
                ExportFormat::Json => serde_json::to_string_pretty(&SeedFile::from_graph(&nodes, &edges))?,
                ExportFormat::ProvJson => serde_json::to_string_pretty(&crate::prov::document(&nodes, &edges))?,
            };
            text.push('\n');
            match output {
                Some(path) => std::fs::write(&path, text)?,
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

async fn open(location: &StoreLocation) -> anyhow::Result<store::Store> {
    store::open(location).await.map_err(|e| anyhow::anyhow!("cannot open the store at {location}: {e}"))
}
