//! The server-rendered pages (forms that work without JavaScript), the embedded assets and the
//! OpenAPI document.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{PASSWORD, TestApp, assert_problem};
use onda::storage::testing::Backend;

backend_tests!(
    home_page_renders_for_everyone,
    policy_pages_follow_the_configuration,
    sign_up_through_the_form,
    sign_up_form_keeps_the_email_and_explains_refusals,
    login_form_refuses_a_wrong_password_without_echoing_it,
    login_follows_only_local_next_paths,
    verify_email_link_works_as_a_page,
    resend_verification_from_the_family_page,
    forgot_and_reset_password_through_pages,
    logout_through_the_form,
    family_page_needs_a_parent_outside_kid_mode,
    assets_are_served_with_their_type_and_long_cache,
    pages_have_no_inline_script_or_style,
    unknown_pages_are_html_for_browsers_and_problems_for_the_api,
    openapi_document_is_served,
    openapi_document_matches_the_router,
    openapi_family_answers_match_their_schemas,
);

/// Posts a urlencoded form as a browser does: with the site's own `Origin`.
pub(crate) async fn post_form(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client
        .post(app.url(path))
        .header("Origin", &app.address)
        .header("Accept", "text/html")
        .form(form)
        .send()
        .await
        .expect("form posted")
}

/// Fetches a page as a browser does.
pub(crate) async fn get_page(app: &TestApp, client: &reqwest::Client, path: &str) -> reqwest::Response {
    client.get(app.url(path)).header("Accept", "text/html").send().await.expect("page fetched")
}

pub(crate) fn header(response: &reqwest::Response, name: &str) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string()
}

/// Asserts an HTML page with this status and returns its text.
pub(crate) async fn html(response: reqwest::Response, status: u16) -> String {
    let url = response.url().to_string();
    assert_eq!(response.status(), status, "status of {url}");
    let content_type = header(&response, "content-type");
    assert!(content_type.starts_with("text/html"), "{url} is HTML, not {content_type}");
    response.text().await.expect("page text")
}

pub(crate) fn assert_redirect(response: &reqwest::Response, location: &str) {
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a 303 redirect from {}", response.url());
    assert_eq!(header(response, "location"), location);
}

/// Signs up through the form with a fresh client, which then holds the session cookie.
pub(crate) async fn sign_up_by_form(app: &TestApp, email: &str) -> reqwest::Client {
    let client = TestApp::new_client();
    let response = post_form(app, &client, "/signup", &[("email", email), ("password", PASSWORD)]).await;
    assert_redirect(&response, "/family");
    client
}

/// Every `attr="..."` value in a page.
pub(crate) fn attribute_values<'a>(page: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    page.match_indices(&needle)
        .filter_map(|(at, _)| {
            let rest = &page[at + needle.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

async fn home_page_renders_for_everyone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = get_page(&app, &app.client, "/").await;
    assert_eq!(header(&response, "cache-control"), "no-store");
    let page = html(response, 200).await;
    assert!(page.contains("<html lang=\"en\">"));
    assert!(page.contains("href=\"/signup\""), "a signed-out visitor is offered an account");
    assert!(page.contains("href=\"/login\""));
    assert!(!page.contains("Go to your family"));
    assert!(page.contains("Privacy policy (version 2.0)"), "the footer names the policy version");

    let policy = html(get_page(&app, &app.client, "/privacy").await, 200).await;
    assert!(policy.contains("Version 2.0"));
    assert!(policy.contains("after 90 days"), "the retention period in force is stated");
    let terms = html(get_page(&app, &app.client, "/terms").await, 200).await;
    assert!(terms.contains("Version 2.0"));

    let parent = sign_up_by_form(&app, "home@example.com").await;
    let page = html(get_page(&app, &parent, "/").await, 200).await;
    assert!(page.contains("Go to your family"));
    assert!(page.contains("Signed in as home@example.com"));
    assert!(page.contains("action=\"/logout\""));
}

async fn policy_pages_follow_the_configuration(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PRIVACY_POLICY_VERSION", "3.1"),
            ("TERMS_OF_SERVICE_VERSION", "4.0"),
            ("DEFAULT_DATA_RETENTION_DAYS", "30"),
        ],
    )
    .await;
    let home = html(get_page(&app, &app.client, "/").await, 200).await;
    assert!(home.contains("Privacy policy (version 3.1)"));
    let policy = html(get_page(&app, &app.client, "/privacy").await, 200).await;
    assert!(policy.contains("Version 3.1") && policy.contains("after 30 days"));
    let terms = html(get_page(&app, &app.client, "/terms").await, 200).await;
    assert!(terms.contains("Version 4.0"));
}

