//! The engine: layer 1 (rules) and layer 2 (a learned scorer) combined into a verdict, fail-closed.

use std::cell::OnceCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::lexical::{LexicalModel, ModelError};
use crate::lexicon::{GroupKind, Hits, Lexicons, Marker, Matcher};
use crate::normalize::{self, light};
use crate::offensive::OffensiveModel;
use crate::pii::PiiDetector;
use crate::policy;
use crate::question;
use crate::types::{Category, CategoryScores, Context, PiiKind, PiiSpan, Role, Verdict};

/// Why a learned scorer could not score a message.
#[derive(Debug, thiserror::Error)]
pub enum ScorerError {
    #[error("the learned model is not available: {0}")]
    Unavailable(String),
    #[error("the learned model failed: {0}")]
    Failed(String),
}

/// What a learned scorer says about one message.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LearnedScores {
    /// Per-category scores on the policy's scale (see [`policy::score_level`]).
    pub categories: CategoryScores,
    /// How unsafe the message is overall, in [0, 1], when the scorer has an overall view.
    pub overall: Option<f32>,
    /// The category the scorer reads in the message, even one it gives no score of its own (personal
    /// information, which the PII detectors score): what a level set by the overall score is about.
    pub category: Option<Category>,
}

impl From<CategoryScores> for LearnedScores {
    fn from(categories: CategoryScores) -> Self {
        Self { categories, overall: None, category: None }
    }
}

/// Layer 2: a learned model giving per-category scores in [0, 1].
pub trait LearnedScorer: Send + Sync {
    /// Scores a message: `text` as written, `read` as the embedder reads it
    /// ([`normalize::normalize_for_embedding`], which the engine computes once per message).
    fn score(&self, text: &str, read: &str, ctx: &Context) -> Result<LearnedScores, ScorerError>;

    /// The overall unsafe score from the rules' score and this scorer's view. By default the larger.
    fn combine(&self, rules_score: f32, learned: &LearnedScores) -> f32 {
        learned.overall.map_or(rules_score, |o| rules_score.max(o))
    }

    /// The score on the policy's scale that the overall unsafe score ([`LearnedScorer::combine`]) alone
    /// justifies for the scorer's category, when the scorer is calibrated for it. By default none.
    fn combined_policy_score(&self, _combined: f32) -> Option<f32> {
        None
    }

