//! The four example programmes played end to end over HTTP, as their partner apps
//! would: the real server, a temporary data directory, the real compiled plugins.
//! Every number asserted is derived from the programme's rules and the defaults in
//! its `config.schema.json` (the engine-level versions are in `host/tests/engine.rs`).
//!
//! Time: the engine runs plugins at an event's `occurred_at`, but reads, redemptions
//! and perk uses happen at the server's wall clock. Scenarios that need time to have
//! passed (a return window, an expiry) date their events in the past; those that need
//! a perk or a weekly count to be current date them in a quiet stretch of the current
//! week, month and year ([`recent`]).

use loyalty_tests::http::{self, Answer, Client, Merchant, Server};
use loyalty_tests::wall_clock;
use serde_json::{Value, json};

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

// ---------------------------------------------------------------------------------
// Calendar arithmetic (UTC), so expected expiry dates, week keys and grant keys are
// computed here rather than copied from the server's answers.

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month, day) of a day number.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A UTC timestamp.
fn at(y: i64, m: i64, d: i64, hour: i64, minute: i64) -> i64 {
    days_from_civil(y, m, d) * DAY + hour * HOUR + minute * MINUTE
}

/// The civil date of a timestamp.
fn date(ts: i64) -> (i64, i64, i64) {
    civil_from_days(ts.div_euclid(DAY))
}

/// The first second of the month `offset` months after the month of `ts`.
fn month_start(ts: i64, offset: i64) -> i64 {
    let (y, m, _) = date(ts);
    let months = y * 12 + (m - 1) + offset;
    at(months.div_euclid(12), months.rem_euclid(12) + 1, 1, 0, 0)
}

/// Midnight on the Monday of the ISO week of `ts` (1970-01-01 was a Thursday).
fn week_start(ts: i64) -> i64 {
    let days = ts.div_euclid(DAY);
    (days - (days + 3).rem_euclid(7)) * DAY
}

/// The ISO week key of `ts` as the SDK writes it ("2026-W48").
fn week_key(ts: i64) -> String {
    let year = date(week_start(ts) + 3 * DAY).0;
    let week1 = week_start(at(year, 1, 4, 0, 0));
    format!("{year}-W{:02}", (week_start(ts) - week1) / (7 * DAY) + 1)
}

/// The month key of `ts` ("2026-11").
fn month_key(ts: i64) -> String {
    let (y, m, _) = date(ts);
    format!("{y:04}-{m:02}")
}

/// A moment from which an hour of events stays in the current ISO week, month and
/// year: a day ago, or the start of the week, month or year if one began since.
/// Events dated there count in this week's challenge and this month's perks when
/// the wall clock reads them. (Within an hour of such a start the events land a few
/// minutes ahead of the clock, which the engine accepts.)
fn recent() -> i64 {
    let now = wall_clock();
    let year_start = at(date(now).0, 1, 1, 0, 0);
    (now - DAY)
        .max(week_start(now))
        .max(month_start(now, 0))
        .max(year_start)
}

// ---------------------------------------------------------------------------------
// Requests and checks shared by the scenarios.

/// Check `value` against `schemas/<schema_file>`, listing every violation.
fn conforms(schema_file: &str, value: &Value) {
    let path = loyalty_tests::root().join("schemas").join(schema_file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema)
        .unwrap_or_else(|e| panic!("{schema_file} does not compile: {e}"));
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the answer does not conform to {schema_file}: {errors:#?}\n{value:#}"
    );
}

/// The status and problem kind of a refusal, to compare as a pair.
fn refusal(answer: &Answer) -> (u16, String) {
    (answer.status, answer.problem())
}

/// The programme's own code for a refused redemption (422 `redemption-rejected`).
fn rejection_code(answer: &Answer) -> String {
    assert_eq!(refusal(answer), (422, "redemption-rejected".into()));
    answer.json()["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no code: {answer:?}"))
        .to_string()
}

fn enrol(m: &Merchant, body: Value) -> Value {
    let view = m.client.post(&m.path("/members"), &body).expect(201);
    conforms("MemberView.json", &view);
    view
}

/// Post `event` for `member` with `client` (the merchant's or a partner's key).
fn post_event(client: &Client, m: &Merchant, member: &str, event: Value) -> Value {
    let result = client
        .post(&m.path(&format!("/members/{member}/events")), &event)
        .expect(200);
    conforms("EventResult.json", &result);
    result
}

