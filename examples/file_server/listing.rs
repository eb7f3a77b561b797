//! The HTML listing of a directory without `index.html`, as a person
//! expects one (nginx's autoindex, Caddy's browse): a link to the parent,
//! directories first, then files, each with its size in human units and
//! its modification time, sortable by name, size or time from the column
//! heads (`?sort=name|size|time&order=asc|desc`), readable in a browser
//! with a few lines of inline CSS and no external asset. Dotfiles are left
//! out unless the server shows hidden files (`--show-hidden`).
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
//! `listing_links_are_relative_and_names_escaped_whatever_the_name`; the
//! page itself by tests/file_server/listing_page.rs.

use std::cmp::Ordering;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// What a listing is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// The name, case-insensitively (the default).
    #[default]
    Name,
    /// The size in bytes.
    Size,
    /// The modification time.
    Time,
}

impl SortKey {
    fn as_str(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Size => "size",
            SortKey::Time => "time",
        }
    }
}

/// How to list a directory: the order, and whether dotfiles are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct View {
    /// The column sorted by.
    pub sort: SortKey,
    /// Largest, newest or last name first.
    pub descending: bool,
    /// Names starting with `.` are listed too.
    pub show_hidden: bool,
}

impl View {
    /// The view a query string asks for (`sort=name|size|time`,
    /// `order=asc|desc`); anything else is ignored, as a person would
    /// expect of a page that only reads its own links.
    pub fn from_query(query: Option<&str>, show_hidden: bool) -> View {
        let mut view = View {
            show_hidden,
            ..View::default()
        };
        for pair in query.unwrap_or_default().split(['&', ';']) {
            match pair.split_once('=') {
                Some(("sort", "name")) => view.sort = SortKey::Name,
                Some(("sort", "size")) => view.sort = SortKey::Size,
                Some(("sort", "time")) => view.sort = SortKey::Time,
                Some(("order", "asc")) => view.descending = false,
                Some(("order", "desc")) => view.descending = true,
                _ => {}
            }
        }
        view
    }
}

/// Whether `name` is a dotfile (`.git`, `.env`): hidden by default.
pub fn is_hidden(name: &OsStr) -> bool {
    name.as_bytes().first() == Some(&b'.')
}

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

