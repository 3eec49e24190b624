//! Consent, child profiles, the PIN and kid mode, the demo family and the family CLI.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{PASSWORD, TestApp, assert_problem};
use onda::domain::consent::{self, ConsentKind};
use onda::domain::demo::{self, DemoOutcome};
use onda::storage::ConsentRow;
use onda::storage::testing::Backend;
use onda::testing::consent_body;

backend_tests!(
    consent_needs_a_verified_email,
    consent_record_holds_method_ip_and_versions,
    kid_mode_needs_consent_when_required,
    kid_mode_without_consent_when_not_required,
    confirmation_email_comes_after_the_delay_and_its_link_revokes,
    confirmation_is_not_sent_for_revoked_consent,
    a_new_policy_version_asks_again,
    cloud_ai_consent_is_separate_and_revocable,
    revoking_consent_ends_kid_sessions_at_once,
    children_crud_with_validation,
    another_familys_child_is_not_found,
    pin_set_and_change,
    five_wrong_pins_lock_for_fifteen_minutes,
    kid_mode_blocks_the_parent_api_until_the_pin,
    audit_log_is_the_familys_newest_first,
    demo_family_seed,
    cli_seed_demo,
    cli_admin_create,
    failed_jobs_retry_with_backoff_then_give_up,
);

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status");
    response.json().await.expect("JSON body")
}

async fn enter_kid_mode(app: &TestApp, client: &reqwest::Client, child_id: &str) -> reqwest::Response {
    app.post(client, &format!("/api/children/{child_id}/session"), json!({})).await
}

async fn active(app: &TestApp, family_id: &str, kind: &str) -> Vec<ConsentRow> {
    let rows = app.ctx.store.active_consents(family_id).await.expect("consents");
    rows.into_iter().filter(|c| c.kind == kind).collect()
}

async fn consent_needs_a_verified_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "unverified@example.com").await;
    let body = assert_problem(app.post(&app.client, "/api/consent", consent_body(false)).await, 403).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("verify your email"), "{body}");
    let status = json_of(app.get(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["coppaConsent"], false);

    let token = app.token_from_email("unverified@example.com", "/verify-email?token=");
    let verified = app.post(&app.client, "/api/auth/verify-email", json!({ "token": token })).await;
    assert_eq!(verified.status(), 200);

    // Only the versions in force can be accepted.
    let stale = json!({ "privacyPolicyVersion": "1.0", "termsVersion": "2.0", "cloudAi": false });
    let body = assert_problem(app.post(&app.client, "/api/consent", stale).await, 422).await;
    assert_eq!(body["field"], "privacyPolicyVersion");
    let stale = json!({ "privacyPolicyVersion": "2.0", "termsVersion": "0.9", "cloudAi": false });
    let body = assert_problem(app.post(&app.client, "/api/consent", stale).await, 422).await;
    assert_eq!(body["field"], "termsVersion");
    let extra = json!({ "privacyPolicyVersion": "2.0", "termsVersion": "2.0", "cloudAi": false, "x": 1 });
    assert_problem(app.post(&app.client, "/api/consent", extra).await, 422).await;

    let status = app.give_consent(&app.client, false).await;
    assert_eq!(status["coppaConsent"], true);
    assert_eq!(status["chatAllowed"], true);
}

async fn consent_record_holds_method_ip_and_versions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.sign_up_verified(&app.client, "record@example.com").await;
    let family_id = account["familyId"].as_str().expect("family id").to_string();
    let me = json_of(app.get(&app.client, "/api/me").await, 200).await;
    assert_eq!(me["hasPin"], false);
    assert_eq!(me["consent"]["coppaConsent"], false);
    assert_eq!(me["consent"]["needsRenewal"], false);
    assert_eq!(me["consent"]["required"], true);

    let status = app.give_consent(&app.client, false).await;
    assert_eq!(status["coppaConsent"], true);
    assert_eq!(status["cloudAi"], false);
    assert_eq!(status["method"], "email_plus");
    assert_eq!(status["privacyPolicyVersion"], "2.0");
    assert_eq!(status["termsVersion"], "2.0");
    assert_eq!(status["needsRenewal"], false);
    assert_eq!(status["confirmationSent"], false);
    assert!(status["grantedAt"].as_str().unwrap_or_default().starts_with("2026-"), "{status}");

    let rows = active(&app, &family_id, "coppa").await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.method, "email_plus");
    assert_eq!(row.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(row.privacy_policy_version, "2.0");
    assert_eq!(row.terms_version, "2.0");
    assert_eq!(row.granted_at, app.ctx.now());
    assert_eq!(row.user_id, account["id"].as_str().expect("user id"));
    assert!(active(&app, &family_id, "cloud_ai").await.is_empty(), "no cloud AI consent without asking");

    // Giving it again changes nothing.
    app.give_consent(&app.client, false).await;
    assert_eq!(active(&app, &family_id, "coppa").await[0].id, row.id);
    assert_eq!(app.ctx.store.pending_job_count().await.expect("jobs"), 1);

    let given = app.ctx.store.audit_by_action("consent.given", 10).await.expect("audit");
    assert_eq!(given.len(), 1);
    assert_eq!(given[0].ip.as_deref(), Some("127.0.0.1"));

    app.set_pin(&app.client, "1357").await;
    let me = json_of(app.get(&app.client, "/api/me").await, 200).await;
    assert_eq!(me["hasPin"], true);
    assert_eq!(me["consent"]["coppaConsent"], true);
}

