//! `loyalty serve`: the HTTP server. Opens the data directory, optionally sets up the
//! demo merchant, serves the API until SIGINT or SIGTERM, then stops accepting,
//! answers `/readyz` with 503, lets requests in flight finish, and closes storage.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::api::types::{IssuedKey, KeyKind, Partner};
use crate::api::{self, Api, ApiError, Limits};
use crate::app::App;
use crate::engine::MerchantSettings;

/// The demo merchant's id.
pub const DEMO_MERCHANT: &str = "demo";
/// The demo partner's id.
pub const DEMO_PARTNER: &str = "hotel";
/// The label of the demo's keys (reissued at every start; the earlier ones are
/// revoked).
const DEMO_LABEL: &str = "demo";

/// The example programmes the demo merchant gets, by file in the plugin directory;
/// the first is activated.
const DEMO_PLUGINS: [&str; 4] = [
    "airline-miles.wasm",
    "coffee-stars.wasm",
    "ride-hailing.wasm",
    "retail-club.wasm",
];

/// The keys the demo prints.
#[derive(Debug, Clone)]
pub struct DemoKeys {
    /// The demo merchant's key.
    pub merchant: IssuedKey,
    /// The demo hotel partner's key.
    pub partner: IssuedKey,
}

/// Set up the demo merchant: created if missing, the example programmes uploaded
/// (the airline one active), a partner hotel, and fresh demo keys.
pub async fn demo(api: &Api, app: &App, plugins: &Path) -> Result<DemoKeys, String> {
    let now = api::now();
    let first = plugins.join(DEMO_PLUGINS[0]);
    let bytes = std::fs::read(&first).map_err(|e| {
        format!(
            "the demo needs the example programmes: cannot read {} ({e}); build them with plugins/build",
            first.display()
        )
    })?;
    let settings = MerchantSettings {
        id: DEMO_MERCHANT.into(),
        name: "Demo Air".into(),
        currency: "USD".into(),
        created_at: now,
        config: None,
        point_value: None,
        budget: None,
    };
    for file in &DEMO_PLUGINS[1..] {
        let path = plugins.join(file);
        let other = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let r = app.registry.clone();
        tokio::task::spawn_blocking(move || r.upload(DEMO_MERCHANT, &other, now))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // Start-up, before serving: blocking here holds up nothing else.
    tokio::task::block_in_place(|| app.ensure_merchant(settings, &bytes, now))
        .map_err(|e| e.to_string())?;
    let keys = api.keys();
    let problem = |e: ApiError| e.to_string();
    keys.add_partner(
        api.engine(),
        DEMO_MERCHANT,
        Partner {
            id: DEMO_PARTNER.into(),
            name: "Demo Hotels".into(),
            created_at: now,
        },
    )
    .await
    .map_err(problem)?;
    keys.revoke_labelled(api.engine(), DEMO_MERCHANT, DEMO_LABEL, now)
        .await
        .map_err(problem)?;
    let merchant = keys
        .issue(
            api.engine(),
            DEMO_MERCHANT,
            KeyKind::Merchant,
            None,
            Some(DEMO_LABEL.into()),
            now,
        )
        .await
        .map_err(problem)?;
    let partner = keys
        .issue(
            api.engine(),
            DEMO_MERCHANT,
            KeyKind::Partner,
            Some(DEMO_PARTNER.into()),
            Some(DEMO_LABEL.into()),
            now,
        )
        .await
        .map_err(problem)?;
    Ok(DemoKeys { merchant, partner })
}

/// What a newcomer reads when the demo starts.
pub fn demo_banner(addr: SocketAddr, operator: &str, keys: &DemoKeys) -> String {
    let base = format!("http://{addr}/v1/merchants/{DEMO_MERCHANT}");
    let m = &keys.merchant.token;
    format!(
        r#"
loyalty is serving on http://{addr}  (OpenAPI: http://{addr}/openapi.json)

demo merchant "{DEMO_MERCHANT}" runs the airline programme (airline-miles); the coffee,
ride-hailing and retail programmes are uploaded too (GET {base}/plugins).

  operator key:         {operator}
  merchant key:         {m}
  partner key (hotel):  {p}

Enrol a member and post a $500 fare (try it, then GET the member):

  curl -s -X POST {base}/members \
    -H 'authorization: Bearer {m}' -H 'content-type: application/json' \
    -d '{{"member": "alice", "enrolled_at": {now}}}' && echo
  curl -s -X POST {base}/members/alice/events \
    -H 'authorization: Bearer {m}' -H 'content-type: application/json' \
    -d '{{"id": "flight-1", "occurred_at": {now}, "kind": "purchase", "amount": {{"minor": 50000, "currency": "USD"}}, "items": [{{"category": "fare", "amount": 50000}}]}}' && echo
  curl -s {base}/members/alice -H 'authorization: Bearer {m}' && echo
"#,
        p = keys.partner.token,
        now = api::now(),
    )
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory.
    pub data: PathBuf,
    /// The operator key (`None`: the operator cannot call).
    pub operator_key: Option<String>,
    /// API limits.
    pub limits: Limits,
    /// How long requests in flight may take to finish at shutdown.
    pub grace: Duration,
    /// How often the expiry sweep runs.
    pub sweep_every: Duration,
}

/// Serve `api` on `listener` until `shutdown` completes; then stop accepting, mark
/// not ready, and wait up to `grace` for requests in flight.
pub async fn serve(
    listener: TcpListener,
    api: Api,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = api::router(api.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let marker = api.clone();
    tokio::spawn(async move {
        shutdown.await;
        marker.set_ready(false);
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(());
    });
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        r = &mut server => r,
        // The grace period starts at the shutdown signal; `ready` turns false then.
        _ = async {
            while api.is_ready() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("requests still in flight after the grace period; stopping");
            Ok(())
        }
    }
}

/// SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
