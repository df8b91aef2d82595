//! Points for engagement: the NPS survey (rewarded once a month, always recorded) and
//! product reviews (a few a month). The monthly limits live in the plugin state.

use loyalty_sdk::money::group_thousands as thousands;
use loyalty_sdk::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::earn::INVALID_EVENT;

/// What the programme remembers about a member between events (the plugin state,
/// as JSON). The field names are those of the first version of this plugin, so state
/// it wrote still reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Memory {
    /// The month ("2026-09") a survey answer was last rewarded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey_rewarded: Option<String>,
    /// The month `reviews` counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_month: Option<String>,
    /// Reviews rewarded in `review_month`.
    pub reviews: u32,
}

/// The NPS category of a 0-10 likelihood-to-recommend score.
pub fn nps_category(score: u8) -> &'static str {
    match score {
        9..=10 => "promoter",
        7..=8 => "passive",
        _ => "detractor",
    }
}

/// A survey answer: the score and its category are recorded as annotations every
/// time (the merchant's NPS counts every answer), the points once per calendar month.
pub fn survey(
    member: &Member,
    score: u8,
    now: Timestamp,
    config: &Config,
) -> Result<Outcome, PluginError> {
    if score > 10 {
        return Err(PluginError::new(
            INVALID_EVENT,
            format!("a survey score is 0 to 10, not {score}"),
        ));
    }
    let mut memory: Memory = member.state_as()?;
    let outcome = Outcome::new()
        .annotate("nps", score.to_string())
        .annotate("nps-category", nps_category(score));
    let month = time::month_key(now);
    if memory.survey_rewarded.as_deref() == Some(month.as_str()) {
        return Ok(outcome);
    }
    memory.survey_rewarded = Some(month);
    Ok(outcome
        .credit(Credit::new(
            config.survey_points.into(),
            format!(
                "{} points: thank you for answering our survey",
                thousands(config.survey_points.into())
            ),
        ))
        .with_state(&memory))
}

/// A review: points for up to `reviews_per_month` reviews per calendar month.
pub fn review(member: &Member, now: Timestamp, config: &Config) -> Result<Outcome, PluginError> {
    let mut memory: Memory = member.state_as()?;
    let month = time::month_key(now);
    if memory.review_month.as_deref() != Some(month.as_str()) {
        memory.review_month = Some(month);
        memory.reviews = 0;
    }
    if memory.reviews >= config.reviews_per_month {
        return Ok(Outcome::new());
    }
    memory.reviews += 1;
    Ok(Outcome::new()
        .credit(Credit::new(
            config.review_points.into(),
            format!(
                "{} points: thank you for your review ({} of {} this month)",
                thousands(config.review_points.into()),
                memory.reviews,
                config.reviews_per_month
            ),
        ))
        .with_state(&memory))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RetailClub;
    use crate::tests::{ctx, day, member_at};
    use loyalty_sdk::testing::event;

    /// Sends `kind` at `at` and keeps the new state on the member, as the host does.
    fn send(m: &mut Member, kind: EventKind, at: Timestamp) -> Result<Outcome, PluginError> {
        let out = RetailClub::on_event(m, &event("e", kind, at), &ctx(at))?;
        if let Some(state) = &out.state {
            m.state.clone_from(state);
        }
        Ok(out)
    }

    fn annotation<'a>(out: &'a Outcome, key: &str) -> Option<&'a str> {
        out.annotations
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.value.as_str())
    }

    #[test]
    fn a_survey_score_of_9_earns_50_points_and_records_a_promoter() {
        let mut m = member_at("bronze");
        let out = send(&mut m, EventKind::Survey(9), day(2026, 9, 21)).unwrap();
        assert_eq!(out.points(), 50);
        assert_eq!(annotation(&out, "nps"), Some("9"));
        assert_eq!(annotation(&out, "nps-category"), Some("promoter"));
    }

    #[test]
    fn a_second_survey_in_the_month_is_recorded_but_not_rewarded() {
        let mut m = member_at("bronze");
        send(&mut m, EventKind::Survey(9), day(2026, 9, 1)).unwrap();
        let again = send(&mut m, EventKind::Survey(3), day(2026, 10, 1) - 1).unwrap();
        assert_eq!(again.points(), 0);
        assert_eq!(again.state, None, "the state is unchanged");
        assert_eq!(annotation(&again, "nps"), Some("3"));
        assert_eq!(annotation(&again, "nps-category"), Some("detractor"));
    }

    #[test]
    fn the_survey_is_rewarded_again_in_the_next_calendar_month() {
        let mut m = member_at("bronze");
        send(&mut m, EventKind::Survey(9), day(2026, 9, 30)).unwrap();
        let next = send(&mut m, EventKind::Survey(7), day(2026, 10, 1)).unwrap();
        assert_eq!(next.points(), 50);
        assert_eq!(annotation(&next, "nps-category"), Some("passive"));
    }

    #[test]
    fn a_survey_score_above_10_is_an_invalid_event() {
        let mut m = member_at("bronze");
        let err = send(&mut m, EventKind::Survey(11), day(2026, 9, 1)).unwrap_err();
        assert_eq!(err.code, INVALID_EVENT);
        let zero = send(&mut m, EventKind::Survey(0), day(2026, 9, 1)).unwrap();
        assert_eq!(annotation(&zero, "nps-category"), Some("detractor"));
    }

    #[test]
    fn nps_categories_follow_the_standard_bands() {
        let bands: Vec<_> = (0..=10).map(nps_category).collect();
        assert_eq!(bands[..7], ["detractor"; 7]);
        assert_eq!(bands[7..9], ["passive"; 2]);
        assert_eq!(bands[9..], ["promoter"; 2]);
    }

    #[test]
    fn five_reviews_a_month_earn_25_points_each_and_the_sixth_nothing() {
        let mut m = member_at("bronze");
        let points: Vec<i64> = (0..6)
            .map(|i| {
                send(&mut m, EventKind::Review, day(2026, 9, 1) + i)
                    .unwrap()
                    .points()
            })
            .collect();
        assert_eq!(points, [25, 25, 25, 25, 25, 0]);
        let next_month = send(&mut m, EventKind::Review, day(2026, 10, 1)).unwrap();
        assert_eq!(next_month.points(), 25);
    }

    #[test]
    fn reviews_and_the_survey_share_the_state_without_losing_each_other() {
        let mut m = member_at("bronze");
        send(&mut m, EventKind::Review, day(2026, 9, 2)).unwrap();
        send(&mut m, EventKind::Survey(10), day(2026, 9, 3)).unwrap();
        let memory: Memory = m.state_as().unwrap();
        assert_eq!(
            memory,
            Memory {
                survey_rewarded: Some("2026-09".into()),
                review_month: Some("2026-09".into()),
                reviews: 1,
            }
        );
    }

    #[test]
    fn unreadable_state_is_an_error_not_a_fresh_start() {
        let mut m = member_at("bronze");
        m.state = b"[1,2".to_vec();
        let err = send(&mut m, EventKind::Review, day(2026, 9, 2)).unwrap_err();
        assert_eq!(err.code, "invalid-state");
    }
}