async fn kid_mode_needs_consent_when_required(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up_verified(&app.client, "gate@example.com").await;
    let child = app.add_child(&app.client, "Mia", 7, "raccoon").await;

    // No PIN yet: refused, whatever the consent.
    let body = assert_problem(enter_kid_mode(&app, &app.client, &child).await, 409).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("PIN"), "{body}");
    app.set_pin(&app.client, "2468").await;

    let body = assert_problem(enter_kid_mode(&app, &app.client, &child).await, 403).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("consent"), "{body}");
    assert_problem(app.get(&app.client, "/api/kid/session").await, 403).await;
    assert!(!consent::chat_allowed(&app.ctx, &family_of(&app, "gate@example.com").await).await.expect("ok"));

    app.give_consent(&app.client, false).await;
    let kid = json_of(enter_kid_mode(&app, &app.client, &child).await, 200).await;
    assert_eq!(kid["childId"], child.as_str());
    let kid = json_of(app.get(&app.client, "/api/kid/session").await, 200).await;
    assert_eq!(kid["displayName"], "Mia");
    assert_eq!(kid["persona"], "raccoon");
    assert_eq!(kid["age"], 7);
}

async fn family_of(app: &TestApp, email: &str) -> String {
    let user = app.ctx.store.user_by_email(email).await.expect("lookup").expect("user exists");
    user.family_id.expect("a parent has a family")
}

async fn kid_mode_without_consent_when_not_required(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PARENT_CONSENT_REQUIRED", "false")]).await;
    app.sign_up(&app.client, "relaxed@example.com").await;
    app.set_pin(&app.client, "2468").await;
    let child = app.add_child(&app.client, "Leo", 10, "robot").await;
    let status = json_of(app.get(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["required"], false);
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["chatAllowed"], true);
    // Cloud AI still needs its own consent.
    assert_eq!(status["cloudAi"], false);
    let family_id = family_of(&app, "relaxed@example.com").await;
    assert!(!consent::cloud_ai_allowed(&app.ctx, &family_id).await.expect("ok"));

    json_of(enter_kid_mode(&app, &app.client, &child).await, 200).await;
    let kid = json_of(app.get(&app.client, "/api/kid/session").await, 200).await;
    assert_eq!(kid["displayName"], "Leo");
}

