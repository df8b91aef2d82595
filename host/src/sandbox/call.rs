//! One hook call: the operation's instance (made afresh for its first call), limits
//! armed, the call, its failure classified by type, its output measured and validated.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::Instance;
use wasmtime::{Store, Trap};

use super::bindings::loyalty::program::types as wit;
use super::bindings::{
    CheckedHook, DescribeSig, EvaluateTierSig, OffersSig, OnEnrollSig, OnEventSig, PerksSig,
    QuoteRedemptionSig, Signature,
};
use super::convert;
use super::error::{Failure, Hook, HookError};
use super::load::CompiledPlugin;
use super::state::CallState;
use super::validate::{self, OutputSize};
use super::{EPOCH_TICK, Sandbox};
use crate::domain;

/// One log line a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// "debug", "info", "warn" or "error".
    pub level: &'static str,
    /// The line (truncated to the per-line cap).
    pub message: String,
}

/// What a call cost and printed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CallReport {
    /// Fuel (instructions) used.
    pub fuel_used: u64,
    /// Wall-clock time, instantiation included.
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
    /// Log lines kept.
    pub logs: Vec<LogLine>,
    /// Log lines dropped over the cap.
    pub logs_dropped: usize,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// A successful call's value and report.
#[derive(Debug, Clone, PartialEq)]
pub struct Called<T> {
    /// What the hook returned.
    pub value: T,
    /// Fuel, time, logs.
    pub report: CallReport,
}

/// What a hook that can refuse returns: the plugin's answer or its own error.
pub type Answer<T> = Result<T, domain::PluginError>;

/// The instance the hook calls of one operation on one member share.
///
/// The engine opens a session per operation: an event runs `on-event`, then
/// `evaluate-tier`, then `perks` on the same member, and an enrolment `on-enroll`
/// then `perks`. The first call instantiates the plugin afresh; the operation's later
/// calls reuse that instance, each with its own fuel, deadline, log lines and panic
/// report; the instance is thrown away (its memory reset) when the session is
/// dropped. So nothing a plugin leaves in its memory outlives the operation or
/// reaches another member, and replaying the same operations makes the same calls in
/// the same order. The memory cap applies to the instance, so to the operation's calls
/// together.
///
/// A call that fails (trap, fuel, deadline, memory) drops the instance, and a call on
/// another plugin replaces it: either way the next call starts afresh.
#[derive(Default)]
pub struct Session {
    live: Option<Live>,
}

/// A session's instance and the store it lives in.
struct Live {
    /// [`CompiledPlugin::id`] of the plugin it is an instance of.
    plugin: u64,
    store: Store<CallState>,
    instance: Instance,
}

impl Session {
    /// A session with no instance yet.
    pub fn new() -> Session {
        Session::default()
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("plugin", &self.live.as_ref().map(|l| l.plugin))
            .finish()
    }
}

/// A fresh id for every plugin loaded (clones share it: they are the same code).
pub(crate) fn next_plugin_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Sandbox {
    /// A store for an instance, with its limiter, and a call's fuel and deadline armed.
    pub(crate) fn new_store(&self) -> Store<CallState> {
        let limits = self.limits();
        let mut store = Store::new(
            self.engine(),
            CallState::new(limits.memory_bytes, limits.log_lines, limits.log_line_bytes),
        );
        store.limiter(|s| s);
        // What the host copies out of the guest in one lowering (an answer, a log
        // line): wasmtime stops copying beyond this, so an answer whose strings or
        // lists alias one buffer cannot make the host allocate many times the
        // plugin's own memory before the output cap is checked.
        store.set_hostcall_fuel(hostcall_fuel(limits));
        store.epoch_deadline_trap();
        self.arm(&mut store);
        store
    }

    /// Give a store a call's fuel and deadline.
    fn arm(&self, store: &mut Store<CallState>) {
        let limits = self.limits();
        // Fuel cannot fail to be set when fuel consumption is on (it always is here).
        let _ = store.set_fuel(limits.fuel);
        let ticks = limits.deadline.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64;
        store.set_epoch_deadline(ticks.max(1));
    }
}

impl CompiledPlugin {
    fn fail(&self, hook: Hook, failure: Failure) -> HookError {
        self.sandbox
            .metrics()
            .failures
            .get_or_create(&vec![("hook", hook.name()), ("kind", failure.kind())])
            .inc();
        tracing::warn!(
            plugin = %self.label,
            hook = %hook,
            kind = failure.kind(),
            %failure,
            "plugin call failed"
        );
        HookError {
            plugin: self.label.clone(),
            hook,
            failure,
        }
    }

