//! The process's descriptor limit and CPU time, for servers that want many
//! connections and benches that compare CPU cost.

use std::io;
use std::time::Duration;

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};

/// The soft and hard limits on open descriptors (`RLIMIT_NOFILE`).
pub fn fd_limits() -> io::Result<(u64, u64)> {
    getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)
}

/// Sets the soft descriptor limit, keeping the hard one.
pub fn set_fd_soft_limit(soft: u64) -> io::Result<()> {
    let (_, hard) = fd_limits()?;
    setrlimit(Resource::RLIMIT_NOFILE, soft.min(hard), hard).map_err(io::Error::from)
}

/// Raises the soft descriptor limit to at least `wanted` (up to the hard
/// limit); returns the soft limit now in force.
pub fn raise_fd_limit(wanted: u64) -> io::Result<u64> {
    let (soft, hard) = fd_limits()?;
    if soft >= wanted {
        return Ok(soft);
    }
    let new = wanted.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, new, hard).map_err(io::Error::from)?;
    Ok(new)
}

/// User and system CPU time used so far by this process.
pub fn process_cpu_time() -> io::Result<Duration> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).map_err(io::Error::from)?;
    let user = usage.user_time();
    let system = usage.system_time();
    let micros = |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
    Ok(Duration::from_micros(micros(user) + micros(system)))
}