async fn sign_up_through_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::new_client();
    let response =
        post_form(&app, &client, "/signup", &[("email", "Form.Parent@Example.com"), ("password", PASSWORD)])
            .await;
    assert_redirect(&response, "/family");
    let cookie = header(&response, "set-cookie");
    assert!(cookie.starts_with("onda_session=") && cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    // The same session works for the JSON API and the pages.
    let me: Value = app.get(&client, "/api/me").await.json().await.expect("me");
    assert_eq!(me["email"], "form.parent@example.com");
    assert_eq!(me["emailVerified"], false);
    let page = html(get_page(&app, &client, "/family").await, 200).await;
    assert!(page.contains("form.parent@example.com"));
    assert!(page.contains("Not yet"));
    assert!(page.contains("action=\"/verify-email/resend\""));

    assert_eq!(app.emails_to("form.parent@example.com").len(), 1, "a verification email is sent");
    let signups = app.ctx.store.audit_by_action("account.signup", 10).await.expect("audit");
    assert_eq!(signups.len(), 1);

    // Signed in, the sign-up and sign-in pages send the parent home.
    assert_redirect(&get_page(&app, &client, "/signup").await, "/family");
    assert_redirect(&get_page(&app, &client, "/login").await, "/family");
}

async fn sign_up_form_keeps_the_email_and_explains_refusals(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = TestApp::new_client();
    let secret = "short-pw";
    let response =
        post_form(&app, &client, "/signup", &[("email", "new@example.com"), ("password", secret)]).await;
    assert!(header(&response, "set-cookie").is_empty(), "no session for a refused sign-up");
    let page = html(response, 422).await;
    assert!(page.contains("Use at least 10 characters."), "the rule is explained");
    assert!(page.contains("value=\"new@example.com\""), "the email is kept");
    assert!(!page.contains(secret), "the password is never sent back");
    assert!(page.contains("aria-invalid=\"true\""));
    assert!(page.contains("href=\"#password\""), "the summary links to the field");

    let page = html(
        post_form(&app, &client, "/signup", &[("email", "not-an-email"), ("password", PASSWORD)]).await,
        422,
    )
    .await;
    assert!(page.contains("name@example.com"));
    assert!(!page.contains(PASSWORD));

    // A missing field is explained like an empty one.
    html(post_form(&app, &client, "/signup", &[("email", "x@example.com")]).await, 422).await;

    sign_up_by_form(&app, "taken@example.com").await;
    let page = html(
        post_form(&app, &client, "/signup", &[("email", "TAKEN@example.com"), ("password", PASSWORD)]).await,
        409,
    )
    .await;
    assert!(page.contains("already exists"));
    assert!(page.contains("value=\"TAKEN@example.com\""));

    // A body that is not a form is an HTML page too, not problem JSON.
    let response = client
        .post(app.url("/signup"))
        .header("Origin", &app.address)
        .header("Content-Type", "text/plain")
        .body("email=a")
        .send()
        .await
        .expect("sent");
    html(response, 415).await;
}