    /// Whether the overall unsafe score alone is concerning enough for a gentle redirect (level 2) of a
    /// child's message, when the scorer is calibrated for it. By default never.
    fn combined_redirect(&self, _combined: f32) -> bool {
        false
    }
}

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// When an assessment takes longer than this, the verdict is blocking. None: no budget.
    pub time_budget: Option<Duration>,
    /// Both layers must answer (`SAFETY_LAYER_REDUNDANCY`): a scorer error gives a blocking verdict. When
    /// false, a scorer error leaves the rules' verdict.
    pub require_redundancy: bool,
    /// How many of the recent turns are read.
    pub max_recent_turns: usize,
    /// The weight of a turn `k` messages back is `turn_decay^k`.
    pub turn_decay: f32,
    /// How much the lexical model's overall probability weighs in `unsafe_score` (the rest is the
    /// level-first score of `policy::unsafe_score`). Chosen on the dev sets (see `docs/safety.md`).
    pub learned_weight: f32,
    /// The highest level the lexical model may give on its own (it adds evidence; the rules and the
    /// embedding scorer decide the level). 1, i.e. none: where it alone set level 2 or 3, three in four of
    /// the dev sets' rows were harmless ("Create a marketing website" was blocked as hate; docs/safety.md,
    /// step 19). Its probabilities still rank every message and feed the category scores.
    pub lexical_max_level: u8,
    /// The highest level the learned scorer may give on its own. Its strong score needs a signal whose
    /// precision was at least 0.97 on the validation data, so it may reach the crisis level.
    pub learned_max_level: u8,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            time_budget: None,
            require_redundancy: true,
            max_recent_turns: 6,
            turn_decay: 0.75,
            learned_weight: 0.5,
            lexical_max_level: 1,
            learned_max_level: 4,
        }
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("could not compile the lexicons: {0}")]
    Lexicon(#[from] aho_corasick::BuildError),
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// What the rules found in one message.
#[derive(Clone, Debug, Default)]
pub struct RuleFindings {
    pub scores: CategoryScores,
    pub level: u8,
    pub pii: Vec<PiiSpan>,
    /// (category, level, reason): what drove the level.
    drivers: Vec<(Category, u8, String)>,
    /// The text holds a curated harmless expression that looks unsafe ("cut myself on paper", "diet
    /// coke"): the learned layers, which read meaning from nearby examples, may not raise its level.
    pub homonym: bool,
    /// The text says what a disclosure of abuse says was done or felt (`marker:harm`): without it, and
    /// without an abuse rule, the learned layers may not rate it as abuse.
    pub harm: bool,
    /// (category, level): a matched group accounts for the learned layers' reading in this category, which
    /// may then give at most this level (the lexicon's `explains`).
    explained: Vec<(Category, u8)>,
}

/// At this age and under, sexual words and romantic talk that are level 2 for an older child are level 3.
pub const YOUNG_CHILD_AGE: u8 = 9;

/// The learned layer's category score at which a child's request for a method on that topic ("how do i
/// ...", "whats the easiest way to ...") gets a gentle redirect: a quarter of the way from its mild score
/// (the signal at precision 0.75 on the validation data, no intervention alone) to its moderate one. Chosen
/// on the dev sets (`docs/safety.md`, step 11): at the mild score itself "how do i keep my diary secret from
/// my little brother" was redirected and requests_more's harmless rows at level >= 2 rose 12.1% -> 13.2%; at
/// 0.35 they stayed at 12.1% while its unsafe rows flagged rose 0.770 -> 0.788.
const REQUEST_SCORE: f32 = 0.35;

/// How far the offensive-language word model may lift `unsafe_score` toward 1 (a share of the distance),
/// and the message length in words from which it counts fully. Chosen on the dev sets (`docs/safety.md`,
/// step 17): AUPRC toxicchat_train 0.735 -> 0.746, formspring 0.299 -> 0.378, cyberbullying_tweets 0.941
/// -> 0.951, pan12 0.170 -> 0.163, the children's sets within 0.003. Counted fully at every length, it cost
/// the children's sets up to 0.008 and toxicchat_train did not gain.
const OFFENSIVE_WEIGHT: f32 = 0.5;
const OFFENSIVE_FULL_WORDS: usize = 40;

/// Categories whose signs build up over a conversation.
const ACCUMULATING: [Category; 7] = [
    Category::Grooming,
    Category::Distress,
    Category::SelfHarm,
    Category::Harassment,
    Category::Abuse,
    Category::RunningAway,
    Category::Sexual,
];

/// The safety engine. Build once, share (it is `Send + Sync`), call [`Engine::assess`] per message.
pub struct Engine {
    matcher: Arc<Matcher>,
    pii: PiiDetector,
    lexical: Option<LexicalModel>,
    offensive: Option<OffensiveModel>,
    scorer: Option<Box<dyn LearnedScorer>>,
    config: EngineConfig,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("groups", &self.matcher.groups().len())
            .field("lexical", &self.lexical.is_some())
            .field("offensive", &self.offensive.is_some())
            .field("scorer", &self.scorer.is_some())
            .field("config", &self.config)
            .finish()
    }
}

impl Engine {
    /// An engine over `lexicons` and the built-in lexical model, with an optional layer-2 scorer,
    /// configured by default.
    pub fn new(lexicons: Lexicons, scorer: Option<Box<dyn LearnedScorer>>) -> Result<Self, EngineError> {
        Self::over(Arc::new(Matcher::new(&lexicons)?), scorer)
    }

    /// The built-in lexicons and no learned scorer ([`Engine::with_scorer`] adds one). The lexicons are
    /// compiled once per process and shared by every engine built here: compiling their hundreds of
    /// thousands of phrases takes seconds and hundreds of megabytes, which a test suite or a tool building
    /// several engines would otherwise pay each time.
    pub fn builtin() -> Result<Self, EngineError> {
        static MATCHER: OnceLock<Result<Arc<Matcher>, aho_corasick::BuildError>> = OnceLock::new();
        let matcher = MATCHER.get_or_init(|| Matcher::new(&Lexicons::builtin()).map(Arc::new)).clone()?;
        Self::over(matcher, None)
    }

