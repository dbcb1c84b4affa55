//! The command line: `serve` (the default), `import`, `export`, `copy`,
//! `backup`, `restore` and `schema`. Every flag is also a `PVGRAPH_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::domain::{Change, NodeKind, SeedFile};
use crate::store::{self, Neo4jOptions, StoreLocation};

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
    Serve(Box<ServeArgs>),
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
    /// Copy a whole graph, with the API tokens and the audit trail, from one store into another
    /// that holds no node; the graph in one transaction.
    Copy {
        /// The store to copy from (sqlite://PATH, neo4j://HOST:PORT, bolt://HOST:PORT).
        #[arg(long, env = "PVGRAPH_COPY_FROM")]
        from: StoreLocation,
        /// The store to copy into; it must hold no node.
        #[arg(long, env = "PVGRAPH_COPY_TO")]
        to: StoreLocation,
        /// How to reach a Neo4j server at either end.
        #[command(flatten)]
        neo4j: Neo4jArgs,
    },
    /// Copy the embedded store into FILE, consistently, while a server may be running on it.
    Backup {
        /// The file to write (replaced when it exists).
        file: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Replace the embedded store with a backup; stop the server first.
    Restore {
        /// A file written by `pvgraph backup`.
        file: PathBuf,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Print the GraphQL schema (SDL).
    Schema {
        /// Print the Apollo Federation v2 subgraph SDL instead (what `_service { sdl }` serves).
        #[arg(long)]
        federation: bool,
    },
    /// Issue, revoke and list API tokens.
    #[command(subcommand)]
    Token(crate::auth::cli::TokenCommand),
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
    /// GraphML, for Gephi and yEd.
    Graphml,
    /// A Cypher script that recreates the graph in Neo4j, in the layout pvgraph serves.
    Cypher,
}

#[derive(clap::Args, Debug, Clone)]
pub struct StoreArg {
    /// Where the graph lives: sqlite://PATH (relative), sqlite:///PATH (absolute), or neo4j://HOST:PORT.
    #[arg(long = "store", env = "PVGRAPH_STORE", default_value = "sqlite://data/pvgraph.db")]
    pub location: StoreLocation,
    #[command(flatten)]
    pub neo4j: Neo4jArgs,
}

impl StoreArg {
    /// Opens the store.
    pub async fn open(&self) -> anyhow::Result<store::Store> {
        open(&self.location, &self.neo4j.options()).await
    }
}

/// How to reach a Neo4j server (used only when the store is `neo4j://` or `bolt://`).
#[derive(clap::Args, Debug, Clone)]
pub struct Neo4jArgs {
    /// The Neo4j user.
    #[arg(long = "neo4j-user", env = "PVGRAPH_NEO4J_USER", default_value = "neo4j")]
    pub user: String,
    /// The Neo4j user's password.
    #[arg(
        long = "neo4j-password",
        env = "PVGRAPH_NEO4J_PASSWORD",
        default_value = "",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub password: String,
    /// The Neo4j database; the server's default when left out.
    #[arg(long = "neo4j-database", env = "PVGRAPH_NEO4J_DATABASE")]
    pub database: Option<String>,
    /// How many Bolt connections to keep open at most.
    #[arg(long = "neo4j-pool-size", env = "PVGRAPH_NEO4J_POOL_SIZE", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub pool_size: u16,
    /// Seconds to wait for a connection, or for any one answer, before the store counts as unavailable.
    #[arg(long = "neo4j-connect-timeout", env = "PVGRAPH_NEO4J_CONNECT_TIMEOUT", default_value_t = 10.0,
          value_parser = positive_seconds)]
    pub connect_timeout: f64,
}

impl Neo4jArgs {
    pub fn options(&self) -> Neo4jOptions {
        Neo4jOptions {
            user: self.user.clone(),
            password: self.password.clone(),
            database: self.database.clone().filter(|d| !d.is_empty()),
            pool_size: self.pool_size.into(),
            connect_timeout: std::time::Duration::from_secs_f64(self.connect_timeout),
            ..Neo4jOptions::default()
        }
    }
}

pub(crate) fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(s),
        _ => Err(format!("`{text}` is not a number of seconds from more than 0 to 3600")),
    }
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
    /// A list of persisted queries (Apollo's persisted query manifest, or a JSON object from
    /// SHA-256 hash to query) that clients may name by hash.
    #[arg(long, env = "PVGRAPH_PERSISTED_QUERIES")]
    pub persisted_queries: Option<PathBuf>,
    /// Run only the queries of --persisted-queries; refuse every other one.
    #[arg(long, env = "PVGRAPH_PERSISTED_ONLY", requires = "persisted_queries")]
    pub persisted_only: bool,
    /// Log format.
    #[arg(long, env = "PVGRAPH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How many nodes and relationship lists that traces, path searches and a node's
    /// relationship fields read the embedded store keeps in memory for the next ones (about
    /// 2 KB each); 0 keeps none.
    #[arg(long, env = "PVGRAPH_WALK_CACHE_ENTRIES", default_value_t = store::sqlite::WALK_CACHE_ENTRIES)]
    pub walk_cache_entries: usize,
    #[command(flatten)]
    pub auth: crate::auth::cli::AuthArgs,
    #[command(flatten)]
    pub limits: crate::limits::Limits,
    #[command(flatten)]
    pub partners: PartnerArgs,
}

