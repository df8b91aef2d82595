//! The OpenAPI 3.1 document of the API, generated from the operation table below and
//! the body types' schemas, and kept in the repository as `schemas/openapi.json`
//! (served at `/openapi.json`). Tests check that the file is what the table
//! generates, and that the table and the router have exactly the same routes.

use serde_json::{Map, Value, json};

/// The document as kept in the repository.
pub const DOCUMENT: &str = include_str!("../../../schemas/openapi.json");

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Nobody needs a key.
    Public,
    /// The operator key.
    Operator,
    /// The operator or a merchant key.
    OperatorOrMerchant,
    /// A merchant key.
    Merchant,
    /// A merchant key or a key of the partner concerned.
    Partner,
}

/// The request body.
#[derive(Debug, Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    Wasm,
    /// A data file: JSON lines, or also CSV.
    Data {
        csv: bool,
    },
}

/// Extra failure statuses an operation can answer (beyond 400, 401, 403, 404, 422,
/// 429 and 503, which every authenticated operation can).
const CONFLICT: u16 = 409;
const PLUGIN: u16 = 424;

struct Op {
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    auth: Auth,
    body: Body,
    ok: u16,
    answer: &'static str,
    query: &'static [(&'static str, &'static str, &'static str)],
    more: &'static [u16],
}

const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    auth: Auth,
) -> Op {
    Op {
        method,
        path,
        id,
        tag,
        summary,
        auth,
        body: Body::None,
        ok: 200,
        answer: "",
        query: &[],
        more: &[],
    }
}

impl Op {
    const fn body(mut self, file: &'static str) -> Op {
        self.body = Body::Json(file);
        self
    }
    const fn data(mut self, csv: bool) -> Op {
        self.body = Body::Data { csv };
        self
    }
    const fn wasm(mut self) -> Op {
        self.body = Body::Wasm;
        self
    }
    const fn answers(mut self, status: u16, file: &'static str) -> Op {
        self.ok = status;
        self.answer = file;
        self
    }
    const fn query(mut self, q: &'static [(&'static str, &'static str, &'static str)]) -> Op {
        self.query = q;
        self
    }
    const fn also(mut self, more: &'static [u16]) -> Op {
        self.more = more;
        self
    }
}

use Auth::*;

const M: &str = "Merchants";
const K: &str = "Keys and partners";
const P: &str = "Plugins";
const MB: &str = "Members";
const A: &str = "Events and redemptions";
const S: &str = "System";
const W: &str = "Webhooks";
const D: &str = "Simulations, imports and analytics";
const PERIOD: &[(&str, &str, &str)] = &[
    (
        "from",
        "string",
        "First month, YYYY-MM (default: the beginning)",
    ),
    ("to", "string", "Last month, YYYY-MM (default: now)"),
];

