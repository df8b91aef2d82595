//! Shared helpers for the black-box tests: where the real `loyalty` binary and the
//! compiled plugins are, how to run the binary and read its JSON, and ([`http`]) the
//! real server on a loopback port with a client to drive it.

pub mod http;
pub mod proc;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root")
        .to_path_buf()
}

/// The `loyalty` binary of the same build profile as this test (`LOYALTY_BIN`
/// overrides). `cargo test --workspace` builds it.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("LOYALTY_BIN") {
        return PathBuf::from(p);
    }
    // target/<profile>/deps/blackbox-<hash> -> target/<profile>/loyalty
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps");
    let bin = profile_dir.join("loyalty");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace` so the host binary is built",
        bin.display()
    );
    bin
}

/// Where the compiled plugins are (`LOYALTY_PLUGIN_DIR` overrides `target/plugins`).
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("LOYALTY_PLUGIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/plugins"))
}

/// A compiled plugin.
pub fn plugin(name: &str) -> PathBuf {
    let path = plugin_dir().join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: build the plugins first with `plugins/build`",
        path.display()
    );
    path
}

/// What one run of the binary gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output, parsed as JSON when it is JSON.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON (panics with the output when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The `--json-errors` error object from standard error.
    pub fn error(&self) -> serde_json::Value {
        let v: serde_json::Value = serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not a JSON error ({e}): {self:?}"));
        v["error"].clone()
    }
}

/// The wall clock in Unix seconds (the server under test runs on this machine, so
/// its clock is the same, near enough).
pub fn wall_clock() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// When an event a benchmark posts now happened: `start` plus the whole seconds
/// since the run's first call, as a live till's events happen when they are posted.
pub fn posted_at(start: i64) -> i64 {
    static FIRST: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    start + FIRST.get_or_init(Instant::now).elapsed().as_secs() as i64
}

/// Wait (up to a minute; never a timing assertion) until `f` gives something; `what`
/// names it if it never does.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number in the environment variable `name`, or `default` (benchmark sizes).
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The purchase the benchmarks post, as the API takes it: a flight bought online, a
/// fare with carrier surcharge and tax.
pub fn flight(id: &str, at: i64) -> serde_json::Value {
    serde_json::json!({
        "id": id, "occurred_at": at, "kind": "purchase",
        "amount": { "minor": 61_240, "currency": "USD" },
        "items": [
            { "sku": "JFK-LAX", "category": "fare", "amount": 50_000 },
            { "sku": "YQ", "category": "surcharge", "amount": 5_000 },
            { "sku": "US-TAX", "category": "tax", "amount": 6_240 }
        ],
        "channel": "online", "payment": "card",
        "attributes": { "route": "JFK-LAX", "cabin": "economy" }
    })
}

/// `loyalty run <plugin> <hook> --input - --compact --json-errors [extra...]` with
/// `input` on standard input.
pub fn run_hook(plugin_name: &str, hook: &str, input: &serde_json::Value, extra: &[&str]) -> Run {
    let mut child = Command::new(binary())
        .arg("run")
        .arg(plugin(plugin_name))
        .arg(hook)
        .args(["--input", "-", "--compact", "--json-errors"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the loyalty binary");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes());
    // A run refused for its arguments (an unknown hook) exits without reading its
    // input, so the pipe may already be closed: that is its answer, not a failure.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write input: {e}");
    }
    let out = child
        .wait_with_output()
        .expect("wait for the loyalty binary");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
