//! Time limits on chatting: the session length (`MAX_CHILD_SESSION_MINUTES`), and per child a daily
//! limit and quiet hours set by a parent.
//!
//! A *chat session* is a stretch of chatting: it starts with a message and ends after [`BREAK_MS`]
//! without one. When it has lasted the session length, the child is asked to take a break; the break
//! is over when [`BREAK_MS`] have passed since their last message, and the next message starts a new
//! session. The daily limit counts the minutes of chat sessions in the family's local day (midnight to
//! midnight at its UTC offset), each from its start to five minutes after its last message. Quiet hours
//! are minutes from the family's local midnight and may wrap past midnight (21:00-07:00).

use serde::{Deserialize, Serialize};

use crate::domain::{Context, DomainError, DomainResult, access, audit};
use crate::storage::{AuditEntry, ChatSessionRow, ChildLimitsRow};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;
/// A chat session ends after this long without a message; it is also how long a break lasts.
pub const BREAK_MS: i64 = 15 * MINUTE_MS;
/// The break reminder comes this long before the end.
pub const REMINDER_MS: i64 = 5 * MINUTE_MS;
/// Toward the daily limit, a session counts until this long after its last message.
pub const USE_TAIL_MS: i64 = 5 * MINUTE_MS;

/// A child's limits as the parent API shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildLimits {
    pub child_id: String,
    /// Minutes of chat per local day; null: no daily limit.
    pub daily_limit_minutes: Option<i64>,
    /// "HH:MM" local time when quiet hours start; null: no quiet hours.
    pub quiet_hours_start: Option<String>,
    /// "HH:MM" local time when quiet hours end.
    pub quiet_hours_end: Option<String>,
    /// The family's offset from UTC in minutes (e.g. -300 for New York in winter, 60 for Berlin).
    pub utc_offset_minutes: i64,
    /// The length of one chat session before a break (`MAX_CHILD_SESSION_MINUTES`, set by the operator).
    pub session_minutes: u32,
}

/// New limits; the whole set is replaced (an absent field is no limit, and offset 0).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsInput {
    pub daily_limit_minutes: Option<i64>,
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
    pub utc_offset_minutes: Option<i64>,
}

/// "HH:MM" (24-hour) to minutes from midnight.
pub fn parse_clock(field: &'static str, value: &str) -> DomainResult<i64> {
    let invalid = || DomainError::invalid(field, "use a 24-hour time such as 20:30");
    let (h, m) = value.trim().split_once(':').ok_or_else(invalid)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(invalid());
    }
    let h: i64 = h.parse().map_err(|_| invalid())?;
    let m: i64 = m.parse().map_err(|_| invalid())?;
    if !(0..24).contains(&h) || !(0..60).contains(&m) {
        return Err(invalid());
    }
    Ok(h * 60 + m)
}

pub fn format_clock(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn view(ctx: &Context, child_id: &str, row: Option<&ChildLimitsRow>) -> ChildLimits {
    ChildLimits {
        child_id: child_id.to_string(),
        daily_limit_minutes: row.and_then(|r| r.daily_limit_minutes),
        quiet_hours_start: row.and_then(|r| r.quiet_hours_start).map(format_clock),
        quiet_hours_end: row.and_then(|r| r.quiet_hours_end).map(format_clock),
        utc_offset_minutes: row.map_or(0, |r| r.utc_offset_minutes),
        session_minutes: ctx.config.max_child_session_minutes,
    }
}

/// A child's limits (404 for another family's child).
pub async fn get(ctx: &Context, family_id: &str, child_id: &str) -> DomainResult<ChildLimits> {
    let child = access::child_of_family(ctx, family_id, child_id).await?;
    Ok(view(ctx, &child.id, ctx.store.child_limits(&child.id).await?.as_ref()))
}

/// Sets a child's limits (404 for another family's child); audited.
pub async fn set(
    ctx: &Context,
    user_id: &str,
    family_id: &str,
    child_id: &str,
    input: LimitsInput,
) -> DomainResult<ChildLimits> {
    let child = access::child_of_family(ctx, family_id, child_id).await?;
    if let Some(minutes) = input.daily_limit_minutes
        && !(1..=1440).contains(&minutes)
    {
        return Err(DomainError::invalid("dailyLimitMinutes", "use 1 to 1440 minutes, or null for no limit"));
    }
    let start = input.quiet_hours_start.as_deref().map(|v| parse_clock("quietHoursStart", v)).transpose()?;
    let end = input.quiet_hours_end.as_deref().map(|v| parse_clock("quietHoursEnd", v)).transpose()?;
    match (start, end) {
        (Some(_), None) => {
            return Err(DomainError::invalid(
                "quietHoursEnd",
                "give both a start and an end for quiet hours",
            ));
        }
        (None, Some(_)) => {
            return Err(DomainError::invalid(
                "quietHoursStart",
                "give both a start and an end for quiet hours",
            ));
        }
        (Some(s), Some(e)) if s == e => {
            return Err(DomainError::invalid(
                "quietHoursEnd",
                "quiet hours must end at another time than they start",
            ));
        }
        _ => {}
    }
    let offset = input.utc_offset_minutes.unwrap_or(0);
    if !(-720..=840).contains(&offset) {
        return Err(DomainError::invalid("utcOffsetMinutes", "use an offset from -720 to 840 minutes"));
    }
    let row = ChildLimitsRow {
        child_id: child.id.clone(),
        daily_limit_minutes: input.daily_limit_minutes,
        quiet_hours_start: start,
        quiet_hours_end: end,
        utc_offset_minutes: offset,
        updated_at: ctx.now(),
    };
    ctx.store.upsert_child_limits(&row).await?;
    audit::record(
        ctx,
        AuditEntry {
            actor_user_id: Some(user_id),
            family_id: Some(family_id),
            action: "child.limits_changed",
            detail: serde_json::json!({
                "childId": child.id,
                "dailyLimitMinutes": row.daily_limit_minutes,
                "quietHoursStart": start.map(format_clock),
                "quietHoursEnd": end.map(format_clock),
                "utcOffsetMinutes": offset,
            }),
            ip: None,
        },
    )
    .await;
    Ok(view(ctx, &child.id, Some(&row)))
}

/// Why chat is closed right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The session has lasted its length; the break ends at this time (ms).
    Break { until: i64 },
    /// The daily limit is used up.
    DailyLimit,
    /// Inside quiet hours, until this local "HH:MM" (minutes from midnight).
    QuietHours { until_minute: i64 },
}

