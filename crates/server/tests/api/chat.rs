//! Buddy chat over HTTP: safety on both sides, whisper mode, time limits, history, who may chat.

use std::sync::Arc;
use std::time::Duration;

use onda::domain::conversation::{ProviderSource, ScriptedProvider, Step};
use onda::providers::chat::{ChatRole, ProviderError};
use onda::storage::testing::Backend;
use onda::testing::Sse;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{PASSWORD, SseReader, TestApp, assert_problem};

backend_tests!(
    a_reply_streams_safe_sentences_and_is_stored,
    a_crisis_gets_the_human_answer_and_a_stored_event_before_any_model,
    a_serious_message_is_blocked_kindly_without_a_model,
    personal_information_is_redacted_before_storage_and_the_model,
    an_unsafe_sentence_never_reaches_the_child,
    sentences_checked_side_by_side_are_sent_in_order,
    a_provider_failure_ends_the_reply_kindly,
    whisper_mode_on_request_and_suggested_on_distress,
    the_session_limit_reminds_then_asks_for_a_break,
    quiet_hours_and_the_daily_limit_refuse_politely,
    limits_are_validated_and_kept_to_the_family,
    history_pages_this_kid_sessions_messages,
    only_a_kid_session_with_consent_may_chat,
    the_terminal_chat_runs_the_same_conversation,
    cloud_replies_need_cloud_consent_and_never_see_the_name,
);

const MINUTE: i64 = 60_000;

/// The reply text as the child sees it: every delta, concatenated.
fn reply_text(events: &[Sse]) -> String {
    events.iter().filter(|e| e.event == "delta").map(|e| e.data["text"].as_str().expect("text")).collect()
}

fn notices<'a>(events: &'a [Sse], kind: &str) -> Vec<&'a Sse> {
    events.iter().filter(|e| e.event == "notice" && e.data["kind"] == kind).collect()
}

fn done(events: &[Sse]) -> &Value {
    let last = events.last().expect("events");
    assert_eq!(last.event, "done", "the stream ends with done: {events:?}");
    &last.data
}

struct Family {
    app: TestApp,
    provider: Arc<ScriptedProvider>,
    parent: reqwest::Client,
    kid: reqwest::Client,
    child_id: String,
    family_id: String,
}

const REPLY: [&str; 4] = ["Dolphins are ", "very clever. They talk", " with clicks! Isn't that", " cool?"];

/// A parent with consent and a PIN, a child Mia (7, raccoon), and a second browser in kid mode for her.
async fn family(backend: Backend, vars: &[(&str, &str)]) -> Family {
    let provider = Arc::new(ScriptedProvider::instant(REPLY));
    let source = Arc::new(ProviderSource(provider.clone()));
    let app = TestApp::spawn_with_replies(backend, vars, Some(source)).await;
    family_in(app, provider, false).await
}

/// The same family in an app whose replies come from the configured providers.
async fn family_in(app: TestApp, provider: Arc<ScriptedProvider>, cloud_ai: bool) -> Family {
    let parent = TestApp::new_client();
    let email = "chat@example.com";
    let child_id = app.ready_family(&parent, email, cloud_ai).await;
    let kid = TestApp::new_client();
    app.start_kid_session(&kid, email, &child_id).await;
    let family_id =
        app.ctx.store.user_by_email(email).await.expect("user").expect("exists").family_id.expect("family");
    Family { app, provider, parent, kid, child_id, family_id }
}

impl Family {
    async fn open(&self, body: Value) -> SseReader {
        SseReader::new(self.app.post(&self.kid, "/api/chat", body).await)
    }

    async fn say(&self, text: &str) -> Vec<Sse> {
        self.open(json!({ "text": text })).await.all().await
    }

    async fn events(&self) -> Vec<onda::storage::SafetyEventRow> {
        self.app.ctx.store.safety_events_of_child(&self.child_id, 100).await.expect("events")
    }

    async fn message(&self, id: &str) -> onda::storage::MessageRow {
        self.app.ctx.store.message_by_id(id).await.expect("message").expect("stored")
    }

    /// Every message of the kid session's conversation, oldest first.
    async fn stored(&self) -> Vec<onda::storage::MessageRow> {
        let conversations =
            self.app.ctx.store.chat_sessions_of_child_since(&self.child_id, 0).await.expect("sessions");
        let conversation = &conversations.first().expect("a chat session").conversation_id;
        self.app.ctx.store.messages_after(conversation, 0).await.expect("messages")
    }
}

