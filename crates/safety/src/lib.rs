//! Onda's safety engine: `assess(text, &Context) -> Verdict`.
//!
//! Two layers run on every message. Layer 1 ([`normalize`], [`lexicon`], [`pii`]) normalises the text
//! against evasion and matches curated lexicons, context patterns and PII detectors in microseconds.
//! Layer 2 is a learned scorer behind the [`LearnedScorer`] trait. [`policy`] maps the evidence to a
//! level (0-4) and an action. The core does no IO and no async; [`eval`] measures the engine on labeled
//! data.
//!
//! ```
//! use onda_safety::{assess, Action, Context};
//!
//! let verdict = assess("i wnt to k1ll my self", &Context::child());
//! assert_eq!(verdict.level, 4);
//! assert_eq!(verdict.action, Action::Crisis);
//! assert_eq!(assess("I killed it on my spelling test!", &Context::child()).level, 0);
//! ```

mod bytes;
pub mod embedding;
pub mod engine;
pub mod eval;
pub mod evasion;
pub mod lexical;
pub mod lexicon;
pub mod normalize;
pub mod offensive;
pub mod pii;
pub mod policy;
pub mod question;
pub mod training;
pub mod types;

use std::sync::OnceLock;

pub use embedding::{EmbeddingHead, EmbeddingScorer, TextEmbedder};
pub use engine::{
    Engine, EngineConfig, EngineError, LearnedScorer, LearnedScores, RuleFindings, ScorerError,
};
pub use lexicon::Lexicons;
pub use types::{Action, Category, CategoryScores, Context, PiiKind, PiiSpan, Role, Turn, Verdict};

/// Assesses a message with the built-in lexicons and no learned scorer (layer 1 only), fail-closed.
pub fn assess(text: &str, ctx: &Context) -> Verdict {
    static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
    match ENGINE.get_or_init(|| Engine::builtin().ok()) {
        Some(engine) => engine.assess(text, ctx),
        None => Verdict::blocking("safety check failed"),
    }
}