fn operations() -> Vec<Op> {
    vec![
        op("get", "/healthz", "healthz", S, "Liveness", Public).answers(200, "Health.json"),
        op("get", "/readyz", "readyz", S, "Readiness", Public).answers(200, "Health.json"),
        op(
            "get",
            "/metrics",
            "metrics",
            S,
            "Prometheus metrics",
            Public,
        ),
        op(
            "get",
            "/openapi.json",
            "openapi",
            S,
            "This document",
            Public,
        ),
        op(
            "get",
            "/dashboard",
            "dashboard",
            S,
            "The merchant dashboard: a read-only HTML page that signs in with a merchant key and charts the analytics and the latest simulation",
            Public,
        ),
        op(
            "post",
            "/v1/merchants",
            "merchants_create",
            M,
            "Create a merchant and its first merchant key",
            Operator,
        )
        .body("CreateMerchant.json")
        .answers(201, "MerchantCreated.json")
        .also(&[CONFLICT]),
        op(
            "get",
            "/v1/merchants",
            "merchants_list",
            M,
            "List merchants",
            Operator,
        )
        .answers(200, "MerchantList.json"),
        op(
            "get",
            "/v1/merchants/{merchant}",
            "merchant_get",
            M,
            "Read a merchant",
            OperatorOrMerchant,
        )
        .answers(200, "Merchant.json"),
        op(
            "patch",
            "/v1/merchants/{merchant}",
            "merchant_update",
            M,
            "Rename a merchant",
            Merchant,
        )
        .body("MerchantUpdate.json")
        .answers(200, "Merchant.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/config",
            "config_get",
            M,
            "Read the programme config in force",
            Merchant,
        )
        .answers(200, "ConfigView.json"),
        op(
            "put",
            "/v1/merchants/{merchant}/config",
            "config_put",
            M,
            "Set the programme config (checked against the active programme's config schema)",
            Merchant,
        )
        .body("ConfigUpdate.json")
        .answers(200, "ConfigView.json")
        .also(&[CONFLICT]),
        op(
            "get",
            "/v1/merchants/{merchant}/budget",
            "budget_get",
            M,
            "Read point value, budget and this period's use",
            Merchant,
        )
        .answers(200, "BudgetView.json"),
        op(
            "put",
            "/v1/merchants/{merchant}/budget",
            "budget_put",
            M,
            "Set point value and budget",
            Merchant,
        )
        .body("BudgetSettings.json")
        .answers(200, "BudgetView.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/keys",
            "keys_create",
            K,
            "Issue a merchant or partner key (the token is shown once)",
            OperatorOrMerchant,
        )
        .body("KeyRequest.json")
        .answers(201, "IssuedKey.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/keys",
            "keys_list",
            K,
            "List keys (never their tokens)",
            OperatorOrMerchant,
        )
        .answers(200, "KeyList.json"),
        op(
            "delete",
            "/v1/merchants/{merchant}/keys/{key}",
            "key_revoke",
            K,
            "Revoke a key",
            OperatorOrMerchant,
        )
        .answers(200, "KeyView.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/partners",
            "partners_create",
            K,
            "Register a partner",
            Merchant,
        )
        .body("PartnerRequest.json")
        .answers(201, "Partner.json")
        .also(&[CONFLICT]),
        op(
            "get",
            "/v1/merchants/{merchant}/partners",
            "partners_list",
            K,
            "List partners",
            Merchant,
        )
        .answers(200, "PartnerList.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/partners/{partner}",
            "partner_get",
            K,
            "Read a partner",
            Merchant,
        )
        .answers(200, "Partner.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/plugins",
            "plugins_upload",
            P,
            "Upload a plugin version (raw wasm: a component or a core module built with the SDK)",
            Merchant,
        )
        .wasm()
        .answers(201, "VersionInfo.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/plugins",
            "plugins_list",
            P,
            "List plugin versions and activations",
            Merchant,
        )
        .answers(200, "PluginList.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/plugins/rollback",
            "plugins_rollback",
            P,
            "Activate the version active before the current one",
            Merchant,
        )
        .answers(200, "VersionInfo.json")
        .also(&[CONFLICT]),
        op(
            "get",
            "/v1/merchants/{merchant}/plugins/{version}",
            "plugin_get",
            P,
            "Read a plugin version",
            Merchant,
        )
        .answers(200, "VersionInfo.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/plugins/{version}/activate",
            "plugin_activate",
            P,
            "Activate a plugin version",
            Merchant,
        )
        .answers(200, "VersionInfo.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/members",
            "members_enrol",
            MB,
            "Enrol a member (runs on-enroll)",
            Merchant,
        )
        .body("EnrolRequest.json")
        .answers(201, "MemberView.json")
        .also(&[CONFLICT, PLUGIN]),
        op(
            "get",
            "/v1/merchants/{merchant}/members/{member}",
            "member_get",
            MB,
            "Read a member: balance, tier, progress, perks",
            Merchant,
        )
        .answers(200, "MemberView.json"),
        op(
            "patch",
            "/v1/merchants/{merchant}/members/{member}",
            "member_update",
            MB,
            "Change birthday and attributes (null removes)",
            Merchant,
        )
        .body("ProfileUpdate.json")
        .answers(200, "MemberView.json")
        .also(&[CONFLICT]),
        op(
            "delete",
            "/v1/merchants/{merchant}/members/{member}",
            "member_erase",
            MB,
            "Erase a member's personal data (the ledger stays)",
            Merchant,
        )
        .answers(200, "MemberView.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/members/{member}/opt-out",
            "member_opt_out",
            MB,
            "Opt a member out",
            Merchant,
        )
        .answers(200, "MemberView.json")
        .also(&[CONFLICT]),
        op(
            "post",
            "/v1/merchants/{merchant}/members/{member}/opt-in",
            "member_opt_in",
            MB,
            "Opt a member back in",
            Merchant,
        )
        .answers(200, "MemberView.json")
        .also(&[CONFLICT]),
        op(
            "get",
            "/v1/merchants/{merchant}/members/{member}/ledger",
            "member_ledger",
            MB,
            "A page of the member's ledger, newest first",
            Merchant,
        )
        .answers(200, "LedgerPage.json")
        .query(&[
            (
                "before",
                "integer",
                "Lines older than this sequence number (the previous page's next_before)",
            ),
            ("limit", "integer", "Lines per page, 1-500 (default 50)"),
        ]),
        op(
            "get",
            "/v1/merchants/{merchant}/members/{member}/tiers",
            "member_tiers",
            MB,
            "The member's tier changes",
            Merchant,
        )
        .answers(200, "TierHistory.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/members/{member}/adjustments",
            "member_adjust",
            MB,
            "A manual adjustment with a reason and author (idempotent by id)",
            Merchant,
        )
        .body("Adjustment.json")
        .answers(200, "Balance.json")
        .also(&[CONFLICT]),
        op(
            "get",
            "/v1/merchants/{merchant}/cards/{code}",
            "card_get",
            MB,
            "The member holding a card code",
            Merchant,
        )
        .answers(200, "MemberView.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/members/{member}/events",
            "events_post",
            A,
            "Post an event: purchase, refund or a custom kind (idempotent by event id)",
            Partner,
        )
        .body("Event.json")
        .answers(200, "EventResult.json")
        .also(&[CONFLICT, PLUGIN]),
        op(
            "get",
            "/v1/merchants/{merchant}/events/{event}",
            "event_get",
            A,
            "A processed event's outcome",
            Merchant,
        )
        .answers(200, "EventResult.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/members/{member}/offers",
            "offers_list",
            A,
            "A partner's offers for the member",
            Partner,
        )
        .answers(200, "OfferList.json")
        .also(&[CONFLICT, PLUGIN])
        .query(&[(
            "partner",
            "string",
            "The partner (a partner key may name only its own, and may leave it out)",
        )]),
        op(
            "post",
            "/v1/merchants/{merchant}/members/{member}/redemptions",
            "redemptions_quote",
            A,
            "Quote a redemption (points, or points plus cash)",
            Partner,
        )
        .body("RedemptionRequest.json")
        .answers(201, "Redemption.json")
        .also(&[CONFLICT, PLUGIN]),
        op(
            "get",
            "/v1/merchants/{merchant}/redemptions/{redemption}",
            "redemption_get",
            A,
            "Read a redemption",
            Merchant,
        )
        .answers(200, "Redemption.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/redemptions/{redemption}/commit",
            "redemption_commit",
            A,
            "Commit a quoted redemption: deduct the points (idempotent)",
            Partner,
        )
        .answers(200, "Redemption.json")
        .also(&[CONFLICT]),
        op(
            "post",
            "/v1/merchants/{merchant}/redemptions/{redemption}/cancel",
            "redemption_cancel",
            A,
            "Cancel a redemption, returning its points (idempotent)",
            Merchant,
        )
        .answers(200, "Redemption.json")
        .also(&[CONFLICT]),
        op(
            "post",
            "/v1/merchants/{merchant}/members/{member}/perks/{perk}/consume",
            "perk_consume",
            A,
            "Use a perk once (idempotent by consumption id)",
            Merchant,
        )
        .body("Consumption.json")
        .answers(200, "Consumed.json")
        .also(&[CONFLICT, PLUGIN]),
        op(
            "post",
            "/v1/merchants/{merchant}/webhooks",
            "webhooks_create",
            W,
            "Register a webhook endpoint (the signing secret is shown once)",
            Merchant,
        )
        .body("EndpointRequest.json")
        .answers(201, "CreatedEndpoint.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/webhooks",
            "webhooks_list",
            W,
            "List webhook endpoints",
            Merchant,
        )
        .answers(200, "EndpointList.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/webhooks/{endpoint}",
            "webhook_get",
            W,
            "Read a webhook endpoint",
            Merchant,
        )
        .answers(200, "EndpointView.json"),
        op(
            "delete",
            "/v1/merchants/{merchant}/webhooks/{endpoint}",
            "webhook_delete",
            W,
            "Delete a webhook endpoint",
            Merchant,
        )
        .answers(200, "EndpointView.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/webhook-deliveries",
            "deliveries_list",
            W,
            "Webhook deliveries, newest first: status, attempts, last error",
            Merchant,
        )
        .answers(200, "DeliveryPage.json")
        .query(&[
            ("endpoint", "string", "Only this endpoint's deliveries"),
            ("limit", "integer", "At most this many, 1-500 (default 100)"),
        ]),
        op(
            "post",
            "/v1/merchants/{merchant}/simulations",
            "simulations_create",
            D,
            "Simulate a candidate version on recorded history (or a history file) side by side with the active one, as a background job",
            Merchant,
        )
        .body("SimulationRequest.json")
        .answers(202, "Job.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/histories",
            "histories_upload",
            D,
            "Upload a history file (one recorded operation per line) to simulate on",
            Merchant,
        )
        .data(false)
        .answers(201, "HistoryFile.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/imports",
            "imports_create",
            D,
            "Import members with balances, tiers and attributes from JSON lines or CSV, as a background job",
            Merchant,
        )
        .data(true)
        .answers(202, "Job.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/jobs",
            "jobs_list",
            D,
            "The merchant's simulations and imports, newest first",
            Merchant,
        )
        .answers(200, "JobList.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/jobs/{job}",
            "job_get",
            D,
            "A job: status, progress (percent, rate, ETA) and, when done, its result",
            Merchant,
        )
        .answers(200, "Job.json"),
        op(
            "post",
            "/v1/merchants/{merchant}/jobs/{job}/cancel",
            "job_cancel",
            D,
            "Ask a running job to stop",
            Merchant,
        )
        .answers(200, "Job.json"),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics",
            "analytics_all",
            D,
            "Every analytic at once (one pass over the members)",
            Merchant,
        )
        .answers(200, "Analytics.json")
        .query(PERIOD),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics/repeat-customers",
            "analytics_repeat",
            D,
            "Repeat-customer rate (members who bought more than once / members who bought) and the share of buyers who bought exactly X times",
            Merchant,
        )
        .answers(200, "RepeatCustomers.json")
        .query(PERIOD),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics/lapsed",
            "analytics_lapsed",
            D,
            "Lapsed members: repeat customers whose last purchase is more than N days ago, for a win-back campaign",
            Merchant,
        )
        .answers(200, "LapsedMembers.json")
        .query(&[
            ("days", "integer", "Days without a purchase (default 90)"),
            ("after", "string", "Members after this id (the previous page's next_after)"),
            ("limit", "integer", "Members per page, 1-1000 (default 100)"),
        ]),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics/nps",
            "analytics_nps",
            D,
            "Net Promoter Score from survey events: % promoters (9-10) - % detractors (0-6)",
            Merchant,
        )
        .answers(200, "Nps.json")
        .query(PERIOD),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics/tiers",
            "analytics_tiers",
            D,
            "Members and spend per tier, and customer lifetime value per tier (average spend per member since enrolment)",
            Merchant,
        )
        .answers(200, "TierAnalytics.json")
        .query(PERIOD),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics/points",
            "analytics_points",
            D,
            "Points issued, redeemed and expired (per month), and the outstanding liability in money",
            Merchant,
        )
        .answers(200, "PointsAnalytics.json")
        .query(PERIOD),
        op(
            "get",
            "/v1/merchants/{merchant}/analytics/budget",
            "analytics_budget",
            D,
            "Budget use per budget period",
            Merchant,
        )
        .answers(200, "BudgetAnalytics.json")
        .query(PERIOD),
    ]
}

