//! The embedding head on one sentence embedding, with and without its classifier, in one run:
//! `cargo bench -p onda-safety --bench embedding_head`. The embedding itself (about 4 ms for a short
//! message on 2 cores) is the encoder's and is measured by `onda-safety-lab`'s `full_verdict`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use onda_safety::Role;
use onda_safety::embedding::EmbeddingHead;

/// A fixed unit vector of the head's dimension (the search reads every prototype whatever the vector).
fn query(dimension: usize) -> Vec<f32> {
    let raw: Vec<f32> = (0..dimension).map(|i| ((i * 7919 % 211) as f32 / 211.0) - 0.5).collect();
    let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
    raw.iter().map(|x| x / norm).collect()
}

fn bench(c: &mut Criterion) {
    let head = EmbeddingHead::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut without = head.clone();
    without.classifier = None;
    let q = query(head.dimension);
    let mut group = c.benchmark_group("embedding_head");
    group.bench_function("signal_with_classifier", |b| b.iter(|| head.signal(black_box(&q), Role::Child)));
    group.bench_function("signal_neighbours_only", |b| b.iter(|| without.signal(black_box(&q), Role::Child)));
    if let Some(classifier) = &head.classifier {
        group.bench_function("classifier_logit", |b| b.iter(|| classifier.mlp.logit(black_box(&q))));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
