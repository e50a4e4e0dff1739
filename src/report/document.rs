//! A report as plain data — headings, paragraphs, tables, figures — rendered twice: as
//! Markdown (figures referenced as PNG files) and as one self-contained HTML page (figures
//! inlined as SVG, no scripts, no network).

use crate::error::{Error, Result};
use std::fmt::Write;
use std::path::Path;

#[derive(Clone, Debug)]
pub enum Block {
    Heading(u8, String),
    /// Markdown-light text: `**bold**` and `` `code` `` are rendered in HTML too.
    Paragraph(String),
    Bullets(Vec<String>),
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
        caption: Option<String>,
    },
    /// A figure by its path without extension, relative to the report's directory.
    Figure {
        base: String,
        caption: String,
    },
}

#[derive(Clone, Debug, Default)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

impl Document {
    pub fn h(&mut self, level: u8, text: impl Into<String>) {
        self.blocks.push(Block::Heading(level, text.into()));
    }
    pub fn p(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Paragraph(text.into()));
    }
    pub fn bullets(&mut self, items: Vec<String>) {
        self.blocks.push(Block::Bullets(items));
    }
    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>, caption: Option<String>) {
        self.blocks.push(Block::Table { header: header.iter().map(|s| s.to_string()).collect(), rows, caption });
    }
    pub fn figure(&mut self, base: impl Into<String>, caption: impl Into<String>) {
        self.blocks.push(Block::Figure { base: base.into(), caption: caption.into() });
    }

    pub fn markdown(&self) -> String {
        let mut md = format!("# {}\n\n", self.title);
        for b in &self.blocks {
            match b {
                Block::Heading(l, t) => {
                    let _ = writeln!(md, "{} {t}\n", "#".repeat(*l as usize + 1));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(md, "{t}\n");
                }
                Block::Bullets(items) => {
                    for i in items {
                        let _ = writeln!(md, "- {i}");
                    }
                    md.push('\n');
                }
                Block::Table { header, rows, caption } => {
                    let esc = |s: &String| s.replace('|', "\\|");
                    let _ = writeln!(md, "| {} |", header.iter().map(esc).collect::<Vec<_>>().join(" | "));
                    let _ = writeln!(md, "|{}|", vec!["---"; header.len()].join("|"));
                    for r in rows {
                        let _ = writeln!(md, "| {} |", r.iter().map(esc).collect::<Vec<_>>().join(" | "));
                    }
                    if let Some(c) = caption {
                        let _ = writeln!(md, "\n*{c}*");
                    }
                    md.push('\n');
                }
                Block::Figure { base, caption } => {
                    let _ = writeln!(md, "![{caption}]({base}.png)\n\n*{caption}*\n");
                }
            }
        }
        md
    }

    /// The HTML page; `dir` is where the figures' SVG files are read from.
    pub fn html(&self, dir: &Path) -> Result<String> {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main>\n<h1>{}</h1>\n",
            escape(&self.title),
            escape(&self.title)
        );
        let mut toc = String::from("<nav><ul>");
        let mut body = String::new();
        for (i, b) in self.blocks.iter().enumerate() {
            match b {
                Block::Heading(l, t) => {
                    let id = format!("s{i}");
                    if *l == 1 {
                        let _ = write!(toc, "<li><a href=\"#{id}\">{}</a></li>", escape(t));
                    }
                    let _ = writeln!(body, "<h{0} id=\"{id}\">{1}</h{0}>", l + 1, escape(t));
                }
                Block::Paragraph(t) => {
                    let _ = writeln!(body, "<p>{}</p>", inline(t));
                }
                Block::Bullets(items) => {
                    body.push_str("<ul>");
                    for it in items {
                        let _ = write!(body, "<li>{}</li>", inline(it));
                    }
                    body.push_str("</ul>\n");
                }
                Block::Table { header, rows, caption } => {
                    body.push_str("<div class=\"table\"><table>");
                    if let Some(c) = caption {
                        let _ = write!(body, "<caption>{}</caption>", inline(c));
                    }
                    body.push_str("<thead><tr>");
                    for c in header {
                        let _ = write!(body, "<th>{}</th>", inline(c));
                    }
                    body.push_str("</tr></thead><tbody>");
                    for r in rows {
                        body.push_str("<tr>");
                        for c in r {
                            let _ = write!(body, "<td>{}</td>", inline(c));
                        }
                        body.push_str("</tr>");
                    }
                    body.push_str("</tbody></table></div>\n");
                }
                Block::Figure { base, caption } => {
                    let path = dir.join(format!("{base}.svg"));
                    let svg = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                    let svg = svg.trim_start_matches(|c| c != '<').replacen(
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                        "",
                        1,
                    );
                    let _ = writeln!(
                        body,
                        "<figure>{}<figcaption>{} <a href=\"{base}.png\">PNG</a> · <a href=\"{base}.svg\">SVG</a></figcaption></figure>",
                        svg.trim(),
                        inline(caption)
                    );
                }
            }
        }
        toc.push_str("</ul></nav>\n");
        h.push_str(&toc);
        h.push_str(&body);
        h.push_str("</main></body></html>\n");
        Ok(h)
    }
}

