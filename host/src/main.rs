//! `loyalty`: the host's command line. It parses arguments and hands over to the
//! library; nothing else lives here.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use loyalty_host::app::{App, Options};
use loyalty_host::client::Client;
use loyalty_host::engine::MerchantSettings;
use loyalty_host::import;
use loyalty_host::runner::{self, RunInput};
use loyalty_host::sandbox::{Hook, Limits, Sandbox};

/// The loyalty engine: programmes as sandboxed WebAssembly plugins.
#[derive(Parser)]
#[command(name = "loyalty", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Run one hook of a plugin file locally: JSON in, JSON out, with fuel and time.
    Run(RunArgs),
    /// Import operations (JSON lines on standard input) into a merchant; prints one
    /// acknowledgement per line once it is durable.
    Import(ImportArgs),
    /// Check a merchant's stored state: ledgers sum to balances, events are whole.
    Check(CheckArgs),
    /// Simulate a candidate programme version on a running server's recorded history
    /// (or a history file), following the job with a progress bar; prints the
    /// side-by-side report as JSON.
    Simulate(SimulateArgs),
    /// Import members from a JSON-lines or CSV file into a running server, following
    /// the job with a progress bar; prints the import report as JSON.
    ImportMembers(ImportMembersArgs),
}

/// Where the server is and whose key to use.
#[derive(clap::Args)]
struct ServerArgs {
    /// The server's address.
    #[arg(long, env = "LOYALTY_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// A merchant key.
    #[arg(long, env = "LOYALTY_KEY", hide_env_values = true)]
    key: String,
    /// The merchant.
    #[arg(long)]
    merchant: String,
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The candidate version (uploaded, not necessarily active).
    #[arg(long)]
    candidate: String,
    /// Replay history from this time (seconds since the epoch).
    #[arg(long)]
    from: Option<i64>,
    /// Up to this time (exclusive).
    #[arg(long)]
    to: Option<i64>,
    /// A JSON file with the candidate's config.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Replay this history file (one recorded operation per line) instead.
    #[arg(long)]
    history: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ImportMembersArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The file: `.csv` is CSV, anything else JSON lines.
    file: PathBuf,
}

/// The limits of every plugin call, shared by `serve` and `run`.
#[derive(clap::Args)]
struct SandboxArgs {
    /// Fuel (instructions) per plugin call.
    #[arg(long, env = "LOYALTY_FUEL", default_value_t = Limits::default().fuel)]
    fuel: u64,
    /// Linear-memory cap per plugin call in MiB.
    #[arg(long, env = "LOYALTY_MEMORY_MIB", default_value_t = Limits::default().memory_bytes >> 20)]
    memory_mib: usize,
    /// Wall-clock deadline per plugin call in milliseconds.
    #[arg(long, env = "LOYALTY_DEADLINE_MS", default_value_t = Limits::default().deadline.as_millis() as u64)]
    deadline_ms: u64,
}