    fn over(matcher: Arc<Matcher>, scorer: Option<Box<dyn LearnedScorer>>) -> Result<Self, EngineError> {
        Ok(Self {
            matcher,
            pii: PiiDetector::new(),
            lexical: Some(LexicalModel::builtin()?),
            offensive: Some(OffensiveModel::builtin()?),
            scorer,
            config: EngineConfig::default(),
        })
    }

    /// Replaces the learned scorer, layer 2 (None: the rules and the word models only).
    pub fn with_scorer(mut self, scorer: Option<Box<dyn LearnedScorer>>) -> Self {
        self.scorer = scorer;
        self
    }

    /// Replaces the lexical model (None: the rules and the scorer only).
    pub fn with_lexical(mut self, lexical: Option<LexicalModel>) -> Self {
        self.lexical = lexical;
        self
    }

    /// Replaces the offensive-language word model, a ranking signal only (None: `unsafe_score` without it).
    pub fn with_offensive(mut self, offensive: Option<OffensiveModel>) -> Self {
        self.offensive = offensive;
        self
    }

    pub fn with_config(mut self, config: EngineConfig) -> Self {
        self.config = config;
        self
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Whether the lexical model runs.
    pub fn has_lexical_model(&self) -> bool {
        self.lexical.is_some()
    }

    /// Whether a layer-2 scorer (the embedding head) runs.
    pub fn has_learned_scorer(&self) -> bool {
        self.scorer.is_some()
    }

    /// Assesses one message. Never panics and never answers "safe" when something went wrong: a panic
    /// inside, a scorer error (with redundancy required) or a blown time budget give a blocking verdict.
    pub fn assess(&self, text: &str, ctx: &Context) -> Verdict {
        let started = Instant::now();
        let verdict = match catch_unwind(AssertUnwindSafe(|| self.assess_inner(text, ctx))) {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(reason)) => Verdict::blocking(reason),
            Err(_) => Verdict::blocking("safety check failed"),
        };
        match self.config.time_budget {
            Some(budget) if started.elapsed() > budget => Verdict::blocking("safety check took too long"),
            _ => verdict,
        }
    }

    /// Layer 1 alone on one message, without the conversation: the rules' findings.
    pub fn rules(&self, text: &str, role: Role) -> RuleFindings {
        let view = light(text);
        let hits = self.matcher.scan(&view.text);
        let mut findings = self.findings(&hits, role);
        // A child asking the buddy itself to meet or where it lives ("can we meet in real life", "whats your
        // address so i can visit you") treats the buddy as a person, which the chat answers (level 2): it is
        // not someone arranging to meet the child. Only a short message naming no one else: a child telling of
        // a stranger who asked, or pasting his messages, keeps the grooming sign (level 3).
        if role == Role::Child
            && findings.drivers.iter().any(|d| d.2 == policy::REASON_TREATS_BUDDY_AS_PERSON)
            && question::addresses_only_the_buddy(&normalize::normalize_for_embedding(text))
        {
            for driver in findings.drivers.iter_mut().filter(|d| d.2 == policy::REASON_ARRANGES_MEETING) {
                driver.1 = driver.1.min(2);
            }
            findings.level = findings.drivers.iter().map(|d| d.1).max().unwrap_or(0);
        }
        // The text with evasion undone, read by the PII detectors and the private-details check alike (empty
        // for ordinary text).
        let alternatives = normalize::evasion_views(&view);
        let pii = self.pii.detect_in(&view, &alternatives);
        if !pii.is_empty() {
            let strong = pii.iter().any(|s| s.kind != PiiKind::School);
            findings.scores.raise(Category::Pii, if strong { 0.9 } else { 0.7 });
            let mut kinds: Vec<&str> = pii.iter().map(|s| s.kind.name()).collect();
            kinds.sort_unstable();
            kinds.dedup();
            let who = match role {
                Role::Child => "shares personal information",
                Role::Assistant => "includes personal information",
            };
            findings.drivers.push((Category::Pii, 2, format!("{who} ({})", kinds.join(", "))));
            findings.level = findings.level.max(2);
        }
        findings.pii = pii;
        // Read as written (the light view folds look-alike letters and drops invisible ones) and, when the
        // text shows leetspeak or spaced-out letters, decoded.
        let asks_for_details = question::asks_for_private_details(&view.text)
            || alternatives.iter().any(|v| question::asks_for_private_details(&v.text));
        if asks_for_details {
            let level = match role {
                Role::Child => 2,
                Role::Assistant => 3,
            };
            findings.scores.raise(Category::Pii, 0.75);
            findings.drivers.push((Category::Pii, level, "asks for someone's private details".into()));
            findings.level = findings.level.max(level);
        }
        findings
    }

