//! Keys and who is calling.
//!
//! A key is a bearer token `lk_<id>_<secret>`: 12 characters of id and 32 of secret
//! (160 random bits), Crockford base32, lower case. It is shown once, when issued;
//! storage keeps only its SHA-256 (a plain hash is enough for 160 random bits: there
//! is nothing to guess from it), in the merchant's part of the keys space, so a key
//! exists only within its merchant: a key of merchant B presented on a path of
//! merchant A is simply unknown there. The digest is compared in constant time.
//!
//! The operator key comes from configuration (`--operator-key` /
//! `LOYALTY_OPERATOR_KEY`) and is kept as its digest only.

use crate::domain::{decode_hex, hex};
use crate::lock;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Api;
use super::problem::ApiError;
use super::types::{IssuedKey, KeyKind, KeyView, Partner};
use crate::domain::Timestamp;
use crate::engine::{Engine, random_code};
use crate::storage::{Batch, Key, Space, Storage};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The operator of the host: creates and lists merchants.
    Operator,
    /// A merchant key: everything within the merchant.
    Merchant {
        /// The merchant.
        merchant: String,
        /// The key id.
        key: String,
    },
    /// A partner key: the partner's events, offers and redemptions.
    Partner {
        /// The merchant.
        merchant: String,
        /// The partner.
        partner: String,
        /// The key id.
        key: String,
    },
}

impl Caller {
    /// The key id, for logs ("operator" for the operator).
    pub fn key_id(&self) -> &str {
        match self {
            Caller::Operator => "operator",
            Caller::Merchant { key, .. } | Caller::Partner { key, .. } => key,
        }
    }

    /// Refuse anything but a merchant key (the path's merchant was checked when the
    /// key was found).
    pub fn merchant_only(&self) -> Result<(), ApiError> {
        match self {
            Caller::Merchant { .. } => Ok(()),
            Caller::Operator => Err(ApiError::forbidden(
                "the operator key manages merchants; use a merchant key",
            )),
            Caller::Partner { partner, .. } => Err(ApiError::forbidden(format!(
                "a key of partner {partner} cannot do this; use a merchant key"
            ))),
        }
    }

    /// The partner a partner key is limited to (`None` for a merchant key); refuse
    /// the operator.
    pub fn partner_scope(&self) -> Result<Option<&str>, ApiError> {
        match self {
            Caller::Merchant { .. } => Ok(None),
            Caller::Partner { partner, .. } => Ok(Some(partner)),
            Caller::Operator => Err(ApiError::forbidden(
                "the operator key manages merchants; use a merchant or partner key",
            )),
        }
    }

    /// Refuse anything but the operator or a merchant key.
    pub fn operator_or_merchant(&self) -> Result<(), ApiError> {
        match self {
            Caller::Operator | Caller::Merchant { .. } => Ok(()),
            Caller::Partner { partner, .. } => Err(ApiError::forbidden(format!(
                "a key of partner {partner} cannot do this; use a merchant key"
            ))),
        }
    }
}

/// The merchant a path names (`/v1/merchants/{merchant}/...`).
pub(super) fn path_merchant(path: &str) -> Option<Cow<'_, str>> {
    let mut segments = path.trim_start_matches('/').split('/');
    match (segments.next(), segments.next(), segments.next()) {
        // Percent-decoded, as the handlers' `Path` reads it: `/v1/merchants/%61cme` is
        // acme's, for the key check as for the handler. A segment that is not UTF-8
        // once decoded names no merchant (the handler refuses it too).
        (Some("v1"), Some("merchants"), Some(m)) if !m.is_empty() => {
            percent_encoding::percent_decode_str(m).decode_utf8().ok()
        }
        _ => None,
    }
}

