//! Account pages: sign-up, sign-in, sign-out, email verification and password reset. Each calls the
//! same `domain::accounts` function as its `/api/auth/*` twin and sets or clears the same cookie.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{
    FormErrors, Layout, PageError, PageForm, PageQuery, Viewer, form_refusal, local_path, render, see_other,
};
use crate::domain::accounts::{self, Role};
use crate::domain::{Context, DomainError};
use crate::http::AppState;
use crate::http::extract::{ClientIp, clear_session_cookie, session_cookie};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signup", get(sign_up_form).post(sign_up))
        .route("/login", get(log_in_form).post(log_in))
        .route("/logout", get(log_out_form).post(log_out))
        .route("/verify-email", get(verify_email))
        .route("/verify-email/resend", post(resend_verification))
        .route("/forgot-password", get(forgot_password_form).post(forgot_password))
        .route("/reset-password", get(reset_password_form).post(reset_password))
}

/// Where a parent lands after signing in, unless a `next` path says otherwise.
pub const PARENT_HOME: &str = "/family";

/// The account's own area: the family pages for parents, the home page for staff for now.
fn home_of(role: Role) -> &'static str {
    match role {
        Role::Parent => PARENT_HOME,
        Role::Moderator | Role::Admin => "/",
    }
}

// ---- sign-up ----

