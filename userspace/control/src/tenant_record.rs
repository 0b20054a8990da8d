//! A per-tenant JSON record in the registry (`{prefix}{tenant}`), as the signing keys and the
//! delivery settings are kept: read with the guard a change must hold, and every tenant's
//! record for the name lookup. A record that is not valid JSON is `RegistryError::Corrupt`
//! naming its key.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use super::registry::{Guard, RegistryError, RegistryStore};

/// The records under one prefix (e.g. `signing/`).
pub struct TenantRecords<'a> {
    pub store: &'a dyn RegistryStore,
    pub prefix: &'static str,
}

impl TenantRecords<'_> {
    pub fn key(&self, tenant: &str) -> String {
        format!("{}{tenant}", self.prefix)
    }

    /// The tenant's record, if any, and the guard under which to change it (unchanged since
    /// this read, or still absent).
    pub fn read<T: DeserializeOwned>(&self, tenant: &str) -> Result<(Option<T>, Guard), RegistryError> {
        let key = self.key(tenant);
        match self.store.get(&key)? {
            None => Ok((None, Guard::Absent(key))),
            Some(e) => {
                let value = parse(&key, &e.value)?;
                Ok((Some(value), Guard::At(key, e.revision)))
            }
        }
    }

    /// Every tenant's record.
    pub fn all<T: DeserializeOwned>(&self) -> Result<BTreeMap<String, T>, RegistryError> {
        let mut out = BTreeMap::new();
        for e in self.store.list(self.prefix)? {
            let tenant = e.key[self.prefix.len()..].to_string();
            out.insert(tenant, parse(&e.key, &e.value)?);
        }
        Ok(out)
    }
}

fn parse<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|err| RegistryError::Corrupt {
        key: key.to_string(),
        message: err.to_string(),
    })
}
