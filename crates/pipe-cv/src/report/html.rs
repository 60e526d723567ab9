//! `report.html`: one self-contained page (pictures embedded as base64
//! PNG) with the comparison table, each approach's confusion matrices and
//! class table, the grid-search table, the class distribution and the
//! augmentation preview. Every picture is also saved as a PNG beside it.
//! The charts of `charts` are embedded inline as SVG markup, and a sortable
//! table sorts by the column whose header is clicked (a few lines of inline
//! JavaScript; the page needs no network).

use std::fmt::Write as _;

/// One section of the page.
pub enum Block {
    Heading(String),
    /// Rows of cells; the first row is the header.
    Table(Vec<Vec<String>>),
    /// A table that sorts by the column whose header is clicked (numbers as
    /// numbers, `-` last; a second click reverses).
    SortableTable(Vec<Vec<String>>),
    /// SVG markup (from `charts`) embedded as is, with its caption.
    Svg(String, String),
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

/// Sorts a `table.sortable` by the clicked header's column: numbers as
/// numbers (cells that are not, such as `-`, last), text by locale; a
/// second click on the same header reverses the order.
const SORT_SCRIPT: &str = "<script>\n\
document.querySelectorAll('table.sortable').forEach(function(t){\n\
  var head=t.rows[0];\n\
  Array.prototype.forEach.call(head.cells,function(th,c){\n\
    th.title='click to sort';\n\
    th.addEventListener('click',function(){\n\
      var dir=th.dataset.dir==='asc'?-1:1;\n\
      Array.prototype.forEach.call(head.cells,function(h){delete h.dataset.dir;});\n\
      th.dataset.dir=dir===1?'asc':'desc';\n\
      var rows=Array.prototype.slice.call(t.rows,1);\n\
      var key=function(r){var s=r.cells[c]?r.cells[c].textContent.trim():'';var v=parseFloat(s);return isNaN(v)?s:v;};\n\
      rows.sort(function(a,b){\n\
        var x=key(a),y=key(b),nx=typeof x==='number',ny=typeof y==='number';\n\
        if(nx&&ny)return dir*(x-y);\n\
        if(nx!==ny)return nx?-1:1;\n\
        return dir*String(x).localeCompare(String(y));\n\
      });\n\
      rows.forEach(function(r){r.parentNode.appendChild(r);});\n\
    });\n\
  });\n\
});\n\
</script>\n";

pub fn page(title: &str, blocks: &[Block]) -> String {
    let mut h = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         td:first-child,th:first-child{{text-align:left}}th{{background:#f0f0f0}}img{{max-width:100%;border:1px solid #eee}}\
         figure{{display:inline-block;margin:0 1em 1em 0;vertical-align:top}}figure.chart svg{{max-width:100%;height:auto}}\
         table.sortable th{{cursor:pointer}}</style></head><body>\n<h1>{}</h1>\n",
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
            Block::Table(rows) | Block::SortableTable(rows) => {
                h.push_str(if matches!(b, Block::SortableTable(_)) { "<table class=\"sortable\">\n" } else { "<table>\n" });
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
            Block::Svg(caption, svg) => {
                let _ = writeln!(h, "<figure class=\"chart\">{svg}<figcaption>{}</figcaption></figure>", escape(caption));
            }
        }
    }
    if blocks.iter().any(|b| matches!(b, Block::SortableTable(_))) {
        h.push_str(SORT_SCRIPT);
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
        assert!(!p.contains("<script>"), "no script without a sortable table");
    }

    #[test]
    fn svgs_are_inline_and_sortable_tables_get_the_script() {
        let rows = vec![vec!["approach".into(), "accuracy".into()], vec!["svm".into(), "0.800".into()]];
        let p = page("r", &[Block::SortableTable(rows), Block::Svg("a <chart>".into(), "<svg width=\"1\"></svg>".into())]);
        assert!(p.contains("<table class=\"sortable\">") && p.contains("<td>0.800</td>"));
        assert!(p.contains("<figure class=\"chart\"><svg width=\"1\"></svg><figcaption>a &lt;chart&gt;</figcaption></figure>"));
        assert_eq!(p.matches("<script>").count(), 1);
        assert!(!p.contains("http"), "no network");
    }
}