/// A size as a person reads it: bytes below 1 KiB, else one decimal in
/// the largest binary unit that keeps it at least 1 (`1.5 KiB`, `12.0 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A time as `YYYY-MM-DD HH:MM` in UTC (empty before 1970).
pub fn short_time(time: SystemTime) -> String {
    let Ok(since) = time.duration_since(UNIX_EPOCH) else {
        return String::new();
    };
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// One entry of a listing.
#[derive(Debug)]
struct Entry {
    name: OsString,
    /// Lower-cased for the name order.
    key: String,
    dir: bool,
    size: u64,
    modified: Option<SystemTime>,
}

/// Directories first, then by the view's column (ties by name).
fn order(a: &Entry, b: &Entry, view: View) -> Ordering {
    let by_name = || a.key.cmp(&b.key).then_with(|| a.name.cmp(&b.name));
    let column = match view.sort {
        SortKey::Name => by_name(),
        SortKey::Size if !a.dir => a.size.cmp(&b.size).then_with(by_name),
        SortKey::Size => by_name(),
        SortKey::Time => a.modified.cmp(&b.modified).then_with(by_name),
    };
    b.dir.cmp(&a.dir).then(if view.descending {
        column.reverse()
    } else {
        column
    })
}

/// The page's style: readable, no external asset.
const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:2em auto;max-width:60em;\
padding:0 1em;color:#222}h1{font-size:1.3em;font-weight:600;word-break:break-all}\
table{border-collapse:collapse;width:100%}th,td{padding:.3em .6em;text-align:left;\
white-space:nowrap}th{border-bottom:2px solid #ccc}th a{color:inherit}\
tr:nth-child(even) td{background:#f6f6f6}td.name{white-space:normal;word-break:break-all}\
td.size,th.size{text-align:right}a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}\
.dir a{font-weight:600}footer{margin-top:1em;color:#777;font-size:.85em}";

/// The head of a column: a link that sorts by it (ascending, or the other
/// way round if it is the column sorted by now) with an arrow on the
/// current one.
fn column_head(key: SortKey, label: &str, class: &str, view: View) -> String {
    let current = view.sort == key;
    let next = if current && !view.descending {
        "desc"
    } else {
        "asc"
    };
    let arrow = match (current, view.descending) {
        (false, _) => "",
        (true, false) => " ▲",
        (true, true) => " ▼",
    };
    format!(
        "<th class=\"{class}\"><a href=\"./?sort={}&amp;order={next}\">{label}{arrow}</a></th>",
        key.as_str()
    )
}

/// The listing page of `dir`, titled with its decoded URL path `shown`
/// (for example `/docs/a b/`).
pub fn render(dir: &Path, shown: &str, view: View) -> io::Result<String> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if is_hidden(&name) && !view.show_hidden {
            continue;
        }
        // Follow symlinks for the type and size shown; serving checks again.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        entries.push(Entry {
            key: name.to_string_lossy().to_lowercase(),
            name,
            dir: meta.is_dir(),
            size: meta.len(),
            modified: meta.modified().ok(),
        });
    }
    entries.sort_by(|a, b| order(a, b, view));
    let title = escape_html(&display_name(OsStr::new(shown)));
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Index of {title}</title><style>{STYLE}</style></head>\n\
         <body><h1>Index of {title}</h1>\n<table>\n<thead><tr>{}{}{}</tr></thead>\n<tbody>\n",
        column_head(SortKey::Name, "Name", "name", view),
        column_head(SortKey::Size, "Size", "size", view),
        column_head(SortKey::Time, "Modified", "time", view),
    );
    if shown != "/" {
        page.push_str(
            "<tr class=\"dir\"><td class=\"name\"><a href=\"../\">../</a></td>\
             <td class=\"size\">—</td><td></td></tr>\n",
        );
    }
    let (mut dirs, mut files) = (0, 0);
    for e in &entries {
        let href = link(&e.name, e.dir);
        let name = escape_html(&display_name(&e.name));
        let time = e.modified.map(short_time).unwrap_or_default();
        if e.dir {
            dirs += 1;
            let _ = writeln!(
                page,
                "<tr class=\"dir\"><td class=\"name\"><a href=\"{href}\">{name}/</a></td>\
                 <td class=\"size\">—</td><td>{time}</td></tr>"
            );
        } else {
            files += 1;
            let _ = writeln!(
                page,
                "<tr><td class=\"name\"><a href=\"{href}\">{name}</a></td>\
                 <td class=\"size\" title=\"{} bytes\">{}</td><td>{time}</td></tr>",
                e.size,
                human_size(e.size)
            );
        }
    }
    let _ = write!(
        page,
        "</tbody></table>\n<footer>{dirs} director{}, {files} file{} · wharf</footer>\
         </body></html>\n",
        if dirs == 1 { "y" } else { "ies" },
        if files == 1 { "" } else { "s" },
    );
    Ok(page)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn names_are_escaped_and_encoded() {
        let dir = std::env::temp_dir().join(format!("wharf-listing-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub dir")).expect("dir");
        std::fs::write(dir.join("<b>&\"x'.txt"), b"12345").expect("file");
        let page = render(&dir, "/a<b>/", View::default()).expect("render");
        assert!(page.contains("Index of /a&lt;b&gt;/"));
        assert!(page.contains("href=\"./%3Cb%3E%26%22x%27.txt\""), "{page}");
        assert!(
            page.contains("&lt;b&gt;&amp;&quot;x&#39;.txt</a></td>"),
            "{page}"
        );
        assert!(page.contains("title=\"5 bytes\">5 B<"), "{page}");
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

    #[test]
    fn sizes_and_times_read_as_a_person_expects() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
        assert_eq!(human_size(u64::MAX), "16.0 EiB");
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(short_time(at(0)), "1970-01-01 00:00");
        assert_eq!(short_time(at(951_782_400)), "2000-02-29 00:00");
        assert_eq!(short_time(at(1_798_761_599)), "2026-12-31 23:59");
    }

    #[test]
    fn the_query_picks_the_order_and_ignores_the_rest() {
        let v = View::from_query(Some("sort=size&order=desc"), false);
        assert_eq!((v.sort, v.descending), (SortKey::Size, true));
        let v = View::from_query(Some("sort=time;order=asc&x=<y>"), true);
        assert_eq!(
            (v.sort, v.descending, v.show_hidden),
            (SortKey::Time, false, true)
        );
        assert_eq!(View::from_query(Some("sort=evil"), false), View::default());
        assert_eq!(View::from_query(None, false), View::default());
    }
}
