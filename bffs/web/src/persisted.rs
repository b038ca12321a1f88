//! Persisted queries: a request may name its query by SHA-256 instead of sending it.
//!
//! - `apq`, Apollo's automatic persisted queries: a client sends
//!   `extensions.persistedQuery = {version: 1, sha256Hash}` without the query; a BFF that
//!   does not know the hash answers `PERSISTED_QUERY_NOT_FOUND` (message
//!   `PersistedQueryNotFound`, which Apollo's clients look for), and the client sends the
//!   query with its hash once, which registers it. Because a hash-only request is short and
//!   the same for every user, it can go over `GET` and be cached by the browser (or a CDN
//!   that keys on the URL). Queries are registered only once their document validated, so
//!   a flood of junk registers nothing. With `redis.url` set they are kept in Redis
//!   (`sy:apq:<hash>`, 24 h) and a query registered through one replica is known to all;
//!   each replica also keeps the ones it served recently in memory, so a hit costs Redis
//!   nothing. If Redis fails, a hash this replica does not hold is "not found" and the
//!   client resends the text: slower, never wrong.
//! - `trusted`: only the operations of a checked-in manifest run (production
//!   safelisting), by hash or by their exact text; anything else is refused before it is
//!   parsed. The manifest is Apollo's persisted-query manifest format, written by
//!   `web-bff --print-manifest <dir>` from a folder of `.graphql` files and checked against
//!   the schema there.
//! - `off`: a hash-only request is refused (`PersistedQueryNotSupported`), so a client
//!   stops trying.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Request, Value};
use aws_lc_rs::digest;
use axum::body::Bytes;
use switchyard_core::config::ConfigError;
use switchyard_core::shared_state::{LocalTable, RedisClient, RedisTable, SharedTable};

use crate::config::{GraphqlConfig, PersistedQueryMode};
use crate::manifest::Manifest;

/// How long a registered query is kept.
const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Why a request's persisted query was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Hash-only, and the hash is not known (the client should resend the text).
    NotFound,
    /// Hash-only, and persisted queries are off.
    NotSupported,
    /// The `persistedQuery` extension is malformed or of another version.
    Malformed(String),
    /// The hash sent is not the SHA-256 of the query sent.
    HashMismatch,
    /// `trusted` mode, and the operation is not in the manifest.
    NotTrusted,
}

impl Refusal {
    /// The client-facing message.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::NotFound => "PersistedQueryNotFound".to_owned(),
            Self::NotSupported => "PersistedQueryNotSupported".to_owned(),
            Self::Malformed(why) => format!("extensions.persistedQuery: {why}"),
            Self::HashMismatch => {
                "extensions.persistedQuery.sha256Hash is not the SHA-256 of the query".to_owned()
            }
            Self::NotTrusted => {
                "only operations of the trusted manifest are accepted, and this one is not in it"
                    .to_owned()
            }
        }
    }
}

/// A query sent with its hash and not known yet: stored once its document validated.
pub(crate) struct Registration {
    hash: String,
    query: String,
}

/// The persisted queries of this BFF, per `graphql.persisted_queries`.
pub(crate) enum PersistedQueries {
    Off,
    Automatic {
        /// What this replica served recently (all of it without Redis).
        recent: LocalTable,
        /// Every registered query, shared by the fleet, when `redis.url` is set.
        shared: Option<RedisTable>,
    },
    Trusted {
        operations: HashMap<String, Arc<str>>,
    },
}

impl PersistedQueries {
    /// The mode `config` asks for; `trusted` reads and checks the manifest now.
    pub(crate) fn from_config(
        config: &GraphqlConfig,
        redis: Option<&RedisClient>,
    ) -> Result<Self, ConfigError> {
        Ok(match config.persisted_queries {
            PersistedQueryMode::Off => Self::Off,
            PersistedQueryMode::Apq => Self::Automatic {
                recent: LocalTable::new(RETENTION, config.persisted_query_entries),
                shared: redis.map(|client| {
                    RedisTable::new(
                        client.clone(),
                        "apq",
                        RETENTION,
                        "hashes this replica does not hold are answered PersistedQueryNotFound",
                    )
                }),
            },
            PersistedQueryMode::Trusted => {
                let path = config.trusted_manifest.as_deref().ok_or_else(|| {
                    ConfigError::invalid(
                        "graphql.trusted_manifest",
                        "trusted persisted queries need the manifest's path",
                    )
                })?;
                let manifest = Manifest::read(path)
                    .map_err(|message| ConfigError::invalid("graphql.trusted_manifest", message))?;
                Self::Trusted {
                    operations: manifest
                        .operations
                        .into_iter()
                        .map(|operation| (operation.id, Arc::from(operation.body)))
                        .collect(),
                }
            }
        })
    }

