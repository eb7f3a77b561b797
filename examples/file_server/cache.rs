//! The open-file cache (`--open-file-cache N`, issue 12 §3): per thread
//! that answers requests (each event loop, worker or open-pool thread), up
//! to `N` recently served files, each with its open descriptor, its
//! metadata and the fields of its response head encoded once, so that a
//! request for a cached file costs one `fstatat` instead of `openat2`,
//! `fstat` and `close`, and formats nothing.
//!
//! A thread's cache is its own (a `thread_local`): no lock on the way of a
//! request, and a file is cached once per thread that served it.
//!
//! Every hit is revalidated: the request's path is looked up again with
//! one `fstatat` relative to the root directory (symlinks followed, as the
//! open follows them), and the entry is used only if the path still leads
//! to the cached descriptor's file (same device and inode) with the same
//! size, modification time and status-change time. Anything else, an error
//! included, drops the entry and takes the normal, safe open. So a file
//! that was changed (size or times differ), replaced (renamed over: another
//! inode, which is how uploads land), truncated or deleted is never served
//! from the cache, nor a path whose symlink now points elsewhere. Guarded
//! by tests/file_server/open_file_cache.rs.
//!
//! What the check does not see: a file rewritten in place within one tick
//! of the file system's clock, at the same size, keeps its times. The bytes
//! sent are still the current ones (the descriptor reads the file as it
//! is now); only its `ETag` and `Last-Modified` are those of the previous
//! version, as they would be without the cache. A cached file moved out
//! of the root gets a new status-change time, so it misses; a directory
//! above it moved out of the root and replaced by a symlink to its new
//! place leaves the file's times alone, and the unchanged file (whose
//! bytes were served from inside the root) is still served, as nginx's
//! `open_file_cache` would.
//!
//! Eviction is by the clock algorithm (an approximation of LRU); an
//! evicted entry's descriptor closes once the last response sending from
//! it is done. The descriptors held count against the server's descriptor
//! budget (see [`crate::budget`]).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;
use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use http::header::{ACCEPT_RANGES, CONTENT_TYPE, ETAG, LAST_MODIFIED};
use http::{HeaderName, HeaderValue};
use nix::sys::stat::FileStat;
use percent_encoding::percent_decode_str;
use wharf::codec::EncodedFields;

use crate::conditional::Validators;
use crate::mapped::Mapped;
use crate::paths::Root;

/// One version of a regular file, ready to be served.
#[derive(Debug)]
pub struct Version {
    /// The open file.
    pub file: Arc<File>,
    /// Its length.
    pub len: u64,
    /// Its `ETag` and `Last-Modified`.
    pub validators: Validators,
    /// `ETag`, `Last-Modified`, `Accept-Ranges`: what a 304 carries.
    pub unchanged: EncodedFields,
    /// The same and `Content-Type`: what a 206 carries besides its range.
    pub part: EncodedFields,
    /// The same and `Content-Length`: what a whole 200 carries.
    pub whole: EncodedFields,
    /// The file mapped, when it is small and the cache keeps it (see
    /// [`crate::mapped`]).
    pub mapped: Option<Mapped>,
    /// What the cache compares on each hit.
    stamp: Stamp,
}

/// What identifies a version of a file: device, inode, size, and the
/// modification and status-change times in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of_meta(meta: &Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    #[allow(clippy::unnecessary_cast)] // The field types differ by target.
    fn of_stat(stat: &FileStat) -> Stamp {
        Stamp {
            dev: stat.st_dev as u64,
            ino: stat.st_ino as u64,
            size: stat.st_size as u64,
            mtime: (stat.st_mtime as i64, stat.st_mtime_nsec as i64),
            ctime: (stat.st_ctime as i64, stat.st_ctime_nsec as i64),
        }
    }
}