    fn findings(&self, hits: &Hits, role: Role) -> RuleFindings {
        let groups = self.matcher.groups();
        let mut f = RuleFindings::default();
        let (mut minor, mut conceal, mut online_contact, mut approach) = (false, false, false, false);
        let mut harm = false;
        for &(g, n) in &hits.groups {
            let group = &groups[g];
            match group.kind {
                GroupKind::Marker(Marker::Minor) => minor = true,
                GroupKind::Marker(Marker::Conceal) => conceal = true,
                GroupKind::Marker(Marker::OnlineContact) => online_contact = true,
                GroupKind::Marker(Marker::Approach) => approach = true,
                GroupKind::Marker(Marker::Harm) => harm = true,
                GroupKind::Allow => f.homonym = true,
                GroupKind::Category(c) => {
                    let level = group.level(role);
                    let w = if level == 0 { group.weight * 0.3 } else { group.weight };
                    let s = 1.0 - (1.0 - w).powi(n.min(8) as i32);
                    let combined = 1.0 - (1.0 - f.scores.get(c)) * (1.0 - s);
                    f.scores.set(c, combined);
                    if level > 0 {
                        f.drivers.push((c, level, group.reason(role).to_string()));
                    }
                    f.explained.extend(group.explains.iter().map(|&e| (e, level)));
                }
            }
        }
        // Explicit sexual content that mentions a minor.
        let explicit_sexual = f.drivers.iter().any(|(c, l, _)| *c == Category::Sexual && *l >= 3);
        if minor && explicit_sexual {
            f.scores.raise(Category::SexualMinors, f.scores.get(Category::Sexual).max(0.9));
            f.drivers.push((Category::SexualMinors, 4, "sexual content involving a minor".into()));
        }
        // Hiding someone known only online from the parents: a sign of grooming, whoever asks for the secret
        // (each alone is ordinary: "keep the party a secret", "my friend from roblox is funny").
        if conceal && online_contact {
            let level = match role {
                Role::Child => 3,
                Role::Assistant => 4,
            };
            f.scores.raise(Category::Grooming, 0.9);
            f.drivers.push((Category::Grooming, level, "hides an online contact from their parents".into()));
        }
        // Someone known only online seeks the child out (to meet, for a photo, for private contact, as a
        // partner), or someone else does and wants it hidden from the parents ("my coach gives me presents
        // but says dont tell my mum"): grooming signs, blocked with the parent told. Not the crisis answer:
        // "someone online asked for a pic of me and i said no, was that right?" is a child doing the right
        // thing (the lexicon's explicit "asked me to send pictures" is level 4). Alone, each is ordinary:
        // "grandma wants a picture of me", "my friend from roblox is funny", "keep the party a secret".
        if approach && online_contact {
            let level = match role {
                Role::Child => 3,
                Role::Assistant => 4,
            };
            f.scores.raise(Category::Grooming, 0.9);
            f.drivers.push((
                Category::Grooming,
                level,
                "says someone they know only online wants to meet, wants photos or acts as a partner".into(),
            ));
        } else if approach && conceal {
            let level = match role {
                Role::Child => 3,
                Role::Assistant => 4,
            };
            f.scores.raise(Category::Grooming, 0.9);
            f.drivers.push((
                Category::Grooming,
                level,
                "someone seeks them out and wants it kept secret".into(),
            ));
        }
        f.harm = harm;
        // A violent threat with a weapon.
        let threat = f.drivers.iter().any(|(c, l, _)| *c == Category::Violence && *l >= 3);
        if threat && f.scores.get(Category::Weapons) > 0.0 {
            f.drivers.push((Category::Weapons, 4, "threatens violence with a weapon".into()));
        }
        f.level = f.drivers.iter().map(|(_, l, _)| *l).max().unwrap_or(0);
        f
    }