async fn login_form_refuses_a_wrong_password_without_echoing_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&TestApp::new_client(), "login@example.com").await;
    let client = TestApp::new_client();
    let wrong = "not-the-right-password-42";
    let response =
        post_form(&app, &client, "/login", &[("email", "login@example.com"), ("password", wrong)]).await;
    assert!(header(&response, "set-cookie").is_empty(), "no session for a wrong password");
    let page = html(response, 401).await;
    assert!(page.contains("do not match an account"));
    assert!(page.contains("value=\"login@example.com\""), "the email is kept");
    assert!(!page.contains(wrong), "the password is never sent back");
    assert!(page.contains("href=\"/forgot-password\""));
    // Unknown accounts get exactly the same answer.
    let page = html(
        post_form(&app, &client, "/login", &[("email", "nobody@example.com"), ("password", wrong)]).await,
        401,
    )
    .await;
    assert!(page.contains("do not match an account"));
    let failures = app.ctx.store.audit_by_action("account.login_failed", 10).await.expect("audit");
    assert_eq!(failures.len(), 2, "failed sign-ins are audited");

    let response =
        post_form(&app, &client, "/login", &[("email", "LOGIN@example.com"), ("password", PASSWORD)]).await;
    assert_redirect(&response, "/family");
    assert!(header(&response, "set-cookie").starts_with("onda_session="));
    html(get_page(&app, &client, "/family").await, 200).await;
}

async fn login_follows_only_local_next_paths(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&TestApp::new_client(), "next@example.com").await;

    let page = html(get_page(&app, &TestApp::new_client(), "/login?next=/family").await, 200).await;
    assert!(page.contains("name=\"next\" value=\"/family\""), "the target rides along in the form");
    let page =
        html(get_page(&app, &TestApp::new_client(), "/login?next=https://evil.example").await, 200).await;
    assert!(!page.contains("evil.example"));

    let client = TestApp::new_client();
    let response = post_form(
        &app,
        &client,
        "/login",
        &[("email", "next@example.com"), ("password", PASSWORD), ("next", "/privacy")],
    )
    .await;
    assert_redirect(&response, "/privacy");
    for evil in ["//evil.example/x", "https://evil.example", "/\\evil.example"] {
        let response = post_form(
            &app,
            &TestApp::new_client(),
            "/login",
            &[("email", "next@example.com"), ("password", PASSWORD), ("next", evil)],
        )
        .await;
        assert_redirect(&response, "/family");
    }
}

async fn verify_email_link_works_as_a_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = sign_up_by_form(&app, "verify@example.com").await;
    let token = app.token_from_email("verify@example.com", "/verify-email?token=");

    let page = html(get_page(&app, &client, &format!("/verify-email?token={token}")).await, 200).await;
    assert!(page.contains("Email confirmed"));
    assert!(page.contains("verify@example.com is confirmed"));
    assert!(page.contains("href=\"/family\""));
    let me: Value = app.get(&client, "/api/me").await.json().await.expect("me");
    assert_eq!(me["emailVerified"], true);
    let page = html(get_page(&app, &client, "/family").await, 200).await;
    assert!(!page.contains("action=\"/verify-email/resend\""), "no resend button once confirmed");

    // A link works once; a browser that is not signed in is offered to sign in.
    let page =
        html(get_page(&app, &TestApp::new_client(), &format!("/verify-email?token={token}")).await, 422)
            .await;
    assert!(page.contains("no longer valid"));
    assert!(page.contains("href=\"/login?next=/family\""));
    html(get_page(&app, &client, "/verify-email?token=made-up").await, 422).await;
    html(get_page(&app, &client, "/verify-email").await, 400).await;
}

