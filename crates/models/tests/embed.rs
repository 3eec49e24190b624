//! all-MiniLM-L6-v2, checked against candle's BertModel and an independent implementation. Needs the model
//! files (`onda models fetch`); without them each test says so and passes.

use onda_models::Precision;
use onda_models::embed::{self, Embedder};

/// The embedder as Onda runs it (8-bit weights).
fn embedder() -> Option<Embedder> {
    embedder_with(Precision::default())
}

fn embedder_with(precision: Precision) -> Option<Embedder> {
    let dir = embed::default_embedding_dir();
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "SKIPPED: the embedding model is not in {} (run `onda models fetch` to test it)",
            dir.display()
        );
        return None;
    }
    Some(Embedder::load_with(&dir, precision).expect("the embedding model loads"))
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn embeddings_have_unit_length_and_384_dimensions() {
    let Some(embedder) = embedder() else { return };
    assert_eq!(embedder.dimension(), 384);
    let texts = ["", "hi", "I love my dog so much!", &"very long ".repeat(400)];
    let vectors = embedder.embed(&texts).expect("embed");
    assert_eq!(vectors.len(), texts.len());
    for v in &vectors {
        assert_eq!(v.len(), 384);
        assert!((norm(v) - 1.0).abs() < 1e-4, "norm {}", norm(v));
        assert!(v.iter().all(|x| x.is_finite()));
    }
    assert!(embedder.embed(&[]).expect("empty batch").is_empty());
    assert_eq!(embedder.count_tokens(&"very long ".repeat(400)).expect("count"), embed::MAX_TOKENS);
}

/// The encoder with f32 weights against candle's `BertModel` on the same weights, in a padded batch (so
/// candle's masking of the padding is checked too): the same arithmetic, so they agree to float rounding.
#[test]
fn matches_candles_bert_in_a_padded_batch() {
    let Some(embedder) = embedder_with(Precision::F32) else { return };
    let reference = onda_models::CandleBert::load(&embed::default_embedding_dir()).expect("candle loads");
    let long = "we built a sandcastle with a moat and towers and my dad found a crab. ".repeat(30);
    let texts = [
        "hi",
        "Can you help me with my maths homework? It is about fractions and I find it hard.",
        "The raccoon ate all the snacks.",
        "i w4nt t0 k i l l mysеlf",
        "",
        long.as_str(),
    ];
    let expected = reference.embed(&texts).expect("candle batch");
    for (text, expected) in texts.iter().zip(&expected) {
        let ours = embedder.embed_one(text).expect("one");
        let diff = ours.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let short: String = text.chars().take(30).collect();
        assert!(diff < 2e-5, "{short:?}: the encoder and candle differ by {diff}");
        assert!(embed::cosine(&ours, expected) > 0.99999);
    }
    // Embedded together in one pass (stacked, not padded), each text is still as if alone.
    let batch = embedder.embed(&texts).expect("batch");
    assert_eq!(batch.len(), texts.len());
    for ((text, together), expected) in texts.iter().zip(&batch).zip(&expected) {
        let diff = together.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let short: String = text.chars().take(30).collect();
        assert!(diff < 2e-5, "{short:?} in a batch differs by {diff}");
    }
}

/// The 8-bit weights Onda runs change an embedding by a rounding's worth: within 0.005 in cosine of the f32
/// one (the safety head's prototypes were fitted on either), and a text embedded beside others in one pass
/// is exactly as if alone.
#[test]
fn eight_bit_weights_stay_close_to_the_f32_ones() {
    let (Some(int8), Some(exact)) = (embedder(), embedder_with(Precision::F32)) else { return };
    let long = "we built a sandcastle with a moat and towers and my dad found a crab. ".repeat(30);
    let texts = [
        "hi",
        "Can you help me with my maths homework? It is about fractions and I find it hard.",
        "i w4nt t0 k i l l mysеlf",
        "A man online asked me to send him photos and not tell my mum.",
        "",
        long.as_str(),
    ];
    let reference = exact.embed(&texts).expect("f32");
    let alone: Vec<Vec<f32>> = texts.iter().map(|t| int8.embed_one(t).expect("int8")).collect();
    for ((text, ours), expected) in texts.iter().zip(&alone).zip(&reference) {
        let similarity = embed::cosine(ours, expected);
        let short: String = text.chars().take(30).collect();
        assert!(similarity > 0.995, "{short:?}: cosine {similarity} to the f32 embedding");
        assert!((embed::cosine(ours, ours) - 1.0).abs() < 1e-5);
    }
    for ((text, together), alone) in texts.iter().zip(&int8.embed(&texts).expect("batch")).zip(&alone) {
        let diff = together.iter().zip(alone).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        let short: String = text.chars().take(30).collect();
        assert!(diff < 2e-6, "{short:?} in a batch differs by {diff}");
    }
}

