//! Which provider answers a child, and what happens when one fails.
//!
//! - **Order**: `AI_PROVIDER_PREFERENCE` first, the others as fallbacks; unset, the configured cloud
//!   providers in the order given (OpenAI, then Anthropic) and the local ones last.
//! - **Consent**: a cloud provider is used only when the family gave cloud-AI consent; the local model
//!   always may answer.
//! - **Privacy**: a cloud provider gets the request with the child's name and personal information
//!   replaced ([`super::pii`]), and its reply gets the child's name back. The local model gets the
//!   request as it is (nothing leaves the machine).
//! - **Fall-over**: [`ChatRouter::open_stream`] returns only once the first piece of text has arrived
//!   (within the first-token timeout), so any failure before the child could have seen anything (an
//!   HTTP error, a timeout, a malformed or dropped stream, an empty reply) moves on to the next provider.
//!   After that, the stream enforces the whole-reply timeout and reports failures as `Err` items.
//! - **Circuit breaker**: after a run of consecutive failures a provider is skipped for a cool-down,
//!   then one trial request is let through (half-open): a success closes the breaker, a failure opens
//!   it again.
//!
//! Failures are logged with the provider's name and the kind of error only, never message text.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;

use super::pii::{restore_name, scrub_request};
use super::{AnthropicProvider, AnthropicSettings, OpenAiProvider, OpenAiSettings};
use super::{ChatProvider, ChatRequest, DeltaStream, ProviderError, ProviderName};
use crate::clock::Clock;
use crate::config::Config;

/// How long a provider may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a connection to a cloud provider.
    pub connect: Duration,
    /// From the request to the first piece of text (the child is waiting with nothing on screen).
    pub first_token: Duration,
    /// From the request to the end of the reply.
    pub whole_reply: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(15),
            whole_reply: Duration::from_secs(60),
        }
    }
}

/// When a failing provider is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long an open breaker skips its provider before one trial request.
    pub cool_down: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self { failures_to_open: 3, cool_down: Duration::from_secs(30) }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RouterSettings {
    pub timeouts: Timeouts,
    pub breaker: BreakerSettings,
}

/// A provider's circuit breaker, as seen from outside (health checks, tests).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// In use; counts the failures in a row.
    Closed { consecutive_failures: u32 },
    /// Skipped until this time (Unix ms).
    Open { until_ms: i64 },
    /// One trial request started at this time (Unix ms); others skip the provider meanwhile.
    HalfOpen { trial_started_ms: i64 },
}

#[derive(Debug)]
struct Breaker {
    state: BreakerState,
    settings: BreakerSettings,
}

impl Breaker {
    fn cool_down_ms(&self) -> i64 {
        i64::try_from(self.settings.cool_down.as_millis()).unwrap_or(i64::MAX)
    }

    /// Whether a request may go to the provider now (moving an expired open breaker to half-open).
    fn allow(&mut self, now_ms: i64) -> bool {
        match self.state {
            BreakerState::Closed { .. } => true,
            BreakerState::Open { until_ms } if now_ms < until_ms => false,
            // A trial that never reported back (its caller went away) does not block forever.
            BreakerState::HalfOpen { trial_started_ms }
                if now_ms.saturating_sub(trial_started_ms) < self.cool_down_ms() =>
            {
                false
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => {
                self.state = BreakerState::HalfOpen { trial_started_ms: now_ms };
                true
            }
        }
    }

    fn success(&mut self) {
        self.state = BreakerState::Closed { consecutive_failures: 0 };
    }

    fn failure(&mut self, now_ms: i64) {
        let open = BreakerState::Open { until_ms: now_ms.saturating_add(self.cool_down_ms()) };
        self.state = match self.state {
            BreakerState::Closed { consecutive_failures } => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= self.settings.failures_to_open.max(1) {
                    open
                } else {
                    BreakerState::Closed { consecutive_failures: failures }
                }
            }
            BreakerState::Open { .. } | BreakerState::HalfOpen { .. } => open,
        };
    }
}

/// The breaker shared by the router and the streams it hands out.
#[derive(Debug, Clone)]
struct SharedBreaker {
    breaker: Arc<Mutex<Breaker>>,
    clock: Arc<dyn Clock>,
}

impl SharedBreaker {
    fn with<T>(&self, f: impl FnOnce(&mut Breaker, i64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut breaker = self.breaker.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut breaker, now)
    }
}

#[derive(Debug)]
struct Entry {
    provider: Arc<dyn ChatProvider>,
    breaker: SharedBreaker,
}