/// Who is calling, authenticated before the body is read (extractors of request
/// parts run before the body's), so an unauthenticated caller learns nothing from
/// how its body would have been judged. A request the idempotency layer has
/// authenticated already carries its caller (see [`super::idempotency`]).
fn authenticate(parts: &Parts, api: &Api) -> Result<Caller, ApiError> {
    if let Some(caller) = parts.extensions.get::<Caller>() {
        return Ok(caller.clone());
    }
    api.keys()
        .caller(&parts.headers, path_merchant(parts.uri.path()).as_deref())
}

/// Extractor: the operator key.
pub struct OperatorKey;

impl FromRequestParts<Api> for OperatorKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        match authenticate(parts, api)? {
            Caller::Operator => Ok(OperatorKey),
            _ => Err(ApiError::forbidden("only the operator key may do this")),
        }
    }
}

/// Extractor: the operator key or the path merchant's key.
pub struct StaffKey;

impl FromRequestParts<Api> for StaffKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        authenticate(parts, api)?.operator_or_merchant()?;
        Ok(StaffKey)
    }
}

/// Extractor: the path merchant's own key.
pub struct MerchantKey;

impl FromRequestParts<Api> for MerchantKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        authenticate(parts, api)?.merchant_only()?;
        Ok(MerchantKey)
    }
}

/// Extractor: the path merchant's key (`None`) or one of its partner keys (the
/// partner the key is limited to).
pub struct PartnerScope(pub Option<String>);

impl FromRequestParts<Api> for PartnerScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Api) -> Result<Self, ApiError> {
        let caller = authenticate(parts, api)?;
        Ok(PartnerScope(caller.partner_scope()?.map(str::to_string)))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyRecord {
    view: KeyView,
    /// SHA-256 of the whole token, hex.
    digest: String,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal in time that depends only on the length.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Keys and partners, in storage.
pub struct Keys {
    storage: Arc<dyn Storage>,
    operator: Option<[u8; 32]>,
    /// Key records already read, so that a request's key check reads no storage.
    known: Mutex<Known>,
}

/// The key records [`Keys::caller`] has read, by merchant and key id. Every key record
/// is written by [`Keys`] (issued, or revoked), in this process: an issued key is
/// read from storage the first time it is presented, and a revoked one is forgotten
/// once its revocation is durable, so from the moment [`Keys::revoke`] returns no
/// request gets past it.
#[derive(Default)]
struct Known {
    records: HashMap<String, HashMap<String, Arc<KnownKey>>>,
    /// How many keys were forgotten: a record read from storage is kept only if none
    /// was forgotten while it was read, so one read before a revocation cannot come
    /// back after it.
    forgotten: u64,
}

/// At most this many key records are kept; when there are more, all are forgotten.
const KNOWN_KEYS: usize = 100_000;

/// A key record, decoded.
struct KnownKey {
    view: KeyView,
    digest: Vec<u8>,
}

fn key_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[id.as_bytes()])
}

impl Keys {
    /// Keys in `storage`; `operator` is the operator key, if one is configured.
    pub fn new(storage: Arc<dyn Storage>, operator: Option<&str>) -> Keys {
        Keys {
            storage,
            operator: operator.map(digest),
            known: Mutex::new(Known::default()),
        }
    }

