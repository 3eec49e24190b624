//! Chat providers and the router against fake OpenAI and Anthropic servers speaking the real wire
//! protocols on 127.0.0.1: the request format, streaming, order, consent, privacy, fall-over and the
//! circuit breaker. (No database is needed: these run once, not per backend.)

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use onda::clock::ManualClock;
use onda::config::ProviderName;
use onda::providers::chat::testing::{
    FAKE_ANTHROPIC_KEY, FAKE_ANTHROPIC_MODEL, FAKE_OPENAI_KEY, FAKE_OPENAI_MODEL, FakeAnthropic,
    FakeChatServer, FakeOpenAi, FakeReply, ScriptedProvider, WireStyle,
};
use onda::providers::chat::{
    BreakerSettings, BreakerState, ChatMessage, ChatProvider, ChatRequest, ChatRole, ChatRouter, DeltaStream,
    OpenedStream, ProviderError, RouterSettings, Timeouts,
};
use onda::{Config, clock::Clock};

const CHILD: &str = "Mia";
const EMAIL: &str = "mia.jones@example.com";
const PHONE: &str = "555-867-5309";

fn request() -> ChatRequest {
    ChatRequest {
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are Pip the raccoon, talking with Mia (age 7-9)."),
            ChatMessage::new(ChatRole::Assistant, "Hi Mia! I'm Pip, an AI buddy."),
            ChatMessage::new(
                ChatRole::User,
                format!("hi im mia, my email is {EMAIL} and call me at {PHONE}"),
            ),
        ],
        max_tokens: 120,
        temperature: 0.6,
    }
}

/// Generous timeouts: the tests that need a timeout to fire set their own.
fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        first_token: Duration::from_secs(10),
        whole_reply: Duration::from_secs(20),
    }
}

fn router_with(
    providers: Vec<Arc<dyn ChatProvider>>,
    preference: Option<ProviderName>,
    timeouts: Timeouts,
) -> (ChatRouter, Arc<ManualClock>) {
    let clock = ManualClock::new(1_700_000_000_000);
    let settings = RouterSettings {
        timeouts,
        breaker: BreakerSettings { failures_to_open: 3, cool_down: Duration::from_secs(30) },
    };
    (ChatRouter::new(providers, preference, settings, clock.clone() as Arc<dyn Clock>), clock)
}

async fn fakes() -> (FakeOpenAi, FakeAnthropic) {
    let openai = FakeChatServer::openai().await;
    let anthropic = FakeChatServer::anthropic().await;
    openai.always(FakeReply::text(&["Hello", " from", " OpenAI"]));
    anthropic.always(FakeReply::text(&["Hello", " from", " Anthropic"]));
    (openai, anthropic)
}

fn both(openai: &FakeOpenAi, anthropic: &FakeAnthropic) -> Vec<Arc<dyn ChatProvider>> {
    vec![openai.provider(timeouts().connect), anthropic.provider(timeouts().connect)]
}

/// Every item of a reply: the deltas, and the error that ended it (if any).
async fn items(mut stream: DeltaStream) -> (Vec<String>, Option<ProviderError>) {
    let mut deltas = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(delta) => deltas.push(delta),
            Err(err) => return (deltas, Some(err)),
        }
    }
    (deltas, None)
}

async fn reply(opened: OpenedStream) -> String {
    let (deltas, error) = items(opened.stream).await;
    assert_eq!(error, None, "the reply ends cleanly");
    deltas.concat()
}

#[tokio::test]
async fn openai_requests_use_the_chat_completions_wire_format_and_stream_in_order() {
    let (openai, _anthropic) = fakes().await;
    let (router, _) = router_with(vec![openai.provider(timeouts().connect)], None, timeouts());

    let opened = router.open_stream(request(), CHILD, true).await.expect("a reply");
    assert_eq!(opened.provider, ProviderName::Openai);
    assert_eq!(opened.model, FAKE_OPENAI_MODEL);
    let (deltas, error) = items(opened.stream).await;
    assert_eq!(deltas, ["Hello", " from", " OpenAI"]);
    assert_eq!(error, None);

    let sent = openai.requests();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {FAKE_OPENAI_KEY}").as_str()));
    assert!(sent.header("content-type").is_some_and(|v| v.starts_with("application/json")));
    assert_eq!(sent.header("accept"), Some("text/event-stream"));
    assert_eq!(sent.body["model"], FAKE_OPENAI_MODEL);
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["max_tokens"], 120);
    assert!((sent.body["temperature"].as_f64().expect("a temperature") - 0.6).abs() < 1e-6);
    let messages = sent.body["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().expect("a role")).collect();
    assert_eq!(roles, ["system", "assistant", "user"], "the system prompt is the first message");
    assert!(messages[0]["content"].as_str().expect("text").starts_with("You are Pip the raccoon"));
}

