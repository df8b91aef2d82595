//! From wasm bytes to a validated, compiled, pre-linked plugin.
//!
//! Order of checks, each with its own [`LoadError`]: size, wasm magic, componentize a
//! core module, compile, imports, exports (contract version, presence, types), then a
//! sandboxed `describe` whose answer must be a usable programme.

use std::collections::HashSet;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre};

use super::bindings::loyalty::program::types as wit;
use super::error::{Hook, LoadError};
use super::state::CallState;
use super::{HOOKS_INTERFACE, SUPPORTED_CONTRACTS, Sandbox};
use crate::domain;

/// The host interface plugins may import, and its functions.
const HOST_INTERFACE: &str = "loyalty:program/host@1.0.0";
const HOST_FUNCTIONS: &[&str] = &["log", "panic"];
/// The types-only interface the contract's exports refer to.
const TYPES_INTERFACE: &str = "loyalty:program/types@1.0.0";

/// A plugin compiled once and pre-linked: every operation instantiates it afresh (see
/// [`Session`](super::Session)).
#[derive(Clone)]
pub struct CompiledPlugin {
    /// Unique per load, so a session knows whose instance it holds.
    pub(crate) id: u64,
    pub(crate) sandbox: Sandbox,
    pub(crate) label: String,
    pub(crate) pre: InstancePre<CallState>,
    pub(crate) exports: HookExports,
    info: domain::ProgramInfo,
    pub(crate) tiers: HashSet<String>,
    pub(crate) perks: HashSet<String>,
    component: Component,
}

/// The export index of every hook, looked up once at load.
#[derive(Clone)]
pub(crate) struct HookExports {
    indices: [ComponentExportIndex; 7],
}

impl HookExports {
    pub(crate) fn get(&self, hook: Hook) -> &ComponentExportIndex {
        &self.indices[hook as usize]
    }
}

impl CompiledPlugin {
    /// What the plugin's `describe` returned at load.
    pub fn info(&self) -> &domain::ProgramInfo {
        &self.info
    }

    /// The label used in errors and logs.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The compiled component (for serialising to an on-disk cache).
    pub fn component(&self) -> &Component {
        &self.component
    }
}

/// Whether the bytes start like a core module (`\0asm` version 1).
pub fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Whether the bytes start like a component (`\0asm`, layer 1).
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

impl Sandbox {
    /// Validate and compile a plugin. `label` names it in errors ("airline.wasm",
    /// "merchant acme, version 3").
    pub fn load(&self, label: &str, bytes: &[u8]) -> Result<CompiledPlugin, LoadError> {
        let limit = self.limits().plugin_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let component_bytes;
        let bytes = if is_component(bytes) {
            bytes
        } else if is_core_module(bytes) {
            component_bytes = componentize(bytes)?;
            &component_bytes[..]
        } else {
            return Err(LoadError::NotWasm);
        };
        let component = Component::new(self.engine(), bytes).map_err(|e| LoadError::Compile {
            reason: e.to_string(),
        })?;
        self.from_component(label, component)
    }

    /// Validate an already compiled component (e.g. one read back from the cache).
    pub fn from_component(
        &self,
        label: &str,
        component: Component,
    ) -> Result<CompiledPlugin, LoadError> {
        check_imports(self, &component)?;
        let indices = hook_indices(self, &component)?;
        let pre = self
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| LoadError::Compile {
                reason: format!("cannot link: {e}"),
            })?;
        check_export_types(self, &pre, &indices)?;

        let mut plugin = CompiledPlugin {
            id: super::call::next_plugin_id(),
            sandbox: self.clone(),
            label: label.to_string(),
            pre,
            exports: HookExports { indices },
            info: placeholder_info(),
            tiers: HashSet::new(),
            perks: HashSet::new(),
            component,
        };
        let described = plugin
            .call_describe()
            .map_err(|e| LoadError::Describe(e.failure))?;
        let info = program_info(described.value)?;
        plugin.tiers = info.tiers.iter().map(|t| t.id.clone()).collect();
        plugin.perks = info.perks.iter().map(|p| p.id.clone()).collect();
        plugin.info = info;
        Ok(plugin)
    }
}

/// Turn a wit-bindgen core module into a component (it carries its own WIT in a custom
/// section, which the encoder reads).
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, LoadError> {
    // Validate first: wit-component assumes a well-formed module and can panic on a
    // truncated one (seen with 0.254: a custom section running past the end).
    wasmparser::Validator::new()
        .validate_all(module)
        .map_err(|e| LoadError::Componentize {
            reason: format!("invalid core module: {e}"),
        })?;
    // And never let an encoder bug in a hostile upload take the host down.
    let encoded = std::panic::catch_unwind(|| {
        wit_component::ComponentEncoder::default()
            .module(module)?
            .validate(true)
            .encode()
    });
    match encoded {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(LoadError::Componentize {
            reason: format!("{e:#}"),
        }),
        Err(_) => Err(LoadError::Componentize {
            reason: "the component encoder rejected the module".into(),
        }),
    }
}

