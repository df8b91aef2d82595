//! The local runner: load one plugin file (core module or component), call one hook
//! with JSON input, and report the JSON output, the fuel used and the time taken.
//!
//! Input is one JSON object (all fields optional except what the hook needs):
//!
//! ```json
//! {
//!   "member":  { "id": "m-1", "tier": "platinum", "stats": { "calendar_year": { "qualifying_points": 41000 } } },
//!   "event":   { "id": "pnr-1", "occurred_at": 1790000000, "kind": "purchase",
//!                "amount": { "minor": 50000, "currency": "USD" } },
//!   "config":  { },
//!   "now":     1790000000,
//!   "partner": "skyhotels",
//!   "request": { "reward": "upgrade" },
//!   "merchant": "demo",
//!   "currency": "USD"
//! }
//! ```
//!
//! `config` defaults to the plugin's own default config; `now` to the event's time for
//! `on-event`, else the current time.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::domain;
use crate::sandbox::bindings::loyalty::program::types as wit;
use crate::sandbox::convert::{self, InputError};
use crate::sandbox::{CallReport, Called, Hook, HookError, LoadError, Sandbox, Session};

/// What the runner is asked to do.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunInput {
    /// The member snapshot.
    pub member: Option<domain::MemberSnapshot>,
    /// The event, for `on-event`.
    pub event: Option<domain::Event>,
    /// The programme config; the plugin's default when absent.
    pub config: Option<serde_json::Value>,
    /// The call's `now`.
    pub now: Option<domain::Timestamp>,
    /// The partner, for `offers`.
    pub partner: Option<String>,
    /// The request, for `quote-redemption`.
    pub request: Option<domain::RedemptionRequest>,
    /// The merchant id (default "local").
    pub merchant: Option<String>,
    /// The programme currency (default "USD").
    pub currency: Option<String>,
}

/// What a run printed.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutput {
    /// The plugin label.
    pub plugin: String,
    /// The hook called.
    pub hook: &'static str,
    /// The hook's answer: `{"ok": ...}` or `{"plugin_error": {...}}`.
    pub result: serde_json::Value,
    /// Fuel (instructions) the call used.
    pub fuel_used: u64,
    /// Time of the call (a fresh instance + the hook), in microseconds.
    pub time_us: u64,
    /// Time to validate and compile the plugin, in microseconds.
    pub load_us: u64,
    /// What the plugin logged.
    pub logs: Vec<crate::sandbox::LogLine>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The input does not fit the hook.
    #[error("input {0}")]
    Input(#[from] InputError),
    /// The plugin could not be loaded.
    #[error("{label}: {error}")]
    Load {
        /// The plugin.
        label: String,
        /// Why.
        error: LoadError,
    },
    /// The hook failed.
    #[error("{0}")]
    Hook(#[from] HookError),
}

impl RunError {
    /// The error as JSON: `{"error": {"kind", "message", "hook"?, "plugin"?, ...}}`,
    /// with a stable `kind` (`invalid_input`, a load error's kind such as
    /// `bad_exports`, or a hook failure's kind such as `out_of_fuel`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut e = serde_json::json!({ "message": self.to_string() });
        match self {
            RunError::Input(i) => {
                e["kind"] = "invalid_input".into();
                e["pointer"] = i.pointer.clone().into();
            }
            RunError::Load { label, error } => {
                e["kind"] = error.kind().into();
                e["plugin"] = label.clone().into();
                match error {
                    LoadError::BadExports { missing, mistyped } => {
                        e["missing"] = serde_json::json!(missing);
                        e["mistyped"] = serde_json::json!(mistyped);
                    }
                    LoadError::UnknownImport { name } => e["import"] = name.clone().into(),
                    LoadError::Describe(f) => e["failure"] = f.kind().into(),
                    _ => {}
                }
            }
            RunError::Hook(h) => {
                e["kind"] = h.failure.kind().into();
                e["plugin"] = h.plugin.clone().into();
                e["hook"] = h.hook.name().into();
                if let crate::sandbox::Failure::Trap {
                    message: Some(m), ..
                } = &h.failure
                {
                    e["panic"] = m.clone().into();
                }
            }
        }
        serde_json::json!({ "error": e })
    }

    /// The process exit code: 2 for bad input, 1 for a failing plugin.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Input(_) => 2,
            RunError::Load { .. } | RunError::Hook(_) => 1,
        }
    }
}