fn member(m: &Merchant, id: &str) -> Value {
    m.client.get(&m.path(&format!("/members/{id}"))).expect(200)
}

/// The points an event result credited, in the order credited.
fn credited(result: &Value) -> Vec<i64> {
    result["credited"]
        .as_array()
        .expect("credited")
        .iter()
        .map(|c| c["points"].as_i64().expect("points"))
        .collect()
}

/// (available, pending, debt).
fn balance(view: &Value) -> (i64, i64, i64) {
    let b = &view["balance"];
    (
        b["available"].as_i64().expect("available"),
        b["pending"].as_i64().expect("pending"),
        b["debt"].as_i64().expect("debt"),
    )
}

fn perk<'a>(view: &'a Value, id: &str) -> Option<&'a Value> {
    view["perks"]
        .as_array()
        .expect("perks")
        .iter()
        .find(|p| p["id"] == id)
}

fn perk_ids(view: &Value) -> Vec<String> {
    let mut ids: Vec<String> = view["perks"]
        .as_array()
        .expect("perks")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect();
    ids.sort();
    ids
}

/// Quote a redemption (201) and commit it (200); the committed redemption.
fn redeem(client: &Client, m: &Merchant, member: &str, request: Value) -> Value {
    let quoted = client
        .post(&m.path(&format!("/members/{member}/redemptions")), &request)
        .expect(201);
    conforms("Redemption.json", &quoted);
    assert_eq!(quoted["status"], "quoted");
    assert!(quoted["expires_at"].as_i64() > quoted["quoted_at"].as_i64());
    let id = quoted["id"].as_str().expect("redemption id");
    let committed = client
        .post(&m.path(&format!("/redemptions/{id}/commit")), &json!({}))
        .expect(200);
    conforms("Redemption.json", &committed);
    assert_eq!(committed["status"], "committed");
    assert_eq!(committed["quote"], quoted["quote"], "committed as quoted");
    committed
}

