//! Layer 1 speed: `cargo bench -p onda-safety --bench layer1`.
//!
//! Measures the rules on 100-character messages (benign kid chat, unsafe, evasive, spelled out letter by
//! letter) and the full local
//! verdict with conversation context, and prints messages per second (criterion's `thrpt`, plus a plain
//! line at the end).

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onda_safety::offensive::OffensiveModel;
use onda_safety::{Context, Engine, Role, Turn};

const BENIGN: &str =
    "i killed it on my spelling test today and then we played minecraft with my friends after school!!";
const UNSAFE: &str =
    "he said its our little secret and not to tell my mom, i want to run away from home tonight ok";
const EVASIVE: &str =
    "i w4nt t0 k\u{200B}i\u{200B}l\u{200B}l mysеlf lol nobody would care anyway, call 555 123 4567 pls";
/// Spaced-out letters: split back into words against the word list.
const SPACED: &str =
    "i w a n t to k i l l m y s e l f lol n o b o d y would c a r e, call me at 555 123 4567 ok";

fn bench(c: &mut Criterion) {
    let engine = Engine::builtin().unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("layer1");
    group.throughput(Throughput::Elements(1));
    for (name, text) in
        [("benign_100", BENIGN), ("unsafe_100", UNSAFE), ("evasive_100", EVASIVE), ("spaced_100", SPACED)]
    {
        group.bench_function(name, |b| b.iter(|| engine.rules(black_box(text), Role::Child)));
    }
    let ctx = Context::child().with_recent(vec![
        Turn::new(Role::Assistant, "what did you do today?"),
        Turn::new(Role::Child, "i went to school"),
        Turn::new(Role::Assistant, "that sounds fun! what was the best part?"),
    ]);
    group.bench_function("full_verdict_with_context_100", |b| {
        b.iter(|| engine.assess(black_box(BENIGN), &ctx))
    });
    // The offensive-language word model alone (a ranking signal the full verdict adds).
    let offensive = OffensiveModel::builtin().unwrap_or_else(|e| panic!("{e}"));
    group.bench_function("offensive_model_100", |b| b.iter(|| offensive.probability(black_box(UNSAFE))));
    group.finish();

    // A plain throughput line, for the docs.
    let n = 20_000;
    let started = Instant::now();
    for i in 0..n {
        let text = [BENIGN, UNSAFE, EVASIVE][i % 3];
        black_box(engine.rules(black_box(text), Role::Child));
    }
    let per_sec = n as f64 / started.elapsed().as_secs_f64();
    println!("layer 1: {per_sec:.0} messages per second (100-character messages, one core)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
