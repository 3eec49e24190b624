//! The family pages as a browser uses them, through forms only: consent, children, the PIN, kid mode,
//! and the revoke link of the consent confirmation email.

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{PASSWORD, TestApp};
use crate::pages::{
    assert_no_inline_script_or_style, assert_redirect, get_page, header, html, post_form, sign_up_by_form,
};
use onda::storage::testing::Backend;

backend_tests!(
    a_parent_sets_up_the_family_through_forms,
    consent_page_explains_and_needs_the_box_ticked,
    consent_page_asks_again_for_new_versions,
    cloud_ai_is_separate_and_revoking_asks_first,
    revoke_link_page_asks_before_revoking,
    revoke_link_page_for_cloud_ai_only,
    child_profiles_edit_and_delete_through_forms,
    another_familys_child_is_a_404_page,
    pin_page_sets_and_changes_the_pin,
    a_locked_pin_says_when_to_try_again,
    kid_page_outside_a_childs_session,
    family_pages_have_no_inline_script_or_style,
);

async fn json_of(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "status of {}", response.url());
    response.json().await.expect("JSON body")
}

/// Signs up through the form and confirms the email by opening the emailed link, as a parent does.
async fn verified_parent(app: &TestApp, email: &str) -> reqwest::Client {
    let client = sign_up_by_form(app, email).await;
    let token = app.token_from_email(email, "/verify-email?token=");
    let page = html(get_page(app, &client, &format!("/verify-email?token={token}")).await, 200).await;
    assert!(page.contains("Email confirmed"));
    client
}

/// A verified parent with consent, PIN 2468 and a child named Mia (7, raccoon), all through forms;
/// returns the client and Mia's id.
async fn ready_family(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let client = verified_parent(app, email).await;
    give_consent(app, &client, false).await;
    let response = post_form(app, &client, "/family/pin", &[("pin", "2468"), ("pinAgain", "2468")]).await;
    assert_redirect(&response, "/family/pin?notice=pin-set");
    let id = add_child(app, &client, "Mia", "7", "raccoon").await;
    (client, id)
}

async fn give_consent(app: &TestApp, client: &reqwest::Client, cloud_ai: bool) {
    let mut form = vec![("guardian", "yes"), ("privacyPolicyVersion", "2.0"), ("termsVersion", "2.0")];
    if cloud_ai {
        form.push(("cloudAi", "yes"));
    }
    let response = post_form(app, client, "/family/consent", &form).await;
    assert_redirect(&response, "/family/consent?notice=consent-given");
}

/// Adds a child through the form; returns the new child's id, read from the children page.
async fn add_child(app: &TestApp, client: &reqwest::Client, name: &str, age: &str, persona: &str) -> String {
    let before = child_ids(&html(get_page(app, client, "/family/children").await, 200).await);
    let response = post_form(
        app,
        client,
        "/family/children",
        &[("displayName", name), ("age", age), ("persona", persona)],
    )
    .await;
    assert_redirect(&response, "/family/children?notice=child-added");
    let after = child_ids(&html(get_page(app, client, "/family/children").await, 200).await);
    after.into_iter().find(|id| !before.contains(id)).expect("the new child is listed")
}

/// The ids of the children listed on a children page, from their Start buttons.
fn child_ids(page: &str) -> Vec<String> {
    let prefix = "action=\"/family/children/";
    page.match_indices(prefix)
        .filter_map(|(at, _)| {
            let rest = &page[at + prefix.len()..];
            rest.split_once("/start\"").map(|(id, _)| id.to_string()).filter(|id| !id.contains('"'))
        })
        .collect()
}

async fn consent_status(app: &TestApp, client: &reqwest::Client) -> Value {
    json_of(app.get(client, "/api/consent").await, 200).await
}

