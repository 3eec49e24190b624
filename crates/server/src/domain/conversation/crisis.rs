//! Answers written by people, never by a model: the crisis answer (level 4) and the kind answer to a
//! blocked message (level 3). A model never improvises these.
//!
//! Every crisis answer is warm, short, says it is not the child's fault where that matters, tells them
//! to tell a grown-up they trust right now, and names people who help children at any hour: 988 (call
//! or text, US), Childline 0800 1111 (UK), and 911 / 999 when they are in danger.

use onda_safety::{Category, Verdict};
use serde::Serialize;

/// A place a child can get help.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Resource {
    pub name: &'static str,
    /// How to reach it.
    pub contact: &'static str,
    /// Where it answers (`US`, `UK`).
    pub region: &'static str,
}

pub const RESOURCES: [Resource; 4] = [
    Resource { name: "988 Suicide & Crisis Lifeline", contact: "call or text 988", region: "US" },
    Resource { name: "Childline", contact: "call 0800 1111", region: "UK" },
    Resource { name: "Emergency services", contact: "call 911", region: "US" },
    Resource { name: "Emergency services", contact: "call 999", region: "UK" },
];

/// The line about helpers that closes every crisis answer.
pub const HELP_LINES_YOUNG: &str = "You can also call or text 988 (in the US) or call Childline on 0800 1111 (in \
                                    the UK). They are kind people who help kids, day and night. If you are in \
                                    danger right now, call 911 (US) or 999 (UK).";
pub const HELP_LINES_OLDER: &str = "You can call or text 988 (US) or call Childline on 0800 1111 (UK), any time, \
                                    for free. They help kids with exactly this. If you are in danger right now, \
                                    call 911 (US) or 999 (UK).";

/// The short text of the `crisis` notice.
pub const CRISIS_NOTICE: &str = "Please tell a grown-up you trust right now. If you are in danger, call 911 (US) \
                                 or 999 (UK).";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrisisKind {
    /// Thoughts of hurting themselves, or feelings too heavy to carry.
    SelfHarm,
    /// Someone is hurting them.
    Abuse,
    /// Someone online asks for photos, to meet, or to keep secrets; sexual content involving them.
    OnlineDanger,
    /// Threats with weapons, someone in danger.
    Danger,
}

impl CrisisKind {
    pub fn of(verdict: &Verdict) -> Self {
        let score = |c: Category| verdict.categories.get(c);
        let pick = [
            (CrisisKind::SelfHarm, score(Category::SelfHarm)),
            (CrisisKind::Abuse, score(Category::Abuse)),
            (
                CrisisKind::OnlineDanger,
                score(Category::Grooming).max(score(Category::SexualMinors)).max(score(Category::Sexual)),
            ),
            (CrisisKind::Danger, score(Category::Weapons).max(score(Category::Violence))),
        ];
        pick.into_iter()
            .filter(|(_, s)| *s > 0.0)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(CrisisKind::SelfHarm, |(kind, _)| kind)
    }
}

/// The crisis answer for this child's age, written by people. Sentences, in order.
pub fn crisis_answer(kind: CrisisKind, age: i64) -> Vec<&'static str> {
    let young = age <= 8;
    let mut answer: Vec<&'static str> = match (kind, young) {
        (CrisisKind::SelfHarm, true) => vec![
            "I'm really glad you told me.",
            "You matter so much, and you don't have to feel this way all alone.",
            "Please go and tell a grown-up you trust right now, like your mom, dad, or a teacher.",
        ],
        (CrisisKind::SelfHarm, false) => vec![
            "I'm really glad you told me, and I'm sorry it feels this heavy right now.",
            "You matter, and you deserve help with these feelings.",
            "Please tell a grown-up you trust right now, like a parent, a relative, a teacher or a school \
             counsellor.",
        ],
        (CrisisKind::Abuse, true) => vec![
            "Thank you for telling me. That was brave.",
            "It is not your fault, and nobody is allowed to hurt you.",
            "Please tell a grown-up you trust right now, like a teacher or another family member.",
        ],
        (CrisisKind::Abuse, false) => vec![
            "Thank you for telling me. That took courage.",
            "It is never your fault when someone hurts you, and you deserve to be safe.",
            "Please tell a grown-up you trust right now, like a teacher, a school counsellor or a relative.",
        ],
        (CrisisKind::OnlineDanger, true) => vec![
            "You did the right thing by telling me.",
            "Keep your photos private, and never go to meet someone you only know online.",
            "Please tell a grown-up you trust right now, like your mom, dad, or a teacher. You are not in \
             trouble.",
        ],
        (CrisisKind::OnlineDanger, false) => vec![
            "You did the right thing by telling me.",
            "Keep your photos private and never agree to meet. Telling a grown-up is always okay, even if \
             they said not to.",
            "Please tell a grown-up you trust right now. You are not in trouble, and it is not your fault.",
        ],
        (CrisisKind::Danger, true) => vec![
            "That sounds scary, and I want you to be safe.",
            "Please go to a grown-up you trust right now and tell them.",
        ],
        (CrisisKind::Danger, false) => vec![
            "That sounds serious, and your safety matters most.",
            "Please tell a grown-up you trust right now, so they can help keep everyone safe.",
        ],
    };
    answer.push(if young { HELP_LINES_YOUNG } else { HELP_LINES_OLDER });
    answer
}

