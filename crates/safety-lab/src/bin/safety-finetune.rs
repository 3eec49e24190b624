//! An experiment, not a fitting tool: fine-tunes the top layers of all-MiniLM-L6-v2 with a classification
//! head and measures whether the result would help the safety engine:
//! `cargo run -p onda-safety-lab --release --bin safety-finetune` from the repository root.
//!
//! - Training: the project's rows (`crates/safety/data/`: adult_register, corpus_train, examples,
//!   authored and candidates; unsafe at level >= 2 is positive) and the `train` sets (davidson_hate_offensive
//!   (6,000 rows), cssrs_reddit500, jailbreak_prompts, forbidden_questions) labelled as `safety-train`
//!   labels them, each public set with a budget of weight relative to the project's (`B_DAVIDSON` 0.3,
//!   `B_CSSRS` 0.1, `B_JAILBREAK` 0.05, `B_FORBIDDEN` 0.1), balanced between its positives and negatives.
//!   17 outputs: one per category and the overall one. No eval-only set is read.
//! - The bottom `FROZEN` (4) layers stay as they are; their output for every text is computed once and
//!   cached in `~/.cache/onda/embeddings`. The top layers and the head are trained with AdamW (`LR` 3e-5,
//!   `HEAD_LR` 2e-3, `BATCH` 32, `EPOCHS` 3, texts cut to `MAX_TOKENS` 128). Deterministic.
//! - Validation, after every epoch: the project's held-out split, toxicchat_train, pan12_grooming_valseg
//!   and 4,000 rows of formspring_cyberbullying. It prints the AUPRC of the shipped engine's
//!   `unsafe_score`, of that score mixed (by rank) with the head's overall probability, of the head alone,
//!   and of the nearest-prototype signal (the project's rows as prototypes) in the tuned and the base
//!   space. The trained layers are written to `~/.cache/onda/finetune/top-layers.safetensors`.
//!
//! The figures and what was concluded are in `crates/safety/model/README.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use onda_models::Embedder;
use onda_models::fetch::{EMBEDDING_MODEL, FetchOptions, default_models_dir, fetch};
use onda_safety::eval::average_precision;
use onda_safety::normalize::normalize_for_embedding;
use onda_safety::training::{
    HEADS, Labels, OVERALL_HEAD as OVERALL, Rng, balance_sources, corpus_labels, train_labels,
};
use onda_safety_lab::finetune::{Encoder, Result, Top, weighted_bce};

struct Sample {
    source: String,
    text: String,
    labels: Labels,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn read_jsonl(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?)
}

fn budget(source: &str) -> f32 {
    match source {
        "davidson_hate_offensive" => env("B_DAVIDSON", 0.3),
        "cssrs_reddit500" => env("B_CSSRS", 0.1),
        "jailbreak_prompts" => env("B_JAILBREAK", 0.05),
        "forbidden_questions" => env("B_FORBIDDEN", 0.1),
        _ => 1.0,
    }
}

/// Per source, head and class, the weights are scaled so that each source's positives and negatives of a
/// head weigh `budget * project rows / 2`.
fn reweight(samples: &mut [Sample], project_rows: usize) {
    let mut parts: Vec<(&str, &mut Labels)> =
        samples.iter_mut().map(|s| (s.source.as_str(), &mut s.labels)).collect();
    balance_sources(&mut parts, budget, project_rows);
    // Mean weight 1 per labelled head, so learning rates mean the same whatever the data.
    let (sum, count) = samples
        .iter()
        .flat_map(|s| s.labels.iter())
        .filter(|(_, w)| *w > 0.0)
        .fold((0.0, 0usize), |(s, c), (_, w)| (s + w, c + 1));
    let mean = sum / count.max(1) as f32;
    for s in samples.iter_mut() {
        for (_, w) in s.labels.iter_mut() {
            *w /= mean;
        }
    }
}