impl Version {
    /// The version of `file` (metadata `meta`, a regular file) whose name
    /// `name` gives its MIME type; `mapped`, the file mapped, if it is.
    pub fn new(file: Arc<File>, meta: &Metadata, name: &Path, mapped: Option<Mapped>) -> Version {
        let validators = Validators::of(meta);
        let value = |text: &str| HeaderValue::from_str(text).ok();
        let mime = mime_guess::from_path(name).first_or_octet_stream();
        // In the order of the responses that carry them: a 304 the first
        // three, a 206 one more, a 200 all and its Content-Length.
        let fields = [
            (ETAG, value(&validators.etag)),
            (LAST_MODIFIED, value(&validators.last_modified)),
            (ACCEPT_RANGES, Some(HeaderValue::from_static("bytes"))),
            (CONTENT_TYPE, value(mime.as_ref())),
        ];
        let present = |upto: usize| fields[..upto].iter().filter(|(_, v)| v.is_some()).count();
        let (unchanged, part) = (present(3), present(4));
        let fields = fields
            .into_iter()
            .filter_map(|(name, value): (HeaderName, _)| Some((name, value?)));
        // Names the encoder decides on are never among these: encoding
        // cannot fail.
        let whole = EncodedFields::new(fields, Some(meta.len()))
            .or_else(|_| EncodedFields::new([], Some(meta.len())))
            .expect("a Content-Length alone encodes");
        Version {
            file,
            len: meta.len(),
            unchanged: whole.first(unchanged),
            part: whole.first(part),
            whole,
            validators,
            mapped,
            stamp: Stamp::of_meta(meta),
        }
    }
}

/// The key of a request path: its normalized segments joined by `/`
/// (`index.html` appended when it names a directory), NUL-terminated for
/// `fstatat`, in `key`. `false` when the path is not one the cache
/// answers: refused by [`crate::paths::segments`], the root itself, or a
/// dotfile while they are hidden (the normal path answers those).
pub fn key_of(path: &str, show_hidden: bool, directory: bool, key: &mut Vec<u8>) -> bool {
    key.clear();
    if !path.starts_with('/') {
        return false;
    }
    for raw in path.split('/') {
        let start = key.len();
        if start > 0 {
            key.push(b'/');
        }
        key.extend(percent_decode_str(raw));
        let segment = &key[start + usize::from(start > 0)..];
        if segment.iter().any(|&b| matches!(b, 0 | b'/' | b'\\')) {
            return false;
        }
        match segment {
            b"" | b"." => key.truncate(start),
            b".." => {
                key.truncate(start);
                if key.is_empty() {
                    return false;
                }
                let parent = key.iter().rposition(|&b| b == b'/').unwrap_or(0);
                key.truncate(parent);
            }
            _ if !show_hidden && segment[0] == b'.' => return false,
            _ => {}
        }
    }
    if directory {
        if !key.is_empty() {
            key.push(b'/');
        }
        key.extend_from_slice(b"index.html");
    }
    if key.is_empty() {
        return false;
    }
    key.push(0);
    true
}

/// One cached file.
struct Slot {
    key: Box<[u8]>,
    version: Rc<Version>,
    /// Used since the clock hand last passed.
    referenced: bool,
}

/// One thread's cache.
struct Cache {
    /// Which root it caches (a thread may serve several servers in turn).
    root: u64,
    capacity: usize,
    index: HashMap<Box<[u8]>, usize>,
    slots: Vec<Slot>,
    hand: usize,
    /// The key of the request being answered.
    key: Vec<u8>,
}

impl Cache {
    fn new(root: u64, capacity: usize) -> Cache {
        Cache {
            root,
            capacity,
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
            key: Vec::new(),
        }
    }

    fn remove(&mut self, at: usize) {
        let slot = self.slots.swap_remove(at);
        self.index.remove(&slot.key);
        if let Some(moved) = self.slots.get(at)
            && let Some(index) = self.index.get_mut(&moved.key)
        {
            *index = at;
        }
    }

    /// A slot to evict, by the clock.
    fn victim(&mut self) -> usize {
        loop {
            self.hand %= self.slots.len();
            let slot = &mut self.slots[self.hand];
            if !std::mem::take(&mut slot.referenced) {
                return self.hand;
            }
            self.hand += 1;
        }
    }
}

