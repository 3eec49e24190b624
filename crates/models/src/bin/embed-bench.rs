//! Sentence-embedding speed: `cargo run -p onda-models --release --bin embed-bench`.
//! Prints milliseconds per message (median and p99 of single messages, as the safety engine embeds
//! them) and per token, for short, typical and long messages, and for a batch: for Onda's encoder (with
//! the 8-bit weights it runs and with f32 weights) and, in the same run, for candle's `BertModel` on the
//! same weights (the ratio is the encoder's speed-up).

use std::time::Instant;

use onda_models::{CandleBert, Embedder, Precision};

/// Embeds one text and drops the result.
type EmbedOne<'a> = dyn Fn(&str) -> onda_models::Result<()> + 'a;

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
    let exact = Embedder::load_with(&onda_models::embed::default_embedding_dir(), Precision::F32)?;
    let candle = CandleBert::load(&onda_models::embed::default_embedding_dir())?;
    let encoder_embed = |text: &str| embedder.embed(&[text]).map(drop);
    let exact_embed = |text: &str| exact.embed(&[text]).map(drop);
    let candle_embed = |text: &str| candle.embed(&[text]).map(drop);
    // Onda's encoder (8-bit, then f32 weights), then candle's BertModel.
    let implementations: [&EmbedOne; 3] = [&encoder_embed, &exact_embed, &candle_embed];
    for embed in implementations {
        for _ in 0..5 {
            embed(messages[1].1)?;
        }
    }
    println!(
        "{:<18} {:>7} {:>14} {:>11} {:>13} {:>12} {:>13} {:>9}",
        "message",
        "tokens",
        "encoder median",
        "encoder p99",
        "ms per token",
        "f32 median",
        "candle median",
        "speed-up"
    );
    for (name, text) in messages {
        let tokens = embedder.count_tokens(text)?;
        let mut figures = Vec::new();
        for embed in implementations {
            let mut times: Vec<f64> = (0..100)
                .map(|_| {
                    let t = Instant::now();
                    let _ = embed(text);
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            times.sort_by(f64::total_cmp);
            figures.push((percentile(&times, 0.5), percentile(&times, 0.99)));
        }
        let (median, p99) = figures[0];
        println!(
            "{name:<18} {tokens:>7} {median:>14.2} {p99:>11.2} {:>13.3} {:>12.2} {:>13.2} {:>8.1}x",
            median / tokens as f64,
            figures[1].0,
            figures[2].0,
            figures[2].0 / median
        );
    }
    let batch: Vec<&str> = (0..32).map(|i| messages[i % 3].1).collect();
    let rounds = 5;
    let t = Instant::now();
    for _ in 0..rounds {
        embedder.embed(&batch)?;
    }
    let ours = t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds) / batch.len() as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        exact.embed(&batch)?;
    }
    let ours_f32 = t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds) / batch.len() as f64;
    let t = Instant::now();
    for _ in 0..rounds {
        candle.embed(&batch)?;
    }
    let theirs = t.elapsed().as_secs_f64() * 1e3 / f64::from(rounds) / batch.len() as f64;
    println!(
        "batch of {}: encoder {ours:.2} ms per message (one thread; {ours_f32:.2} with f32 weights), candle {theirs:.2} ms per message (padded batch, all cores)",
        batch.len()
    );
    Ok(())
}