/// Every token of links to `to` that start with `prefix`, oldest email first.
fn tokens_in_emails(app: &TestApp, to: &str, prefix: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    for email in app.emails_to(to) {
        for (at, _) in email.match_indices(prefix) {
            let token: String = email[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !tokens.contains(&token) {
                tokens.push(token);
            }
        }
    }
    tokens
}

async fn a_parent_sets_up_the_family_through_forms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = sign_up_by_form(&app, "journey@example.com").await;

    // Before the email is confirmed, consent is explained but cannot be given.
    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("First, confirm your email address"));
    assert!(page.contains("action=\"/verify-email/resend\""));
    assert!(!page.contains("name=\"guardian\""), "no consent form before the email is confirmed");
    let refused = post_form(
        &app,
        &client,
        "/family/consent",
        &[("guardian", "yes"), ("privacyPolicyVersion", "2.0"), ("termsVersion", "2.0")],
    )
    .await;
    assert!(html(refused, 403).await.contains("Verify your email first"));

    // The emailed link confirms the address.
    let token = app.token_from_email("journey@example.com", "/verify-email?token=");
    html(get_page(&app, &client, &format!("/verify-email?token={token}")).await, 200).await;
    let overview = html(get_page(&app, &client, "/family").await, 200).await;
    assert_eq!(overview.matches("badge done").count(), 1, "only the email step is done");
    for href in ["/family/consent", "/family/children", "/family/pin"] {
        assert!(overview.contains(&format!("href=\"{href}\"")), "the checklist links {href}");
    }

    // Consent.
    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("name=\"guardian\""));
    give_consent(&app, &client, false).await;
    let page = html(get_page(&app, &client, "/family/consent?notice=consent-given").await, 200).await;
    assert!(page.contains("your consent is recorded"));
    let status = consent_status(&app, &client).await;
    assert_eq!(status["coppaConsent"], true);
    assert_eq!(status["cloudAi"], false);

    // A child: a bad age is explained, and the name stays in the form.
    let page = html(get_page(&app, &client, "/family/children").await, 200).await;
    assert!(page.contains("No child profiles yet"));
    assert!(page.contains("data minimisation"), "the page says why only a first name");
    let response = post_form(
        &app,
        &client,
        "/family/children",
        &[("displayName", "Mia"), ("age", "18"), ("persona", "raccoon")],
    )
    .await;
    let page = html(response, 422).await;
    assert!(page.contains("Onda is for children aged 3 to 17"), "the age rule is explained");
    assert!(page.contains("value=\"Mia\""), "the name is kept");
    assert!(page.contains("value=\"18\""), "the age is kept to be corrected");
    assert!(page.contains("href=\"#age\""), "the summary links to the field");
    let mia = add_child(&app, &client, "Mia", "7", "raccoon").await;
    let page = html(get_page(&app, &client, "/family/children?notice=child-added").await, 200).await;
    assert!(page.contains("The profile is added."));
    assert!(page.contains("Mia"));
    assert!(page.contains("7 years old"));
    assert!(page.contains("playful and curious"), "the buddy is described");
    assert!(page.contains("Start Mia's session on this device"));

    // Starting a session before a PIN is set explains what to do, with the link.
    let page = html(post_form(&app, &client, &format!("/family/children/{mia}/start"), &[]).await, 409).await;
    assert!(page.contains("Set a parent PIN first"), "the domain's reason is shown");
    assert!(page.contains("href=\"/family/pin\""));
    assert_eq!(json_of(app.get(&client, "/api/me").await, 200).await["kidModeChildId"], Value::Null);

    // The PIN.
    let response = post_form(&app, &client, "/family/pin", &[("pin", "2468"), ("pinAgain", "2468")]).await;
    assert_redirect(&response, "/family/pin?notice=pin-set");

    // The session: this browser becomes Mia's.
    let response = post_form(&app, &client, &format!("/family/children/{mia}/start"), &[]).await;
    assert_redirect(&response, "/kid");
    let kid = html(get_page(&app, &client, "/kid").await, 200).await;
    assert!(kid.contains("Hi Mia!"));
    assert!(kid.contains("Your raccoon buddy is getting ready."));
    assert!(kid.contains("is an AI"), "the child is told the buddy is an AI");
    assert!(kid.contains("href=\"/kid/leave\""), "a grown-up can leave");
    assert!(!kid.contains("journey@example.com"), "the child's screen does not show the parent's account");

    // The family pages now ask for the PIN, and come back after.
    assert_redirect(&get_page(&app, &client, "/family").await, "/kid/leave?next=/family");
    assert_redirect(&get_page(&app, &client, "/family/children").await, "/kid/leave?next=/family/children");
    let response = post_form(&app, &client, &format!("/family/children/{mia}/delete"), &[]).await;
    assert_redirect(&response, "/kid/leave?next=/family/children");
    assert_eq!(child_count(&app, &mia).await, 1, "nothing changes from kid mode");
    let page = html(get_page(&app, &client, "/kid/leave?next=/family").await, 200).await;
    assert!(page.contains("name=\"next\" value=\"/family\""));
    assert!(page.contains("name=\"pin\""));

    let response = post_form(&app, &client, "/kid/leave", &[("pin", "1111"), ("next", "/family")]).await;
    let page = html(response, 403).await;
    assert!(page.contains("Wrong PIN: 4 tries left"), "the tries left are shown");
    assert!(!page.contains("1111"), "the PIN is never sent back");
    let response = post_form(&app, &client, "/kid/leave", &[("pin", "2468"), ("next", "/family")]).await;
    assert_redirect(&response, "/family");

    let overview = html(get_page(&app, &client, "/family").await, 200).await;
    assert_eq!(overview.matches("badge done").count(), 5, "every step is done");
    assert!(!overview.contains("badge todo"));
    let me = json_of(app.get(&client, "/api/me").await, 200).await;
    assert_eq!(me["kidModeChildId"], Value::Null, "kid mode is off");
}