impl SandboxArgs {
    /// `base` with these limits.
    fn limits(&self, base: Limits) -> Limits {
        Limits {
            fuel: self.fuel,
            memory_bytes: self.memory_mib << 20,
            deadline: Duration::from_millis(self.deadline_ms),
            ..base
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Where to listen (port 0 picks a free port; the address is printed).
    #[arg(long, env = "LOYALTY_LISTEN", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// The data directory (sled), created if missing.
    #[arg(long, env = "LOYALTY_DATA", default_value = "loyalty-data")]
    data: PathBuf,
    /// The operator key (creates merchants). With --demo and no key, one is made up
    /// and printed.
    #[arg(long, env = "LOYALTY_OPERATOR_KEY", hide_env_values = true)]
    operator_key: Option<String>,
    /// Set up the demo merchant with the example programmes and print its keys and a
    /// curl to try.
    #[arg(long)]
    demo: bool,
    /// Where the demo finds the example programmes (built by plugins/build).
    #[arg(long, env = "LOYALTY_DEMO_PLUGINS", default_value = "target/plugins")]
    demo_plugins: PathBuf,
    /// Log format: "text" or "json".
    #[arg(long, env = "LOYALTY_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// Largest JSON body in bytes.
    #[arg(long, env = "LOYALTY_MAX_BODY", default_value_t = loyalty_host::api::Limits::default().json_body)]
    max_body: usize,
    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "LOYALTY_REQUEST_TIMEOUT", default_value_t = 30)]
    request_timeout: u64,
    /// Seconds requests in flight get to finish at shutdown.
    #[arg(long, env = "LOYALTY_GRACE", default_value_t = 20)]
    grace: u64,
    /// Seconds between expiry sweeps.
    #[arg(long, env = "LOYALTY_SWEEP_EVERY", default_value_t = 300)]
    sweep_every: u64,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Engine operations (plugin calls) running at once; 0: the default for this
    /// machine's cores.
    #[arg(long, env = "LOYALTY_PLUGIN_THREADS", default_value_t = 0)]
    plugin_threads: usize,
    /// Of which for one merchant at most; 0: the default for this machine's cores.
    #[arg(long, env = "LOYALTY_MERCHANT_THREADS", default_value_t = 0)]
    merchant_threads: usize,
    /// MiB of sled's page cache (the process's memory grows with it).
    #[arg(long, env = "LOYALTY_CACHE_MIB", default_value_t = Options::default().cache_bytes >> 20)]
    cache_mib: u64,
    /// Milliseconds before a failed webhook delivery's second attempt (doubling after).
    #[arg(long, env = "LOYALTY_WEBHOOK_RETRY_MS", default_value_t = 30_000)]
    webhook_retry_ms: u64,
    /// Attempts before a webhook delivery is given up.
    #[arg(long, env = "LOYALTY_WEBHOOK_ATTEMPTS", default_value_t = 12)]
    webhook_attempts: u32,
    /// Milliseconds one webhook attempt may take.
    #[arg(long, env = "LOYALTY_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    webhook_timeout_ms: u64,
    /// Days before points expire that `points.expiring` is sent.
    #[arg(long, env = "LOYALTY_WEBHOOK_EXPIRING_DAYS", default_value_t = 30)]
    webhook_expiring_days: u64,
    /// Days without a purchase after which `member.lapsing` is sent.
    #[arg(long, env = "LOYALTY_WEBHOOK_LAPSE_DAYS", default_value_t = 90)]
    webhook_lapse_days: u64,
    /// Let webhook endpoints be on loopback, private or link-local addresses (by
    /// default they must be public: merchants name them, the host posts from inside
    /// its network).
    #[arg(long, env = "LOYALTY_WEBHOOK_ALLOW_PRIVATE")]
    webhook_allow_private: bool,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The data directory.
    #[arg(long, env = "LOYALTY_DATA", default_value = "loyalty-data")]
    data: PathBuf,
    /// The merchant.
    #[arg(long)]
    merchant: String,
    /// A plugin to upload and activate when the merchant has no programme yet.
    #[arg(long)]
    plugin: Option<PathBuf>,
    /// The programme currency, when the merchant is created.
    #[arg(long, default_value = "USD")]
    currency: String,
    /// Operations in flight at once.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(clap::Args)]
struct CheckArgs {
    /// The data directory.
    #[arg(long, env = "LOYALTY_DATA", default_value = "loyalty-data")]
    data: PathBuf,
    /// The merchant.
    #[arg(long)]
    merchant: String,
    /// A file of event ids (one per line) that must be recorded: reconciliation
    /// against a partner's list of transactions. Missing ones are problems.
    #[arg(long)]
    expect_events: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The plugin: a core module built with the SDK, or a component.
    plugin: PathBuf,
    /// The hook: describe, on-enroll, on-event, evaluate-tier, perks, offers,
    /// quote-redemption.
    hook: String,
    /// A JSON file with the input ({"member", "event", "config", "now", "partner",
    /// "request", "merchant", "currency"}); `-` reads standard input.
    #[arg(long, short)]
    input: Option<PathBuf>,
    /// A JSON file with the member snapshot (overrides the input's).
    #[arg(long)]
    member: Option<PathBuf>,
    /// A JSON file with the event (overrides the input's).
    #[arg(long)]
    event: Option<PathBuf>,
    /// A JSON file with the programme config (overrides the input's).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A JSON file with the redemption request (overrides the input's).
    #[arg(long)]
    request: Option<PathBuf>,
    /// The partner id, for `offers`.
    #[arg(long)]
    partner: Option<String>,
    /// The call's time, seconds since the Unix epoch.
    #[arg(long)]
    now: Option<i64>,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Print compact JSON instead of pretty JSON.
    #[arg(long)]
    compact: bool,
    /// Print errors as one JSON object on standard error, with a stable `kind`.
    #[arg(long)]
    json_errors: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The commands that open a data directory log what the host does to it (moving an
    // old layout, a storage error) to standard error, as `serve` does; `run` keeps its
    // standard error for the plugin's own output.
    if matches!(
        cli.command,
        Command::Import(_) | Command::Check(_) | Command::Simulate(_) | Command::ImportMembers(_)
    ) {
        tracing_subscriber::fmt()
            .with_env_filter(log_filter())
            .with_writer(std::io::stderr)
            .with_ansi(colour())
            .init();
    }
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Run(args) => run(args),
        Command::Import(args) => import(args),
        Command::Check(args) => check(args),
        Command::Simulate(args) => simulate(args),
        Command::ImportMembers(args) => import_members(args),
    }
}

fn fail(why: String) -> ExitCode {
    eprintln!("error: {why}");
    ExitCode::FAILURE
}

/// Follow `job` to its end and print its result; failure unless it is done.
fn finish(client: &Client, merchant: &str, job: &serde_json::Value) -> ExitCode {
    let id = job["id"].as_str().unwrap_or_default();
    eprintln!("job {id}");
    let ended = match client.follow(merchant, id, &mut std::io::stderr()) {
        Ok(j) => j,
        Err(e) => return fail(e),
    };
    if ended["status"] != "done" {
        return fail(format!(
            "the job ended {}: {}",
            ended["status"].as_str().unwrap_or_default(),
            ended["error"].as_str().unwrap_or_default()
        ));
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&ended["result"]).unwrap_or_default()
    );
    ExitCode::SUCCESS
}