fn missing(pointer: &str, hook: Hook) -> InputError {
    InputError {
        pointer: pointer.to_string(),
        message: format!("is required for {hook}"),
    }
}

/// Load `bytes` in `sandbox` and call `hook` with `input`.
pub fn run(
    sandbox: &Sandbox,
    label: &str,
    bytes: &[u8],
    hook: Hook,
    input: &RunInput,
) -> Result<RunOutput, RunError> {
    let started = Instant::now();
    let plugin = sandbox.load(label, bytes).map_err(|error| RunError::Load {
        label: label.to_string(),
        error,
    })?;
    let load_us = started.elapsed().as_micros() as u64;

    let member_input = input
        .member
        .clone()
        .unwrap_or_else(|| domain::MemberSnapshot {
            id: "member-1".to_string(),
            ..Default::default()
        });
    let member = convert::member(&member_input)?;
    let event = match &input.event {
        Some(e) => Some(convert::event(e)?),
        None => None,
    };
    let now = input
        .now
        .or(event.as_ref().map(|e| e.occurred_at))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_secs() as i64
        });
    let config = input
        .config
        .clone()
        .unwrap_or_else(|| plugin.info().default_config.clone());
    let currency = input.currency.clone().unwrap_or_else(|| "USD".to_string());
    // What the server would refuse before the plugin ever saw it: a config that does
    // not satisfy the plugin's own schema, a currency that is not a code.
    let refused = |e: crate::engine::EngineError| match e {
        crate::engine::EngineError::Invalid { pointer, message } => {
            RunError::Input(crate::sandbox::convert::bad(&pointer, message))
        }
        other => RunError::Input(crate::sandbox::convert::bad("", other.to_string())),
    };
    if input.config.is_some() {
        crate::engine::check_config(&plugin.info().config_schema, &config).map_err(refused)?;
    }
    crate::engine::check_currency(&currency, "/currency").map_err(refused)?;
    let ctx = wit::Context {
        merchant: input
            .merchant
            .clone()
            .unwrap_or_else(|| "local".to_string()),
        now,
        config: config.to_string(),
        currency,
    };

    fn answer<T: Serialize>(
        called: Called<Result<T, domain::PluginError>>,
    ) -> (serde_json::Value, CallReport) {
        let value = match called.value {
            Ok(v) => serde_json::json!({ "ok": v }),
            Err(e) => serde_json::json!({ "plugin_error": e }),
        };
        (value, called.report)
    }

    let (result, report) = match hook {
        Hook::Describe => {
            let called = plugin.call_describe()?;
            let info = serde_json::to_value(plugin.info()).unwrap_or_default();
            (serde_json::json!({ "ok": info }), called.report)
        }
        Hook::OnEnroll => answer(plugin.on_enroll(&mut Session::new(), &member, &ctx)?),
        Hook::OnEvent => {
            let event = event.ok_or_else(|| missing("/event", hook))?;
            answer(plugin.on_event(&mut Session::new(), &member, &event, &ctx)?)
        }
        Hook::EvaluateTier => answer(plugin.evaluate_tier(&mut Session::new(), &member, &ctx)?),
        Hook::Perks => answer(plugin.perks(&mut Session::new(), &member, &ctx)?),
        Hook::Offers => {
            let partner = input
                .partner
                .as_deref()
                .ok_or_else(|| missing("/partner", hook))?;
            answer(plugin.offers(&mut Session::new(), &member, partner, &ctx)?)
        }
        Hook::QuoteRedemption => {
            let request = input
                .request
                .as_ref()
                .ok_or_else(|| missing("/request", hook))?;
            let request = convert::redemption_request(request)?;
            answer(plugin.quote_redemption(&mut Session::new(), &member, &request, &ctx)?)
        }
    };
    Ok(RunOutput {
        plugin: label.to_string(),
        hook: hook.name(),
        result,
        fuel_used: report.fuel_used,
        time_us: report.duration.as_micros() as u64,
        load_us,
        logs: report.logs,
    })
}