async fn resend_verification_from_the_family_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = sign_up_by_form(&app, "resend@example.com").await;
    let first = app.token_from_email("resend@example.com", "/verify-email?token=");

    let response = post_form(&app, &client, "/verify-email/resend", &[]).await;
    assert_redirect(&response, "/family?notice=verification-sent");
    let page = html(get_page(&app, &client, "/family?notice=verification-sent").await, 200).await;
    assert!(page.contains("We sent a new confirmation link"));
    assert_eq!(app.emails_to("resend@example.com").len(), 2);
    let second = app.token_from_email("resend@example.com", "/verify-email?token=");
    assert_ne!(first, second);
    html(get_page(&app, &client, &format!("/verify-email?token={second}")).await, 200).await;

    // Once confirmed nothing more is sent; signed out, the button leads to the sign-in page.
    assert_redirect(&post_form(&app, &client, "/verify-email/resend", &[]).await, "/family");
    assert_eq!(app.emails_to("resend@example.com").len(), 2);
    let stranger = TestApp::new_client();
    assert_redirect(&post_form(&app, &stranger, "/verify-email/resend", &[]).await, "/login?next=/family");
    // Only known notices are shown: nothing from the address bar reaches the page.
    let page = html(get_page(&app, &client, "/family?notice=%3Cb%3Ehello").await, 200).await;
    assert!(!page.contains("hello"));
}

async fn forgot_and_reset_password_through_pages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up(&TestApp::new_client(), "reset@example.com").await;
    let client = TestApp::new_client();

    html(get_page(&app, &client, "/forgot-password").await, 200).await;
    let response = post_form(&app, &client, "/forgot-password", &[("email", "reset@example.com")]).await;
    assert_redirect(&response, "/forgot-password?sent=1");
    let page = html(get_page(&app, &client, "/forgot-password?sent=1").await, 200).await;
    assert!(page.contains("If an account uses that address"));
    // An unknown address gets the same answer, and no email.
    let response = post_form(&app, &client, "/forgot-password", &[("email", "ghost@example.com")]).await;
    assert_redirect(&response, "/forgot-password?sent=1");
    assert!(app.emails_to("ghost@example.com").is_empty());
    // A malformed address is explained.
    let page = html(post_form(&app, &client, "/forgot-password", &[("email", "nope")]).await, 422).await;
    assert!(page.contains("value=\"nope\""));

    let token = app.token_from_email("reset@example.com", "/reset-password?token=");
    let page = html(get_page(&app, &client, &format!("/reset-password?token={token}")).await, 200).await;
    assert!(page.contains(&format!("name=\"token\" value=\"{token}\"")));

    // A password that breaks the rules leaves the link usable.
    let page = html(
        post_form(&app, &client, "/reset-password", &[("token", &token), ("password", "tiny")]).await,
        422,
    )
    .await;
    assert!(page.contains("Use at least 10 characters."));
    assert!(!page.contains("tiny"));
    assert!(page.contains(&format!("value=\"{token}\"")), "the form still carries the token");

    let new_password = "a-brand-new-password";
    let response =
        post_form(&app, &client, "/reset-password", &[("token", &token), ("password", new_password)]).await;
    assert_redirect(&response, "/login?notice=password-changed");
    let page = html(get_page(&app, &client, "/login?notice=password-changed").await, 200).await;
    assert!(page.contains("Your password is changed"));

    // The link works once.
    let page = html(
        post_form(&app, &client, "/reset-password", &[("token", &token), ("password", "another-password-1")])
            .await,
        422,
    )
    .await;
    assert!(page.contains("no longer valid"));
    assert!(page.contains("href=\"/forgot-password\""));
    html(get_page(&app, &client, "/reset-password").await, 400).await;

    let old =
        post_form(&app, &client, "/login", &[("email", "reset@example.com"), ("password", PASSWORD)]).await;
    html(old, 401).await;
    let new =
        post_form(&app, &client, "/login", &[("email", "reset@example.com"), ("password", new_password)])
            .await;
    assert_redirect(&new, "/family");
    let audit = app.ctx.store.audit_by_action("account.password_reset", 10).await.expect("audit");
    assert_eq!(audit.len(), 1);
}

