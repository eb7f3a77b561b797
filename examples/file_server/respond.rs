//! The answer to one well-formed request: a file (whole, a range, or 304),
//! a directory's `index.html`, a listing, a redirect, or the refusal that
//! says why not.
//!
//! Dotfiles and dot-directories (`.git/`, `.env`) are answered 404 unless
//! the server shows hidden files (`--show-hidden`): the README's first
//! command serves the current directory, which is often a repository with
//! its history and secrets in them (issue 13 §5). Guarded by
//! tests/file_server/listing_page.rs `dotfiles_are_hidden_and_404_by_default`.

use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use http::header::{ALLOW, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE, RETRY_AFTER};
use http::{HeaderValue, Method, StatusCode};
use wharf::FileRegion;
use wharf::codec::{HttpRequest, HttpResponse};

use crate::cache::{self, Version};
use crate::conditional::{not_modified, range_applies};
use crate::listing;
use crate::mapped::Mapped;
use crate::paths::{Refused, names_a_directory, segments, url_path};
use crate::range::{Ranged, parse};
use crate::settings::Settings;

/// The response to one well-formed request.
pub fn respond(settings: &Settings, request: &HttpRequest) -> HttpResponse {
    if request.method != Method::GET && request.method != Method::HEAD {
        if settings.upload {
            return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "only GET, HEAD and PUT\n")
                .header(ALLOW, HeaderValue::from_static("GET, HEAD, PUT"));
        }
        return HttpResponse::text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n")
            .header(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    locate(settings, request).unwrap_or_else(refusal)
}

/// The answer to a path that was refused.
pub fn refusal(refused: Refused) -> HttpResponse {
    match refused {
        Refused::BadRequest => HttpResponse::text(StatusCode::BAD_REQUEST, "bad path\n"),
        Refused::Forbidden => HttpResponse::text(StatusCode::FORBIDDEN, "forbidden\n"),
        Refused::NotFound => HttpResponse::text(StatusCode::NOT_FOUND, "not found\n"),
        Refused::Busy => HttpResponse::text(StatusCode::SERVICE_UNAVAILABLE, "busy, try again\n")
            .header(RETRY_AFTER, HeaderValue::from_static("1")),
        Refused::Failed => HttpResponse::text(StatusCode::INTERNAL_SERVER_ERROR, "cannot open\n"),
    }
}

/// Opens what the request names: a file, a directory's `index.html`, or a
/// directory listing. A file in the open-file cache (see [`crate::cache`])
/// is served from it, still what the path names (checked with one
/// `fstatat`); another file is opened, and cached.
fn locate(settings: &Settings, request: &HttpRequest) -> Result<HttpResponse, Refused> {
    let path = request.path();
    let slashed = names_a_directory(path);
    let capacity = settings.open_file_cache;
    let cached = |version: &Rc<Version>| {
        if capacity > 0 {
            cache::insert(
                &settings.root,
                capacity,
                path,
                settings.show_hidden,
                slashed,
                version,
            );
        }
    };
    if capacity > 0
        && let Some(version) = cache::lookup(
            &settings.root,
            capacity,
            path,
            settings.show_hidden,
            slashed,
        )
    {
        return Ok(serve_file(settings, request, &version));
    }
    let mut names = segments(path)?;
    if !settings.show_hidden && names.iter().any(|name| listing::is_hidden(name)) {
        return Err(Refused::NotFound);
    }
    let (file, meta) = open(settings, &names)?;
    if !meta.is_dir() {
        if slashed {
            // `/a.txt/` names a directory, and there is none (issue 9,
            // point 5; nginx answers 404 too). Guarded by
            // tests/file_server/safety.rs
            // `a_file_is_not_served_under_a_trailing_slash`.
            return Err(Refused::NotFound);
        }
        if !meta.is_file() {
            return Ok(not_regular());
        }
        let name = names.last().map_or(Path::new(""), Path::new);
        let file = Arc::new(file);
        let mapped = mapped(settings, &file, &meta);
        let version = Rc::new(Version::new(file, &meta, name, mapped));
        cached(&version);
        return Ok(serve_file(settings, request, &version));
    }
    if !slashed {
        // Built from the normalized segments: never `//host`, which a
        // browser would follow to another site.
        let location =
            HeaderValue::from_str(&url_path(&names, true)).map_err(|_| Refused::BadRequest)?;
        return Ok(
            HttpResponse::text(StatusCode::MOVED_PERMANENTLY, "moved\n").header(LOCATION, location)
        );
    }
    names.push("index.html".into());
    if let Ok((index, meta)) = open(settings, &names)
        && meta.is_file()
    {
        let index = Arc::new(index);
        let mapped = mapped(settings, &index, &meta);
        let version = Rc::new(Version::new(index, &meta, Path::new("index.html"), mapped));
        cached(&version);
        return Ok(serve_file(settings, request, &version));
    }
    names.pop();
    // The directory already opened, through its descriptor: no second walk
    // of the path.
    let dir = format!("/proc/self/fd/{}", file.as_raw_fd());
    let shown = if names.is_empty() {
        "/".to_string()
    } else {
        let shown: Vec<String> = names
            .iter()
            .map(|name| name.to_string_lossy().into_owned())
            .collect();
        format!("/{}/", shown.join("/"))
    };
    let view = listing::View::from_query(request.query(), settings.show_hidden);
    let page = listing::render(Path::new(&dir), &shown, view).map_err(|e| Refused::of(&e))?;
    let response = HttpResponse::new(StatusCode::OK).header(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Ok(if request.method == Method::HEAD {
        response.head_only(page.len() as u64)
    } else {
        response.body(page.as_str())
    })
}

/// Opens `names` under the root. Short of descriptors, this thread's
/// open-file cache gives its own back and the open is tried once more.
fn open(settings: &Settings, names: &[OsString]) -> Result<(File, Metadata), Refused> {
    match settings.root.open_file(names) {
        Err(Refused::Busy) if settings.open_file_cache > 0 => {
            cache::clear();
            settings.root.open_file(names)
        }
        other => other,
    }
}

/// `file` mapped if the open-file cache will keep it (a file served once
/// is not worth a mapping).
fn mapped(settings: &Settings, file: &Arc<File>, meta: &Metadata) -> Option<Mapped> {
    if settings.open_file_cache == 0 {
        return None;
    }
    Mapped::of(file, meta.len(), settings.transfer)
}

/// The answer for a FIFO, socket or device.
fn not_regular() -> HttpResponse {
    HttpResponse::text(StatusCode::FORBIDDEN, "not a regular file\n")
}

/// One version of a regular file, whole or a range, or 304. The whole
/// file's head is encoded already: nothing is formatted for it.
fn serve_file(settings: &Settings, request: &HttpRequest, version: &Version) -> HttpResponse {
    let len = version.len;
    let validators = &version.validators;
    if not_modified(&request.headers, validators) {
        return HttpResponse::new(StatusCode::NOT_MODIFIED).fields(version.unchanged.clone());
    }
    let ranged = match request.header_str(RANGE) {
        Some(range) if range_applies(&request.headers, validators) => parse(range, len),
        _ => Ranged::Full,
    };
    let (mut response, first, count) = match ranged {
        Ranged::Full => {
            let mut response = HttpResponse::new(StatusCode::OK).fields(version.whole.clone());
            if request.method == Method::HEAD {
                // The fields carry the Content-Length.
                response.head_only = true;
                return response;
            }
            (response, 0, len)
        }
        Ranged::Part { first, last } => {
            let mut response =
                HttpResponse::new(StatusCode::PARTIAL_CONTENT).fields(version.part.clone());
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {first}-{last}/{len}")) {
                response = response.header(CONTENT_RANGE, value);
            }
            (response, first, last - first + 1)
        }
        Ranged::Unsatisfiable => {
            let mut refusal =
                HttpResponse::text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                refusal = refusal.header(CONTENT_RANGE, value);
            }
            return refusal;
        }
    };
    if request.method == Method::HEAD {
        return response.head_only(count);
    }
    let direct = settings.directio > 0 && count >= settings.directio;
    let region = match &version.mapped {
        Some(mapped) => mapped.region(first, count),
        None => FileRegion::new(Arc::clone(&version.file), first, count),
    };
    let region = region.with_strategy(settings.transfer).direct_io(direct);
    response.body = region.into();
    response
}
