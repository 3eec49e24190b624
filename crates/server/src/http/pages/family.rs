//! The signed-in parent's area under `/family`: the overview (account and the getting-started
//! checklist), then [`consent`], [`children`] and [`pin`]. Each page is listed in [`FAMILY_SECTIONS`]
//! (the sub-navigation) and, as a step of getting started, in [`steps`].
//!
//! Every handler starts with [`require_parent`]: signed out, the browser goes to the sign-in page and
//! back; in kid mode, to the PIN page (`/kid/leave`) and back.

pub mod children;
pub mod consent;
pub mod pin;

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{Layout, PageError, PageQuery, Viewer, render};
use crate::domain::accounts::{Authenticated, Role};
use crate::domain::{self, Context, DomainError};
use crate::http::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/family", get(overview))
        .merge(consent::routes())
        .merge(children::routes())
        .merge(pin::routes())
}

/// The family area's sub-navigation, in order: `(path, label)`.
pub const FAMILY_SECTIONS: &[(&str, &str)] = &[
    ("/family", "Overview"),
    ("/family/consent", "Consent"),
    ("/family/children", "Children"),
    ("/family/pin", "PIN"),
];

/// One entry of the family sub-navigation, marked when it is the page being shown.
pub struct SectionLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

pub fn section_links(current: &str) -> Vec<SectionLink> {
    FAMILY_SECTIONS
        .iter()
        .map(|&(href, label)| SectionLink { href, label, current: href == current })
        .collect()
}

/// One step of getting a family started, shown as done or to do.
pub struct Step {
    pub title: &'static str,
    pub detail: String,
    pub done: bool,
    /// The page where the step is taken.
    pub href: &'static str,
}

/// The steps a parent takes before a child can chat: confirm the email, give consent, add a child,
/// set a PIN, start a session.
pub async fn steps(ctx: &Context, auth: &Authenticated, family_id: &str) -> Result<Vec<Step>, DomainError> {
    let verified = auth.user.email_verified_at.is_some();
    let consent = domain::consent::status(ctx, family_id).await?;
    let kids = domain::children::list(ctx, family_id).await?;
    let has_pin = domain::pin::has_pin(ctx, family_id).await?;
    let started = ctx.store.family_has_audit_action(family_id, "kid_mode.entered").await?;

    let consent_done = consent.coppa_consent || !consent.required;
    let consent_detail = if consent.coppa_consent {
        format!(
            "In force for privacy policy version {} and terms version {}.",
            consent.privacy_policy_version, consent.terms_version
        )
    } else if consent.needs_renewal && consent.required {
        "The privacy policy or the terms changed since you consented. Read them and consent again: until then your children cannot chat.".to_string()
    } else if !consent.required {
        "This server does not ask for it before children chat, but you can still give it.".to_string()
    } else if verified {
        "Read the privacy policy and the terms, and agree as your child's parent or guardian.".to_string()
    } else {
        "Consent can only come from a confirmed email address: confirm yours first.".to_string()
    };
    let kids_detail = match kids.len() {
        0 => "A first name or nickname, an age and a buddy. Nothing else.".to_string(),
        1 => format!("{} has a profile.", kids[0].display_name),
        n => format!("{n} children have a profile."),
    };
    Ok(vec![
        Step {
            title: "Confirm your email",
            detail: if verified {
                format!("{} is confirmed.", auth.user.email)
            } else {
                format!("We sent a link to {}. Open it to confirm the address.", auth.user.email)
            },
            done: verified,
            href: "/family",
        },
        Step { title: "Give consent", detail: consent_detail, done: consent_done, href: "/family/consent" },
        Step { title: "Add a child", detail: kids_detail, done: !kids.is_empty(), href: "/family/children" },
        Step {
            title: "Set a family PIN",
            detail: if has_pin {
                "The PIN is set. It is what lets only a grown-up leave a child's session.".to_string()
            } else {
                "4 to 6 digits that your children do not know. Leaving a child's session needs it."
                    .to_string()
            },
            done: has_pin,
            href: "/family/pin",
        },
        Step {
            title: "Start a session",
            detail: if started {
                "A child's session has been started on a device. Start one from the children page any time."
                    .to_string()
            } else {
                "On the device your child uses, open the children page and press Start. Leaving takes the PIN."
                    .to_string()
            },
            done: started,
            href: "/family/children",
        },
    ])
}

/// The signed-in parent a family page is for. Signed out: to the sign-in page and back to `path`.
/// In kid mode: to the PIN page and back to `path` (for a form's action, pass the page it is on).
/// A staff account: a page that says why not.
pub fn require_parent<'a>(viewer: &'a Viewer, path: &str) -> Result<&'a Authenticated, PageError> {
    let Some(auth) = &viewer.0 else {
        return Err(PageError::sign_in_then(path));
    };
    if auth.role != Role::Parent || auth.user.family_id.is_none() {
        return Err(PageError::new(StatusCode::FORBIDDEN, "The family pages are for parent accounts."));
    }
    if auth.session.kid_child_id.is_some() {
        return Err(PageError::leave_kid_mode_then(path));
    }
    Ok(auth)
}

/// The family of a parent that [`require_parent`] let through.
pub fn family_of(auth: &Authenticated) -> Result<&str, PageError> {
    auth.user
        .family_id
        .as_deref()
        .ok_or_else(|| PageError::new(StatusCode::FORBIDDEN, "The family pages are for parent accounts."))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NoticeQuery {
    pub notice: String,
}

/// Notices the family pages show after a redirect, by name (never free text from the URL).
pub fn family_notice(name: &str) -> Option<&'static str> {
    match name {
        "verification-sent" => Some("We sent a new confirmation link. It works for 48 hours."),
        "consent-given" => Some(
            "Thank you: your consent is recorded. A confirmation email with a link to revoke it follows.",
        ),
        "cloud-ai-allowed" => Some("Cloud AI is allowed. You can stop it on this page at any time."),
        "cloud-ai-revoked" => Some("Cloud AI is off: your children's messages stay on this machine."),
        "consent-revoked" => Some(
            "Your consent is revoked, and cloud AI with it. Any device that was in a child's session is signed out.",
        ),
        "child-added" => Some("The profile is added."),
        "child-saved" => Some("The profile is saved."),
        "child-removed" => Some("The profile is removed, with everything kept about the child."),
        "pin-set" => Some("The family PIN is set."),
        "pin-changed" => Some("The family PIN is changed."),
        "kid-mode-left" => Some("Welcome back. Kid mode is off in this browser."),
        _ => None,
    }
}

#[derive(Template)]
#[template(path = "family/overview.html")]
struct OverviewPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    email: String,
    email_verified: bool,
    steps: Vec<Step>,
}

async fn overview(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, "/family")?;
    let family_id = family_of(auth)?;
    let page = OverviewPage {
        sections: section_links("/family"),
        notice: family_notice(&query.notice),
        email: auth.user.email.clone(),
        email_verified: auth.user.email_verified_at.is_some(),
        steps: steps(&ctx, auth, family_id).await?,
        layout: Layout::new(&ctx, &viewer, "family", "Your family"),
    };
    Ok(render(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_is_a_family_page() {
        for (href, _) in FAMILY_SECTIONS {
            assert!(href.starts_with("/family"), "{href}");
        }
        assert_eq!(section_links("/family/pin").iter().filter(|s| s.current).count(), 1);
    }

    #[test]
    fn unknown_notices_show_nothing() {
        assert!(family_notice("consent-given").is_some());
        assert!(family_notice("<b>hello</b>").is_none());
        assert!(family_notice("").is_none());
    }
}
