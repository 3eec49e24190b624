//! Sentence embeddings of whole datasets, cached on disk so fitting and evaluating do not embed the same
//! tens of thousands of texts again. A cache file belongs to one content: its name carries a hash of
//! every text in order (and the encoder's precision), so an edited dataset gets a new file.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use onda_models::Embedder;
use onda_safety::TextEmbedder;
use onda_safety::embedding::embedding_inputs;
use onda_safety::normalize::normalize_for_embedding;
use sha2::{Digest, Sha256};

/// The embedding cache folder: `ONDA_EMBEDDING_CACHE`, or `~/.cache/onda/embeddings`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ONDA_EMBEDDING_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("onda").join("embeddings")
}

fn content_key(texts: &[&str]) -> String {
    let mut hash = Sha256::new();
    // The lab embeds with the encoder's default precision, which is part of the content: vectors computed
    // with other weights are not mixed in.
    hash.update(format!("{:?}", onda_models::Precision::default()).as_bytes());
    for text in texts {
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hex::encode(&hash.finalize()[..12])
}

/// The cache file of the embeddings of `texts` (already normalised) of dimension `dim`: little-endian f32,
/// one row after another.
fn cache_file(label: &str, texts: &[&str], dim: usize) -> PathBuf {
    cache_dir().join(format!("{label}-{}-{dim}.f32", content_key(texts)))
}

/// Each text as the engine's embedding scorer reads it.
fn as_read(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| normalize_for_embedding(t).trim().to_string()).collect()
}

/// The cache file [`embed_all`] uses for `texts`, for tools outside Rust that read the vectors.
pub fn cache_file_for(dim: usize, label: &str, texts: &[&str]) -> PathBuf {
    let read = as_read(texts);
    cache_file(label, &read.iter().map(String::as_str).collect::<Vec<_>>(), dim)
}

/// Embeddings with the index of their text.
type Indexed = Vec<(usize, Vec<f32>)>;

/// The embeddings of `texts` (each read as the engine reads it, [`normalize_for_embedding`]), in order:
/// read from the cache, or computed (on every core) and stored. `label` names the cache file for people.
pub fn embed_all(
    embedder: &Embedder,
    label: &str,
    texts: &[&str],
) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let read = as_read(texts);
    let texts: Vec<&str> = read.iter().map(String::as_str).collect();
    let texts = texts.as_slice();
    let dim = embedder.dimension();
    let path = cache_file(label, texts, dim);
    if let Some(cached) = read_cache(&path, texts.len(), dim)? {
        return Ok(cached);
    }
    // Every core embeds: the encoder runs one text at a time on its calling thread.
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicUsize::new(0);
    let started = std::time::Instant::now();
    let chunk = 64;
    let results: Vec<Result<Indexed, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let start = next.fetch_add(chunk, std::sync::atomic::Ordering::Relaxed);
                        if start >= texts.len() {
                            return Ok(mine);
                        }
                        let end = (start + chunk).min(texts.len());
                        let vectors = embedder.embed(&texts[start..end]).map_err(|e| e.to_string())?;
                        mine.extend((start..end).zip(vectors));
                        let finished =
                            done.fetch_add(end - start, std::sync::atomic::Ordering::Relaxed) + end - start;
                        if finished / 2000 != (finished - (end - start)) / 2000 {
                            eprintln!(
                                "  {label}: {finished} of {} embedded ({:.0} s)",
                                texts.len(),
                                started.elapsed().as_secs_f64()
                            );
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("an embedding worker panicked".into())))
            .collect()
    });
    let mut out = vec![Vec::new(); texts.len()];
    for result in results {
        for (i, vector) in result? {
            out[i] = vector;
        }
    }
    write_cache(&path, &out)?;
    Ok(out)
}

fn read_cache(path: &Path, rows: usize, dim: usize) -> Result<Option<Vec<Vec<f32>>>, std::io::Error> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    if bytes.len() != rows * dim * 4 {
        return Ok(None);
    }
    let floats: Vec<f32> =
        bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    Ok(Some(floats.chunks(dim).map(<[f32]>::to_vec).collect()))
}

fn write_cache(path: &Path, vectors: &[Vec<f32>]) -> Result<(), std::io::Error> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    for v in vectors {
        for x in v {
            file.write_all(&x.to_le_bytes())?;
        }
    }
    file.flush()?;
    drop(file);
    std::fs::rename(tmp, path)
}

/// An embedder that answers from embeddings computed beforehand on every core (and cached on disk), and
/// computes the rest as the engine asks: evaluating tens of thousands of texts one message at a time on one
/// thread, as the engine asks, would take far longer; beforehand, in shared passes on every core, the same
/// vectors take minutes and are read from disk the next time.
pub struct PrecomputedEmbedder {
    inner: Embedder,
    known: HashMap<String, Vec<f32>>,
}

impl PrecomputedEmbedder {
    pub fn new(inner: Embedder) -> Self {
        Self { inner, known: HashMap::new() }
    }

    /// Embeds, in batches, every text the engine's scorer will ask for when it assesses `texts`
    /// ([`embedding_inputs`]). `label` names the cache file.
    pub fn precompute(&mut self, label: &str, texts: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
        let mut wanted: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for text in texts {
            for input in embedding_inputs(text) {
                if !self.known.contains_key(&input) && seen.insert(input.clone()) {
                    wanted.push(input);
                }
            }
        }
        let refs: Vec<&str> = wanted.iter().map(String::as_str).collect();
        let vectors = embed_all(&self.inner, label, &refs)?;
        self.known.extend(wanted.into_iter().zip(vectors));
        Ok(())
    }
}

impl TextEmbedder for PrecomputedEmbedder {
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }

    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        if let Some(all) = texts.iter().map(|t| self.known.get(*t).cloned()).collect::<Option<Vec<_>>>() {
            return Ok(all);
        }
        TextEmbedder::embed(&self.inner, texts)
    }
}