fn simulate(args: SimulateArgs) -> ExitCode {
    let s = &args.server;
    let client = match Client::new(&s.server, &s.key) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let mut req = serde_json::json!({"candidate": args.candidate});
    if let Some(f) = args.from {
        req["from"] = f.into();
    }
    if let Some(t) = args.to {
        req["to"] = t.into();
    }
    if let Some(path) = &args.config {
        match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| e.to_string())
            }) {
            Ok(c) => req["config"] = c,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        }
    }
    if let Some(path) = &args.history {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return fail(format!("{}: {e}", path.display())),
        };
        let uploaded = client.call(
            "POST",
            &format!("/v1/merchants/{}/histories", s.merchant),
            Some("application/x-ndjson"),
            &bytes,
        );
        match uploaded {
            Ok(f) => req["history"] = f["id"].clone(),
            Err(e) => return fail(e),
        }
    }
    let body = req.to_string();
    match client.call(
        "POST",
        &format!("/v1/merchants/{}/simulations", s.merchant),
        Some("application/json"),
        body.as_bytes(),
    ) {
        Ok(job) => finish(&client, &s.merchant, &job),
        Err(e) => fail(e),
    }
}

fn import_members(args: ImportMembersArgs) -> ExitCode {
    let s = &args.server;
    let client = match Client::new(&s.server, &s.key) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    let bytes = match std::fs::read(&args.file) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", args.file.display())),
    };
    let csv = args
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let content_type = if csv {
        "text/csv"
    } else {
        "application/x-ndjson"
    };
    match client.call(
        "POST",
        &format!("/v1/merchants/{}/imports", s.merchant),
        Some(content_type),
        &bytes,
    ) {
        Ok(job) => finish(&client, &s.merchant, &job),
        Err(e) => fail(e),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn open(data: &std::path::Path) -> Result<App, ExitCode> {
    App::open(data, &Options::default()).map_err(|e| {
        eprintln!("error: cannot open {}: {e}", data.display());
        ExitCode::FAILURE
    })
}

/// Colour in text logs only on a terminal, not in files and pipes.
fn colour() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// `RUST_LOG`, or everything at `info` and above.
fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

fn serve(args: ServeArgs) -> ExitCode {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_ansi(colour());
    match args.log_format.as_str() {
        "json" => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
        "text" => builder.init(),
        other => {
            return usage_error(
                false,
                format!("--log-format must be text or json, not {other:?}"),
            );
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return usage_error(false, format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(serve_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve_async(args: ServeArgs) -> Result<(), String> {
    use loyalty_host::api::{Api, Limits as ApiLimits};
    use loyalty_host::server;

    let mut options = Options::default();
    options.limits = args.sandbox.limits(options.limits);
    if args.plugin_threads > 0 {
        options.threads = args.plugin_threads;
    }
    if args.merchant_threads > 0 {
        options.per_merchant = args.merchant_threads;
    }
    options.cache_bytes = args.cache_mib.max(1) << 20;
    options.webhooks.retry_base = Duration::from_millis(args.webhook_retry_ms.max(1));
    options.webhooks.max_attempts = args.webhook_attempts.max(1);
    options.webhooks.timeout = Duration::from_millis(args.webhook_timeout_ms.max(1));
    options.webhooks.expiring_within = Duration::from_secs(args.webhook_expiring_days * 86_400);
    options.webhooks.lapse_after = Duration::from_secs(args.webhook_lapse_days.max(1) * 86_400);
    options.webhooks.allow_private = args.webhook_allow_private;
    let app = App::open(&args.data, &options)
        .map_err(|e| format!("cannot open {}: {e}", args.data.display()))?;
    let operator = match (&args.operator_key, args.demo) {
        (Some(k), _) => Some(k.clone()),
        (None, true) => Some(format!(
            "op_{}",
            loyalty_host::engine::random_code(32)
                .map_err(|e| e.to_string())?
                .to_ascii_lowercase()
        )),
        (None, false) => None,
    };
    let limits = ApiLimits {
        json_body: args.max_body,
        request_timeout: Duration::from_secs(args.request_timeout),
        ..ApiLimits::default()
    };
    let api = Api::new(&app, operator.as_deref(), limits)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let demo = if args.demo {
        Some(server::demo(&api, &app, &args.demo_plugins).await?)
    } else {
        None
    };
    let sweeper = app
        .engine
        .spawn_sweeper(Duration::from_secs(args.sweep_every.max(1)));
    let deliveries = app.webhooks.spawn();
    // One line a script can wait for and read the address from.
    println!("listening on http://{addr}");
    if let Some(keys) = &demo {
        let shown = if args.operator_key.is_some() {
            "(the one you configured)"
        } else {
            operator.as_deref().unwrap_or_default()
        };
        println!("{}", server::demo_banner(addr, shown, keys));
    }
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    tracing::info!(%addr, data = %args.data.display(), "serving");
    server::serve(
        listener,
        api,
        Duration::from_secs(args.grace),
        server::signal(),
    )
    .await
    .map_err(|e| e.to_string())?;
    sweeper.abort();
    deliveries.abort();
    // Everything acknowledged was flushed already; this makes the rest durable too.
    app.storage.flush().map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}

fn import(args: ImportArgs) -> ExitCode {
    let app = match open(&args.data) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(path) = &args.plugin {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return usage_error(false, format!("cannot read {}: {e}", path.display())),
        };
        let settings = MerchantSettings {
            id: args.merchant.clone(),
            name: args.merchant.clone(),
            currency: args.currency.clone(),
            created_at: now(),
            config: None,
            point_value: None,
            budget: None,
        };
        if let Err(e) = app.ensure_merchant(settings, &bytes, now()) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let engine = app.engine.clone();
    let result = runtime.block_on(import::run(
        engine,
        &args.merchant,
        std::io::BufReader::new(std::io::stdin()),
        std::io::stdout(),
        args.concurrency,
    ));
    match result {
        Ok((applied, failed)) => {
            eprintln!("{applied} operations applied, {failed} failed");
            if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(args: CheckArgs) -> ExitCode {
    let app = match open(&args.data) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let expected = match &args.expect_events {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            Err(e) => return usage_error(false, format!("cannot read {}: {e}", path.display())),
        },
        None => Vec::new(),
    };
    let report = app.engine.check(&args.merchant).and_then(|mut report| {
        for id in expected {
            if app.engine.event_record(&args.merchant, &id)?.is_none() {
                report.problems.push(format!("event {id} is not recorded"));
            }
        }
        Ok(report)
    });
    match report {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Report a usage or input error (exit code 2), as JSON with `--json-errors`.
fn usage_error(json: bool, message: impl std::fmt::Display) -> ExitCode {
    if json {
        let error =
            serde_json::json!({ "error": { "kind": "usage", "message": message.to_string() } });
        eprintln!("{error}");
    } else {
        eprintln!("error: {message}");
    }
    ExitCode::from(2)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf, what: &str) -> Result<T, String> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read {what} from standard input: {e}"))?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?
    };
    serde_json::from_str(&text).map_err(|e| format!("{what} {}: {e}", path.display()))
}

fn run(args: RunArgs) -> ExitCode {
    let Some(hook) = Hook::from_name(&args.hook) else {
        let names: Vec<_> = Hook::ALL.iter().map(|h| h.name()).collect();
        return usage_error(
            args.json_errors,
            format!(
                "unknown hook {:?}; hooks are: {}",
                args.hook,
                names.join(", ")
            ),
        );
    };
    let mut input: RunInput = match &args.input {
        Some(p) => match read_json(p, "input") {
            Ok(i) => i,
            Err(e) => return usage_error(args.json_errors, e),
        },
        None => RunInput::default(),
    };
    let overrides = (|| -> Result<(), String> {
        if let Some(p) = &args.member {
            input.member = Some(read_json(p, "member")?);
        }
        if let Some(p) = &args.event {
            input.event = Some(read_json(p, "event")?);
        }
        if let Some(p) = &args.config {
            input.config = Some(read_json(p, "config")?);
        }
        if let Some(p) = &args.request {
            input.request = Some(read_json(p, "request")?);
        }
        Ok(())
    })();
    if let Err(e) = overrides {
        return usage_error(args.json_errors, e);
    }
    if args.partner.is_some() {
        input.partner = args.partner.clone();
    }
    if args.now.is_some() {
        input.now = args.now;
    }

    let bytes = match std::fs::read(&args.plugin) {
        Ok(b) => b,
        Err(e) => {
            return usage_error(
                args.json_errors,
                format!("cannot read {}: {e}", args.plugin.display()),
            );
        }
    };
    let limits = args.sandbox.limits(Limits {
        // The runner needs a handful of instances, not a server's pool.
        instances: 4,
        ..Limits::default()
    });
    let sandbox = match Sandbox::new(limits) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let label = args
        .plugin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| args.plugin.display().to_string());
    match runner::run(&sandbox, &label, &bytes, hook, &input) {
        Ok(out) => {
            let text = if args.compact {
                serde_json::to_string(&out)
            } else {
                serde_json::to_string_pretty(&out)
            };
            println!("{}", text.unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) if args.json_errors => {
            eprintln!("{}", e.to_json());
            ExitCode::from(e.exit_code() as u8)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