async fn logout_through_the_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = sign_up_by_form(&app, "bye@example.com").await;
    let page = html(get_page(&app, &client, "/logout").await, 200).await;
    assert!(page.contains("action=\"/logout\""), "typing /logout offers a button, it does not sign out");
    assert_eq!(app.get(&client, "/api/me").await.status(), 200);

    let response = post_form(&app, &client, "/logout", &[]).await;
    assert_redirect(&response, "/login?notice=signed-out");
    assert!(header(&response, "set-cookie").contains("Max-Age=0"));
    assert_problem(app.get(&client, "/api/me").await, 401).await;
    assert_redirect(&get_page(&app, &client, "/family").await, "/login?next=/family");
    assert_redirect(&get_page(&app, &client, "/logout").await, "/");
    let logouts = app.ctx.store.audit_by_action("account.logout", 10).await.expect("audit");
    assert_eq!(logouts.len(), 1);
}

async fn family_page_needs_a_parent_outside_kid_mode(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_redirect(&get_page(&app, &TestApp::new_client(), "/family").await, "/login?next=/family");

    // Staff accounts have no family.
    onda::domain::accounts::create_staff(
        &app.ctx,
        "mod@example.com",
        PASSWORD,
        onda::domain::accounts::Role::Moderator,
    )
    .await
    .expect("moderator");
    let moderator = TestApp::new_client();
    let response =
        post_form(&app, &moderator, "/login", &[("email", "mod@example.com"), ("password", PASSWORD)]).await;
    assert_redirect(&response, "/");
    html(get_page(&app, &moderator, "/family").await, 403).await;

    // A browser in kid mode cannot reach the parent's pages.
    let client = TestApp::new_client();
    let response =
        post_form(&app, &client, "/signup", &[("email", "kid@example.com"), ("password", PASSWORD)]).await;
    let cookie = header(&response, "set-cookie");
    let token = cookie.trim_start_matches("onda_session=").split(';').next().expect("token").to_string();
    let me: Value = app.get(&client, "/api/me").await.json().await.expect("me");
    let family_id = me["familyId"].as_str().expect("family").to_string();
    let child = onda::storage::ChildRow {
        id: onda::storage::new_id(),
        family_id,
        display_name: "Mia".into(),
        age: 8,
        persona: "robot".into(),
        created_at: app.ctx.now(),
    };
    app.ctx.store.insert_child(&child).await.expect("child");
    app.ctx
        .store
        .set_session_kid_mode(&onda::domain::accounts::token_hash(&token), Some(&child.id))
        .await
        .expect("kid mode");
    // The family pages ask for the PIN first, and come back after.
    assert_redirect(&get_page(&app, &client, "/family").await, "/kid/leave?next=/family");
    let home = html(get_page(&app, &client, "/").await, 200).await;
    assert!(!home.contains("href=\"/family\""), "no way into the family pages from kid mode");
    assert!(!home.contains("kid@example.com"), "a child's screen does not show the parent's account");
    assert!(home.contains("href=\"/kid/leave\""), "a grown-up can leave with the PIN");
}

async fn assets_are_served_with_their_type_and_long_cache(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = html(get_page(&app, &app.client, "/").await, 200).await;
    let stylesheet = attribute_values(&page, "href")
        .into_iter()
        .find(|href| href.starts_with("/assets/") && href.ends_with(".css"))
        .expect("the page links a stylesheet under /assets")
        .to_string();
    assert_ne!(stylesheet, "/assets/onda.css", "the URL carries a content hash");

    let response = app.get(&app.client, &stylesheet).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/css; charset=utf-8");
    let cache = header(&response, "cache-control");
    assert!(cache.contains("max-age=31536000") && cache.contains("immutable"), "{cache}");
    let css = response.text().await.expect("css");
    assert!(css.contains(":focus-visible"), "focus stays visible");

    let icon = attribute_values(&page, "href")
        .into_iter()
        .find(|href| href.ends_with(".svg"))
        .expect("an icon")
        .to_string();
    let response = app.get(&app.client, &icon).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "image/svg+xml");

    assert_problem(app.get(&app.client, "/assets/onda.css").await, 404).await;
    assert_problem(app.get(&app.client, "/assets/onda.000000000000.css").await, 404).await;
}

