//! Cron schedules (`spec.triggers.schedule`): five-field cron read in an IANA time zone.
//!
//! Ticks are computed on the wall clock of the time zone, so `0 3 * * *` in `Europe/Berlin` means
//! 03:00 Berlin time in summer and in winter. Around DST changes croner follows Vixie cron: a
//! fixed time that falls into a skipped hour runs at the first instant after the gap, and a fixed
//! time in a repeated hour runs once, at the earlier instant.

use std::fmt;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The fields a schedule must have, named for error messages.
const FIELDS: &str = "minute hour day-of-month month day-of-week";

/// Where `parse` looks for a first tick, to refuse schedules that never tick (`0 0 30 2 *`). A
/// fixed instant keeps `parse` pure; five fields have no year, so a schedule that ticks at all
/// ticks after it.
const PROBE_FROM: Timestamp = Timestamp::constant(946_684_800, 0); // 2000-01-01T00:00:00Z

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("invalid cron expression {cron:?}: {reason}")]
    InvalidCron { cron: String, reason: String },
    #[error("unknown time zone {time_zone:?}: expected an IANA name such as \"UTC\" or \"Europe/Berlin\"")]
    UnknownTimeZone { time_zone: String },
}

/// A parsed `spec.triggers.schedule`.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    time_zone: TimeZone,
    time_zone_name: String,
}

/// What a schedule asks for at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The latest tick not yet handled, if one has passed: the run to start now.
    pub tick: Option<Timestamp>,
    /// The next tick after now: for `status.nextScheduleTime` and the requeue.
    pub next: Option<Timestamp>,
}

/// The five fields a cron macro stands for (as in Vixie cron and Kubernetes CronJobs).
fn expand_macro(cron: &str) -> &str {
    match cron.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => cron,
    }
}

impl CronSchedule {
    /// Err with a message a user can act on ("invalid cron expression \"..\": ..",
    /// "unknown time zone \"..\"").
    pub fn parse(cron: &str, time_zone: &str) -> Result<CronSchedule, ScheduleError> {
        let invalid = |reason: String| ScheduleError::InvalidCron { cron: cron.to_string(), reason };

        // The usual macros stand for five fields; croner also accepts seconds and years, which
        // the CRD does not promise, so anything else is refused with what is expected.
        let expanded = expand_macro(cron.trim());
        let fields = expanded.split_whitespace().count();
        if fields != 5 {
            return Err(invalid(format!("expected 5 fields ({FIELDS}), found {fields}")));
        }
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let parsed = parser.parse(expanded).map_err(|e| invalid(e.to_string()))?;

        let zone = TimeZone::get(time_zone)
            .map_err(|_| ScheduleError::UnknownTimeZone { time_zone: time_zone.to_string() })?;

        let schedule = CronSchedule { cron: parsed, time_zone: zone, time_zone_name: time_zone.to_string() };
        // Valid fields can still name a date that never exists (`0 0 30 2 *`): say so now rather
        // than accept a schedule that silently never runs.
        if schedule.next_after(PROBE_FROM).is_none() {
            return Err(invalid("it matches no date".to_string()));
        }
        Ok(schedule)
    }

