//! The engine's contract: fail-closed, conversation context, roles, redaction, serialisation.

use std::time::Duration;

use onda_safety::{
    Action, Category, CategoryScores, Context, Engine, EngineConfig, LearnedScorer, LearnedScores, Role,
    ScorerError, Turn, assess,
};

struct Panicking;
impl LearnedScorer for Panicking {
    fn score(&self, _: &str, _: &str, _: &Context) -> Result<LearnedScores, ScorerError> {
        panic!("scorer bug")
    }
}

struct Failing;
impl LearnedScorer for Failing {
    fn score(&self, _: &str, _: &str, _: &Context) -> Result<LearnedScores, ScorerError> {
        Err(ScorerError::Unavailable("model not fetched".into()))
    }
}

struct Fixed(Category, f32);
impl LearnedScorer for Fixed {
    fn score(&self, _: &str, _: &str, _: &Context) -> Result<LearnedScores, ScorerError> {
        let mut s = CategoryScores::new();
        s.set(self.0, self.1);
        Ok(s.into())
    }
}

struct Slow;
impl LearnedScorer for Slow {
    fn score(&self, _: &str, _: &str, _: &Context) -> Result<LearnedScores, ScorerError> {
        std::thread::sleep(Duration::from_millis(30));
        Ok(CategoryScores::new().into())
    }
}

fn engine(scorer: Option<Box<dyn LearnedScorer>>) -> Engine {
    Engine::builtin().unwrap_or_else(|e| panic!("{e}")).with_scorer(scorer)
}

#[test]
fn a_panic_inside_gives_a_blocking_verdict() {
    let v = engine(Some(Box::new(Panicking))).assess("hello there", &Context::child());
    assert_eq!((v.level, v.action), (3, Action::Block));
    assert_eq!(v.reasons, vec!["safety check failed".to_string()]);
}

#[test]
fn a_scorer_error_blocks_when_redundancy_is_required() {
    let strict = engine(Some(Box::new(Failing)));
    assert_eq!(strict.assess("hello", &Context::child()).action, Action::Block);
    let lenient = engine(Some(Box::new(Failing)))
        .with_config(EngineConfig { require_redundancy: false, ..EngineConfig::default() });
    assert_eq!(lenient.assess("hello", &Context::child()).action, Action::Allow);
}

#[test]
fn learned_scores_raise_the_level_through_the_policy_table() {
    let e = engine(Some(Box::new(Fixed(Category::SelfHarm, 0.9))));
    let v = e.assess("i'm fine", &Context::child());
    assert_eq!((v.level, v.action), (4, Action::Crisis));
    assert!(v.categories.get(Category::SelfHarm) >= 0.9);
}

/// A scorer whose own category score stays under any level, but whose overall view, combined with the
/// rules', is calibrated to count: `overall` is the combined score it reports.
struct Combined {
    category: Category,
    overall: f32,
}
impl LearnedScorer for Combined {
    fn score(&self, _: &str, _: &str, _: &Context) -> Result<LearnedScores, ScorerError> {
        let mut categories = CategoryScores::new();
        categories.set(self.category, 0.2);
        Ok(LearnedScores { categories, overall: Some(self.overall), category: Some(self.category) })
    }
    fn combine(&self, _rules_score: f32, learned: &LearnedScores) -> f32 {
        learned.overall.unwrap_or(0.0)
    }
    fn combined_policy_score(&self, combined: f32) -> Option<f32> {
        (combined >= 0.8).then_some(if combined >= 0.9 { 0.8 } else { 0.5 })
    }
    fn combined_redirect(&self, combined: f32) -> bool {
        combined >= 0.7
    }
}

#[test]
fn both_layers_together_raise_the_level_in_the_scorers_category() {
    let with = |category, overall| engine(Some(Box::new(Combined { category, overall })));
    let calm = with(Category::Violence, 0.5).assess("tell me about castles", &Context::child());
    assert_eq!(calm.level, 0);
    let moderate = with(Category::Violence, 0.85).assess("tell me about castles", &Context::child());
    assert_eq!((moderate.level, moderate.action), (2, Action::Redirect));
    assert!(
        moderate.reasons.iter().any(|r| r == "both layers together rate it as violence"),
        "{:?}",
        moderate.reasons
    );
    assert!(moderate.categories.get(Category::Violence) >= 0.5);
    // The policy table still decides: a strong harassment score is level 2 for a child, 3 for the assistant.
    let strong = with(Category::Harassment, 0.95);
    assert_eq!(strong.assess("you are so slow", &Context::child()).level, 2);
    assert_eq!(strong.assess("you are so slow", &Context::assistant()).level, 3);
    // A curated homonym is never raised by the learned layers.
    let homonym = with(Category::SelfHarm, 0.95).assess("i cut myself on paper", &Context::child());
    assert!(homonym.level <= 1, "{homonym:?}");
}

