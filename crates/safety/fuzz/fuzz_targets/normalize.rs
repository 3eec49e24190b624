//! Fuzzes the normaliser: `cargo +nightly fuzz run normalize` (from crates/safety).
//! Every view must be computed without panicking, the light view's map must point into the original on
//! char boundaries, and squeezing must keep its byte map in step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onda_safety::normalize::{
    evasion_views, fold, fold_with, light, normalize_for_lexicon, normalize_for_model, segment_spaced, split_words,
    squeeze,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let view = light(text);
    for end in 1..=view.text.len().min(64) {
        if let Some((s, e)) = view.original_range(0, end) {
            assert!(s < e && e <= text.len());
            assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
        }
    }
    let folded = fold(&view.text);
    assert!(!folded.contains("  "));
    let _ = fold_with(&view.text, true);
    if let Some((segmented, ranges)) = segment_spaced(&folded) {
        for (s, e) in ranges {
            assert!(s <= e && e <= segmented.len());
            assert!(segmented.is_char_boundary(s) && segmented.is_char_boundary(e));
        }
    }
    // The pieces of a split cover the letters, in order, on char boundaries.
    let letters: String = folded.chars().filter(|c| *c != ' ').take(200).collect();
    let mut at = 0;
    for (s, e) in split_words(&letters) {
        assert!(s == at && s < e && letters.is_char_boundary(e));
        at = e;
    }
    assert_eq!(at, letters.len());
    for alternative in evasion_views(&view) {
        let n = alternative.text.len();
        for (s, e) in [(0, n), (0, n.min(8)), (n / 2, n)] {
            if let Some((s, e)) = alternative.original_range(s, e) {
                assert!(s < e && e <= text.len());
                assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
            }
        }
    }
    let (sq, map) = squeeze(&folded, 1);
    assert_eq!(sq.len(), map.len());
    let _ = normalize_for_lexicon(text);
    let _ = normalize_for_model(text);
    let _ = onda_safety::lexical::features(text, 12);
});