/// A reply that has started: its first delta has arrived and is the first item of `stream`.
pub struct OpenedStream {
    pub provider: ProviderName,
    pub model: String,
    pub stream: DeltaStream,
}

impl std::fmt::Debug for OpenedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStream").field("provider", &self.provider).field("model", &self.model).finish()
    }
}

/// Chooses providers in order, for one child at a time. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ChatRouter {
    entries: Vec<Entry>,
    timeouts: Timeouts,
}

fn label(name: ProviderName) -> &'static str {
    match name {
        ProviderName::Openai => "openai",
        ProviderName::Anthropic => "anthropic",
        ProviderName::Local => "local",
    }
}

/// The cloud providers the configuration enables: OpenAI with a key or a base URL (a self-hosted
/// compatible server may need no key), Anthropic with a key. Both count as cloud: a request to them
/// needs the family's cloud-AI consent and is scrubbed, whatever host the URL names.
pub fn cloud_providers_from_config(
    config: &Config,
    connect_timeout: Duration,
) -> Result<Vec<Arc<dyn ChatProvider>>, ProviderError> {
    let mut providers: Vec<Arc<dyn ChatProvider>> = Vec::new();
    if let Some(settings) = OpenAiSettings::from_config(config, connect_timeout) {
        providers.push(Arc::new(OpenAiProvider::new(settings)?));
    }
    if let Some(settings) = AnthropicSettings::from_config(config, connect_timeout) {
        providers.push(Arc::new(AnthropicProvider::new(settings)?));
    }
    Ok(providers)
}

impl ChatRouter {
    /// A router over `providers` (every one of them configured), ordered by `preference`: the
    /// preferred one first, then the others in the given order with local providers last.
    pub fn new(
        providers: Vec<Arc<dyn ChatProvider>>,
        preference: Option<ProviderName>,
        settings: RouterSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let mut providers = providers;
        providers.sort_by_key(|p| (Some(p.name()) != preference, !p.is_cloud()));
        let entries = providers
            .into_iter()
            .map(|provider| Entry {
                provider,
                breaker: SharedBreaker {
                    breaker: Arc::new(Mutex::new(Breaker {
                        state: BreakerState::Closed { consecutive_failures: 0 },
                        settings: settings.breaker,
                    })),
                    clock: clock.clone(),
                },
            })
            .collect();
        Self { entries, timeouts: settings.timeouts }
    }

    /// The cloud providers the configuration enables, then `local` (the embedded model, when it is
    /// available), ordered by `AI_PROVIDER_PREFERENCE`, with the default timeouts and breaker.
    pub fn from_config(
        config: &Config,
        local: Vec<Arc<dyn ChatProvider>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ProviderError> {
        let settings = RouterSettings::default();
        let mut providers = cloud_providers_from_config(config, settings.timeouts.connect)?;
        providers.extend(local);
        Ok(Self::new(providers, config.ai_provider_preference, settings, clock))
    }

    /// Every provider, in the order they are tried.
    pub fn order(&self) -> Vec<ProviderName> {
        self.entries.iter().map(|e| e.provider.name()).collect()
    }

    /// The providers that may answer a child of a family with (or without) cloud-AI consent, in order.
    pub fn eligible(&self, cloud_allowed: bool) -> Vec<ProviderName> {
        self.entries
            .iter()
            .filter(|e| cloud_allowed || !e.provider.is_cloud())
            .map(|e| e.provider.name())
            .collect()
    }

    /// The breaker of the first provider with this name.
    pub fn breaker_state(&self, name: ProviderName) -> Option<BreakerState> {
        let entry = self.entries.iter().find(|e| e.provider.name() == name)?;
        Some(entry.breaker.with(|b, _| b.state))
    }

    /// Starts a reply for a child: tries the eligible providers in order until one produces its first
    /// piece of text. Cloud providers get the request scrubbed of `child_first_name` and personal
    /// information, and their reply has the name put back.
    ///
    /// Errors: [`ProviderError::NotConfigured`] when no provider may answer this child (none
    /// configured, or only cloud ones and no cloud consent); otherwise the last provider's failure
    /// ([`ProviderError::CircuitOpen`] when every eligible provider was being skipped).
    pub async fn open_stream(
        &self,
        request: ChatRequest,
        child_first_name: &str,
        cloud_allowed: bool,
    ) -> Result<OpenedStream, ProviderError> {
        let eligible: Vec<&Entry> =
            self.entries.iter().filter(|e| cloud_allowed || !e.provider.is_cloud()).collect();
        if eligible.is_empty() {
            tracing::warn!(
                configured = self.entries.len(),
                cloud_allowed,
                "no chat provider may answer this child: none is configured, or only cloud ones without \
                 the family's cloud-AI consent"
            );
            return Err(ProviderError::NotConfigured);
        }
        let mut scrubbed = None;
        let mut last_failure = None;
        for entry in eligible {
            let provider = &entry.provider;
            let name = label(provider.name());
            if !entry.breaker.with(|b, now| b.allow(now)) {
                tracing::debug!(provider = name, "chat provider skipped: its circuit breaker is open");
                continue;
            }
            let (request, alias) = if provider.is_cloud() {
                let s = scrubbed.get_or_insert_with(|| scrub_request(&request, child_first_name));
                (s.request.clone(), s.alias.clone())
            } else {
                (request.clone(), None)
            };
            let deadline = Instant::now() + self.timeouts.whole_reply;
            let first = async {
                let mut stream = provider.stream(request).await?;
                if let Some(alias) = alias {
                    stream = restore_name(stream, alias);
                }
                loop {
                    match stream.next().await {
                        Some(Ok(text)) if text.is_empty() => {}
                        Some(Ok(text)) => return Ok((text, stream)),
                        Some(Err(err)) => return Err(err),
                        None => return Err(ProviderError::Protocol("an empty reply".into())),
                    }
                }
            };
            let outcome = match tokio::time::timeout(self.timeouts.first_token, first).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ProviderError::Timeout("the first token")),
            };
            match outcome {
                Ok((text, rest)) => {
                    entry.breaker.with(|b, _| b.success());
                    tracing::debug!(provider = name, "chat reply started");
                    return Ok(OpenedStream {
                        provider: provider.name(),
                        model: provider.model(),
                        stream: guard(provider.name(), text, rest, deadline, entry.breaker.clone()),
                    });
                }
                Err(err) => {
                    entry.breaker.with(|b, now| b.failure(now));
                    tracing::warn!(
                        provider = name,
                        error = err.kind(),
                        status = match err {
                            ProviderError::Status(code) => Some(code),
                            _ => None,
                        },
                        "chat provider failed before its reply began; trying the next"
                    );
                    last_failure = Some(err);
                }
            }
        }
        Err(last_failure.unwrap_or(ProviderError::CircuitOpen))
    }
}

