//! Bearer tokens for the control plane's API and ingest: operator tokens manage everything, a
//! tenant's token only that tenant's content; edges and storage servers get service tokens.
//! Only a token's SHA-256 is stored (key `tokens/{hex}`), so the registry file never holds one.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::registry::{RegistryError, RegistryStore};

/// What a token may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Role {
    Operator,
    Tenant {
        tenant: String,
    },
    /// An edge or storage server reporting to the control plane.
    Service {
        server: String,
    },
}

#[derive(Debug, Error)]
pub enum TokenError {
    /// No token, or one the registry does not know (HTTP 401).
    #[error("missing or unknown bearer token")]
    Unauthenticated,
    /// A known token acting outside its role (HTTP 403).
    #[error("this token may not {action}")]
    Forbidden { action: String },
    #[error("token record {key} is corrupt: {message}")]
    Corrupt { key: String, message: String },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

fn hash_hex(token: &str) -> String {
    strata_wire::content_digest::hex(&Sha256::digest(token.as_bytes()))
}

/// Issues and checks tokens over any registry backend.
pub struct TokenBook<'a> {
    pub store: &'a dyn RegistryStore,
}

impl TokenBook<'_> {
    /// A new random token with `role`; the caller shows it once, only its hash is kept.
    pub fn issue(&self, role: &Role) -> Result<String, TokenError> {
        let bytes: [u8; 32] = rand::random();
        let token = format!("strata_{}", strata_wire::content_digest::hex(&bytes));
        // 256 random bits: a collision with an existing token is not a case to handle.
        let role = serde_json::to_vec(role).unwrap_or_default();
        self.store.create(&format!("tokens/{}", hash_hex(&token)), role)?;
        Ok(token)
    }

    /// The role of a presented token (`Authorization: Bearer …`).
    pub fn authenticate(&self, presented: Option<&str>) -> Result<Role, TokenError> {
        let token = presented
            .filter(|t| !t.is_empty())
            .ok_or(TokenError::Unauthenticated)?;
        let key = format!("tokens/{}", hash_hex(token));
        let entry = self.store.get(&key)?.ok_or(TokenError::Unauthenticated)?;
        serde_json::from_slice(&entry.value).map_err(|e| TokenError::Corrupt {
            key,
            message: e.to_string(),
        })
    }
}

impl Role {
    /// Whether this role may manage `tenant`'s content.
    pub fn may_manage(&self, tenant: &str) -> Result<(), TokenError> {
        match self {
            Role::Operator => Ok(()),
            Role::Tenant { tenant: own } if own == tenant => Ok(()),
            _ => Err(TokenError::Forbidden {
                action: format!("manage tenant {tenant}"),
            }),
        }
    }

    /// Whether this role may do operator-only things (tenants, clusters, tokens).
    pub fn may_operate(&self, action: &str) -> Result<(), TokenError> {
        match self {
            Role::Operator => Ok(()),
            _ => Err(TokenError::Forbidden {
                action: action.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded_store::EmbeddedStore;

    #[test]
    fn tokens_are_stored_hashed_and_roles_bound_what_they_manage() {
        let dir = std::env::temp_dir().join(format!("strata-tokens-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = EmbeddedStore::open(&dir).unwrap();
        let book = TokenBook { store: &store };
        let op = book.issue(&Role::Operator).unwrap();
        let acme = book
            .issue(&Role::Tenant {
                tenant: "acme".into(),
            })
            .unwrap();
        assert_ne!(op, acme);
        // Nothing in the registry holds the token itself.
        for e in store.list("").unwrap() {
            assert!(!e.key.contains(&op[7..]) && !String::from_utf8_lossy(&e.value).contains(&op[7..]));
        }
        assert_eq!(book.authenticate(Some(&op)).unwrap(), Role::Operator);
        let role = book.authenticate(Some(&acme)).unwrap();
        assert!(role.may_manage("acme").is_ok());
        let e = role.may_manage("globex").unwrap_err();
        assert!(
            matches!(e, TokenError::Forbidden { .. }) && e.to_string().contains("globex"),
            "{e}"
        );
        assert!(role.may_operate("create tenants").is_err());
        assert!(matches!(
            book.authenticate(None),
            Err(TokenError::Unauthenticated)
        ));
        assert!(matches!(
            book.authenticate(Some("strata_wrong")),
            Err(TokenError::Unauthenticated)
        ));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
