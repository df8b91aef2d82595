//! Registering, listing and deleting a merchant's webhook endpoints, and listing
//! their deliveries.

use serde::{Deserialize, Serialize};

use super::deliver::record_key;
use super::{
    CreatedEndpoint, Delivery, DeliveryPage, EndpointRequest, EndpointView, EventKind,
    WebhookError, Webhooks,
};
use crate::domain::Timestamp;
use crate::engine::random_code;
use crate::storage::{Batch, Key, Space};

/// Endpoints per merchant.
pub const MAX_ENDPOINTS: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct EndpointRecord {
    pub view: EndpointView,
    pub secret: String,
}

pub(super) fn endpoint_key(merchant: &str, id: &str) -> Key {
    Key::merchant(merchant, &[b"endpoint", id.as_bytes()])
}

fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> WebhookError {
    WebhookError::Invalid {
        pointer: pointer.into(),
        message: message.into(),
    }
}

fn check_url(url: &str, allow_private: bool) -> Result<(), WebhookError> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| invalid("/url", "must start with http:// or https://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty()
        || url.len() > 2048
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(invalid(
            "/url",
            "must be an absolute URL with a host, at most 2048 characters, without spaces",
        ));
    }
    url.parse::<hyper::Uri>()
        .map_err(|e| invalid("/url", format!("is not a valid URL: {e}")))?;
    if !allow_private && let Some(why) = super::address::refused_url(url) {
        return Err(invalid(
            "/url",
            format!(
                "must be a public address: {why} (the operator allows such endpoints with \
                 --webhook-allow-private)"
            ),
        ));
    }
    Ok(())
}

impl Webhooks {
    pub(super) fn records(&self, merchant: &str) -> Result<Vec<EndpointRecord>, WebhookError> {
        self.storage
            .scan(Space::Webhooks, merchant, &[b"endpoint"])?
            .iter()
            .map(|(_, v)| {
                serde_json::from_slice(v)
                    .map_err(|e| WebhookError::Storage(format!("corrupt endpoint record: {e}")))
            })
            .collect()
    }

    pub(super) fn load_subscriptions(&self) -> Result<(), WebhookError> {
        for merchant in self.storage.merchants(Space::Webhooks)? {
            self.refresh(&merchant)?;
        }
        Ok(())
    }

    fn refresh(&self, merchant: &str) -> Result<(), WebhookError> {
        let kinds: Vec<EventKind> = self
            .records(merchant)?
            .into_iter()
            .flat_map(|r| r.view.events)
            .collect();
        self.subs.set(merchant, kinds);
        Ok(())
    }

    /// Register an endpoint of `merchant`; the answer holds its signing secret.
    pub async fn create_endpoint(
        &self,
        merchant: &str,
        req: &EndpointRequest,
        now: Timestamp,
    ) -> Result<CreatedEndpoint, WebhookError> {
        check_url(&req.url, self.options.allow_private)?;
        if req.events.is_empty() {
            return Err(invalid("/events", "name at least one kind of event"));
        }
        for (i, k) in req.events.iter().enumerate() {
            if req.events[..i].contains(k) {
                return Err(invalid(format!("/events/{i}"), "listed twice"));
            }
        }
        if let Some(d) = &req.description
            && d.chars().count() > 200
        {
            return Err(invalid("/description", "at most 200 characters"));
        }
        let _registering = self.registering.lock().await;
        if self.records(merchant)?.len() >= MAX_ENDPOINTS {
            return Err(WebhookError::TooMany(MAX_ENDPOINTS));
        }
        let code = |n| {
            random_code(n)
                .map(|c| c.to_ascii_lowercase())
                .map_err(|e| WebhookError::Storage(e.to_string()))
        };
        let view = EndpointView {
            id: format!("wh_{}", code(16)?),
            url: req.url.clone(),
            events: req.events.clone(),
            description: req.description.clone(),
            created_at: now,
        };
        let record = EndpointRecord {
            view: view.clone(),
            secret: format!("whsec_{}", code(32)?),
        };
        let mut batch = Batch::new();
        batch.put(
            Space::Webhooks,
            endpoint_key(merchant, &view.id),
            serde_json::to_vec(&record).unwrap_or_default(),
        );
        self.engine
            .write(batch)
            .await
            .map_err(|e| WebhookError::Storage(e.to_string()))?;
        self.refresh(merchant)?;
        Ok(CreatedEndpoint {
            endpoint: view,
            secret: record.secret,
        })
    }

