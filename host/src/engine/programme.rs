//! What the engine calls: a merchant's programme, run in the sandbox (an active
//! registry version) or natively (see [`super::native`]), behind one trait.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{
    Enrolment, Event, MemberSnapshot, Offer, Outcome, Perk, PluginError, ProgramInfo,
    RedemptionAnswer, RedemptionRequest, TierDecision, Timestamp,
};
use crate::registry::{ActivePlugin, Registry};
use crate::sandbox::convert::{self, InputError};
use crate::sandbox::{HookError, Session};

/// The context of one hook call.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The merchant.
    pub merchant: &'a str,
    /// The time of the call (the event's time for events).
    pub now: Timestamp,
    /// The merchant's programme config as JSON text.
    pub config: &'a str,
    /// The programme currency.
    pub currency: &'a str,
}

impl<'a> Ctx<'a> {
    /// The context for `merchant` at `now` with its config and currency.
    pub fn new(merchant: &'a str, now: Timestamp, config: &'a str, currency: &'a str) -> Ctx<'a> {
        Ctx {
            merchant,
            now,
            config,
            currency,
        }
    }
}

/// Why a programme call produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The input cannot be carried by the contract (names the field).
    #[error("{0}")]
    Input(#[from] InputError),
    /// The plugin failed (trap, fuel, deadline, memory, invalid output).
    #[error("{0}")]
    Hook(#[from] HookError),
}

/// The programme's answer, or its own error (bad config, unexpected input).
pub type Answer<T> = Result<T, PluginError>;

/// A merchant's programme as the engine sees it.
///
/// The engine passes one [`Session`] to the hook calls of one operation on one
/// member: a sandboxed programme answers them from one fresh instance (see
/// [`Session`]); a native one ignores it.
pub trait Programme: Send + Sync {
    /// The version (registry version id, or a name for native programmes).
    fn version(&self) -> &str;
    /// What `describe` said.
    fn info(&self) -> &ProgramInfo;
    /// `on-enroll`.
    fn on_enroll(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Enrolment>, CallError>;
    /// `on-event`.
    fn on_event(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        e: &Event,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Outcome>, CallError>;
    /// `evaluate-tier`.
    fn evaluate_tier(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<TierDecision>, CallError>;
    /// `perks`.
    fn perks(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<Perk>>, CallError>;
    /// `offers`.
    fn offers(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        partner: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<Offer>>, CallError>;
    /// `quote-redemption`.
    fn quote_redemption(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        r: &RedemptionRequest,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<RedemptionAnswer>, CallError>;
}

/// Where the engine finds each merchant's programme.
pub trait Programmes: Send + Sync {
    /// The merchant's active programme, if any.
    fn active(&self, merchant: &str) -> Option<Arc<dyn Programme>>;
}

impl Programmes for Registry {
    fn active(&self, merchant: &str) -> Option<Arc<dyn Programme>> {
        Registry::active(self, merchant).map(|a| a as Arc<dyn Programme>)
    }
}

/// A fixed set of programmes (native ones, for tests, simulations and benchmarks).
#[derive(Default)]
pub struct FixedProgrammes {
    // A std RwLock: read on every call, written only when a programme is set.
    map: RwLock<HashMap<String, Arc<dyn Programme>>>,
}

impl FixedProgrammes {
    /// No programmes.
    pub fn new() -> FixedProgrammes {
        FixedProgrammes::default()
    }

    /// Give `merchant` the programme `p`.
    pub fn set(&self, merchant: &str, p: Arc<dyn Programme>) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(merchant.to_string(), p);
    }
}

impl Programmes for FixedProgrammes {
    fn active(&self, merchant: &str) -> Option<Arc<dyn Programme>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(merchant)
            .cloned()
    }
}

/// An active registry version, called in the sandbox: a fresh instance per session.
impl Programme for ActivePlugin {
    fn version(&self) -> &str {
        &self.version
    }

    fn info(&self) -> &ProgramInfo {
        self.plugin.info()
    }

    fn on_enroll(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Enrolment>, CallError> {
        let called = self
            .plugin
            .on_enroll(s, &convert::member(m)?, &convert::context(ctx))?;
        Ok(called.value)
    }

    fn on_event(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        e: &Event,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Outcome>, CallError> {
        let called = self.plugin.on_event(
            s,
            &convert::member(m)?,
            &convert::event(e)?,
            &convert::context(ctx),
        )?;
        Ok(called.value)
    }

    fn evaluate_tier(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<TierDecision>, CallError> {
        let called = self
            .plugin
            .evaluate_tier(s, &convert::member(m)?, &convert::context(ctx))?;
        Ok(called.value)
    }

    fn perks(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<Perk>>, CallError> {
        let called = self
            .plugin
            .perks(s, &convert::member(m)?, &convert::context(ctx))?;
        Ok(called.value)
    }

    fn offers(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        partner: &str,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<Vec<Offer>>, CallError> {
        let called =
            self.plugin
                .offers(s, &convert::member(m)?, partner, &convert::context(ctx))?;
        Ok(called.value)
    }

    fn quote_redemption(
        &self,
        s: &mut Session,
        m: &MemberSnapshot,
        r: &RedemptionRequest,
        ctx: &Ctx<'_>,
    ) -> Result<Answer<RedemptionAnswer>, CallError> {
        let called = self.plugin.quote_redemption(
            s,
            &convert::member(m)?,
            &convert::redemption_request(r)?,
            &convert::context(ctx),
        )?;
        Ok(called.value)
    }
}
