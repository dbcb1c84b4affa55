//! Partner federation: instances of pvgraph run by different governments,
//! each the source of truth for the nodes its organisations own, answering
//! one another over their ordinary `/graphql` endpoints with tokens the other
//! side issued. `docs/federation.md` explains the protocol; this module holds
//! the asking side: who the partners are (`Partners`), how one is called
//! (`client`), and a request's view of the graph that reaches into them
//! (`Federated`).

mod client;
mod federated;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, bail};

pub use client::{PartnerClient, WalkAnswer, WalkRequest};
pub use federated::Federated;

/// The protocol spoken between partners; a partner naming another major version is not read.
pub const PROTOCOL: &str = "pvgraph-partner/1";

/// How long one request to a partner may take by default (`--partner-timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long all the partner requests of one API request may take together (`--partner-deadline`).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);
/// The most ids one partner request carries; longer lists are split.
pub const MAX_IDS_PER_REQUEST: usize = 500;
/// The most ids an unreachable entry lists.
const MAX_LISTED_IDS: usize = 100;

/// One `--partner ORG=URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerSpec {
    /// The partner's organisation slug: the first segment of the ids it owns.
    pub organisation: String,
    /// Its GraphQL endpoint.
    pub url: String,
}

impl std::str::FromStr for PartnerSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<PartnerSpec, String> {
        let (organisation, url) =
            text.split_once('=').ok_or_else(|| format!("`{text}` is not ORG=URL, e.g. northwind=https://…/graphql"))?;
        let organisation = organisation.trim().to_owned();
        // An organisation slug is what an organisation node's id would hold.
        crate::domain::NodeId::organisation_node(&organisation)
            .map_err(|e| format!("`{organisation}` is not an organisation slug: {e}"))?;
        let url = url.trim().to_owned();
        let parsed = reqwest::Url::parse(&url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        match parsed.scheme() {
            "https" => {}
            "http" if local => {}
            _ => return Err(format!("`{url}`: a partner is reached over https (http only on 127.0.0.1 or localhost)")),
        }
        Ok(PartnerSpec { organisation, url })
    }
}

/// The environment variable that holds the token a partner issued to this instance.
pub fn token_variable(organisation: &str) -> String {
    format!("PVGRAPH_PARTNER_TOKEN_{}", organisation.to_ascii_uppercase().replace('-', "_"))
}

/// Reads a partner's token from `PVGRAPH_PARTNER_TOKEN_<ORG>`, or from the file named by
/// `PVGRAPH_PARTNER_TOKEN_<ORG>_FILE`. Never from the command line, where process lists show it.
pub fn token_from_env(organisation: &str) -> anyhow::Result<String> {
    let name = token_variable(organisation);
    if let Ok(token) = std::env::var(&name) {
        return Ok(token.trim().to_owned());
    }
    let file = std::env::var(format!("{name}_FILE"))
        .with_context(|| format!("partner {organisation} has no token: set {name} or {name}_FILE"))?;
    let token = std::fs::read_to_string(&file).with_context(|| format!("cannot read {file}"))?;
    Ok(token.trim().to_owned())
}

/// The partners of this instance, by organisation slug.
pub struct Partners {
    clients: BTreeMap<String, Arc<PartnerClient>>,
    /// How long all the partner calls of one API request may take together.
    pub deadline: Duration,
}

impl Partners {
    /// Partners from their specs and tokens; the same slug twice is refused.
    pub fn new(specs: Vec<(PartnerSpec, String)>, timeout: Duration, deadline: Duration) -> anyhow::Result<Partners> {
        let mut clients = BTreeMap::new();
        for (spec, token) in specs {
            if clients.contains_key(&spec.organisation) {
                bail!("partner {} is named twice", spec.organisation);
            }
            let client = PartnerClient::new(&spec, token, timeout)?;
            clients.insert(spec.organisation, Arc::new(client));
        }
        Ok(Partners { clients, deadline })
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The partner that owns an organisation's ids, if it is one.
    pub fn get(&self, organisation: &str) -> Option<&Arc<PartnerClient>> {
        self.clients.get(organisation)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<PartnerClient>> {
        self.clients.values()
    }

    /// The partners' organisation slugs.
    pub fn organisations(&self) -> Vec<String> {
        self.clients.keys().cloned().collect()
    }
}

/// Why ids could not be followed into a partner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, async_graphql::Enum)]
pub enum UnreachableReason {
    /// The ids' owner is not a partner of this instance.
    NotAPartner,
    /// No answer within the partner timeout or the request's deadline.
    Timeout,
    /// The connection failed, the partner answered 5xx, or it is marked down after failing.
    Unavailable,
    /// The partner refused the token it issued (401): unknown or revoked.
    Unauthorised,
    /// The partner declined (403, 429).
    Refused,
    /// The partner answered but did not return these nodes: it has none, or does not share them.
    NotShared,
    /// The partner speaks another version of the protocol.
    Incompatible,
    /// The answer broke the format, or claimed ids the partner does not own.
    InvalidAnswer,
}

impl UnreachableReason {
    /// The reason as the schema spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            UnreachableReason::NotAPartner => "NOT_A_PARTNER",
            UnreachableReason::Timeout => "TIMEOUT",
            UnreachableReason::Unavailable => "UNAVAILABLE",
            UnreachableReason::Unauthorised => "UNAUTHORISED",
            UnreachableReason::Refused => "REFUSED",
            UnreachableReason::NotShared => "NOT_SHARED",
            UnreachableReason::Incompatible => "INCOMPATIBLE",
            UnreachableReason::InvalidAnswer => "INVALID_ANSWER",
        }
    }
}

