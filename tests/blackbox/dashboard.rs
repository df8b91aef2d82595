//! The merchant dashboard in a real browser: headless Chromium (Debian's `chromium`)
//! opens `/dashboard` on the real server, signed in through the URL fragment, and
//! the test reads the charts out of the DOM Chromium dumps. Every number drawn is
//! compared with what the API itself answers for the same merchant, so the test
//! checks the page's reading and drawing, not the analytics (`design.rs` does those).
//!
//! Chromium is required, never skipped: CI installs it (`.ci/run`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loyalty_tests::http::{self, Merchant, Server};
use loyalty_tests::{eventually, wall_clock};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const DAY: i64 = 86_400;
/// Longest a Chromium run may take before the test gives up on it.
const BROWSER_LIMIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------
// The browser.

/// The DOM Chromium builds for `url` once the page's script has run, serialised.
fn dump_dom(url: &str) -> String {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the dashboard test needs Debian's headless Chromium \
         (apt-get install chromium; .ci/run installs it)"
    );
    // A fresh profile per run: nothing (no sessionStorage, no cache) carries over.
    let profile = tempfile::tempdir().expect("profile dir");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {CHROMIUM}: {e}"));
    // Both pipes are drained on threads so a large DOM never blocks the browser.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if started.elapsed() > BROWSER_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_LIMIT:?}: {}",
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = stdout.join().expect("chromium's output");
    let errors = stderr.join().unwrap_or_default();
    assert!(
        status.success() && dom.contains("</html>"),
        "chromium failed ({status}): {errors}\n{dom}"
    );
    without_code(&dom)
}

/// `dom` without the contents of its `<script>` and `<style>` blocks, so only
/// markup is read (the script's comments and strings may look like markup).
fn without_code(dom: &str) -> String {
    let mut out = String::with_capacity(dom.len());
    let mut rest = dom;
    loop {
        let next = ["<script", "<style"]
            .iter()
            .filter_map(|open| Some((rest.find(open)?, &open[1..])))
            .min();
        let Some((start, tag)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..start]);
        let close = format!("</{tag}>");
        rest = rest[start..]
            .find(&close)
            .map_or("", |end| &rest[start + end + close.len()..]);
    }
}

fn dashboard_url(server: &Server, fragment: &str) -> String {
    format!("http://{}/dashboard#{fragment}", server.addr)
}

// ---------------------------------------------------------------------------------
// Reading the dumped DOM. Chromium serialises attributes in double quotes with `&`,
// `"` and no-break spaces escaped, and text with `&`, `<`, `>` and no-break spaces
// escaped, which is all this reader undoes.

/// One element: its attributes and its text (inner tags removed).
#[derive(Debug, Clone)]
struct Element {
    attrs: BTreeMap<String, String>,
    text: String,
}

impl Element {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    fn has_class(&self, class: &str) -> bool {
        self.attr("class")
            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
    }
}

fn unescape(s: &str) -> String {
    s.replace("&nbsp;", "\u{a0}")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every `<tag ...>` element in `dom`, in document order.
fn elements(dom: &str, tag: &str) -> Vec<Element> {
    let open = format!("<{tag}");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        if !rest.starts_with([' ', '>', '/']) {
            continue;
        }
        let mut attrs = BTreeMap::new();
        let mut s = rest;
        loop {
            s = s.trim_start();
            if let Some(after) = s.strip_prefix("/>").or_else(|| s.strip_prefix('>')) {
                s = after;
                break;
            }
            let end = s
                .find(|c: char| c == '=' || c == '>' || c == '/' || c.is_whitespace())
                .unwrap_or(s.len());
            let name = s[..end].to_string();
            s = &s[end..];
            if let Some(after) = s.strip_prefix("=\"") {
                let q = after.find('"').expect("a closing quote");
                attrs.insert(name, unescape(&after[..q]));
                s = &after[q + 1..];
            } else {
                if name.is_empty() {
                    s = &s[1..];
                    continue;
                }
                attrs.insert(name, String::new());
            }
        }
        let inner = s.find(&close).map_or("", |end| &s[..end]);
        let mut text = String::new();
        let mut in_tag = false;
        for c in inner.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        found.push(Element {
            attrs,
            text: unescape(&text),
        });
        rest = s;
    }
    found
}