/// Partner governments' instances (see docs/federation.md).
#[derive(clap::Args, Clone, Debug)]
pub struct PartnerArgs {
    /// A partner instance, as ORG=URL (its organisation slug and its GraphQL endpoint);
    /// repeatable. The token it issued to this instance is read from
    /// PVGRAPH_PARTNER_TOKEN_<ORG>, or from the file PVGRAPH_PARTNER_TOKEN_<ORG>_FILE names.
    #[arg(long = "partner", env = "PVGRAPH_PARTNERS", value_delimiter = ',', value_name = "ORG=URL")]
    pub partners: Vec<crate::partner::PartnerSpec>,
    /// Seconds one request to a partner may take.
    #[arg(long, env = "PVGRAPH_PARTNER_TIMEOUT", default_value_t = 3.0, value_parser = positive_seconds)]
    pub partner_timeout: f64,
    /// Seconds all the partner requests of one API request may take together.
    #[arg(long, env = "PVGRAPH_PARTNER_DEADLINE", default_value_t = 10.0, value_parser = positive_seconds)]
    pub partner_deadline: f64,
}

impl PartnerArgs {
    /// The partners, with their tokens from the environment; none when none are named. A
    /// partner whose slug is one of this instance's own organisations is refused.
    pub async fn partners(
        &self,
        store: &crate::store::Store,
    ) -> anyhow::Result<Option<std::sync::Arc<crate::partner::Partners>>> {
        use std::time::Duration;
        if self.partners.is_empty() {
            return Ok(None);
        }
        let mut specs = Vec::new();
        for spec in &self.partners {
            let own = crate::domain::NodeId::organisation_node(&spec.organisation)?;
            if !store.nodes(std::slice::from_ref(&own)).await?.is_empty() {
                anyhow::bail!("partner {} is an organisation of this instance", spec.organisation);
            }
            specs.push((spec.clone(), crate::partner::token_from_env(&spec.organisation)?));
        }
        let partners = crate::partner::Partners::new(
            specs,
            Duration::from_secs_f64(self.partner_timeout),
            Duration::from_secs_f64(self.partner_deadline),
        )?;
        Ok(Some(std::sync::Arc::new(partners)))
    }
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

/// Logs to standard error what `RUST_LOG` asks for (warnings by default), with
/// each span's time when it closes: `RUST_LOG=pvgraph=debug pvgraph import ...`
/// shows the import's phases.
fn log_phases() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => crate::server::serve(cli.serve).await,
        Some(Command::Serve(args)) => crate::server::serve(*args).await,
        Some(Command::Token(command)) => crate::auth::cli::run(command).await,
        Some(Command::Schema { federation }) => {
            to_stdout(&if federation { crate::graphql::subgraph_sdl() } else { crate::graphql::sdl() })?;
            Ok(())
        }
        Some(Command::Generate { organisations, seed, output }) => {
            let plan = crate::generate::Plan { organisations, seed };
            // Each organisation is visited twice: once for its nodes, once for its relationships.
            let bar = progress_bar(2 * organisations as u64, "generating {wide_bar} {percent}% {elapsed} (eta {eta})");
            let tick = || bar.inc(1);
            let made = match output {
                Some(path) => crate::generate::write_with(plan, std::fs::File::create(&path)?, tick)?,
                None => crate::generate::write_with(plan, std::io::stdout().lock(), tick)?,
            };
            bar.finish_and_clear();
            eprintln!("generated {} nodes and {} relationships", made.nodes, made.relationships);
            Ok(())
        }
        Some(Command::Copy { from, to, neo4j }) => {
            let options = neo4j.options();
            let copied = copy(&open(&from, &options).await?, &open(&to, &options).await?).await?;
            eprintln!(
                "copied {} nodes, {} relationships, {} API tokens and {} audit entries from {from} to {to}",
                copied.nodes, copied.relationships, copied.tokens, copied.audit_entries
            );
            Ok(())
        }
        Some(Command::Import { file, store }) => {
            log_phases();
            let store = store.open().await?;
            let opened = std::fs::File::open(&file)
                .map_err(|e| anyhow::anyhow!("file: {} cannot be read: {e}", file.display()))?;
            let size = opened.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = progress_bar(size, "importing {bytes}/{total_bytes} {wide_bar} {elapsed} (eta {eta}) {msg}");
            let reader = Watched { inner: opened, bar: bar.clone() };
            let loaded = crate::seed::load_reader(&store, reader).await;
            bar.finish_and_clear();
            let loaded = loaded?;
            eprintln!("imported {loaded} from {}", file.display());
            Ok(())
        }
        Some(Command::Backup { file, store }) => {
            let copied = crate::store::sqlite::backup::backup(&sqlite_path(&store)?, &file)?;
            eprintln!(
                "backed up {} nodes and {} relationships into {}",
                copied.nodes,
                copied.relationships,
                file.display()
            );
            Ok(())
        }
        Some(Command::Restore { file, store }) => {
            let copied = crate::store::sqlite::backup::restore(&file, &sqlite_path(&store)?)?;
            eprintln!(
                "restored {} nodes and {} relationships from {}",
                copied.nodes,
                copied.relationships,
                file.display()
            );
            Ok(())
        }
        Some(Command::Export { format, output, store }) => {
            let store = store.open().await?;
            let (nodes, edges) = store.dump().await?;
            let mut text = match format {
                ExportFormat::Json => serde_json::to_string_pretty(&SeedFile::from_graph(&nodes, &edges))?,
                ExportFormat::ProvJson => serde_json::to_string_pretty(&crate::prov::document(&nodes, &edges))?,
                ExportFormat::Graphml => crate::export::graphml(&nodes, &edges)?,
                ExportFormat::Cypher => crate::export::cypher(&nodes, &edges)?,
            };
            if !text.ends_with('\n') {
                text.push('\n');
            }
            match output {
                Some(path) => std::fs::write(&path, text)?,
                None => to_stdout(&text)?,
            }
            Ok(())
        }
    }
}

