//! Operator subcommands: migrate, backup, restore, health-check.

use std::path::Path;

use crate::config::Config;

pub async fn migrate(config: Config) -> anyhow::Result<()> {
    let _ = config;
    anyhow::bail!("`onda migrate` is not built yet")
}

pub async fn backup(config: Config, path: &Path) -> anyhow::Result<()> {
    let _ = (config, path);
    anyhow::bail!("`onda backup` is not built yet")
}

pub async fn restore(config: Config, path: &Path, force: bool) -> anyhow::Result<()> {
    let _ = (config, path, force);
    anyhow::bail!("`onda restore` is not built yet")
}

pub async fn health_check(config: Config, url: Option<&str>) -> anyhow::Result<()> {
    let _ = (config, url);
    anyhow::bail!("`onda health-check` is not built yet")
}