async fn pages_have_no_inline_script_or_style(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let visitor = TestApp::new_client();
    let mut pages = Vec::new();
    for path in [
        "/",
        "/signup",
        "/login",
        "/login?next=/family&notice=signed-out",
        "/forgot-password",
        "/forgot-password?sent=1",
        "/reset-password?token=abc",
        "/reset-password",
        "/verify-email?token=abc",
        "/privacy",
        "/terms",
        "/no-such-page",
    ] {
        let response = get_page(&app, &visitor, path).await;
        pages.push((path.to_string(), response.text().await.expect("page")));
    }
    for (path, form) in [
        ("/signup", vec![("email", "x"), ("password", "y")]),
        ("/login", vec![("email", "x@example.com"), ("password", "wrong-password")]),
        ("/forgot-password", vec![("email", "bad")]),
        ("/reset-password", vec![("token", "abc"), ("password", "a-long-enough-password")]),
    ] {
        let response = post_form(&app, &visitor, path, &form).await;
        pages.push((format!("POST {path}"), response.text().await.expect("page")));
    }
    let parent = sign_up_by_form(&app, "csp@example.com").await;
    for path in ["/", "/family", "/family?notice=verification-sent", "/logout"] {
        let response = get_page(&app, &parent, path).await;
        pages.push((format!("{path} signed in"), response.text().await.expect("page")));
    }

    for (name, page) in &pages {
        assert_no_inline_script_or_style(name, page);
    }
}

/// A full page with no inline script or style (the Content-Security-Policy forbids both), no inline
/// event handler or `javascript:` URL, and links, images and forms that stay on this site.
pub(crate) fn assert_no_inline_script_or_style(name: &str, page: &str) {
    let lower = page.to_ascii_lowercase();
    assert!(lower.starts_with("<!doctype html>"), "{name} is a full page");
    assert!(!lower.contains("<script"), "{name} has a script element");
    assert!(!lower.contains("<style"), "{name} has a style element");
    assert!(!lower.contains(" style="), "{name} has a style attribute");
    assert!(!lower.contains("javascript:"), "{name} has a javascript: URL");
    let handlers = lower.match_indices(" on").filter(|(at, _)| {
        let rest = &lower[at + 3..];
        let name_len = rest.chars().take_while(|c| c.is_ascii_lowercase()).count();
        name_len > 0 && rest[name_len..].starts_with('=')
    });
    assert_eq!(handlers.count(), 0, "{name} has an inline event handler");
    for attr in ["href", "src", "action"] {
        for value in attribute_values(page, attr) {
            assert!(
                (value.starts_with('/') && !value.starts_with("//")) || value.starts_with('#'),
                "{name}: {attr}={value:?} must stay on this site"
            );
        }
    }
}

async fn unknown_pages_are_html_for_browsers_and_problems_for_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = html(get_page(&app, &app.client, "/no-such-page").await, 404).await;
    assert!(page.contains("Page not found"));
    assert!(page.contains("href=\"/\""));
    assert_problem(app.get(&app.client, "/no-such-page").await, 404).await;
    let response =
        app.client.get(app.url("/api/nothing")).header("Accept", "text/html").send().await.expect("sent");
    assert_problem(response, 404).await;
}

async fn openapi_document_is_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.get(&app.client, "/api/openapi.json").await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    let doc: Value = response.json().await.expect("the document is JSON");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3.1."), "{version}");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/api/auth/signup", "post"),
        ("/api/auth/login", "post"),
        ("/api/auth/logout", "post"),
        ("/api/auth/verify-email", "post"),
        ("/api/auth/verify-email/resend", "post"),
        ("/api/auth/password-reset", "post"),
        ("/api/auth/password-reset/confirm", "post"),
        ("/api/me", "get"),
        ("/api/openapi.json", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is documented");
    }

    // Every reference points at something the document defines.
    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.contains("#/components/schemas/Problem"));
    for reference in refs {
        let pointer = reference.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{reference} resolves");
    }
    // Every error answer is a problem.
    for (path, item) in paths {
        for (method, operation) in item.as_object().expect("path item") {
            let Some(responses) = operation.get("responses").and_then(Value::as_object) else { continue };
            assert!(!responses.is_empty(), "{method} {path} lists responses");
            for (status, answer) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    let answer = match answer.get("$ref").and_then(Value::as_str) {
                        Some(r) => doc.pointer(r.trim_start_matches('#')).expect("resolves"),
                        None => answer,
                    };
                    let is_problem = answer.pointer("/content/application~1problem+json").is_some();
                    let is_health = path.starts_with("/api/health") && status == "503";
                    assert!(is_problem || is_health, "{method} {path} {status} is a problem");
                }
            }
        }
    }
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(r)) => {
                        out.insert(r.clone());
                    }
                    _ => collect_refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Every documented path and method that is built answers something other than the router's