async fn child_count(app: &TestApp, id: &str) -> usize {
    usize::from(app.ctx.store.child_by_id(id).await.expect("child lookup").is_some())
}

async fn consent_page_explains_and_needs_the_box_ticked(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("PRIVACY_POLICY_VERSION", "3.1"), ("TERMS_OF_SERVICE_VERSION", "4.0")],
    )
    .await;
    let client = verified_parent(&app, "box@example.com").await;
    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("href=\"/privacy\"") && page.contains("Privacy policy, version 3.1"));
    assert!(page.contains("href=\"/terms\"") && page.contains("Terms of use, version 4.0"));
    assert!(page.contains(
        "I am this child&#39;s parent or legal guardian and I agree to the privacy policy version 3.1 and the terms version 4.0"
    ));
    assert!(page.contains("OpenAI or Anthropic"));
    assert!(page.contains("everything stays on this machine"));
    assert!(page.contains("email plus"), "the confirmation email is explained");
    assert!(page.contains("after about a day"), "the default delay is said in words");
    assert!(
        page.contains("<input id=\"cloudAi\" name=\"cloudAi\" type=\"checkbox\" value=\"yes\">"),
        "the cloud AI box is not ticked for the parent"
    );

    // Without the parent's box, nothing is recorded.
    let response = post_form(
        &app,
        &client,
        "/family/consent",
        &[("cloudAi", "yes"), ("privacyPolicyVersion", "3.1"), ("termsVersion", "4.0")],
    )
    .await;
    let page = html(response, 422).await;
    assert!(page.contains("Tick the box to confirm"));
    assert!(page.contains("href=\"#guardian\""));
    let status = consent_status(&app, &client).await;
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["required"], true);

    // A page shown before the policy changed: the domain refuses the old version.
    let response = post_form(
        &app,
        &client,
        "/family/consent",
        &[("guardian", "yes"), ("privacyPolicyVersion", "3.0"), ("termsVersion", "4.0")],
    )
    .await;
    let page = html(response, 422).await;
    assert!(page.contains("The privacy policy in force is version 3.1"));
    assert_eq!(consent_status(&app, &client).await["coppaConsent"], false);

    let response = post_form(
        &app,
        &client,
        "/family/consent",
        &[("guardian", "yes"), ("privacyPolicyVersion", "3.1"), ("termsVersion", "4.0")],
    )
    .await;
    assert_redirect(&response, "/family/consent?notice=consent-given");
    let status = consent_status(&app, &client).await;
    assert_eq!(status["coppaConsent"], true);
    assert_eq!(status["chatAllowed"], true);
    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("for privacy policy version 3.1 and terms version 4.0"));
    assert!(page.contains("Not sent yet: we send it to box@example.com after about a day"));
    assert!(!page.contains("name=\"guardian\""), "consent in force is not asked again");
    let given = app.ctx.store.audit_by_action("consent.given", 10).await.expect("audit");
    assert_eq!(given.len(), 1);
}