async fn confirmation_email_comes_after_the_delay_and_its_link_revokes(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS", "3600")]).await;
    let child = app.ready_family(&app.client, "plus@example.com", false).await;
    let family_id = family_of(&app, "plus@example.com").await;
    let has_confirmation = |app: &TestApp| {
        app.emails_to("plus@example.com").iter().any(|m| m.contains("/consent/revoke?token="))
    };

    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    app.clock.advance_ms(3599 * 1000);
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    assert!(!has_confirmation(&app), "the confirmation waits for the delay");

    app.clock.advance_ms(2000);
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    assert!(has_confirmation(&app));
    let email = app
        .emails_to("plus@example.com")
        .into_iter()
        .rev()
        .find(|m| m.contains("/consent/revoke"))
        .expect("email");
    assert!(email.contains("privacy policy version 2.0"), "names the versions");
    assert!(email.contains("Cloud AI: not allowed"), "says cloud AI is off");
    assert!(email.contains("text/html") && email.contains("text/plain"), "text and HTML");
    let status = json_of(app.get(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["confirmationSent"], true);
    // Sent once.
    app.clock.advance_ms(24 * 3600 * 1000);
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    let confirmations =
        app.emails_to("plus@example.com").iter().filter(|m| m.contains("/consent/revoke")).count();
    assert_eq!(confirmations, 1);
    assert_eq!(app.ctx.store.pending_job_count().await.expect("jobs"), 0);

    // The child is chatting on another device when the parent follows the link.
    let kid_device = TestApp::new_client();
    let login = app
        .post(&kid_device, "/api/auth/login", json!({ "email": "plus@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(login.status(), 200);
    json_of(enter_kid_mode(&app, &kid_device, &child).await, 200).await;

    let token = app.token_from_email("plus@example.com", "/consent/revoke?token=");
    let anyone = TestApp::new_client();
    let revoked =
        json_of(app.post(&anyone, "/api/consent/revoke-link", json!({ "token": token })).await, 200).await;
    assert_eq!(revoked["revoked"], "coppa");
    assert!(active(&app, &family_id, "coppa").await.is_empty());
    let status = json_of(app.get(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["chatAllowed"], false);
    assert_problem(app.get(&kid_device, "/api/kid/session").await, 401).await;
    // A link works once; a made-up one never.
    assert_problem(app.post(&anyone, "/api/consent/revoke-link", json!({ "token": token })).await, 422).await;
    assert_problem(app.post(&anyone, "/api/consent/revoke-link", json!({ "token": "nope" })).await, 422)
        .await;
    let audit = app.ctx.store.audit_by_action("consent.revoked", 10).await.expect("audit");
    assert_eq!(audit.len(), 1);
    assert!(audit[0].detail.contains("email_link"), "{}", audit[0].detail);
}

async fn confirmation_is_not_sent_for_revoked_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up_verified(&app.client, "quick@example.com").await;
    app.give_consent(&app.client, true).await;
    let status = json_of(app.delete(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["cloudAi"], false);
    app.clock.advance_ms(86_400 * 1000 + 1);
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    assert!(!app.emails_to("quick@example.com").iter().any(|m| m.contains("/consent/revoke")));
    assert_eq!(app.ctx.store.pending_job_count().await.expect("jobs"), 0);
}

async fn a_new_policy_version_asks_again(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PRIVACY_POLICY_VERSION", "3.0")]).await;
    let account = app.sign_up_verified(&app.client, "renew@example.com").await;
    let family_id = account["familyId"].as_str().expect("family").to_string();
    let user_id = account["id"].as_str().expect("user").to_string();
    app.set_pin(&app.client, "2468").await;
    let child = app.add_child(&app.client, "Mia", 7, "raccoon").await;
    // Consent given earlier, under version 2.0 (with cloud AI).
    for kind in ["coppa", "cloud_ai"] {
        app.ctx
            .store
            .insert_consent(&ConsentRow {
                id: onda::storage::new_id(),
                family_id: family_id.clone(),
                user_id: user_id.clone(),
                kind: kind.into(),
                method: "email_plus".into(),
                granted_at: app.ctx.now() - 1000,
                ip: Some("192.0.2.1".into()),
                privacy_policy_version: "2.0".into(),
                terms_version: "2.0".into(),
                confirmation_sent_at: Some(app.ctx.now()),
                revoked_at: None,
            })
            .await
            .expect("old consent");
    }
    let status = json_of(app.get(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["needsRenewal"], true);
    assert_eq!(status["cloudAi"], false);
    assert_eq!(status["chatAllowed"], false);
    assert_eq!(status["privacyPolicyVersion"], "3.0");
    assert!(!consent::cloud_ai_allowed(&app.ctx, &family_id).await.expect("ok"));
    assert_problem(enter_kid_mode(&app, &app.client, &child).await, 403).await;

    assert_problem(app.post(&app.client, "/api/consent", consent_body(true)).await, 422).await;
    let renewed = json!({ "privacyPolicyVersion": "3.0", "termsVersion": "2.0", "cloudAi": true });
    let status = json_of(app.post(&app.client, "/api/consent", renewed).await, 200).await;
    assert_eq!(status["coppaConsent"], true);
    assert_eq!(status["needsRenewal"], false);
    assert_eq!(status["cloudAi"], true);
    let coppa = active(&app, &family_id, "coppa").await;
    assert_eq!(coppa.len(), 1, "the old consent is superseded");
    assert_eq!(coppa[0].privacy_policy_version, "3.0");
    json_of(enter_kid_mode(&app, &app.client, &child).await, 200).await;
}

async fn cloud_ai_consent_is_separate_and_revocable(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS", "60")]).await;
    let account = app.sign_up_verified(&app.client, "cloud@example.com").await;
    let family_id = account["familyId"].as_str().expect("family").to_string();

    let status = app.give_consent(&app.client, false).await;
    assert_eq!((status["coppaConsent"].clone(), status["cloudAi"].clone()), (json!(true), json!(false)));
    assert!(!consent::cloud_ai_allowed(&app.ctx, &family_id).await.expect("ok"));
    let coppa_id = active(&app, &family_id, "coppa").await[0].id.clone();

    let status = app.give_consent(&app.client, true).await;
    assert_eq!(status["cloudAi"], true);
    assert!(consent::cloud_ai_allowed(&app.ctx, &family_id).await.expect("ok"));
    assert_eq!(active(&app, &family_id, "coppa").await[0].id, coppa_id, "COPPA consent unchanged");
    let cloud = active(&app, &family_id, "cloud_ai").await;
    assert_eq!(cloud.len(), 1);
    assert_eq!(cloud[0].method, "email_plus");

    // Each consent gets its confirmation, with its own revoke link.
    app.clock.advance_ms(61_000);
    onda::jobs::run_due(&app.ctx).await.expect("jobs");
    let emails = app.emails_to("cloud@example.com");
    assert!(emails.iter().any(|m| m.contains("Your consent for Onda: confirmation")));
    assert!(emails.iter().any(|m| m.contains("Cloud AI for Onda: confirmation")));
    assert_eq!(app.ctx.store.pending_job_count().await.expect("jobs"), 0);

    let status = json_of(app.delete(&app.client, "/api/consent/cloud-ai").await, 200).await;
    assert_eq!(status["cloudAi"], false);
    assert_eq!(status["coppaConsent"], true, "revoking cloud AI keeps consent to Onda");
    assert!(!consent::cloud_ai_allowed(&app.ctx, &family_id).await.expect("ok"));

    // Allowed again, then withdrawn by sending cloudAi: false.
    assert_eq!(app.give_consent(&app.client, true).await["cloudAi"], true);
    assert_eq!(app.give_consent(&app.client, false).await["cloudAi"], false);
    assert!(active(&app, &family_id, "cloud_ai").await.is_empty());
    let revoked = app.ctx.store.audit_by_action("consent.revoked", 10).await.expect("audit");
    assert_eq!(revoked.len(), 2);
    assert!(revoked.iter().all(|r| r.detail.contains("cloud_ai")));

    // Revoking COPPA consent takes cloud AI with it.
    app.give_consent(&app.client, true).await;
    let status =
        consent::revoke(&app.ctx, account["id"].as_str().expect("id"), &family_id, ConsentKind::Coppa, None)
            .await
            .expect("revoked");
    assert!(!status.coppa_consent && !status.cloud_ai);
    assert!(active(&app, &family_id, "cloud_ai").await.is_empty());
}

async fn revoking_consent_ends_kid_sessions_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let child = app.ready_family(&app.client, "stop@example.com", false).await;
    let family_id = family_of(&app, "stop@example.com").await;
    let kid_device = TestApp::new_client();
    let login = app
        .post(&kid_device, "/api/auth/login", json!({ "email": "stop@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(login.status(), 200);
    json_of(enter_kid_mode(&app, &kid_device, &child).await, 200).await;
    json_of(app.get(&kid_device, "/api/kid/session").await, 200).await;

    // The kid-mode check itself refuses once consent is gone, even before sessions are ended.
    app.ctx.store.revoke_consents(&family_id, "coppa", app.ctx.now()).await.expect("revoke in storage");
    assert_problem(app.get(&kid_device, "/api/kid/session").await, 403).await;
    app.give_consent(&app.client, false).await;
    json_of(app.get(&kid_device, "/api/kid/session").await, 200).await;

    let status = json_of(app.delete(&app.client, "/api/consent").await, 200).await;
    assert_eq!(status["coppaConsent"], false);
    // The kid's browser is signed out rather than handed back to the parent's dashboard.
    assert_problem(app.get(&kid_device, "/api/kid/session").await, 401).await;
    assert_problem(app.get(&kid_device, "/api/children").await, 401).await;
    // The parent's own browser stays signed in.
    json_of(app.get(&app.client, "/api/children").await, 200).await;
    let revoked = app.ctx.store.audit_by_action("consent.revoked", 10).await.expect("audit");
    assert!(revoked[0].detail.contains("\"kidSessionsEnded\":1"), "{}", revoked[0].detail);
}

async fn children_crud_with_validation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "kids@example.com").await;
    let c = &app.client;
    assert_eq!(json_of(app.get(c, "/api/children").await, 200).await, json!([]));

    let mia = json_of(
        app.post(c, "/api/children", json!({ "displayName": "  Mia ", "age": 7, "persona": "raccoon" }))
            .await,
        201,
    )
    .await;
    assert_eq!(mia["displayName"], "Mia");
    assert_eq!(mia["age"], 7);
    assert_eq!(mia["persona"], "raccoon");
    let id = mia["id"].as_str().expect("id").to_string();
    let list = json_of(app.get(c, "/api/children").await, 200).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(json_of(app.get(c, &format!("/api/children/{id}")).await, 200).await["displayName"], "Mia");

    for (body, field) in [
        (json!({ "displayName": "Mia", "age": 2, "persona": "raccoon" }), Some("age")),
        (json!({ "displayName": "Mia", "age": 18, "persona": "raccoon" }), Some("age")),
        (json!({ "displayName": "Mia", "age": 7, "persona": "dragon" }), Some("persona")),
        (json!({ "displayName": "12345", "age": 7, "persona": "robot" }), Some("displayName")),
        (json!({ "displayName": "mia@example.com", "age": 7, "persona": "robot" }), Some("displayName")),
        (json!({ "displayName": "+1 555 010 9999", "age": 7, "persona": "robot" }), Some("displayName")),
        (json!({ "displayName": "   ", "age": 7, "persona": "robot" }), Some("displayName")),
        (json!({ "displayName": "x".repeat(41), "age": 7, "persona": "robot" }), Some("displayName")),
        (json!({ "displayName": "Mia", "age": 7, "persona": "robot", "birthday": "2018-01-01" }), None),
        (json!({ "displayName": "Mia", "age": 7, "persona": "robot", "school": "Elm Street" }), None),
        (json!({ "displayName": "Mia", "persona": "robot" }), None),
    ] {
        let body_text = body.to_string();
        let problem = assert_problem(app.post(c, "/api/children", body).await, 422).await;
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{body_text}");
        } else {
            assert!(problem["detail"].is_string(), "{body_text}");
        }
    }
    let problem = assert_problem(
        app.post(
            c,
            "/api/children",
            json!({ "displayName": "Mia", "age": 7, "persona": "robot", "birthday": "x" }),
        )
        .await,
        422,
    )
    .await;
    assert!(problem["detail"].as_str().unwrap_or_default().contains("unknown field"), "{problem}");

    let updated = json_of(
        app.put(c, &format!("/api/children/{id}"), json!({ "age": 8, "persona": "jellyfish" })).await,
        200,
    )
    .await;
    assert_eq!((updated["age"].clone(), updated["persona"].clone()), (json!(8), json!("jellyfish")));
    assert_eq!(updated["displayName"], "Mia");
    let problem =
        assert_problem(app.put(c, &format!("/api/children/{id}"), json!({ "age": 18 })).await, 422).await;
    assert_eq!(problem["field"], "age");
    assert_problem(
        app.put(c, &format!("/api/children/{id}"), json!({ "email": "x@example.com" })).await,
        422,
    )
    .await;
    assert_eq!(json_of(app.get(c, &format!("/api/children/{id}")).await, 200).await["age"], 8);

    assert_eq!(app.delete(c, &format!("/api/children/{id}")).await.status(), 204);
    assert_problem(app.get(c, &format!("/api/children/{id}")).await, 404).await;
    assert_problem(app.delete(c, &format!("/api/children/{id}")).await, 404).await;
    let actions: Vec<String> = app
        .ctx
        .store
        .audit_of_family(&family_of(&app, "kids@example.com").await, 50)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.action)
        .collect();
    for action in ["child.created", "child.updated", "child.deleted"] {
        assert!(actions.iter().any(|a| a == action), "{action} in {actions:?}");
    }
    // The audit log never holds the child's name.
    let audit = json_of(app.get(c, "/api/audit").await, 200).await.to_string();
    assert!(!audit.contains("Mia"), "{audit}");

    // Signed out: no children at all.
    assert_problem(app.get(&TestApp::new_client(), "/api/children").await, 401).await;
}

async fn another_familys_child_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let child = app.ready_family(&app.client, "first@example.com", false).await;
    let other = TestApp::new_client();
    app.sign_up_verified(&other, "second@example.com").await;
    app.give_consent(&other, false).await;
    app.set_pin(&other, "1357").await;

    let path = format!("/api/children/{child}");
    assert_problem(app.get(&other, &path).await, 404).await;
    assert_problem(app.put(&other, &path, json!({ "age": 9 })).await, 404).await;
    assert_problem(app.delete(&other, &path).await, 404).await;
    assert_problem(enter_kid_mode(&app, &other, &child).await, 404).await;
    assert_eq!(json_of(app.get(&other, "/api/children").await, 200).await, json!([]));
    // Untouched for its own family.
    let mine = json_of(app.get(&app.client, &path).await, 200).await;
    assert_eq!(mine["age"], 7);
    assert_problem(app.get(&app.client, "/api/children/not-a-real-id").await, 404).await;
}

async fn pin_set_and_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let child = app.ready_family(&app.client, "pin@example.com", false).await;
    let c = &app.client;
    for bad in ["12", "1234567", "12ab", ""] {
        let body = assert_problem(app.put(c, "/api/pin", json!({ "pin": bad })).await, 422).await;
        assert_eq!(body["field"], "pin");
    }
    // A PIN exists (2468): changing it needs the current PIN or the password.
    let body = assert_problem(app.put(c, "/api/pin", json!({ "pin": "1111" })).await, 422).await;
    assert_eq!(body["field"], "currentPin");
    assert_problem(app.put(c, "/api/pin", json!({ "pin": "1111", "currentPin": "0000" })).await, 403).await;
    assert_problem(
        app.put(c, "/api/pin", json!({ "pin": "1111", "currentPassword": "wrong-password!" })).await,
        403,
    )
    .await;
    assert_eq!(app.put(c, "/api/pin", json!({ "pin": "1111", "currentPin": "2468" })).await.status(), 204);
    assert_eq!(
        app.put(c, "/api/pin", json!({ "pin": "975310", "currentPassword": PASSWORD })).await.status(),
        204
    );
    assert_eq!(app.post(c, "/api/pin/verify", json!({ "pin": "975310" })).await.status(), 204);
    assert_problem(app.post(c, "/api/pin/verify", json!({ "pin": "1111" })).await, 403).await;

    // Not from kid mode.
    json_of(enter_kid_mode(&app, c, &child).await, 200).await;
    assert_problem(app.put(c, "/api/pin", json!({ "pin": "4444", "currentPin": "975310" })).await, 403).await;
    let actions: Vec<String> = app
        .ctx
        .store
        .audit_of_family(&family_of(&app, "pin@example.com").await, 50)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.action)
        .collect();
    assert!(
        actions.iter().any(|a| a == "pin.set") && actions.iter().any(|a| a == "pin.changed"),
        "{actions:?}"
    );
    // Staff accounts have no family PIN.
    let staff = onda::domain::accounts::create_staff(
        &app.ctx,
        "mod@example.com",
        PASSWORD,
        onda::domain::accounts::Role::Moderator,
    )
    .await;
    assert!(staff.is_ok());
    let moderator = TestApp::new_client();
    assert_eq!(
        app.post(&moderator, "/api/auth/login", json!({ "email": "mod@example.com", "password": PASSWORD }))
            .await
            .status(),
        200
    );
    assert_problem(app.put(&moderator, "/api/pin", json!({ "pin": "1234" })).await, 403).await;
    assert_problem(app.post(&moderator, "/api/pin/verify", json!({ "pin": "1234" })).await, 403).await;
}

async fn five_wrong_pins_lock_for_fifteen_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let child = app.ready_family(&app.client, "lock@example.com", false).await;
    let c = &app.client;
    json_of(enter_kid_mode(&app, c, &child).await, 200).await;

    for left in (1..=4).rev() {
        let body = assert_problem(app.post(c, "/api/pin/verify", json!({ "pin": "0000" })).await, 403).await;
        let detail = body["detail"].as_str().unwrap_or_default().to_string();
        assert!(detail.contains(&format!("{left} tr")), "{detail}");
    }
    let fifth = app.post(c, "/api/pin/verify", json!({ "pin": "0000" })).await;
    assert_eq!(fifth.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("900"));
    assert_problem(fifth, 423).await;
    // Locked: even the right PIN is refused, and kid mode stays on.
    app.clock.advance_ms(10 * 60 * 1000);
    let locked = app.post(c, "/api/pin/verify", json!({ "pin": "2468" })).await;
    assert_eq!(locked.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("300"));
    assert_problem(locked, 423).await;
    assert_problem(app.get(c, "/api/children").await, 403).await;

    let failures = app.ctx.store.audit_by_action("pin.failed", 20).await.expect("audit");
    assert_eq!(failures.len(), 5);
    assert!(failures.iter().all(|f| f.ip.as_deref() == Some("127.0.0.1")));
    assert_eq!(app.ctx.store.audit_by_action("pin.locked", 5).await.expect("audit").len(), 1);

    // The lock expires after 15 minutes in all.
    app.clock.advance_ms(5 * 60 * 1000);
    assert_eq!(app.post(c, "/api/pin/verify", json!({ "pin": "2468" })).await.status(), 204);
    json_of(app.get(c, "/api/children").await, 200).await;
    // And the count starts again: one wrong try leaves four.
    let body = assert_problem(app.post(c, "/api/pin/verify", json!({ "pin": "0000" })).await, 403).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("4 tries"), "{body}");
    let state = app.ctx.store.pin_state(&family_of(&app, "lock@example.com").await).await.expect("state");
    assert_eq!(state.pin_failed_attempts, 1);
    assert_eq!(state.pin_locked_until, None);
}

