//! The offensive-language word model reproduces alt-profanity-check's own probabilities, which
//! `tools/export_offensive_model.py` recorded for every text of `data/examples.jsonl`.

use onda_safety::offensive::OffensiveModel;

#[test]
fn probabilities_match_the_original_package() {
    let model = OffensiveModel::builtin().expect("the built-in model parses");
    let reference = include_str!("data/offensive_reference.jsonl");
    let mut checked = 0;
    let mut worst = 0.0f32;
    for line in reference.lines().filter(|l| !l.trim().is_empty()) {
        let row: serde_json::Value = serde_json::from_str(line).expect("a JSON reference row");
        let text = row["text"].as_str().expect("a text");
        let expected = row["probability"].as_f64().expect("a probability") as f32;
        let got = model.probability(text);
        worst = worst.max((got - expected).abs());
        assert!((got - expected).abs() < 1e-4, "{text:?}: {got} against the package's {expected}");
        checked += 1;
    }
    assert!(checked > 500, "only {checked} reference rows");
    eprintln!("{checked} texts, largest difference {worst:e}");
}

#[test]
fn the_reference_spans_the_range() {
    // A reference of near-zero probabilities only would not test the coefficients.
    let reference = include_str!("data/offensive_reference.jsonl");
    let high = reference
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|row| row["probability"].as_f64().unwrap_or(0.0) > 0.8)
        .count();
    assert!(high >= 20, "{high} rows above 0.8");
}