async fn cloud_ai_is_separate_and_revoking_asks_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, mia) = ready_family(&app, "cloud@example.com").await;
    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("Allow cloud AI"));
    assert!(!page.contains("action=\"/family/consent/cloud-ai/revoke\""));

    // Allowing cloud AI later takes its own box.
    let versions = [("privacyPolicyVersion", "2.0"), ("termsVersion", "2.0")];
    let page = html(post_form(&app, &client, "/family/consent", &versions).await, 422).await;
    assert!(page.contains("Tick the box to allow cloud AI"));
    assert_eq!(consent_status(&app, &client).await["cloudAi"], false);
    let mut allow = versions.to_vec();
    allow.push(("cloudAi", "yes"));
    assert_redirect(
        &post_form(&app, &client, "/family/consent", &allow).await,
        "/family/consent?notice=cloud-ai-allowed",
    );
    assert_eq!(consent_status(&app, &client).await["cloudAi"], true);
    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("action=\"/family/consent/cloud-ai/revoke\""));

    assert_redirect(
        &post_form(&app, &client, "/family/consent/cloud-ai/revoke", &[]).await,
        "/family/consent?notice=cloud-ai-revoked",
    );
    let status = consent_status(&app, &client).await;
    assert_eq!(status["cloudAi"], false);
    assert_eq!(status["coppaConsent"], true, "consent itself stays");

    // Mia is chatting on another device when the parent revokes everything.
    let kid_device = TestApp::new_client();
    let response =
        post_form(&app, &kid_device, "/login", &[("email", "cloud@example.com"), ("password", PASSWORD)])
            .await;
    assert_redirect(&response, "/family");
    assert_redirect(
        &post_form(&app, &kid_device, &format!("/family/children/{mia}/start"), &[]).await,
        "/kid",
    );

    // The confirmation page changes nothing.
    let page = html(get_page(&app, &client, "/family/consent/revoke").await, 200).await;
    assert!(page.contains("Revoke your consent?"));
    assert!(page.contains("signed out at once"));
    assert_eq!(consent_status(&app, &client).await["coppaConsent"], true);
    html(get_page(&app, &kid_device, "/kid").await, 200).await;

    assert_redirect(
        &post_form(&app, &client, "/family/consent/revoke", &[]).await,
        "/family/consent?notice=consent-revoked",
    );
    let status = consent_status(&app, &client).await;
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["chatAllowed"], false);
    let page = html(get_page(&app, &client, "/family/consent?notice=consent-revoked").await, 200).await;
    assert!(page.contains("Your consent is revoked"));
    assert!(page.contains("name=\"guardian\""), "consent can be given again");
    // The child's device is signed out, and its page says to ask a grown-up.
    let page = html(get_page(&app, &kid_device, "/kid").await, 401).await;
    assert!(page.contains("ask a grown-up"));

    // Without consent, a session cannot start; the page says why and links the consent page.
    let page = html(post_form(&app, &client, &format!("/family/children/{mia}/start"), &[]).await, 403).await;
    assert!(page.contains("Give parental consent first"));
    assert!(page.contains("href=\"/family/consent\""));
}

async fn revoke_link_page_asks_before_revoking(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS", "0")]).await;
    let (client, _) = ready_family(&app, "link@example.com").await;
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    let token = app.token_from_email("link@example.com", "/consent/revoke?token=");

    // Opening the link (as a mail scanner would, signed out) only shows what it would do.
    let stranger = TestApp::new_client();
    for _ in 0..2 {
        let page =
            html(get_page(&app, &stranger, &format!("/consent/revoke?token={token}")).await, 200).await;
        assert!(page.contains("Revoke your consent?"));
        assert!(page.contains("privacy policy version 2.0"), "the consent is named");
        assert!(page.contains(&format!("name=\"token\" value=\"{token}\"")));
        assert!(page.contains("action=\"/consent/revoke\""));
        assert_eq!(consent_status(&app, &client).await["coppaConsent"], true, "GET revokes nothing");
    }

    let response = post_form(&app, &stranger, "/consent/revoke", &[("token", &token)]).await;
    let page = html(response, 200).await;
    assert!(page.contains("Consent revoked"));
    assert!(page.contains("href=\"/login?next=/family/consent\""), "signed out, the way back is sign-in");
    let status = consent_status(&app, &client).await;
    assert_eq!(status["coppaConsent"], false);
    assert_eq!(status["chatAllowed"], false);
    let audit = app.ctx.store.audit_by_action("consent.revoked", 10).await.expect("audit");
    assert_eq!(audit.len(), 1);
    assert!(audit[0].detail.contains("email_link"), "{}", audit[0].detail);

    // A link works once; incomplete and made-up links are explained.
    let page = html(post_form(&app, &stranger, "/consent/revoke", &[("token", &token)]).await, 422).await;
    assert!(page.contains("no longer valid"));
    html(get_page(&app, &stranger, &format!("/consent/revoke?token={token}")).await, 422).await;
    html(get_page(&app, &stranger, "/consent/revoke?token=made-up").await, 422).await;
    html(get_page(&app, &stranger, "/consent/revoke").await, 400).await;
    html(post_form(&app, &stranger, "/consent/revoke", &[]).await, 400).await;
    // Signed in, the way back is the consent page itself.
    let page = html(get_page(&app, &client, "/consent/revoke?token=made-up").await, 422).await;
    assert!(page.contains("href=\"/family/consent\""));
}