async fn kid_mode_blocks_the_parent_api_until_the_pin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let child = app.ready_family(&app.client, "shared@example.com", false).await;
    let c = &app.client;
    assert_problem(app.get(c, "/api/kid/session").await, 403).await;
    json_of(enter_kid_mode(&app, c, &child).await, 200).await;

    let me = json_of(app.get(c, "/api/me").await, 200).await;
    assert_eq!(me["kidModeChildId"], child.as_str());
    for path in ["/api/children", "/api/consent", "/api/audit", &format!("/api/children/{child}")] {
        assert_problem(app.get(c, path).await, 403).await;
    }
    assert_problem(app.delete(c, "/api/consent").await, 403).await;
    assert_problem(enter_kid_mode(&app, c, &child).await, 403).await;
    let kid = json_of(app.get(c, "/api/kid/session").await, 200).await;
    assert_eq!(kid["displayName"], "Mia");

    assert_problem(app.post(c, "/api/pin/verify", json!({ "pin": "abc" })).await, 422).await;
    assert_eq!(app.post(c, "/api/pin/verify", json!({ "pin": "2468" })).await.status(), 204);
    json_of(app.get(c, "/api/children").await, 200).await;
    assert_problem(app.get(c, "/api/kid/session").await, 403).await;
    let me = json_of(app.get(c, "/api/me").await, 200).await;
    assert!(me["kidModeChildId"].is_null());
    assert_eq!(app.ctx.store.audit_by_action("kid_mode.left", 5).await.expect("audit").len(), 1);

    // Deleting the child signs out a browser in kid mode for it.
    let kid_device = TestApp::new_client();
    app.post(&kid_device, "/api/auth/login", json!({ "email": "shared@example.com", "password": PASSWORD }))
        .await;
    json_of(enter_kid_mode(&app, &kid_device, &child).await, 200).await;
    assert_eq!(app.delete(c, &format!("/api/children/{child}")).await.status(), 204);
    assert_problem(app.get(&kid_device, "/api/kid/session").await, 401).await;
}

