//! The console's page, embedded in the hub binary at build time: `web/console/dist/` when the
//! build could make it (`crates/adit-hub/build.rs` runs `npm ci` and `npm run build` where
//! Node.js is installed), otherwise a page that says how to get it.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::Embed)]
#[folder = "$ADIT_CONSOLE_DIST"]
struct Page;

fn serve(name: &str) -> Response {
    let Some(file) = Page::get(name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let content_type = match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            // The page's files change with the hub binary: revalidate rather than keep.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

/// `GET /console`: the page.
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /console/{file}`: its scripts and styles.
pub async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}
