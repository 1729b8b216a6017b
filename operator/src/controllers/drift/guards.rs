//! Pure: whether a firing monitor may ask for a retrain now, or which guard holds it. The
//! guards' memory (when the recent retrains were asked) lives in the policy's status, so they
//! hold across operator restarts.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// The rolling window of `maxRetrainsPerDay`.
const DAY: Duration = Duration::from_secs(24 * 3600);

/// What the guards look at.
#[derive(Clone, Debug)]
pub struct Situation<'a> {
    pub suspend: bool,
    /// The pipeline to retrain; `None` when the deployment pins a run.
    pub pipeline: Option<&'a str>,
    /// The run the deployment pins (`spec.source.runRef`), if it does.
    pub pinned: Option<&'a str>,
    /// A drift run of the pipeline that is pending or running, or this policy's request that the
    /// pipeline has not consumed yet.
    pub pending: Option<String>,
    pub cooldown: Duration,
    pub max_per_day: i32,
    /// When the retrains of the last day were asked.
    pub recent: &'a [Time],
    pub now: Timestamp,
}

/// Why a firing monitor starts no run.
#[derive(Clone, Debug, PartialEq)]
pub enum Suppression {
    Suspended,
    /// The deployment serves the run it names, never its pipeline's newer ones: a retrain would
    /// change nothing it serves.
    PinnedByRunRef(String),
    /// Coalesced into the drift run already on its way.
    Pending(String),
    Cooldown {
        until: Timestamp,
    },
    DailyLimit {
        limit: i32,
    },
}

impl Suppression {
    /// A stable metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Suppression::Suspended => "suspended",
            Suppression::PinnedByRunRef(_) => "pinned-by-run-ref",
            Suppression::Pending(_) => "pending",
            Suppression::Cooldown { .. } => "cooldown",
            Suppression::DailyLimit { .. } => "daily-limit",
        }
    }

    /// What `status.suppressionReason` and the event say.
    pub fn message(&self) -> String {
        match self {
            Suppression::Suspended => "suspend: the policy evaluates but starts no run".into(),
            Suppression::PinnedByRunRef(run) => format!(
                "PinnedByRunRef: the deployment serves run {run} (spec.source.runRef), never a retrained model; \
                 follow a pipeline (spec.source.pipelineRef) to retrain on drift"
            ),
            Suppression::Pending(what) => format!("a drift retrain is already on its way: {what}"),
            Suppression::Cooldown { until } => format!("cooldown: no retrain before {until}"),
            Suppression::DailyLimit { limit } => format!("maxRetrainsPerDay: {limit} retrains in the last 24 hours"),
        }
    }
}

/// `Ok` when a retrain may be asked now.
pub fn check(situation: &Situation) -> Result<(), Suppression> {
    if situation.suspend {
        return Err(Suppression::Suspended);
    }
    if situation.pipeline.is_none() {
        return Err(Suppression::PinnedByRunRef(situation.pinned.unwrap_or_default().to_string()));
    }
    if let Some(pending) = &situation.pending {
        return Err(Suppression::Pending(pending.clone()));
    }
    let recent = within_a_day(situation.recent, situation.now);
    if let Some(last) = recent.iter().map(|t| t.0).max() {
        let until = last.checked_add(signed(situation.cooldown)).unwrap_or(Timestamp::MAX);
        if until > situation.now {
            return Err(Suppression::Cooldown { until });
        }
    }
    if recent.len() >= usize::try_from(situation.max_per_day).unwrap_or(0) {
        return Err(Suppression::DailyLimit { limit: situation.max_per_day });
    }
    Ok(())
}

/// The retrain times still inside the rolling day (what the status keeps).
pub fn within_a_day(recent: &[Time], now: Timestamp) -> Vec<Time> {
    let start = now.checked_sub(signed(DAY)).unwrap_or(Timestamp::MIN);
    recent.iter().filter(|t| t.0 > start).cloned().collect()
}

fn signed(duration: Duration) -> SignedDuration {
    SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).unwrap()
    }

    fn situation(recent: &[Time], now: i64) -> Situation<'_> {
        Situation {
            suspend: false,
            pipeline: Some("cancer"),
            pinned: None,
            pending: None,
            cooldown: Duration::from_secs(3600),
            max_per_day: 2,
            recent,
            now: at(now),
        }
    }

    #[test]
    fn each_guard_holds_in_its_turn() {
        assert_eq!(check(&situation(&[], 0)), Ok(()));
        assert_eq!(check(&Situation { suspend: true, ..situation(&[], 0) }), Err(Suppression::Suspended));
        let pinned = Situation { pipeline: None, pinned: Some("cancer-1"), ..situation(&[], 0) };
        let held = check(&pinned).unwrap_err();
        assert_eq!(held, Suppression::PinnedByRunRef("cancer-1".into()));
        assert!(held.message().starts_with("PinnedByRunRef: the deployment serves run cancer-1"), "{}", held.message());
        let pending = Situation { pending: Some("cancer-4 is Running".into()), ..situation(&[], 0) };
        assert_eq!(check(&pending).map_err(|s| s.label()), Err("pending"));
        let one = [Time(at(0))];
        assert_eq!(check(&situation(&one, 1800)), Err(Suppression::Cooldown { until: at(3600) }));
        assert_eq!(check(&situation(&one, 3600)), Ok(()));
        let two = [Time(at(0)), Time(at(7200))];
        assert_eq!(check(&situation(&two, 7200 + 3600)), Err(Suppression::DailyLimit { limit: 2 }));
        assert_eq!(check(&situation(&two, 24 * 3600 + 1)), Ok(()), "the first left the rolling day");
        let none = Situation { max_per_day: 0, ..situation(&[], 0) };
        assert_eq!(check(&none).map_err(|s| s.label()), Err("daily-limit"));
    }

    #[test]
    fn only_the_last_day_is_kept() {
        let recent = [Time(at(0)), Time(at(100))];
        assert_eq!(within_a_day(&recent, at(24 * 3600 + 50)), vec![Time(at(100))]);
    }
}