async fn audit_log_is_the_familys_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.ready_family(&app.client, "log@example.com", false).await;
    let other = TestApp::new_client();
    app.sign_up(&other, "otherlog@example.com").await;

    app.clock.advance_ms(1000);
    assert_problem(app.post(&app.client, "/api/pin/verify", json!({ "pin": "0000" })).await, 403).await;
    let log = json_of(app.get(&app.client, "/api/audit").await, 200).await;
    let entries = log.as_array().expect("a list");
    assert_eq!(entries[0]["action"], "pin.failed");
    assert_eq!(entries[0]["detail"]["triesLeft"], 4);
    assert!(entries.iter().any(|e| e["action"] == "consent.given"));
    assert!(entries.iter().any(|e| e["action"] == "account.signup"));
    let times: Vec<&str> = entries.iter().filter_map(|e| e["at"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    // Only this family's entries.
    let others = json_of(app.get(&other, "/api/audit").await, 200).await;
    assert!(others.as_array().expect("list").iter().all(|e| e["action"] != "pin.failed"));
    let limited = json_of(app.get(&app.client, "/api/audit?limit=2").await, 200).await;
    assert_eq!(limited.as_array().map(Vec::len), Some(2));
}

async fn demo_family_seed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(demo::seed(&app.ctx).await.expect("seeded"), DemoOutcome::Created);
    let family_id = app.ctx.store.demo_family_id().await.expect("lookup").expect("demo family");
    assert!(!app.ctx.store.has_real_families().await.expect("count"));
    let children = app.ctx.store.children_of_family(&family_id).await.expect("children");
    let summary: Vec<(String, i64, String)> =
        children.into_iter().map(|c| (c.display_name, c.age, c.persona)).collect();
    assert_eq!(summary, vec![("Mia".into(), 7, "raccoon".into()), ("Leo".into(), 10, "robot".into())]);

    let c = &app.client;
    let login = json_of(
        app.post(c, "/api/auth/login", json!({ "email": demo::DEMO_EMAIL, "password": demo::DEMO_PASSWORD }))
            .await,
        200,
    )
    .await;
    assert_eq!(login["emailVerified"], true);
    let me = json_of(app.get(c, "/api/me").await, 200).await;
    assert_eq!(me["hasPin"], true);
    assert_eq!(me["consent"]["coppaConsent"], true);
    assert_eq!(me["consent"]["cloudAi"], false);
    let kids = json_of(app.get(c, "/api/children").await, 200).await;
    let mia = kids[0]["id"].as_str().expect("id").to_string();
    json_of(enter_kid_mode(&app, c, &mia).await, 200).await;
    assert_eq!(app.post(c, "/api/pin/verify", json!({ "pin": demo::DEMO_PIN })).await.status(), 204);

    // Idempotent.
    assert_eq!(demo::seed(&app.ctx).await.expect("again"), DemoOutcome::AlreadyExists);
    assert_eq!(app.ctx.store.children_of_family(&family_id).await.expect("children").len(), 2);

    // Refused where real families live.
    let real = TestApp::spawn(backend).await;
    real.sign_up(&real.client, "real@example.com").await;
    let err = demo::seed(&real.ctx).await.expect_err("refused");
    assert!(matches!(err, onda::domain::DomainError::Conflict(_)), "{err:?}");
    assert!(real.ctx.store.demo_family_id().await.expect("lookup").is_none());
}