const CSS: &str = "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1d1d1f;background:#fafafa;margin:0}\
main{max-width:1100px;margin:0 auto;padding:2rem 1.5rem 4rem;background:#fff}\
h1{font-size:2rem;margin-top:0}h2{border-bottom:2px solid #e5e5e5;padding-bottom:.3rem;margin-top:2.5rem}\
p,li{line-height:1.55}nav ul{display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;list-style:none;padding:0}\
.table{overflow-x:auto}table{border-collapse:collapse;margin:1rem 0;font-size:.92rem}\
th,td{border-bottom:1px solid #e5e5e5;padding:.35rem .7rem;text-align:right}th:first-child,td:first-child{text-align:left}\
th{background:#f3f3f5}caption{caption-side:bottom;color:#555;font-size:.85rem;padding-top:.4rem;text-align:left}\
figure{margin:1.5rem 0}figure svg{max-width:100%;height:auto;display:block}figcaption{color:#555;font-size:.9rem}\
code{background:#f3f3f5;padding:0 .25rem;border-radius:3px}";

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Escapes, then renders `**bold**` and `` `code` ``.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let e = escape(s);
    let mut bold = false;
    let mut code = false;
    let mut chars = e.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '*' && chars.peek() == Some(&'*') {
            chars.next();
            out.push_str(if bold { "</strong>" } else { "<strong>" });
            bold = !bold;
        } else if c == '`' {
            out.push_str(if code { "</code>" } else { "<code>" });
            code = !code;
        } else {
            out.push(c);
        }
    }
    if bold {
        out.push_str("</strong>");
    }
    if code {
        out.push_str("</code>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_same_content_both_ways() {
        let dir = std::env::temp_dir().join(format!("gradlab-doc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("fig.svg"), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg width=\"10\"></svg>")
            .unwrap();
        let mut d = Document { title: "T & <x>".into(), blocks: vec![] };
        d.h(1, "Task 1");
        d.p("a **bold** `code` claim, p < 0.05");
        d.table(&["setting", "median"], vec![vec!["relu|x".into(), "26".into()]], Some("cap".into()));
        d.figure("fig", "A figure");
        let md = d.markdown();
        assert!(md.contains("## Task 1") && md.contains("| relu\\|x | 26 |") && md.contains("![A figure](fig.png)"));
        let html = d.html(&dir).unwrap();
        assert!(html.contains("<title>T &amp; &lt;x&gt;</title>"));
        assert!(html.contains("<strong>bold</strong> <code>code</code> claim, p &lt; 0.05"));
        assert!(html.contains("<svg width=\"10\"></svg>") && !html.contains("<?xml"));
        assert!(html.contains("<td>relu|x</td>"));
        assert!(d.html(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