async fn a_reply_streams_safe_sentences_and_is_stored(backend: Backend) {
    let f = family(backend, &[]).await;
    f.provider.set_script(vec![
        Step::Text("Dolphins are ".into()),
        Step::Pause(Duration::from_millis(20)),
        Step::Text("very clever. They talk".into()),
        Step::Pause(Duration::from_millis(20)),
        Step::Text(" with clicks! Isn't that cool?".into()),
    ]);
    let events = f.say("Tell me about dolphins").await;
    assert_eq!(events[0].event, "verdict");
    assert_eq!(events[0].data, json!({ "level": 0, "action": "allow" }));
    // The first reply of a session says the buddy is an AI, first.
    let disclosure = notices(&events, "ai_disclosure");
    assert_eq!(disclosure.len(), 1);
    let disclosure_text = disclosure[0].data["text"].as_str().expect("text");
    assert!(disclosure_text.contains("AI buddy") && disclosure_text.contains("Mia"));
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["text"].as_str().expect("text"))
        .collect();
    assert_eq!(deltas[0], disclosure_text);
    assert_eq!(&deltas[1..], [" Dolphins are very clever.", " They talk with clicks!", " Isn't that cool?"]);
    let done = done(&events);
    assert_eq!(done["level"], 0);
    assert_eq!(done["provider"], "local");
    assert_eq!(done["whisper"], false);

    // What the model was asked: the persona, the child's first name and age band, the rules.
    let request = &f.provider.requests()[0];
    assert_eq!(request.messages[0].role, ChatRole::System);
    let prompt = &request.messages[0].content;
    assert!(prompt.contains("Mia") && prompt.contains("6 to 8") && prompt.contains("raccoon"));
    assert!(prompt.contains("Never ask for personal details") && prompt.contains("You are an AI"));
    assert_eq!(request.messages.last().map(|m| m.content.as_str()), Some("Tell me about dolphins"));

    let reply = f.message(done["messageId"].as_str().expect("id")).await;
    assert_eq!(reply.role, "assistant");
    assert_eq!(reply.text, reply_text(&events));
    assert_eq!(reply.provider.as_deref(), Some("local"));
    assert_eq!(reply.model.as_deref(), Some("scripted"));
    assert!(reply.first_token_ms.is_some() && reply.total_ms.is_some_and(|t| t >= 40), "{reply:?}");
    let stored = f.stored().await;
    assert_eq!(stored.len(), 2);
    assert_eq!((stored[0].role.as_str(), stored[0].text.as_str()), ("child", "Tell me about dolphins"));
    let verdict: Value = serde_json::from_str(&stored[0].verdict).expect("verdict JSON");
    assert_eq!(verdict["level"], 0);
    assert_eq!(verdict["action"], "allow");

    // The second reply has no disclosure, but remembers the first turn; asked, it says it is an AI.
    f.provider.set_script(vec![Step::Text("I am here to chat with you.".into())]);
    let events = f.say("Are you a real person?").await;
    assert!(notices(&events, "ai_disclosure").is_empty());
    let text = reply_text(&events);
    assert!(text.starts_with("I'm your raccoon buddy, and I'm an AI"), "{text}");
    let request = &f.provider.requests()[1];
    let contents: Vec<&str> = request.messages.iter().map(|m| m.content.as_str()).collect();
    assert!(contents.contains(&"Tell me about dolphins"));
    assert_eq!(contents.last(), Some(&"Are you a real person?"));
    assert!(f.events().await.is_empty());
}

