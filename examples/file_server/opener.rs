//! Opening files off the event loop, where an open can block.
//!
//! With `O_NONBLOCK` an open never waits for a FIFO's writer, but on a
//! network or FUSE file system (NFS, SMB, CephFS, sshfs, …) `open`,
//! `fstat` and `readdir` wait for another machine or process, for as long
//! as it takes. An event loop thread must never wait (issue 9, point 1): on
//! such a root, or one with such a mount beneath it, each request is
//! answered on a small pool of threads of its own ([`OpenPool`]), and the
//! response is handed back to the connection's handler as a user event. On
//! local file systems the loop opens files itself, which is cheaper than a
//! hand-off to another thread and back.
//!
//! Threading: `OpenPool` is `Send + Sync`; jobs run on its threads.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crossbeam_channel::{Sender, unbounded};

type Job = Box<dyn FnOnce() + Send>;

/// Threads that run the jobs handed to them, in the order they come.
pub struct OpenPool {
    jobs: Sender<Job>,
    threads: usize,
}

impl fmt::Debug for OpenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenPool")
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl OpenPool {
    /// Starts `threads` threads named `file-open-N`. They end when the pool
    /// is dropped and the jobs queued before are done.
    pub fn start(threads: usize) -> io::Result<OpenPool> {
        let (jobs, queue) = unbounded::<Job>();
        for i in 0..threads.max(1) {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("file-open-{i}"))
                .spawn(move || {
                    for job in queue {
                        job();
                    }
                })?;
        }
        Ok(OpenPool {
            jobs,
            threads: threads.max(1),
        })
    }

    /// Runs `job` on one of the pool's threads.
    pub fn submit(&self, job: impl FnOnce() + Send + 'static) {
        // The threads only end once `jobs` is dropped: the send succeeds.
        let _ = self.jobs.send(Box::new(job));
    }
}

/// The file system types whose operations may wait on another machine or
/// on a user-space process: network file systems and FUSE.
fn may_block_type(fstype: &str) -> bool {
    const REMOTE: [&str; 17] = [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ncpfs",
        "9p",
        "afs",
        "ceph",
        "glusterfs",
        "lustre",
        "gfs2",
        "ocfs2",
        "coda",
        "orangefs",
        "davfs",
        "fuse",
    ];
    REMOTE.contains(&fstype) || fstype.starts_with("fuse.") || fstype == "fuseblk"
}

/// A mount point as `/proc/self/mountinfo` writes it, with `\040`-style
/// octal escapes for space, tab, newline and backslash.
fn unescape(field: &str) -> PathBuf {
    use std::os::unix::ffi::OsStringExt;
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            let d = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(d, 8).ok()
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The first mount in `mountinfo` (the text of `/proc/self/mountinfo`)
/// whose file system may block and that holds `root` or lies beneath it:
/// its mount point and type.
pub fn blocking_mount(mountinfo: &str, root: &Path) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let mount_point = unescape(mount.split(' ').nth(4)?);
        let fstype = fs.split(' ').next()?;
        let related = root.starts_with(&mount_point) || mount_point.starts_with(root);
        (related && may_block_type(fstype)).then(|| (mount_point, fstype.to_string()))
    })
}

/// Whether opening files under `root` may block, and why: a mount it is
/// on or that lies beneath it, from `/proc/self/mountinfo` now (mounts
/// made later are not seen). Unreadable mount information counts as
/// "may block".
pub fn opens_may_block(root: &Path) -> Option<String> {
    match std::fs::read_to_string("/proc/self/mountinfo") {
        Ok(info) => blocking_mount(&info, root)
            .map(|(point, fstype)| format!("{fstype} at {}", point.display())),
        Err(e) => Some(format!("no mount information ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 252:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
25 22 0:21 / /proc rw,nosuid - proc proc rw
40 22 0:35 / /srv/www/shared\\040docs rw - nfs4 fs:/docs rw,vers=4.2
41 22 0:36 / /home/u/remote rw - fuse.sshfs u@h: rw
";

    #[test]
    fn network_mounts_at_or_under_the_root_are_found() {
        let find = |root: &str| blocking_mount(INFO, Path::new(root)).map(|(_, t)| t);
        assert_eq!(find("/srv/www"), Some("nfs4".to_string()), "beneath");
        assert_eq!(
            find("/srv/www/shared docs/a"),
            Some("nfs4".to_string()),
            "on"
        );
        assert_eq!(find("/home/u/remote/x"), Some("fuse.sshfs".to_string()));
        assert_eq!(find("/var/www"), None, "only local file systems");
        assert_eq!(find("/srv/www2"), None, "a sibling is not beneath");
    }

    #[test]
    fn the_pool_runs_what_it_is_given() {
        let pool = OpenPool::start(2).expect("pool");
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..8 {
            let tx = tx.clone();
            pool.submit(move || {
                let _ = tx.send(i);
            });
        }
        let mut got: Vec<i32> = (0..8)
            .map(|_| {
                rx.recv_timeout(std::time::Duration::from_secs(5))
                    .expect("a job ran")
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
    }
}
