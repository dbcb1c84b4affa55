//! What one request may cost, and who may call how often: every limit the
//! server enforces, on by default, each a flag and a `PVGRAPH_*` variable.
//! The GraphQL layer reads the cost limits, the HTTP layer the rest.

use std::time::Duration;

use clap::ArgAction;

/// The limits a server runs with. `Limits::default()` equals the command line's defaults.
#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct Limits {
    /// How deeply a query's selections may nest.
    #[arg(long, env = "PVGRAPH_MAX_DEPTH", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_depth: u16,
    /// How complex a query may be: every field selected counts 1.
    #[arg(long, env = "PVGRAPH_MAX_COMPLEXITY", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_complexity: u32,
    /// How many aliased fields one request may hold, counted over its operations and fragments.
    #[arg(long, env = "PVGRAPH_MAX_ALIASES", default_value_t = 100)]
    pub max_aliases: u32,
    /// The largest `maxDepth` a trace, path search or provenance may ask for.
    #[arg(long, env = "PVGRAPH_MAX_TRACE_DEPTH", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub max_trace_depth: u32,
    /// How many nodes one trace shows at most (nodes hidden from the caller take no room, and a
    /// trace passes over as many at most); a trace cut short says so in `truncation`.
    #[arg(long, env = "PVGRAPH_MAX_TRACE_NODES", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_trace_nodes: u32,
    /// The largest page a list gives (`first`/`last` of connections, `first` of search and paths).
    #[arg(long, env = "PVGRAPH_MAX_PAGE_SIZE", default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=10_000))]
    pub max_page_size: u16,
    /// The largest request body, in bytes; a larger one is refused with 413.
    #[arg(long, env = "PVGRAPH_MAX_BODY_BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_body_bytes: u32,
    /// Seconds one request may run; a query still running then is cancelled and answered with TIMEOUT.
    #[arg(long, env = "PVGRAPH_REQUEST_TIMEOUT", default_value_t = 30.0, value_parser = crate::cli::positive_seconds)]
    pub request_timeout: f64,
    /// Requests a second allowed to each client address and to each bearer token (0 switches the rate limit off).
    #[arg(long, env = "PVGRAPH_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// How many requests a client may send at once above the rate before it is slowed down.
    #[arg(long, env = "PVGRAPH_RATE_LIMIT_BURST", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Whether the schema answers introspection (`__schema`, `__type`); `--introspection=false` in production.
    #[arg(long, env = "PVGRAPH_INTROSPECTION", default_value_t = true, action = ArgAction::Set)]
    pub introspection: bool,
    /// An origin whose pages may call the API from a browser (repeatable; comma-separated in the
    /// variable). None by default: cross-origin calls from browsers are refused.
    #[arg(long = "cors-origin", env = "PVGRAPH_CORS_ORIGINS", value_delimiter = ',',
          value_parser = crate::http::limits::parse_origin)]
    pub cors_origins: Vec<String>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 16,
            max_complexity: 5_000,
            max_aliases: 100,
            max_trace_depth: 10,
            max_trace_nodes: 5_000,
            max_page_size: 100,
            max_body_bytes: 1 << 20,
            request_timeout: 30.0,
            rate_limit: 100,
            rate_limit_burst: 1_000,
            introspection: true,
            cors_origins: Vec::new(),
        }
    }
}

impl Limits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.request_timeout)
    }
}

/// A refusal because a request went past a limit: code `LIMIT_EXCEEDED`, naming the limit
/// (`extensions.limit`, the flag's name) and its value (`extensions.max`).
pub fn exceeded(limit: &str, max: impl Into<serde_json::Value>, message: String) -> serde_json::Value {
    serde_json::json!({ "message": message, "extensions": { "code": "LIMIT_EXCEEDED", "limit": limit, "max": max.into() } })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Limits;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        limits: Limits,
    }

    #[test]
    fn the_default_equals_the_command_lines_default() {
        assert_eq!(Probe::parse_from(["pvgraph"]).limits, Limits::default());
    }

    #[test]
    fn flags_set_limits() {
        let probe = Probe::parse_from([
            "pvgraph",
            "--max-aliases",
            "3",
            "--introspection=false",
            "--cors-origin",
            "https://a.example",
            "--cors-origin",
            "https://b.example",
        ]);
        assert_eq!(probe.limits.max_aliases, 3);
        assert!(!probe.limits.introspection);
        assert_eq!(probe.limits.cors_origins, ["https://a.example", "https://b.example"]);
    }
}