fn check_imports(sandbox: &Sandbox, component: &Component) -> Result<(), LoadError> {
    let engine = sandbox.engine();
    let ty = component.component_type();
    for (name, import) in ty.imports(engine) {
        let allowed: &[&str] = match name {
            HOST_INTERFACE => HOST_FUNCTIONS,
            TYPES_INTERFACE => &[],
            _ => {
                return Err(LoadError::UnknownImport {
                    name: name.to_string(),
                });
            }
        };
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            return Err(LoadError::UnknownImport {
                name: name.to_string(),
            });
        };
        for (item, ext) in instance.exports(engine) {
            let is_type = matches!(ext.ty, ComponentItem::Type(_));
            if !is_type && !allowed.contains(&item) {
                return Err(LoadError::UnknownImport {
                    name: format!("{name}#{item}"),
                });
            }
        }
    }
    Ok(())
}

fn hook_indices(
    sandbox: &Sandbox,
    component: &Component,
) -> Result<[ComponentExportIndex; 7], LoadError> {
    let Some(interface) = component.get_export_index(None, HOOKS_INTERFACE) else {
        // Another version of the contract, or none at all?
        let ty = component.component_type();
        let other = ty
            .exports(sandbox.engine())
            .map(|(name, _)| name)
            .find_map(|name| name.strip_prefix("loyalty:program/hooks@"))
            .map(str::to_string);
        return Err(match other {
            Some(found) => LoadError::UnsupportedContract {
                found,
                supported: SUPPORTED_CONTRACTS.iter().map(|s| s.to_string()).collect(),
            },
            None => LoadError::BadExports {
                missing: vec![HOOKS_INTERFACE.to_string()],
                mistyped: Vec::new(),
            },
        });
    };
    let mut missing = Vec::new();
    let found: Vec<Option<ComponentExportIndex>> = Hook::ALL
        .iter()
        .map(|hook| {
            let index = component.get_export_index(Some(&interface), hook.name());
            if index.is_none() {
                missing.push(hook.name().to_string());
            }
            index
        })
        .collect();
    if !missing.is_empty() {
        // Report mistyped present hooks too, so one upload shows every problem.
        let mistyped = Hook::ALL
            .iter()
            .zip(&found)
            .filter(|(hook, idx)| {
                idx.is_some() && !export_type_matches(sandbox, component, &interface, **hook)
            })
            .map(|(hook, _)| hook.name().to_string())
            .collect();
        return Err(LoadError::BadExports { missing, mistyped });
    }
    let indices: Vec<ComponentExportIndex> = found.into_iter().flatten().collect();
    Ok(indices
        .try_into()
        .unwrap_or_else(|_| unreachable!("seven hooks were found")))
}

/// Typecheck one hook against the contract without instantiating: by linking a
/// throwaway `InstancePre` and asking for the typed function in a scratch store.
fn export_type_matches(
    sandbox: &Sandbox,
    component: &Component,
    interface: &ComponentExportIndex,
    hook: Hook,
) -> bool {
    let Ok(pre) = sandbox.linker().instantiate_pre(component) else {
        return false;
    };
    let Some(index) = component.get_export_index(Some(interface), hook.name()) else {
        return false;
    };
    let mut store = sandbox.new_store();
    let Ok(instance) = pre.instantiate(&mut store) else {
        return false;
    };
    typecheck(&mut store, &instance, hook, &index)
}

fn check_export_types(
    sandbox: &Sandbox,
    pre: &InstancePre<CallState>,
    indices: &[ComponentExportIndex; 7],
) -> Result<(), LoadError> {
    let mut store = sandbox.new_store();
    let instance = pre
        .instantiate(&mut store)
        .map_err(|e| LoadError::Compile {
            reason: format!("cannot instantiate: {e}"),
        })?;
    let mistyped: Vec<String> = Hook::ALL
        .iter()
        .zip(indices)
        .filter(|(hook, index)| !typecheck(&mut store, &instance, **hook, index))
        .map(|(hook, _)| hook.name().to_string())
        .collect();
    if mistyped.is_empty() {
        Ok(())
    } else {
        Err(LoadError::BadExports {
            missing: Vec::new(),
            mistyped,
        })
    }
}

fn typecheck(
    store: &mut wasmtime::Store<CallState>,
    instance: &wasmtime::component::Instance,
    hook: Hook,
    index: &ComponentExportIndex,
) -> bool {
    use super::bindings::{
        CheckedHook, DescribeSig, EvaluateTierSig, OffersSig, OnEnrollSig, OnEventSig, PerksSig,
        QuoteRedemptionSig,
    };
    let Some(func) = instance.get_func(&mut *store, index) else {
        return false;
    };
    let s = &*store;
    match hook {
        Hook::Describe => CheckedHook::check::<DescribeSig>(s, &func),
        Hook::OnEnroll => CheckedHook::check::<OnEnrollSig>(s, &func),
        Hook::OnEvent => CheckedHook::check::<OnEventSig>(s, &func),
        Hook::EvaluateTier => CheckedHook::check::<EvaluateTierSig>(s, &func),
        Hook::Perks => CheckedHook::check::<PerksSig>(s, &func),
        Hook::Offers => CheckedHook::check::<OffersSig>(s, &func),
        Hook::QuoteRedemption => CheckedHook::check::<QuoteRedemptionSig>(s, &func),
    }
}

