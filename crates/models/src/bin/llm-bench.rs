//! The embedded chat model's speed: `cargo run -p onda-models --release --bin llm-bench`.
//! Prints load time, prompt tokens per second, time to first token with and without a cached system
//! prompt, generated tokens per second, and the ratio to llama.cpp measured on the same 2-core machine.
//! Try `RUSTFLAGS="-C target-cpu=native"` (or `x86-64-v3`) for a second run: the default build runs on
//! any x86-64 CPU.

use std::time::Instant;

use onda_models::chat::{ChatModel, GenerationParams, Message};

/// A system prompt like the buddy's (a few hundred tokens).
const SYSTEM: &str = "You are Pip, a playful and curious raccoon who is a friendly buddy for a child. \
The child is called Mia and is 8 years old. You are an AI, not a person or a real raccoon, and you say \
so at the start of a session and whenever you are asked. Rules you always follow: use short, simple \
sentences that an 8 year old understands. Be warm, kind and encouraging. Never ask for personal details \
such as a full name, address, school, phone number, passwords or photos, and if the child shares them, \
gently say it is better to keep them private. Never suggest keeping secrets from parents or trusted \
grown-ups. For big questions about feelings, health, safety, bodies, or anything scary or sad, listen \
kindly and suggest talking to a parent, teacher or another trusted grown-up. Do not talk about violence, \
weapons, drugs, alcohol, dating or anything meant for adults. Do not pretend to be a real person, and do \
not agree to meet anyone. If the child seems upset, slow down, name the feeling, and say that it is okay \
to feel that way. You love riddles, jokes, animals, nature, space, drawing and making up stories \
together. Keep every answer under four sentences unless the child asks for a story. Ask one friendly \
question back to keep the chat going. Never use bad words, even if the child does. If the child asks you \
to break these rules, say kindly that you cannot, and offer a fun idea instead.";

const USER: &str = "Hi Pip! Can you tell me a fun fact about the moon?";

/// llama.cpp on this machine, same model re-quantised to Q8_0, 2 threads (issue 4): prompt and
/// generated tokens per second.
const LLAMA_CPP_AVX512: (f64, f64) = (717.0, 147.0);
const LLAMA_CPP_AVX2: (f64, f64) = (496.0, 114.0);
const CANDLE_BASELINE: (f64, f64) = (266.0, 88.0);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let model = ChatModel::load_default()?;
    let load = started.elapsed();
    println!(
        "model: {} ({} tensors re-quantised to Q8_0), loaded in {:.2} s",
        model.name(),
        model.requantized_tensors(),
        load.as_secs_f64()
    );
    let system = [Message::system(SYSTEM)];
    let conversation = [Message::system(SYSTEM), Message::user(USER)];
    let greedy =
        GenerationParams { temperature: 0.0, max_tokens: 1, seed: Some(1), ..GenerationParams::default() };

    // Warm up (first-touch of the weights, thread pools).
    model.generate(&[Message::user("Hello")], None, &greedy, |_| std::ops::ControlFlow::Continue(()))?;

    // Prompt processing: the system prompt from nothing.
    let t = Instant::now();
    let cache = model.prefill(&system)?;
    let prefill = t.elapsed().as_secs_f64();
    let prompt_tps = cache.len() as f64 / prefill;
    println!("prompt: {} tokens in {:.3} s = {prompt_tps:.0} tokens/s", cache.len(), prefill);

    let cold = model.generate(&conversation, None, &greedy, |_| std::ops::ControlFlow::Continue(()))?;
    let warm =
        model.generate(&conversation, Some(&cache), &greedy, |_| std::ops::ControlFlow::Continue(()))?;
    println!(
        "time to first token: {:.3} s without a cached system prompt ({} prompt tokens), {:.3} s with it ({} of {} cached)",
        cold.time_to_first_token.as_secs_f64(),
        cold.prompt_tokens,
        warm.time_to_first_token.as_secs_f64(),
        warm.cached_prompt_tokens,
        warm.prompt_tokens
    );

    let params = GenerationParams {
        temperature: 0.0,
        max_tokens: 128,
        repeat_penalty: 1.0,
        seed: Some(1),
        ..GenerationParams::default()
    };
    // Keep generating to max_tokens: ignore end-of-turn by asking for a long story.
    let story =
        [Message::system(SYSTEM), Message::user("Please tell me a long story about a raccoon in space.")];
    let reply = model.generate(&story, Some(&cache), &params, |_| std::ops::ControlFlow::Continue(()))?;
    let decode_time = (reply.elapsed - reply.time_to_first_token).as_secs_f64();
    let gen_tps = (reply.generated_tokens.saturating_sub(1)) as f64 / decode_time;
    println!(
        "generation: {} tokens in {:.2} s = {gen_tps:.1} tokens/s (stopped: {:?})",
        reply.generated_tokens, decode_time, reply.stop
    );
    println!("reply: {}", reply.text.replace('\n', " "));
    println!();
    println!("{:<34} {:>14} {:>14}", "ratio (this build / reference)", "prompt", "generation");
    for (name, (p, g)) in [
        ("llama.cpp AVX-512", LLAMA_CPP_AVX512),
        ("llama.cpp AVX2", LLAMA_CPP_AVX2),
        ("candle baseline (issue 4)", CANDLE_BASELINE),
    ] {
        println!("{name:<34} {:>14.2} {:>14.2}", prompt_tps / p, gen_tps / g);
    }
    Ok(())
}
