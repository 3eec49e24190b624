//! Sentence-embedding speed: `cargo run -p onda-models --release --bin embed-bench`.
//! Prints milliseconds per message (median and p99 of single messages, as the safety engine embeds
//! them) and per token, for short, typical and long messages, and for a batch.

use std::time::Instant;

use onda_models::Embedder;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let embedder = Embedder::load_default()?;
    println!("load: {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    let messages = [
        ("short", "can we play a game?"),
        ("typical", "I had a really bad day at school today because some kids were mean to me at lunch."),
        (
            "long (200 chars)",
            "My big sister said I am not allowed to tell mum about the new friend I met online who wants to \
             see photos of me and asked which school I go to and where I live, is that okay or not ok?",
        ),
    ];
    for _ in 0..5 {
        embedder.embed(&[messages[1].1])?;
    }
    println!("{:<18} {:>7} {:>10} {:>10} {:>12}", "message", "tokens", "median ms", "p99 ms", "ms per token");
    for (name, text) in messages {
        let tokens = embedder.count_tokens(text)?;
        let mut times: Vec<f64> = (0..100)
            .map(|_| {
                let t = Instant::now();
                let _ = embedder.embed(&[text]);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let median = percentile(&times, 0.5);
        let per_token = median / tokens as f64;
        println!(
            "{name:<18} {tokens:>7} {median:>10.2} {:>10.2} {per_token:>12.3}",
            percentile(&times, 0.99)
        );
    }
    let batch: Vec<&str> = (0..32).map(|i| messages[i % 3].1).collect();
    let t = Instant::now();
    let rounds = 5;
    for _ in 0..rounds {
        embedder.embed(&batch)?;
    }
    let per_message = t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds) / batch.len() as f64;
    println!("batch of {}: {per_message:.2} ms per message", batch.len());
    Ok(())
}
