//! Write a loyalty programme as a WebAssembly plugin.
//!
//! A programme is a type implementing [`Program`]. Every hook has a sensible default,
//! so a plugin implements only what its design needs; [`export_program!`] exports it.
//! The same source compiles natively, so `cargo test` inside a plugin crate tests the
//! rules without any WebAssembly: call the trait's functions directly, with the
//! builders in [`testing`].
//!
//! A hook must be a pure function of its arguments: keep nothing in statics. The host
//! runs each operation on a member (an event's `on-event`, `evaluate-tier` and `perks`,
//! an enrolment's `on-enroll` and `perks`) in one fresh instance, so a static would carry
//! over from one of those calls to the next but never to another operation, and natively
//! in `cargo test` it would carry over everywhere.
//!
//! The SDK gives plugin authors what they would otherwise get wrong:
//! - money times a rate with explicit rounding ([`Money::earn`], [`Rate`], [`Rounding`]),
//!   never floats;
//! - date windows: calendar year, rolling 12 months, membership anniversary
//!   ([`time::Window`]), months, weeks and birthdays ([`time`]);
//! - typed programme config from the merchant's JSON with a clear error
//!   ([`Context::config`]), and typed plugin state ([`Member::state_as`],
//!   [`Outcome::with_state`]).
//!
//! # A complete small plugin
//!
//! A coffee bar that gives 2 points per whole dollar (3 with the app), a "regular" tier at
//! 100 points in the last 12 months, and a free cookie for regulars each month:
//!
//! ```
//! use loyalty_sdk::prelude::*;
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! #[serde(default, deny_unknown_fields)]
//! struct Config {
//!     points_per_dollar: u32,
//!     app_points_per_dollar: u32,
//!     regular_threshold: i64,
//! }
//!
//! impl Default for Config {
//!     fn default() -> Self {
//!         Config { points_per_dollar: 2, app_points_per_dollar: 3, regular_threshold: 100 }
//!     }
//! }
//!
//! struct CoffeeBar;
//!
//! impl Program for CoffeeBar {
//!     fn describe() -> ProgramInfo {
//!         ProgramInfo::new("Coffee bar", "1.0.0")
//!             .tier("guest", "Guest")
//!             .tier("regular", "Regular")
//!             .perk("cookie", "Free cookie", "One cookie a month for regulars")
//!     }
//!
//!     fn on_event(_member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
//!         let config: Config = ctx.config()?;
//!         let (EventKind::Purchase, Some(amount)) = (&event.kind, &event.amount) else {
//!             return Ok(Outcome::new());
//!         };
//!         let rate = if event.channel == Channel::App {
//!             config.app_points_per_dollar
//!         } else {
//!             config.points_per_dollar
//!         };
//!         let points = amount.earn(Rate::whole(rate.into()), Rounding::Down);
//!         Ok(Outcome::new().credit(Credit::new(points, "coffee").qualifying()))
//!     }
//!
//!     fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
//!         let config: Config = ctx.config()?;
//!         let earned = member.stats.rolling_12_months.qualifying_points;
//!         if earned >= config.regular_threshold {
//!             Ok(TierDecision::new("regular", "a regular in the last 12 months"))
//!         } else {
//!             Ok(TierDecision::new("guest", "not yet a regular")
//!                 .progress("regular", "points in the last 12 months", earned, config.regular_threshold))
//!         }
//!     }
//!
//!     fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
//!         if member.tier != "regular" {
//!             return Ok(vec![]);
//!         }
//!         let month = time::month_key(ctx.now);
//!         Ok(vec![Perk::new("cookie", "Free cookie", month).quantity(1)
//!             .valid_until(time::end_of_month(ctx.now))])
//!     }
//! }
//!
//! export_program!(CoffeeBar);
//!
//! // Natively, the rules are plain functions: test them with concrete numbers.
//! use loyalty_sdk::testing::{context, member, purchase};
//! let ctx = context(time::timestamp(2026, 3, 14, 9, 0, 0), "{}");
//! let mut latte = purchase("order-1", 1_250, "USD", ctx.now);
//! latte.channel = Channel::App;
//! let outcome = CoffeeBar::on_event(&member("m-1"), &latte, &ctx).unwrap();
//! assert_eq!(outcome.credits[0].points, 37); // $12.50 x 3 = 37.5, rounded down
//! ```
//!
//! Build it to WebAssembly with `cargo build --target wasm32-unknown-unknown --release`
//! (the repository's `plugins/build` script does this for you, whichever toolchain the
//! machine has) and run it with the host's local runner: `loyalty run plugin.wasm on-event ...`.