/// A partner, or some of its ids, that an answer could not reach.
#[derive(Clone, Debug, PartialEq, async_graphql::SimpleObject)]
pub struct Unreachable {
    /// The partner's organisation slug.
    pub organisation: String,
    pub reason: UnreachableReason,
    /// The ids that could not be followed (at most 100 are listed).
    pub ids: Vec<async_graphql::ID>,
    /// What happened, in words.
    pub message: String,
}

impl Unreachable {
    /// The entry as a line of a trace's `truncation`.
    pub fn as_truncation(&self) -> String {
        let reason = match self.reason {
            UnreachableReason::NotAPartner => "not a partner",
            UnreachableReason::Timeout => "timed out",
            UnreachableReason::Unavailable => "unavailable",
            UnreachableReason::Unauthorised => "refused our token",
            UnreachableReason::Refused => "refused",
            UnreachableReason::NotShared => "not shared",
            UnreachableReason::Incompatible => "incompatible",
            UnreachableReason::InvalidAnswer => "invalid answer",
        };
        let ids = self.ids.len();
        format!("{}: {reason} ({}), {ids} node(s) not followed", self.organisation, self.message)
    }
}

/// What one request could not reach, gathered as it runs: one entry per partner and reason.
#[derive(Clone, Default)]
pub struct Report(Arc<Mutex<BTreeMap<(String, UnreachableReason), Unreachable>>>);

impl Report {
    /// Notes ids of a partner that could not be followed, and why.
    pub fn note<'a>(
        &self,
        organisation: &str,
        reason: UnreachableReason,
        ids: impl IntoIterator<Item = &'a crate::domain::NodeId>,
        message: &str,
    ) {
        let ids = ids.into_iter().map(|id| async_graphql::ID(id.to_string()));
        self.merge(organisation, reason, ids, message);
    }

    fn merge(
        &self,
        organisation: &str,
        reason: UnreachableReason,
        ids: impl IntoIterator<Item = async_graphql::ID>,
        message: &str,
    ) {
        let mut entries = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry((organisation.to_owned(), reason)).or_insert_with(|| Unreachable {
            organisation: organisation.to_owned(),
            reason,
            ids: Vec::new(),
            message: message.to_owned(),
        });
        for id in ids {
            if entry.ids.len() < MAX_LISTED_IDS && !entry.ids.contains(&id) {
                entry.ids.push(id);
            }
        }
    }

    /// Everything noted so far, by partner then reason.
    pub fn entries(&self) -> Vec<Unreachable> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect()
    }

    /// Whether an id was noted as unreachable, and the entry that says why.
    pub fn about(&self, id: &crate::domain::NodeId) -> Option<Unreachable> {
        let wanted = async_graphql::ID(id.to_string());
        self.0.lock().unwrap_or_else(PoisonError::into_inner).values().find(|u| u.ids.contains(&wanted)).cloned()
    }

    /// Adds another report's entries to this one.
    pub fn absorb(&self, other: &Report) {
        for entry in other.entries() {
            self.merge(&entry.organisation, entry.reason, entry.ids, &entry.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partner_is_a_slug_and_an_https_url_or_a_local_http_one() {
        let spec: PartnerSpec = "northwind=https://graph.northwind.example/graphql".parse().unwrap();
        assert_eq!(spec.organisation, "northwind");
        assert!("northwind=http://127.0.0.1:9000/graphql".parse::<PartnerSpec>().is_ok());
        for bad in ["northwind", "North Wind=https://x.example/graphql", "nw=http://x.example/graphql", "nw=not a url"]
        {
            assert!(bad.parse::<PartnerSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_report_keeps_one_entry_per_partner_and_reason() {
        let report = Report::default();
        let a = crate::domain::NodeId::parse("nw:learning:a").unwrap();
        let b = crate::domain::NodeId::parse("nw:learning:b").unwrap();
        report.note("nw", UnreachableReason::Timeout, [&a], "no answer within 3 s");
        report.note("nw", UnreachableReason::Timeout, [&b, &a], "no answer within 3 s");
        let entries = report.entries();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].ids.len(), 2);
        assert_eq!(report.about(&b).map(|u| u.reason), Some(UnreachableReason::Timeout));
    }
}