/// 404/405: the document cannot promise a route the server does not have.
async fn openapi_document_matches_the_router(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc: Value = app.get(&app.client, "/api/openapi.json").await.json().await.expect("document");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete =
            path.replace("{id}", "00000000-0000-4000-8000-000000000000").replace("{part}", "database");
        for method in item.as_object().expect("path item").keys() {
            let method = match method.as_str() {
                "get" => reqwest::Method::GET,
                "post" => reqwest::Method::POST,
                "put" => reqwest::Method::PUT,
                "delete" => reqwest::Method::DELETE,
                "patch" => reqwest::Method::PATCH,
                _ => continue,
            };
            let response = app
                .client
                .request(method.clone(), app.url(&concrete))
                .header("Origin", &app.address)
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            assert!(status != 404 && status != 405, "{method} {path} is documented but answers {status}");
            checked += 1;
        }
    }
    assert!(checked >= 26, "the auth, family and health routes were checked ({checked})");
}

/// The family API's real answers have the status codes and the shapes the document gives them:
/// every required field present, no field it does not describe, enums and simple types kept.
async fn openapi_family_answers_match_their_schemas(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS", "0")]).await;
    let doc: Value = app.get(&app.client, "/api/openapi.json").await.json().await.expect("document");
    let c = &app.client;
    app.sign_up_verified(c, "schema@example.com").await;
    let body = serde_json::json!({ "privacyPolicyVersion": "2.0", "termsVersion": "2.0", "cloudAi": true });

    let mut answers = vec![
        ("/api/health", "get", app.get(c, "/api/health").await),
        ("/api/health/{part}", "get", app.get(c, "/api/health/database").await),
        ("/api/me", "get", app.get(c, "/api/me").await),
        ("/api/consent", "get", app.get(c, "/api/consent").await),
        ("/api/consent", "post", app.post(c, "/api/consent", body).await),
        ("/api/consent/cloud-ai", "delete", app.delete(c, "/api/consent/cloud-ai").await),
        ("/api/children", "post", app.post(c, "/api/children", serde_json::json!({ "age": 7 })).await),
    ];
    let child = app
        .post(c, "/api/children", serde_json::json!({ "displayName": "Mia", "age": 7, "persona": "robot" }))
        .await;
    answers.push(("/api/children", "post", child));
    let id = app.get(c, "/api/children").await.json::<Value>().await.expect("list")[0]["id"]
        .as_str()
        .expect("child id")
        .to_string();
    let one = format!("/api/children/{id}");
    let session = format!("/api/children/{id}/session");
    answers.push(("/api/children", "get", app.get(c, "/api/children").await));
    answers.push(("/api/children/{id}", "get", app.get(c, &one).await));
    let update = serde_json::json!({ "age": 8 });
    answers.push(("/api/children/{id}", "put", app.put(c, &one, update).await));
    answers.push(("/api/children/{id}/session", "post", app.post(c, &session, Value::Null).await));
    answers.push(("/api/pin", "put", app.put(c, "/api/pin", serde_json::json!({ "pin": "2468" })).await));
    let change = serde_json::json!({ "pin": "1357", "currentPin": "0000" });
    answers.push(("/api/pin", "put", app.put(c, "/api/pin", change).await));
    answers.push(("/api/children/{id}/session", "post", app.post(c, &session, Value::Null).await));
    answers.push(("/api/kid/session", "get", app.get(c, "/api/kid/session").await));
    answers.push(("/api/audit", "get", app.get(c, "/api/audit").await));
    let wrong = serde_json::json!({ "pin": "0000" });
    for _ in 0..4 {
        answers.push(("/api/pin/verify", "post", app.post(c, "/api/pin/verify", wrong.clone()).await));
    }
    answers.push(("/api/pin/verify", "post", app.post(c, "/api/pin/verify", wrong.clone()).await));
    app.clock.advance_ms(15 * 60 * 1000);
    let right = serde_json::json!({ "pin": "2468" });
    answers.push(("/api/pin/verify", "post", app.post(c, "/api/pin/verify", right).await));
    answers.push(("/api/audit", "get", app.get(c, "/api/audit?limit=5").await));
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    let token = app.token_from_email("schema@example.com", "/consent/revoke?token=");
    let link = serde_json::json!({ "token": token });
    answers.push((
        "/api/consent/revoke-link",
        "post",
        app.post(&TestApp::new_client(), "/api/consent/revoke-link", link).await,
    ));
    answers.push(("/api/consent", "delete", app.delete(c, "/api/consent").await));
    answers.push(("/api/children/{id}", "delete", app.delete(c, &one).await));

    let mut statuses = BTreeSet::new();
    for (path, method, response) in answers {
        let status = response.status().as_u16().to_string();
        let documented = doc["paths"][path][method]["responses"]
            .get(&status)
            .unwrap_or_else(|| panic!("{method} {path} answered {status}, which is not documented"));
        let documented = resolve(&doc, documented);
        statuses.insert(status.clone());
        let text = response.text().await.expect("body");
        match documented.pointer("/content/application~1json/schema") {
            Some(schema) => {
                let value: Value = serde_json::from_str(&text).expect("a JSON answer");
                check_schema(&doc, schema, &value, &format!("{method} {path} {status}"));
            }
            None if status.starts_with('2') => {
                assert!(text.is_empty(), "{method} {path} {status} has no body")
            }
            None => {}
        }
    }
    for expected in ["200", "201", "204", "403", "409", "422", "423"] {
        assert!(statuses.contains(expected), "the answers covered {expected}: {statuses:?}");
    }
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(doc, doc.pointer(reference.trim_start_matches('#')).expect("resolves")),
        None => value,
    }
}

