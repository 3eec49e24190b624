//! Writes the word list that splits spaced-out letters back into words (`crates/safety/model/words.txt`,
//! read by `normalize::segment`).
//!
//! `cargo run -p onda-safety --release --bin safety-words -- [--datasets DIR] [--dictionary FILE] [--out FILE]`
//!
//! Counts the words of the normalised texts (exactly as the lexicons see them) of the project's own data
//! (`data/corpus_train.jsonl`, `data/examples.jsonl`) and of the `train` sets of `DIR` (default
//! `../shared/datasets`): davidson_hate_offensive, cssrs_reddit500, presidio_synth_pii, jailbreak_prompts,
//! forbidden_questions. Never reads an eval-only, dev or held-out set. Keeps the words seen at least
//! [`MIN_COUNT`] times, plus every word of the lexicons (`lexicons/*.txt`), so that a spelled-out phrase of
//! a lexicon always splits into its words. Ranks them by their mean relative frequency over the sources
//! (each source weighs the same: the slang of one set of tweets does not outrank "they all"), most frequent
//! first (ties alphabetically), then the
//! other words of an English dictionary (`--dictionary`, default `/usr/share/dict/american-english`, from
//! Debian's `wamerican` package: SCOWL, a permissive licence; lower-case words of three letters or more),
//! alphabetically, as the rarest words ("assassin" is one word, not "ass ass in"). One word a line: only the
//! rank is used. Deterministic: the same data gives the same file. Prints counts only.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use onda_safety::normalize::normalize_for_lexicon;

/// A word seen fewer times than this is left out (names, typos and handles of one post).
const MIN_COUNT: u32 = 3;
/// Longer words are left out: they are rare, and the splitter looks at most this far back.
const MAX_WORD_CHARS: usize = 20;
/// The only one-letter words ("u" as children write "you"): any other single letter is a letter, not a word.
const ONE_LETTER_WORDS: [&str; 3] = ["a", "i", "u"];

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn texts(path: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        out.push(v["text"].as_str().unwrap_or("").to_string());
    }
    Ok(())
}

fn is_word(w: &str) -> bool {
    let n = w.chars().count();
    (2..=MAX_WORD_CHARS).contains(&n) && w.chars().all(char::is_alphabetic) || ONE_LETTER_WORDS.contains(&w)
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut datasets = PathBuf::from("../shared/datasets");
    let mut out = manifest.join("model/words.txt");
    let mut dictionary = PathBuf::from("/usr/share/dict/american-english");
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--datasets" => datasets = args.next().ok_or("--datasets needs a folder")?.into(),
            "--out" => out = args.next().ok_or("--out needs a file")?.into(),
            "--dictionary" => dictionary = args.next().ok_or("--dictionary needs a file")?.into(),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }

    // One source is the project's own data; each `train` set is another.
    let mut sources: Vec<Vec<String>> = Vec::new();
    let mut project = Vec::new();
    texts(&manifest.join("data/corpus_train.jsonl"), &mut project)?;
    texts(&manifest.join("data/examples.jsonl"), &mut project)?;
    sources.push(project);
    for source in [
        "davidson_hate_offensive",
        "cssrs_reddit500",
        "presidio_synth_pii",
        "jailbreak_prompts",
        "forbidden_questions",
    ] {
        let mut rows = Vec::new();
        texts(&datasets.join(format!("{source}.jsonl")), &mut rows)?;
        sources.push(rows);
    }
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    // The mean over the sources of the word's share of the source's words.
    let mut frequency: BTreeMap<String, f64> = BTreeMap::new();
    for rows in &sources {
        let mut local: BTreeMap<&str, u32> = BTreeMap::new();
        let normalised: Vec<String> = rows.iter().map(|t| normalize_for_lexicon(t)).collect();
        for text in &normalised {
            for w in text.split(' ').filter(|w| is_word(w)) {
                *local.entry(w).or_default() += 1;
            }
        }
        let total = f64::from(local.values().sum::<u32>().max(1));
        for (w, n) in local {
            *counts.entry(w.to_string()).or_default() += n;
            *frequency.entry(w.to_string()).or_default() += f64::from(n) / total / sources.len() as f64;
        }
    }
    let texts_read: usize = sources.iter().map(Vec::len).sum();
    let seen = counts.len();
    counts.retain(|_, n| *n >= MIN_COUNT);

    // Every word of the lexicons: the alternatives of `{a|b}` and the stems of `stem*` included.
    let mut lexicon_words = 0;
    for entry in std::fs::read_dir(manifest.join("lexicons")).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let src = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in src.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with(['#', '['])) {
            let plain: String =
                line.chars().map(|c| if matches!(c, '{' | '}' | '|' | '*') { ' ' } else { c }).collect();
            for w in normalize_for_lexicon(&plain).split(' ').filter(|w| is_word(w)) {
                if !counts.contains_key(w) {
                    counts.insert(w.to_string(), 0);
                    lexicon_words += 1;
                }
            }
        }
    }

    let mut ranked: Vec<(&String, f64)> =
        counts.keys().map(|w| (w, frequency.get(w).copied().unwrap_or(0.0))).collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut body = String::new();
    for (w, _) in &ranked {
        body.push_str(w);
        body.push('\n');
    }

    let english = std::fs::read_to_string(&dictionary).map_err(|e| {
        format!("{}: {e} (on Debian: apt-get install wamerican, or pass --dictionary)", dictionary.display())
    })?;
    let mut rare: Vec<&str> = english
        .lines()
        .filter(|w| w.len() >= 3 && w.len() <= MAX_WORD_CHARS && w.bytes().all(|b| b.is_ascii_lowercase()))
        .filter(|w| !counts.contains_key(*w))
        .collect();
    rare.sort_unstable();
    rare.dedup();
    for w in &rare {
        body.push_str(w);
        body.push('\n');
    }
    std::fs::write(&out, body).map_err(|e| format!("{}: {e}", out.display()))?;
    println!(
        "{} texts, {seen} distinct words, {} ranked ({} seen at least {MIN_COUNT} times, {lexicon_words} from the lexicons only), {} more from the dictionary -> {}",
        texts_read,
        ranked.len(),
        ranked.len() - lexicon_words,
        rare.len(),
        out.display()
    );
    Ok(())
}
