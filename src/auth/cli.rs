//! The command line of access: the serve flags for JWTs and anonymous
//! access, and `pvgraph token create|revoke|list`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Subcommand;

use super::{Authenticator, JwtKey, JwtSettings, issue_token};
use crate::cli::StoreArg;
use crate::domain::{NodeId, Role, now, timestamp};
use crate::store::Store;

/// Who may call the server.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AuthArgs {
    /// A file holding the HS256 secret JWTs are signed with (at least 32 bytes; surrounding white space is ignored).
    #[arg(long, env = "PVGRAPH_JWT_HS256_SECRET_FILE", conflicts_with = "jwt_rs256_public_key")]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// A PEM file holding the RSA public key RS256 JWTs are checked with.
    #[arg(long, env = "PVGRAPH_JWT_RS256_PUBLIC_KEY")]
    pub jwt_rs256_public_key: Option<PathBuf>,
    /// Accept only JWTs whose `iss` claim is this.
    #[arg(long, env = "PVGRAPH_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Accept only JWTs whose `aud` claim is this.
    #[arg(long, env = "PVGRAPH_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Refuse requests without a token (401) rather than serving PUBLIC nodes to anonymous readers.
    #[arg(long, env = "PVGRAPH_NO_ANONYMOUS")]
    pub no_anonymous: bool,
}

impl AuthArgs {
    /// The authenticator these flags describe.
    pub fn authenticator(&self, store: Store) -> anyhow::Result<Authenticator> {
        let key = match (&self.jwt_hs256_secret_file, &self.jwt_rs256_public_key) {
            (Some(file), _) => {
                let text = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
                Some(JwtKey::Hs256(text.trim_ascii().to_vec()))
            }
            (None, Some(file)) => {
                Some(JwtKey::Rs256Pem(std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?))
            }
            (None, None) => None,
        };
        if key.is_none() && (self.jwt_issuer.is_some() || self.jwt_audience.is_some()) {
            anyhow::bail!("--jwt-issuer and --jwt-audience need --jwt-hs256-secret-file or --jwt-rs256-public-key");
        }
        let mut auth = Authenticator::new(store).with_anonymous(!self.no_anonymous);
        if let Some(key) = key {
            auth = auth.with_jwt(JwtSettings::new(key, self.jwt_issuer.as_deref(), self.jwt_audience.as_deref())?);
        }
        Ok(auth)
    }
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Issue an API token; it is printed once and only its hash is kept.
    Create {
        /// The organisation slug the token acts for, e.g. `kc`.
        #[arg(long)]
        organisation: String,
        /// viewer, editor or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a token by its id (the part after `pvg_`, before the next `_`).
    Revoke {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List tokens (ids, organisations, roles, dates; never the secrets).
    List {
        #[command(flatten)]
        store: StoreArg,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("`{text}` is not a role: viewer, editor or admin"))
}

pub async fn run(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { organisation, role, store } => {
            NodeId::organisation_node(&organisation)
                .map_err(|_| anyhow::anyhow!("`{organisation}` is not an organisation slug"))?;
            let issued = issue_token(&organisation, role, now());
            store.open().await?.save_token(&issued.stored).await?;
            eprintln!("created token {} ({role} of {organisation}); it is shown only this once:", issued.stored.id);
            println!("{}", issued.token);
            Ok(())
        }
        TokenCommand::Revoke { id, store } => {
            if store.open().await?.revoke_token(&id).await? {
                eprintln!("revoked token {id}");
                Ok(())
            } else {
                anyhow::bail!("no token that is not already revoked has the id {id}")
            }
        }
        TokenCommand::List { store } => {
            let mut out = String::from("id\torganisation\trole\tcreated\trevoked\n");
            for t in store.open().await?.tokens().await? {
                let revoked = t.revoked_at.map(timestamp).unwrap_or_else(|| "-".into());
                out += &format!("{}\t{}\t{}\t{}\t{revoked}\n", t.id, t.organisation, t.role, timestamp(t.created_at));
            }
            print!("{out}");
            Ok(())
        }
    }
}