#[cfg(all(target_arch = "wasm32", feature = "arena-allocator"))]
pub mod arena;
pub mod builders;
mod config;
pub mod money;
pub mod testing;
pub mod time;

/// The types and host imports generated from the contract (`wit/program.wit`).
///
/// Plugin authors use the re-exports at the crate root; this module is public so the
/// [`export_program!`] macro can reach the generated export glue.
#[allow(unsafe_code, missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "program",
        path: "wit",
        pub_export_macro: true,
        export_macro_name: "__export_program_world",
        default_bindings_module: "loyalty_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::loyalty::program::types::{
    Attribute, Channel, Context, Credit, Date, Enrolment, Event, EventKind, LineItem, Member,
    Money, Offer, OfferKind, Outcome, PaymentMethod, Perk, PerkInfo, PluginError, ProgramInfo,
    Quote, RedemptionAnswer, RedemptionRequest, ReferralDetails, RefundDetails, Rejection,
    RewardInfo, Stats, TierDecision, TierInfo, TierProgress, Timestamp, Totals,
};
pub use money::{Rate, Rounding};

/// The contract version this SDK implements (the WIT package version).
pub const CONTRACT_VERSION: &str = "1.0.0";

/// Everything a plugin usually needs, in one `use`.
pub mod prelude {
    pub use crate::{
        Attribute, Channel, Context, Credit, Date, Enrolment, Event, EventKind, LineItem, Member,
        Money, Offer, OfferKind, Outcome, PaymentMethod, Perk, PerkInfo, PluginError, Program,
        ProgramInfo, Quote, Rate, RedemptionAnswer, RedemptionRequest, Rejection, RewardInfo,
        Rounding, TierDecision, TierInfo, TierProgress, Timestamp, export_program, log, time,
    };
}

/// A loyalty programme. Implement the hooks your design needs; the others keep their
/// defaults. Hooks are associated functions: a plugin holds no state between calls
/// (keep what must persist in the member's state blob, see [`Outcome::with_state`]).
pub trait Program {
    /// The programme's name, tiers (lowest first), perks, rewards and config schema.
    fn describe() -> ProgramInfo;

    /// A member joined. Default: no credits, the first tier `describe` lists.
    fn on_enroll(member: &Member, ctx: &Context) -> Result<Enrolment, PluginError> {
        let _ = (member, ctx);
        Ok(Enrolment::new())
    }

    /// Something happened to a member. Default: nothing is credited.
    fn on_event(member: &Member, event: &Event, ctx: &Context) -> Result<Outcome, PluginError> {
        let _ = (member, event, ctx);
        Ok(Outcome::new())
    }

    /// Which tier the member holds. Default: the member keeps the current tier, or gets
    /// the first tier `describe` lists.
    fn evaluate_tier(member: &Member, ctx: &Context) -> Result<TierDecision, PluginError> {
        let _ = ctx;
        if !member.tier.is_empty() {
            return Ok(TierDecision::new(member.tier.clone(), "unchanged"));
        }
        let first = Self::describe().tiers.into_iter().next().map(|t| t.id);
        Ok(TierDecision::new(
            first.unwrap_or_else(|| "member".to_string()),
            "initial tier",
        ))
    }

    /// The entitlements the member holds. Default: none.
    fn perks(member: &Member, ctx: &Context) -> Result<Vec<Perk>, PluginError> {
        let _ = (member, ctx);
        Ok(Vec::new())
    }

    /// The offers the member sees at one partner. Default: none.
    fn offers(member: &Member, partner: &str, ctx: &Context) -> Result<Vec<Offer>, PluginError> {
        let _ = (member, partner, ctx);
        Ok(Vec::new())
    }