thread_local! {
    static CACHE: RefCell<Option<Cache>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's cache for `root` (made, or remade for
/// another root, as needed).
fn with_cache<T>(root: &Root, capacity: usize, f: impl FnOnce(&mut Cache) -> T) -> Option<T> {
    CACHE
        .try_with(|cell| {
            let mut cell = cell.try_borrow_mut().ok()?;
            let cache = match &mut *cell {
                Some(cache) if cache.root == root.id() && cache.capacity == capacity => cache,
                other => other.insert(Cache::new(root.id(), capacity)),
            };
            Some(f(cache))
        })
        .ok()
        .flatten()
}

/// The cached version of what `path` names, if it is cached and still
/// what the path leads to; a stale entry is dropped.
pub fn lookup(
    root: &Root,
    capacity: usize,
    path: &str,
    show_hidden: bool,
    directory: bool,
) -> Option<Rc<Version>> {
    with_cache(root, capacity, |cache| {
        if !key_of(path, show_hidden, directory, &mut cache.key) {
            return None;
        }
        let at = *cache.index.get(cache.key.as_slice())?;
        let fresh = CStr::from_bytes_with_nul(&cache.key)
            .ok()
            .and_then(|name| root.stat(name).ok())
            .is_some_and(|stat| Stamp::of_stat(&stat) == cache.slots[at].version.stamp);
        if !fresh {
            cache.remove(at);
            return None;
        }
        let slot = &mut cache.slots[at];
        slot.referenced = true;
        #[cfg(test)]
        count_hit(root);
        Some(Rc::clone(&slot.version))
    })
    .flatten()
}

/// Caches `version` as what `path` names, evicting another entry if the
/// cache is full.
pub fn insert(
    root: &Root,
    capacity: usize,
    path: &str,
    show_hidden: bool,
    directory: bool,
    version: &Rc<Version>,
) {
    with_cache(root, capacity, |cache| {
        if capacity == 0 || !key_of(path, show_hidden, directory, &mut cache.key) {
            return;
        }
        if let Some(&at) = cache.index.get(cache.key.as_slice()) {
            cache.remove(at);
        }
        if cache.slots.len() >= capacity {
            let at = cache.victim();
            cache.remove(at);
        }
        let key: Box<[u8]> = cache.key.as_slice().into();
        cache.index.insert(key.clone(), cache.slots.len());
        cache.slots.push(Slot {
            key,
            version: Rc::clone(version),
            referenced: false,
        });
    });
}

/// Closes this thread's cached descriptors (when opens fail for want of
/// descriptors).
pub fn clear() {
    let _ = CACHE.try_with(|cell| {
        if let Ok(mut cell) = cell.try_borrow_mut() {
            cell.take();
        }
    });
}

/// Hits by root, for the tests to see that the cache answered.
#[cfg(test)]
static HITS: std::sync::Mutex<Vec<(u64, u64)>> = std::sync::Mutex::new(Vec::new());

#[cfg(test)]
fn count_hit(root: &Root) {
    let mut hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    match hits.iter_mut().find(|(id, _)| *id == root.id()) {
        Some((_, n)) => *n += 1,
        None => hits.push((root.id(), 1)),
    }
}

/// How many requests for files under `root` the caches answered.
#[cfg(test)]
pub fn hits(root: &Root) -> u64 {
    let hits = HITS.lock().unwrap_or_else(|e| e.into_inner());
    hits.iter()
        .find(|(id, _)| *id == root.id())
        .map_or(0, |(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStrExt;

    use super::*;
    use crate::paths::segments;

    fn key(path: &str, directory: bool) -> Option<String> {
        let mut key = Vec::new();
        key_of(path, false, directory, &mut key).then(|| {
            assert_eq!(key.pop(), Some(0));
            String::from_utf8_lossy(&key).into_owned()
        })
    }

    #[test]
    fn keys_are_the_normalized_segments() {
        for path in [
            "/a.txt",
            "/sub/../sub/./a.txt",
            "/sub/%61.txt",
            "/%252e%252e/x",
            "/d//e",
        ] {
            let names: Vec<OsString> = segments(path).expect("segments");
            let joined: Vec<&[u8]> = names.iter().map(|s| s.as_bytes()).collect();
            let joined = String::from_utf8_lossy(&joined.join(&b'/')).into_owned();
            assert_eq!(key(path, false), Some(joined), "{path}");
        }
        assert_eq!(key("/", true), Some("index.html".into()));
        assert_eq!(key("/d/", true), Some("d/index.html".into()));
        for refused in [
            "/",
            "/../x",
            "/..%2fx",
            "/a%00b",
            "/a\\b",
            "/.env",
            "/d/.git/x",
            "rel",
        ] {
            assert_eq!(key(refused, false), None, "{refused}");
        }
    }
}