async fn a_crisis_gets_the_human_answer_and_a_stored_event_before_any_model(backend: Backend) {
    let f = family(backend, &[]).await;
    let mut reader = f.open(json!({ "text": "i want to kill myself" })).await;
    let verdict = reader.next().await.expect("verdict");
    assert_eq!(verdict.event, "verdict");
    assert_eq!(verdict.data, json!({ "level": 4, "action": "crisis" }));
    let notice = reader.next().await.expect("notice");
    assert_eq!((notice.event.as_str(), &notice.data["kind"]), ("notice", &json!("crisis")));
    // The event is committed before any of the answer is delivered.
    let events = f.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind.as_str(), events[0].level), ("crisis", 4));
    assert!(events[0].categories.contains("self_harm"), "{}", events[0].categories);
    assert!(events[0].acknowledged_at.is_none());
    let resources = notice.data["resources"].as_array().expect("resources");
    let contacts: Vec<&str> = resources.iter().filter_map(|r| r["contact"].as_str()).collect();
    assert!(contacts.contains(&"call or text 988") && contacts.contains(&"call 0800 1111"), "{contacts:?}");
    let rest = reader.all().await;
    let text = reply_text(&rest);
    for needed in ["988", "0800 1111", "grown-up you trust right now", "911", "999"] {
        assert!(text.contains(needed), "the crisis answer has {needed}: {text}");
    }
    assert_eq!(done(&rest)["level"], 4);
    assert_eq!(done(&rest)["provider"], Value::Null);
    // No model ran, and the child's message is stored with the event pointing at it.
    assert_eq!(f.provider.calls(), 0);
    let child_message = f.message(events[0].message_id.as_deref().expect("message id")).await;
    assert_eq!((child_message.role.as_str(), child_message.level), ("child", 4));
    let answer = f.message(done(&rest)["messageId"].as_str().expect("id")).await;
    assert_eq!(answer.text, text);
    assert_eq!(answer.provider, None);

    // A crisis is answered even when the chat is closed by a limit.
    f.say("hi").await;
    let mut last = Vec::new();
    for _ in 0..3 {
        f.app.clock.advance_ms(10 * MINUTE);
        last = f.say("tell me more").await;
    }
    assert_eq!(notices(&last, "break").len(), 1, "the session is over: {last:?}");
    let events = f.say("i want to die").await;
    assert_eq!(events[0].data["level"], 4);
    assert_eq!(notices(&events, "crisis").len(), 1);
    assert!(notices(&events, "break").is_empty());
    assert_eq!(f.events().await.len(), 2);
}

async fn a_serious_message_is_blocked_kindly_without_a_model(backend: Backend) {
    let f = family(backend, &[]).await;
    let events = f.say("how do i buy weed").await;
    assert_eq!(events[0].data, json!({ "level": 3, "action": "block" }));
    let text = reply_text(&events);
    assert!(text.contains("grown-up you trust") && !text.contains("weed"), "{text}");
    assert!(notices(&events, "crisis").is_empty());
    assert_eq!(done(&events)["level"], 3);
    assert_eq!(f.provider.calls(), 0);
    let stored = f.events().await;
    assert_eq!(stored.len(), 1);
    assert_eq!((stored[0].kind.as_str(), stored[0].level), ("input_blocked", 3));
    assert!(stored[0].categories.contains("drugs"));
    assert!(stored[0].reasons.contains("drugs"), "{}", stored[0].reasons);
    assert!(!stored[0].reasons.contains("weed"), "reasons never quote the message");
}

async fn personal_information_is_redacted_before_storage_and_the_model(backend: Backend) {
    let f = family(backend, &[]).await;
    let events = f.say("my phone number is 555-123-4567 call me").await;
    assert_eq!(events[0].data, json!({ "level": 2, "action": "redact" }));
    let redirect = notices(&events, "redirect");
    assert_eq!(redirect.len(), 1);
    assert!(redirect[0].data["text"].as_str().expect("text").contains("private"));
    // The model got the redacted text and a redirect instruction.
    let request = &f.provider.requests()[0];
    let last = &request.messages.last().expect("message").content;
    assert!(last.contains("[phone]") && !last.contains("555"), "{last}");
    assert!(request.messages[0].content.contains("personal information"));
    assert!(request.messages.iter().all(|m| !m.content.contains("4567")));
    // Stored redacted, with a redirect event for the parent.
    let stored = f.stored().await;
    assert_eq!(stored[0].text, "my phone number is [phone] call me");
    assert!(stored.iter().all(|m| !m.text.contains("4567")));
    let verdict: Value = serde_json::from_str(&stored[0].verdict).expect("verdict");
    assert_eq!(verdict["pii"], json!(["phone"]));
    let events = f.events().await;
    assert_eq!((events[0].kind.as_str(), events[0].level), ("redirect", 2));
    // Profanity is not redacted but redirected through the request.
    f.say("this is so fucking boring").await;
    let request = &f.provider.requests()[1];
    assert!(request.messages[0].content.contains("rude word"), "{}", request.messages[0].content);
}

