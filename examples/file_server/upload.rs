//! Uploads (`--upload`): `PUT /path` stores the request body under the
//! root, received straight into the file by the transport
//! ([`Context::receive_file`](wharf::Context::receive_file): `splice`
//! socket → pipe → file, no copy through user space, or copied over TLS).
//!
//! The path is resolved as safely as for GET: the same segments, nothing
//! outside the root (the parent directory is opened with
//! `openat2(RESOLVE_BENEATH)`, so no symlink leads out), no directory
//! overwritten, dotfiles refused while they are hidden. The body goes into
//! a temporary file in the target's directory (`.wharf-upload-…`, created
//! with `O_EXCL`) and is renamed into place only once all of it arrived:
//! a client that goes away mid-body leaves nothing behind (the temporary
//! is removed when the upload is dropped), and of concurrent uploads of
//! one path the last to finish wins whole (`rename` is atomic). 201 when
//! the path was new (`renameat2(RENAME_NOREPLACE)` says so without a
//! race), 204 when a file was replaced.
//!
//! Refused before any byte is written: no `Content-Length` (411; a chunked
//! upload is refused too), more than `--max-upload` (413), a bad path
//! (400/403/404), a directory in the way or a missing parent (409).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU64, Ordering};

use http::StatusCode;
use http::header::{CONTENT_LENGTH, EXPECT, TRANSFER_ENCODING};
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::{Mode, SFlag};
use wharf::codec::{HttpRequest, HttpResponse};

use crate::listing;
use crate::paths::{Refused, names_a_directory, segments};
use crate::settings::Settings;

/// Tells temporary names apart within the process.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// An upload under way: its temporary file in the target's directory,
/// removed on drop unless it was renamed into place.
#[derive(Debug)]
pub struct Upload {
    dir: File,
    temp: OsString,
    name: OsString,
    /// Bytes the body has.
    pub len: u64,
    /// The client asked for `100 Continue` before it sends the body.
    pub expects_continue: bool,
    committed: bool,
}

/// How a finished upload was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The path was new: 201.
    Created,
    /// A file was replaced: 204.
    Replaced,
}

impl Stored {
    /// The response that says so.
    pub fn response(self) -> HttpResponse {
        match self {
            Stored::Created => HttpResponse::text(StatusCode::CREATED, "created\n"),
            Stored::Replaced => HttpResponse::new(StatusCode::NO_CONTENT),
        }
    }
}

/// Why an upload was refused before any byte was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Content-Length`: 411.
    NoLength,
    /// Over `--max-upload` (the limit): 413.
    TooLarge(u64),
    /// The path, as for GET: 400, 403, 404, 503 or 500.
    Path(Refused),
    /// A directory in the way, or a parent missing: 409, and why.
    Conflict(&'static str),
}

impl Refusal {
    /// The response that says so.
    pub fn response(self) -> HttpResponse {
        match self {
            Refusal::NoLength => HttpResponse::text(
                StatusCode::LENGTH_REQUIRED,
                "uploads need a Content-Length\n",
            ),
            Refusal::TooLarge(limit) => HttpResponse::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("uploads are limited to {limit} bytes\n"),
            ),
            Refusal::Path(refused) => crate::respond::refusal(refused),
            Refusal::Conflict(why) => HttpResponse::text(StatusCode::CONFLICT, why),
        }
    }
}

/// Starts the upload `request` asks for: the upload and the temporary file
/// its body goes into, or why it is refused.
pub fn begin(settings: &Settings, request: &HttpRequest) -> Result<(Upload, File), Refusal> {
    let len = body_length(request)?;
    if len > settings.max_upload {
        return Err(Refusal::TooLarge(settings.max_upload));
    }
    let mut names = segments(request.path()).map_err(Refusal::Path)?;
    if !settings.show_hidden && names.iter().any(|name| listing::is_hidden(name)) {
        return Err(Refusal::Path(Refused::NotFound));
    }
    let name = match names.pop() {
        Some(name) if !names_a_directory(request.path()) => name,
        _ => return Err(Refusal::Conflict("a directory cannot be uploaded to\n")),
    };
    let (dir, meta) = settings
        .root
        .open_file(&names)
        .map_err(|refused| match refused {
            Refused::NotFound => Refusal::Conflict("the parent directory does not exist\n"),
            other => Refusal::Path(other),
        })?;
    if !meta.is_dir() {
        return Err(Refusal::Conflict("the parent is not a directory\n"));
    }
    match nix::sys::stat::fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR => {
            return Err(Refusal::Conflict("a directory is in the way\n"));
        }
        _ => {}
    }
    let (temp, file) = create_temp(&dir).map_err(|e| Refusal::Path(Refused::of(&e)))?;
    let upload = Upload {
        dir,
        temp,
        name,
        len,
        expects_continue: request
            .header_str(EXPECT)
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
        committed: false,
    };
    Ok((upload, file))
}

impl Upload {
    /// All of the body is in the temporary file: rename it into place.
    pub fn commit(mut self) -> io::Result<Stored> {
        let (temp, name) = (self.temp.as_os_str(), self.name.as_os_str());
        let stored = match nix::fcntl::renameat2(
            &self.dir,
            temp,
            &self.dir,
            name,
            RenameFlags::RENAME_NOREPLACE,
        ) {
            Ok(()) => Stored::Created,
            Err(nix::errno::Errno::EEXIST) => {
                nix::fcntl::renameat(&self.dir, temp, &self.dir, name).map_err(io::Error::from)?;
                Stored::Replaced
            }
            Err(e) => return Err(e.into()),
        };
        self.committed = true;
        Ok(stored)
    }

    /// Bytes of the body in the temporary file so far.
    pub fn received(&self) -> u64 {
        nix::sys::stat::fstatat(
            &self.dir,
            self.temp.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_or(0, |stat| stat.st_size as u64)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.committed {
            let _ = nix::unistd::unlinkat(
                &self.dir,
                self.temp.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// The body's length: `Content-Length` is required.
fn body_length(request: &HttpRequest) -> Result<u64, Refusal> {
    if let Some(len) = request.unread_body {
        return Ok(len);
    }
    if request.header(TRANSFER_ENCODING).is_some() || request.header(CONTENT_LENGTH).is_none() {
        return Err(Refusal::NoLength);
    }
    // `Content-Length: 0`: the codec delivered the (empty) body.
    Ok(request.body.len() as u64)
}

/// A new temporary file in `dir`, by a name nobody else uses.
fn create_temp(dir: &File) -> io::Result<(OsString, File)> {
    loop {
        let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
        let temp = OsString::from(format!(".wharf-upload-{}-{n}", std::process::id()));
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC;
        match nix::fcntl::openat(
            dir.as_fd(),
            OsStr::new(&temp),
            flags,
            Mode::from_bits_truncate(0o644),
        ) {
            Ok(fd) => return Ok((temp, File::from(fd))),
            // Left by a process of the same id before (a crash).
            Err(nix::errno::Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