    /// The session's instance of this plugin, armed for a call: the one an earlier call
    /// of the operation made, or a fresh one.
    fn instance(&self, session: &mut Session, hook: Hook) -> Result<Live, HookError> {
        let limits = self.sandbox.limits();
        if let Some(mut live) = session.live.take().filter(|l| l.plugin == self.id) {
            live.store.data_mut().rearm();
            self.sandbox.arm(&mut live.store);
            return Ok(live);
        }
        let mut store = self.sandbox.new_store();
        let instance = self.pre.instantiate(&mut store).map_err(|e| {
            let failure = classify(&e, store.data(), limits);
            let failure = match failure {
                Failure::Trap { .. } => Failure::Instantiation {
                    reason: e.to_string(),
                },
                other => other,
            };
            self.fail(hook, failure)
        })?;
        Ok(Live {
            plugin: self.id,
            store,
            instance,
        })
    }

    /// Call hook `S` with `params` in the session's instance, and hand back the raw
    /// result. The instance goes back into the session only when the call succeeded.
    fn invoke<'a, S: Signature>(
        &self,
        session: &mut Session,
        params: S::Params<'a>,
    ) -> Result<(S::Results, CallReport), HookError> {
        let hook = S::HOOK;
        let limits = self.sandbox.limits();
        let started = Instant::now();
        let mut live = self.instance(session, hook)?;
        let store = &mut live.store;
        let func = live
            .instance
            .get_func(&mut *store, self.exports.get(hook))
            .ok_or_else(|| {
                // Looked up at load; reaching this means a host bug, reported as such.
                self.fail(
                    hook,
                    Failure::Instantiation {
                        reason: format!("export {hook} vanished"),
                    },
                )
            })?;
        let result = CheckedHook::typed::<S>(func).call(&mut *store, params);
        let fuel_left = store.get_fuel().unwrap_or(0);
        let data = store.data_mut();
        let report = CallReport {
            fuel_used: limits.fuel.saturating_sub(fuel_left),
            duration: started.elapsed(),
            logs: std::mem::take(&mut data.logs),
            logs_dropped: data.logs_dropped,
        };
        self.sandbox
            .metrics()
            .record(hook, report.duration.as_secs_f64(), report.fuel_used);
        tracing::debug!(
            plugin = %self.label,
            hook = %hook,
            fuel_used = report.fuel_used,
            duration_us = report.duration.as_micros() as u64,
            "hook call"
        );
        match result {
            Ok(value) => {
                session.live = Some(live);
                Ok((value, report))
            }
            Err(e) => Err(self.fail(hook, classify(&e, live.store.data(), limits))),
        }
    }

    /// Check the output's size and rules, then convert it.
    fn finish<W, D>(
        &self,
        hook: Hook,
        value: Result<W, wit::PluginError>,
        report: CallReport,
        check: impl FnOnce(&W) -> Result<(), String>,
        convert_ok: impl FnOnce(W) -> D,
    ) -> Result<Called<Answer<D>>, HookError>
    where
        W: OutputSize,
    {
        let limits = self.sandbox.limits();
        let size = match &value {
            Ok(v) => v.output_size(),
            Err(e) => e.output_size(),
        };
        if size > limits.output_bytes {
            return Err(self.fail(
                hook,
                Failure::OutputTooLarge {
                    size,
                    limit: limits.output_bytes,
                },
            ));
        }
        let value = match value {
            Ok(v) => {
                check(&v).map_err(|reason| self.fail(hook, Failure::InvalidOutput { reason }))?;
                Ok(convert_ok(v))
            }
            Err(e) => {
                validate::plugin_error(&e)
                    .map_err(|reason| self.fail(hook, Failure::InvalidOutput { reason }))?;
                Err(convert::plugin_error(e))
            }
        };
        Ok(Called { value, report })
    }

    /// `describe`: what the programme is.
    pub(crate) fn call_describe(&self) -> Result<Called<wit::ProgramInfo>, HookError> {
        let ((info,), report) = self.invoke::<DescribeSig>(&mut Session::new(), ())?;
        let size = info.output_size();
        let limit = self.sandbox.limits().output_bytes;
        if size > limit {
            return Err(self.fail(Hook::Describe, Failure::OutputTooLarge { size, limit }));
        }
        Ok(Called {
            value: info,
            report,
        })
    }

    /// `on-enroll`: a member joined.
    pub fn on_enroll(
        &self,
        session: &mut Session,
        member: &wit::Member,
        ctx: &wit::Context,
    ) -> Result<Called<Answer<domain::Enrolment>>, HookError> {
        let ((v,), report) = self.invoke::<OnEnrollSig>(session, (member, ctx))?;
        let limits = self.sandbox.limits();
        self.finish(
            Hook::OnEnroll,
            v,
            report,
            |e| validate::enrolment(e, &self.tiers, ctx.now, limits),
            convert::enrolment,
        )
    }

    /// `on-event`: something happened.
    pub fn on_event(
        &self,
        session: &mut Session,
        member: &wit::Member,
        event: &wit::Event,
        ctx: &wit::Context,
    ) -> Result<Called<Answer<domain::Outcome>>, HookError> {
        let ((v,), report) = self.invoke::<OnEventSig>(session, (member, event, ctx))?;
        let limits = self.sandbox.limits();
        self.finish(
            Hook::OnEvent,
            v,
            report,
            |o| validate::outcome(o, ctx.now, limits),
            convert::outcome,
        )
    }

    /// `evaluate-tier`: the member's tier now.
    pub fn evaluate_tier(
        &self,
        session: &mut Session,
        member: &wit::Member,
        ctx: &wit::Context,
    ) -> Result<Called<Answer<domain::TierDecision>>, HookError> {
        let ((v,), report) = self.invoke::<EvaluateTierSig>(session, (member, ctx))?;
        self.finish(
            Hook::EvaluateTier,
            v,
            report,
            |t| validate::tier_decision(t, &self.tiers),
            convert::tier_decision,
        )
    }

    /// `perks`: the member's entitlements.
    pub fn perks(
        &self,
        session: &mut Session,
        member: &wit::Member,
        ctx: &wit::Context,
    ) -> Result<Called<Answer<Vec<domain::Perk>>>, HookError> {
        let ((v,), report) = self.invoke::<PerksSig>(session, (member, ctx))?;
        self.finish(
            Hook::Perks,
            v,
            report,
            |p| validate::perks(p, &self.perks),
            |p| p.into_iter().map(convert::perk).collect(),
        )
    }

    /// `offers`: what the member sees at `partner`.
    pub fn offers(
        &self,
        session: &mut Session,
        member: &wit::Member,
        partner: &str,
        ctx: &wit::Context,
    ) -> Result<Called<Answer<Vec<domain::Offer>>>, HookError> {
        let ((v,), report) = self.invoke::<OffersSig>(session, (member, partner, ctx))?;
        self.finish(
            Hook::Offers,
            v,
            report,
            |o| validate::offers(o, partner),
            |o| o.into_iter().map(convert::offer).collect(),
        )
    }

    /// `quote-redemption`: a price, or a refusal.
    pub fn quote_redemption(
        &self,
        session: &mut Session,
        member: &wit::Member,
        request: &wit::RedemptionRequest,
        ctx: &wit::Context,
    ) -> Result<Called<Answer<domain::RedemptionAnswer>>, HookError> {
        let ((v,), report) = self.invoke::<QuoteRedemptionSig>(session, (member, request, ctx))?;
        self.finish(
            Hook::QuoteRedemption,
            v,
            report,
            validate::redemption_answer,
            convert::redemption_answer,
        )
    }
}

