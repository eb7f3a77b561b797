//! The HTML listing of a directory without `index.html`: names escaped for
//! HTML and percent-encoded in links, sizes, directories first.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

/// Characters to encode in one path segment of a link or URL.
pub const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'\\')
    .add(b'\'');

/// `text` safe inside HTML text and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The listing page of `dir`, titled with its decoded URL path `shown`
/// (for example `/docs/a b/`).
pub fn render(dir: &Path, shown: &str) -> io::Result<String> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Follow symlinks for the type and size shown; serving checks again.
        let (is_dir, size) = match std::fs::metadata(entry.path()) {
            Ok(meta) => (meta.is_dir(), meta.len()),
            Err(_) => continue,
        };
        entries.push((!is_dir, name, size));
    }
    entries.sort();
    let title = escape_html(shown);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n\
         <body><h1>Index of {title}</h1>\n<table>\n"
    );
    if shown != "/" {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td></tr>\n");
    }
    for (is_file, name, size) in entries {
        let href = utf8_percent_encode(&name, SEGMENT).to_string();
        let (slash, size) = if is_file {
            ("", size.to_string())
        } else {
            ("/", "-".to_string())
        };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{href}{slash}\">{}{slash}</a></td><td align=\"right\">{size}</td></tr>",
            escape_html(&name)
        );
    }
    page.push_str("</table></body></html>\n");
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_and_encoded() {
        let dir = std::env::temp_dir().join(format!("wharf-listing-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub dir")).expect("dir");
        std::fs::write(dir.join("<b>&\"x'.txt"), b"12345").expect("file");
        let page = render(&dir, "/a<b>/").expect("render");
        assert!(page.contains("Index of /a&lt;b&gt;/"));
        assert!(page.contains("href=\"%3Cb%3E%26%22x%27.txt\""), "{page}");
        assert!(page.contains("&lt;b&gt;&amp;&quot;x&#39;.txt</a></td><td align=\"right\">5<"));
        assert!(page.contains("href=\"sub%20dir/\">sub dir/</a>"));
        assert!(!page.contains("<b>&"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
