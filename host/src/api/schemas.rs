//! The JSON Schemas of every request and response body, and request validation.
//!
//! The schemas are generated from the Rust types (schemars, draft 2020-12) and kept
//! in `schemas/` in the repository, one file per body type. The server validates
//! requests against the files as built into the binary (`include_str!`), and a test
//! regenerates them from the types and fails on any difference, so the two cannot
//! drift apart. To regenerate after changing a type:
//! `UPDATE_SCHEMAS=1 cargo test -p loyalty-host --release --lib schemas`.

use std::collections::HashMap;

use jsonschema::Validator;
use jsonschema::error::ValidationErrorKind;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde::de::DeserializeOwned;

use super::problem::FieldError;

/// A body type with a schema file.
pub trait Body: JsonSchema {
    /// The file in `schemas/`.
    const FILE: &'static str;
}

/// A request body: validated against its schema, then deserialised.
pub trait RequestBody: Body + DeserializeOwned + Send + 'static {}

macro_rules! bodies {
    (requests { $($req:ty),* $(,)? } responses { $($res:ty),* $(,)? }) => {
        $(
            impl Body for $req {
                const FILE: &'static str = concat!(stringify!($req), ".json");
            }
            impl RequestBody for $req {}
        )*
        $(
            impl Body for $res {
                const FILE: &'static str = concat!(stringify!($res), ".json");
            }
        )*

        /// Every body's schema file as built in: (file name, text).
        pub const FILES: &[(&str, &str)] = &[
            $((
                concat!(stringify!($req), ".json"),
                include_str!(concat!("../../../schemas/", stringify!($req), ".json")),
            ),)*
            $((
                concat!(stringify!($res), ".json"),
                include_str!(concat!("../../../schemas/", stringify!($res), ".json")),
            ),)*
        ];

        /// Every body's schema generated from its type: (file name, schema).
        pub fn generate_all() -> Vec<(&'static str, serde_json::Value)> {
            vec![
                $((<$req as Body>::FILE, generate::<$req>()),)*
                $((<$res as Body>::FILE, generate::<$res>()),)*
            ]
        }

        /// Add every body type to an OpenAPI document's component schemas and
        /// return their references by file name.
        pub fn components(
            generator: &mut schemars::SchemaGenerator,
        ) -> HashMap<&'static str, serde_json::Value> {
            let mut refs = HashMap::new();
            $(refs.insert(<$req as Body>::FILE, generator.subschema_for::<$req>().to_value());)*
            $(refs.insert(<$res as Body>::FILE, generator.subschema_for::<$res>().to_value());)*
            refs
        }
    };
}

use super::types::*;
use crate::analytics::{
    Analytics, BudgetAnalytics, LapsedMembers, Nps, PointsAnalytics, RepeatCustomers, TierAnalytics,
};
use crate::domain::{Event, RedemptionRequest};
use crate::engine::{
    Adjustment, BudgetUsage, Consumed, EnrolRequest, EventResult, LedgerPage, MemberView,
    ProfileUpdate,
};
use crate::jobs::{Job, JobList};
use crate::ledger::Balance;
use crate::registry::VersionInfo;
use crate::simulate::SimulationRequest;
use crate::webhooks::{CreatedEndpoint, DeliveryPage, EndpointList, EndpointRequest, EndpointView};

bodies! {
    requests {
        CreateMerchant, MerchantUpdate, ConfigUpdate, BudgetSettings, KeyRequest,
        PartnerRequest, EnrolRequest, ProfileUpdate, Adjustment, Event, RedemptionRequest,
        Consumption, EndpointRequest, SimulationRequest,
    }
    responses {
        Merchant, MerchantCreated, MerchantList, ConfigView, BudgetView, BudgetUsage,
        IssuedKey, KeyList, KeyView, Partner, PartnerList, PluginList, VersionInfo,
        MemberView, LedgerPage, TierHistory, Balance, EventResult, Redemption, Consumed,
        OfferList, Health, Problem, CreatedEndpoint, EndpointView, EndpointList, DeliveryPage,
        Job, JobList, HistoryFile, Analytics, RepeatCustomers, LapsedMembers, Nps,
        TierAnalytics, PointsAnalytics, BudgetAnalytics,
    }
}

use super::problem::Problem;

/// The generator settings: draft 2020-12 (what OpenAPI 3.1 uses), definitions in
/// `$defs`.
pub fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12()
}

