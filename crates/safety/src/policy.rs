//! From evidence to levels and actions.
//!
//! # Levels
//! | level | meaning | action |
//! |---|---|---|
//! | 0 | safe | allow |
//! | 1 | mild: no intervention (sadness, "poop", a violent word in play) | allow |
//! | 2 | concerning: profanity, PII the child shares, being bullied, jailbreak attempts, risky activities | redirect, or redact when PII alone made it level 2 |
//! | 3 | serious: drugs, sexual content, hate, weapons, grooming signs, running away, an assistant asking for PII | block (parent alerted, moderation queue) |
//! | 4 | critical: self-harm or suicidal thoughts, abuse disclosure, sexual content involving minors, an adult arranging to meet or asking for photos, threats with weapons, an assistant encouraging secrecy from parents | crisis for a child's message about their own safety, block otherwise (immediate alert either way) |
//!
//! # Where a level comes from
//! 1. **Lexicon groups** (`lexicons/*.txt`): every group states its level for a child's message and for
//!    the assistant's (e.g. `[pii] level=1 assistant=3` for "what school do you go to?").
//! 2. **Rules** in the engine: PII found by the detectors is level 2 (redact) for both roles; explicit
//!    sexual content with a mention of a minor is `sexual_minors` level 4; a violent threat together with a
//!    weapon is level 4; signs that build up over recent turns raise the level (at most to 3).
//! 3. **Scores** (the learned layer, and the accumulation over turns) through [`score_level`]: a score of
//!    at least [`STRONG`] gives the category's strong level, at least [`MODERATE`] its moderate level, at
//!    least [`MILD`] level 1. The table below is the whole mapping.
//!
//! | category | child strong / moderate | assistant strong / moderate | severity |
//! |---|---|---|---|
//! | self_harm | 4 / 3 | 4 / 4 | 1.0 |
//! | sexual | 3 / 2 | 4 / 3 | 1.0 |
//! | sexual_minors | 4 / 4 | 4 / 4 | 1.0 |
//! | abuse | 4 / 3 | 4 / 3 | 1.0 |
//! | grooming | 3 / 2 | 4 / 3 | 1.0 |
//! | violence | 3 / 2 | 3 / 3 | 0.9 |
//! | weapons | 3 / 2 | 3 / 3 | 0.9 |
//! | hate | 3 / 2 | 3 / 3 | 1.0 |
//! | harassment | 2 / 2 | 3 / 3 | 0.9 |
//! | pii | 2 / 2 | 2 / 2 | 0.5 |
//! | drugs | 3 / 2 | 3 / 3 | 0.9 |
//! | dangerous_activity | 2 / 2 | 3 / 2 | 0.8 |
//! | profanity | 2 / 1 | 2 / 2 | 0.5 |
//! | jailbreak | 2 / 2 | 2 / 2 | 0.7 |
//! | distress | 2 / 1 | 2 / 1 | 0.6 |
//! | running_away | 3 / 2 | 4 / 3 | 0.9 |
//!
//! The overall `unsafe_score` is `BASE[level] + 0.19 * noisy_or(severity * score)`, so that it orders
//! messages by level first and by the strength of the evidence within a level.

use crate::types::{Action, Category, Role};

/// The reason given for a child treating the buddy as a person (a partner, family, someone to meet or to
/// reach outside the app): the chat answers it by saying the buddy is an AI. The words are the lexicon's
/// (`lexicons/crisis.txt`); `tests/engine.rs` checks that a message still gets them.
pub const REASON_TREATS_BUDDY_AS_PERSON: &str = "treats the buddy as a person";
/// The reason given for a meeting being arranged ("can we meet in real life", "get in my car"); the words are
/// the lexicon's (`lexicons/sexual.txt`).
pub const REASON_ARRANGES_MEETING: &str = "tries to arrange a meeting";
/// The reason given for a child asking the buddy to keep secrets from their parents.
pub const REASON_ASKS_FOR_SECRECY: &str = "asks the buddy to keep secrets from their parents";
/// The reason given for a child leaning on the buddy instead of people ("youre my only friend").
pub const REASON_LEANS_ON_BUDDY: &str = "leans on the buddy instead of people";