async fn revoke_link_page_for_cloud_ai_only(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS", "0")]).await;
    let client = verified_parent(&app, "cloudlink@example.com").await;
    give_consent(&app, &client, true).await;
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    let tokens = tokens_in_emails(&app, "cloudlink@example.com", "/consent/revoke?token=");
    assert_eq!(tokens.len(), 2, "one link for consent, one for cloud AI");

    let stranger = TestApp::new_client();
    let mut cloud_token = None;
    for token in &tokens {
        let page =
            html(get_page(&app, &stranger, &format!("/consent/revoke?token={token}")).await, 200).await;
        if page.contains("Stop cloud AI?") {
            cloud_token = Some(token.clone());
        }
    }
    let cloud_token = cloud_token.expect("a link that stops only cloud AI");
    let page =
        html(post_form(&app, &stranger, "/consent/revoke", &[("token", &cloud_token)]).await, 200).await;
    assert!(page.contains("Cloud AI stopped"));
    let status = consent_status(&app, &client).await;
    assert_eq!(status["cloudAi"], false);
    assert_eq!(status["coppaConsent"], true, "consent itself stays");

    // Revoking consent in the app leaves the other link with nothing to do.
    assert_redirect(
        &post_form(&app, &client, "/family/consent/revoke", &[]).await,
        "/family/consent?notice=consent-revoked",
    );
    let coppa_token = tokens.iter().find(|t| **t != cloud_token).expect("the consent link");
    let page =
        html(get_page(&app, &stranger, &format!("/consent/revoke?token={coppa_token}")).await, 200).await;
    assert!(page.contains("Nothing left to revoke"));
    assert!(!page.contains("action=\"/consent/revoke\""));
}

async fn child_profiles_edit_and_delete_through_forms(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = verified_parent(&app, "edit@example.com").await;
    let leo = add_child(&app, &client, "Leo", "9", "robot").await;

    // Only a first name or nickname: an email address is refused, with the reason.
    let response = post_form(
        &app,
        &client,
        "/family/children",
        &[("displayName", "leo@example.com"), ("age", "9"), ("persona", "robot")],
    )
    .await;
    let page = html(response, 422).await;
    assert!(page.contains("not an email address"));
    let page = html(
        post_form(&app, &client, "/family/children", &[("displayName", "Ana"), ("age", "nine")]).await,
        422,
    )
    .await;
    assert!(page.contains("Enter the age in years"));
    assert!(page.contains("value=\"Ana\""));
    let page = html(
        post_form(
            &app,
            &client,
            "/family/children",
            &[("displayName", "Ana"), ("age", "6"), ("persona", "dragon")],
        )
        .await,
        422,
    )
    .await;
    assert!(page.contains("Choose a buddy"));

    let edit = format!("/family/children/{leo}/edit");
    let page = html(get_page(&app, &client, &edit).await, 200).await;
    assert!(page.contains("Change Leo's profile"));
    assert!(page.contains("value=\"Leo\""));
    assert!(page.contains("value=\"9\""));
    assert!(page.contains("value=\"robot\" checked"), "the saved buddy is chosen");

    let response =
        post_form(&app, &client, &edit, &[("displayName", "Leo"), ("age", "2"), ("persona", "robot")]).await;
    let page = html(response, 422).await;
    assert!(page.contains("Onda is for children aged 3 to 17"));
    let response = post_form(
        &app,
        &client,
        &edit,
        &[("displayName", "Leonardo"), ("age", "10"), ("persona", "jellyfish")],
    )
    .await;
    assert_redirect(&response, "/family/children?notice=child-saved");
    let child = json_of(app.get(&client, &format!("/api/children/{leo}")).await, 200).await;
    assert_eq!(child["displayName"], "Leonardo");
    assert_eq!(child["age"], 10);
    assert_eq!(child["persona"], "jellyfish");
    let page = html(get_page(&app, &client, "/family/children?notice=child-saved").await, 200).await;
    assert!(page.contains("calm and gentle"));

    // Deleting asks first.
    let delete = format!("/family/children/{leo}/delete");
    let page = html(get_page(&app, &client, &delete).await, 200).await;
    assert!(page.contains("Remove Leonardo"));
    assert!(page.contains("with the jellyfish buddy"));
    assert!(page.contains(&format!("action=\"{delete}\"")));
    assert_eq!(child_count(&app, &leo).await, 1, "opening the page removes nothing");
    assert_redirect(&post_form(&app, &client, &delete, &[]).await, "/family/children?notice=child-removed");
    assert_eq!(child_count(&app, &leo).await, 0);
    html(get_page(&app, &client, &edit).await, 404).await;
    let deleted = app.ctx.store.audit_by_action("child.deleted", 10).await.expect("audit");
    assert_eq!(deleted.len(), 1);
}

