//! Scheduled and queued work, run by every replica; a job is claimed with a lease so it runs once.
//!
//! Jobs are plain async functions of the [`Context`]; "now" is the context's clock, so tests move time
//! and call [`run_due`]. A failed job runs again later with exponential backoff, at most
//! [`MAX_ATTEMPTS`] times in all.

use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::domain::{Context, consent};
use crate::storage::JobRow;

/// How often the background runner looks for due jobs.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// A claimed job belongs to its runner this long; after that another runner may take it over.
pub const LEASE_MS: i64 = 5 * 60 * 1000;
pub const MAX_ATTEMPTS: i64 = 8;
const FIRST_RETRY_MS: i64 = 60 * 1000;
const MAX_RETRY_MS: i64 = 6 * 3600 * 1000;
/// At most this many jobs in one pass, so a flood cannot starve shutdown.
const MAX_JOBS_PER_PASS: usize = 1000;

/// One pass at a time in this process: [`run_due`] waits for a pass in progress, so when it returns,
/// every job that was due when it was called has run (or failed and been rescheduled).
static PASS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs due jobs until `stop` turns true (or its sender is dropped).
pub async fn run_forever(ctx: Context, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            result = run_due(&ctx) => {
                if let Err(err) = result {
                    tracing::error!(error = ?err, "running due jobs failed");
                }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
    }
    tracing::debug!("job runner stopped");
}

/// Runs every job that is due now; returns how many ran (successfully or not).
pub async fn run_due(ctx: &Context) -> anyhow::Result<usize> {
    let _pass = PASS.lock().await;
    let mut ran = 0;
    while ran < MAX_JOBS_PER_PASS {
        let now = ctx.now();
        let Some(job) = ctx.store.claim_due_job(now, LEASE_MS).await.context("claiming a due job")? else {
            break;
        };
        ran += 1;
        match run_job(ctx, &job).await {
            Ok(()) => ctx.store.complete_job(&job.id, ctx.now()).await.context("completing a job")?,
            Err(err) => {
                let now = ctx.now();
                let retry_at = (job.attempts < MAX_ATTEMPTS).then(|| now + backoff_ms(job.attempts));
                tracing::warn!(
                    job = %job.id,
                    kind = %job.kind,
                    attempt = job.attempts,
                    gives_up = retry_at.is_none(),
                    error = ?err,
                    "job failed"
                );
                ctx.store
                    .fail_job(&job.id, &format!("{err:#}"), retry_at, now)
                    .await
                    .context("recording a job failure")?;
            }
        }
    }
    Ok(ran)
}

/// The wait before attempt `attempts + 1`: one minute, doubling, at most six hours.
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    FIRST_RETRY_MS.saturating_mul(1 << doublings).min(MAX_RETRY_MS)
}

async fn run_job(ctx: &Context, job: &JobRow) -> anyhow::Result<()> {
    let payload: serde_json::Value =
        serde_json::from_str(&job.payload).context("the job's payload is not JSON")?;
    match job.kind.as_str() {
        consent::JOB_CONSENT_CONFIRMATION => {
            let consent_id =
                payload["consent_id"].as_str().context("consent_confirmation needs a consent_id")?;
            let cloud_ai_consent_id = payload["cloud_ai_consent_id"].as_str();
            consent::send_confirmation(ctx, consent_id, cloud_ai_consent_id)
                .await
                .map_err(anyhow::Error::from)
        }
        other => anyhow::bail!("unknown job kind {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff_ms(1), 60_000);
        assert_eq!(backoff_ms(2), 120_000);
        assert_eq!(backoff_ms(4), 480_000);
        assert_eq!(backoff_ms(30), MAX_RETRY_MS);
    }
}
