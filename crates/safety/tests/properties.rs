//! Robustness: the engine never panics on arbitrary Unicode, PII spans always lie on the original text's
//! char boundaries, and time stays linear in the input (asserted with generous bounds, never a ratio of
//! timings: see below).

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
        Just("m.a.p.l.e s t r e e t"), Just("a b c "), Just(" ' "), Just("l1v3 47 "), Just("@"), Just("4nd"),
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

/// Time stays linear in the input: 1 MB of junk made of every evasion the normaliser undoes (spaced and
/// dotted letters, leetspeak, homoglyphs, zero-width characters, repeated letters, numbers, PII triggers) is
/// assessed in one call.
///
/// No timing ratio is asserted (the test machines are shared, and a ratio of two timings flakes under
/// load). The bound is deliberately generous instead: a linear pass takes one to two seconds over this text
/// in an unoptimised build (a tenth of that optimised), while any step quadratic in the length would take
/// about 10^12 operations, hours, so a minute separates the two with a wide margin either way.
#[test]
fn one_megabyte_of_junk_is_assessed_in_linear_time() {
    let unit = "k i l l 5 5 5 1 2 3 ｋіll \u{200B} $h!t aaaaaaaaa naked mole rat room 12 my password is x \
                m.y.s.e.l.f i w a n t t o d i e 1 l1v3 47 42 m4pl3 $7r337 a b c d e f g h i j ";
    let mut text = String::new();
    while text.len() < 1_000_000 {
        text.push_str(unit);
    }
    let started = Instant::now();
    let v = engine().assess(&text, &Context::child());
    let elapsed = started.elapsed();
    assert!(v.level >= 2);
    assert!(v.reasons.iter().all(|r| r != "safety check failed"));
    assert!(elapsed < Duration::from_secs(60), "1 MB took {elapsed:?}");
}

/// One long run of spaced-out letters (the splitter's worst case: one run, no word break) is split in one
/// pass: every letter is kept, in order.
#[test]
fn a_long_run_of_spaced_letters_is_split_whole() {
    let letters: String = "iwanttokillmyselfnobodywouldcare".chars().cycle().take(200_000).collect();
    let spaced: String = letters.chars().flat_map(|c| [c, ' ']).collect();
    let started = Instant::now();
    let (segmented, runs) = segment_spaced(spaced.trim_end()).unwrap_or_default();
    let elapsed = started.elapsed();
    assert_eq!(runs.len(), 1);
    assert_eq!(segmented.replace(' ', ""), letters);
    // Same reasoning as above: linear is milliseconds, quadratic in 200,000 letters would be minutes.
    assert!(elapsed < Duration::from_secs(30), "200,000 letters took {elapsed:?}");
}