#[tokio::test]
async fn anthropic_requests_use_the_messages_wire_format_with_the_system_prompt_apart() {
    let (_openai, anthropic) = fakes().await;
    let (router, _) = router_with(vec![anthropic.provider(timeouts().connect)], None, timeouts());

    let opened = router.open_stream(request(), CHILD, true).await.expect("a reply");
    assert_eq!(opened.provider, ProviderName::Anthropic);
    assert_eq!(opened.model, FAKE_ANTHROPIC_MODEL);
    let (deltas, error) = items(opened.stream).await;
    assert_eq!(deltas, ["Hello", " from", " Anthropic"]);
    assert_eq!(error, None);

    let sent = anthropic.requests();
    assert_eq!(sent.len(), 1);
    let sent = &sent[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(FAKE_ANTHROPIC_KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["model"], FAKE_ANTHROPIC_MODEL);
    assert_eq!(sent.body["stream"], true);
    assert_eq!(sent.body["max_tokens"], 120);
    assert!(sent.body["system"].as_str().expect("a system field").starts_with("You are Pip the raccoon"));
    let messages = sent.body["messages"].as_array().expect("messages");
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().expect("a role")).collect();
    assert_eq!(roles, ["user", "assistant", "user"], "no system message; the user speaks first");
}

#[tokio::test]
async fn deltas_survive_crlf_comments_and_events_cut_into_tiny_pieces() {
    let (openai, anthropic) = fakes().await;
    let deltas = ["Hé", "llo 🦝", " wörld", "\n\nnew line"];
    let style = WireStyle { crlf: true, piece_bytes: Some(3), comments: true };
    for fake in [&openai, &anthropic] {
        fake.set_style(style);
        fake.always(FakeReply::text(&deltas));
        let (router, _) = router_with(vec![fake.provider(timeouts().connect)], None, timeouts());
        let opened = router.open_stream(request(), CHILD, true).await.expect("a reply");
        let (got, error) = items(opened.stream).await;
        assert_eq!(error, None);
        assert_eq!(got.concat(), deltas.concat(), "{:?}", opened.provider);
    }
}

#[tokio::test]
async fn the_order_follows_ai_provider_preference_with_local_last_by_default() {
    let (openai, anthropic) = fakes().await;
    let local = ScriptedProvider::new(ProviderName::Local, FakeReply::text(&["local"]));
    let all = |o: &FakeOpenAi, a: &FakeAnthropic| -> Vec<Arc<dyn ChatProvider>> {
        vec![local.clone(), a.provider(timeouts().connect), o.provider(timeouts().connect)]
    };
    use ProviderName::*;
    let cases = [
        (None, [Anthropic, Openai, Local]),
        (Some(Openai), [Openai, Anthropic, Local]),
        (Some(Anthropic), [Anthropic, Openai, Local]),
        (Some(Local), [Local, Anthropic, Openai]),
    ];
    for (preference, order) in cases {
        let (router, _) = router_with(all(&openai, &anthropic), preference, timeouts());
        assert_eq!(router.order(), order, "preference {preference:?}");
        let opened = router.open_stream(request(), CHILD, true).await.expect("a reply");
        assert_eq!(opened.provider, order[0], "the first in order answers");
    }
    // With the built-in list order (OpenAI before Anthropic), unset means OpenAI first.
    let (router, _) = router_with(both(&openai, &anthropic), None, timeouts());
    assert_eq!(router.order(), [Openai, Anthropic]);
}

