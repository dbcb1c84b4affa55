//! Serving: open the store, seed it when empty, listen, and shut down
//! gracefully on SIGINT or SIGTERM.

use std::net::SocketAddr;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

use crate::cli::{LogFormat, ServeArgs};
use crate::http::{AppState, HttpOptions, PersistedQueries, app};

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second initialisation (tests) is harmless; ignore it.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let store = match &args.store.location {
        crate::store::StoreLocation::Sqlite(path) => crate::store::open_sqlite(path, args.walk_cache_entries).await,
        location => crate::store::open_with(location, &args.store.neo4j.options()).await,
    }
    .with_context(|| format!("cannot open the store at {}", args.store.location))?;
    if !args.no_seed && store.is_empty().await? {
        let loaded = match &args.seed {
            Some(path) => crate::seed::load_file(&store, path).await,
            None => crate::seed::load(&store, crate::seed::KING_COUNTY).await,
        }
        .context("cannot load the seed")?;
        tracing::info!(nodes = loaded.nodes, relationships = loaded.relationships, "seeded an empty store");
    }
    let queries = match &args.persisted_queries {
        Some(path) => {
            let queries = PersistedQueries::load(path, args.persisted_only)?;
            tracing::info!(queries = queries.listed(), only = args.persisted_only, "loaded the persisted queries");
            queries
        }
        None => PersistedQueries::default(),
    };
    let partners = args.partners.partners(&store).await?;
    let mut state =
        AppState::with_options(store.clone(), HttpOptions { queries, limits: args.limits, ..HttpOptions::default() })
            .with_auth(args.auth.authenticator(store)?);
    if let Some(partners) = partners {
        tracing::info!(partners = ?partners.organisations(), "reaching into partner instances");
        state = state.with_partners(partners);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(store = %args.store.location, "pvgraph serves GraphiQL at http://{address}/");
    // Connection info gives the rate limit each client's address.
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(keep_the_timer_ahead());
    axum::serve(listener, service).with_graceful_shutdown(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Every request sets two deadlines (`--request-timeout`, and the same with its grace around the
/// whole answer). Tokio wakes the worker parked on its timer for each new deadline earlier than
/// the one it sleeps towards, and with no timer at all that is every deadline: a wake-up (an
/// `eventfd` write and a trip round the other worker) for each request. A tick every second keeps
/// an earlier deadline always set, so a request's deadline, further off, wakes nobody
/// (benches/HISTORY.md, "the timer kept ahead of requests' deadlines").
async fn keep_the_timer_ahead() {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
