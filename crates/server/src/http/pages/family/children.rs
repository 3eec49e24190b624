//! Child profile pages: `/family/children` (the list, the add form, and the button that starts a
//! child's session on this device), `/family/children/{id}/edit` and `/family/children/{id}/delete`
//! (asks first). They call the same `domain::children` and `domain::pin` functions as
//! `/api/children`; another family's child is a 404 page.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{NoticeQuery, SectionLink, family_notice, family_of, require_parent, section_links};
use crate::domain::accounts::Authenticated;
use crate::domain::children::{self, ChildUpdate, ChildView, NewChild, Persona};
use crate::domain::{Context, DomainError, consent, pin};
use crate::http::AppState;
use crate::http::pages::{
    FormErrors, Layout, PageError, PageForm, PageQuery, Viewer, form_refusal, render, see_other,
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/family/children", get(children_page).post(add_child))
        .route("/family/children/{id}/edit", get(edit_form).post(edit_child))
        .route("/family/children/{id}/delete", get(delete_form).post(delete_child))
        .route("/family/children/{id}/start", post(start_session))
}

const PAGE: &str = "/family/children";

/// How a buddy is introduced to parents (and, on the kid page, to the child).
pub fn persona_label(persona: Persona) -> &'static str {
    match persona {
        Persona::Raccoon => "Raccoon",
        Persona::Jellyfish => "Jellyfish",
        Persona::Robot => "Robot",
    }
}

pub fn persona_description(persona: Persona) -> &'static str {
    match persona {
        Persona::Raccoon => "playful and curious, always up for a riddle or a game",
        Persona::Jellyfish => "calm and gentle, good at slowing down and listening",
        Persona::Robot => "full of funny facts about numbers, nature and how things work",
    }
}

/// A child profile as the pages show it.
pub struct ChildItem {
    pub id: String,
    pub name: String,
    pub age: i64,
    pub persona_label: &'static str,
    pub persona_description: &'static str,
}

impl From<&ChildView> for ChildItem {
    fn from(child: &ChildView) -> Self {
        let persona = Persona::parse(&child.persona);
        Self {
            id: child.id.clone(),
            name: child.display_name.clone(),
            age: child.age,
            persona_label: persona.map_or("Buddy", persona_label),
            persona_description: persona.map_or("", persona_description),
        }
    }
}

/// One radio button of the buddy choice.
pub struct PersonaChoice {
    pub value: &'static str,
    pub label: &'static str,
    pub description: &'static str,
    pub checked: bool,
}

fn persona_choices(selected: &str) -> Vec<PersonaChoice> {
    let selected = Persona::parse(selected);
    Persona::ALL
        .into_iter()
        .map(|p| PersonaChoice {
            value: p.as_str(),
            label: persona_label(p),
            description: persona_description(p),
            checked: selected == Some(p),
        })
        .collect()
}

/// The values of the add and edit forms, kept as typed so a refused form shows them again.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub struct ChildForm {
    pub display_name: String,
    pub age: String,
    pub persona: String,
}

impl ChildForm {
    /// The age as a number. The range is the domain's rule; this only reads the field.
    fn age(&self) -> Result<i64, (StatusCode, FormErrors)> {
        self.age.trim().parse::<i64>().map_err(|_| {
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                FormErrors::one(
                    "age",
                    format!(
                        "Enter the age in years, as a number from {} to {}",
                        children::MIN_AGE,
                        children::MAX_AGE
                    ),
                ),
            )
        })
    }
}

/// The same hints on the add and the edit form.
pub struct FormHints {
    pub name: String,
    pub age: String,
    pub min_age: i64,
    pub max_age: i64,
}

fn hints() -> FormHints {
    FormHints {
        name: format!(
            "A first name or a nickname, up to {} characters. Onda asks for nothing else about your child \
             (no surname, birthday, school or photo): this is data minimisation, because what is never \
             collected can never leak.",
            children::NAME_MAX_CHARS
        ),
        age: format!(
            "From {} to {}. The buddy uses it to pick words your child understands.",
            children::MIN_AGE,
            children::MAX_AGE
        ),
        min_age: children::MIN_AGE,
        max_age: children::MAX_AGE,
    }
}