    /// Fills `request.query` from its `persistedQuery` extension, or checks the query
    /// against it (and, in `trusted` mode, against the manifest). Returns what to register
    /// once the document has validated.
    pub(crate) async fn resolve(
        &self,
        request: &mut Request,
    ) -> Result<Option<Registration>, Refusal> {
        let hash = match request.extensions.0.remove("persistedQuery") {
            Some(extension) => Some(requested_hash(&extension)?),
            None => None,
        };
        let has_text = !request.query.is_empty();
        if let Some(hash) = &hash
            && has_text
            && sha256_hex(&request.query) != *hash
        {
            return Err(Refusal::HashMismatch);
        }
        match self {
            Self::Off => match hash {
                Some(_) if !has_text => Err(Refusal::NotSupported),
                _ => Ok(None),
            },
            Self::Trusted { operations } => {
                let hash = match hash {
                    Some(hash) => hash,
                    None => sha256_hex(&request.query),
                };
                let query = operations.get(&hash).ok_or(if has_text {
                    Refusal::NotTrusted
                } else {
                    Refusal::NotFound
                })?;
                if !has_text {
                    request.query = query.to_string();
                }
                Ok(None)
            }
            Self::Automatic { recent, shared } => {
                let Some(hash) = hash else {
                    return Ok(None);
                };
                if has_text {
                    let known = matches!(recent.get(&hash).await, Ok(Some(_)));
                    return Ok((!known).then(|| Registration {
                        hash,
                        query: request.query.clone(),
                    }));
                }
                if let Ok(Some(query)) = recent.get(&hash).await
                    && let Ok(query) = String::from_utf8(query.to_vec())
                {
                    request.query = query;
                    return Ok(None);
                }
                // What another replica registered (checked: Redis is not trusted to hold
                // the text the hash names).
                let stored = match shared {
                    Some(shared) => shared.get(&hash).await.ok().flatten(),
                    None => None,
                };
                let query = stored
                    .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
                    .filter(|query| sha256_hex(query) == hash)
                    .ok_or(Refusal::NotFound)?;
                let _ = recent
                    .insert_if_absent(&hash, Bytes::from(query.clone()))
                    .await;
                request.query = query;
                Ok(None)
            }
        }
    }

    /// Stores a query that was sent with its hash and validated.
    pub(crate) async fn register(&self, registration: Registration) {
        if let Self::Automatic { recent, shared } = self {
            // A failing Redis only means other replicas ask the client for the text.
            let query = Bytes::from(registration.query);
            if let Some(shared) = shared {
                let _ = shared
                    .insert_if_absent(&registration.hash, query.clone())
                    .await;
            }
            let _ = recent.insert_if_absent(&registration.hash, query).await;
        }
    }
}

/// The `sha256Hash` of a `persistedQuery` extension of version 1, lowercased.
fn requested_hash(extension: &Value) -> Result<String, Refusal> {
    let Value::Object(fields) = extension else {
        return Err(Refusal::Malformed("expected an object".into()));
    };
    match fields.get("version") {
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        _ => return Err(Refusal::Malformed("only version 1 is supported".into())),
    }
    match fields.get("sha256Hash") {
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok(hash.to_ascii_lowercase())
        }
        _ => Err(Refusal::Malformed(
            "sha256Hash must be 64 hexadecimal digits".into(),
        )),
    }
}

/// The lowercase hex SHA-256 of `text`, as Apollo's clients compute it.
pub(crate) fn sha256_hex(text: &str) -> String {
    let digest = digest::digest(&digest::SHA256, text.as_bytes());
    digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}