/// Which limit comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Session,
    Daily,
    QuietHours,
}

/// Chat is open: how long until the first limit, and which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allowance {
    pub remaining_ms: i64,
    pub ending: Ending,
}

/// The current chat session, if the latest one is still going (a message within [`BREAK_MS`]).
pub fn current_session(latest: Option<ChatSessionRow>, now: i64) -> Option<ChatSessionRow> {
    latest.filter(|s| now - s.last_active_at < BREAK_MS)
}

fn local_day_start(now: i64, offset_minutes: i64) -> i64 {
    let offset = offset_minutes * MINUTE_MS;
    (now + offset).div_euclid(DAY_MS) * DAY_MS - offset
}

fn local_minute(now: i64, offset_minutes: i64) -> i64 {
    (now + offset_minutes * MINUTE_MS).rem_euclid(DAY_MS) / MINUTE_MS
}

/// Minutes until quiet hours start, or `Err(end)` when inside them.
fn quiet_hours(now: i64, row: &ChildLimitsRow) -> Result<Option<i64>, i64> {
    let (Some(start), Some(end)) = (row.quiet_hours_start, row.quiet_hours_end) else { return Ok(None) };
    let m = local_minute(now, row.utc_offset_minutes);
    let inside = if start < end { start <= m && m < end } else { m >= start || m < end };
    if inside {
        return Err(end);
    }
    Ok(Some((start - m).rem_euclid(24 * 60)))
}

/// The chat time a child used in the family's local day. A session counts from its start to its last
/// message plus [`USE_TAIL_MS`] (reading or listening to the last reply), never past now; so the count
/// does not shrink when a session ends.
pub fn used_today_ms(sessions: &[ChatSessionRow], day_start: i64, now: i64) -> i64 {
    sessions
        .iter()
        .map(|s| ((s.last_active_at + USE_TAIL_MS).min(now) - s.started_at.max(day_start)).max(0))
        .sum()
}

/// Whether a child may chat now, given the session limit, the parent's limits and today's use.
pub async fn check(
    ctx: &Context,
    child_id: &str,
    current: Option<&ChatSessionRow>,
    now: i64,
) -> DomainResult<Result<Allowance, Refusal>> {
    let session_ms = i64::from(ctx.config.max_child_session_minutes) * MINUTE_MS;
    let limits = ctx.store.child_limits(child_id).await?.unwrap_or_default();
    if let Err(end) = quiet_hours(now, &limits) {
        return Ok(Err(Refusal::QuietHours { until_minute: end }));
    }
    let elapsed = current.map_or(0, |s| now - s.started_at);
    if let Some(session) = current
        && elapsed >= session_ms
    {
        return Ok(Err(Refusal::Break { until: session.last_active_at + BREAK_MS }));
    }
    let mut allowance = Allowance { remaining_ms: session_ms - elapsed, ending: Ending::Session };
    if let Some(daily) = limits.daily_limit_minutes {
        let day_start = local_day_start(now, limits.utc_offset_minutes);
        let sessions = ctx.store.chat_sessions_of_child_since(child_id, day_start).await?;
        let used = used_today_ms(&sessions, day_start, now);
        let left = daily * MINUTE_MS - used;
        if left <= 0 {
            return Ok(Err(Refusal::DailyLimit));
        }
        if left < allowance.remaining_ms {
            allowance = Allowance { remaining_ms: left, ending: Ending::Daily };
        }
    }
    if let Ok(Some(minutes)) = quiet_hours(now, &limits) {
        let left = minutes * MINUTE_MS;
        if left < allowance.remaining_ms {
            allowance = Allowance { remaining_ms: left, ending: Ending::QuietHours };
        }
    }
    Ok(Ok(allowance))
}

