//! The process's descriptor limit, CPU time and resident memory, for
//! servers that want many connections and benches that compare costs.

use std::fs;

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

/// CPU time (user + system) and context switches (voluntary and not) of
/// this process's threads whose name starts with `prefix`, read from
/// `/proc/self/task` (CPU in 10 ms ticks). Benches use it to charge a
/// server's own threads, apart from the load client in the same process.
pub fn threads_usage(prefix: &str) -> (Duration, u64) {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return (Duration::ZERO, 0);
    };
    let mut ticks = 0u64;
    let mut switches = 0u64;
    for task in tasks.filter_map(|t| t.ok()) {
        let name = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if !name.starts_with(prefix) {
            continue;
        }
        let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // After the parenthesised name, utime and stime are fields 14 and
        // 15 of the whole line (the state is field 3).
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| {
                fields
                    .get(n - 3)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            ticks += field(14) + field(15);
        }
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(count) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += count.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    (Duration::from_millis(ticks * 10), switches)
}

/// Descriptors this process has open now (`/proc/self/fd`).
pub fn open_descriptors() -> io::Result<usize> {
    Ok(fs::read_dir("/proc/self/fd")?.count())
}

/// Resident memory of this process in bytes (`/proc/self/statm`), for
/// servers and benches that report what they hold.
pub fn resident_bytes() -> io::Result<u64> {
    let statm = fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no resident size in statm"))?;
    Ok(pages * crate::sys::file::page_size())
}
