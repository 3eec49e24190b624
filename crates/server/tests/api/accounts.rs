use serde_json::json;

use crate::backend_tests;
use crate::helpers::{PASSWORD, TestApp, assert_problem};
use onda::storage::testing::Backend;

backend_tests!(
    sign_up_verify_and_log_in,
    wrong_password_is_refused,
    duplicate_email_is_a_conflict,
    password_reset_by_emailed_link,
    logout_ends_the_session,
    bad_json_is_problem_json,
);

async fn sign_up_verify_and_log_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let account = app.sign_up(&app.client, "Parent@Example.com").await;
    assert_eq!(account["email"], "parent@example.com");
    assert_eq!(account["role"], "parent");
    assert_eq!(account["emailVerified"], false);

    let me: serde_json::Value = app.get(&app.client, "/api/me").await.json().await.expect("json");
    assert_eq!(me["emailVerified"], false);

    let token = app.token_from_email("parent@example.com", "/verify-email?token=");
    let verified = app.post(&app.client, "/api/auth/verify-email", json!({ "token": token })).await;
    assert_eq!(verified.status(), 200);
    // A link works once.
    let again = app.post(&app.client, "/api/auth/verify-email", json!({ "token": token })).await;
    assert_problem(again, 422).await;

    let other = TestApp::new_client();
    assert_problem(app.get(&other, "/api/me").await, 401).await;
    let login = app
        .post(&other, "/api/auth/login", json!({ "email": "parent@example.com", "password": PASSWORD }))
        .await;
    assert_eq!(login.status(), 200);
    let cookie =
        login.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http must not set Secure");
    let me: serde_json::Value = app.get(&other, "/api/me").await.json().await.expect("json");
    assert_eq!(me["emailVerified"], true);
}

async fn wrong_password_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "a@example.com").await;
    let other = TestApp::new_client();
    let response = app
        .post(&other, "/api/auth/login", json!({ "email": "a@example.com", "password": "not-the-password" }))
        .await;
    assert_problem(response, 401).await;
    let response = app
        .post(&other, "/api/auth/login", json!({ "email": "nobody@example.com", "password": PASSWORD }))
        .await;
    assert_problem(response, 401).await;
    let failures = app.ctx.store.audit_by_action("account.login_failed", 10).await.expect("audit");
    assert_eq!(failures.len(), 2);
}

async fn duplicate_email_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "dup@example.com").await;
    let response = app
        .post(
            &TestApp::new_client(),
            "/api/auth/signup",
            json!({ "email": "DUP@example.com", "password": PASSWORD }),
        )
        .await;
    assert_problem(response, 409).await;
    let response = app
        .post(
            &TestApp::new_client(),
            "/api/auth/signup",
            json!({ "email": "new@example.com", "password": "short" }),
        )
        .await;
    let body = assert_problem(response, 422).await;
    assert_eq!(body["field"], "password");
}

async fn password_reset_by_emailed_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "reset@example.com").await;
    let response = app
        .post(&TestApp::new_client(), "/api/auth/password-reset", json!({ "email": "reset@example.com" }))
        .await;
    assert_eq!(response.status(), 202);
    // Unknown addresses get the same answer and no email.
    let response = app
        .post(&TestApp::new_client(), "/api/auth/password-reset", json!({ "email": "ghost@example.com" }))
        .await;
    assert_eq!(response.status(), 202);
    assert!(app.emails_to("ghost@example.com").is_empty());

    let token = app.token_from_email("reset@example.com", "/reset-password?token=");
    let response = app
        .post(
            &TestApp::new_client(),
            "/api/auth/password-reset/confirm",
            json!({ "token": token, "password": "a-brand-new-password" }),
        )
        .await;
    assert_eq!(response.status(), 204);
    // The old session ended with the password change.
    assert_problem(app.get(&app.client, "/api/me").await, 401).await;
    let client = TestApp::new_client();
    let old = app
        .post(&client, "/api/auth/login", json!({ "email": "reset@example.com", "password": PASSWORD }))
        .await;
    assert_problem(old, 401).await;
    let new = app
        .post(
            &client,
            "/api/auth/login",
            json!({ "email": "reset@example.com", "password": "a-brand-new-password" }),
        )
        .await;
    assert_eq!(new.status(), 200);

    // An expired link is refused.
    app.post(&client, "/api/auth/password-reset", json!({ "email": "reset@example.com" })).await;
    let token = app.token_from_email("reset@example.com", "/reset-password?token=");
    app.clock.advance_ms(2 * 3600 * 1000);
    let response = app
        .post(
            &client,
            "/api/auth/password-reset/confirm",
            json!({ "token": token, "password": "another-new-password" }),
        )
        .await;
    assert_problem(response, 422).await;
}

async fn logout_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&app.client, "out@example.com").await;
    assert_eq!(app.get(&app.client, "/api/me").await.status(), 200);
    let response = app.post(&app.client, "/api/auth/logout", json!({})).await;
    assert_eq!(response.status(), 204);
    assert_problem(app.get(&app.client, "/api/me").await, 401).await;
}

async fn bad_json_is_problem_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_problem(response, 400).await;
    let response = app.post(&app.client, "/api/auth/login", json!({ "email": "x@example.com" })).await;
    let body = assert_problem(response, 422).await;
    assert!(body["detail"].as_str().unwrap_or_default().contains("password"));
    assert_problem(app.get(&app.client, "/api/no-such-thing").await, 404).await;
}