    /// Price a redemption or refuse it. Default: every redemption is refused with
    /// the code `redemptions-not-offered`.
    fn quote_redemption(
        member: &Member,
        request: &RedemptionRequest,
        ctx: &Context,
    ) -> Result<RedemptionAnswer, PluginError> {
        let _ = (member, request, ctx);
        Ok(RedemptionAnswer::reject(
            "redemptions-not-offered",
            "this programme does not offer redemptions",
        ))
    }
}

/// Export a [`Program`] as the plugin's hooks.
///
/// Put it once in the plugin crate, next to the type. When compiling to WebAssembly it
/// generates the component exports; natively it only checks that the type implements
/// [`Program`], so the same crate is tested with `cargo test`.
#[macro_export]
macro_rules! export_program {
    ($program:ty) => {
        const _: fn() = || {
            fn assert_program<P: $crate::Program>() {}
            assert_program::<$program>();
        };

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            use $crate::bindings::exports::loyalty::program::hooks as __hooks;
            struct __LoyaltyExport;
            impl __hooks::Guest for __LoyaltyExport {
                fn describe() -> $crate::ProgramInfo {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::describe()
                }
                fn on_enroll(
                    member: $crate::Member,
                    ctx: $crate::Context,
                ) -> ::core::result::Result<$crate::Enrolment, $crate::PluginError> {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::on_enroll(&member, &ctx)
                }
                fn on_event(
                    member: $crate::Member,
                    event: $crate::Event,
                    ctx: $crate::Context,
                ) -> ::core::result::Result<$crate::Outcome, $crate::PluginError> {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::on_event(&member, &event, &ctx)
                }
                fn evaluate_tier(
                    member: $crate::Member,
                    ctx: $crate::Context,
                ) -> ::core::result::Result<$crate::TierDecision, $crate::PluginError> {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::evaluate_tier(&member, &ctx)
                }
                fn perks(
                    member: $crate::Member,
                    ctx: $crate::Context,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::Perk>,
                    $crate::PluginError,
                > {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::perks(&member, &ctx)
                }
                fn offers(
                    member: $crate::Member,
                    partner: ::std::string::String,
                    ctx: $crate::Context,
                ) -> ::core::result::Result<
                    ::std::vec::Vec<$crate::Offer>,
                    $crate::PluginError,
                > {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::offers(&member, &partner, &ctx)
                }
                fn quote_redemption(
                    member: $crate::Member,
                    request: $crate::RedemptionRequest,
                    ctx: $crate::Context,
                ) -> ::core::result::Result<$crate::RedemptionAnswer, $crate::PluginError> {
                    $crate::__install_panic_hook();
                    <$program as $crate::Program>::quote_redemption(&member, &request, &ctx)
                }
            }
            $crate::bindings::__export_program_world!(__LoyaltyExport with_types_in $crate::bindings);
        };
    };
}

/// Route panics to the host's `panic` import so a trap carries its message.
/// Called by the exported glue at the start of every hook; each call runs in a fresh
/// instance, so the hook is installed once per call.
#[doc(hidden)]
pub fn __install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                bindings::loyalty::program::host::panic(&info.to_string());
            }));
        });
    }
}

/// Log through the host (bounded: the host keeps a limited number of short lines per
/// call). Natively, lines go to standard error so tests can show them.
pub mod log {
    #[cfg(target_arch = "wasm32")]
    use crate::bindings::loyalty::program::host::{Level, log as host_log};

    #[cfg(target_arch = "wasm32")]
    fn write(level: Level, message: &str) {
        host_log(level, message);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn write(level: &str, message: &str) {
        eprintln!("[plugin {level}] {message}");
    }

    macro_rules! level_fn {
        ($name:ident, $wasm:ident, $native:literal, $doc:literal) => {
            #[doc = $doc]
            pub fn $name(message: &str) {
                #[cfg(target_arch = "wasm32")]
                write(Level::$wasm, message);
                #[cfg(not(target_arch = "wasm32"))]
                write($native, message);
            }
        };
    }

    level_fn!(debug, Debug, "debug", "Log a debug line.");
    level_fn!(info, Info, "info", "Log an informational line.");
    level_fn!(warn, Warn, "warn", "Log a warning.");
    level_fn!(error, Error, "error", "Log an error.");
}