/// Every ledger line of `member`, newest first, read in small pages so the paging
/// is used; checks the ledger sums to the balance (available + pending - debt) the
/// member view shows.
fn ledger(m: &Merchant, id: &str) -> Vec<Value> {
    let view = member(m, id);
    let mut lines = Vec::new();
    let mut before: Option<u64> = None;
    loop {
        let query = match before {
            Some(b) => format!("?limit=4&before={b}"),
            None => "?limit=4".to_string(),
        };
        let page = m
            .client
            .get(&m.path(&format!("/members/{id}/ledger{query}")))
            .expect(200);
        conforms("LedgerPage.json", &page);
        lines.extend(page["lines"].as_array().expect("lines").iter().cloned());
        match page["next_before"].as_u64() {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let sum: i64 = lines.iter().map(|l| l["points"].as_i64().unwrap()).sum();
    let (available, pending, debt) = balance(&view);
    assert_eq!(
        sum,
        available + pending - debt,
        "{id}: the ledger does not sum to the balance: {lines:#?}"
    );
    lines
}

fn purchase(id: &str, occurred_at: i64, minor: i64, payment: &str, category: &str) -> Value {
    json!({
        "id": id, "occurred_at": occurred_at, "kind": "purchase",
        "amount": {"minor": minor, "currency": "USD"},
        "payment": payment,
        "items": [{"sku": format!("{category}-1"), "category": category, "amount": minor}]
    })
}

// ---------------------------------------------------------------------------------
// The scenarios.

/// Airline miles (defaults): 5 miles per USD of fare and surcharge at Member, 7 at
/// Gold; Gold at 40,000 qualifying miles in the calendar year; 500 welcome miles that
/// do not qualify; SkyHotels 10 miles per USD (not qualifying, 150 % only from
/// Platinum); Cash & Miles at 1 cent a mile, 1,500 miles at least.
#[test]
fn airline_member_flies_to_gold_and_pays_cash_and_miles() {
    let server = Server::start(&[]);
    let air = http::merchant(&server, "air", "airline-miles");
    let t = recent();
    let year = date(t).0;

    let amy = enrol(&air, json!({"member": "amy", "enrolled_at": t}));
    assert_eq!(amy["tier"]["id"], "member");
    assert_eq!(balance(&amy), (500, 0, 0), "the welcome bonus");

    // Fare and carrier surcharge earn; taxes do not: 5 x 2,000.00 = 10,000 miles.
    let f1 = post_event(
        &air.client,
        &air,
        "amy",
        json!({
            "id": "f-1", "occurred_at": t + MINUTE, "kind": "purchase",
            "amount": {"minor": 215_000, "currency": "USD"},
            "channel": "online", "payment": "card",
            "items": [
                {"sku": "JFK-LAX", "category": "fare", "amount": 180_000},
                {"sku": "YQ", "category": "surcharge", "amount": 20_000},
                {"sku": "US-TAX", "category": "tax", "amount": 15_000}
            ],
            "attributes": {"route": "JFK-LAX", "cabin": "business"}
        }),
    );
    assert_eq!(credited(&f1), [10_000]);
    assert_eq!(f1["credited"][0]["qualifying"], true);
    // Flight miles expire at the end of the 36th month after the month flown.
    assert_eq!(
        f1["credited"][0]["expires_at"].as_i64(),
        Some(month_start(t + MINUTE, 37) - 1)
    );
    assert_eq!(f1["tier"]["tier"], "member");
    assert_eq!(f1["tier"]["progress"]["current"], 10_000);
    assert_eq!(f1["tier"]["progress"]["target"], 40_000);

    // 30,000 more qualifying miles: 40,000 in the year is Gold, held to the end of
    // next year, with Gold's perks.
    let f2 = post_event(
        &air.client,
        &air,
        "amy",
        purchase("f-2", t + 2 * MINUTE, 600_000, "card", "fare"),
    );
    assert_eq!(credited(&f2), [30_000]);
    assert_eq!(f2["tier"]["tier"], "gold");
    assert_eq!(f2["tier"]["changed_from"], "member");
    assert_eq!(f2["tier"]["progress"]["next_tier"], "platinum");
    assert_eq!(f2["tier"]["progress"]["current"], 40_000);
    assert_eq!(f2["tier"]["progress"]["target"], 75_000);
    let mut new_perks: Vec<&str> = f2["new_perks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    new_perks.sort();
    assert_eq!(new_perks, ["checked-bag", "priority-boarding"]);

    // At Gold a fare earns 7 miles per USD.
    let f3 = post_event(
        &air.client,
        &air,
        "amy",
        purchase("f-3", t + 3 * MINUTE, 100_000, "card", "fare"),
    );
    assert_eq!(credited(&f3), [7_000]);
    assert_eq!(balance(&f3), (47_500, 0, 0));

    let amy = member(&air, "amy");
    conforms("MemberView.json", &amy);
    assert_eq!(balance(&amy), (500 + 10_000 + 30_000 + 7_000, 0, 0));
    assert_eq!(
        (&amy["tier"]["id"], &amy["tier"]["name"]),
        (&json!("gold"), &json!("Gold"))
    );
    assert_eq!(
        amy["tier"]["valid_until"].as_i64(),
        Some(at(year + 2, 1, 1, 0, 0) - 1),
        "status earned this year holds through the end of next year"
    );
    assert_eq!(
        amy["tier"]["progress"]["current"], 47_000,
        "the welcome bonus does not qualify"
    );
    assert_eq!(perk_ids(&amy), ["checked-bag", "priority-boarding"]);
    let bag = perk(&amy, "checked-bag").unwrap();
    assert_eq!(bag["name"], "1 free checked bag per flight");
    assert_eq!(bag["grant"], "gold");
    assert_eq!(bag["remaining"], Value::Null, "unlimited while Gold");
    let history = air.client.get(&air.path("/members/amy/tiers")).expect(200);
    conforms("TierHistory.json", &history);
    let last = history["changes"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (&last["from"], &last["to"], &last["event"]),
        (&json!("member"), &json!("gold"), &json!("f-2"))
    );

    // The hotel partner: registered, given its own key, and shown its offer.
    air.client
        .post(
            &air.path("/partners"),
            &json!({"id": "skyhotels", "name": "SkyHotels"}),
        )
        .expect(201);
    let issued = air
        .client
        .post(
            &air.path("/keys"),
            &json!({"kind": "partner", "partner": "skyhotels", "label": "SkyHotels front desk"}),
        )
        .expect(201);
    conforms("IssuedKey.json", &issued);
    let hotel = server.client(Some(issued["token"].as_str().expect("token")));
    let offers = hotel
        .get(&air.path("/members/amy/offers?partner=skyhotels"))
        .expect(200);
    conforms("OfferList.json", &offers);
    assert_eq!(offers["offers"][0]["id"], "skyhotels-stay");
    assert_eq!(
        offers["offers"][0]["title"],
        "10 miles per USD at SkyHotels"
    );
    assert_eq!(
        offers["offers"][0]["kind"],
        json!({"type": "earn_multiplier", "value": 100})
    );

    // A check-in earns nothing; the stay earns once, when the hotel posts the bill:
    // 10 miles per USD below Platinum, not qualifying. The key fills in its partner.
    let check_in = post_event(
        &hotel,
        &air,
        "amy",
        json!({"id": "sky-checkin-1", "occurred_at": t + 4 * MINUTE, "kind": "check_in"}),
    );
    assert_eq!(credited(&check_in), Vec::<i64>::new());
    let stay = post_event(
        &hotel,
        &air,
        "amy",
        json!({
            "id": "sky-stay-1", "occurred_at": t + 5 * MINUTE, "kind": "partner_purchase",
            "amount": {"minor": 40_000, "currency": "USD"}, "channel": "partner"
        }),
    );
    assert_eq!(credited(&stay), [4_000]);
    assert_eq!(stay["credited"][0]["qualifying"], false);
    assert_eq!(stay["tier"]["progress"]["current"], 47_000);

    // Everything outside the hotel's scope is refused.
    let hotel_refusals = [
        hotel.get(&air.path("/members/amy")),
        hotel.get(&air.path("/members/amy/ledger")),
        hotel.get(&air.path("/members/amy/offers?partner=roadrunner-cars")),
        hotel.post(
            &air.path("/members/amy/events"),
            &json!({
                "id": "car-1", "occurred_at": t + 6 * MINUTE, "kind": "partner_purchase",
                "partner": "roadrunner-cars", "amount": {"minor": 10_000, "currency": "USD"}
            }),
        ),
        hotel.post(
            &air.path("/members/amy/perks/priority-boarding/consume"),
            &json!({"id": "board-1"}),
        ),
    ];
    for answer in &hotel_refusals {
        assert_eq!(refusal(answer), (403, "forbidden".into()), "{answer:?}");
    }
    assert_eq!(
        air.client.get(&air.path("/events/car-1")).status,
        404,
        "the refused event was not recorded"
    );
    assert_eq!(balance(&member(&air, "amy")), (51_500, 0, 0));

    // Cash & Miles: 10,000 miles pay 100.00 of a 250.00 fare, 150.00 in cash.
    let paid = redeem(
        &air.client,
        &air,
        "amy",
        json!({
            "reward": "cash-and-miles",
            "amount": {"minor": 25_000, "currency": "USD"},
            "points": 10_000
        }),
    );
    assert_eq!(paid["quote"]["reward"], "cash-and-miles");
    assert_eq!(paid["quote"]["points"], 10_000);
    assert_eq!(
        paid["quote"]["cash"],
        json!({"minor": 15_000, "currency": "USD"})
    );
    let id = paid["id"].as_str().unwrap();
    let again = air
        .client
        .post(&air.path(&format!("/redemptions/{id}/commit")), &json!({}))
        .expect(200);
    assert_eq!(
        again["committed_at"], paid["committed_at"],
        "committed once"
    );
    let stored = air
        .client
        .get(&air.path(&format!("/redemptions/{id}")))
        .expect(200);
    assert_eq!(stored["status"], "committed");
    assert_eq!(balance(&member(&air, "amy")), (41_500, 0, 0));

    // The programme's refusals carry its own codes.
    let business = air.client.post(
        &air.path("/members/amy/redemptions"),
        &json!({"reward": "business-international"}),
    );
    assert_eq!(
        rejection_code(&business),
        "insufficient-points",
        "57,500 > 41,500"
    );
    let too_few = air.client.post(
        &air.path("/members/amy/redemptions"),
        &json!({"amount": {"minor": 25_000, "currency": "USD"}, "points": 1_000}),
    );
    assert_eq!(rejection_code(&too_few), "below-minimum");

    let lines = ledger(&air, "amy");
    assert_eq!(lines[0]["kind"], "redeem");
    assert_eq!(
        (&lines[0]["points"], &lines[0]["reference"]),
        (&json!(-10_000), &json!(id))
    );
    assert_eq!(
        lines.len(),
        6,
        "welcome, three flights, the stay, the redemption"
    );
}

/// Coffee Stars (defaults): 1 star per USD by card, 2 with stored value, times 100 %
/// at Green and 120 % at Gold, rounded down once; Gold at 500 qualifying stars in the
/// rolling 12 months; Green stars (and the 25 welcome stars) expire at the end of the
/// sixth month after the month earned, Gold stars never; rewards cost stars only.
#[test]
fn coffee_member_earns_gold_redeems_a_drink_and_green_stars_expire() {
    let server = Server::start(&[]);
    let cafe = http::merchant(&server, "cafe", "coffee-stars");
    // Long ago, so the Green stars have expired by the wall clock.
    let enrolled = at(2024, 3, 15, 9, 30);
    let green_march = at(2024, 10, 1, 0, 0) - 1; // end of September 2024
    let green_april = at(2024, 11, 1, 0, 0) - 1; // end of October 2024

    let cleo = enrol(&cafe, json!({"member": "cleo", "enrolled_at": enrolled}));
    assert_eq!(cleo["tier"]["id"], "green");
    assert_eq!(
        balance(&cleo),
        (25, 0, 0),
        "welcome stars, at enrolment time"
    );

    // 7.45 by card at Green: 7 stars.
    let c1 = post_event(
        &cafe.client,
        &cafe,
        "cleo",
        purchase("c-1", enrolled + HOUR, 745, "card", "beverage"),
    );
    assert_eq!(credited(&c1), [7]);
    assert_eq!(c1["credited"][0]["expires_at"].as_i64(), Some(green_march));

    // 500.00 with stored value at Green: 1,000 stars, and with the 7 before, Gold.
    let c2 = post_event(
        &cafe.client,
        &cafe,
        "cleo",
        purchase(
            "c-2",
            at(2024, 4, 10, 12, 0),
            50_000,
            "stored_value",
            "catering",
        ),
    );
    assert_eq!(credited(&c2), [1_000]);
    assert_eq!(c2["credited"][0]["expires_at"].as_i64(), Some(green_april));
    assert_eq!(
        (&c2["tier"]["tier"], &c2["tier"]["changed_from"]),
        (&json!("gold"), &json!("green"))
    );
    assert_eq!(c2["tier"]["progress"]["next_tier"], "reserve");
    assert_eq!(c2["tier"]["progress"]["current"], 1_007);
    assert_eq!(c2["tier"]["progress"]["target"], 2_500);
    assert_eq!(c2["new_perks"], json!(["free-refill"]));

    // At Gold: 9.99 by card is 11 stars (11.988), 100.00 with stored value 240; Gold
    // stars never expire.
    let c3 = post_event(
        &cafe.client,
        &cafe,
        "cleo",
        purchase("c-3", at(2024, 5, 2, 8, 0), 999, "card", "beverage"),
    );
    assert_eq!(credited(&c3), [11]);
    assert_eq!(c3["credited"][0]["expires_at"], Value::Null);
    let c4 = post_event(
        &cafe.client,
        &cafe,
        "cleo",
        purchase("c-4", at(2024, 5, 3, 8, 0), 10_000, "stored_value", "beans"),
    );
    assert_eq!(credited(&c4), [240]);
    assert_eq!(balance(&c4), (25 + 7 + 1_000 + 11 + 240, 0, 0));

    // Read today: the Green stars expired (a ledger line per lot, dated at its
    // expiry: the 25 and 7 stars of March share their month-end lot), the Gold stars
    // are left.
    let cleo = member(&cafe, "cleo");
    conforms("MemberView.json", &cleo);
    assert_eq!(balance(&cleo), (251, 0, 0));
    let lines = ledger(&cafe, "cleo");
    let mut expired: Vec<(i64, i64)> = lines
        .iter()
        .filter(|l| l["kind"] == "expire")
        .map(|l| (l["at"].as_i64().unwrap(), l["points"].as_i64().unwrap()))
        .collect();
    expired.sort();
    assert_eq!(expired, [(green_march, -32), (green_april, -1_000)]);

    // A handcrafted drink for 200 stars, no cash; then 51 stars do not buy a coffee.
    let drink = redeem(
        &cafe.client,
        &cafe,
        "cleo",
        json!({"reward": "handcrafted-drink"}),
    );
    assert_eq!(drink["quote"]["points"], 200);
    assert_eq!(drink["quote"]["cash"], Value::Null);
    assert_eq!(balance(&member(&cafe, "cleo")), (51, 0, 0));
    let coffee = cafe.client.post(
        &cafe.path("/members/cleo/redemptions"),
        &json!({"reward": "brewed-coffee"}),
    );
    assert_eq!(rejection_code(&coffee), "insufficient-points");
    let unknown = cafe.client.post(
        &cafe.path("/members/cleo/redemptions"),
        &json!({"reward": "free-car"}),
    );
    assert_eq!(rejection_code(&unknown), "unknown-reward");

    // Today's visit still earns at Gold (12 stars for 10.00), but the rolling 12
    // months now hold only those 12 qualifying stars: back to Green.
    let today = post_event(
        &cafe.client,
        &cafe,
        "cleo",
        purchase("c-5", recent(), 1_000, "card", "beverage"),
    );
    assert_eq!(credited(&today), [12]);
    assert_eq!(
        (&today["tier"]["tier"], &today["tier"]["changed_from"]),
        (&json!("green"), &json!("gold"))
    );
    assert_eq!(today["tier"]["progress"]["current"], 12);
    let cleo = member(&cafe, "cleo");
    assert_eq!(balance(&cleo), (63, 0, 0));
    assert_eq!(cleo["tier"]["id"], "green");
    ledger(&cafe, "cleo");
    // Bug, left failing to show it: free refills are "unlimited while the member
    // holds Gold or Reserve", and at Green the plugin's perks hook no longer returns
    // them, but the host only ever adds entitlements (it drops one only past its
    // `valid_until`), so the member keeps them and can still consume them.
    assert_eq!(
        perk(&cleo, "free-refill"),
        None,
        "a member back at Green still holds Gold's free refills"
    );
}

/// Ride-hailing (defaults): wallet 3 / 4.5 / 6 points per unit and card 1 / 1.5 / 2
/// at Member / Gold / Platinum, cash 0; five purchases with a ride in one ISO week
/// earn 200 bonus points (not qualifying) once; Platinum at 3,000 qualifying points in
/// 12 months, with 10 free rides a month.
#[test]
fn ride_hailing_rider_completes_the_weekly_challenge_and_uses_free_rides() {
    let server = Server::start(&[]);
    let rides = http::merchant(&server, "rides", "ride-hailing");
    let t = recent();
    let week = week_key(t);

    let rin = enrol(&rides, json!({"member": "rin", "enrolled_at": t}));
    assert_eq!(
        (rin["tier"]["id"].as_str(), balance(&rin)),
        (Some("member"), (0, 0, 0))
    );

    // 12.50 by wallet: 37 points (37.5); three rides by card, 10 each.
    let r1 = post_event(
        &rides.client,
        &rides,
        "rin",
        purchase("r-1", t + MINUTE, 1_250, "wallet", "ride"),
    );
    assert_eq!(credited(&r1), [37]);
    for i in 2..=4 {
        let r = post_event(
            &rides.client,
            &rides,
            "rin",
            purchase(&format!("r-{i}"), t + i * MINUTE, 1_000, "card", "ride"),
        );
        assert_eq!(credited(&r), [10]);
    }
    let progress = member(&rides, "rin");
    assert_eq!(
        progress["state"],
        json!({"week": week, "rides": 4, "completed": false})
    );

    // The fifth ride, paid in cash, earns nothing itself but completes the challenge.
    let r5 = post_event(
        &rides.client,
        &rides,
        "rin",
        purchase("r-5", t + 5 * MINUTE, 1_000, "cash", "ride"),
    );
    assert_eq!(credited(&r5), [200]);
    assert_eq!(r5["credited"][0]["qualifying"], false);
    let badge = format!("weekly-challenge-{}", week.to_ascii_lowercase());
    assert_eq!(r5["new_badges"], json!([badge]));
    assert_eq!(balance(&r5), (37 + 30 + 200, 0, 0));

    // A 1,000.00 food order by wallet: 3,000 qualifying points, with the 67 before
    // over Platinum's 3,000; no ride, so the challenge is untouched.
    let food = post_event(
        &rides.client,
        &rides,
        "rin",
        purchase("food-1", t + 6 * MINUTE, 100_000, "wallet", "food"),
    );
    assert_eq!(credited(&food), [3_000]);
    assert_eq!(
        (&food["tier"]["tier"], &food["tier"]["changed_from"]),
        (&json!("platinum"), &json!("member"))
    );
    assert_eq!(food["tier"]["progress"], Value::Null, "the top tier");

    // A sixth ride earns at Platinum (6 x 12.50 = 75) and no second bonus.
    let r6 = post_event(
        &rides.client,
        &rides,
        "rin",
        purchase("r-6", t + 7 * MINUTE, 1_250, "wallet", "ride"),
    );
    assert_eq!(credited(&r6), [75]);

    let rin = member(&rides, "rin");
    conforms("MemberView.json", &rin);
    assert_eq!(balance(&rin), (3_342, 0, 0));
    assert_eq!(
        rin["state"],
        json!({"week": week, "rides": 6, "completed": true})
    );
    assert_eq!(rin["badges"], json!([badge]));
    assert_eq!(
        perk_ids(&rin),
        ["free-delivery", "free-ride", "priority-support"]
    );
    let free_ride = perk(&rin, "free-ride").unwrap();
    assert_eq!(free_ride["grant"], month_key(t));
    assert_eq!(
        (&free_ride["remaining"], &free_ride["used"]),
        (&json!(10), &json!(0))
    );
    assert_eq!(
        free_ride["valid_until"].as_i64(),
        Some(month_start(t, 1) - 1)
    );

    // Using a free ride: idempotent by the consumption's id.
    let consume = |id: &str| {
        rides.client.post(
            &rides.path("/members/rin/perks/free-ride/consume"),
            &json!({"id": id}),
        )
    };
    let first = consume("trip-1").expect(200);
    conforms("Consumed.json", &first);
    assert_eq!(
        (&first["perk"], &first["remaining"]),
        (&json!("free-ride"), &json!(9))
    );
    assert_eq!(
        consume("trip-1").expect(200),
        first,
        "a retry is the same use"
    );
    assert_eq!(consume("trip-2").expect(200)["remaining"], 8);
    let reused = rides.client.post(
        &rides.path("/members/rin/perks/free-delivery/consume"),
        &json!({"id": "trip-1"}),
    );
    assert_eq!(
        refusal(&reused),
        (409, "id-reused".into()),
        "one id, one use"
    );
    let rin = member(&rides, "rin");
    let free_ride = perk(&rin, "free-ride").unwrap();
    assert_eq!(
        (&free_ride["remaining"], &free_ride["used"]),
        (&json!(8), &json!(2))
    );
    let none = rides.client.post(
        &rides.path("/members/rin/perks/free-spaceflight/consume"),
        &json!({"id": "trip-3"}),
    );
    assert_eq!(refusal(&none), (404, "no-such-perk".into()));

    // A 3.00 ride voucher for 300 points.
    let voucher = redeem(
        &rides.client,
        &rides,
        "rin",
        json!({"reward": "ride-voucher-3"}),
    );
    assert_eq!(voucher["quote"]["points"], 300);
    assert_eq!(balance(&member(&rides, "rin")), (3_042, 0, 0));
    ledger(&rides, "rin");
}

/// Retail club (defaults): 200 points on joining; 500 to a member who joins with a
/// referral and 500 to the referrer; 1 % cashback as points at Bronze (below 500.00
/// spent in the year), pending for the 30-day return window; 50 points for the NPS
/// survey once a month; double points at Coffee Corner; the 10.00 voucher for 1,000
/// points; no redemption while points are owed.
#[test]
fn retail_referral_survey_and_a_refund_after_redemption_leave_a_debt_that_is_paid_off() {
    let server = Server::start(&[]);
    let shop = http::merchant(&server, "shop", "retail-club");
    let now = wall_clock();
    // Two months back, on the first of the month, so the purchase below is past its
    // return window today and both survey answers fall in one month.
    let t0 = month_start(now, -2) + 9 * HOUR;

    let ann = enrol(&shop, json!({"member": "ann", "enrolled_at": t0}));
    assert_eq!(
        (ann["tier"]["id"].as_str(), balance(&ann)),
        (Some("bronze"), (200, 0, 0))
    );
    let code = ann["referral_code"]
        .as_str()
        .expect("a referral code")
        .to_string();

    // Bob joins with Ann's code: both rewarded.
    let bob = enrol(
        &shop,
        json!({"member": "bob", "enrolled_at": t0 + HOUR, "referral_code": code.to_lowercase()}),
    );
    assert_eq!(bob["referred_by"], "ann");
    assert_eq!(balance(&bob), (200 + 500, 0, 0));
    assert_eq!(balance(&member(&shop, "ann")), (200 + 500, 0, 0));
    let unknown = shop.client.post(
        &shop.path("/members"),
        &json!({"member": "cy", "enrolled_at": t0, "referral_code": "ZZZZZZZZ"}),
    );
    assert_eq!(refusal(&unknown), (404, "unknown-code".into()));

    // The survey: 50 points once a month; every answer is recorded.
    let s1 = post_event(
        &shop.client,
        &shop,
        "ann",
        json!({"id": "s-1", "occurred_at": t0 + DAY, "kind": "survey", "score": 9}),
    );
    assert_eq!(credited(&s1), [50]);
    let s2 = post_event(
        &shop.client,
        &shop,
        "ann",
        json!({"id": "s-2", "occurred_at": t0 + DAY + HOUR, "kind": "survey", "score": 6}),
    );
    assert_eq!(credited(&s2), Vec::<i64>::new(), "once a month");
    let bad = shop.client.post(
        &shop.path("/members/ann/events"),
        &json!({"id": "s-3", "occurred_at": t0 + DAY, "kind": "survey", "score": 11}),
    );
    assert_eq!(refusal(&bad), (422, "validation".into()));
    // The pointer names the field in the request body, which is the event.
    assert_eq!(bad.json()["errors"][0]["pointer"], "/score");
    let ann = member(&shop, "ann");
    assert_eq!(ann["annotations"]["nps"], "6");
    assert_eq!(ann["annotations"]["nps-category"], "detractor");
    assert_eq!(balance(&ann), (750, 0, 0));

    // 250.00 at Bronze: 250 points, pending for 30 days (cleared by today).
    let p1_at = t0 + 2 * DAY;
    let p1 = post_event(
        &shop.client,
        &shop,
        "ann",
        purchase("p-1", p1_at, 25_000, "card", "apparel"),
    );
    assert_eq!(credited(&p1), [250]);
    assert_eq!(
        p1["credited"][0]["pending_until"].as_i64(),
        Some(p1_at + 30 * DAY)
    );
    assert_eq!(balance(&p1), (750, 250, 0));
    assert_eq!(p1["tier"]["tier"], "bronze");
    assert_eq!(balance(&member(&shop, "ann")), (1_000, 0, 0));

    // Today: the 10.00 voucher spends all 1,000 points; then the coat comes back.
    let voucher = redeem(&shop.client, &shop, "ann", json!({"reward": "voucher-10"}));
    assert_eq!(voucher["quote"]["points"], 1_000);
    let refund = post_event(
        &shop.client,
        &shop,
        "ann",
        json!({
            "id": "r-1", "occurred_at": wall_clock(), "kind": "refund",
            "original_event": "p-1", "full": true,
            "amount": {"minor": 25_000, "currency": "USD"}
        }),
    );
    assert_eq!(refund["reversed"], 250);
    assert_eq!(balance(&refund), (0, 0, 250));
    let ann = member(&shop, "ann");
    assert_eq!(balance(&ann), (0, 0, 250), "the spent points are owed");
    let owed = shop.client.post(
        &shop.path("/members/ann/redemptions"),
        &json!({"reward": "voucher-10"}),
    );
    assert_eq!(rejection_code(&owed), "outstanding-debt");

    // Only points that are available pay a debt: a store purchase's points wait out
    // the return window first, so the debt stays.
    let p2 = post_event(
        &shop.client,
        &shop,
        "ann",
        purchase("p-2", wall_clock(), 30_000, "card", "apparel"),
    );
    assert_eq!(credited(&p2), [300]);
    assert_eq!(balance(&member(&shop, "ann")), (0, 300, 250));

    // A Coffee Corner purchase earns double cashback at once (150.00 x 2 %, 300
    // points): 250 pay the debt, 50 are left.
    let coffee = post_event(
        &shop.client,
        &shop,
        "ann",
        json!({
            "id": "cc-1", "occurred_at": wall_clock(), "kind": "partner_purchase",
            "partner": "coffee-corner", "amount": {"minor": 15_000, "currency": "USD"}
        }),
    );
    assert_eq!(credited(&coffee), [300]);
    let ann = member(&shop, "ann");
    conforms("MemberView.json", &ann);
    assert_eq!(balance(&ann), (50, 300, 0));
    assert_eq!(ann["tier"]["id"], "bronze", "300.00 spent after the refund");
    let lines = ledger(&shop, "ann");
    let kinds: Vec<&str> = lines
        .iter()
        .rev()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "earn", "earn", "earn", "earn", "redeem", "refund", "earn", "earn"
        ],
        "signup, referral, survey, p-1, voucher, refund, p-2, Coffee Corner"
    );
    ledger(&shop, "bob");
}