#[derive(Template)]
#[template(path = "family/children.html")]
struct ChildrenPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    children: Vec<ChildItem>,
    has_pin: bool,
    chat_allowed: bool,
    can_add: bool,
    max_children: usize,
    errors: FormErrors,
    display_name: String,
    age: String,
    personas: Vec<PersonaChoice>,
    hints: FormHints,
}

async fn children_page_for(
    ctx: &Context,
    viewer: &Viewer,
    auth: &Authenticated,
    notice: Option<&'static str>,
    errors: FormErrors,
    form: ChildForm,
) -> Result<ChildrenPage, PageError> {
    let family_id = family_of(auth)?;
    let list = children::list(ctx, family_id).await?;
    Ok(ChildrenPage {
        layout: Layout::new(ctx, viewer, "family", "Children"),
        sections: section_links(PAGE),
        notice,
        can_add: list.len() < children::MAX_CHILDREN_PER_FAMILY,
        max_children: children::MAX_CHILDREN_PER_FAMILY,
        children: list.iter().map(ChildItem::from).collect(),
        has_pin: pin::has_pin(ctx, family_id).await?,
        chat_allowed: consent::chat_allowed(ctx, family_id).await?,
        errors,
        personas: persona_choices(if form.persona.is_empty() { "raccoon" } else { &form.persona }),
        display_name: form.display_name,
        age: form.age,
        hints: hints(),
    })
}

async fn children_page(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let notice = family_notice(&query.notice);
    let page =
        children_page_for(&ctx, &viewer, auth, notice, FormErrors::default(), ChildForm::default()).await?;
    Ok(render(StatusCode::OK, &page))
}

async fn add_child(
    State(ctx): State<Context>,
    viewer: Viewer,
    PageForm(form): PageForm<ChildForm>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let family_id = family_of(auth)?;
    let refusal = match form.age() {
        Ok(age) => {
            let input =
                NewChild { display_name: form.display_name.clone(), age, persona: form.persona.clone() };
            match children::create(&ctx, &auth.user.id, family_id, input).await {
                Ok(_) => return Ok(see_other(&format!("{PAGE}?notice=child-added"), None)),
                Err(err) => form_refusal(err, "displayName")?,
            }
        }
        Err(refusal) => refusal,
    };
    let (status, errors) = refusal;
    let page = children_page_for(&ctx, &viewer, auth, None, errors, form).await?;
    Ok(render(status, &page))
}

/// Starts the child's session in this browser (kid mode) and opens the child's page. Without a PIN
/// or consent, the children page explains what to do first.
async fn start_session(
    State(ctx): State<Context>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    let (status, message) = match pin::enter_kid_mode(&ctx, auth, &id).await {
        Ok(_) => return Ok(see_other("/kid", None)),
        // No PIN yet, or no consent: both are explained beside the links that fix them.
        Err(DomainError::Conflict(message)) => (StatusCode::CONFLICT, message),
        Err(DomainError::Forbidden(why)) => (StatusCode::FORBIDDEN, why.to_string()),
        Err(err) => return Err(err.into()),
    };
    let errors = FormErrors::one("before-start", message);
    let page = children_page_for(&ctx, &viewer, auth, None, errors, ChildForm::default()).await?;
    Ok(render(status, &page))
}

// ---- edit ----

#[derive(Template)]
#[template(path = "family/child_edit.html")]
struct EditPage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    id: String,
    /// The name as saved, for the heading (the field may hold a refused one).
    saved_name: String,
    errors: FormErrors,
    display_name: String,
    age: String,
    personas: Vec<PersonaChoice>,
    hints: FormHints,
}