async fn an_unsafe_sentence_never_reaches_the_child(backend: Backend) {
    let f = family(backend, &[]).await;
    f.provider.set_script(vec![
        Step::Text("Dolphins are clever animals. What school".into()),
        Step::Text(" do you go to? I could visit you there.".into()),
    ]);
    let mut reader = f.open(json!({ "text": "Tell me about dolphins" })).await;
    let mut seen = Vec::new();
    let mut event_checked = false;
    while let Some(event) = reader.next().await {
        if event.event == "delta" && event.data["text"].as_str().is_some_and(|t| t.contains("muddled")) {
            // The caught generation is recorded before the fallback is delivered.
            let events = f.events().await;
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, "unsafe_generation");
            assert!(events[0].level >= 3);
            event_checked = true;
        }
        seen.push(event);
    }
    assert!(event_checked, "the fallback was sent: {seen:?}");
    let text = reply_text(&seen);
    assert!(text.contains("Dolphins are clever animals."), "{text}");
    assert!(!text.contains("school") && !text.contains("visit"), "{text}");
    assert!(text.ends_with("Oops, my paws got muddled there. Let's explore something else together!"));
    let reply = f.message(done(&seen)["messageId"].as_str().expect("id")).await;
    assert!(!reply.text.contains("school"), "{}", reply.text);
    assert!(reply.level >= 3);
    let events = f.events().await;
    assert_eq!(events[0].message_id.as_deref(), Some(reply.id.as_str()));
    assert!(events[0].categories.contains("pii"), "{}", events[0].categories);
}

/// A fast model's sentences are checked side by side as they complete; they still reach the child one
/// by one and in order, and an unsafe one among them ends the reply exactly there.
async fn sentences_checked_side_by_side_are_sent_in_order(backend: Backend) {
    let f = family(backend, &[]).await;
    f.say("hi").await;
    let sentences: Vec<String> = (1..=9).map(|i| format!("Fact number {i} is about the sea.")).collect();
    f.provider.set_script(vec![Step::Text(sentences.join(" "))]);
    let events = f.say("tell me sea facts").await;
    let deltas: Vec<&str> = events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["text"].as_str().expect("text").trim())
        .collect();
    assert_eq!(deltas, sentences.iter().map(String::as_str).collect::<Vec<_>>());
    let reply = f.message(done(&events)["messageId"].as_str().expect("id")).await;
    assert_eq!(reply.text, sentences.join(" "));

    f.provider.set_script(vec![
        Step::Text("Crabs walk sideways. Owls can turn their heads. Which school do you go to?".into()),
        Step::Text(" Seals like fish. Otters hold hands.".into()),
    ]);
    let events = f.say("more animal facts").await;
    let text = reply_text(&events);
    assert!(text.starts_with("Crabs walk sideways. Owls can turn their heads."), "{text}");
    assert!(!text.contains("school") && !text.contains("Seals") && !text.contains("Otters"), "{text}");
    let events = f.events().await;
    assert_eq!(events.iter().filter(|e| e.kind == "unsafe_generation").count(), 1);
}

async fn a_provider_failure_ends_the_reply_kindly(backend: Backend) {
    let f = family(backend, &[]).await;
    f.provider
        .set_script(vec![Step::Text("Stars are far away. They".into()), Step::Fail(ProviderError::Dropped)]);
    let events = f.say("tell me about stars").await;
    let text = reply_text(&events);
    assert!(text.contains("Stars are far away.") && !text.contains("They"), "{text}");
    assert!(text.ends_with("My thoughts got tangled. Can you ask me again?"), "{text}");
    assert_eq!(done(&events)["provider"], "local");
    // Failing before any text: the same kind answer.
    f.provider.set_refusal(Some(ProviderError::Status(500)));
    let events = f.say("tell me about the moon").await;
    assert_eq!(reply_text(&events), "My thoughts got tangled. Can you ask me again?");
    assert!(f.events().await.is_empty());
}

