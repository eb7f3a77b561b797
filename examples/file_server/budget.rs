//! How many connections the descriptor limit allows (issue 9, point 3).
//!
//! Every connection is a socket, and a connection that is sending a file
//! holds one more descriptor; the server holds some of its own (standard
//! streams, the root, each loop's epoll, waker, listener and splice pipe).
//! A connection limit above what the descriptors allow does not limit
//! anything: with `ulimit -n 256` and the default 10 000, the server used
//! to accept until no descriptor was left to open a file, and then could
//! serve no one. So at start-up the soft limit is raised toward what the
//! connection limit needs (up to the hard limit), and the connection limit
//! is capped to what the soft limit leaves after the server's own
//! descriptors and a reserve for open files of a quarter of the
//! connections. Start-up says which limit applies and why.
//!
//! The open-file cache (see [`crate::cache`]) holds descriptors too: the
//! limit is raised for them as well, and they get at most a quarter of
//! what the limit leaves after the server's own, so that a low limit
//! shrinks the cache rather than the connections.

use std::fmt;
use std::io;

use wharf::transport::sys::limits::{fd_limits, raise_fd_limit};

/// Descriptors an event loop holds: its epoll (and a duplicate for level
/// triggering), its waker, a listener, a splice pipe, and some to spare.
const PER_LOOP: u64 = 8;
/// Descriptors for everything else the process may open now and then.
const SPARE: u64 = 16;

/// The descriptors, shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The connection limit asked for.
    pub requested: usize,
    /// The connection limit that applies.
    pub connections: usize,
    /// Descriptors reserved for open files.
    pub files: u64,
    /// Descriptors the open-file caches may hold, all threads together.
    pub cached: u64,
    /// Descriptors the server needs for itself.
    pub own: u64,
    /// The soft limit on descriptors, after raising it.
    pub limit: u64,
}

impl Budget {
    /// The budget for `requested` connections and open-file caches that
    /// would hold `cached` descriptors, with `own` descriptors the server
    /// needs for itself, under the soft limit `limit`.
    pub fn plan(requested: usize, own: u64, cached: u64, limit: u64) -> io::Result<Budget> {
        let room = limit.saturating_sub(own);
        let cached = cached.min(room / 4);
        let room = room - cached;
        // Each connection needs a socket, and a quarter of one for files.
        let fits = usize::try_from(room * 4 / 5).unwrap_or(usize::MAX);
        let connections = requested.min(fits);
        if connections == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the descriptor limit ({limit}) leaves nothing for connections after the \
                     {own} the server needs itself"
                ),
            ));
        }
        Ok(Budget {
            requested,
            connections,
            files: room - connections as u64,
            cached,
            own,
            limit,
        })
    }

    /// Raises the soft descriptor limit toward what `requested` connections
    /// and `cached` descriptors in open-file caches need (up to the hard
    /// limit) for a server with `loops` event loops, and plans with what it
    /// gets.
    pub fn for_process(requested: usize, cached: u64, loops: usize) -> io::Result<Budget> {
        let own = open_descriptors()? + PER_LOOP * loops as u64 + SPARE;
        let wanted = own + requested as u64 + (requested as u64).div_ceil(4) + cached;
        let limit = raise_fd_limit(wanted).or_else(|_| fd_limits().map(|(soft, _)| soft))?;
        Budget::plan(requested, own, cached, limit)
    }

    /// Whether the descriptor limit lowered the connection limit.
    pub fn capped(&self) -> bool {
        self.connections < self.requested
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (connections, own, limit) = (self.connections, self.own, self.limit);
        let files = if self.cached > 0 {
            format!("{} (and {} in open-file caches)", self.files, self.cached)
        } else {
            self.files.to_string()
        };
        if self.capped() {
            write!(
                f,
                "connections: at most {connections} (--max-connections {} capped by the \
                 descriptor limit: {limit} descriptors, {own} for the server itself, {files} for \
                 open files)",
                self.requested
            )
        } else {
            write!(
                f,
                "connections: at most {connections} (descriptor limit {limit}: {own} for the \
                 server itself, {files} for open files)"
            )
        }
    }
}

/// Descriptors this process has open now.
fn open_descriptors() -> io::Result<u64> {
    // The directory's own descriptor is among those listed.
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_caps_connections_and_keeps_room_for_files() {
        let budget = Budget::plan(10_000, 40, 0, 256).expect("a budget");
        assert_eq!(budget.connections, 172);
        assert_eq!(budget.files, 44);
        assert!(budget.capped());
        let text = budget.to_string();
        assert!(text.starts_with("connections: at most 172 (--max-connections 10000 capped by the descriptor limit: 256 descriptors"), "{text}");

        let budget = Budget::plan(100, 40, 0, 1024).expect("a budget");
        assert_eq!((budget.connections, budget.capped()), (100, false));
        assert_eq!(budget.files, 884);
        assert!(
            budget
                .to_string()
                .starts_with("connections: at most 100 (descriptor limit 1024")
        );

        assert!(Budget::plan(100, 40, 0, 40).is_err());
    }

    #[test]
    fn open_file_caches_get_at_most_a_quarter_of_the_room() {
        let budget = Budget::plan(10_000, 40, 2000, 256).expect("a budget");
        assert_eq!(budget.cached, 54, "a quarter of 216");
        assert_eq!(budget.connections, 129);
        assert_eq!(
            budget.cached + budget.connections as u64 + budget.files + 40,
            256
        );
        let budget = Budget::plan(100, 40, 2000, 1_000_000).expect("a budget");
        assert_eq!((budget.cached, budget.connections), (2000, 100));
    }
}
