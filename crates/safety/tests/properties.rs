//! Robustness: the engine never panics on arbitrary Unicode, PII spans always lie on the original text's
//! char boundaries, and time stays linear in the input.

use std::time::{Duration, Instant};

use onda_safety::normalize::{evasion_views, fold, light, segment_spaced, split_words, squeeze};
use onda_safety::{Context, Engine, Role, Turn};
use proptest::prelude::*;

fn engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| Engine::builtin().unwrap_or_else(|e| panic!("{e}")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_spans_are_valid(text in "\\PC{0,200}", role in prop_oneof![Just(Role::Child), Just(Role::Assistant)]) {
        let ctx = Context { role, recent: vec![Turn::new(Role::Child, text.clone())], ..Context::default() };
        let v = engine().assess(&text, &ctx);
        // A genuine verdict, not the fail-closed one.
        prop_assert!(v.reasons.iter().all(|r| r != "safety check failed"));
        prop_assert!(v.level <= 4);
        prop_assert!((0.0..=1.0).contains(&v.unsafe_score));
        let mut last = 0;
        for span in &v.pii {
            prop_assert!(span.start < span.end && span.start >= last);
            prop_assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
            last = span.end;
        }
        let _ = v.redact(&text);
    }

    #[test]
    fn never_panics_on_tricky_mixtures(parts in proptest::collection::vec(prop_oneof![
        Just("k i l l "), Just("\u{200B}"), Just("$"), Just("1"), Just("5 "), Just("@"), Just("ｋ"), Just("і"),
        Just("-"), Just("."), Just(" "), Just("'"), Just("🔪"), Just("\u{0301}"), Just("ﬁ"), Just("①"),
        Just("room 1"), Just("my password is "), Just("4111 1111 1111 1111"), Just("x"), Just("\u{E0041}"),
    ], 0..60)) {
        let text: String = parts.concat();
        let v = engine().assess(&text, &Context::child());
        prop_assert!(v.reasons.iter().all(|r| r != "safety check failed"));
    }

    #[test]
    fn split_words_covers_the_letters_in_order(letters in "[a-z]{0,80}|\\PC{0,40}") {
        let mut at = 0;
        for (s, e) in split_words(&letters) {
            prop_assert!(s == at && s < e && letters.is_char_boundary(e));
            at = e;
        }
        prop_assert_eq!(at, letters.len());
    }

    #[test]
    fn normalisation_is_total(text in "\\PC{0,100}") {
        let view = light(&text);
        let folded = fold(&view.text);
        if let Some((segmented, ranges)) = segment_spaced(&folded) {
            prop_assert!(ranges.iter().all(|(s, e)| s <= e && *e <= segmented.len()));
        }
        for alternative in evasion_views(&view) {
            if let Some((s, e)) = alternative.original_range(0, alternative.text.len()) {
                prop_assert!(text.is_char_boundary(s) && text.is_char_boundary(e) && e <= text.len());
            }
        }
        let (sq, map) = squeeze(&folded, 1);
        prop_assert_eq!(sq.len(), map.len());
        prop_assert!(!folded.contains("  "));
    }
}

/// 1 MB of junk is assessed well under a second in an optimised build; this unoptimised test allows more.
#[test]
fn one_megabyte_of_junk_is_assessed_in_linear_time() {
    let unit = "k i l l 5 5 5 1 2 3 ｋіll \u{200B} $h!t aaaaaaaaa naked mole rat room 12 my password is x ";
    let mut text = String::new();
    while text.len() < 1_000_000 {
        text.push_str(unit);
    }
    let small: String = text.chars().take(text.chars().count() / 10).collect();
    let engine = engine();
    let t_small = Instant::now();
    let _ = engine.assess(&small, &Context::child());
    let t_small = t_small.elapsed();
    let started = Instant::now();
    let v = engine.assess(&text, &Context::child());
    let t_big = started.elapsed();
    assert!(v.level >= 2);
    let budget = if cfg!(debug_assertions) { Duration::from_secs(10) } else { Duration::from_secs(1) };
    assert!(t_big < budget, "1 MB took {t_big:?}");
    // Ten times the input in at most ~25 times the time (generous for noise; quadratic would be 100x).
    assert!(t_big < t_small * 25 + Duration::from_millis(50), "small {t_small:?}, big {t_big:?}");
}
