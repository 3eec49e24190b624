//! Family subcommands: the demo family and staff accounts.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Config;
use crate::domain::accounts::{self, Role};
use crate::domain::demo::{self, DemoOutcome};
use crate::domain::{Context, DomainError};

async fn open_context(config: Config) -> anyhow::Result<Context> {
    let bind = config.bind;
    Context::open(Arc::new(config), bind).await
}

/// `onda seed --demo`: creates the demo family and prints how to sign in. Fails (non-zero exit) when
/// the database holds real families.
pub async fn seed(config: Config, demo: bool) -> anyhow::Result<()> {
    if !demo {
        anyhow::bail!("nothing to seed: run `onda seed --demo` to create the demo family");
    }
    let ctx = open_context(config).await?;
    let result = demo::seed(&ctx).await;
    ctx.store.close().await;
    match result {
        Ok(DemoOutcome::Created) => println!("Created the demo family."),
        Ok(DemoOutcome::AlreadyExists) => println!("The demo family exists already; nothing changed."),
        Err(DomainError::Conflict(message)) => {
            anyhow::bail!("refusing to create the demo family: {message}")
        }
        Err(err) => return Err(anyhow::Error::from(err).context("creating the demo family")),
    }
    println!("{}", demo::login_instructions(&ctx.base_url));
    Ok(())
}

/// Creates the demo family for `serve --demo` unless real families exist (then says so and goes on).
pub async fn seed_demo_if_possible(config: &Config) -> anyhow::Result<()> {
    let ctx = open_context(config.clone()).await?;
    let result = demo::seed(&ctx).await;
    ctx.store.close().await;
    match result {
        Ok(outcome) => {
            if outcome == DemoOutcome::Created {
                tracing::info!("created the demo family");
            }
            println!("{}", demo::login_instructions(&ctx.base_url));
            Ok(())
        }
        Err(DomainError::Conflict(message)) => {
            tracing::warn!("--demo ignored: {message}; serving the real families");
            Ok(())
        }
        Err(err) => Err(anyhow::Error::from(err).context("creating the demo family")),
    }
}

/// `onda admin create`: a moderator or administrator account. The password comes from `--password`,
/// `ONDA_ADMIN_PASSWORD`, or standard input.
pub async fn admin_create(
    config: Config,
    email: &str,
    role: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let role = match Role::parse(role.trim().to_ascii_lowercase().as_str()) {
        Some(role @ (Role::Moderator | Role::Admin)) => role,
        _ => anyhow::bail!(
            "unknown role {role:?}: use --role moderator or --role admin (parents sign up on the web page)"
        ),
    };
    let password = match password {
        Some(password) => password,
        None => read_password(email).context("reading the password from standard input")?,
    };
    let ctx = open_context(config).await?;
    let result = accounts::create_staff(&ctx, email, &password, role).await;
    ctx.store.close().await;
    let user = match result {
        Ok(user) => user,
        Err(err @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            anyhow::bail!("cannot create the account: {err}")
        }
        Err(err) => return Err(anyhow::Error::from(err).context("creating the account")),
    };
    println!("Created {} account {}. Sign in at {}.", role.as_str(), user.email, ctx.base_url);
    Ok(())
}

/// One line from standard input; on a terminal, asked for without echo.
fn read_password(email: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let echo_off = interactive && set_echo(false);
    if interactive {
        eprint!("Password for {email} (at least {} characters): ", accounts::PASSWORD_MIN_CHARS);
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        eprintln!();
    }
    read?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        anyhow::bail!(
            "no password given: pass --password, set ONDA_ADMIN_PASSWORD, or type it on standard input"
        );
    }
    Ok(password)
}

/// Turns terminal echo off or on with `stty`; returns whether it worked.
fn set_echo(on: bool) -> bool {
    std::process::Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}