fn edit_page(
    ctx: &Context,
    viewer: &Viewer,
    child: &ChildView,
    errors: FormErrors,
    form: ChildForm,
) -> EditPage {
    EditPage {
        layout: Layout::new(ctx, viewer, "family", format!("Change {}'s profile", child.display_name)),
        sections: section_links(PAGE),
        notice: None,
        id: child.id.clone(),
        saved_name: child.display_name.clone(),
        errors,
        personas: persona_choices(&form.persona),
        display_name: form.display_name,
        age: form.age,
        hints: hints(),
    }
}

async fn edit_form(
    State(ctx): State<Context>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, &format!("{PAGE}/{id}/edit"))?;
    let child = children::get(&ctx, family_of(auth)?, &id).await?;
    let form = ChildForm {
        display_name: child.display_name.clone(),
        age: child.age.to_string(),
        persona: child.persona.clone(),
    };
    Ok(render(StatusCode::OK, &edit_page(&ctx, &viewer, &child, FormErrors::default(), form)))
}

async fn edit_child(
    State(ctx): State<Context>,
    viewer: Viewer,
    Path(id): Path<String>,
    PageForm(form): PageForm<ChildForm>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, &format!("{PAGE}/{id}/edit"))?;
    let family_id = family_of(auth)?;
    // Another family's child is a 404 before anything about the form is said.
    let child = children::get(&ctx, family_id, &id).await?;
    let refusal = match form.age() {
        Ok(age) => {
            let update = ChildUpdate {
                display_name: Some(form.display_name.clone()),
                age: Some(age),
                persona: Some(form.persona.clone()),
            };
            match children::update(&ctx, &auth.user.id, family_id, &id, update).await {
                Ok(_) => return Ok(see_other(&format!("{PAGE}?notice=child-saved"), None)),
                Err(err) => form_refusal(err, "displayName")?,
            }
        }
        Err(refusal) => refusal,
    };
    let (status, errors) = refusal;
    Ok(render(status, &edit_page(&ctx, &viewer, &child, errors, form)))
}

// ---- delete ----

#[derive(Template)]
#[template(path = "family/child_delete.html")]
struct DeletePage {
    layout: Layout,
    sections: Vec<SectionLink>,
    notice: Option<&'static str>,
    child: ChildItem,
}

/// Asks before deleting: a profile cannot be brought back.
async fn delete_form(
    State(ctx): State<Context>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, &format!("{PAGE}/{id}/delete"))?;
    let child = children::get(&ctx, family_of(auth)?, &id).await?;
    let page = DeletePage {
        layout: Layout::new(&ctx, &viewer, "family", format!("Remove {}'s profile", child.display_name)),
        sections: section_links(PAGE),
        notice: None,
        child: ChildItem::from(&child),
    };
    Ok(render(StatusCode::OK, &page))
}

async fn delete_child(
    State(ctx): State<Context>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let auth = require_parent(&viewer, PAGE)?;
    children::delete(&ctx, &auth.user.id, family_of(auth)?, &id).await?;
    Ok(see_other(&format!("{PAGE}?notice=child-removed"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_persona_is_introduced() {
        for persona in Persona::ALL {
            assert!(!persona_label(persona).is_empty());
            assert!(!persona_description(persona).is_empty());
        }
        let choices = persona_choices("Jellyfish");
        assert_eq!(choices.iter().filter(|c| c.checked).map(|c| c.value).collect::<Vec<_>>(), ["jellyfish"]);
        assert!(persona_choices("dragon").iter().all(|c| !c.checked));
    }

    #[test]
    fn ages_are_read_as_numbers() {
        let form = |age: &str| ChildForm { age: age.into(), ..ChildForm::default() };
        assert_eq!(form(" 7 ").age().ok(), Some(7));
        assert_eq!(form("18").age().ok(), Some(18), "the range is the domain's to check");
        for bad in ["", "seven", "7.5"] {
            let (status, errors) = form(bad).age().expect_err("not a number");
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert!(errors.get("age").is_some());
        }
    }
}