/// The element with `id` (any tag among those the page uses for ids).
fn by_id(dom: &str, id: &str) -> Element {
    [
        "main", "div", "span", "p", "text", "section", "strong", "h1",
    ]
    .iter()
    .flat_map(|tag| elements(dom, tag))
    .find(|e| e.attr("id") == Some(id))
    .unwrap_or_else(|| panic!("no element #{id} in the dashboard:\n{dom}"))
}

/// Every drawn number, by (chart, series, key): the bar's `data-value` and the text
/// of its label. Panics unless every bar has exactly one label and the other way round.
fn drawn(dom: &str) -> BTreeMap<(String, String, String), (String, String)> {
    let key = |e: &Element| {
        (
            e.attr("data-chart").unwrap_or_default().to_string(),
            e.attr("data-series").unwrap_or_default().to_string(),
            e.attr("data-key").unwrap_or_default().to_string(),
        )
    };
    let mut bars = BTreeMap::new();
    for rect in elements(dom, "rect")
        .into_iter()
        .filter(|e| e.has_class("bar"))
    {
        let value = rect
            .attr("data-value")
            .expect("a bar's data-value")
            .to_string();
        assert!(
            bars.insert(key(&rect), value).is_none(),
            "two bars for {:?}",
            key(&rect)
        );
    }
    let mut labels = BTreeMap::new();
    for text in elements(dom, "text")
        .into_iter()
        .filter(|e| e.has_class("value"))
    {
        assert!(
            labels.insert(key(&text), text.text.clone()).is_none(),
            "two labels for {:?}",
            key(&text)
        );
    }
    assert_eq!(
        bars.keys().collect::<Vec<_>>(),
        labels.keys().collect::<Vec<_>>(),
        "every bar has its number as a label"
    );
    bars.into_iter()
        .map(|(k, v)| {
            let label = labels[&k].clone();
            (k, (v, label))
        })
        .collect()
}

/// The integers drawn in `chart` for `series`, by key; each bar's label must read
/// the same number as its `data-value` (labels group thousands with commas).
fn series(
    all: &BTreeMap<(String, String, String), (String, String)>,
    chart: &str,
    series: &str,
) -> BTreeMap<String, i64> {
    all.iter()
        .filter(|((c, s, _), _)| c == chart && s == series)
        .map(|((_, _, key), (value, label))| {
            let v: i64 = value
                .parse()
                .unwrap_or_else(|_| panic!("{chart}/{series}/{key}: data-value {value:?}"));
            assert_eq!(
                label.replace(',', ""),
                v.to_string(),
                "{chart}/{series}/{key}: the label reads {label:?}"
            );
            (key.clone(), v)
        })
        .collect()
}

