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

use std::future::Future;
use std::sync::Arc;

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

/// Serves an already built context; tests use this to keep a handle on the context.
pub async fn serve(
    context: Context,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
    let job_runner = tokio::spawn(jobs::run_forever(context.clone(), jobs_stopped));
    let app = http::router(http::AppState::new(context.clone()));
    tracing::info!(address = %listener.local_addr()?, "onda is listening");
    axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await?;
    let _ = stop_jobs.send(true);
    let _ = job_runner.await;
    context.store.close().await;
    tracing::info!("onda stopped");
    Ok(())
}