/// The problem answers every operation shares, as `components/responses`.
const PROBLEMS: [(u16, &str, &str); 12] = [
    (
        400,
        "BadRequest",
        "Malformed request (JSON syntax, query string)",
    ),
    (401, "Unauthorized", "No key, or a key not valid here"),
    (403, "Forbidden", "The key may not do this"),
    (404, "NotFound", "Not found"),
    (
        409,
        "Conflict",
        "Conflict with the current state, or an idempotency key in use",
    ),
    (413, "TooLarge", "Body too large"),
    (415, "UnsupportedMediaType", "Wrong content type"),
    (
        422,
        "Invalid",
        "Invalid request: each failing field by JSON pointer",
    ),
    (
        424,
        "PluginFailed",
        "The merchant's programme failed (trap, fuel, deadline, memory, invalid output)",
    ),
    (
        429,
        "Busy",
        "The merchant's programme is at capacity; retry after Retry-After",
    ),
    (
        503,
        "Unavailable",
        "Timed out (the operation may still complete: retry with the same idempotency key or id)",
    ),
    (
        405,
        "MethodNotAllowed",
        "The path does not take this method",
    ),
];

fn problem_ref(status: u16) -> Value {
    let name = PROBLEMS
        .iter()
        .find(|p| p.0 == status)
        .map_or("NotFound", |p| p.1);
    json!({ "$ref": format!("#/components/responses/{name}") })
}