#[tokio::test]
async fn without_cloud_consent_the_cloud_is_never_called() {
    let (openai, anthropic) = fakes().await;
    let local = ScriptedProvider::new(ProviderName::Local, FakeReply::text(&["Hi ", "Mia", "!"]));
    let mut providers = both(&openai, &anthropic);
    providers.push(local.clone());
    let (router, _) = router_with(providers, Some(ProviderName::Openai), timeouts());

    assert_eq!(router.eligible(false), [ProviderName::Local]);
    let opened = router.open_stream(request(), CHILD, false).await.expect("the local model answers");
    assert_eq!(opened.provider, ProviderName::Local);
    assert_eq!(reply(opened).await, "Hi Mia!");
    assert_eq!(openai.request_count(), 0);
    assert_eq!(anthropic.request_count(), 0);
    // The local model never leaves the machine: it gets the conversation as it is.
    let asked = local.requests();
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].messages, request().messages);

    // Without a local model, a child without cloud consent gets a clear error, still no cloud call.
    let (router, _) = router_with(both(&openai, &anthropic), None, timeouts());
    let err = router.open_stream(request(), CHILD, false).await.expect_err("no provider may answer");
    assert_eq!(err, ProviderError::NotConfigured);
    assert_eq!(openai.request_count(), 0);
    assert_eq!(anthropic.request_count(), 0);
}

#[tokio::test]
async fn the_cloud_never_sees_the_childs_name_or_pii_and_the_reply_says_the_name() {
    let (openai, anthropic) = fakes().await;
    // The model answers with the pseudonym, cut across deltas; the child reads their own name.
    let answer = FakeReply::text(&["Great job, Qu", "inn! ", "You rock, QUINN", "."]);
    openai.always(answer.clone());
    anthropic.always(answer);
    for fake in [&openai, &anthropic] {
        let (router, _) = router_with(vec![fake.provider(timeouts().connect)], None, timeouts());
        let opened = router.open_stream(request(), CHILD, true).await.expect("a reply");
        assert_eq!(reply(opened).await, "Great job, Mia! You rock, Mia.");

        let sent = fake.requests().pop().expect("one request");
        let all = sent.all_text().to_lowercase();
        for secret in [CHILD, EMAIL, PHONE, "867"] {
            assert!(!all.contains(&secret.to_lowercase()), "{secret} reached the cloud");
        }
        assert!(sent.body.to_string().contains("talking with Quinn (age 7-9)"), "the name is a pseudonym");
        assert!(sent.body.to_string().contains("[email]") && sent.body.to_string().contains("[phone]"));
    }
}

/// A provider that fails before its first delta, in each way the issue names.
fn failures_before_the_first_delta() -> Vec<FakeReply> {
    vec![
        FakeReply::Status(500),
        FakeReply::Status(429),
        FakeReply::Hang,
        FakeReply::HangAfter(vec![]),
        FakeReply::Malformed,
        FakeReply::DropAfter(vec![]),
        FakeReply::Empty,
    ]
}

#[tokio::test]
async fn a_failure_before_the_reply_starts_falls_over_to_the_other_cloud_provider_and_back() {
    let short = Timeouts { first_token: Duration::from_millis(300), ..timeouts() };
    for (preferred, failing_is_openai) in [(ProviderName::Openai, true), (ProviderName::Anthropic, false)] {
        for failure in failures_before_the_first_delta() {
            let (openai, anthropic) = fakes().await;
            let (failing, healthy) =
                if failing_is_openai { (&openai, &anthropic) } else { (&anthropic, &openai) };
            failing.always(failure.clone());
            let (router, _) = router_with(both(&openai, &anthropic), Some(preferred), short);

            let opened =
                router.open_stream(request(), CHILD, true).await.expect("the other provider answers");
            assert_ne!(opened.provider, preferred, "{failure:?} falls over");
            let text = reply(opened).await;
            assert!(text.starts_with("Hello from"), "{failure:?}: the whole reply of the fallback, {text:?}");
            assert_eq!(failing.request_count(), 1, "{failure:?}");
            assert_eq!(healthy.request_count(), 1, "{failure:?}");
        }
    }
}

#[tokio::test]
async fn when_every_provider_fails_the_error_names_no_provider_text() {
    let (openai, anthropic) = fakes().await;
    openai.always(FakeReply::Status(500));
    anthropic.always(FakeReply::Status(503));
    let (router, _) = router_with(both(&openai, &anthropic), None, timeouts());
    let err = router.open_stream(request(), CHILD, true).await.expect_err("nobody answers");
    assert_eq!(err, ProviderError::Status(503), "the last failure");
    assert!(!err.to_string().contains("fake server"), "the provider's error text is not passed on");
}