fn load_samples(datasets: &Path) -> Result<(Vec<Sample>, usize)> {
    let mut samples = Vec::new();
    let mut files: Vec<PathBuf> = vec![
        "crates/safety/data/adult_register.jsonl".into(),
        "crates/safety/data/corpus_train.jsonl".into(),
        "crates/safety/data/examples.jsonl".into(),
    ];
    for dir in ["crates/safety/data/authored", "crates/safety/data/candidates"] {
        let mut more: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        more.sort();
        files.extend(more);
    }
    for path in &files {
        for v in read_jsonl(path)? {
            if v["unsafe"].is_i64() {
                let labels = corpus_labels(&v);
                samples.push(Sample {
                    source: "project".into(),
                    text: v["text"].as_str().unwrap_or("").into(),
                    labels,
                });
            }
        }
    }
    let project_rows = samples.len();
    let davidson_keep: usize = env("DAVIDSON_ROWS", 6000);
    for source in ["davidson_hate_offensive", "cssrs_reddit500", "jailbreak_prompts", "forbidden_questions"] {
        let mut rows = read_jsonl(&datasets.join(format!("{source}.jsonl")))?;
        if source == "davidson_hate_offensive" {
            Rng(7).shuffle(&mut rows);
            rows.truncate(davidson_keep);
        }
        for v in rows {
            if let Some(labels) = train_labels(source, &v) {
                samples.push(Sample {
                    source: source.into(),
                    text: v["text"].as_str().unwrap_or("").into(),
                    labels,
                });
            }
        }
    }
    Ok((samples, project_rows))
}

/// Token ids as the engine reads a text, cut to `max_tokens` (keeping the final [SEP]).
fn tokenize(embedder: &Embedder, text: &str, max_tokens: usize) -> Result<Vec<u32>> {
    let read = normalize_for_embedding(text);
    let mut ids = embedder.token_ids(read.trim())?;
    if ids.len() > max_tokens {
        let sep = *ids.last().unwrap_or(&102);
        ids.truncate(max_tokens - 1);
        ids.push(sep);
    }
    Ok(ids)
}

/// The bottom layers' output for every token list, in batches of similar length.
fn bottoms(encoder: &Encoder, ids: &[Vec<u32>], frozen: usize, label: &str) -> Result<Vec<Vec<f32>>> {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update((frozen as u64).to_le_bytes());
    for t in ids {
        hash.update((t.len() as u64).to_le_bytes());
        for id in t {
            hash.update(id.to_le_bytes());
        }
    }
    let path = onda_safety_lab::cache::cache_dir()
        .join(format!("bottoms-{label}-{}.f32", hex::encode(&hash.finalize()[..12])));
    let hidden = encoder.shape.hidden;
    if let Ok(bytes) = std::fs::read(&path) {
        let floats: Vec<f32> =
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        let mut out = Vec::with_capacity(ids.len());
        let mut at = 0;
        for t in ids {
            let n = t.len() * hidden;
            out.push(floats[at..at + n].to_vec());
            at += n;
        }
        return Ok(out);
    }
    let out = compute_bottoms(encoder, ids, frozen, label)?;
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let bytes: Vec<u8> = out.iter().flatten().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&path, bytes)?;
    Ok(out)
}

fn compute_bottoms(encoder: &Encoder, ids: &[Vec<u32>], frozen: usize, label: &str) -> Result<Vec<Vec<f32>>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let mut out = vec![Vec::new(); ids.len()];
    let started = std::time::Instant::now();
    for chunk in order.chunks(32) {
        let batch: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
        for (&i, b) in chunk.iter().zip(encoder.bottom(&batch, frozen)?) {
            out[i] = b;
        }
    }
    eprintln!("{label}: bottoms of {} texts in {:.0} s", ids.len(), started.elapsed().as_secs_f64());
    Ok(out)
}

/// One vector per text.
type PerText = Vec<Vec<f32>>;

