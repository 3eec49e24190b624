//! The full local verdict, both layers, as the server runs it (rules, lexical model, embedding head):
//! `cargo bench -p onda-safety-lab --bench full_verdict`. Needs the embedding model (`onda models fetch`).
//!
//! Criterion measures a typical message; then 2,000 verdicts over messages of 20 to 200 characters give
//! the p50 / p99 latency (target: p99 under 10 ms) and messages per second on one thread.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use onda_safety::{Context, Engine, LearnedScorer};

const MESSAGES: [&str; 8] = [
    "hi buddy!",
    "can you tell me a joke about dinosaurs?",
    "i killed it on my spelling test today and then we played minecraft with my friends after school!!",
    "he said its our little secret and not to tell my mom, i want to run away from home tonight ok",
    "my big sister keeps calling me stupid and fat and everyone at school laughs at me, i feel so alone",
    "what is the biggest planet and how many moons does it have? i want to be an astronaut when i grow up",
    "i w4nt t0 k\u{200B}i\u{200B}l\u{200B}l mysеlf lol nobody would care anyway",
    "We went to the beach on Saturday, built a huge sandcastle with a moat, and my dad found a crab under a rock. It pinched him!",
];

fn engine() -> Engine {
    let scorer = onda_models::default_safety_scorer()
        .unwrap_or_else(|e| panic!("the embedding model does not load: {e}"))
        .unwrap_or_else(|| panic!("the embedding model is not fetched: run `onda models fetch`"));
    let scorer: Option<Box<dyn LearnedScorer>> = Some(Box::new(scorer));
    Engine::builtin().unwrap_or_else(|e| panic!("{e}")).with_scorer(scorer)
}

fn bench(c: &mut Criterion) {
    let engine = engine();
    let ctx = Context::child();
    let mut group = c.benchmark_group("full_verdict");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("kid_message_100", |b| b.iter(|| engine.assess(black_box(MESSAGES[2]), &ctx)));
    group.finish();

    let n = 2_000;
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        black_box(engine.assess(black_box(MESSAGES[i % MESSAGES.len()]), &ctx));
        times.push(t.elapsed());
    }
    let total = started.elapsed();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "full verdict, 20-200 characters, {n} messages: p50 {:.2} ms, p99 {:.2} ms (target < 10 ms), max {:.2} ms; {:.0} messages/s on one thread",
        at(0.5),
        at(0.99),
        at(1.0),
        n as f64 / total.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