#[tokio::test]
async fn a_failure_after_the_reply_started_is_an_error_item_not_a_fall_over() {
    let (openai, anthropic) = fakes().await;
    openai.always(FakeReply::DropAfter(vec!["Once upon".into(), " a time".into()]));
    let (router, _) = router_with(both(&openai, &anthropic), None, timeouts());
    let opened = router.open_stream(request(), CHILD, true).await.expect("the reply started");
    assert_eq!(opened.provider, ProviderName::Openai);
    let (deltas, error) = items(opened.stream).await;
    assert_eq!(deltas, ["Once upon", " a time"]);
    assert_eq!(error, Some(ProviderError::Dropped));
    assert_eq!(anthropic.request_count(), 0);

    // A reply that stalls is cut at the whole-reply timeout.
    anthropic.always(FakeReply::HangAfter(vec!["Hmm".into()]));
    let short = Timeouts { whole_reply: Duration::from_millis(400), ..timeouts() };
    let (router, _) = router_with(vec![anthropic.provider(short.connect)], None, short);
    let opened = router.open_stream(request(), CHILD, true).await.expect("the reply started");
    let (deltas, error) = items(opened.stream).await;
    assert_eq!(deltas, ["Hmm"]);
    assert_eq!(error, Some(ProviderError::Timeout("the whole reply")));
}

#[tokio::test]
async fn the_circuit_breaker_skips_a_failing_provider_for_the_cool_down_then_tries_again() {
    let (openai, anthropic) = fakes().await;
    openai.always(FakeReply::Status(500));
    let (router, clock) = router_with(both(&openai, &anthropic), None, timeouts());

    for attempt in 1..=3 {
        let opened = router.open_stream(request(), CHILD, true).await.expect("the fallback answers");
        assert_eq!(opened.provider, ProviderName::Anthropic);
        assert_eq!(openai.request_count(), attempt);
    }
    assert!(matches!(router.breaker_state(ProviderName::Openai), Some(BreakerState::Open { .. })));

    // Open: OpenAI is not even asked.
    let opened = router.open_stream(request(), CHILD, true).await.expect("the fallback answers");
    assert_eq!(opened.provider, ProviderName::Anthropic);
    assert_eq!(openai.request_count(), 3);
    clock.advance_ms(29_999);
    router.open_stream(request(), CHILD, true).await.expect("the fallback answers");
    assert_eq!(openai.request_count(), 3);

    // Half-open after the cool-down: one trial, which fails and opens the breaker again.
    clock.advance_ms(1);
    router.open_stream(request(), CHILD, true).await.expect("the fallback answers");
    assert_eq!(openai.request_count(), 4);
    assert!(matches!(router.breaker_state(ProviderName::Openai), Some(BreakerState::Open { .. })));
    router.open_stream(request(), CHILD, true).await.expect("the fallback answers");
    assert_eq!(openai.request_count(), 4);

    // OpenAI recovers: the next trial succeeds and closes the breaker.
    openai.always(FakeReply::text(&["Back", " again"]));
    clock.advance_ms(30_000);
    let opened = router.open_stream(request(), CHILD, true).await.expect("OpenAI answers");
    assert_eq!(opened.provider, ProviderName::Openai);
    assert_eq!(reply(opened).await, "Back again");
    assert_eq!(
        router.breaker_state(ProviderName::Openai),
        Some(BreakerState::Closed { consecutive_failures: 0 })
    );

    // When every provider is skipped, the error says so.
    anthropic.always(FakeReply::Status(500));
    openai.always(FakeReply::Status(500));
    for _ in 0..3 {
        let _ = router.open_stream(request(), CHILD, true).await;
    }
    let err = router.open_stream(request(), CHILD, true).await.expect_err("all open");
    assert_eq!(err, ProviderError::CircuitOpen);
}