    /// Every endpoint of `merchant`.
    pub fn endpoints(&self, merchant: &str) -> Result<Vec<EndpointView>, WebhookError> {
        let mut v: Vec<EndpointView> = self
            .records(merchant)?
            .into_iter()
            .map(|r| r.view)
            .collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        Ok(v)
    }

    pub(super) fn record(&self, merchant: &str, id: &str) -> Result<EndpointRecord, WebhookError> {
        let bytes = self
            .storage
            .get(Space::Webhooks, &endpoint_key(merchant, id))?
            .ok_or_else(|| WebhookError::UnknownEndpoint(id.to_string()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| WebhookError::Storage(format!("corrupt endpoint record: {e}")))
    }

    /// Endpoint `id` of `merchant`.
    pub fn endpoint(&self, merchant: &str, id: &str) -> Result<EndpointView, WebhookError> {
        Ok(self.record(merchant, id)?.view)
    }

    /// Delete endpoint `id`: nothing more is sent to it (pending deliveries to it
    /// are given up at their next attempt).
    pub async fn delete_endpoint(
        &self,
        merchant: &str,
        id: &str,
    ) -> Result<EndpointView, WebhookError> {
        let view = self.endpoint(merchant, id)?;
        let mut batch = Batch::new();
        batch.delete(Space::Webhooks, endpoint_key(merchant, id));
        self.engine
            .write(batch)
            .await
            .map_err(|e| WebhookError::Storage(e.to_string()))?;
        self.refresh(merchant)?;
        Ok(view)
    }

    /// `merchant`'s deliveries, newest first, at most `limit` (1-500), optionally of
    /// one endpoint. The first page of [`Webhooks::deliveries_after`].
    pub fn deliveries(
        &self,
        merchant: &str,
        endpoint: Option<&str>,
        limit: usize,
    ) -> Result<DeliveryPage, WebhookError> {
        self.deliveries_after(merchant, endpoint, None, limit)
    }

    /// `merchant`'s deliveries, newest first (by when the event was fanned out),
    /// at most `limit` (1-500), optionally of one endpoint, starting after the
    /// delivery `after` (the id of the last one of the previous page). A page
    /// shorter than `limit` is the last. Reads storage: call it off the async
    /// workers.
    pub fn deliveries_after(
        &self,
        merchant: &str,
        endpoint: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<DeliveryPage, WebhookError> {
        let limit = limit.clamp(1, 500);
        let mut cursor = after.map(|a| record_key(merchant, a));
        // Filtering by endpoint skips others' deliveries, so read bigger pages.
        let chunk = if endpoint.is_some() { 256 } else { limit };
        let mut deliveries = Vec::new();
        loop {
            let page = self.storage.scan_page(
                Space::Deliveries,
                merchant,
                &[b"d"],
                cursor.as_ref(),
                chunk,
                true,
            )?;
            let full = page.len() == chunk;
            for (key, value) in page {
                cursor = Some(key);
                let d: Delivery = serde_json::from_slice(&value)
                    .map_err(|e| WebhookError::Storage(format!("corrupt delivery record: {e}")))?;
                if endpoint.is_none_or(|e| d.endpoint == e) {
                    deliveries.push(d);
                    if deliveries.len() == limit {
                        return Ok(DeliveryPage { deliveries });
                    }
                }
            }
            if !full {
                return Ok(DeliveryPage { deliveries });
            }
        }
    }
}