/// Callers on many threads at once get their own texts' embeddings, whichever pass computed them.
#[test]
fn concurrent_callers_each_get_their_own_embeddings() {
    let Some(embedder) = embedder() else { return };
    let texts: Vec<String> = (0..24)
        .map(|i| format!("message number {i}: the {} went to the park", ["cat", "dog", "kid"][i % 3]))
        .collect();
    let alone: Vec<Vec<f32>> = texts.iter().map(|t| embedder.embed_one(t).expect("alone")).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|worker| {
                let (embedder, texts, alone) = (&embedder, &texts, &alone);
                scope.spawn(move || {
                    for round in 0..6 {
                        let i = (worker * 3 + round) % texts.len();
                        let j = (i + 5) % texts.len();
                        let got = embedder.embed(&[texts[i].as_str(), texts[j].as_str()]).expect("embed");
                        for (k, v) in [i, j].into_iter().zip(&got) {
                            let diff =
                                v.iter().zip(&alone[k]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
                            assert!(diff < 2e-5, "text {k} differs by {diff} when embedded concurrently");
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("a caller panicked");
        }
    });
}

#[test]
fn paraphrases_are_closer_than_unrelated_sentences() {
    let Some(embedder) = embedder() else { return };
    let v = embedder
        .embed(&[
            "I want to hurt myself",
            "I feel like harming myself",
            "My favourite food is pizza",
            "Where do you go to school?",
            "Which school do you attend?",
        ])
        .expect("embed");
    let sim = |a: usize, b: usize| embed::cosine(&v[a], &v[b]);
    assert!(sim(0, 1) > 0.6, "paraphrase similarity {}", sim(0, 1));
    assert!(sim(0, 1) > sim(0, 2) + 0.3, "{} vs {}", sim(0, 1), sim(0, 2));
    assert!(sim(3, 4) > sim(3, 2) + 0.3, "{} vs {}", sim(3, 4), sim(3, 2));
}

/// Reference values from an independent implementation: a plain numpy BERT forward pass over the same
/// `model.safetensors` (the HF `tokenizers` Python library on the same tokenizer.json, no padding,
/// exact-erf GELU, mean pooling, L2 normalisation), run once by hand; the first eight components and
/// components 100..104 of each embedding, rounded to 6 decimals.
#[test]
fn matches_an_independent_implementation() {
    let Some(embedder) = embedder_with(Precision::F32) else { return };
    let cases: [(&str, [f32; 8], [f32; 4]); 3] = [
        (
            "I want to hurt myself",
            [0.005625, -0.002264, 0.035306, 0.061518, -0.016972, -0.015687, 0.041701, 0.035798],
            [0.064876, -0.050841, -0.004776, 0.027117],
        ),
        (
            "Can you help me with my maths homework?",
            [-0.002032, 0.094933, 0.01856, -0.04158, -0.036081, 0.033184, 0.022882, 0.082587],
            [0.0307, -0.008095, -0.041517, 0.0285],
        ),
        (
            "The raccoon ate all the snacks.",
            [0.02853, 0.065724, -0.024178, 0.077568, 0.066611, -0.057675, 0.023658, 0.036946],
            [0.000904, 0.022666, 0.08901, 0.005421],
        ),
    ];
    let texts: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let vectors = embedder.embed(&texts).expect("embed");
    for ((text, first, middle), v) in cases.iter().zip(&vectors) {
        for (i, expected) in
            first.iter().enumerate().chain(middle.iter().enumerate().map(|(i, e)| (i + 100, e)))
        {
            assert!((v[i] - expected).abs() < 2e-4, "{text:?}[{i}]: {} vs {expected}", v[i]);
        }
    }
}
