//! The HTML listing of a directory without `index.html`: names escaped for
//! HTML and percent-encoded in links, sizes, directories first.
//!
//! A file name is whatever bytes the file system holds, chosen by whoever
//! can write to the directory, so neither its link nor its text may be
//! taken from it as is (issue 9, point 2). Every link is `./` followed by
//! the name's bytes percent-encoded: a relative path whatever the name,
//! never a scheme (`javascript:alert(1)` as a link is a script;
//! `./javascript:alert(1)` is a file, RFC 3986 §4.2) nor another host
//! (`//evil.example`), and it names exactly those bytes, UTF-8 or not.
//! Every name shown is HTML-escaped, with control characters and bytes
//! that are not UTF-8 shown as U+FFFD. Guarded by
//! tests/file_server/safety.rs
//! `listing_links_are_relative_and_names_escaped_whatever_the_name`.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use percent_encoding::{AsciiSet, CONTROLS, percent_encode};

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

/// How `name` is shown: as text (invalid UTF-8 as U+FFFD), control
/// characters as U+FFFD too, so a name cannot break a line or a table.
pub fn display_name(name: &OsStr) -> String {
    name.to_string_lossy()
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// The link to `name` from its directory's listing: `./` and the name's
/// bytes percent-encoded, `/` after a directory.
pub fn link(name: &OsStr, dir: bool) -> String {
    let mut href = String::from("./");
    href.extend(percent_encode(name.as_bytes(), SEGMENT));
    if dir {
        href.push('/');
    }
    href
}

/// The listing page of `dir`, titled with its decoded URL path `shown`
/// (for example `/docs/a b/`).
pub fn render(dir: &Path, shown: &str) -> io::Result<String> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        // Follow symlinks for the type and size shown; serving checks again.
        let (is_dir, size) = match std::fs::metadata(entry.path()) {
            Ok(meta) => (meta.is_dir(), meta.len()),
            Err(_) => continue,
        };
        entries.push((!is_dir, name, size));
    }
    entries.sort();
    let title = escape_html(&display_name(OsStr::new(shown)));
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
        let href = link(&name, !is_file);
        let (slash, size) = if is_file {
            ("", size.to_string())
        } else {
            ("/", "-".to_string())
        };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{href}\">{}{slash}</a></td><td align=\"right\">{size}</td></tr>",
            escape_html(&display_name(&name))
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
        assert!(page.contains("href=\"./%3Cb%3E%26%22x%27.txt\""), "{page}");
        assert!(page.contains("&lt;b&gt;&amp;&quot;x&#39;.txt</a></td><td align=\"right\">5<"));
        assert!(page.contains("href=\"./sub%20dir/\">sub dir/</a>"));
        assert!(!page.contains("<b>&"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn links_are_relative_paths_of_the_exact_bytes() {
        let name = |b: &[u8]| OsStr::from_bytes(b).to_os_string();
        assert_eq!(
            link(&name(b"javascript:alert(1)"), false),
            "./javascript:alert(1)"
        );
        assert_eq!(link(&name(b"http:x"), true), "./http:x/");
        assert_eq!(link(&name(b"a\n%#?\xff"), false), "./a%0A%25%23%3F%FF");
        assert_eq!(display_name(&name(b"a\nb\xff")), "a\u{fffd}b\u{fffd}");
    }
}