/// The schema of `T`, as its file holds it.
pub fn generate<T: JsonSchema>() -> serde_json::Value {
    settings()
        .into_generator()
        .root_schema_for::<T>()
        .to_value()
}

/// The compiled validators of the request bodies' schema files.
pub struct Schemas {
    validators: HashMap<&'static str, Validator>,
}

/// How long a validation message may be (values are quoted in them).
const MESSAGE_MAX: usize = 240;

impl Schemas {
    /// Compile every schema file.
    pub fn load() -> Result<Schemas, String> {
        let mut validators = HashMap::new();
        for (file, text) in FILES {
            let schema: serde_json::Value =
                serde_json::from_str(text).map_err(|e| format!("schemas/{file}: {e}"))?;
            let v = jsonschema::validator_for(&schema)
                .map_err(|e| format!("schemas/{file} is not a usable schema: {e}"))?;
            validators.insert(*file, v);
        }
        Ok(Schemas { validators })
    }

    /// Check `value` against `T`'s schema: every failing field, at most 20.
    pub fn check<T: Body>(&self, value: &serde_json::Value) -> Vec<FieldError> {
        let Some(v) = self.validators.get(T::FILE) else {
            return vec![FieldError {
                pointer: String::new(),
                message: format!("no schema {} is built in", T::FILE),
            }];
        };
        let mut out = Vec::new();
        for e in v.iter_errors(value).take(20) {
            push_error(&e, &mut out);
        }
        out.truncate(20);
        out
    }
}

/// The depth of the deepest failing field among `errors`.
fn depth(errors: &[jsonschema::ValidationError<'_>]) -> usize {
    errors
        .iter()
        .map(|e| e.instance_path().to_string().matches('/').count())
        .max()
        .unwrap_or(0)
}

/// Add `e` to `out` as field errors: unknown fields and missing ones by their own
/// pointer, and for `anyOf` / `oneOf` (optional fields and enums of shapes) the
/// errors of the branch that got furthest, which is the one the caller meant.
fn push_error(e: &jsonschema::ValidationError<'_>, out: &mut Vec<FieldError>) {
    let base = e.instance_path().to_string();
    match e.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for name in unexpected {
                out.push(FieldError {
                    pointer: format!("{base}/{}", escape(name)),
                    message: "unknown field".into(),
                });
            }
            return;
        }
        ValidationErrorKind::Required { property } => {
            out.push(FieldError {
                pointer: format!("{base}/{}", escape(property.as_str().unwrap_or_default())),
                message: "required".into(),
            });
            return;
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            let best = context
                .iter()
                .filter(|branch| !branch.is_empty())
                .max_by_key(|branch| (depth(branch), std::cmp::Reverse(branch.len())));
            if let Some(branch) = best.filter(|b| depth(b) > base.matches('/').count()) {
                for inner in branch {
                    push_error(inner, out);
                }
                return;
            }
        }
        _ => {}
    }
    let mut message = e.to_string();
    if message.len() > MESSAGE_MAX {
        let mut cut = MESSAGE_MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    out.push(FieldError {
        pointer: base,
        message,
    });
}

/// A JSON pointer token for `name` (RFC 6901).
fn escape(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files in `schemas/` are what the types generate. With `UPDATE_SCHEMAS=1`
    /// the test rewrites them instead.
    #[test]
    fn schemas_in_the_repository_match_the_rust_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        let mut drifted = Vec::new();
        for (file, schema) in generate_all() {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(file);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk != text {
                if update {
                    std::fs::write(&path, &text).unwrap();
                } else {
                    drifted.push(file);
                }
            }
        }
        assert!(
            drifted.is_empty(),
            "schemas differ from the Rust types: {drifted:?}; regenerate with UPDATE_SCHEMAS=1"
        );
    }

    #[test]
    fn every_built_in_schema_compiles() {
        Schemas::load().unwrap();
    }

    #[test]
    fn unknown_and_missing_fields_are_named_by_pointer() {
        let s = Schemas::load().unwrap();
        let errors = s.check::<Event>(&serde_json::json!({
            "occurred_at": 1, "kind": "purchase", "colour": "red",
            "amount": {"minor": "ten", "currency": "USD"}
        }));
        let pointers: Vec<&str> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert!(pointers.contains(&"/colour"), "{errors:?}");
        assert!(pointers.contains(&"/id"), "{errors:?}");
        assert!(pointers.contains(&"/amount/minor"), "{errors:?}");
    }
}
