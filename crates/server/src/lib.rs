//! Onda: a child-safe AI companion. This library is the whole server; `main.rs` only parses the
//! command line and calls into it, and tests start it on port 0.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod providers;
pub mod storage;
pub mod telemetry;
pub mod testing;

use std::future::Future;
use std::sync::Arc;

use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;

pub use config::Config;
pub use domain::Context;

/// Opens storage, builds the shared context and serves HTTP on `listener` until `shutdown` resolves.
/// Background jobs run alongside and stop with the server.
pub async fn launch(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let context = Context::open(Arc::new(config), bound).await?;
    serve(context, listener, shutdown).await
}

/// Serves an already built context; tests use this to keep a handle on the context. With
/// `ONDA_METRICS_BIND` set, `/metrics` is served on that address too, and both listeners stop together.
pub async fn serve(
    context: Context,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let state = http::AppState::new(context.clone());
    let metrics_listener = match context.config.metrics_bind {
        Some(address) => Some(TcpListener::bind(address).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {address} for metrics ({e}); change ONDA_METRICS_BIND")
        })?),
        None => None,
    };

    // One shutdown signal for every listener: the caller's future flips this switch.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop = Arc::new(stop);
    let trigger = {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
    };
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|s| *s).await;
    };

    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let checkpointer = tokio::spawn(checkpoint_forever(context.store.clone(), jobs_stopped.clone()));
    let job_runner = tokio::spawn(jobs::run_forever(context.clone(), jobs_stopped));
    let metrics_server = match metrics_listener {
        Some(metrics_listener) => {
            tracing::info!(address = %metrics_listener.local_addr()?, "metrics are served");
            let app = http::metrics::standalone_router(state.clone());
            let serving =
                axum::serve(metrics_listener, app).with_graceful_shutdown(until_stopped(stopped.clone()));
            Some(tokio::spawn(async move {
                if let Err(err) = serving.await {
                    tracing::error!(error = %err, "the metrics listener failed");
                }
            }))
        }
        None => None,
    };
    let app = http::router(state);
    tracing::info!(address = %listener.local_addr()?, "onda is listening");
    // Every sentence of a reply is a small write of its own: without TCP_NODELAY, Nagle's algorithm holds
    // each one back until the client acknowledges the previous one, which delayed acknowledgements make
    // up to 40 ms.
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY on a connection");
        }
    });
    let served = axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(until_stopped(stopped))
        .await;
    // Stop the other listener too, also when the main one ended on an error.
    let _ = stop.send(true);
    trigger.abort();
    if let Some(metrics_server) = metrics_server {
        let _ = metrics_server.await;
    }
    let _ = stop_jobs.send(true);
    let _ = job_runner.await;
    let _ = checkpointer.await;
    context.store.close().await;
    served?;
    tracing::info!("onda stopped");
    Ok(())
}

/// Checkpoints the database every [`storage::CHECKPOINT_INTERVAL`] until `stop` turns true, so that no
/// child's message waits for SQLite to copy its log (see [`storage::Store::checkpoint`]).
async fn checkpoint_forever(store: storage::Store, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(storage::CHECKPOINT_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
        }
        match store.checkpoint().await {
            Ok(None) => break,
            Ok(Some(_)) => {}
            Err(err) => tracing::warn!(error = %err, "a database checkpoint failed; retrying later"),
        }
    }
}
