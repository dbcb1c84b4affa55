//! Who is asking: an anonymous reader or a member of an organisation with a
//! role, and which nodes each may see. The rules of visibility live here once;
//! the stores turn `Audience` into their own query conditions.

use std::sync::{Arc, OnceLock};

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use super::{Error, Node, Result, Visibility};

/// What a member of an organisation may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads what its organisation may see; changes nothing.
    Viewer,
    /// Also creates, changes and deletes its organisation's nodes.
    Editor,
    /// Also creates its organisation's node and reads its audit trail.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Reads a role, ignoring ASCII case.
    pub fn parse(text: &str) -> Option<Role> {
        match text.to_ascii_lowercase().as_str() {
            "viewer" => Some(Role::Viewer),
            "editor" => Some(Role::Editor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated member of an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub organisation: String,
    pub role: Role,
    /// Who, for the audit trail: `token:<id>` or `jwt:<subject>`.
    pub subject: String,
}

/// The caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    Member(Member),
}

impl Caller {
    pub fn audience(&self) -> Audience {
        match self {
            Caller::Anonymous => Audience::Public,
            Caller::Member(m) => Audience::Member(m.organisation.clone()),
        }
    }

    pub fn member(&self) -> Option<&Member> {
        match self {
            Caller::Anonymous => None,
            Caller::Member(m) => Some(m),
        }
    }
}

/// Which nodes a reader may see.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Audience {
    /// The server itself (seeding, import, export, copy): every node.
    #[default]
    Everything,
    /// An anonymous reader: PUBLIC nodes only.
    Public,
    /// A member of this organisation: PUBLIC and PARTNERS nodes, and the organisation's own PRIVATE ones.
    Member(String),
}

impl Audience {
    pub fn sees(&self, visibility: Visibility, organisation: &str) -> bool {
        match self {
            Audience::Everything => true,
            Audience::Public => visibility == Visibility::Public,
            Audience::Member(own) => visibility != Visibility::Private || organisation == own,
        }
    }

    pub fn sees_node(&self, node: &Node) -> bool {
        self.sees(node.visibility, node.organisation())
    }
}

/// Who makes a change set, and through which operation, for the rules of
/// authorisation and for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    pub caller: Caller,
    /// The API operation, e.g. `updatePrinciple`.
    pub operation: String,
    /// Organisations whose ids may be foreign ends in this change set: the
    /// partners this instance is configured with. A missing node of any other
    /// organisation is not found, as it always was.
    pub partners: Vec<String>,
    /// When `caller` was admitted before the store confirmed them: a store that
    /// says it `confirms_callers` writes nothing before `confirmed` passes.
    pub confirmation: Option<Confirmation>,
}

/// The store's answer on an API token, still to come: the caller it names, or why
/// it is refused. Shared by whoever awaits it; worked out once.
pub type TokenAnswer = Shared<BoxFuture<'static, Result<Caller, Arc<Error>>>>;

/// The store's word, still to come, on the API token a request was admitted
/// with: the caller it names now, or why it is refused (see
/// `auth::Authenticator::admit`). Cloned freely; it is worked out once, in one
/// of two ways: asked of the store on its own (`outcome`, when nothing settled
/// it before), or seen by a store that checked the token in the very statement
/// that wrote a change set, and so wrote only while the token stood
/// (`confirm_seen`). The second costs no statement of its own.
#[derive(Clone)]
pub struct Confirmation {
    token_hash: Arc<str>,
    seen: Arc<OnceLock<Caller>>,
    asked: TokenAnswer,
}

impl Confirmation {
    /// A confirmation of the API token with this hash, which `ask` asks the store
    /// about when it is awaited before a store has settled it.
    pub fn new(
        token_hash: impl Into<Arc<str>>,
        ask: impl Future<Output = Result<Caller, Arc<Error>>> + Send + 'static,
    ) -> Confirmation {
        Confirmation::answered_by(token_hash, ask.boxed().shared())
    }

    /// Like `new`, with an answer already shared with others (a lookup several requests joined).
    pub fn answered_by(token_hash: impl Into<Arc<str>>, asked: TokenAnswer) -> Confirmation {
        Confirmation { token_hash: token_hash.into(), seen: Arc::default(), asked }
    }

    /// The hash of the token to confirm, for a store that checks it itself.
    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }

    /// Whether the answer is in, so that awaiting `outcome` waits for nothing.
    pub fn is_settled(&self) -> bool {
        self.seen.get().is_some() || self.asked.peek().is_some()
    }

    /// The caller the token names, or why it is refused: what a store saw, or
    /// else the store's answer, asked now if nobody asked before.
    pub async fn outcome(&self) -> Result<Caller, Arc<Error>> {
        match self.seen.get() {
            Some(caller) => Ok(caller.clone()),
            None => self.asked.clone().await,
        }
    }

    /// Records that a store found the token standing and naming `caller` in the
    /// statement that wrote; a later `outcome` answers that without asking.
    pub fn confirm_seen(&self, caller: Caller) {
        // Seen twice (a change set run again), the first is as good as the second.
        let _ = self.seen.set(caller);
    }
}

impl std::fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmation").field("settled", &self.is_settled()).finish_non_exhaustive()
    }
}

/// Waits for a caller's confirmation, if one is to come, and refuses unless it
/// names that caller. A caller confirmed as someone else (their token's grant
/// was rewritten) is refused here; the request then runs again as them.
pub async fn confirmed(confirmation: Option<&Confirmation>, caller: &Caller) -> Result<()> {
    let Some(confirmation) = confirmation else { return Ok(()) };
    match confirmation.outcome().await {
        Ok(confirmed) if &confirmed == caller => Ok(()),
        Ok(_) => Err(Error::Unauthenticated("the token's grant changed while the request ran".into())),
        Err(error) => Err(Error::Unauthenticated(error.to_string())),
    }
}

/// The organisations this instance is configured to federate with (their
/// slugs), handed to the API so that its changes may link to their nodes.
#[derive(Clone, Debug, Default)]
pub struct PartnerOrgs(pub Vec<String>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_audience_sees_what_the_rules_say() {
        let member = Audience::Member("kc".into());
        for (visibility, owner, public, kc_member, everything) in [
            (Visibility::Public, "acme", true, true, true),
            (Visibility::Partners, "acme", false, true, true),
            (Visibility::Private, "acme", false, false, true),
            (Visibility::Private, "kc", false, true, true),
        ] {
            assert_eq!(Audience::Public.sees(visibility, owner), public, "{visibility:?} {owner}");
            assert_eq!(member.sees(visibility, owner), kc_member, "{visibility:?} {owner}");
            assert_eq!(Audience::Everything.sees(visibility, owner), everything);
        }
    }
}
