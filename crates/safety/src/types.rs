//! The vocabulary of a verdict: roles, the fixed category taxonomy, scores, levels, actions and PII spans.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The child using Onda (the default: text of unknown origin is treated as the child's).
    #[default]
    Child,
    /// The AI buddy's reply.
    Assistant,
}

impl Role {
    /// The stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Child => "child",
            Role::Assistant => "assistant",
        }
    }
}

/// One earlier message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Turn {
    pub role: Role,
    pub text: String,
}

impl Turn {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self { role, text: text.into() }
    }
}

/// What the engine knows about the message being assessed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Who wrote the message.
    pub role: Role,
    /// The child's age in years, when known.
    #[serde(default)]
    pub age: Option<u8>,
    /// The last few messages before this one, oldest first.
    #[serde(default)]
    pub recent: Vec<Turn>,
}

impl Context {
    /// A message written by the child, with no history.
    pub fn child() -> Self {
        Self { role: Role::Child, ..Self::default() }
    }

    /// A message written by the assistant, with no history.
    pub fn assistant() -> Self {
        Self { role: Role::Assistant, ..Self::default() }
    }

    pub fn with_age(mut self, age: u8) -> Self {
        self.age = Some(age);
        self
    }

    /// The earlier messages, oldest first.
    pub fn with_recent(mut self, recent: Vec<Turn>) -> Self {
        self.recent = recent;
        self
    }
}

macro_rules! categories {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// The fixed taxonomy. The snake_case names are stable: they are stored, logged and sent to clients.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Category {
            $($variant),*
        }

        impl Category {
            /// Every category, in a fixed order (the order of [`CategoryScores`]).
            pub const ALL: [Category; categories!(@count $($variant)*)] = [$(Category::$variant),*];

            /// The stable snake_case name.
            pub fn name(self) -> &'static str {
                match self {
                    $(Category::$variant => $name),*
                }
            }

            /// Parses a stable name.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(Category::$variant),)*
                    _ => None,
                }
            }
        }
    };
    (@count) => { 0 };
    (@count $head:ident $($tail:ident)*) => { 1 + categories!(@count $($tail)*) };
}

categories! {
    SelfHarm => "self_harm",
    Sexual => "sexual",
    SexualMinors => "sexual_minors",
    Abuse => "abuse",
    Grooming => "grooming",
    Violence => "violence",
    Weapons => "weapons",
    Hate => "hate",
    Harassment => "harassment",
    Pii => "pii",
    Drugs => "drugs",
    DangerousActivity => "dangerous_activity",
    Profanity => "profanity",
    Jailbreak => "jailbreak",
    Distress => "distress",
    RunningAway => "running_away",
}

impl Category {
    /// The position of this category in [`Category::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn clamp_score(score: f32) -> f32 {
    if score.is_nan() { 1.0 } else { score.clamp(0.0, 1.0) }
}

/// One score in [0, 1] per category. Serialised as a map from the stable name to the score.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CategoryScores([f32; Category::ALL.len()]);

impl CategoryScores {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, category: Category) -> f32 {
        self.0[category.index()]
    }

    /// Sets a score, clamped to [0, 1] (NaN becomes 1: an unreadable score is not a safe one).
    pub fn set(&mut self, category: Category, score: f32) {
        self.0[category.index()] = clamp_score(score);
    }

    /// Raises a score to at least `score` (clamped like [`CategoryScores::set`]).
    pub fn raise(&mut self, category: Category, score: f32) {
        let score = clamp_score(score);
        if score > self.0[category.index()] {
            self.0[category.index()] = score;
        }
    }

    /// The scores with their categories, in taxonomy order.
    pub fn iter(&self) -> impl Iterator<Item = (Category, f32)> + '_ {
        Category::ALL.iter().map(|c| (*c, self.0[c.index()]))
    }

    /// The highest-scoring category and its score (the first in taxonomy order on ties).
    pub fn top(&self) -> (Category, f32) {
        let mut best = (Category::ALL[0], self.0[0]);
        for (c, s) in self.iter() {
            if s > best.1 {
                best = (c, s);
            }
        }
        best
    }

    /// The per-category maximum of two sets of scores.
    pub fn max(&self, other: &CategoryScores) -> CategoryScores {
        let mut out = *self;
        for (c, s) in other.iter() {
            out.raise(c, s);
        }
        out
    }
}