/// Runs the `onda` binary against the test app's database and data directory.
async fn onda_cli(app: &TestApp, args: &[&str], extra_env: &[(&str, &str)]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_onda"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", app.db.url())
        .env("ONDA_DATA_DIR", &app.data_dir)
        .env("LOG_LEVEL", "warn")
        .current_dir(&app.data_dir)
        .stdin(std::process::Stdio::null());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    let output = command.output().await.expect("the onda binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

async fn cli_seed_demo(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ok, out, err) = onda_cli(&app, &["seed", "--demo"], &[]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("Created the demo family"), "{out}");
    assert!(
        out.contains("demo@onda.local") && out.contains("demo-password-123") && out.contains("1234"),
        "{out}"
    );
    let (ok, out, err) = onda_cli(&app, &["seed", "--demo"], &[]).await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("exists already"), "{out}");

    let (ok, _, err) = onda_cli(&app, &["seed"], &[]).await;
    assert!(!ok && err.contains("--demo"), "{err}");

    let real = TestApp::spawn(backend).await;
    real.sign_up(&real.client, "real@example.com").await;
    let (ok, out, err) = onda_cli(&real, &["seed", "--demo"], &[]).await;
    assert!(!ok, "refused: {out}");
    assert!(err.contains("real families"), "{err}");
}