#[derive(Template)]
#[template(path = "account/signup.html")]
struct SignUpPage {
    layout: Layout,
    email: String,
    errors: FormErrors,
    password_hint: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignUpForm {
    pub email: String,
    pub password: String,
}

fn sign_up_page(ctx: &Context, viewer: &Viewer, email: String, errors: FormErrors) -> SignUpPage {
    SignUpPage {
        layout: Layout::new(ctx, viewer, "signup", "Create a parent account"),
        email,
        errors,
        password_hint: format!(
            "At least {} characters. A short sentence is easy to remember.",
            accounts::PASSWORD_MIN_CHARS
        ),
    }
}

async fn sign_up_form(State(ctx): State<Context>, viewer: Viewer) -> Response {
    if let Some(auth) = &viewer.0 {
        return see_other(home_of(auth.role), None);
    }
    render(StatusCode::OK, &sign_up_page(&ctx, &viewer, String::new(), FormErrors::default()))
}

/// Creates the family and its parent, signs them in and sends them to their family page, where the
/// next steps (confirming the email, consent, children) wait.
async fn sign_up(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<SignUpForm>,
) -> Result<Response, PageError> {
    if let Err(err) = accounts::sign_up(&ctx, &form.email, &form.password, ip.as_deref()).await {
        let (status, errors) = form_refusal(err, "email")?;
        return Ok(render(status, &sign_up_page(&ctx, &viewer, form.email, errors)));
    }
    // A browser that was signed in to another account leaves it cleanly.
    if let Some(previous) = &viewer.0 {
        accounts::log_out(&ctx, previous).await?;
    }
    let (token, user) = accounts::log_in(&ctx, &form.email, &form.password, ip.as_deref()).await?;
    let role = Role::parse(&user.role).unwrap_or(Role::Parent);
    Ok(see_other(home_of(role), Some(session_cookie(&token, ctx.config.is_https()))))
}

// ---- sign-in ----

#[derive(Template)]
#[template(path = "account/login.html")]
struct LogInPage {
    layout: Layout,
    email: String,
    next: String,
    notice: Option<&'static str>,
    errors: FormErrors,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogInQuery {
    pub next: String,
    pub notice: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LogInForm {
    pub email: String,
    pub password: String,
    pub next: String,
}

/// Notices other pages may ask the sign-in page to show, by name (never free text from the URL).
fn login_notice(name: &str) -> Option<&'static str> {
    match name {
        "password-changed" => Some("Your password is changed. Sign in with your new password."),
        "signed-out" => Some("You are signed out."),
        _ => None,
    }
}

async fn log_in_form(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<LogInQuery>,
) -> Response {
    let next = local_path(&query.next).unwrap_or_default().to_string();
    if let Some(auth) = &viewer.0 {
        let target = if next.is_empty() { home_of(auth.role) } else { next.as_str() };
        return see_other(target, None);
    }
    let page = LogInPage {
        layout: Layout::new(&ctx, &viewer, "login", "Sign in"),
        email: String::new(),
        next,
        notice: login_notice(&query.notice),
        errors: FormErrors::default(),
    };
    render(StatusCode::OK, &page)
}

/// Signs in. A wrong email or password re-renders the form with status 401 and the email kept.
async fn log_in(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<LogInForm>,
) -> Result<Response, PageError> {
    let next = local_path(&form.next).unwrap_or_default().to_string();
    match accounts::log_in(&ctx, &form.email, &form.password, ip.as_deref()).await {
        Ok((token, user)) => {
            if let Some(previous) = &viewer.0 {
                accounts::log_out(&ctx, previous).await?;
            }
            let role = Role::parse(&user.role).unwrap_or(Role::Parent);
            let target = if next.is_empty() { home_of(role) } else { next.as_str() };
            Ok(see_other(target, Some(session_cookie(&token, ctx.config.is_https()))))
        }
        Err(DomainError::Unauthenticated) => {
            let page = LogInPage {
                layout: Layout::new(&ctx, &viewer, "login", "Sign in"),
                email: form.email,
                next,
                notice: None,
                errors: FormErrors::one(
                    "email",
                    "That email and password do not match an account. Check both, or reset your password.",
                ),
            };
            Ok(render(StatusCode::UNAUTHORIZED, &page))
        }
        Err(err) => Err(err.into()),
    }
}

// ---- sign-out ----

#[derive(Template)]
#[template(path = "account/logout.html")]
struct LogOutPage {
    layout: Layout,
}

/// Someone who types `/logout` into the address bar gets a button: signing out changes state, so it
/// is a POST (which the CSRF check covers).
async fn log_out_form(State(ctx): State<Context>, viewer: Viewer) -> Response {
    if viewer.0.is_none() {
        return see_other("/", None);
    }
    render(StatusCode::OK, &LogOutPage { layout: Layout::new(&ctx, &viewer, "logout", "Sign out") })
}

async fn log_out(State(ctx): State<Context>, viewer: Viewer) -> Result<Response, PageError> {
    if let Some(auth) = &viewer.0 {
        accounts::log_out(&ctx, auth).await?;
    }
    Ok(see_other("/login?notice=signed-out", Some(clear_session_cookie(ctx.config.is_https()))))
}

// ---- email verification ----

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TokenQuery {
    pub token: String,
}

#[derive(Template)]
#[template(path = "account/verify_email.html")]
struct VerifyEmailPage {
    layout: Layout,
    verified: bool,
    message: String,
    /// The viewer is signed in (and may ask for a new link from their family page).
    signed_in: bool,
}

/// The link in the verification email. Opening it confirms the address and shows the outcome.
async fn verify_email(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<TokenQuery>,
) -> Result<Response, PageError> {
    let signed_in = viewer.parent().is_some();
    let (status, verified, message) = if query.token.trim().is_empty() {
        (
            StatusCode::BAD_REQUEST,
            false,
            "This link is incomplete. Open the link from the email again, or copy the whole address into your browser.".to_string(),
        )
    } else {
        match accounts::verify_email(&ctx, query.token.trim()).await {
            Ok(user) => (StatusCode::OK, true, format!("Thank you. {} is confirmed.", user.email)),
            Err(DomainError::Invalid { .. }) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
                "This link is no longer valid: it was already used, or it is more than 48 hours old."
                    .to_string(),
            ),
            Err(err) => return Err(err.into()),
        }
    };
    let title = if verified { "Email confirmed" } else { "This link did not work" };
    let page =
        VerifyEmailPage { layout: Layout::new(&ctx, &viewer, "verify", title), verified, message, signed_in };
    Ok(render(status, &page))
}

/// The "send me a new link" button of the family page.
async fn resend_verification(State(ctx): State<Context>, viewer: Viewer) -> Result<Response, PageError> {
    let Some(auth) = &viewer.0 else {
        return Err(PageError::sign_in_then(PARENT_HOME));
    };
    if auth.user.email_verified_at.is_some() {
        return Ok(see_other(home_of(auth.role), None));
    }
    accounts::send_verification_email(&ctx, &auth.user).await?;
    Ok(see_other("/family?notice=verification-sent", None))
}

// ---- password reset ----

#[derive(Template)]
#[template(path = "account/forgot_password.html")]
struct ForgotPasswordPage {
    layout: Layout,
    email: String,
    sent: bool,
    errors: FormErrors,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ForgotQuery {
    pub sent: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ForgotForm {
    pub email: String,
}

async fn forgot_password_form(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<ForgotQuery>,
) -> Response {
    let page = ForgotPasswordPage {
        layout: Layout::new(&ctx, &viewer, "forgot", "Reset your password"),
        email: String::new(),
        sent: !query.sent.is_empty(),
        errors: FormErrors::default(),
    };
    render(StatusCode::OK, &page)
}

/// Sends a reset link when the account exists. The answer is the same either way, so the form
/// cannot be used to learn who has an account.
async fn forgot_password(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<ForgotForm>,
) -> Result<Response, PageError> {
    if let Err(err) = accounts::normalise_email(&form.email) {
        let (status, errors) = form_refusal(err, "email")?;
        let page = ForgotPasswordPage {
            layout: Layout::new(&ctx, &viewer, "forgot", "Reset your password"),
            email: form.email,
            sent: false,
            errors,
        };
        return Ok(render(status, &page));
    }
    accounts::request_password_reset(&ctx, &form.email, ip.as_deref()).await?;
    Ok(see_other("/forgot-password?sent=1", None))
}

#[derive(Template)]
#[template(path = "account/reset_password.html")]
struct ResetPasswordPage {
    layout: Layout,
    token: String,
    /// The link itself is bad: offer a new one instead of the form.
    link_invalid: bool,
    errors: FormErrors,
    password_hint: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ResetForm {
    pub token: String,
    pub password: String,
}

fn reset_page(ctx: &Context, viewer: &Viewer, token: String, errors: FormErrors) -> ResetPasswordPage {
    ResetPasswordPage {
        layout: Layout::new(ctx, viewer, "reset", "Choose a new password"),
        link_invalid: token.trim().is_empty() || errors.get("token").is_some(),
        token,
        errors,
        password_hint: format!(
            "At least {} characters. Every browser signed in to your account will be signed out.",
            accounts::PASSWORD_MIN_CHARS
        ),
    }
}

/// The link in the reset email: a form for the new password, carrying the token along.
async fn reset_password_form(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<TokenQuery>,
) -> Response {
    let token = query.token.trim().to_string();
    let status = if token.is_empty() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    let errors = if token.is_empty() {
        FormErrors::one("token", "This link is incomplete. Ask for a new one below.")
    } else {
        FormErrors::default()
    };
    render(status, &reset_page(&ctx, &viewer, token, errors))
}

async fn reset_password(
    State(ctx): State<Context>,
    viewer: Viewer,
    ip: ClientIp,
    PageForm(form): PageForm<ResetForm>,
) -> Result<Response, PageError> {
    let token = form.token.trim().to_string();
    match accounts::reset_password(&ctx, &token, &form.password, ip.as_deref()).await {
        Ok(()) => Ok(see_other("/login?notice=password-changed", None)),
        Err(err) => {
            let (status, mut errors) = form_refusal(err, "password")?;
            if errors.get("token").is_some() {
                errors = FormErrors::one(
                    "token",
                    "This link is no longer valid: it was already used, or it is more than an hour old. Ask for a new one below.",
                );
            }
            Ok(render(status, &reset_page(&ctx, &viewer, token, errors)))
        }
    }
}