impl Serialize for CategoryScores {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(Category::ALL.len()))?;
        for (c, s) in self.iter() {
            // Rounded so that the JSON stays readable and stable across platforms.
            let rounded = (f64::from(s) * 10_000.0).round() / 10_000.0;
            map.serialize_entry(c.name(), &rounded)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for CategoryScores {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScoresVisitor;
        impl<'de> Visitor<'de> for ScoresVisitor {
            type Value = CategoryScores;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map from category name to a score in [0, 1]")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
                let mut scores = CategoryScores::default();
                while let Some((name, score)) = access.next_entry::<String, f32>()? {
                    let category = Category::from_name(&name)
                        .ok_or_else(|| de::Error::custom(format!("unknown category {name:?}")))?;
                    scores.set(category, score);
                }
                Ok(scores)
            }
        }
        deserializer.deserialize_map(ScoresVisitor)
    }
}

/// What the caller should do with the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Deliver as is.
    Allow,
    /// Deliver, but steer the conversation gently elsewhere.
    Redirect,
    /// Deliver with the PII spans replaced.
    Redact,
    /// Do not deliver; alert the parent; queue for moderation.
    Block,
    /// Answer with the crisis response and alert the parent at once.
    Crisis,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Redirect => "redirect",
            Action::Redact => "redact",
            Action::Block => "block",
            Action::Crisis => "crisis",
        }
    }
}

/// The kinds of personal information the detectors find.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Phone,
    Email,
    Address,
    CardNumber,
    Password,
    School,
    FullName,
}

impl PiiKind {
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Phone => "phone",
            PiiKind::Email => "email",
            PiiKind::Address => "address",
            PiiKind::CardNumber => "card_number",
            PiiKind::Password => "password",
            PiiKind::School => "school",
            PiiKind::FullName => "full_name",
        }
    }
}

/// A piece of personal information: a byte range of the ORIGINAL text (always on char boundaries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PiiSpan {
    pub start: usize,
    pub end: usize,
    pub kind: PiiKind,
}

/// The answer of the safety engine for one message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// 0 safe, 1 mild, 2 concerning, 3 serious, 4 critical (see `policy`).
    pub level: u8,
    pub action: Action,
    /// One overall score in [0, 1]: higher is more unsafe. Used for ranking and evaluation.
    pub unsafe_score: f32,
    pub categories: CategoryScores,
    /// Personal information to redact, sorted by start, not overlapping.
    pub pii: Vec<PiiSpan>,
    /// Short sentences a parent or moderator can read. Never contains the message text.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// Whether one of the reasons is exactly `reason` (e.g. [`crate::policy::REASON_LEANS_ON_BUDDY`]).
    pub fn has_reason(&self, reason: &str) -> bool {
        self.reasons.iter().any(|r| r == reason)
    }

    /// The fail-closed verdict: blocked, never safe.
    pub fn blocking(reason: &str) -> Self {
        Self {
            level: 3,
            action: Action::Block,
            unsafe_score: 1.0,
            categories: CategoryScores::default(),
            pii: Vec::new(),
            reasons: vec![reason.to_string()],
        }
    }

    /// The text with every PII span replaced by `[kind]`.
    pub fn redact(&self, original: &str) -> String {
        let mut out = String::with_capacity(original.len());
        let mut at = 0;
        for span in &self.pii {
            if span.start < at || span.end > original.len() || span.start > span.end {
                continue;
            }
            let (Some(before), true) = (original.get(at..span.start), original.is_char_boundary(span.end))
            else {
                continue;
            };
            out.push_str(before);
            out.push('[');
            out.push_str(span.kind.name());
            out.push(']');
            at = span.end;
        }
        out.push_str(original.get(at..).unwrap_or(""));
        out
    }
}
