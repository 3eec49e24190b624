//! The rules of the product: accounts, consent, children, PIN. Called by the HTTP layer and the CLI
//! alike; reaches storage and providers only through [`Context`].

pub mod access;
pub mod accounts;
pub mod audit;
pub mod children;
pub mod consent;
pub mod demo;
mod error;
pub mod health;
pub mod pin;

use std::net::SocketAddr;
use std::sync::Arc;

pub use error::{DomainError, DomainResult};

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::providers::email::{Mailer, OutboxMailer};
use crate::storage::{DatabaseLocation, Store};

/// Everything the domain needs from the outside, built once at start-up.
#[derive(Clone, Debug)]
pub struct Context {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub mailer: Arc<dyn Mailer>,
    /// The public base URL, for links in emails.
    pub base_url: Arc<str>,
}

impl Context {
    /// Opens (and migrates) the configured database and wires the embedded or configured providers.
    pub async fn open(config: Arc<Config>, bound: SocketAddr) -> anyhow::Result<Self> {
        let location = DatabaseLocation::from_config(&config);
        let store = Store::open(&location)
            .await
            .map_err(|e| anyhow::anyhow!("opening the {} database failed: {e:#}", location.backend_name()))?;
        let mailer: Arc<dyn Mailer> = Arc::new(OutboxMailer::new(config.outbox_dir()));
        let base_url = config.public_base_url(bound);
        Ok(Self { config, store, clock: Arc::new(SystemClock), mailer, base_url: base_url.into() })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}
