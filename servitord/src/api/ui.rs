//! The web UI: static files from `SERVITOR_UI_ROOT`, never anything outside it.
//!
//! Not `tower-http`'s `ServeDir`: it would serve hidden files and follow symlinks out
//! of the root, answer errors without a JSON body, and name types without a charset;
//! wrapping it to keep what this does (and its tests check) takes more code than this.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use super::ApiError;
use crate::app::App;

const CONTENT_TYPES: [(&str, &str); 17] = [
    ("html", "text/html; charset=utf-8"),
    ("htm", "text/html; charset=utf-8"),
    ("js", "text/javascript; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("css", "text/css; charset=utf-8"),
    ("json", "application/json; charset=utf-8"),
    ("map", "application/json; charset=utf-8"),
    ("txt", "text/plain; charset=utf-8"),
    ("svg", "image/svg+xml"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("ico", "image/x-icon"),
    ("webp", "image/webp"),
    ("woff2", "font/woff2"),
    ("wasm", "application/wasm"),
];

pub async fn serve(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let not_found = || ApiError::NotFound(format!("not found: {}", uri.path())).into_response();
    let Some(root) = app.ui_root() else {
        return not_found();
    };
    let Some(path) = resolve(root, uri.path()) else {
        return not_found();
    };
    if method != Method::GET && method != Method::HEAD {
        return ApiError::MethodNotAllowed("GET, HEAD").into_response();
    }
    let Ok(meta) = tokio::fs::metadata(&path).await else {
        return not_found();
    };
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let etag = format!("\"{:x}-{:x}\"", nanos, meta.len());
    let last_modified = httpdate::fmt_http_date(modified);

    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|tag| tag.as_bytes() == etag.as_bytes())
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match tokio::fs::read(&path).await {
            Ok(bytes) => bytes.into_response(),
            Err(_) => return not_found(),
        }
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let content_type = CONTENT_TYPES
        .iter()
        .find(|(ext, _)| *ext == extension)
        .map_or("application/octet-stream", |(_, kind)| kind);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Revalidate every time: a reload costs one cheap 304 per file.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&last_modified) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    response
}

/// The regular file that `url_path` names under `root`, if any: `/` is `index.html`;
/// `.`, `..`, empty and hidden segments are refused, and so is a symlink leading out.
fn resolve(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(url_path).decode_utf8().ok()?;
    let relative = match decoded.strip_prefix('/')? {
        "" => "index.html",
        rest => rest,
    };
    if relative.split('/').any(|segment| {
        segment.is_empty() || segment.starts_with('.') || segment.contains(['\\', '\0'])
    }) {
        return None;
    }
    let root = std::fs::canonicalize(root).ok()?;
    let file = std::fs::canonicalize(root.join(relative)).ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_only_files_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ui");
        std::fs::create_dir_all(root.join("assets")).unwrap();
        std::fs::write(root.join("index.html"), "<html>").unwrap();
        std::fs::write(root.join("assets/app.js"), "").unwrap();
        std::fs::write(dir.path().join("secret"), "").unwrap();
        symlink(dir.path().join("secret"), root.join("leak")).unwrap();
        symlink("assets/app.js", root.join("alias.js")).unwrap();

        assert_eq!(
            resolve(&root, "/"),
            Some(root.canonicalize().unwrap().join("index.html"))
        );
        assert!(resolve(&root, "/assets/app.js").is_some());
        assert!(resolve(&root, "/alias.js").is_some());
        for refused in [
            "/assets",
            "/assets/",
            "/../secret",
            "/%2e%2e/secret",
            "/assets/%2E%2E/../secret",
            "/leak",
            "//etc/passwd",
            "/%2Fetc%2Fpasswd",
            "/.hidden",
            "/missing",
            "/index.html%00",
            "/a%5C..%5Csecret",
            "/%FF",
        ] {
            assert_eq!(resolve(&root, refused), None, "{refused}");
        }
    }
}