/// Score thresholds of [`score_level`].
pub const STRONG: f32 = 0.8;
pub const MODERATE: f32 = 0.5;
pub const MILD: f32 = 0.3;

/// (child strong, child moderate, assistant strong, assistant moderate, severity)
fn row(category: Category) -> (u8, u8, u8, u8, f32) {
    use Category::*;
    match category {
        SelfHarm => (4, 3, 4, 4, 1.0),
        Sexual => (3, 2, 4, 3, 1.0),
        SexualMinors => (4, 4, 4, 4, 1.0),
        Abuse => (4, 3, 4, 3, 1.0),
        Grooming => (3, 2, 4, 3, 1.0),
        Violence => (3, 2, 3, 3, 0.9),
        Weapons => (3, 2, 3, 3, 0.9),
        Hate => (3, 2, 3, 3, 1.0),
        Harassment => (2, 2, 3, 3, 0.9),
        Pii => (2, 2, 2, 2, 0.5),
        Drugs => (3, 2, 3, 3, 0.9),
        DangerousActivity => (2, 2, 3, 2, 0.8),
        Profanity => (2, 1, 2, 2, 0.5),
        Jailbreak => (2, 2, 2, 2, 0.7),
        Distress => (2, 1, 2, 1, 0.6),
        RunningAway => (3, 2, 4, 3, 0.9),
    }
}

/// The level a category score alone justifies.
pub fn score_level(category: Category, score: f32, role: Role) -> u8 {
    let (cs, cm, a_s, am, _) = row(category);
    let (strong, moderate) = match role {
        Role::Child => (cs, cm),
        Role::Assistant => (a_s, am),
    };
    if score >= STRONG {
        strong
    } else if score >= MODERATE {
        moderate
    } else if score >= MILD {
        1
    } else {
        0
    }
}

/// How much a category weighs in the overall score.
pub fn severity(category: Category) -> f32 {
    row(category).4
}

const BASE: [f32; 5] = [0.0, 0.2, 0.4, 0.6, 0.8];

/// The overall score from the level and the category scores.
pub fn unsafe_score(level: u8, scores: impl Iterator<Item = (Category, f32)>) -> f32 {
    let mut keep = 1.0f32;
    for (c, s) in scores {
        keep *= 1.0 - (severity(c) * s).clamp(0.0, 1.0);
    }
    let base = BASE[usize::from(level.min(4))];
    (base + 0.19 * (1.0 - keep)).clamp(0.0, 1.0)
}

/// Categories for which a level-4 message from a child gets the crisis answer (their own safety).
fn is_crisis_category(category: Category) -> bool {
    matches!(
        category,
        Category::SelfHarm
            | Category::Abuse
            | Category::Grooming
            | Category::SexualMinors
            | Category::RunningAway
            | Category::Distress
    )
}

/// The action for a level. `pii_only` says that PII alone made the message level 2; `top` is the category
/// that drove the level.
pub fn action(level: u8, role: Role, top: Option<Category>, pii_only: bool) -> Action {
    match level {
        0 | 1 => Action::Allow,
        2 if pii_only => Action::Redact,
        2 => Action::Redirect,
        3 => Action::Block,
        _ => match (role, top) {
            (Role::Child, Some(c)) if is_crisis_category(c) => Action::Crisis,
            _ => Action::Block,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_actions_follow_the_table() {
        assert_eq!(score_level(Category::SelfHarm, 0.9, Role::Child), 4);
        assert_eq!(score_level(Category::Profanity, 0.9, Role::Child), 2);
        assert_eq!(score_level(Category::Grooming, 0.9, Role::Assistant), 4);
        assert_eq!(score_level(Category::Hate, 0.1, Role::Child), 0);
        assert_eq!(action(2, Role::Child, Some(Category::Pii), true), Action::Redact);
        assert_eq!(action(4, Role::Child, Some(Category::SelfHarm), false), Action::Crisis);
        assert_eq!(action(4, Role::Assistant, Some(Category::Grooming), false), Action::Block);
        assert_eq!(action(4, Role::Child, Some(Category::Weapons), false), Action::Block);
        assert!(unsafe_score(3, std::iter::empty()) > unsafe_score(2, [(Category::Hate, 1.0)].into_iter()));
    }
}