/// `field` of each item of `items`, by `key`, as the API answered.
fn expected(items: &Value, key: &str, field: &str) -> BTreeMap<String, i64> {
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {items}"))
        .iter()
        .map(|item| {
            let k = match &item[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k, item[field].as_i64().expect("an integer"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// The merchant's history.

/// The first second of the month `offset` months after the month of `ts` (UTC).
fn month_start(ts: i64, offset: i64) -> i64 {
    // Howard Hinnant's civil-date algorithms.
    let z = ts.div_euclid(DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let months = y * 12 + (m - 1) + offset;
    let (y, m) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) * DAY
}

fn flight(id: &str, at: i64, fare_minor: i64) -> Value {
    json!({
        "id": id, "occurred_at": at, "kind": "purchase",
        "amount": {"minor": fare_minor, "currency": "USD"},
        "payment": "card", "channel": "online",
        "items": [{"sku": "JFK-LAX", "category": "fare", "amount": fare_minor}]
    })
}

/// An airline merchant with four members: Ann flies to Gold two months ago and
/// flies again last month, Ben flies in both months, Cal once, Dee never; four
/// survey answers (10, 9, 7, 3: NPS +25); Ann pays part of a fare with miles today.
/// Then the coffee programme is simulated on that history; the finished job.
fn history(server: &Server) -> (Merchant, Value) {
    let air = http::merchant(server, "dash", "airline-miles");
    let now = wall_clock();
    let (a, b) = (
        month_start(now, -2) + 2 * DAY,
        month_start(now, -1) + 3 * DAY,
    );
    for (i, member) in ["ann", "ben", "cal", "dee"].into_iter().enumerate() {
        air.client
            .post(
                &air.path("/members"),
                &json!({"member": member, "enrolled_at": a - DAY + i as i64}),
            )
            .expect(201);
    }
    let post = |member: &str, event: Value| {
        air.client
            .post(&air.path(&format!("/members/{member}/events")), &event)
            .expect(200)
    };
    post("ann", flight("ann-1", a, 800_000));
    post("ben", flight("ben-1", a + 60, 40_000));
    post("cal", flight("cal-1", a + 120, 30_000));
    post("ann", flight("ann-2", b, 100_000));
    post("ben", flight("ben-2", b + 60, 20_000));
    for (i, (member, score)) in [("ann", 10), ("ben", 9), ("cal", 7), ("dee", 3)]
        .into_iter()
        .enumerate()
    {
        post(
            member,
            json!({"id": format!("survey-{member}"), "occurred_at": b + 3_600 + i as i64,
                   "kind": "survey", "score": score}),
        );
    }
    let quoted = air
        .client
        .post(
            &air.path("/members/ann/redemptions"),
            &json!({"reward": "cash-and-miles", "amount": {"minor": 25_000, "currency": "USD"},
                    "points": 2_000}),
        )
        .expect(201);
    let id = quoted["id"].as_str().expect("redemption id");
    air.client
        .post(&air.path(&format!("/redemptions/{id}/commit")), &json!({}))
        .expect(200);

    let coffee = std::fs::read(loyalty_tests::plugin("coffee-stars")).expect("plugin");
    let uploaded = air
        .client
        .send(
            "POST",
            &air.path("/plugins"),
            &[("content-type", "application/wasm")],
            Some(&coffee),
        )
        .expect(201);
    let started = air
        .client
        .post(
            &air.path("/simulations"),
            &json!({"candidate": uploaded["version"]}),
        )
        .expect(202);
    let job = started["id"].as_str().expect("job id").to_string();
    let done = eventually("the simulation to finish", || {
        let j = air
            .client
            .get(&air.path(&format!("/jobs/{job}")))
            .expect(200);
        (j["status"] != "queued" && j["status"] != "running").then_some(j)
    });
    assert_eq!(done["status"], "done", "{done:#}");
    (air, done)
}

// ---------------------------------------------------------------------------------
// The tests.

#[test]
fn the_dashboard_in_chromium_charts_exactly_what_the_api_answers() {
    let server = Server::start(&[]);
    let (air, job) = history(&server);
    let job_id = job["id"].as_str().unwrap();
    let analytics = air.client.get(&air.path("/analytics")).expect(200);

    // The history is not trivial, so the comparisons below mean something.
    let points = &analytics["points"];
    let issued_months = points["months"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["issued"].as_i64() > Some(0))
        .count();
    assert!(issued_months >= 2, "{points:#}");
    assert_eq!(points["redeemed"], 2_000, "{points:#}");
    assert_eq!(analytics["repeat_customers"]["buyers"], 3);
    assert_eq!(analytics["repeat_customers"]["repeat_buyers"], 2);
    assert_eq!(analytics["nps"]["score"], 25.0);
    let tiers = expected(&analytics["tiers"]["tiers"], "tier", "members");
    assert_eq!(tiers.get("gold"), Some(&1), "{tiers:?}");
    let report = &job["result"];
    assert_ne!(
        report["active"]["points_issued"], report["candidate"]["points_issued"],
        "the two programmes differ"
    );

    // The page as served: one self-contained HTML document, never cached, its
    // script allowed by hash only.
    let page = server.client(None).get("/dashboard");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let policy = page.header("content-security-policy").expect("a CSP");
    assert!(policy.contains("default-src 'none'") && policy.contains("script-src 'sha256-"));

    let dom = dump_dom(&dashboard_url(
        &server,
        &format!("merchant=dash&key={}&job={job_id}", air.key),
    ));
    assert_eq!(
        by_id(&dom, "app").attr("data-state"),
        Some("ready"),
        "{dom}"
    );
    assert!(
        by_id(&dom, "error").attr("hidden").is_some(),
        "no error shown"
    );
    let all = drawn(&dom);

    // Tier distribution: members per tier.
    assert_eq!(series(&all, "tiers", "members"), tiers);

    // Points issued and redeemed per month.
    for field in ["issued", "redeemed"] {
        assert_eq!(
            series(&all, "points", field),
            expected(&points["months"], "month", field),
            "{field} per month"
        );
    }

    // Repeat rate: the figure, and buyers per number of purchases.
    let repeat = &analytics["repeat_customers"];
    let rate = repeat["repeat_rate"].as_f64().unwrap();
    let figure = by_id(&dom, "repeat-rate");
    assert_eq!(
        figure.attr("data-value").map(str::parse::<f64>),
        Some(Ok(rate))
    );
    assert_eq!(figure.text, format!("{:.1}%", rate * 100.0));
    assert_eq!(
        series(&all, "cohorts", "members"),
        expected(&repeat["cohorts"], "purchases", "members")
    );

    // NPS: the score, and promoters, passives and detractors.
    let nps = &analytics["nps"];
    let score = by_id(&dom, "nps-score");
    assert_eq!(
        score.attr("data-value").map(str::parse::<f64>),
        Some(Ok(nps["score"].as_f64().unwrap()))
    );
    assert_eq!(score.text, "+25");
    for group in ["promoters", "passives", "detractors"] {
        assert_eq!(
            series(&all, "nps", group),
            BTreeMap::from([(group.to_string(), nps[group].as_i64().unwrap())])
        );
    }

    // The simulation named in the fragment, side by side.
    assert_eq!(
        by_id(&dom, "simulation-info").attr("data-job"),
        Some(job_id)
    );
    for side in ["active", "candidate"] {
        let figures = ["points_issued", "points_redeemed", "liability_points"]
            .map(|f| (f.to_string(), report[side][f].as_i64().unwrap()));
        assert_eq!(
            series(&all, "simulation", side),
            BTreeMap::from(figures),
            "{side}"
        );
    }
    let mut per_tier: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for side in ["active", "candidate"] {
        per_tier.insert(
            side.into(),
            expected(&report[side]["tiers"], "tier", "members"),
        );
    }
    let every_tier: Vec<String> = per_tier.values().flat_map(|t| t.keys().cloned()).collect();
    for (side, counts) in &per_tier {
        let with_zeros: BTreeMap<String, i64> = every_tier
            .iter()
            .map(|t| (t.clone(), counts.get(t).copied().unwrap_or(0)))
            .collect();
        assert_eq!(series(&all, "simulation-tiers", side), with_zeros, "{side}");
    }

    // Without `job=` the page shows the newest finished simulation: the same one.
    let dom = dump_dom(&dashboard_url(
        &server,
        &format!("merchant=dash&key={}", air.key),
    ));
    assert_eq!(
        by_id(&dom, "app").attr("data-state"),
        Some("ready"),
        "{dom}"
    );
    assert_eq!(
        by_id(&dom, "simulation-info").attr("data-job"),
        Some(job_id)
    );
}

#[test]
fn the_dashboard_shows_the_problem_detail_when_the_key_is_wrong() {
    let server = Server::start(&[]);
    let air = http::merchant(&server, "dash", "airline-miles");
    let wrong = "lk_not_a_key_of_this_merchant_0123456789";
    let refused = server.client(Some(wrong)).get(&air.path("/analytics"));
    assert_eq!(refused.status, 401, "{refused:?}");
    let detail = refused.json()["detail"]
        .as_str()
        .expect("a problem detail")
        .to_string();

    let dom = dump_dom(&dashboard_url(
        &server,
        &format!("merchant=dash&key={wrong}"),
    ));
    assert_eq!(
        by_id(&dom, "app").attr("data-state"),
        Some("error"),
        "{dom}"
    );
    let error = by_id(&dom, "error");
    assert!(error.attr("hidden").is_none(), "the error is shown");
    assert_eq!(error.attr("data-status"), Some("401"));
    assert_eq!(by_id(&dom, "error-detail").text, detail);
    // Back at the sign-in form, nothing charted.
    assert!(by_id(&dom, "sign-in").attr("hidden").is_none());
    assert!(by_id(&dom, "dashboard").attr("hidden").is_some());
    assert!(drawn(&dom).is_empty());
}