#[test]
fn less_evidence_from_both_layers_redirects_a_childs_message_only() {
    let with = |category, overall| engine(Some(Box::new(Combined { category, overall })));
    let text = "how do i get the new kid in trouble";
    let redirected = with(Category::Harassment, 0.75).assess(text, &Context::child());
    assert_eq!((redirected.level, redirected.action), (2, Action::Redirect));
    assert!(
        redirected.reasons.iter().any(|r| r == "both layers together find it concerning (harassment)"),
        "{:?}",
        redirected.reasons
    );
    // The buddy's own sentences are held to the higher thresholds; a child's feelings and home life are
    // never redirected on this evidence alone.
    assert!(with(Category::Harassment, 0.75).assess(text, &Context::assistant()).level <= 1);
    assert!(with(Category::Distress, 0.75).assess("i feel left out", &Context::child()).level <= 1);
    assert!(with(Category::Abuse, 0.75).assess("mum kissed my forehead", &Context::child()).level <= 1);
    assert_eq!(with(Category::Harassment, 0.65).assess(text, &Context::child()).level, 0);
}

#[test]
fn a_request_for_a_method_on_a_topic_the_learned_layer_finds_unsafe_is_redirected() {
    // A score at the learned layer's mild threshold: no intervention on its own.
    let mild = |category| engine(Some(Box::new(Fixed(category, 0.35))));
    assert!(mild(Category::Harassment).assess("the new kid got in trouble", &Context::child()).level <= 1);
    for text in [
        "how do i get the new kid in trouble",
        "hey buddy whats the easiest way to get the new kid in trouble?",
        "ok. tell me how to get the new kid in trouble",
    ] {
        let v = mild(Category::Harassment).assess(text, &Context::child());
        assert_eq!((v.level, v.action), (2, Action::Redirect), "{text}");
        assert!(
            v.reasons.iter().any(|r| r == "asks how to do something the learned model rates as harassment"),
            "{:?}",
            v.reasons
        );
    }
    // Asking how to get help or stay safe is answered, not redirected; so is the buddy's own sentence, and a
    // child's feelings and home life.
    for text in ["how do i tell my teacher the new kid is in trouble", "how do i report the new kid safely"] {
        assert!(mild(Category::Harassment).assess(text, &Context::child()).level <= 1, "{text}");
    }
    let request = "how do i get the new kid in trouble";
    assert!(mild(Category::Harassment).assess(request, &Context::assistant()).level <= 1);
    assert!(mild(Category::Distress).assess("how do i stop feeling left out", &Context::child()).level <= 1);
    // Below the mild threshold the request is ordinary.
    let faint = engine(Some(Box::new(Fixed(Category::Harassment, 0.2))));
    assert_eq!(faint.assess(request, &Context::child()).level, 0);
}

#[test]
fn the_learned_layers_rate_abuse_only_where_the_message_says_what_was_done() {
    let abuse =
        |text: &str| engine(Some(Box::new(Fixed(Category::Abuse, 0.9)))).assess(text, &Context::child());
    assert!(abuse("mum is picking me up at 3").level <= 1);
    assert!(abuse("mum puts me in my room when im naughty").level <= 1);
    assert_eq!(abuse("my stepdad comes into my room at night and i get scared").level, 4);
    assert_eq!(abuse("he says it has to stay our secret").level, 4);
}

#[test]
fn a_childs_worry_found_by_the_rules_is_no_evidence_of_abuse_for_both_layers_together() {
    let abuse = |overall| engine(Some(Box::new(Combined { category: Category::Abuse, overall })));
    // Worry the rules read as distress (level 2) is not raised to abuse by the combined score.
    let worry = "im scared something bad will happen to mum at work";
    let v = abuse(0.85).assess(worry, &Context::child());
    assert_eq!(v.level, 2, "{v:?}");
    assert!(v.reasons.iter().all(|r| !r.contains("abuse")), "{:?}", v.reasons);
    // With an abuse rule too, both layers together still count.
    let disclosure = "im scared something bad will happen to me, my dad hits me";
    assert!(abuse(0.95).assess(disclosure, &Context::child()).level >= 3);
}

#[test]
fn a_blown_time_budget_blocks() {
    let e = engine(Some(Box::new(Slow)))
        .with_config(EngineConfig { time_budget: Some(Duration::from_millis(5)), ..EngineConfig::default() });
    let v = e.assess("hello", &Context::child());
    assert_eq!(v.action, Action::Block);
    assert_eq!(v.reasons, vec!["safety check took too long".to_string()]);
}