async fn another_familys_child_is_a_404_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, mia) = ready_family(&app, "owner@example.com").await;
    let other = verified_parent(&app, "other@example.com").await;
    for path in [format!("/family/children/{mia}/edit"), format!("/family/children/{mia}/delete")] {
        let page = html(get_page(&app, &other, &path).await, 404).await;
        assert!(!page.contains("Mia"), "nothing about the child leaks");
    }
    let form = [("displayName", "Mine"), ("age", "8"), ("persona", "robot")];
    html(post_form(&app, &other, &format!("/family/children/{mia}/edit"), &form).await, 404).await;
    html(post_form(&app, &other, &format!("/family/children/{mia}/delete"), &[]).await, 404).await;
    html(post_form(&app, &other, &format!("/family/children/{mia}/start"), &[]).await, 404).await;
    html(get_page(&app, &other, "/family/children/not-a-real-id/edit").await, 404).await;
    let child = app.ctx.store.child_by_id(&mia).await.expect("lookup").expect("still there");
    assert_eq!(child.display_name, "Mia");
    let me = json_of(app.get(&other, "/api/me").await, 200).await;
    assert_eq!(me["kidModeChildId"], Value::Null, "no kid mode for another family's child");

    // Signed out, the pages ask to sign in and come back.
    assert_redirect(
        &get_page(&app, &TestApp::new_client(), &format!("/family/children/{mia}/edit")).await,
        &format!("/login?next=/family/children/{mia}/edit"),
    );
}

async fn pin_page_sets_and_changes_the_pin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = verified_parent(&app, "pin@example.com").await;
    let page = html(get_page(&app, &client, "/family/pin").await, 200).await;
    assert!(page.contains("Set a PIN"));
    assert!(page.contains("locks for 15 minutes"), "what the PIN does is explained");
    assert!(!page.contains("name=\"currentPin\""), "no current PIN to give yet");

    let page =
        html(post_form(&app, &client, "/family/pin", &[("pin", "12a4"), ("pinAgain", "12a4")]).await, 422)
            .await;
    assert!(page.contains("A PIN is 4 to 6 digits."));
    assert!(!page.contains("12a4"), "PINs are never sent back");
    let page =
        html(post_form(&app, &client, "/family/pin", &[("pin", "2468"), ("pinAgain", "2486")]).await, 422)
            .await;
    assert!(page.contains("not the same"));
    assert!(!onda::domain::pin::has_pin(&app.ctx, &family_id(&app, &client).await).await.expect("pin"));
    assert_redirect(
        &post_form(&app, &client, "/family/pin", &[("pin", "2468"), ("pinAgain", "2468")]).await,
        "/family/pin?notice=pin-set",
    );

    let page = html(get_page(&app, &client, "/family/pin?notice=pin-set").await, 200).await;
    assert!(page.contains("The family PIN is set."));
    assert!(page.contains("Change the PIN"));
    assert!(page.contains("name=\"currentPin\"") && page.contains("name=\"currentPassword\""));

    // Changing needs the current PIN or the password.
    let page =
        html(post_form(&app, &client, "/family/pin", &[("pin", "1357"), ("pinAgain", "1357")]).await, 422)
            .await;
    assert!(page.contains("Enter the current PIN"));
    let wrong = [("pin", "1357"), ("pinAgain", "1357"), ("currentPin", "0000")];
    let page = html(post_form(&app, &client, "/family/pin", &wrong).await, 403).await;
    assert!(page.contains("Wrong PIN: 4 tries left"));
    assert!(page.contains("href=\"#currentPin\""));
    let wrong = [("pin", "1357"), ("pinAgain", "1357"), ("currentPassword", "not-my-password")];
    let page = html(post_form(&app, &client, "/family/pin", &wrong).await, 403).await;
    assert!(page.contains("The current password is wrong."));
    assert!(page.contains("href=\"#currentPassword\""));
    assert!(!page.contains("not-my-password"));
    let right = [("pin", "1357"), ("pinAgain", "1357"), ("currentPin", "2468")];
    assert_redirect(&post_form(&app, &client, "/family/pin", &right).await, "/family/pin?notice=pin-changed");
    let right = [("pin", "97531"), ("pinAgain", "97531"), ("currentPassword", PASSWORD)];
    assert_redirect(&post_form(&app, &client, "/family/pin", &right).await, "/family/pin?notice=pin-changed");
    assert_eq!(app.post(&client, "/api/pin/verify", json!({ "pin": "97531" })).await.status(), 204);
    let changed = app.ctx.store.audit_by_action("pin.changed", 10).await.expect("audit");
    assert_eq!(changed.len(), 2);
}

