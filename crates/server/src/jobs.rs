//! Scheduled and queued work, run by every replica; a job is claimed with a lease so it runs once.

use tokio::sync::watch;

use crate::domain::Context;

/// Runs due jobs until `stop` turns true.
pub async fn run_forever(ctx: Context, mut stop: watch::Receiver<bool>) {
    let _ = &ctx;
    let _ = stop.changed().await;
}