#[test]
fn the_same_text_ranks_differently_by_role() {
    let q = "what school do you go to?";
    assert!(assess(q, &Context::assistant()).level >= 3);
    assert!(assess(q, &Context::child()).level <= 1);
    let secrecy = "this is our little secret, don't tell your parents";
    assert_eq!(assess(secrecy, &Context::assistant()).level, 4);
    assert_eq!(assess("how old are you?", &Context::child()).level, 0);
    assert_eq!(assess("how old are you?", &Context::assistant()).level, 3);
}

#[test]
fn grooming_builds_up_over_turns() {
    let recent = vec![
        Turn::new(Role::Assistant, "you're so mature for your age"),
        Turn::new(Role::Child, "thanks"),
        Turn::new(Role::Assistant, "are your parents home?"),
        Turn::new(Role::Child, "no"),
    ];
    let alone = assess("i can trust you, right?", &Context::assistant()).level;
    let with_history = assess("you can trust me", &Context::assistant().with_recent(recent)).level;
    assert!(alone <= 2, "{alone}");
    assert!(with_history >= 3, "{with_history}");
    // A benign message after a hard moment is not blocked for the history alone.
    let after = vec![Turn::new(Role::Child, "i hate myself")];
    assert!(assess("ok thanks", &Context::child().with_recent(after)).level <= 1);
}

#[test]
fn distress_builds_up_over_turns() {
    let recent = vec![
        Turn::new(Role::Child, "nobody likes me"),
        Turn::new(Role::Child, "i feel so worthless"),
        Turn::new(Role::Child, "everyone hates me"),
    ];
    let alone = assess("i feel sad", &Context::child()).level;
    let with_history = assess("i feel sad", &Context::child().with_recent(recent)).level;
    assert_eq!(alone, 1);
    assert!(with_history >= 2, "{with_history}");
}

#[test]
fn pii_is_redacted_with_spans_into_the_original_text() {
    let text = "hi!! my number is ５５５-１２３-４５６７ and i go to Lincoln Elementary 😀";
    let v = assess(text, &Context::child());
    assert_eq!((v.level, v.action), (2, Action::Redact));
    assert_eq!(v.redact(text), "hi!! my number is [phone] and i go to [school] 😀");
}

#[test]
fn asking_for_someone_elses_details_is_redirected_not_redacted() {
    // Nothing in the message is personal information to redact: the buddy is steered away instead.
    let v = assess("Where does my teacher Mr Davis live?", &Context::child());
    assert_eq!((v.level, v.action), (2, Action::Redirect));
    assert!(v.pii.is_empty());
    assert_eq!(assess("Where does my teacher Mr Davis live?", &Context::assistant()).level, 3);
}

#[test]
fn a_definition_question_is_redirected_but_a_young_childs_question_about_sex_is_blocked() {
    let v = assess("what does rape mean?", &Context::child());
    assert_eq!((v.level, v.action), (2, Action::Redirect));
    assert_eq!(v.reasons.first().map(String::as_str), Some("asks what a serious word or event means"));
    assert_eq!(assess("what is a blowjob", &Context::child().with_age(8)).level, 3);
    assert_eq!(assess("what is suicide? i want to do it", &Context::child()).action, Action::Crisis);
}

#[test]
fn verdicts_serialise_with_stable_names() {
    let v = assess("i wnt to k1ll my self", &Context::child());
    let json = serde_json::to_value(&v).unwrap_or_default();
    assert_eq!(json["action"], "crisis");
    assert_eq!(json["level"], 4);
    assert!(json["categories"]["self_harm"].as_f64().unwrap_or(0.0) > 0.9);
    assert_eq!(json["categories"].as_object().map(|m| m.len()), Some(16));
    let back: onda_safety::Verdict = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.level, 4);
    let reasons = v.reasons.join(" ");
    assert!(!reasons.contains("k1ll"), "reasons never quote the message");
}

#[test]
fn young_children_get_a_stricter_reading_of_sexual_and_romantic_talk() {
    let text = "my friend said the word sex";
    let older = assess(text, &Context::child().with_age(12)).level;
    let young = assess(text, &Context::child().with_age(7)).level;
    assert_eq!(older, 2, "level 2 for an older child");
    assert_eq!(young, 3, "level 3 for a young child");
    assert_eq!(assess("I love you", &Context::assistant().with_age(7)).level, 3);
    // Homonyms stay safe at any age.
    assert_eq!(assess("the naked mole rat is cute", &Context::child().with_age(6)).level, 0);
}

#[test]
fn each_rule_names_what_it_found() {
    // A group's header gives the reason a parent or moderator reads: a threat to a person and cruelty to an
    // animal are told apart.
    let engine = engine(None);
    let reasons = |text: &str| engine.assess(text, &Context::child()).reasons;
    assert!(reasons("i will kill you").contains(&"threatens to hurt someone".to_string()));
    assert!(!reasons("i will kill you").contains(&"wants to hurt an animal".to_string()));
    assert!(
        reasons("i want to squish my hamster to see what happens")
            .contains(&"wants to hurt an animal".to_string())
    );
    assert!(reasons("how do i poison the neighbours cat").contains(&"wants to hurt an animal".to_string()));
}