async fn family_id(app: &TestApp, client: &reqwest::Client) -> String {
    let me = json_of(app.get(client, "/api/me").await, 200).await;
    me["familyId"].as_str().expect("family id").to_string()
}

async fn a_locked_pin_says_when_to_try_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (client, mia) = ready_family(&app, "locked@example.com").await;
    assert_redirect(&post_form(&app, &client, &format!("/family/children/{mia}/start"), &[]).await, "/kid");

    for left in [4, 3, 2, 1] {
        let page = html(post_form(&app, &client, "/kid/leave", &[("pin", "0000")]).await, 403).await;
        let tries = if left == 1 { "1 try left".to_string() } else { format!("{left} tries left") };
        assert!(page.contains(&tries), "{tries}");
    }
    let response = post_form(&app, &client, "/kid/leave", &[("pin", "0000")]).await;
    assert_eq!(header(&response, "retry-after"), "900");
    let page = html(response, 423).await;
    assert!(page.contains("the PIN is locked. Try again in 15 minutes"));
    assert!(page.contains("action=\"/logout\""), "the way out for a forgotten PIN is offered");
    // Even the right PIN waits for the lock to end.
    html(post_form(&app, &client, "/kid/leave", &[("pin", "2468")]).await, 423).await;
    app.clock.advance_ms(10 * 60 * 1000);
    let page = html(post_form(&app, &client, "/kid/leave", &[("pin", "2468")]).await, 423).await;
    assert!(page.contains("Try again in 5 minutes"));
    app.clock.advance_ms(5 * 60 * 1000);
    let response = post_form(&app, &client, "/kid/leave", &[("pin", "2468")]).await;
    assert_redirect(&response, "/family?notice=kid-mode-left");
    let page = html(get_page(&app, &client, "/family?notice=kid-mode-left").await, 200).await;
    assert!(page.contains("Kid mode is off"));
    let locks = app.ctx.store.audit_by_action("pin.locked", 10).await.expect("audit");
    assert_eq!(locks.len(), 1);
}

async fn kid_page_outside_a_childs_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let page = html(get_page(&app, &TestApp::new_client(), "/kid").await, 401).await;
    assert!(page.contains("ask a grown-up"));
    assert!(page.contains("href=\"/login?next=/family/children\""));
    assert_redirect(&get_page(&app, &TestApp::new_client(), "/kid/leave").await, "/login?next=/family");

    let (client, mia) = ready_family(&app, "outside@example.com").await;
    assert_redirect(&get_page(&app, &client, "/kid").await, "/family/children");
    assert_redirect(&get_page(&app, &client, "/kid/leave?next=/family/pin").await, "/family/pin");
    assert_redirect(&get_page(&app, &client, "/kid/leave?next=https://evil.example").await, "/family");

    // Consent that stops being in force (here revoked behind the app's back) rests the buddy.
    assert_redirect(&post_form(&app, &client, &format!("/family/children/{mia}/start"), &[]).await, "/kid");
    let family = family_id(&app, &client).await;
    app.ctx.store.revoke_consents(&family, "coppa", app.ctx.now()).await.expect("revoked");
    let page = html(get_page(&app, &client, "/kid").await, 403).await;
    assert!(page.contains("Hi Mia!"));
    assert!(page.contains("resting"));
    assert!(page.contains("href=\"/kid/leave\""));

    // Staff accounts have no child's page.
    onda::domain::accounts::create_staff(
        &app.ctx,
        "staff@example.com",
        PASSWORD,
        onda::domain::accounts::Role::Admin,
    )
    .await
    .expect("admin");
    let staff = TestApp::new_client();
    assert_redirect(
        &post_form(&app, &staff, "/login", &[("email", "staff@example.com"), ("password", PASSWORD)]).await,
        "/",
    );
    html(get_page(&app, &staff, "/kid").await, 403).await;
    html(get_page(&app, &staff, "/family/children").await, 403).await;
}

