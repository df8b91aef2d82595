//! Host-side bindings generated from the one contract file, `sdk/wit/program.wit`,
//! and the hooks' signatures, defined once for both load-time typechecking and calls.
#![allow(unsafe_code, missing_docs, clippy::all)]

wasmtime::component::bindgen!({
    path: "../sdk/wit",
    world: "program",
    additional_derives: [PartialEq],
});

use wasmtime::component::{ComponentNamedList, Func, Lift, Lower, TypedFunc};

use self::loyalty::program::types::{
    Context, Enrolment, Event, Member, Offer, Outcome, Perk, PluginError, ProgramInfo,
    RedemptionAnswer, RedemptionRequest, TierDecision,
};
use super::Hook;

/// A hook's parameter and result types in the component model.
pub(crate) trait Signature {
    /// The hook.
    const HOOK: Hook;
    /// Parameters, borrowing the caller's values.
    type Params<'a>: ComponentNamedList + Lower;
    /// Results.
    type Results: ComponentNamedList + Lift + 'static;
}

macro_rules! signature {
    ($name:ident, $hook:expr, ($($p:ty),*), $r:ty) => {
        pub(crate) struct $name;
        impl Signature for $name {
            const HOOK: Hook = $hook;
            type Params<'a> = ($(&'a $p,)*);
            type Results = ($r,);
        }
    };
}

pub(crate) struct DescribeSig;
impl Signature for DescribeSig {
    const HOOK: Hook = Hook::Describe;
    type Params<'a> = ();
    type Results = (ProgramInfo,);
}
signature!(OnEnrollSig, Hook::OnEnroll, (Member, Context), Result<Enrolment, PluginError>);
signature!(OnEventSig, Hook::OnEvent, (Member, Event, Context), Result<Outcome, PluginError>);
signature!(EvaluateTierSig, Hook::EvaluateTier, (Member, Context), Result<TierDecision, PluginError>);
signature!(
    PerksSig,
    Hook::Perks,
    (Member, Context),
    Result<Vec<Perk>, PluginError>
);
signature!(
    OffersSig,
    Hook::Offers,
    (Member, str, Context),
    Result<Vec<Offer>, PluginError>
);
signature!(
    QuoteRedemptionSig,
    Hook::QuoteRedemption,
    (Member, RedemptionRequest, Context),
    Result<RedemptionAnswer, PluginError>
);

/// A hook export known to have signature `S`: the only way to make one is
/// [`CheckedHook::check`], which typechecks it.
pub(crate) struct CheckedHook;

impl CheckedHook {
    /// Typecheck `func` against `S` (done once per plugin, at load).
    pub(crate) fn check<S: Signature>(store: impl wasmtime::AsContext, func: &Func) -> bool {
        func.typed::<S::Params<'_>, S::Results>(store).is_ok()
    }

    /// The typed function for a hook export of a plugin whose exports passed
    /// [`CheckedHook::check`] at load, without repeating the typecheck on every call.
    ///
    /// The caller must pass the same export index that was checked with the same `S`;
    /// `CompiledPlugin` guarantees it by only keeping plugins whose every hook
    /// passed, and by indexing exports by `S::HOOK`.
    pub(crate) fn typed<'a, S: Signature>(func: Func) -> TypedFunc<S::Params<'a>, S::Results> {
        // SAFETY: `func` is the export for `S::HOOK` of a component whose exports were
        // all typechecked against their `Signature` by `check` before the plugin was
        // accepted (see load.rs), and a component's export types cannot change.
        unsafe { TypedFunc::new_unchecked(func) }
    }
}