async fn whisper_mode_on_request_and_suggested_on_distress(backend: Backend) {
    let f = family(backend, &[]).await;
    let events = f.open(json!({ "text": "tell me about stars", "whisper": true })).await.all().await;
    assert_eq!(done(&events)["whisper"], true);
    assert!(notices(&events, "whisper_suggested").is_empty());
    assert!(f.provider.requests()[0].messages[0].content.contains("Whisper mode is on"));
    let stored = f.stored().await;
    assert!(stored.iter().all(|m| m.whisper), "both messages carry the flag");

    let events = f.say("i feel really sad and nobody likes me").await;
    assert_eq!(events[0].data["level"], 1);
    assert_eq!(notices(&events, "whisper_suggested").len(), 1);
    assert_eq!(done(&events)["whisper"], true);
    assert!(f.provider.requests()[1].messages[0].content.contains("Whisper mode is on"));

    let events = f.say("tell me about dogs").await;
    assert_eq!(done(&events)["whisper"], false);
    assert!(!f.provider.requests()[2].messages[0].content.contains("Whisper mode"));

    // Treating the buddy as a partner is answered plainly that it is an AI, not in a whisper.
    let events = f.say("will you be my girlfriend").await;
    assert_eq!(events[0].data["level"], 2);
    assert!(notices(&events, "whisper_suggested").is_empty());
    assert_eq!(done(&events)["whisper"], false);
    assert!(f.provider.requests()[3].messages[0].content.contains("AI buddy, not a person"));

    // Switched off by the operator: neither asked for nor suggested.
    let off = family(backend, &[("ENABLE_WHISPER_MODE", "false")]).await;
    let events = off
        .open(json!({ "text": "i feel really sad and nobody likes me", "whisper": true }))
        .await
        .all()
        .await;
    assert_eq!(done(&events)["whisper"], false);
    assert!(notices(&events, "whisper_suggested").is_empty());
}

async fn the_session_limit_reminds_then_asks_for_a_break(backend: Backend) {
    let f = family(backend, &[("MAX_CHILD_SESSION_MINUTES", "30")]).await;
    let events = f.say("hi").await;
    assert!(notices(&events, "break_soon").is_empty());
    f.app.clock.advance_ms(10 * MINUTE);
    assert!(notices(&f.say("tell me about owls").await, "break_soon").is_empty());
    f.app.clock.advance_ms(14 * MINUTE);
    assert!(notices(&f.say("and bats?").await, "break_soon").is_empty());
    f.app.clock.advance_ms(2 * MINUTE); // 26 minutes in: 4 left
    let events = f.say("and cats?").await;
    let soon = notices(&events, "break_soon");
    assert_eq!(soon.len(), 1, "{events:?}");
    assert!(soon[0].data["text"].as_str().expect("text").contains("4 minutes"));
    f.app.clock.advance_ms(3 * MINUTE);
    assert!(notices(&f.say("and dogs?").await, "break_soon").is_empty(), "reminded once");
    let calls = f.provider.calls();

    f.app.clock.advance_ms(2 * MINUTE); // 31 minutes in
    let events = f.say("and fish?").await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0].event, "verdict");
    let notice = notices(&events, "break");
    assert_eq!(notice.len(), 1);
    assert!(notice[0].data["text"].as_str().expect("text").contains("break"));
    assert_eq!(done(&events)["messageId"], Value::Null);
    assert_eq!(f.provider.calls(), calls, "no model call during a break");
    assert!(f.stored().await.iter().all(|m| m.text != "and fish?"), "a refused message is not stored");

    // Still within the break.
    f.app.clock.advance_ms(10 * MINUTE);
    assert_eq!(notices(&f.say("back?").await, "break").len(), 1);
    // After the break, a new session starts (and says again it is an AI).
    f.app.clock.advance_ms(6 * MINUTE);
    let events = f.say("back now").await;
    assert!(notices(&events, "break").is_empty());
    assert_eq!(notices(&events, "ai_disclosure").len(), 1);
    assert_eq!(f.provider.calls(), calls + 1);
}

async fn set_limits(f: &Family, body: Value) -> reqwest::Response {
    f.app.put(&f.parent, &format!("/api/children/{}/limits", f.child_id), body).await
}