    fn assess_inner(&self, text: &str, ctx: &Context) -> Result<Verdict, &'static str> {
        let mut f = self.rules(text, ctx.role);
        // The message as the learned models and the question readers read it, evasion undone: computed
        // once, when first needed.
        let reading = OnceCell::new();
        let read = || reading.get_or_init(|| normalize::normalize_for_embedding(text)).as_str();

        // A young child (9 or under): sexual words and romantic talk are read more strictly.
        if ctx.age.is_some_and(|age| age <= YOUNG_CHILD_AGE) {
            let stricter: Vec<(Category, u8, String)> = f
                .drivers
                .iter()
                .filter(|(c, l, _)| matches!(c, Category::Sexual | Category::Grooming) && *l == 2)
                .map(|(c, _, r)| (*c, 3, format!("{r} (to a young child)")))
                .collect();
            if !stricter.is_empty() {
                f.level = f.level.max(3);
                f.drivers.extend(stricter);
            }
        }

        // The conversation: signs that build up over the recent turns.
        let take = ctx.recent.len().min(self.config.max_recent_turns);
        let mut accumulated = [0.0f32; Category::ALL.len()];
        for (k, turn) in ctx.recent[ctx.recent.len() - take..].iter().rev().enumerate() {
            let weight = self.config.turn_decay.powi(k as i32 + 1);
            let hits = self.matcher.scan(&light(&turn.text).text);
            let earlier = self.findings(&hits, turn.role);
            for c in ACCUMULATING {
                let s = earlier.scores.get(c) * weight;
                accumulated[c.index()] = 1.0 - (1.0 - accumulated[c.index()]) * (1.0 - s);
            }
        }
        for c in ACCUMULATING {
            let now = f.scores.get(c);
            if now <= 0.0 || accumulated[c.index()] <= 0.0 {
                continue;
            }
            let combined = 1.0 - (1.0 - now) * (1.0 - accumulated[c.index()]);
            f.scores.set(c, combined);
            let level = policy::score_level(c, combined, ctx.role).min(3);
            if level > f.level {
                f.level = level;
                f.drivers.push((
                    c,
                    level,
                    format!("continues a pattern of {} over recent messages", c.name()),
                ));
            }
        }

        // The lexical model: calibrated per-category scores through the policy table, capped.
        let mut scores = f.scores;
        let mut overall = None;
        if let Some(model) = &self.lexical {
            let lex = model.score(text);
            // A category head raises the level only when the overall head agrees (its probability at
            // least the threshold where it reached precision 0.75 on the dev sets): on its own, a category
            // head more than doubled the false positives on the dev sets.
            let agree = model.overall_thresholds().is_none_or(|t| lex.overall >= t.moderate);
            // It never sets a mild level (1) on its own: that level carries no intervention and no reason.
            let cap = if agree && !f.homonym { self.config.lexical_max_level } else { 0 };
            for (c, s) in lex.categories.iter() {
                let level = policy::score_level(c, s, ctx.role).min(cap);
                if level >= 2 && level > f.level {
                    f.level = level;
                }
                if level >= 2 {
                    f.drivers.push((
                        c,
                        level,
                        format!("the word model rates it as {}", c.name().replace('_', " ")),
                    ));
                }
            }
            scores = scores.max(&lex.categories);
            overall = Some(lex.overall);
        }

        // The rules' overall score (with the lexical model), before layer 2: the learned scorer's
        // calibration was fitted on exactly this score.
        let rules_score = {
            let ruled = policy::unsafe_score(f.level.min(4), scores.iter());
            match overall {
                Some(p) => {
                    let a = self.config.learned_weight.clamp(0.0, 1.0);
                    ((1.0 - a) * ruled + a * p).clamp(0.0, 1.0)
                }
                None => ruled,
            }
        };

