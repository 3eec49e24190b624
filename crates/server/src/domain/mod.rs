//! The rules of the product: accounts, consent, children, PIN. Called by the HTTP layer and the CLI
//! alike; reaches storage and providers only through [`Context`].

pub mod access;
pub mod accounts;
pub mod audit;
pub mod children;
pub mod consent;
pub mod conversation;
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
    /// The safety engine, built once at start-up.
    pub safety: Arc<onda_safety::Engine>,
    /// Where the buddy's replies come from (the provider router); `None`: no model is available, and
    /// the buddy says so kindly. Crisis and blocked answers never need one.
    pub replies: Option<Arc<dyn conversation::ReplySource>>,
    /// One chat turn at a time per child.
    pub chat_gate: Arc<conversation::ChatGate>,
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
        let safety = safety_engine(config.safety_layer_redundancy, &config.models_dir)?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let local: Vec<_> =
            crate::providers::chat::local::LocalProvider::from_config(&config).await.into_iter().collect();
        let router = crate::providers::chat::router::ChatRouter::from_config(&config, local, clock.clone())
            .map_err(|e| anyhow::anyhow!("the chat providers could not start: {e}"))?;
        Ok(Self {
            config,
            store,
            clock,
            mailer,
            base_url: base_url.into(),
            safety,
            replies: Some(Arc::new(router)),
            chat_gate: Arc::default(),
        })
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The safety engine with the built-in lexicons. Compiling them takes a moment, so the engine is built
/// once per process for each redundancy setting and embedding model (the only thing it reads from
/// `models_dir`), and shared. A failure stops start-up: Onda never runs without its safety check.
pub fn safety_engine(
    require_redundancy: bool,
    models_dir: &std::path::Path,
) -> anyhow::Result<Arc<onda_safety::Engine>> {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};
    type Engines = Mutex<HashMap<(bool, Option<PathBuf>), Arc<onda_safety::Engine>>>;
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    let key = (require_redundancy, onda_models::embed::embedding_model_in(models_dir));
    // Held while building, so that concurrent callers build each engine once.
    let mut engines = ENGINES.get_or_init(Engines::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(engine) = engines.get(&key) {
        return Ok(engine.clone());
    }
    let config = onda_safety::EngineConfig { require_redundancy, ..Default::default() };
    // Layer 2's embedding head runs when the embedding model has been fetched; without it the rules and
    // the lexical model still run (health reports the difference).
    let scorer: Option<Box<dyn onda_safety::LearnedScorer>> = match onda_models::safety_scorer(models_dir) {
        Ok(Some(scorer)) => Some(Box::new(scorer)),
        Ok(None) => {
            tracing::warn!(models_dir = %models_dir.display(), "the embedding model is missing: safety layer 2 runs the lexical model only (run `onda models fetch`)");
            None
        }
        Err(e) => anyhow::bail!("the safety engine's embedding model could not load: {e}"),
    };
    let engine = onda_safety::Engine::builtin()
        .map_err(|e| anyhow::anyhow!("the safety engine could not start: {e}"))?
        .with_scorer(scorer)
        .with_config(config);
    let engine = Arc::new(engine);
    engines.insert(key, engine.clone());
    Ok(engine)
}