async fn quiet_hours_and_the_daily_limit_refuse_politely(backend: Backend) {
    let f = family(backend, &[]).await;
    // The test clock starts at 14:13 UTC; 15:13 at UTC+1.
    let response = set_limits(
        &f,
        json!({ "quietHoursStart": "15:00", "quietHoursEnd": "16:00", "utcOffsetMinutes": 60 }),
    )
    .await;
    assert_eq!(response.status(), 200);
    let limits: Value = response.json().await.expect("limits");
    assert_eq!(limits["quietHoursStart"], "15:00");
    assert_eq!(limits["sessionMinutes"], 30);
    let events = f.say("hello").await;
    let quiet = notices(&events, "quiet_hours");
    assert_eq!(quiet.len(), 1, "{events:?}");
    assert!(quiet[0].data["text"].as_str().expect("text").contains("16:00"));
    assert_eq!(f.provider.calls(), 0);
    // A crisis is answered whatever the hour.
    let events = f.say("i want to kill myself").await;
    assert_eq!(notices(&events, "crisis").len(), 1, "{events:?}");
    assert!(notices(&events, "quiet_hours").is_empty(), "{events:?}");
    assert_eq!(f.provider.calls(), 0);
    // At 16:00 local, chat opens again.
    f.app.clock.advance_ms(47 * MINUTE);
    let events = f.say("hello").await;
    assert!(notices(&events, "quiet_hours").is_empty());
    assert_eq!(f.provider.calls(), 1);

    // A daily limit of 10 minutes: a reminder, then the end for today.
    let response = set_limits(&f, json!({ "dailyLimitMinutes": 10, "utcOffsetMinutes": 60 })).await;
    assert_eq!(response.status(), 200);
    f.app.clock.advance_ms(6 * MINUTE);
    let events = f.say("what is a comet").await;
    let soon = notices(&events, "break_soon");
    assert_eq!(soon.len(), 1, "{events:?}");
    assert!(soon[0].data["text"].as_str().expect("text").contains("left for today"));
    f.app.clock.advance_ms(5 * MINUTE);
    let events = f.say("and a meteor?").await;
    assert_eq!(notices(&events, "daily_limit").len(), 1, "{events:?}");
    // A new session later the same day does not reset it.
    f.app.clock.advance_ms(30 * MINUTE);
    assert_eq!(notices(&f.say("now?").await, "daily_limit").len(), 1);
    assert_eq!(f.provider.calls(), 2);
    // The next day it does.
    f.app.clock.advance_ms(24 * 60 * MINUTE);
    assert!(notices(&f.say("good morning").await, "daily_limit").is_empty());
    assert_eq!(f.provider.calls(), 3);
}

async fn limits_are_validated_and_kept_to_the_family(backend: Backend) {
    let f = family(backend, &[]).await;
    let path = format!("/api/children/{}/limits", f.child_id);
    let limits: Value = f.app.get(&f.parent, &path).await.json().await.expect("limits");
    assert_eq!(limits["dailyLimitMinutes"], Value::Null);
    assert_eq!(limits["utcOffsetMinutes"], 0);
    for (body, field) in [
        (json!({ "dailyLimitMinutes": 0 }), "dailyLimitMinutes"),
        (json!({ "quietHoursStart": "25:00", "quietHoursEnd": "07:00" }), "quietHoursStart"),
        (json!({ "quietHoursStart": "21:00" }), "quietHoursEnd"),
        (json!({ "quietHoursStart": "21:00", "quietHoursEnd": "21:00" }), "quietHoursEnd"),
        (json!({ "utcOffsetMinutes": 900 }), "utcOffsetMinutes"),
    ] {
        let problem = assert_problem(set_limits(&f, body).await, 422).await;
        assert_eq!(problem["field"], field);
    }
    let saved: Value = set_limits(
        &f,
        json!({ "dailyLimitMinutes": 45, "quietHoursStart": "20:30", "quietHoursEnd": "7:00", "utcOffsetMinutes": -300 }),
    )
        .await
        .json()
        .await
        .expect("limits");
    assert_eq!(saved["quietHoursEnd"], "07:00");
    let again: Value = f.app.get(&f.parent, &path).await.json().await.expect("limits");
    assert_eq!(again, saved);
    let audit = f.app.ctx.store.audit_by_action("child.limits_changed", 10).await.expect("audit");
    assert_eq!(audit.len(), 1);
    // Another family's parent: not found. The child in kid mode: forbidden.
    let other = TestApp::new_client();
    f.app.sign_up(&other, "other@example.com").await;
    assert_problem(f.app.get(&other, &path).await, 404).await;
    assert_problem(f.app.put(&other, &path, json!({ "dailyLimitMinutes": 5 })).await, 404).await;
    assert_problem(f.app.put(&f.kid, &path, json!({ "dailyLimitMinutes": 500 })).await, 403).await;
    let _ = &f.family_id;
}

