//! The page, compiled into the binary: plain HTML, CSS and JavaScript with its own canvas
//! charts — no build step, no CDN, works offline.

pub const INDEX_HTML: &str = include_str!("page/index.html");
pub const APP_JS: &str = include_str!("page/app.js");
pub const STYLE_CSS: &str = include_str!("page/style.css");

pub fn html(body: &'static str) -> axum::response::Html<&'static str> {
    axum::response::Html(body)
}
