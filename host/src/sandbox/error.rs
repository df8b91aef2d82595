//! Typed failures of loading and calling plugins, classified by type, never by text.

use std::fmt;
use std::time::Duration;

/// A hook of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `describe`
    Describe,
    /// `on-enroll`
    OnEnroll,
    /// `on-event`
    OnEvent,
    /// `evaluate-tier`
    EvaluateTier,
    /// `perks`
    Perks,
    /// `offers`
    Offers,
    /// `quote-redemption`
    QuoteRedemption,
}

impl Hook {
    /// Every hook, in the contract's order.
    pub const ALL: [Hook; 7] = [
        Hook::Describe,
        Hook::OnEnroll,
        Hook::OnEvent,
        Hook::EvaluateTier,
        Hook::Perks,
        Hook::Offers,
        Hook::QuoteRedemption,
    ];

    /// The export's name in the contract.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Describe => "describe",
            Hook::OnEnroll => "on-enroll",
            Hook::OnEvent => "on-event",
            Hook::EvaluateTier => "evaluate-tier",
            Hook::Perks => "perks",
            Hook::Offers => "offers",
            Hook::QuoteRedemption => "quote-redemption",
        }
    }

    /// The hook with this export name.
    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a hook call failed. None of these changes any state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// The call used up its instruction budget.
    #[error("out of fuel (budget {budget} instructions)")]
    OutOfFuel {
        /// The budget.
        budget: u64,
    },
    /// The call ran past its wall-clock deadline.
    #[error("deadline exceeded ({}ms)", limit.as_millis())]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The guest asked for more linear memory than allowed.
    #[error("memory limit exceeded ({limit} bytes)")]
    MemoryLimit {
        /// The cap.
        limit: usize,
    },
    /// The guest's call stack outgrew the stack cap.
    #[error("stack overflow (cap {limit} bytes)")]
    StackOverflow {
        /// The cap.
        limit: usize,
    },
    /// The guest trapped; `message` is its panic message when it reported one.
    #[error("trap: {trap}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Trap {
        /// What the engine reported (e.g. "wasm `unreachable` instruction executed").
        trap: String,
        /// The guest's panic message.
        message: Option<String>,
    },
    /// The output was larger than allowed.
    #[error("output too large ({size} bytes, limit {limit})")]
    OutputTooLarge {
        /// Its size; for an answer the host stopped copying out of the guest (see
        /// `Store::set_hostcall_fuel`), what it had copied when it stopped.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The output broke the contract's rules.
    #[error("invalid output: {reason}")]
    InvalidOutput {
        /// What was wrong, naming the field.
        reason: String,
    },
    /// The instance could not be created (e.g. the pool is exhausted).
    #[error("instantiation failed: {reason}")]
    Instantiation {
        /// Why.
        reason: String,
    },
}

impl Failure {
    /// A stable machine-readable name for the failure's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::OutOfFuel { .. } => "out_of_fuel",
            Failure::Deadline { .. } => "deadline",
            Failure::MemoryLimit { .. } => "memory_limit",
            Failure::StackOverflow { .. } => "stack_overflow",
            Failure::Trap { .. } => "trap",
            Failure::OutputTooLarge { .. } => "output_too_large",
            Failure::InvalidOutput { .. } => "invalid_output",
            Failure::Instantiation { .. } => "instantiation",
        }
    }
}

/// A failed hook call: which plugin, which hook, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{plugin}: {hook} failed: {failure}")]
pub struct HookError {
    /// The plugin (its label: a file name, or merchant and version).
    pub plugin: String,
    /// The hook.
    pub hook: Hook,
    /// The cause.
    pub failure: Failure,
}

/// Why wasm bytes cannot become a plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The bytes are not WebAssembly.
    #[error("not a WebAssembly module or component")]
    NotWasm,
    /// Over the size limit.
    #[error("plugin is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A core module that cannot be turned into a component.
    #[error(
        "core module cannot be made a component (build it with the loyalty SDK / wit-bindgen): {reason}"
    )]
    Componentize {
        /// Why.
        reason: String,
    },
    /// The plugin targets a contract version this host does not run.
    #[error("contract version {found} is not supported (supported: {})", supported.join(", "))]
    UnsupportedContract {
        /// What the plugin exports.
        found: String,
        /// What this host runs.
        supported: Vec<String>,
    },
    /// Hooks missing or with the wrong type.
    #[error("{}", describe_exports(missing, mistyped))]
    BadExports {
        /// Exports that are absent.
        missing: Vec<String>,
        /// Exports whose type differs from the contract.
        mistyped: Vec<String>,
    },
    /// The plugin imports something the host does not provide.
    #[error(
        "unknown import `{name}`: plugins may import only loyalty:program/host@1.0.0 (log, panic)"
    )]
    UnknownImport {
        /// The import.
        name: String,
    },
    /// wasmtime could not compile or link it.
    #[error("does not compile: {reason}")]
    Compile {
        /// Why.
        reason: String,
    },
    /// `describe` failed.
    #[error("describe failed: {0}")]
    Describe(Failure),
    /// `describe` returned something unusable.
    #[error("describe returned an invalid programme: {reason}")]
    InvalidDescribe {
        /// What is wrong.
        reason: String,
    },
    /// The engine itself could not be set up.
    #[error("sandbox engine: {reason}")]
    Engine {
        /// Why.
        reason: String,
    },
}

impl LoadError {
    /// A stable machine-readable name for the error's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            LoadError::NotWasm => "not_wasm",
            LoadError::TooLarge { .. } => "too_large",
            LoadError::Componentize { .. } => "componentize",
            LoadError::UnsupportedContract { .. } => "unsupported_contract",
            LoadError::BadExports { .. } => "bad_exports",
            LoadError::UnknownImport { .. } => "unknown_import",
            LoadError::Compile { .. } => "compile",
            LoadError::Describe(_) => "describe_failed",
            LoadError::InvalidDescribe { .. } => "invalid_describe",
            LoadError::Engine { .. } => "engine",
        }
    }
}

fn describe_exports(missing: &[String], mistyped: &[String]) -> String {
    let mut parts = Vec::new();
    if !missing.is_empty() {
        parts.push(format!("missing export(s): {}", missing.join(", ")));
    }
    if !mistyped.is_empty() {
        parts.push(format!(
            "export(s) with the wrong type: {}",
            mistyped.join(", ")
        ));
    }
    parts.join("; ")
}