async fn history_pages_this_kid_sessions_messages(backend: Backend) {
    let f = family(backend, &[]).await;
    let empty: Value = f.app.get(&f.kid, "/api/chat/history").await.json().await.expect("page");
    assert_eq!(empty, json!({ "messages": [], "nextBefore": null }));
    for text in ["one", "two", "three"] {
        f.say(text).await;
    }
    let page: Value = f.app.get(&f.kid, "/api/chat/history?limit=4").await.json().await.expect("page");
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 4);
    let seqs: Vec<i64> = messages.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
    assert_eq!(seqs, [3, 4, 5, 6]);
    assert_eq!(messages[0]["text"], "two");
    assert_eq!(messages[0]["role"], "child");
    assert_eq!(messages[1]["role"], "buddy");
    let keys: Vec<&String> = messages[0].as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 6, "child-safe fields only: {keys:?}");
    for key in ["id", "seq", "role", "text", "whisper", "createdAt"] {
        assert!(messages[0].get(key).is_some(), "{key}");
    }
    assert_eq!(page["nextBefore"], 3);
    let older: Value =
        f.app.get(&f.kid, "/api/chat/history?limit=4&before=3").await.json().await.expect("page");
    let texts: Vec<&str> = older["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts.len(), 2);
    assert_eq!(texts[0], "one");
    assert_eq!(older["nextBefore"], Value::Null);
    assert_problem(f.app.get(&f.kid, "/api/chat/history?limit=0").await, 422).await;
    assert_problem(f.app.get(&f.kid, "/api/chat/history?limit=lots").await, 400).await;

    // Another browser in kid mode for the same child has its own conversation.
    let tablet = TestApp::new_client();
    let login = f
        .app
        .post(&tablet, "/api/auth/login", json!({ "email": "chat@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(login.status(), 200);
    assert_eq!(
        f.app.post(&tablet, &format!("/api/children/{}/session", f.child_id), json!({})).await.status(),
        200
    );
    let theirs: Value = f.app.get(&tablet, "/api/chat/history").await.json().await.expect("page");
    assert_eq!(theirs["messages"], json!([]));
}

async fn only_a_kid_session_with_consent_may_chat(backend: Backend) {
    let f = family(backend, &[]).await;
    // Not signed in; a parent outside kid mode.
    assert_problem(f.app.post(&TestApp::new_client(), "/api/chat", json!({ "text": "hi" })).await, 401).await;
    assert_problem(f.app.post(&f.parent, "/api/chat", json!({ "text": "hi" })).await, 403).await;
    assert_problem(f.app.get(&f.parent, "/api/chat/history").await, 403).await;
    // Bad text.
    for body in [json!({ "text": "" }), json!({ "text": "   " }), json!({ "text": "a".repeat(2001) })] {
        let problem = assert_problem(f.app.post(&f.kid, "/api/chat", body).await, 422).await;
        assert_eq!(problem["field"], "text");
    }
    assert_problem(f.app.post(&f.kid, "/api/chat", json!({ "text": "hi", "whisper": "yes" })).await, 422)
        .await;
    assert_problem(f.app.post(&f.kid, "/api/chat", json!({ "text": "hi", "name": "x" })).await, 422).await;
    let events = f.say(&"a".repeat(2000)).await;
    assert_eq!(done(&events)["level"], 0);
    // One message at a time: while a reply runs, a second message is refused.
    f.provider.set_script(vec![Step::Pause(Duration::from_millis(1500)), Step::Text("Done.".into())]);
    let mut running = f.open(json!({ "text": "tell me a long story" })).await;
    assert_eq!(running.next().await.expect("verdict").event, "verdict");
    assert_problem(f.app.post(&f.kid, "/api/chat", json!({ "text": "hurry up" })).await, 409).await;
    assert_eq!(reply_text(&running.all().await), "Done.");
    // The next message may follow the moment `done` arrives, before the stream has closed.
    f.provider.set_script(vec![Step::Text("First.".into())]);
    let mut first = f.open(json!({ "text": "one" })).await;
    while first.next().await.expect("an event before done").event != "done" {}
    f.provider.set_script(vec![Step::Text("Second.".into())]);
    assert_eq!(reply_text(&f.say("two").await), "Second.");
    drop(first);
    f.provider.set_script(vec![Step::Text("Hi again.".into())]);
    assert_eq!(reply_text(&f.say("hello").await), "Hi again.");
    // Consent revoked: refused at once, no model call.
    let calls = f.provider.calls();
    f.app.ctx.store.revoke_consents(&f.family_id, "coppa", f.app.ctx.now()).await.expect("revoke");
    assert_problem(f.app.post(&f.kid, "/api/chat", json!({ "text": "hi" })).await, 403).await;
    let response = f.app.delete(&f.parent, "/api/consent").await;
    assert_eq!(response.status(), 200);
    assert_problem(f.app.post(&f.kid, "/api/chat", json!({ "text": "hi" })).await, 401).await;
    assert_eq!(f.provider.calls(), calls);
}

/// `onda chat --child NAME` against the test app's database, with these lines on standard input.
async fn terminal_chat(app: &TestApp, args: &[&str], input: &str) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt as _;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_onda"));
    command
        .arg("chat")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.db.url())
        .env("ONDA_DATA_DIR", &app.data_dir)
        .env("LOG_LEVEL", "warn")
        .current_dir(&app.data_dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("the onda binary runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write stdin");
    drop(stdin);
    let output = child.wait_with_output().await.expect("the onda binary ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

async fn the_terminal_chat_runs_the_same_conversation(backend: Backend) {
    let f = family(backend, &[]).await;
    let (ok, out, err) = terminal_chat(&f.app, &["--child", "mia"], "hello\n\ni want to kill myself\n").await;
    assert!(ok, "{out}\n{err}");
    // No model is configured for the terminal yet: the buddy says so kindly; the crisis answer needs none.
    assert!(out.contains("[ai_disclosure]") && out.contains("can't think right now"), "{out}");
    assert!(
        out.contains("[crisis]") && out.contains("call or text 988") && out.contains("0800 1111"),
        "{out}"
    );
    assert!(err.contains("[safety: level 4, crisis]"), "{err}");
    assert!(!err.contains("kill"), "the message text is never logged: {err}");
    let events = f.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "crisis");

    let (ok, _, err) = terminal_chat(&f.app, &["--child", "Nobody"], "").await;
    assert!(!ok && err.contains("no child called"), "{err}");
    let (ok, _, err) =
        terminal_chat(&f.app, &["--child", "Mia", "--family-email", "x@example.com"], "").await;
    assert!(!ok && err.contains("no account"), "{err}");
    f.app.ctx.store.revoke_consents(&f.family_id, "coppa", f.app.ctx.now()).await.expect("revoke");
    let (ok, _, err) =
        terminal_chat(&f.app, &["--child", "Mia", "--family-email", "chat@example.com"], "hi\n").await;
    assert!(!ok && err.contains("consent"), "{err}");
}

/// The production path: the router built from the configuration (here a fake OpenAI server) answers,
/// only with the family's cloud-AI consent, and the cloud never sees the child's name.
async fn cloud_replies_need_cloud_consent_and_never_see_the_name(backend: Backend) {
    use onda::providers::chat::testing::{FakeChatServer, FakeReply};
    let cloud = FakeChatServer::openai().await;
    cloud.always(FakeReply::Deltas(vec!["Hi Qu".into(), "inn! Octopuses have three hearts.".into()]));
    let vars: Vec<(String, String)> = cloud.env_vars();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();

    // Without cloud consent nothing leaves the machine (and no local model is configured here).
    let app = TestApp::spawn_with(backend, &vars).await;
    let f = family_in(app, Arc::new(ScriptedProvider::default()), false).await;
    let events = f.say("Tell me about octopuses, I'm Mia").await;
    assert_eq!(cloud.request_count(), 0, "no cloud call without consent");
    assert!(!reply_text(&events).contains("three hearts"));
    assert_eq!(done(&events)["level"], 0);

    // With cloud consent the fake answers through the router.
    let app = TestApp::spawn_with(backend, &vars).await;
    let f = family_in(app, Arc::new(ScriptedProvider::default()), true).await;
    let events = f.say("Tell me about octopuses, I'm Mia").await;
    let text = reply_text(&events);
    assert!(text.contains("three hearts"), "{text}");
    assert!(text.contains("Hi Mia!") && !text.contains("Quinn"), "the pseudonym is mapped back: {text}");
    assert_eq!(done(&events)["provider"], "openai");
    let requests = cloud.requests();
    assert_eq!(requests.len(), 1);
    let sent = requests[0].body.to_string();
    assert!(!sent.contains("Mia"), "the child's name never reaches the cloud");
}