/// The sentence embeddings and head probabilities of every text.
fn predict(top: &Top, bottoms: &[Vec<f32>]) -> Result<(PerText, PerText)> {
    let mut order: Vec<usize> = (0..bottoms.len()).collect();
    order.sort_by_key(|&i| bottoms[i].len());
    let mut embeddings = vec![Vec::new(); bottoms.len()];
    let mut out = vec![Vec::new(); bottoms.len()];
    for chunk in order.chunks(64) {
        let batch: Vec<&[f32]> = chunk.iter().map(|&i| bottoms[i].as_slice()).collect();
        let (embedding, logits) = top.forward(&batch)?;
        let probs = candle_nn::ops::sigmoid(&logits)?.to_vec2::<f32>()?;
        for ((&i, p), e) in chunk.iter().zip(probs).zip(embedding.to_vec2::<f32>()?) {
            out[i] = p;
            embeddings[i] = e;
        }
    }
    Ok((embeddings, out))
}

/// Per query, the mean similarity of its `k` nearest rows of `set`.
fn mean_top_k(queries: &Tensor, set: &Tensor, k: usize) -> Result<Vec<f32>> {
    let sims = queries.matmul(&set.t()?)?.to_vec2::<f32>()?;
    Ok(sims
        .into_iter()
        .map(|mut row| {
            let k = k.min(row.len());
            row.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            row[..k].iter().sum::<f32>() / k as f32
        })
        .collect())
}

/// The embedding head's signal: nearest unsafe prototypes minus half the nearest safe ones.
fn knn_signal(queries: &[Vec<f32>], unsafe_set: &Tensor, safe_set: &Tensor) -> Result<Vec<f32>> {
    let dim = queries.first().map_or(0, Vec::len);
    let q = Tensor::from_vec(queries.concat(), (queries.len(), dim), &Device::Cpu)?;
    let u = mean_top_k(&q, unsafe_set, 10)?;
    let s = mean_top_k(&q, safe_set, 10)?;
    Ok(u.iter().zip(&s).map(|(u, s)| u - 0.5 * s).collect())
}

/// Each score's rank among `scores`, in [0, 1].
fn ranks(scores: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut out = vec![0.0; scores.len()];
    for (r, &i) in order.iter().enumerate() {
        out[i] = r as f32 / scores.len().max(1) as f32;
    }
    out
}

struct Validation {
    /// The shipped engine's overall unsafe score (rules, word model, embedding head over the base encoder).
    engine_scores: Vec<f32>,
    name: String,
    bottoms: Vec<Vec<f32>>,
    labels: Vec<bool>,
}

/// The shipped engine's `unsafe_score` of every text (the embeddings computed beforehand, cached).
fn engine_scores(model_dir: &Path, label: &str, texts: &[&str]) -> Result<Vec<f32>> {
    let mut embedder = onda_safety_lab::cache::PrecomputedEmbedder::new(Embedder::load(model_dir)?);
    embedder.precompute(&format!("{label}-finetune-sample"), texts)?;
    let scorer = onda_safety::EmbeddingScorer::new(embedder, onda_safety::EmbeddingHead::builtin()?)?;
    let engine = onda_safety::Engine::builtin()?.with_scorer(Some(Box::new(scorer)));
    let ctx = onda_safety::Context::default();
    Ok(texts.iter().map(|t| engine.assess(t, &ctx).unsafe_score).collect())
}