fn placeholder_info() -> domain::ProgramInfo {
    domain::ProgramInfo {
        name: String::new(),
        version: String::new(),
        description: String::new(),
        tiers: Vec::new(),
        perks: Vec::new(),
        rewards: Vec::new(),
        config_schema: serde_json::Value::Null,
        default_config: serde_json::Value::Null,
    }
}

/// Check `describe`'s answer and convert it.
/// A catalogue's ids (`list`, each a `one`): slugs, none listed twice.
fn catalogue_ids<'a>(
    list: &str,
    one: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<(), LoadError> {
    let invalid = |reason: String| LoadError::InvalidDescribe { reason };
    let mut seen = HashSet::new();
    for (i, id) in ids.enumerate() {
        super::validate::id(&format!("{list}[{i}].id"), id).map_err(invalid)?;
        if !seen.insert(id) {
            return Err(invalid(format!("{one} id {id:?} is listed twice")));
        }
    }
    Ok(())
}

fn program_info(p: wit::ProgramInfo) -> Result<domain::ProgramInfo, LoadError> {
    let invalid = |reason: String| LoadError::InvalidDescribe { reason };
    if p.name.trim().is_empty() {
        return Err(invalid("name is empty".into()));
    }
    if p.tiers.is_empty() {
        return Err(invalid("the programme lists no tiers".into()));
    }
    catalogue_ids("tiers", "tier", p.tiers.iter().map(|t| t.id.as_str()))?;
    catalogue_ids("perks", "perk", p.perks.iter().map(|t| t.id.as_str()))?;
    catalogue_ids("rewards", "reward", p.rewards.iter().map(|t| t.id.as_str()))?;
    for (i, reward) in p.rewards.iter().enumerate() {
        if let Some(points) = reward.points
            && !(0..=super::validate::MAX_CREDIT_POINTS).contains(&points)
        {
            return Err(invalid(format!(
                "rewards[{i}].points {points} is not between 0 and {}",
                super::validate::MAX_CREDIT_POINTS
            )));
        }
    }
    let config_schema: serde_json::Value = serde_json::from_str(&p.config_schema)
        .map_err(|e| invalid(format!("config-schema is not JSON: {e}")))?;
    if !config_schema.is_object() && !config_schema.is_boolean() {
        return Err(invalid("config-schema must be a JSON Schema object".into()));
    }
    let default_config: serde_json::Value = serde_json::from_str(&p.default_config)
        .map_err(|e| invalid(format!("default-config is not JSON: {e}")))?;
    Ok(super::convert::program_info(
        p,
        config_schema,
        default_config,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> wit::ProgramInfo {
        wit::ProgramInfo {
            name: "p".into(),
            version: "1".into(),
            description: String::new(),
            tiers: vec![wit::TierInfo {
                id: "member".into(),
                name: "Member".into(),
            }],
            perks: vec![],
            rewards: vec![],
            config_schema: "{}".into(),
            default_config: "{}".into(),
        }
    }

    fn reason(p: wit::ProgramInfo) -> String {
        match program_info(p) {
            Err(LoadError::InvalidDescribe { reason }) => reason,
            other => panic!("expected an invalid describe, got {other:?}"),
        }
    }

    #[test]
    fn perk_and_reward_catalogues_are_checked_like_tiers() {
        assert!(program_info(info()).is_ok());
        let perk = |id: &str| wit::PerkInfo {
            id: id.into(),
            name: "Perk".into(),
            description: String::new(),
        };
        let mut p = info();
        p.perks = vec![perk("lounge"), perk("lounge")];
        assert!(reason(p).contains("listed twice"));
        let reward = |id: &str, points| wit::RewardInfo {
            id: id.into(),
            name: "Reward".into(),
            points,
        };
        let mut p = info();
        p.rewards = vec![reward("seat", Some(10)), reward("seat", None)];
        assert!(reason(p).contains("listed twice"));
        let mut p = info();
        p.rewards = vec![reward("Seat Upgrade", None)];
        assert!(reason(p).contains("rewards[0].id"));
        let mut p = info();
        p.rewards = vec![reward("seat", Some(-1))];
        assert!(reason(p).contains("rewards[0].points"));
        let mut p = info();
        p.rewards = vec![reward("seat", Some(25_000)), reward("cash", None)];
        assert!(program_info(p).is_ok());
    }
}