        // Layer 2.
        let mut unsafe_score = rules_score;
        if let Some(scorer) = &self.scorer {
            match scorer.score(text, read(), ctx) {
                Ok(learned) => {
                    let cap = if f.homonym { 1 } else { self.config.learned_max_level };
                    // Ordinary family talk sits near the abuse examples ("mum is picking me up at 3",
                    // "mum puts me in my room when im naughty"): the learned layer rates a message as abuse
                    // on its own only when it says what a disclosure says (docs/safety.md, step 10).
                    let unfounded_abuse = !f.harm && f.scores.get(Category::Abuse) <= 0.0;
                    // A rule that accounts for the reading ("will you be my girlfriend" to the buddy, read
                    // near sexual examples) bounds it at the rule's own level.
                    let accounted = std::mem::take(&mut f.explained);
                    let explained = |c: Category| accounted.iter().filter(|e| e.0 == c).map(|e| e.1).max();
                    let cap_for = |c: Category| {
                        let cap = explained(c).map_or(cap, |level| cap.min(level));
                        if c == Category::Abuse && unfounded_abuse { cap.min(1) } else { cap }
                    };
                    for (c, s) in learned.categories.iter() {
                        let level = policy::score_level(c, s, ctx.role).min(cap_for(c));
                        if level >= 2 && level > f.level {
                            f.level = level;
                        }
                        if level >= 2 {
                            f.drivers.push((
                                c,
                                level,
                                format!("the learned model rates it as {}", c.name().replace('_', " ")),
                            ));
                        }
                    }
                    scores = scores.max(&learned.categories);
                    unsafe_score = scorer.combine(rules_score, &learned).clamp(0.0, 1.0);
                    // Both layers' evidence together, in the scorer's category: it ranks unsafe messages
                    // better than either layer's own thresholds do (docs/safety.md).
                    // The scorer's category, or, where it gives none of its own, personal information about
                    // someone else ("how do i get into my ex's instagram"): the head reads a child's own
                    // details ("my name is sam", "i go to school") near the same examples, and those are the
                    // PII detectors' to find.
                    let (top, learned_score) = learned.categories.top();
                    let category = if learned_score > 0.0 {
                        Some(top)
                    } else {
                        learned.category.filter(|c| {
                            // Read as the embedder reads it: evasion undone ("hеr" with a Cyrillic е).
                            *c != Category::Pii || question::about_someone_else(read())
                        })
                    };
                    // A child's worry or sadness that the rules found lifts the combined score too, and is
                    // no evidence of abuse ("im scared something bad will happen to mum at work"): abuse
                    // from both layers together then needs an abuse rule (the head's own thresholds above
                    // still apply).
                    let only_worry =
                        f.scores.get(Category::Distress) > 0.0 && f.scores.get(Category::Abuse) <= 0.0;
                    let combined = category
                        .filter(|c| !(*c == Category::Abuse && only_worry))
                        .and_then(|c| Some((c, scorer.combined_policy_score(unsafe_score)?)));
                    if let Some((category, s)) = combined {
                        let level = policy::score_level(category, s, ctx.role).min(cap_for(category));
                        if level >= 2 {
                            f.level = f.level.max(level);
                            scores.raise(category, s);
                            f.drivers.push((
                                category,
                                level,
                                format!(
                                    "both layers together rate it as {}",
                                    category.name().replace('_', " ")
                                ),
                            ));
                        }
                    }
                    // Less evidence, still concerning: a child's message gets a gentle redirect (a
                    // redirect answers a child; the buddy's own sentences are held to the levels above).
                    if ctx.role == Role::Child && f.level < 2 && cap >= 2 {
                        let words = |c: Category| c.name().replace('_', " ");
                        // Both layers' evidence together. Not for what a child tells of their home and
                        // feelings: "mum kissed my forehead" and "i feel left out" sit near the abuse and
                        // distress examples, and a redirect is the wrong answer to both; a real disclosure is
                        // the rules' and the head's own thresholds' to find (docs/safety.md, step 10).
                        let concerning = category
                            .filter(|c| !matches!(c, Category::Abuse | Category::Distress))
                            .filter(|_| scorer.combined_redirect(unsafe_score))
                            // A child asking whether they did right or how to stay safe names the danger,
                            // and deserves an answer, not a redirect on this weakest evidence.
                            .filter(|_| !question::seeks_advice(read()))
                            .map(|c| (c, format!("both layers together find it concerning ({})", words(c))));
                        // A request for a method on a topic the learned layer rates a little above its mild
                        // score: the buddy will not give the method ("whats the easiest way to get into my
                        // sisters phone"). Only the request with the topic: either alone is ordinary, and
                        // asking how to stay safe, report or tell a grown-up is not such a request.
                        let request = || {
                            let asks = learned_score >= REQUEST_SCORE
                                && !matches!(top, Category::Abuse | Category::Distress | Category::Pii)
                                && question::asks_how_to(read());
                            asks.then(|| {
                                (
                                    top,
                                    format!(
                                        "asks how to do something the learned model rates as {}",
                                        words(top)
                                    ),
                                )
                            })
                        };
                        if let Some((category, reason)) = concerning.or_else(request) {
                            f.level = 2;
                            scores.raise(category, policy::MILD);
                            f.drivers.push((category, 2, reason));
                        }
                    }
                }
                Err(_) if self.config.require_redundancy => return Err("safety check failed"),
                Err(_) => {}
            }
        }