/// The file of an embedded store; backups of Neo4j are Neo4j's own business (`neo4j-admin`).
fn sqlite_path(store: &StoreArg) -> anyhow::Result<PathBuf> {
    match &store.location {
        StoreLocation::Sqlite(path) => Ok(path.clone()),
        StoreLocation::Neo4j(_) => {
            anyhow::bail!("backup and restore work on the embedded store; back up Neo4j with neo4j-admin")
        }
    }
}

async fn open(location: &StoreLocation, neo4j: &Neo4jOptions) -> anyhow::Result<store::Store> {
    store::open_with(location, neo4j)
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot open the store at {location}")))
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub nodes: usize,
    pub relationships: usize,
    pub tokens: usize,
    pub audit_entries: usize,
}

/// How many audit entries a copy reads and writes at a time.
const AUDIT_PAGE: usize = 1_000;

/// Copies everything `from` holds into `to`, which must hold no node.
///
/// Who may come in and what was changed by whom go first: the API tokens (revoked ones too, so
/// that a revoked token stays refused), then each organisation's audit trail, a page at a time.
/// Each is written over any with its id, so a copy that stopped there can simply run again.
/// Then every node and relationship, in one change set: organisations first, then the other
/// nodes, then the relationships, so that each finds what it needs. All of the graph, or none.
pub async fn copy(from: &store::Store, to: &store::Store) -> anyhow::Result<Copied> {
    if !to.is_empty().await? {
        anyhow::bail!("the target store ({}) already holds nodes; copy only into an empty store", to.backend());
    }
    let tokens = from.tokens().await?;
    to.restore_access(&tokens, &[]).await.context("the copy of the API tokens failed")?;
    let mut audit_entries = 0;
    for organisation in from.audit_organisations().await? {
        let mut after = None;
        loop {
            let query = store::AuditQuery { organisation: organisation.clone(), after, limit: AUDIT_PAGE };
            let page = from.audit_log(&query).await?;
            to.restore_access(&[], &page)
                .await
                .with_context(|| format!("the copy of the audit trail of {organisation} failed"))?;
            audit_entries += page.len();
            match page.last() {
                Some(last) if page.len() == AUDIT_PAGE => after = Some(store::Position::of_audit(last)),
                _ => break,
            }
        }
    }
    let (mut nodes, edges) = from.dump().await?;
    let copied = Copied { nodes: nodes.len(), relationships: edges.len(), tokens: tokens.len(), audit_entries };
    nodes.sort_by_key(|n| n.kind() != NodeKind::Organisation);
    let changes: Vec<Change> =
        nodes.into_iter().map(Change::Create).chain(edges.into_iter().map(Change::Link)).collect();
    to.apply(changes).await.map_err(|failed| {
        anyhow::Error::new(failed.error)
            .context(format!("the copy failed at change {}; nothing was written", failed.index))
    })?;
    Ok(copied)
}

/// A progress bar on standard error. indicatif draws nothing when standard
/// error is not a terminal, so logs and pipes stay clean; standard output,
/// where `generate` may write its file, is never touched.
fn progress_bar(length: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// A reader that moves a progress bar by the bytes read, and says when the
/// whole file was read (the store then builds its indexes and commits).
struct Watched<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: std::io::Read> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        if read == 0 && !buf.is_empty() {
            self.bar.set_message("read whole; finishing the indexes and committing");
        }
        self.bar.inc(read as u64);
        Ok(read)
    }
}

/// Writes to standard output; a reader that stops early (`| head`) is not an error.
fn to_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
