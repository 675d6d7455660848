//! The web UI: the files of `web/` at the repository root, embedded in the binary and served
//! from `/` with a strict Content-Security-Policy (nothing from any other origin, no inline
//! script or style). Every path outside `/api` that names no file gets `index.html`, so the UI's
//! own pages (`/catalog` …) load directly; unknown `/api` paths stay API 404s. The UI is the
//! router's fallback, so every API and operations route wins over it.

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// One embedded file.
struct Asset {
    /// Its path under `web/`.
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $path)),
        }
    };
}

/// Every file of `web/` (a test checks that the folder holds exactly these).
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/main.js", "text/javascript; charset=utf-8"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/dom.js", "text/javascript; charset=utf-8"),
    asset!("js/chat.js", "text/javascript; charset=utf-8"),
    asset!("js/servers.js", "text/javascript; charset=utf-8"),
    asset!("js/catalog.js", "text/javascript; charset=utf-8"),
];

/// The policy every UI response carries: this origin only, no inline code, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'none'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The router's fallback: an embedded file, `index.html` for the UI's own pages, or a 404 in
/// the API's error shape for unknown `/api` paths. (The original URI: under a nested router the
/// request's own one has lost its prefix.)
pub async fn fallback(method: Method, OriginalUri(uri): OriginalUri) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::not_found(format!("no API route at {path}")).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = StatusCode::METHOD_NOT_ALLOWED.into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let relative = path.trim_start_matches('/');
    let asset = match find(relative) {
        Some(asset) => asset,
        // A name with an extension is a file that does not exist; anything else is a page.
        None if relative.rsplit('/').next().is_some_and(|s| s.contains('.')) => {
            return (StatusCode::NOT_FOUND, "not found").into_response();
        }
        None => match find("index.html") {
            Some(index) => index,
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(asset.body)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // No hashed names, so every use revalidates; the files are small and served from memory.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_under(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                files_under(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn every_file_of_web_is_embedded_and_nothing_else() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut on_disk = Vec::new();
        files_under(&web, "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "update ASSETS in routes/ui.rs");
    }

    #[test]
    fn the_ui_names_no_other_origin() {
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.body);
            for needle in ["http://", "https://", "//cdn", "@import url("] {
                let allowed = |line: &str| line.contains("http://www.w3.org/2000/svg");
                assert!(
                    text.lines().filter(|l| l.contains(needle)).all(allowed),
                    "{} refers to another origin ({needle})",
                    asset.path
                );
            }
        }
    }
}
