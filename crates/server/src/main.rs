use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = onda::cli::Cli::parse();
    let config = match onda::Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("onda: {err}");
            return ExitCode::from(2);
        }
    };
    onda::telemetry::init(&config);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    match onda::cli::run(cli, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("onda: {err:#}");
            ExitCode::FAILURE
        }
    }
}