/// Checks a value against the parts of JSON Schema the document uses.
fn check_schema(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        let mut known = BTreeSet::new();
        for part in parts {
            let part = resolve(doc, part);
            check_object_fields(doc, part, value, at);
            if let Some(props) = part.get("properties").and_then(Value::as_object) {
                known.extend(props.keys().cloned());
            }
        }
        if let Some(object) = value.as_object() {
            for key in object.keys() {
                assert!(known.contains(key), "{at}: {key} is not documented");
            }
        }
        return;
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty() {
        assert!(
            types.contains(&actual) || (actual == "integer" && types.contains(&"number")),
            "{at}: {value} is {actual}, documented as {types:?}"
        );
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        assert!(allowed.contains(value), "{at}: {value} is not one of {allowed:?}");
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    check_schema(doc, item_schema, item, &format!("{at}[{i}]"));
                }
            }
        }
        Value::Object(object) => {
            check_object_fields(doc, schema, value, at);
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for key in object.keys() {
                    assert!(props.contains_key(key), "{at}: {key} is not documented");
                }
            }
        }
        _ => {}
    }
}

fn check_object_fields(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let Some(object) = value.as_object() else { return };
    for required in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let key = required.as_str().expect("a field name");
        assert!(object.contains_key(key), "{at}: required {key} is missing");
    }
    for (key, prop) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
        if let Some(inner) = object.get(key) {
            if prop.get("type").is_some_and(|t| t == "object") && prop.get("properties").is_none() {
                continue; // Free-form, such as an audit entry's detail.
            }
            check_schema(doc, prop, inner, &format!("{at}.{key}"));
        }
    }
}