#[tokio::test]
async fn the_router_is_built_from_configuration() {
    let (openai, anthropic) = fakes().await;
    let mut vars = openai.env_vars();
    vars.extend(anthropic.env_vars());
    vars.push(("AI_PROVIDER_PREFERENCE".into(), "anthropic".into()));
    let config = Config::from_vars(vars).expect("valid configuration");
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let local: Arc<dyn ChatProvider> = ScriptedProvider::new(ProviderName::Local, FakeReply::text(&["x"]));
    let clock = ManualClock::new(0) as Arc<dyn Clock>;
    let router = ChatRouter::from_config(&config, vec![local], clock.clone()).expect("a router");
    assert_eq!(router.order(), [ProviderName::Anthropic, ProviderName::Openai, ProviderName::Local]);
    let opened = router.open_stream(request(), CHILD, true).await.expect("a reply");
    assert_eq!((opened.provider, opened.model.as_str()), (ProviderName::Anthropic, FAKE_ANTHROPIC_MODEL));
    assert_eq!(reply(opened).await, "Hello from Anthropic");

    // A self-hosted OpenAI-compatible server needs no key: no Authorization header is sent.
    let vars = vec![("OPENAI_BASE_URL".to_string(), openai.base_url())];
    let config = Config::from_vars(vars).expect("valid configuration");
    let router = ChatRouter::from_config(&config, vec![], clock.clone()).expect("a router");
    assert_eq!(router.order(), [ProviderName::Openai]);
    router.open_stream(request(), CHILD, true).await.expect("a reply");
    let sent = openai.requests().pop().expect("a request");
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(sent.body["model"], "gpt-4o-mini", "the default model");

    // Nothing configured: no provider at all.
    let config = Config::from_vars(Vec::<(String, String)>::new()).expect("valid configuration");
    let router = ChatRouter::from_config(&config, vec![], clock).expect("a router");
    assert!(router.order().is_empty());
    assert_eq!(
        router.open_stream(request(), CHILD, true).await.expect_err("none"),
        ProviderError::NotConfigured
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_a_connect_failure_and_falls_over() {
    let (openai, anthropic) = fakes().await;
    // A port nothing listens on: take one, then free it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    let dead = onda::providers::chat::OpenAiProvider::new(onda::providers::chat::OpenAiSettings {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
        model: "m".into(),
        connect_timeout: Duration::from_secs(2),
    })
    .expect("a client");
    let (router, _) =
        router_with(vec![Arc::new(dead), anthropic.provider(timeouts().connect)], None, timeouts());
    let opened = router.open_stream(request(), CHILD, true).await.expect("the fallback answers");
    assert_eq!(opened.provider, ProviderName::Anthropic);
    drop(openai);
}

/// The embedded model as a provider, for real: `./scripts/test` fetches it into the models folder first.
/// Without the file (a plain `cargo test` on a fresh machine) the test says so and checks nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_model_streams_a_reply_and_stops_when_no_one_listens() {
    use onda::providers::chat::local::{LocalProvider, model_path};
    let config = Config::from_vars(std::env::vars()).expect("configuration");
    let path = model_path(&config);
    if !path.is_file() {
        eprintln!("skipped: no local model at {} (run `onda models fetch`)", path.display());
        return;
    }
    let provider = tokio::task::spawn_blocking(move || LocalProvider::load(&path))
        .await
        .expect("load task")
        .expect("the local model loads");
    assert_eq!(provider.name(), ProviderName::Local);
    assert!(!provider.is_cloud());
    let request = ChatRequest {
        messages: vec![
            ChatMessage::new(ChatRole::System, "You are a friendly robot. Answer in one short sentence."),
            ChatMessage::new(ChatRole::User, "What colour is the sky on a sunny day?"),
        ],
        max_tokens: 24,
        temperature: 0.0,
    };
    let mut stream = provider.stream(request.clone()).await.expect("stream opens");
    let mut text = String::new();
    while let Some(delta) = stream.next().await {
        text.push_str(&delta.expect("delta"));
    }
    assert!(!text.trim().is_empty(), "the model said something");
    // A second request with the same system prompt reuses its computed prefix and answers the same
    // (greedy decoding).
    let mut again = String::new();
    let mut stream = provider.stream(request.clone()).await.expect("stream opens");
    while let Some(delta) = stream.next().await {
        again.push_str(&delta.expect("delta"));
    }
    assert_eq!(text, again);
    // Dropping the stream after the first delta ends the generation instead of blocking the model.
    let mut stream = provider.stream(request.clone()).await.expect("stream opens");
    assert!(stream.next().await.is_some());
    drop(stream);
    let mut stream = provider.stream(request).await.expect("the model is free again");
    assert!(stream.next().await.is_some());
}