/// Classify a failed call by the trap's type and what the store saw, never by text.
/// The most a store lets the host copy out of the guest in one lowering: four times
/// the output cap, as wasmtime counts the host's representation (a `String` per
/// string, a struct per record), which is larger than the answer's own bytes.
pub(crate) fn hostcall_fuel(limits: &super::Limits) -> usize {
    limits.output_bytes.saturating_mul(4)
}

/// What wasmtime says when a lowering needs more than the store's hostcall fuel.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

fn classify(error: &wasmtime::Error, state: &CallState, limits: &super::Limits) -> Failure {
    // The copy stopped at the hostcall fuel: the answer is larger than that, at least.
    if error
        .chain()
        .any(|e| e.to_string().contains(HOSTCALL_FUEL_EXHAUSTED))
    {
        return Failure::OutputTooLarge {
            size: hostcall_fuel(limits),
            limit: limits.output_bytes,
        };
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Failure::OutOfFuel {
            budget: limits.fuel,
        },
        Some(Trap::Interrupt) => Failure::Deadline {
            limit: limits.deadline,
        },
        Some(Trap::StackOverflow) => Failure::StackOverflow {
            limit: limits.stack_bytes,
        },
        // A guest denied memory aborts (Rust's allocation-failure handler traps).
        _ if state.memory_denied => Failure::MemoryLimit {
            limit: limits.memory_bytes,
        },
        Some(trap) => Failure::Trap {
            trap: one_line(&trap.to_string()),
            message: state.panic.as_deref().map(one_line),
        },
        None => Failure::Trap {
            trap: one_line(&error.to_string()),
            message: state.panic.as_deref().map(one_line),
        },
    }
}

/// Error lines are one line: a panic message's "at file:line:\nmessage" is joined.
fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