    /// The first tick strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(self.time_zone.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?.timestamp();
        // croner works in whole seconds; keep the contract even for a sub-second `after`.
        (next > after).then_some(next)
    }

    /// What is due now: given the last tick already handled (or the pipeline's creation time when
    /// none), returns the LATEST tick t with last < t <= now (at most one catch-up after downtime,
    /// never a storm), or None when nothing is due; plus the next tick after now (for
    /// status.nextScheduleTime and requeue).
    pub fn due(&self, last_handled: Timestamp, now: Timestamp) -> Due {
        let first_pending = self.next_after(last_handled).filter(|t| *t <= now);
        let tick = first_pending.map(|first| self.latest_at_or_before(now).filter(|t| *t >= first).unwrap_or(first));
        // With a clock behind the last handled tick, ticks up to it are done already.
        let next = self.next_after(now.max(last_handled));
        Due { tick, next }
    }

    /// The latest tick at or before `at`.
    fn latest_at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        let start = at.to_zoned(self.time_zone.clone());
        let previous = self.cron.find_previous_occurrence(&start, true).ok()?.timestamp();
        (previous <= at).then_some(previous)
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?} in {})", self.cron.as_str(), self.time_zone_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("test timestamp")
    }

    fn schedule(cron: &str, time_zone: &str) -> CronSchedule {
        CronSchedule::parse(cron, time_zone).expect("valid schedule")
    }

    /// The first `n` ticks after `from`.
    fn ticks(schedule: &CronSchedule, from: Timestamp, n: usize) -> Vec<Timestamp> {
        std::iter::successors(schedule.next_after(from), |t| schedule.next_after(*t)).take(n).collect()
    }

    #[test]
    fn every_minute_ticks_on_the_minute() {
        let every_minute = schedule("* * * * *", "UTC");
        assert_eq!(every_minute.next_after(ts("2026-11-27T10:00:00Z")), Some(ts("2026-11-27T10:01:00Z")));
        assert_eq!(every_minute.next_after(ts("2026-11-27T10:00:30.5Z")), Some(ts("2026-11-27T10:01:00Z")));
        assert_eq!(every_minute.next_after(ts("2026-11-27T10:00:59.999Z")), Some(ts("2026-11-27T10:01:00Z")));
        assert_eq!(
            ticks(&every_minute, ts("2026-11-27T23:58:10Z"), 3),
            [ts("2026-11-27T23:59:00Z"), ts("2026-11-28T00:00:00Z"), ts("2026-11-28T00:01:00Z")]
        );
    }

    #[test]
    fn daily_at_three_in_berlin_follows_the_spring_dst_change() {
        // Berlin moves from CET (+01:00) to CEST (+02:00) on 2026-03-29 at 02:00.
        let nightly = schedule("0 3 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&nightly, ts("2026-03-27T12:00:00Z"), 3),
            [ts("2026-03-28T02:00:00Z"), ts("2026-03-29T01:00:00Z"), ts("2026-03-30T01:00:00Z")]
        );
    }

    #[test]
    fn daily_at_three_in_berlin_follows_the_autumn_dst_change() {
        // Berlin moves back to CET on 2026-10-25 at 03:00 CEST.
        let nightly = schedule("0 3 * * *", "Europe/Berlin");
        assert_eq!(
            ticks(&nightly, ts("2026-10-23T12:00:00Z"), 3),
            [ts("2026-10-24T01:00:00Z"), ts("2026-10-25T02:00:00Z"), ts("2026-10-26T02:00:00Z")]
        );
    }

    #[test]
    fn a_time_in_a_skipped_or_repeated_hour_runs_exactly_once() {
        let half_past_two = schedule("30 2 * * *", "Europe/Berlin");
        // 02:30 does not exist on 2026-03-29: the run happens when the clock jumps to 03:00 CEST.
        assert_eq!(
            ticks(&half_past_two, ts("2026-03-28T12:00:00Z"), 2),
            [ts("2026-03-29T01:00:00Z"), ts("2026-03-30T00:30:00Z")]
        );
        // 02:30 happens twice on 2026-10-25: the run happens at the first one (still CEST).
        assert_eq!(
            ticks(&half_past_two, ts("2026-10-24T12:00:00Z"), 2),
            [ts("2026-10-25T00:30:00Z"), ts("2026-10-26T01:30:00Z")]
        );
    }

    #[test]
    fn three_days_of_downtime_give_one_catch_up_tick_the_latest() {
        let every_minute = schedule("* * * * *", "UTC");
        let due = every_minute.due(ts("2026-11-24T10:00:00Z"), ts("2026-11-27T10:00:30Z"));
        assert_eq!(due, Due { tick: Some(ts("2026-11-27T10:00:00Z")), next: Some(ts("2026-11-27T10:01:00Z")) });

        let nightly = schedule("0 3 * * *", "Europe/Berlin");
        let due = nightly.due(ts("2026-11-24T02:00:00Z"), ts("2026-11-27T09:00:00Z"));
        assert_eq!(due, Due { tick: Some(ts("2026-11-27T02:00:00Z")), next: Some(ts("2026-11-28T02:00:00Z")) });
    }

    #[test]
    fn nothing_is_due_between_ticks_or_once_the_tick_is_handled() {
        let nightly = schedule("0 3 * * *", "UTC");
        let created = ts("2026-11-27T04:00:00Z");
        let expected = Due { tick: None, next: Some(ts("2026-11-28T03:00:00Z")) };
        assert_eq!(nightly.due(created, ts("2026-11-27T12:00:00Z")), expected);

        // The tick itself is due at exactly its time, and handled afterwards.
        let tick = ts("2026-11-28T03:00:00Z");
        assert_eq!(nightly.due(created, tick).tick, Some(tick));
        assert_eq!(nightly.due(tick, tick), Due { tick: None, next: Some(ts("2026-11-29T03:00:00Z")) });
        assert_eq!(nightly.due(tick, ts("2026-11-28T03:00:01Z")).tick, None);
    }

    #[test]
    fn a_clock_behind_the_last_handled_tick_starts_nothing() {
        let hourly = schedule("0 * * * *", "UTC");
        let due = hourly.due(ts("2026-11-27T10:00:00Z"), ts("2026-11-27T09:30:00Z"));
        assert_eq!(due, Due { tick: None, next: Some(ts("2026-11-27T11:00:00Z")) });
    }

    #[test]
    fn weekday_and_month_names_are_understood() {
        let mondays = schedule("15 6 * jan-mar MON", "America/New_York");
        // 2026-01-05 is a Monday; New York is at -05:00 in January.
        assert_eq!(mondays.next_after(ts("2026-01-01T00:00:00Z")), Some(ts("2026-01-05T11:15:00Z")));
    }

    #[test]
    fn invalid_expressions_say_what_is_wrong() {
        let message = |cron: &str| CronSchedule::parse(cron, "UTC").unwrap_err().to_string();
        assert_eq!(
            message("0 0 3 * * *"),
            "invalid cron expression \"0 0 3 * * *\": expected 5 fields \
             (minute hour day-of-month month day-of-week), found 6"
        );
        assert!(message("0 0 3 * * * 2026").contains("found 7"));
        assert!(message("@fortnightly").contains("found 1"));
        assert!(message("").contains("found 0"));
        assert!(message("60 * * * *").starts_with("invalid cron expression \"60 * * * *\": "));
        assert!(message("0 25 * * *").starts_with("invalid cron expression \"0 25 * * *\": "));
        assert!(message("0 0 30 2 *").ends_with("it matches no date"));
        for nonsense in ["a b c d e", "*/0 * * * *", "5-1 * * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8", "# # # # #"]
        {
            assert!(message(nonsense).starts_with(&format!("invalid cron expression \"{nonsense}\": ")), "{nonsense}");
        }
    }

    #[test]
    fn macros_stand_for_their_five_fields() {
        let noon = Timestamp::from_second(1_800_000_000).unwrap(); // 2027-01-15T08:00:00Z
        let next = |cron: &str| CronSchedule::parse(cron, "UTC").unwrap().next_after(noon).unwrap().to_string();
        assert_eq!(next("@daily"), "2027-01-16T00:00:00Z");
        assert_eq!(next("@MIDNIGHT"), next("@daily"));
        assert_eq!(next("@hourly"), "2027-01-15T09:00:00Z");
        assert_eq!(next("@weekly"), "2027-01-17T00:00:00Z");
        assert_eq!(next("@monthly"), "2027-02-01T00:00:00Z");
        assert_eq!(next("@yearly"), next("@annually"));
    }

    #[test]
    fn unknown_time_zones_are_named() {
        for zone in ["Mars/Olympus_Mons", "", "Europe/Berlin "] {
            let err = CronSchedule::parse("0 3 * * *", zone).unwrap_err();
            assert_eq!(err, ScheduleError::UnknownTimeZone { time_zone: zone.to_string() });
        }
        assert_eq!(
            CronSchedule::parse("0 3 * * *", "Mars/Olympus_Mons").unwrap_err().to_string(),
            "unknown time zone \"Mars/Olympus_Mons\": expected an IANA name such as \"UTC\" or \"Europe/Berlin\""
        );
    }

    /// The message lands in conditions and Events: a control character the user typed must show
    /// escaped, not move a terminal's cursor or change its colours.
    #[test]
    fn control_characters_in_a_schedule_are_shown_escaped() {
        let zone = CronSchedule::parse("0 3 * * *", "\u{1b}[31mUTC").unwrap_err().to_string();
        assert!(zone.starts_with(r#"unknown time zone "\u{1b}[31mUTC""#), "{zone}");
        let cron = CronSchedule::parse("0 3 * *\u{7}", "UTC").unwrap_err().to_string();
        assert!(cron.starts_with(r#"invalid cron expression "0 3 * *\u{7}""#), "{cron}");
    }
}
