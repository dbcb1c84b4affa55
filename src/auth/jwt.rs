//! JWTs from an identity provider, checked with `jsonwebtoken`: an HS256
//! shared secret or an RS256 public key, `exp` required, `iss` and `aud`
//! checked when configured. The caller comes from the claims `organisation`
//! (an organisation slug), `role` (`viewer`, `editor` or `admin`) and `sub`
//! (who, for the audit trail).

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::{Deserialize, Serialize};

use crate::domain::{Error, Member, NodeId, Result, Role};

/// The claims pvgraph reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Who the token speaks for; recorded in the audit trail.
    #[serde(default)]
    pub sub: Option<String>,
    /// The organisation slug, e.g. `kc`.
    pub organisation: String,
    /// `viewer`, `editor` or `admin`.
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// The key JWTs are checked with.
pub enum JwtKey {
    /// A shared secret (HMAC-SHA256).
    Hs256(Vec<u8>),
    /// An RSA public key in PEM (RSASSA-PKCS1-v1_5 with SHA-256).
    Rs256Pem(Vec<u8>),
}

/// How JWTs are checked.
#[derive(Clone)]
pub struct JwtSettings {
    key: DecodingKey,
    validation: Validation,
}

impl JwtSettings {
    pub fn new(key: JwtKey, issuer: Option<&str>, audience: Option<&str>) -> Result<JwtSettings> {
        let (key, algorithm) = match key {
            JwtKey::Hs256(secret) => {
                if secret.len() < 32 {
                    return Err(Error::invalid("jwtHs256Secret", "must be at least 32 bytes long"));
                }
                (DecodingKey::from_secret(&secret), Algorithm::HS256)
            }
            JwtKey::Rs256Pem(pem) => (
                DecodingKey::from_rsa_pem(&pem).map_err(|e| {
                    Error::invalid("jwtRs256PublicKey", format!("is not an RSA public key in PEM: {e}"))
                })?,
                Algorithm::RS256,
            ),
        };
        let mut validation = Validation::new(algorithm);
        let mut required = vec!["exp"];
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtSettings { key, validation })
    }

    /// The member a JWT names, or why it is refused.
    pub fn caller(&self, token: &str) -> Result<Member> {
        use jsonwebtoken::errors::ErrorKind as K;
        let claims = decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| {
                Error::Unauthenticated(match e.kind() {
                    K::ExpiredSignature => "the token has expired".into(),
                    K::InvalidSignature => "the token's signature does not match".into(),
                    K::InvalidIssuer => "the token's issuer is not accepted".into(),
                    K::InvalidAudience => "the token's audience is not accepted".into(),
                    K::InvalidAlgorithm => "the token is signed with an algorithm this server does not accept".into(),
                    K::MissingRequiredClaim(claim) => format!("the token lacks the claim `{claim}`"),
                    _ => format!("the token is not a valid JWT: {e}"),
                })
            })?
            .claims;
        if NodeId::organisation_node(&claims.organisation).is_err() {
            return Err(Error::Unauthenticated("the token's `organisation` claim is not an organisation slug".into()));
        }
        let role = Role::parse(&claims.role)
            .ok_or_else(|| Error::Unauthenticated("the token's `role` claim must be viewer, editor or admin".into()))?;
        Ok(Member {
            organisation: claims.organisation,
            role,
            subject: format!("jwt:{}", claims.sub.unwrap_or_default()),
        })
    }
}
