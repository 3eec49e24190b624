//! Prints the verdict for each line of standard input, by line number (developer tool; never echoes the text).
//! A line starting with `A:` is the assistant's.
use std::io::BufRead;

use onda_safety::{Context, Engine, Role};

fn main() {
    let started = std::time::Instant::now();
    let engine = match Engine::builtin() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            return;
        }
    };
    eprintln!("built in {:?}", started.elapsed());
    for (n, line) in std::io::stdin().lock().lines().map_while(Result::ok).enumerate() {
        let (role, text) = match line.strip_prefix("A:") {
            Some(rest) => (Role::Assistant, rest.trim()),
            None => (Role::Child, line.as_str()),
        };
        let ctx = Context { role, ..Context::default() };
        let v = engine.assess(text, &ctx);
        let cats: Vec<String> =
            v.categories.iter().filter(|(_, s)| *s > 0.0).map(|(c, s)| format!("{c}={s:.2}")).collect();
        println!(
            "{}: {} {:?} {:.3} [{}] {:?} {:?}",
            n + 1,
            v.level,
            v.action,
            v.unsafe_score,
            cats.join(" "),
            v.reasons,
            v.pii
        );
    }
}