/// Generate the document.
pub fn generate() -> Value {
    let mut settings = super::schemas::settings();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = settings.into_generator();
    let refs = super::schemas::components(&mut generator);
    let mut paths = Map::new();
    for o in operations() {
        let mut parameters = Vec::new();
        for name in o
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            parameters.push(json!({
                "name": name, "in": "path", "required": true,
                "schema": {"type": "string", "minLength": 1, "maxLength": 128}
            }));
        }
        for (name, ty, description) in o.query {
            let schema = if *ty == "integer" {
                json!({"type": "integer", "minimum": 0})
            } else {
                json!({"type": "string"})
            };
            parameters.push(json!({
                "name": name, "in": "query", "required": false,
                "description": description, "schema": schema
            }));
        }
        let mut responses = Map::new();
        let success = match o.path {
            "/metrics" => json!({
                "description": "Prometheus exposition (OpenMetrics text)",
                "content": {"application/openmetrics-text": {"schema": {"type": "string"}}}
            }),
            "/openapi.json" => json!({
                "description": "The OpenAPI document",
                "content": {"application/json": {"schema": {"type": "object"}}}
            }),
            "/dashboard" => json!({
                "description": "The dashboard page (self-contained HTML; its data comes from the API with the merchant's key)",
                "content": {"text/html": {"schema": {"type": "string"}}}
            }),
            _ => json!({
                "description": "Done",
                "content": {"application/json": {"schema": refs[o.answer]}}
            }),
        };
        responses.insert(o.ok.to_string(), success);
        if o.ok == 201 {
            // Uploading the same plugin bytes, or registering the same partner,
            // again answers 200 with what exists.
            if matches!(o.id, "plugins_upload" | "partners_create") {
                responses.insert(
                    "200".into(),
                    json!({
                        "description": "Already there",
                        "content": {"application/json": {"schema": refs[o.answer]}}
                    }),
                );
            }
        }
        if o.path == "/readyz" {
            responses.insert(
                "503".into(),
                json!({
                    "description": "Shutting down",
                    "content": {"application/json": {"schema": refs["Health.json"]}}
                }),
            );
        }
        if o.auth != Public {
            let mut fails = vec![400, 401, 403, 404, 422, 429, 503];
            if !matches!(o.body, Body::None) {
                fails.extend([413, 415]);
            }
            if o.method != "get" {
                fails.push(CONFLICT);
            }
            fails.extend(o.more.iter().copied());
            fails.sort();
            fails.dedup();
            for status in fails {
                responses.insert(status.to_string(), problem_ref(status));
            }
        }
        let mut operation = json!({
            "operationId": o.id,
            "summary": o.summary,
            "tags": [o.tag],
            "responses": responses,
        });
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if o.method != "get" && o.auth != Public {
            let p = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut p = p;
            p.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Retry-safe writes: a retry with the same key and request gets the first answer again",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255}
            }));
            operation["parameters"] = Value::Array(p);
        }
        match o.body {
            Body::None => {}
            Body::Json(file) => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": refs[file]}}
                });
            }
            Body::Data { csv } => {
                let lines = json!({"schema": {"type": "string"}});
                let mut content = json!({
                    "application/x-ndjson": lines,
                    "application/jsonl": lines,
                    "text/plain": lines,
                });
                if csv {
                    content["text/csv"] = lines;
                }
                operation["requestBody"] = json!({"required": true, "content": content});
            }
            Body::Wasm => {
                operation["requestBody"] = json!({
                    "required": true,
                    "content": {
                        "application/wasm": {"schema": {"type": "string", "format": "binary"}},
                        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                    }
                });
            }
        }
        match o.auth {
            Public => operation["security"] = json!([]),
            a => {
                operation["description"] = json!(match a {
                    Operator => "Operator key.",
                    OperatorOrMerchant => "Operator key or the merchant's key.",
                    Merchant => "The merchant's key.",
                    Partner => "The merchant's key, or a key of the partner concerned.",
                    Public => "",
                });
            }
        }
        let entry = paths.entry(o.path.to_string()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    let mut problem_responses = Map::new();
    for (_, name, what) in PROBLEMS {
        problem_responses.insert(
            name.to_string(),
            json!({
                "description": what,
                "content": {"application/problem+json": {"schema": refs["Problem.json"]}}
            }),
        );
    }
    let tags: Vec<Value> = [M, K, P, MB, A, W, D, S]
        .iter()
        .map(|t| json!({ "name": t }))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Loyalty engine API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Merchants run their own loyalty programmes as sandboxed WebAssembly plugins; partner apps enrol members, post events and redeem points. Errors are RFC 9457 problem documents (application/problem+json) with a stable type URI. Request bodies are JSON (at most 64 KiB; unknown fields are refused) except plugin uploads (raw wasm, at most 4 MiB). Writes accept an Idempotency-Key header.",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http", "scheme": "bearer",
                    "description": "An operator, merchant or partner key: `Authorization: Bearer lk_...`"
                }
            },
            "responses": problem_responses,
            "schemas": generator.take_definitions(true),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_file_is_what_the_operation_table_generates() {
        let text = serde_json::to_string_pretty(&generate()).unwrap() + "\n";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/openapi.json");
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            if DOCUMENT != text {
                std::fs::write(&path, &text).unwrap();
            }
            return;
        }
        assert!(
            DOCUMENT == text,
            "schemas/openapi.json differs from the operation table; regenerate with UPDATE_SCHEMAS=1"
        );
    }

    #[test]
    fn the_document_and_the_router_have_the_same_routes() {
        let mut documented: Vec<(String, String)> = operations()
            .iter()
            .map(|o| (o.method.to_string(), o.path.to_string()))
            .collect();
        let mut routed: Vec<(String, String)> = super::super::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        documented.sort();
        routed.sort();
        assert_eq!(documented, routed);
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let mut in_file: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(p, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .map(move |m| (m.clone(), p.clone()))
            })
            .collect();
        in_file.sort();
        assert_eq!(in_file, routed);
    }

    #[test]
    fn operation_ids_are_unique_and_name_handlers() {
        let mut ids: Vec<&str> = operations().iter().map(|o| o.id).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }
}