/// The kind answer to a blocked message (level 3), by what it was about. Sentences, in order.
pub fn blocked_answer(verdict: &Verdict, age: i64) -> Vec<&'static str> {
    let young = age <= 8;
    let top = verdict.categories.top().0;
    let first: &'static str = match top {
        Category::RunningAway => "It sounds like things might feel really hard right now, and I'm sorry.",
        Category::Grooming => "That is something a grown-up you trust should hear about.",
        Category::Drugs | Category::Weapons | Category::DangerousActivity => {
            "That's not something I can help with, because it could hurt someone."
        }
        _ if young => "Hmm, that's not something I can talk about.",
        _ => "That's not something I can talk about here.",
    };
    let second = match top {
        Category::RunningAway | Category::Grooming => {
            "Please talk to a grown-up you trust, like a parent or a teacher. They can help."
        }
        _ => "If something is bothering you, a grown-up you trust can help.",
    };
    vec![first, second, "Want to talk about something else? I'd love that."]
}

#[cfg(test)]
mod tests {
    use super::*;
    use onda_safety::{Context, Engine};

    #[test]
    fn every_crisis_answer_carries_the_help_lines_and_a_trusted_grown_up() {
        for kind in [CrisisKind::SelfHarm, CrisisKind::Abuse, CrisisKind::OnlineDanger, CrisisKind::Danger] {
            for age in [6, 11] {
                let text = crisis_answer(kind, age).join(" ");
                assert!(text.contains("988") && text.contains("0800 1111"), "{kind:?} {age}");
                assert!(text.contains("911") && text.contains("999"), "{kind:?} {age}");
                assert!(text.contains("grown-up you trust right now"), "{kind:?} {age}");
            }
        }
    }

    #[test]
    fn the_human_answers_pass_the_safety_check_as_the_assistant() {
        let engine = Engine::builtin().expect("engine");
        let ctx = Context::assistant().with_age(8);
        let mut texts: Vec<&str> = Vec::new();
        for kind in [CrisisKind::SelfHarm, CrisisKind::Abuse, CrisisKind::OnlineDanger, CrisisKind::Danger] {
            texts.extend(crisis_answer(kind, 6));
            texts.extend(crisis_answer(kind, 11));
        }
        texts.extend(blocked_answer(&onda_safety::Verdict::blocking("x"), 7));
        for text in texts {
            let verdict = engine.assess(text, &ctx);
            // The helpline numbers look like phone numbers to the PII detector; nothing else may fire.
            let phone_only = verdict.pii.iter().all(|p| p.kind == onda_safety::PiiKind::Phone)
                && verdict.categories.iter().all(|(c, s)| c == Category::Pii || s == 0.0);
            assert!(verdict.level <= 1 || phone_only, "{text}: {:?}", verdict.reasons);
        }
    }

    #[test]
    fn the_kind_of_crisis_follows_the_categories() {
        let engine = Engine::builtin().expect("engine");
        let ctx = Context::child().with_age(9);
        assert_eq!(CrisisKind::of(&engine.assess("i want to kill myself", &ctx)), CrisisKind::SelfHarm);
        assert_eq!(
            CrisisKind::of(&engine.assess("my uncle hurts me when mom is gone", &ctx)),
            CrisisKind::Abuse
        );
        assert_eq!(
            CrisisKind::of(&engine.assess("a man online asked me to send photos", &ctx)),
            CrisisKind::OnlineDanger
        );
    }
}
