//! The engine's typed errors: what the caller did wrong, what the plugin said or did,
//! and what failed underneath. Each names the thing at fault.

use crate::domain::PluginError;
use crate::ledger::LedgerError;
use crate::pool::PoolError;
use crate::sandbox::{Hook, HookError};
use crate::storage::StorageError;

use super::programme::CallError;
use super::records::{MemberStatus, RedemptionStatus};

/// Why an engine operation failed. Nothing is written when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// An input field is invalid (JSON pointer and what is wrong).
    #[error("{pointer}: {message}")]
    Invalid {
        /// JSON pointer of the field.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// No such merchant.
    #[error("no merchant {0:?}")]
    UnknownMerchant(String),
    /// The merchant already exists.
    #[error("merchant {0:?} already exists")]
    MerchantExists(String),
    /// The merchant has no active programme.
    #[error("merchant {0:?} has no active programme")]
    NoProgramme(String),
    /// No such member.
    #[error("no member {0:?}")]
    UnknownMember(String),
    /// The member already exists, enrolled with other details.
    #[error("member {0:?} is already enrolled with other details")]
    MemberExists(String),
    /// The member cannot take part (opted out or erased).
    #[error("member {member:?} is {status:?}")]
    MemberInactive {
        /// The member.
        member: String,
        /// Their status.
        status: MemberStatus,
    },
    /// The same id was used before with a different request.
    #[error("{scope} {id:?} was already used with a different request")]
    Conflict {
        /// What kind of id ("event", "adjustment", ...).
        scope: &'static str,
        /// The id.
        id: String,
    },
    /// A code (card or referral) matches no member.
    #[error("no member has the {kind} code {code:?}")]
    UnknownCode {
        /// "card" or "referral".
        kind: &'static str,
        /// The code.
        code: String,
    },
    /// A refund does not fit its purchase.
    #[error("refund of {original:?}: {reason}")]
    Refund {
        /// The purchase's event id.
        original: String,
        /// What does not fit.
        reason: String,
    },
    /// No such redemption.
    #[error("no redemption {0:?}")]
    UnknownRedemption(String),
    /// The redemption is not in a state that allows this.
    #[error("redemption {id:?} is {status:?}")]
    RedemptionState {
        /// The redemption.
        id: String,
        /// Its status.
        status: RedemptionStatus,
    },
    /// The quote expired before it was committed.
    #[error("quote {0:?} expired; ask for a new one")]
    QuoteExpired(String),
    /// Not enough points.
    #[error("{needed} points needed, {available} available")]
    InsufficientPoints {
        /// Needed.
        needed: i64,
        /// Available.
        available: i64,
    },
    /// The member holds no usable perk of this id.
    #[error("member holds no usable perk {0:?}")]
    NoSuchPerk(String),
    /// The plugin answered with its own error (bad config, unexpected input).
    #[error("the programme refused in {hook}: {error}")]
    PluginRefused {
        /// The hook.
        hook: Hook,
        /// The plugin's error.
        error: PluginError,
    },
    /// The plugin failed (trap, fuel, deadline, memory, invalid output).
    #[error("{0}")]
    Plugin(HookError),
    /// The merchant's plugin calls are at capacity.
    #[error("{0}")]
    Busy(PoolError),
    /// Storage failed.
    #[error("{0}")]
    Storage(String),
}

impl From<StorageError> for EngineError {
    fn from(e: StorageError) -> EngineError {
        EngineError::Storage(e.to_string())
    }
}

impl From<CallError> for EngineError {
    fn from(e: CallError) -> EngineError {
        match e {
            CallError::Input(i) => EngineError::Invalid {
                pointer: i.pointer,
                message: i.message,
            },
            CallError::Hook(h) => EngineError::Plugin(h),
        }
    }
}

impl From<LedgerError> for EngineError {
    fn from(e: LedgerError) -> EngineError {
        match e {
            LedgerError::InsufficientPoints { needed, available } => {
                EngineError::InsufficientPoints { needed, available }
            }
            LedgerError::NotPositive(p) => EngineError::Invalid {
                pointer: "/points".into(),
                message: format!("must not be {p}"),
            },
            LedgerError::AdjustmentUnexplained => EngineError::Invalid {
                pointer: "/reason".into(),
                message: "an adjustment needs a reason and who made it".into(),
            },
        }
    }
}

impl From<PoolError> for EngineError {
    fn from(e: PoolError) -> EngineError {
        EngineError::Busy(e)
    }
}

/// Shorthand for an [`EngineError::Invalid`].
pub(crate) fn invalid(pointer: &str, message: impl Into<String>) -> EngineError {
    EngineError::Invalid {
        pointer: pointer.to_string(),
        message: message.into(),
    }
}