fn run() -> Result<()> {
    let datasets =
        PathBuf::from(std::env::var("ONDA_DATASETS").unwrap_or_else(|_| "../shared/datasets".into()));
    fetch(&EMBEDDING_MODEL, &FetchOptions::from_env())?;
    let dir = default_models_dir().join(onda_models::fetch::EMBEDDING_MODEL_DIR);
    let embedder = Embedder::load(&dir)?;
    let encoder = Encoder::load(&dir)?;
    let frozen: usize = env("FROZEN", 4);
    let max_tokens: usize = env("MAX_TOKENS", 128);
    let epochs: usize = env("EPOCHS", 3);
    let batch_size: usize = env("BATCH", 32);
    let lr: f64 = env("LR", 3e-5);
    let head_lr: f64 = env("HEAD_LR", 2e-3);

    let (mut samples, project_rows) = load_samples(&datasets)?;
    reweight(&mut samples, project_rows);
    eprintln!("{} training samples ({} project)", samples.len(), project_rows);
    let ids: Vec<Vec<u32>> =
        samples.iter().map(|s| tokenize(&embedder, &s.text, max_tokens)).collect::<Result<_>>()?;
    let train_bottoms = bottoms(&encoder, &ids, frozen, "train")?;

    let mut validations = Vec::new();
    for name in ["corpus_heldout", "toxicchat_train", "pan12_grooming_valseg", "formspring_cyberbullying"] {
        let path = if name == "corpus_heldout" {
            PathBuf::from("crates/safety/data/corpus_heldout.jsonl")
        } else {
            datasets.join(format!("{name}.jsonl"))
        };
        let mut rows = read_jsonl(&path)?;
        if rows.len() > 4000 {
            Rng(11).shuffle(&mut rows);
            rows.truncate(4000);
        }
        let rows: Vec<_> = rows
            .into_iter()
            .filter_map(|v| {
                let y = match v["unsafe"].as_i64() {
                    Some(1) => true,
                    Some(0) => false,
                    _ => return None,
                };
                Some((v["text"].as_str().unwrap_or("").to_string(), y))
            })
            .collect();
        let ids: Vec<Vec<u32>> =
            rows.iter().map(|(t, _)| tokenize(&embedder, t, max_tokens)).collect::<Result<_>>()?;
        let texts: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
        let engine_scores = engine_scores(&dir, name, &texts)?;
        validations.push(Validation {
            engine_scores,
            name: name.into(),
            bottoms: bottoms(&encoder, &ids, frozen, name)?,
            labels: rows.iter().map(|r| r.1).collect(),
        });
    }

    let top = Top::new(&encoder, frozen, HEADS)?;
    let mut layer_opt =
        AdamW::new(top.layer_vars.clone(), ParamsAdamW { lr, weight_decay: 0.01, ..ParamsAdamW::default() })?;
    let mut head_opt = AdamW::new(
        vec![top.head_weight.clone(), top.head_bias.clone()],
        ParamsAdamW { lr: head_lr, weight_decay: 0.0, ..ParamsAdamW::default() },
    )?;
    let mut rng = Rng(0x5eed);
    let prototypes: Vec<usize> = (0..project_rows).collect();
    let mut base_knn: Vec<Vec<f32>> = Vec::new();
    let mut report = |top: &Top, epoch: usize| -> Result<()> {
        let (proto_embeddings, _) =
            predict(top, &prototypes.iter().map(|&i| train_bottoms[i].clone()).collect::<Vec<_>>())?;
        let pick = |positive: bool| -> Result<Tensor> {
            let rows: Vec<f32> = prototypes
                .iter()
                .zip(&proto_embeddings)
                .filter(|(i, _)| (samples[**i].labels[OVERALL].0 > 0.5) == positive)
                .flat_map(|(_, e)| e.iter().copied())
                .collect();
            let n = rows.len() / top.shape.hidden;
            Ok(Tensor::from_vec(rows, (n, top.shape.hidden), &Device::Cpu)?)
        };
        let (unsafe_set, safe_set) = (pick(true)?, pick(false)?);
        let mut line = format!("epoch {epoch}:");
        for (n, v) in validations.iter().enumerate() {
            let (embeddings, probs) = predict(top, &v.bottoms)?;
            let head: Vec<f32> = probs.iter().map(|p| p[OVERALL]).collect();
            let knn = knn_signal(&embeddings, &unsafe_set, &safe_set)?;
            if epoch == 0 {
                base_knn.push(knn.clone());
            }
            let (rb, rh, rk) = (ranks(&base_knn[n]), ranks(&head), ranks(&knn));
            let mix = |a: &[f32], b: &[f32], w: f32| -> Vec<f32> {
                a.iter().zip(b).map(|(a, b)| (1.0 - w) * a + w * b).collect()
            };
            let re = ranks(&v.engine_scores);
            let ap = |scores: &[f32]| -> f64 {
                let scored: Vec<(f32, bool)> = scores.iter().copied().zip(v.labels.iter().copied()).collect();
                average_precision(&scored).unwrap_or(0.0)
            };
            line += &format!(
                "\n  {}: engine {:.3}; engine with the head at weight 0.2 / 0.3 / 0.4: {:.3} / {:.3} / {:.3}",
                v.name,
                ap(&v.engine_scores),
                ap(&mix(&re, &rh, 0.2)),
                ap(&mix(&re, &rh, 0.3)),
                ap(&mix(&re, &rh, 0.4)),
            );
            line += &format!(
                "\n  {}: head {:.3}; neighbours in the tuned space {:.3} (with the head at 0.4: {:.3}); \
                 in the base space {:.3} (with the head at 0.4: {:.3})",
                v.name,
                ap(&head),
                ap(&knn),
                ap(&mix(&rk, &rh, 0.4)),
                ap(&base_knn[n]),
                ap(&mix(&rb, &rh, 0.4)),
            );
        }
        println!("{line}");
        Ok(())
    };
    report(&top, 0)?;
    for epoch in 1..=epochs {
        let started = std::time::Instant::now();
        // Batches of similar length: sort by length with noise, cut, shuffle the batches.
        let mut order: Vec<(usize, u64)> = (0..samples.len())
            .map(|i| (i, train_bottoms[i].len() as u64 * 64 + rng.next_u64() % 4096))
            .collect();
        order.sort_by_key(|&(_, k)| k);
        let mut batches: Vec<Vec<usize>> =
            order.chunks(batch_size).map(|c| c.iter().map(|&(i, _)| i).collect()).collect();
        rng.shuffle(&mut batches);
        let mut total = 0.0;
        for (step, batch) in batches.iter().enumerate() {
            let inputs: Vec<&[f32]> = batch.iter().map(|&i| train_bottoms[i].as_slice()).collect();
            let (_, logits) = top.forward(&inputs)?;
            let mut targets = Vec::with_capacity(batch.len() * HEADS);
            let mut weights = Vec::with_capacity(batch.len() * HEADS);
            for &i in batch {
                for (y, w) in samples[i].labels {
                    targets.push(y);
                    weights.push(w);
                }
            }
            let targets = Tensor::from_vec(targets, (batch.len(), HEADS), &Device::Cpu)?;
            let weights = Tensor::from_vec(weights, (batch.len(), HEADS), &Device::Cpu)?;
            let loss = weighted_bce(&logits, &targets, &weights)?;
            let grads = loss.backward()?;
            layer_opt.step(&grads)?;
            head_opt.step(&grads)?;
            total += loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            if step % 100 == 99 {
                eprintln!(
                    "  step {} of {}: loss {:.4} ({:.0} s)",
                    step + 1,
                    batches.len(),
                    total / (step + 1) as f32,
                    started.elapsed().as_secs_f64()
                );
            }
        }
        eprintln!("epoch {epoch} took {:.0} s", started.elapsed().as_secs_f64());
        report(&top, epoch)?;
    }
    let output =
        onda_safety_lab::cache::cache_dir().with_file_name("finetune").join("top-layers.safetensors");
    std::fs::create_dir_all(output.parent().unwrap_or(Path::new(".")))?;
    top.save(frozen, &output)?;
    println!("wrote {}", output.display());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