async fn cli_admin_create(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ok, _, err) = onda_cli(
        &app,
        &["admin", "create", "--email", "boss@example.com", "--role", "owner", "--password", PASSWORD],
        &[],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("moderator") && err.contains("admin"), "lists the valid roles: {err}");

    let (ok, out, err) = onda_cli(
        &app,
        &["admin", "create", "--email", "Mod@Example.com", "--role", "moderator"],
        &[("ONDA_ADMIN_PASSWORD", PASSWORD)],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("moderator") && out.contains("mod@example.com"), "{out}");
    let user = app.ctx.store.user_by_email("mod@example.com").await.expect("lookup").expect("created");
    assert_eq!(user.role, "moderator");
    assert!(user.family_id.is_none());
    let login = app
        .post(
            &TestApp::new_client(),
            "/api/auth/login",
            json!({ "email": "mod@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(login.status(), 200);

    let (ok, _, err) = onda_cli(
        &app,
        &["admin", "create", "--email", "mod@example.com", "--role", "admin", "--password", PASSWORD],
        &[],
    )
    .await;
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) =
        onda_cli(&app, &["admin", "create", "--email", "short@example.com", "--password", "short"], &[])
            .await;
    assert!(!ok && err.contains("password"), "{err}");
    // No password anywhere and nothing on standard input.
    let (ok, _, err) = onda_cli(&app, &["admin", "create", "--email", "none@example.com"], &[]).await;
    assert!(!ok && err.contains("no password"), "{err}");
}

async fn failed_jobs_retry_with_backoff_then_give_up(backend: Backend) {
    // The server's own runner shares the test clock and may run a due job first; either way the
    // job's state tells what happened.
    let app = TestApp::spawn(backend).await;
    let store = &app.ctx.store;
    let state = |id: String| async move { store.job_state(&id).await.expect("read").expect("exists") };
    let now = app.ctx.now();
    let unknown = store.enqueue_job("no_such_kind", &json!({}), now, now).await.expect("enqueued");
    // A confirmation for a consent that no longer exists has nothing to do: done, not retried.
    let gone = store
        .enqueue_job(consent::JOB_CONSENT_CONFIRMATION, &json!({ "consent_id": "gone" }), now, now)
        .await
        .expect("enqueued");
    onda::jobs::run_due(&app.ctx).await.expect("ran");
    let job = state(gone).await;
    assert!(job.done_at.is_some() && job.last_error.is_none(), "{job:?}");
    let job = state(unknown.clone()).await;
    assert_eq!((job.attempts, job.done_at), (1, None));
    assert_eq!(job.run_at, now + onda::jobs::backoff_ms(1));
    assert!(job.last_error.as_deref().unwrap_or_default().contains("unknown job kind"), "{job:?}");

    // Not again before its backoff.
    app.clock.advance_ms(onda::jobs::backoff_ms(1) - 1);
    onda::jobs::run_due(&app.ctx).await.expect("ran");
    assert_eq!(state(unknown.clone()).await.attempts, 1);
    app.clock.advance_ms(1);
    onda::jobs::run_due(&app.ctx).await.expect("ran");
    let job = state(unknown.clone()).await;
    assert_eq!(job.attempts, 2);
    assert_eq!(job.run_at, app.ctx.now() + onda::jobs::backoff_ms(2));

    for _ in 0..20 {
        app.clock.advance_ms(6 * 3600 * 1000);
        onda::jobs::run_due(&app.ctx).await.expect("ran");
    }
    let job = state(unknown).await;
    assert_eq!(job.attempts, onda::jobs::MAX_ATTEMPTS, "capped attempts");
    assert!(job.done_at.is_some(), "given up");
    assert_eq!(store.pending_job_count().await.expect("count"), 0);
}