    /// The record of key `id` of `merchant`, if there is one.
    fn record(&self, merchant: &str, id: &str) -> Result<Option<Arc<KnownKey>>, ApiError> {
        let forgotten = {
            let known = lock(&self.known);
            if let Some(k) = known.records.get(merchant).and_then(|m| m.get(id)) {
                return Ok(Some(k.clone()));
            }
            known.forgotten
        };
        let Some(bytes) = self
            .storage
            .get(Space::Keys, &key_key(merchant, id))
            .map_err(|e| ApiError::internal(e.to_string()))?
        else {
            return Ok(None);
        };
        let record: KeyRecord = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("corrupt key record: {e}")))?;
        let k = Arc::new(KnownKey {
            view: record.view,
            // A digest that is not hex matches no key.
            digest: decode_hex(&record.digest).unwrap_or_default(),
        });
        let mut known = lock(&self.known);
        if known.forgotten == forgotten {
            // Counted only here, when a key is first read: rare.
            if known.records.values().map(HashMap::len).sum::<usize>() >= KNOWN_KEYS {
                known.records.clear();
            }
            known
                .records
                .entry(merchant.to_string())
                .or_default()
                .insert(id.to_string(), k.clone());
        }
        Ok(Some(k))
    }

    /// Forget the record of key `id` of `merchant` (it has just been written).
    fn forget(&self, merchant: &str, id: &str) {
        let mut known = lock(&self.known);
        known.forgotten += 1;
        if let Some(m) = known.records.get_mut(merchant) {
            m.remove(id);
        }
    }

    /// Who presents `headers` on a path of `merchant` (if the path has one).
    pub fn caller(&self, headers: &HeaderMap, merchant: Option<&str>) -> Result<Caller, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "send a key as `Authorization: Bearer <key>`",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <key>`")
            })?;
        let presented = digest(token);
        if let Some(op) = &self.operator
            && constant_time_eq(op, &presented)
        {
            return Ok(Caller::Operator);
        }
        let unknown = || ApiError::unauthorized("the key is not valid here");
        let id = token
            .strip_prefix("lk_")
            .and_then(|rest| rest.split_once('_'))
            .map(|(id, _)| id)
            .filter(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or_else(unknown)?;
        let merchant = merchant.ok_or_else(unknown)?;
        let record = self.record(merchant, id)?.ok_or_else(unknown)?;
        if !constant_time_eq(&record.digest, &presented) {
            return Err(unknown());
        }
        if record.view.revoked_at.is_some() {
            return Err(ApiError::unauthorized("the key was revoked"));
        }
        let merchant = merchant.to_string();
        let key = record.view.id.clone();
        Ok(match (record.view.kind, &record.view.partner) {
            (KeyKind::Partner, Some(partner)) => Caller::Partner {
                merchant,
                partner: partner.clone(),
                key,
            },
            _ => Caller::Merchant { merchant, key },
        })
    }

    /// Issue a key of `merchant` (durable when this returns).
    pub async fn issue(
        &self,
        engine: &Arc<Engine>,
        merchant: &str,
        kind: KeyKind,
        partner: Option<String>,
        label: Option<String>,
        now: Timestamp,
    ) -> Result<IssuedKey, ApiError> {
        let (batch, issued) = self.prepare(merchant, kind, partner, label, now)?;
        engine.write(batch).await?;
        Ok(issued)
    }

    /// A new key and the batch that stores it.
    pub fn prepare(
        &self,
        merchant: &str,
        kind: KeyKind,
        partner: Option<String>,
        label: Option<String>,
        now: Timestamp,
    ) -> Result<(Batch, IssuedKey), ApiError> {
        let id = random_code(12)?.to_ascii_lowercase();
        let secret = random_code(32)?.to_ascii_lowercase();
        let token = format!("lk_{id}_{secret}");
        let view = KeyView {
            id: id.clone(),
            kind,
            partner,
            label,
            created_at: now,
            revoked_at: None,
        };
        let record = KeyRecord {
            view: view.clone(),
            digest: hex(&digest(&token)),
        };
        let mut batch = Batch::new();
        batch.put(
            Space::Keys,
            key_key(merchant, &id),
            serde_json::to_vec(&record).unwrap_or_default(),
        );
        Ok((batch, IssuedKey { key: view, token }))
    }

    fn records(&self, merchant: &str) -> Result<Vec<KeyRecord>, ApiError> {
        self.storage
            .scan(Space::Keys, merchant, &[])
            .map_err(|e| ApiError::internal(e.to_string()))?
            .iter()
            .map(|(_, v)| {
                serde_json::from_slice(v)
                    .map_err(|e| ApiError::internal(format!("corrupt key record: {e}")))
            })
            .collect()
    }

    /// Every key of `merchant`.
    pub fn list(&self, merchant: &str) -> Result<Vec<KeyView>, ApiError> {
        let mut keys: Vec<KeyView> = self
            .records(merchant)?
            .into_iter()
            .map(|r| r.view)
            .collect();
        keys.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(keys)
    }

    /// Revoke key `id` of `merchant` (again: no change).
    pub async fn revoke(
        &self,
        engine: &Arc<Engine>,
        merchant: &str,
        id: &str,
        now: Timestamp,
    ) -> Result<KeyView, ApiError> {
        let bytes = self
            .storage
            .get(Space::Keys, &key_key(merchant, id))
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| ApiError::not_found("unknown-key", format!("no key {id:?}")))?;
        let mut record: KeyRecord = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("corrupt key record: {e}")))?;
        if record.view.revoked_at.is_none() {
            record.view.revoked_at = Some(now);
            let mut batch = Batch::new();
            batch.put(
                Space::Keys,
                key_key(merchant, id),
                serde_json::to_vec(&record).unwrap_or_default(),
            );
            let written = engine.write(batch).await;
            // Whether or not the write went through, the next request reads the
            // record from storage.
            self.forget(merchant, id);
            written?;
        }
        Ok(record.view)
    }

    /// Revoke every unrevoked key of `merchant` labelled `label` (the demo's keys of
    /// an earlier start).
    pub async fn revoke_labelled(
        &self,
        engine: &Arc<Engine>,
        merchant: &str,
        label: &str,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        for r in self.records(merchant)? {
            if r.view.revoked_at.is_none() && r.view.label.as_deref() == Some(label) {
                self.revoke(engine, merchant, &r.view.id, now).await?;
            }
        }
        Ok(())
    }

    // --- partners ------------------------------------------------------------------

    /// Partner `id` of `merchant`.
    pub fn partner(&self, merchant: &str, id: &str) -> Result<Partner, ApiError> {
        let bytes = self
            .storage
            .get(Space::Partners, &key_key(merchant, id))
            .map_err(|e| ApiError::internal(e.to_string()))?
            .ok_or_else(|| ApiError::not_found("unknown-partner", format!("no partner {id:?}")))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(format!("corrupt partner record: {e}")))
    }

    /// Every partner of `merchant`.
    pub fn partners(&self, merchant: &str) -> Result<Vec<Partner>, ApiError> {
        self.storage
            .scan(Space::Partners, merchant, &[])
            .map_err(|e| ApiError::internal(e.to_string()))?
            .iter()
            .map(|(_, v)| {
                serde_json::from_slice(v)
                    .map_err(|e| ApiError::internal(format!("corrupt partner record: {e}")))
            })
            .collect()
    }

    /// Register partner `p` of `merchant`; registering the same partner again is
    /// answered with the stored one, a different name for the same id is a conflict.
    pub async fn add_partner(
        &self,
        engine: &Arc<Engine>,
        merchant: &str,
        p: Partner,
    ) -> Result<(Partner, bool), ApiError> {
        if !crate::sandbox::valid_id(&p.id) {
            return Err(ApiError::invalid(
                "/id",
                "must be 1-64 characters of a-z, 0-9, '-' and '_'",
            ));
        }
        match self.partner(merchant, &p.id) {
            Ok(existing) if existing.name == p.name => return Ok((existing, false)),
            Ok(_) => {
                return Err(ApiError::new(
                    axum::http::StatusCode::CONFLICT,
                    "partner-exists",
                    "Partner exists",
                    format!("partner {:?} exists with another name", p.id),
                ));
            }
            Err(e) if e.status() == axum::http::StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
        let mut batch = Batch::new();
        batch.put(
            Space::Partners,
            key_key(merchant, &p.id),
            serde_json::to_vec(&p).unwrap_or_default(),
        );
        engine.write(batch).await?;
        Ok((p, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