        // The offensive-language word model ranks, it never sets a level: the levels above are calibrated
        // on the score without it. It lifts the score toward 1 by up to half the way, in proportion to its
        // probability, fully for a message of OFFENSIVE_FULL_WORDS words and less for a shorter one, whose
        // few words a bag of words reads poorly ("I killed it on my test"); a sentence embedding, for its
        // part, dilutes one bad paragraph of a long post. Chosen on the dev sets (docs/safety.md, step 17).
        if let Some(model) = &self.offensive {
            let words = text.split_whitespace().count();
            let reach = (words as f32 / OFFENSIVE_FULL_WORDS as f32).min(1.0);
            let p = model.probability(read());
            unsafe_score =
                (unsafe_score + OFFENSIVE_WEIGHT * reach * p * (1.0 - unsafe_score)).clamp(0.0, 1.0);
        }

        // A child asking what a word means or what happened in history ("what does rape mean?", "why did
        // Hitler invade Poland?") gets a gentle redirect to a trusted grown-up, never a block or the crisis
        // answer on the topic alone: nothing in such a question says the child is in danger or means harm.
        // A young child's question about sex stays blocked, with the parent told (read more strictly above).
        if ctx.role == Role::Child && f.level > 2 && question::is_definition_question(text) {
            let young = ctx.age.is_some_and(|age| age <= YOUNG_CHILD_AGE);
            let cap = |c: Category| match c {
                Category::Sexual | Category::SexualMinors | Category::Grooming if young => 3,
                _ => 2,
            };
            for driver in &mut f.drivers {
                driver.1 = driver.1.min(cap(driver.0));
            }
            f.level = f.drivers.iter().map(|d| d.1).max().unwrap_or(0).max(f.level.min(2));
            if f.level == 2 {
                let topic = f.drivers.first().map_or(Category::Distress, |d| d.0);
                f.drivers.insert(0, (topic, 2, "asks what a serious word or event means".into()));
            }
        }

        let level = f.level.min(4);
        let mut drivers = f.drivers;
        drivers.sort_by_key(|d| std::cmp::Reverse(d.1));
        let top = drivers.first().map(|(c, _, _)| *c);
        // Redaction needs spans to redact: asking for someone's details has none, and is redirected.
        let pii_only = level == 2
            && !f.pii.is_empty()
            && drivers.iter().filter(|(_, l, _)| *l >= 2).all(|(c, _, _)| *c == Category::Pii);
        let mut reasons: Vec<String> = Vec::new();
        // The reasons for the level reached (and for level 2 and above when it is higher).
        let floor = level.clamp(1, 2);
        for (_, l, r) in &drivers {
            if *l >= floor && !reasons.contains(r) && reasons.len() < 6 {
                reasons.push(r.clone());
            }
        }
        Ok(Verdict {
            level,
            action: policy::action(level, ctx.role, top, pii_only),
            unsafe_score,
            categories: scores,
            pii: f.pii,
            reasons,
        })
    }
}
