//! Static files compiled into the binary and served at `/assets/<name>.<hash>.<ext>`. The content hash
//! in the name lets browsers keep each file for a year: a new build with a changed file has a new URL.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::http::AppState;
use crate::http::error::not_found;

/// `Cache-Control` of a hashed asset: its URL changes whenever its bytes do.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

struct Embedded {
    stem: &'static str,
    extension: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const FILES: &[Embedded] = &[
    Embedded {
        stem: "onda",
        extension: "css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../../assets/onda.css"),
    },
    Embedded {
        stem: "onda",
        extension: "svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../../assets/onda.svg"),
    },
];

/// An embedded file with its public, content-addressed file name.
pub struct Asset {
    /// `onda.css`: what code asks for.
    pub logical_name: String,
    /// `onda.1a2b3c4d5e6f.css`: what the URL carries.
    pub file_name: String,
    /// `/assets/onda.1a2b3c4d5e6f.css`.
    pub url: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|file| {
            let hash = hex::encode(Sha256::digest(file.bytes));
            let file_name = format!("{}.{}.{}", file.stem, &hash[..12], file.extension);
            Asset {
                logical_name: format!("{}.{}", file.stem, file.extension),
                url: format!("/assets/{file_name}"),
                file_name,
                content_type: file.content_type,
                bytes: file.bytes,
            }
        })
        .collect()
});

/// Every embedded asset.
pub fn all() -> &'static [Asset] {
    &ASSETS
}

/// The hashed URL of an embedded asset by its logical name (`onda.css`).
pub fn url(logical_name: &str) -> Option<&'static str> {
    ASSETS.iter().find(|a| a.logical_name == logical_name).map(|a| a.url.as_str())
}

/// The stylesheet every page links.
pub fn stylesheet() -> &'static str {
    url("onda.css").unwrap_or("/assets/onda.css")
}

/// The logo, also the favicon.
pub fn icon() -> &'static str {
    url("onda.svg").unwrap_or("/assets/onda.svg")
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/assets/{file}", get(serve))
}

async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.file_name == file) else {
        return not_found().await.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_hashed_url() {
        assert!(stylesheet().starts_with("/assets/onda.") && stylesheet().ends_with(".css"));
        assert!(icon().ends_with(".svg"));
        assert_ne!(stylesheet(), "/assets/onda.css");
        for asset in all() {
            assert_eq!(url(&asset.logical_name), Some(asset.url.as_str()));
            assert!(!asset.bytes.is_empty());
        }
    }

    #[test]
    fn the_stylesheet_loads_nothing_from_elsewhere() {
        let css = std::str::from_utf8(FILES[0].bytes).expect("utf-8");
        assert!(!css.contains("@import"));
        assert!(!css.contains("url("), "the stylesheet refers to no other file");
    }
}