async fn family_pages_have_no_inline_script_or_style(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("ONDA_CONSENT_CONFIRMATION_DELAY_SECONDS", "0")]).await;
    let mut pages: Vec<(String, String)> = Vec::new();
    let unverified = sign_up_by_form(&app, "unverified@example.com").await;
    for path in ["/family", "/family/consent", "/family/children", "/family/pin"] {
        let text = get_page(&app, &unverified, path).await.text().await.expect("page");
        pages.push((format!("{path} unverified"), text));
    }

    let (client, mia) = ready_family(&app, "csp-family@example.com").await;
    onda::jobs::run_due(&app.ctx).await.expect("jobs run");
    let token = app.token_from_email("csp-family@example.com", "/consent/revoke?token=");
    for path in [
        "/family?notice=pin-set".to_string(),
        "/family/consent?notice=consent-given".to_string(),
        "/family/consent/revoke".to_string(),
        "/family/children?notice=child-added".to_string(),
        format!("/family/children/{mia}/edit"),
        format!("/family/children/{mia}/delete"),
        "/family/pin".to_string(),
        format!("/consent/revoke?token={token}"),
        "/consent/revoke?token=made-up".to_string(),
        "/consent/revoke".to_string(),
    ] {
        let text = get_page(&app, &client, &path).await.text().await.expect("page");
        pages.push((path, text));
    }
    for (path, form) in [
        ("/family/children", vec![("displayName", "Mia"), ("age", "99"), ("persona", "robot")]),
        ("/family/pin", vec![("pin", "1"), ("pinAgain", "1")]),
        ("/family/consent", vec![("privacyPolicyVersion", "2.0")]),
    ] {
        let text = post_form(&app, &client, path, &form).await.text().await.expect("page");
        pages.push((format!("POST {path}"), text));
    }
    assert_redirect(&post_form(&app, &client, &format!("/family/children/{mia}/start"), &[]).await, "/kid");
    for path in ["/kid", "/kid/leave?next=/family"] {
        let text = get_page(&app, &client, path).await.text().await.expect("page");
        pages.push((format!("{path} in kid mode"), text));
    }
    let text = post_form(&app, &client, "/kid/leave", &[("pin", "0000")]).await.text().await.expect("page");
    pages.push(("POST /kid/leave wrong".into(), text));
    let text = post_form(&app, &TestApp::new_client(), "/consent/revoke", &[("token", &token)])
        .await
        .text()
        .await
        .expect("page");
    pages.push(("POST /consent/revoke".into(), text));
    let text = get_page(&app, &TestApp::new_client(), "/kid").await.text().await.expect("page");
    pages.push(("/kid signed out".into(), text));

    for (name, page) in &pages {
        assert_no_inline_script_or_style(name, page);
    }
}

async fn consent_page_asks_again_for_new_versions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = verified_parent(&app, "renew@example.com").await;
    let me = json_of(app.get(&client, "/api/me").await, 200).await;
    // Consent given under the previous policy and terms.
    let old = onda::storage::ConsentRow {
        id: onda::storage::new_id(),
        family_id: me["familyId"].as_str().expect("family").to_string(),
        user_id: me["id"].as_str().expect("user").to_string(),
        kind: "coppa".into(),
        method: "email_plus".into(),
        granted_at: app.ctx.now() - 86_400_000,
        ip: None,
        privacy_policy_version: "1.0".into(),
        terms_version: "1.0".into(),
        confirmation_sent_at: None,
        revoked_at: None,
    };
    app.ctx.store.insert_consent(&old).await.expect("old consent");
    let status = consent_status(&app, &client).await;
    assert_eq!(status["needsRenewal"], true);

    let page = html(get_page(&app, &client, "/family/consent").await, 200).await;
    assert!(page.contains("The policy or terms changed: please consent again"));
    assert!(page.contains("for older versions of the policy or terms"));
    assert!(page.contains("name=\"guardian\""), "the form asks again");
    assert!(page.contains("href=\"/family/consent/revoke\""), "the old consent can still be revoked");
    let overview = html(get_page(&app, &client, "/family").await, 200).await;
    assert!(overview.contains("The privacy policy or the terms changed since you consented"));

    give_consent(&app, &client, false).await;
    let status = consent_status(&app, &client).await;
    assert_eq!(status["needsRenewal"], false);
    assert_eq!(status["coppaConsent"], true);
}
