//! What a store holds: the memory limiter, the plugin's log lines and the panic
//! message it reported. A new `CallState` is made for every instance, and re-armed
//! for each further call a session makes on it.

use wasmtime::ResourceLimiter;
use wasmtime::component::HasData;

use super::bindings::loyalty::program::{host, types};
use super::call::LogLine;

/// Store data for one instance's hook calls.
pub(crate) struct CallState {
    memory_cap: usize,
    log_lines: usize,
    log_line_bytes: usize,
    /// Set when the guest asked for more memory than the cap allows.
    pub(crate) memory_denied: bool,
    /// Log lines, capped.
    pub(crate) logs: Vec<LogLine>,
    /// Log lines dropped over the cap.
    pub(crate) logs_dropped: usize,
    /// The panic message the guest reported before trapping.
    pub(crate) panic: Option<String>,
}

impl CallState {
    pub(crate) fn new(memory_cap: usize, log_lines: usize, log_line_bytes: usize) -> CallState {
        CallState {
            memory_cap,
            log_lines,
            log_line_bytes,
            memory_denied: false,
            logs: Vec::new(),
            logs_dropped: 0,
            panic: None,
        }
    }

    /// Forget the last call's logs and failure reports before the next call.
    pub(crate) fn rearm(&mut self) {
        self.memory_denied = false;
        self.logs.clear();
        self.logs_dropped = 0;
        self.panic = None;
    }

    fn truncate(&self, mut message: String) -> String {
        if message.len() > self.log_line_bytes {
            let mut end = self.log_line_bytes;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        message
    }
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pool refused the growth (it is sized to the same cap): a memory limit.
        self.memory_denied = true;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Rust guests use one small function table; 10,000 entries is generous.
        Ok(desired <= 10_000)
    }
}

impl HasData for CallState {
    type Data<'a> = &'a mut CallState;
}

impl types::Host for CallState {}

impl host::Host for CallState {
    fn log(&mut self, level: host::Level, message: String) {
        if self.logs.len() >= self.log_lines {
            self.logs_dropped += 1;
            return;
        }
        let message = self.truncate(message);
        let level = match level {
            host::Level::Debug => "debug",
            host::Level::Info => "info",
            host::Level::Warn => "warn",
            host::Level::Error => "error",
        };
        self.logs.push(LogLine { level, message });
    }

    fn panic(&mut self, message: String) {
        // Keep the first report: a panic while panicking is noise.
        if self.panic.is_none() {
            self.panic = Some(self.truncate(message));
        }
    }
}
