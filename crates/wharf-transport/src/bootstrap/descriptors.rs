//! The connection limit against the descriptor limit: a server that
//! accepted until no descriptor was left could not open a file to answer
//! anyone, so `max_connections` is capped to what the soft limit leaves
//! after a reserve (moved out of `server.rs` to keep it small).

/// Descriptors kept for what is not a connection: each loop's epoll and
/// waker (and the level-triggered duplicate), the splice pipes, files the
/// handlers open, logs.
const RESERVED_DESCRIPTORS: usize = 64;

/// `asked` capped to what the soft descriptor limit leaves after the
/// reserve and the descriptors open now; logged when it caps.
pub(crate) fn fit_to_descriptors(asked: Option<usize>, loops: usize) -> Option<usize> {
    let max = asked?;
    let Ok((soft, _)) = crate::sys::limits::fd_limits() else {
        return asked;
    };
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    let open = crate::sys::limits::open_descriptors().unwrap_or(0);
    let reserve = RESERVED_DESCRIPTORS + 4 * loops;
    let room = soft.saturating_sub(open + reserve).max(1);
    if max <= room {
        return Some(max);
    }
    log::info!(
        room, asked = max, soft;
        "max_connections: {room} (asked for {max}): the descriptor limit of {soft} leaves \
         that many after {open} open and {reserve} kept for the loops and for files"
    );
    Some(room)
}