/// What the child is told when chat is closed.
pub fn refusal_text(refusal: Refusal, now: i64) -> String {
    match refusal {
        Refusal::Break { until } => {
            let minutes = ((until - now).max(0) + MINUTE_MS - 1) / MINUTE_MS;
            format!(
                "We've been chatting for a while, so it's time for a break! Stretch, get a drink of water, or \
                 play something else. Come back in {} minute{}.",
                minutes.max(1),
                if minutes > 1 { "s" } else { "" }
            )
        }
        Refusal::DailyLimit => {
            "That's all the chat time for today. I had fun! Let's talk again tomorrow.".into()
        }
        Refusal::QuietHours { until_minute } => format!(
            "It's quiet time now, so I'm resting too. Let's talk again after {}.",
            format_clock(until_minute)
        ),
    }
}

/// The break reminder, shortly before the first limit.
pub fn reminder_text(allowance: Allowance) -> String {
    let minutes = ((allowance.remaining_ms + MINUTE_MS - 1) / MINUTE_MS).max(1);
    let plural = if minutes > 1 { "s" } else { "" };
    match allowance.ending {
        Ending::Session => format!("Just so you know: in {minutes} minute{plural} it's time for a break."),
        Ending::Daily => format!("Just so you know: {minutes} minute{plural} of chat time left for today."),
        Ending::QuietHours => format!("Just so you know: quiet time starts in {minutes} minute{plural}."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_times_parse_and_format() {
        assert_eq!(parse_clock("f", "20:30").ok(), Some(20 * 60 + 30));
        assert_eq!(parse_clock("f", "7:05").ok(), Some(7 * 60 + 5));
        assert_eq!(parse_clock("f", "00:00").ok(), Some(0));
        for bad in ["24:00", "12:60", "1230", "12:5", "-1:00", "ab:cd", ""] {
            assert!(parse_clock("f", bad).is_err(), "{bad}");
        }
        assert_eq!(format_clock(7 * 60 + 5), "07:05");
    }

    fn limits(start: i64, end: i64, offset: i64) -> ChildLimitsRow {
        ChildLimitsRow {
            quiet_hours_start: Some(start),
            quiet_hours_end: Some(end),
            utc_offset_minutes: offset,
            ..ChildLimitsRow::default()
        }
    }

    #[test]
    fn quiet_hours_wrap_midnight_and_follow_the_offset() {
        let day = 20_000 * DAY_MS; // a UTC midnight
        let at = |h: i64, m: i64| day + (h * 60 + m) * MINUTE_MS;
        let night = limits(21 * 60, 7 * 60, 0);
        assert_eq!(quiet_hours(at(22, 0), &night), Err(7 * 60));
        assert_eq!(quiet_hours(at(6, 59), &night), Err(7 * 60));
        assert_eq!(quiet_hours(at(7, 0), &night), Ok(Some(14 * 60)));
        assert_eq!(quiet_hours(at(20, 55), &night), Ok(Some(5)));
        let afternoon = limits(13 * 60, 15 * 60, 0);
        assert!(quiet_hours(at(14, 0), &afternoon).is_err());
        assert!(quiet_hours(at(15, 0), &afternoon).is_ok());
        // 02:00 UTC is 21:00 in New York (UTC-5): quiet there.
        assert!(quiet_hours(at(2, 0), &limits(21 * 60, 22 * 60, -300)).is_err());
        assert!(quiet_hours(at(2, 0), &limits(21 * 60, 22 * 60, 0)).is_ok());
    }

    #[test]
    fn the_local_day_starts_at_local_midnight() {
        let day = 20_000 * DAY_MS;
        assert_eq!(local_day_start(day + 3 * 3600 * 1000, 0), day);
        // 03:00 UTC is 22:00 the day before at UTC-5.
        assert_eq!(local_day_start(day + 3 * 3600 * 1000, -300), day - DAY_MS + 5 * 3600 * 1000);
        assert_eq!(local_day_start(day + 23 * 3600 * 1000, 120), day + DAY_MS - 2 * 3600 * 1000);
    }
}