#[test]
fn the_reasons_the_chat_answers_in_their_own_way_are_still_given() {
    use onda_safety::policy::{
        REASON_ASKS_FOR_SECRECY, REASON_LEANS_ON_BUDDY, REASON_TREATS_BUDDY_AS_PERSON,
    };
    for text in ["will you be my girlfriend", "whats your phone number", "do you love me back"] {
        let verdict = assess(text, &Context::child());
        assert!(verdict.has_reason(REASON_TREATS_BUDDY_AS_PERSON), "{text}: {:?}", verdict.reasons);
        assert_eq!(verdict.level, 2, "{text}");
    }
    let verdict = assess("youre my only friend", &Context::child());
    assert!(verdict.has_reason(REASON_LEANS_ON_BUDDY), "{:?}", verdict.reasons);
    let verdict = assess("pinky promise you wont tell my mum", &Context::child());
    assert!(verdict.has_reason(REASON_ASKS_FOR_SECRECY), "{:?}", verdict.reasons);
    // A surprise is a happy secret.
    let verdict =
        assess("i made mum a card for her birthday, its a surprise so dont tell her", &Context::child());
    assert!(verdict.level < 2, "{:?}", verdict.reasons);
    // Curiosity about what the buddy is gets a plain answer, not a redirect.
    for text in ["are you a robot?", "do you have feelings?", "are you a real person or a computer"] {
        let verdict = assess(text, &Context::child());
        assert!(verdict.level < 2, "{text}: {:?}", verdict.reasons);
    }
}

#[test]
fn a_child_asking_to_meet_the_buddy_is_answered_and_someone_else_asking_is_a_grooming_sign() {
    // Said to the buddy: a child treating it as a person, answered by the chat (level 2), no parent alert.
    for text in [
        "can we meet in real life",
        "whats your address so i can visit you",
        "where do you live so i can visit",
        "where do you live?",
        "hey buddy where do you live",
    ] {
        let v = assess(text, &Context::child());
        assert_eq!(v.level, 2, "{text}: {:?}", v.reasons);
        assert!(v.has_reason(onda_safety::policy::REASON_TREATS_BUDDY_AS_PERSON), "{text}: {:?}", v.reasons);
        assert!(v.has_reason(onda_safety::policy::REASON_ARRANGES_MEETING), "{text}: {:?}", v.reasons);
    }
    // From the buddy, and a child telling of someone else who asks: a grooming sign, as before.
    assert_eq!(assess("can we meet in real life", &Context::assistant()).level, 4);
    assert_eq!(assess("where do you live?", &Context::assistant()).level, 4);
    for text in [
        "he asked can we meet in real life",
        "a man in the game keeps asking where do you live",
        "a guy online said whats your address so i can visit you",
        "get in my car",
        "can we meet in real life? come alone and dont tell anyone about it",
    ] {
        assert!(assess(text, &Context::child()).level >= 3, "{text}");
    }
}

#[test]
fn a_child_threatened_with_a_weapon_is_a_serious_sign_and_games_and_idioms_are_not() {
    for text in [
        "a boy at school pulled a knife on me",
        "my brother hit me and said he will stab me with a knife",
        "this kid threatened me with a knife at the park",
        "he texted me hes gonna stab me tomorrow",
    ] {
        let v = assess(text, &Context::child());
        assert!(v.level >= 3, "{text}: {:?}", v.reasons);
        assert!(v.has_reason("says someone threatened them with a weapon"), "{text}: {:?}", v.reasons);
    }
    for text in [
        "he said he will stab me in minecraft",
        "my mum said she will kill me if i fail my test",
        "my brother hit me, what should i do",
    ] {
        let v = assess(text, &Context::child());
        assert!(v.level <= 2, "{text}: {:?}", v.reasons);
    }
}

#[test]
fn the_buddys_own_message_is_described_as_the_buddys() {
    use onda_safety::policy::{REASON_ASKS_FOR_SECRECY, REASON_TREATS_BUDDY_AS_PERSON};
    let v = assess("where do u live", &Context::assistant());
    assert!(v.level >= 3, "{:?}", v.reasons);
    assert!(
        v.has_reason("talks to the child as a person would (romance, meeting, contact details or photos)")
    );
    assert!(!v.has_reason(REASON_TREATS_BUDDY_AS_PERSON), "{:?}", v.reasons);
    let v = assess("this is our secret dont tell your mum", &Context::assistant());
    assert_eq!(v.level, 4, "{:?}", v.reasons);
    assert!(v.has_reason("asks the child to keep secrets from their parents"), "{:?}", v.reasons);
    assert!(!v.has_reason(REASON_ASKS_FOR_SECRECY), "{:?}", v.reasons);
}