/// The rest of a started reply: `first`, then `rest` until the deadline; a failure is reported once as
/// an `Err` item (and to the breaker), and ends the stream.
fn guard(
    name: ProviderName,
    first: String,
    rest: DeltaStream,
    deadline: Instant,
    breaker: SharedBreaker,
) -> DeltaStream {
    struct State {
        first: Option<String>,
        rest: DeltaStream,
        done: bool,
    }
    let state = State { first: Some(first), rest, done: false };
    futures::stream::unfold(state, move |mut s| {
        let breaker = breaker.clone();
        async move {
            if let Some(first) = s.first.take() {
                return Some((Ok(first), s));
            }
            if s.done {
                return None;
            }
            let failure = match tokio::time::timeout_at(deadline, s.rest.next()).await {
                Ok(Some(Ok(text))) => return Some((Ok(text), s)),
                Ok(None) => return None,
                Ok(Some(Err(err))) => err,
                Err(_) => ProviderError::Timeout("the whole reply"),
            };
            s.done = true;
            breaker.with(|b, now| b.failure(now));
            tracing::warn!(provider = label(name), error = failure.kind(), "chat provider failed mid-reply");
            Some((Err(failure), s))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker {
            state: BreakerState::Closed { consecutive_failures: 0 },
            settings: BreakerSettings { failures_to_open: 3, cool_down: Duration::from_secs(30) },
        }
    }

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_then_lets_one_trial_through() {
        let mut b = breaker();
        b.failure(0);
        b.failure(1);
        b.success();
        b.failure(2);
        b.failure(3);
        assert!(b.allow(3), "two failures in a row keep it closed");
        b.failure(4);
        assert_eq!(b.state, BreakerState::Open { until_ms: 30_004 });
        assert!(!b.allow(30_003));
        assert!(b.allow(30_004), "the cool-down is over: one trial");
        assert!(!b.allow(30_005), "only one trial at a time");
        b.failure(30_010);
        assert_eq!(b.state, BreakerState::Open { until_ms: 60_010 }, "a failed trial opens it again");
        assert!(b.allow(60_010));
        b.success();
        assert_eq!(b.state, BreakerState::Closed { consecutive_failures: 0 });
    }

    #[test]
    fn an_abandoned_trial_does_not_block_forever() {
        let mut b = breaker();
        b.state = BreakerState::HalfOpen { trial_started_ms: 0 };
        assert!(!b.allow(29_999));
        assert!(b.allow(30_000));
    }
}
