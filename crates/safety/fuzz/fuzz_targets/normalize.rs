//! Fuzzes the normaliser: `cargo +nightly fuzz run normalize` (from crates/safety).
//! Every view must be computed without panicking, the light view's map must point into the original on
//! char boundaries, and squeezing must keep its byte map in step.
#![no_main]

use libfuzzer_sys::fuzz_target;
use onda_safety::normalize::{fold, fold_with, join_spaced, light, normalize_for_lexicon, squeeze};

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
    if let Some((joined, ranges)) = join_spaced(&folded) {
        for (s, e) in ranges {
            assert!(s <= e && e <= joined.len());
        }
    }
    let (sq, map) = squeeze(&folded, 1);
    assert_eq!(sq.len(), map.len());
    let _ = normalize_for_lexicon(text);
    let _ = onda_safety::lexical::features(text, 12);
});
