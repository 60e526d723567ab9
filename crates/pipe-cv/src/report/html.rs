//! `report.html`: one self-contained page (pictures embedded as base64
//! PNG) with the comparison table, each approach's confusion matrices and
//! class table, the grid-search table, the class distribution and the
//! augmentation preview. Every picture is also saved as a PNG beside it.

use std::fmt::Write as _;

/// One section of the page.
pub enum Block {
    Heading(String),
    /// Rows of cells; the first row is the header.
    Table(Vec<Vec<String>>),
    /// A PNG with its caption.
    Image(String, Vec<u8>),
    Text(String),
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Standard base64 (RFC 4648) with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn page(title: &str, blocks: &[Block]) -> String {
    let mut h = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}th{{background:#f0f0f0}}img{{max-width:100%;border:1px solid #eee}}\
         figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Heading(t) => {
                let _ = writeln!(h, "<h2>{}</h2>", escape(t));
            }
            Block::Text(t) => {
                let _ = writeln!(h, "<p>{}</p>", escape(t));
            }
            Block::Table(rows) => {
                h.push_str("<table>\n");
                for (i, row) in rows.iter().enumerate() {
                    let tag = if i == 0 { "th" } else { "td" };
                    let cells: String = row.iter().map(|c| format!("<{tag}>{}</{tag}>", escape(c))).collect();
                    let _ = writeln!(h, "<tr>{cells}</tr>");
                }
                h.push_str("</table>\n");
            }
            Block::Image(caption, png) => {
                let _ = writeln!(
                    h,
                    "<figure><img alt=\"{c}\" src=\"data:image/png;base64,{}\"><figcaption>{c}</figcaption></figure>",
                    base64(png),
                    c = escape(caption)
                );
            }
        }
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn pages_escape_text() {
        let p = page("a <b>", &[Block::Table(vec![vec!["x".into()], vec!["<script>".into()]])]);
        assert!(p.contains("a &lt;b&gt;") && p.contains("<td>&lt;script&gt;</td>"));
    }
}
