//! Family subcommands: the demo family and staff accounts.

use crate::config::Config;

pub async fn seed(config: Config, demo: bool) -> anyhow::Result<()> {
    let _ = (config, demo);
    anyhow::bail!("`onda seed` is not built yet")
}

/// Creates the demo family for `serve --demo` unless real families exist (then says so and goes on).
pub async fn seed_demo_if_possible(config: &Config) -> anyhow::Result<()> {
    let _ = config;
    Ok(())
}

pub async fn admin_create(
    config: Config,
    email: &str,
    role: &str,
    password: Option<String>,
) -> anyhow::Result<()> {
    let _ = (config, email, role, password);
    anyhow::bail!("`onda admin create` is not built yet")
}
