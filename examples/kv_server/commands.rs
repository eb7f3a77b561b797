//! The commands: what each one does to the store and answers, with Redis's
//! arity rules and Redis's error replies.
//!
//! Each command is a row of [`COMMANDS`] (name, arity as Redis counts it,
//! flags and key positions for `COMMAND`) and a function. [`execute`]
//! looks the name up, checks the arity and runs it; options are parsed as
//! Redis parses them, so a client gets the same answer from this server as
//! from Redis, errors included.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wharf::buf::{ByteBuf, FrozenBuf};
use wharf::codec::resp::{Command, Reply, parse_integer};

use crate::store::{Clock, Condition, ExpireIf, Expiry, IncrError, Store, bytes_buf};

/// What the connection does after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Reads the next command.
    Continue,
    /// Closes once the reply is sent (`QUIT`).
    Close,
}

/// Values shorter than this are copied out of the read buffer they arrived
/// in before they are stored, so that a small value does not keep a whole
/// read buffer alive; longer ones (received into a buffer of their own
/// size) are kept as they are.
const COPY_BELOW: usize = 64 << 10;

type Run = fn(&Store, &mut [ByteBuf], &Clock) -> Reply;

/// One command as `COMMAND` describes it.
#[derive(Debug)]
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis's arity: `n` exactly n arguments (the name included), `-n` at
    /// least n.
    pub arity: i64,
    /// Redis's command flags.
    pub flags: &'static [&'static str],
    /// First key argument, last (-1: the last argument), step.
    pub keys: (i64, i64, i64),
    run: Run,
    /// What the connection does after the reply.
    after: After,
}

/// Every command the server knows. `QUIT` and `COMMAND` are handled in
/// [`execute`] (one closes the connection, the other reads this table).
pub const COMMANDS: &[Spec] = &[
    spec("ping", -1, &["fast"], (0, 0, 0), ping),
    spec("echo", 2, &["fast"], (0, 0, 0), echo),
    spec("get", 2, &["readonly", "fast"], (1, 1, 1), get),
    spec("set", -3, &["write", "denyoom"], (1, 1, 1), set),
    spec("del", -2, &["write"], (1, -1, 1), del),
    spec("exists", -2, &["readonly", "fast"], (1, -1, 1), exists),
    spec("incr", 2, &["write", "denyoom", "fast"], (1, 1, 1), incr),
    spec("decr", 2, &["write", "denyoom", "fast"], (1, 1, 1), decr),
    spec(
        "incrby",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        incrby,
    ),
    spec(
        "decrby",
        3,
        &["write", "denyoom", "fast"],
        (1, 1, 1),
        decrby,
    ),
    spec("mget", -2, &["readonly", "fast"], (1, -1, 1), mget),
    spec("mset", -3, &["write", "denyoom"], (1, -1, 2), mset),
    spec("expire", -3, &["write", "fast"], (1, 1, 1), expire),
    spec("ttl", 2, &["readonly", "fast"], (1, 1, 1), ttl),
    spec("dbsize", 1, &["readonly", "fast"], (0, 0, 0), dbsize),
    spec("flushall", -1, &["write"], (0, 0, 0), flushall),
    spec("quit", -1, &["fast"], (0, 0, 0), |_, _, _| Reply::ok()).closing(),
    spec("command", -1, &["loading", "stale"], (0, 0, 0), command),
];

const fn spec(
    name: &'static str,
    arity: i64,
    flags: &'static [&'static str],
    keys: (i64, i64, i64),
    run: Run,
) -> Spec {
    Spec {
        name,
        arity,
        flags,
        keys,
        run,
        after: After::Continue,
    }
}

impl Spec {
    /// The same command, closing the connection after its reply.
    const fn closing(self) -> Spec {
        Spec {
            after: After::Close,
            ..self
        }
    }
}

/// The longest command name.
const LONGEST_NAME: usize = {
    let mut longest = 0;
    let mut i = 0;
    while i < COMMANDS.len() {
        if COMMANDS[i].name.len() > longest {
            longest = COMMANDS[i].name.len();
        }
        i += 1;
    }
    longest
};

const SYNTAX_ERROR: Reply = Reply::static_error("ERR syntax error");
const NOT_AN_INTEGER: Reply = Reply::static_error("ERR value is not an integer or out of range");

/// Runs one command against `store`.
pub fn execute(store: &Store, mut command: Command) -> (Reply, After) {
    let args = command.args_mut();
    let name = args.first().map_or(&[][..], |a| &a[..]);
    let Some(spec) = find(name) else {
        return (unknown_command(args), After::Continue);
    };
    let argc = args.len() as i64;
    if (spec.arity > 0 && argc != spec.arity) || argc < -spec.arity {
        let text = format!("ERR wrong number of arguments for '{}' command", spec.name);
        return (Reply::error(text), After::Continue);
    }
    ((spec.run)(store, args, &Clock::new()), spec.after)
}

/// The command called `name`, in any case: the name is lowered on the
/// stack once (no allocation), then compared whole with each row.
fn find(name: &[u8]) -> Option<&'static Spec> {
    let mut buf = [0u8; LONGEST_NAME];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let lower = &*lower;
    COMMANDS.iter().find(|s| s.name.as_bytes() == lower)
}

/// `s` as C sees it: up to its first NUL.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |nul| &s[..nul])
}

/// Redis's "unknown command" error: the name and the first arguments,
/// each cut so that the list stays within 128 bytes.
fn unknown_command(args: &[ByteBuf]) -> Reply {
    let name = args.first().map_or(&[][..], |a| c_str(a));
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(&name[..name.len().min(128)]);
    text.extend_from_slice(b"', with args beginning with: ");
    let mut list = Vec::new();
    for arg in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let arg = c_str(arg);
        let room = 128 - list.len();
        list.push(b'\'');
        list.extend_from_slice(&arg[..arg.len().min(room)]);
        list.extend_from_slice(b"' ");
    }
    text.extend_from_slice(&list);
    Reply::error(text)
}

/// A value to keep: copied if small, as it is if large.
fn stored(value: ByteBuf) -> FrozenBuf {
    if value.len() < COPY_BELOW {
        bytes_buf(&value)
    } else {
        value.freeze()
    }
}

/// A frozen view of an argument, taken out of the command, to send back
/// (no copy).
fn echoed(arg: &mut ByteBuf) -> Reply {
    Reply::Bulk(std::mem::take(arg).freeze())
}

fn ping(_: &Store, args: &mut [ByteBuf], _: &Clock) -> Reply {
    if args.len() > 2 {
        return Reply::static_error("ERR wrong number of arguments for 'ping' command");
    }
    args.get_mut(1).map_or(Reply::pong(), echoed)
}

fn echo(_: &Store, args: &mut [ByteBuf], _: &Clock) -> Reply {
    args.get_mut(1).map_or(Reply::Null, echoed)
}

fn get(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    store.get(&args[1], now).map_or(Reply::Null, Reply::Bulk)
}

/// Milliseconds since the Unix epoch, now.
fn unix_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// The options of `SET`, parsed as Redis's
/// `parseExtendedStringArgumentsOrReply` parses them.
fn set(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    // (unit in ms, absolute, the argument)
    let mut expire: Option<(i64, bool, usize)> = None;
    let mut j = 3;
    while j < args.len() {
        let opt = args[j].to_ascii_uppercase();
        let has_next = j + 1 < args.len();
        let timed = expire.map(|(unit, abs, _)| (unit, abs));
        match &opt[..] {
            b"NX" if !xx => nx = true,
            b"XX" if !nx => xx = true,
            b"GET" => get = true,
            b"KEEPTTL" if expire.is_none() => keep_ttl = true,
            b"EX" if !keep_ttl && matches!(timed, None | Some((1000, false))) && has_next => {
                expire = Some((1000, false, j + 1));
                j += 1;
            }
            b"PX" if !keep_ttl && matches!(timed, None | Some((1, false))) && has_next => {
                expire = Some((1, false, j + 1));
                j += 1;
            }
            b"EXAT" if !keep_ttl && matches!(timed, None | Some((1000, true))) && has_next => {
                expire = Some((1000, true, j + 1));
                j += 1;
            }
            b"PXAT" if !keep_ttl && matches!(timed, None | Some((1, true))) && has_next => {
                expire = Some((1, true, j + 1));
                j += 1;
            }
            _ => return SYNTAX_ERROR,
        }
        j += 1;
    }
    let expiry = match expire {
        None if keep_ttl => Expiry::Keep,
        None => Expiry::Never,
        Some((unit, absolute, at)) => {
            let Some(n) = parse_integer(&args[at]) else {
                return NOT_AN_INTEGER;
            };
            let invalid = Reply::static_error("ERR invalid expire time in 'set' command");
            let Some(ms) = n.checked_mul(unit).filter(|_| n > 0) else {
                return invalid;
            };
            let deadline_ms = if absolute {
                Some(ms)
            } else {
                ms.checked_add(unix_ms())
            };
            let Some(deadline_ms) = deadline_ms.filter(|&d| d > 0) else {
                return invalid;
            };
            let left = u64::try_from(deadline_ms.saturating_sub(unix_ms())).unwrap_or(0);
            now.now()
                .checked_add(Duration::from_millis(left))
                .map_or(Expiry::Never, Expiry::At)
        }
    };
    let condition = match (nx, xx) {
        (true, _) => Condition::IfAbsent,
        (_, true) => Condition::IfPresent,
        _ => Condition::Always,
    };
    let value = stored(std::mem::take(&mut args[2]));
    let (written, old) = store.set(&args[1], value, condition, expiry, now);
    match (get, written) {
        (true, _) => old.map_or(Reply::Null, Reply::Bulk),
        (false, true) => Reply::ok(),
        (false, false) => Reply::Null,
    }
}

fn del(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    let n = args[1..].iter().filter(|k| store.remove(k, now)).count();
    Reply::integer(n as i64)
}

fn exists(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    let n = args[1..].iter().filter(|k| store.contains(k, now)).count();
    Reply::integer(n as i64)
}

fn incr_reply(store: &Store, key: &[u8], delta: i64, now: &Clock) -> Reply {
    match store.incr_by(key, delta, now) {
        Ok(n) => Reply::integer(n),
        Err(IncrError::NotAnInteger) => NOT_AN_INTEGER,
        Err(IncrError::Overflow) => {
            Reply::static_error("ERR increment or decrement would overflow")
        }
    }
}

fn incr(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    incr_reply(store, &args[1], 1, now)
}

fn decr(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    incr_reply(store, &args[1], -1, now)
}

fn incrby(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    match parse_integer(&args[2]) {
        Some(delta) => incr_reply(store, &args[1], delta, now),
        None => NOT_AN_INTEGER,
    }
}

fn decrby(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    match parse_integer(&args[2]) {
        Some(i64::MIN) => Reply::static_error("ERR decrement would overflow"),
        Some(delta) => incr_reply(store, &args[1], -delta, now),
        None => NOT_AN_INTEGER,
    }
}

fn mget(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    let values = args[1..]
        .iter()
        .map(|k| store.get(k, now).map_or(Reply::Null, Reply::Bulk))
        .collect();
    Reply::Array(values)
}

fn mset(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    if args.len().is_multiple_of(2) {
        return Reply::static_error("ERR wrong number of arguments for 'mset' command");
    }
    for pair in args[1..].chunks_exact_mut(2) {
        let value = stored(std::mem::take(&mut pair[1]));
        store.set(&pair[0], value, Condition::Always, Expiry::Never, now);
    }
    Reply::ok()
}

fn expire(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    let mut cond = ExpireIf::default();
    for opt in &args[3..] {
        match &opt.to_ascii_lowercase()[..] {
            b"nx" => cond.nx = true,
            b"xx" => cond.xx = true,
            b"gt" => cond.gt = true,
            b"lt" => cond.lt = true,
            _ => {
                let mut text = b"ERR Unsupported option ".to_vec();
                text.extend_from_slice(c_str(opt));
                return Reply::error(text);
            }
        }
    }
    if cond.nx && (cond.xx || cond.gt || cond.lt) {
        return Reply::static_error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
    }
    if cond.gt && cond.lt {
        return Reply::static_error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(seconds) = parse_integer(&args[2]) else {
        return NOT_AN_INTEGER;
    };
    let Some(ms) = seconds
        .checked_mul(1000)
        .filter(|ms| ms.checked_add(unix_ms()).is_some())
    else {
        return Reply::static_error("ERR invalid expire time in 'expire' command");
    };
    let ttl = u64::try_from(ms).ok().map(Duration::from_millis);
    Reply::integer(i64::from(store.expire(&args[1], ttl, cond, now)))
}

fn ttl(store: &Store, args: &mut [ByteBuf], now: &Clock) -> Reply {
    Reply::integer(store.ttl(&args[1], now))
}

fn dbsize(store: &Store, _: &mut [ByteBuf], _: &Clock) -> Reply {
    Reply::integer(store.len() as i64)
}

fn flushall(store: &Store, args: &mut [ByteBuf], _: &Clock) -> Reply {
    match args.get(1).map(|a| a.to_ascii_lowercase()) {
        None => {}
        Some(mode) if args.len() == 2 && (mode == b"sync" || mode == b"async") => {}
        Some(_) => return SYNTAX_ERROR,
    }
    store.flush_all();
    Reply::ok()
}

/// `COMMAND`'s description of one command (Redis 7's ten fields).
fn info(spec: &Spec) -> Reply {
    let texts = |items: &[&'static str]| {
        Reply::Array(items.iter().map(|s| Reply::static_simple(s)).collect())
    };
    Reply::Array(vec![
        Reply::bulk(FrozenBuf::from_static(spec.name.as_bytes())),
        Reply::integer(spec.arity),
        texts(spec.flags),
        Reply::integer(spec.keys.0),
        Reply::integer(spec.keys.1),
        Reply::integer(spec.keys.2),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

/// `COMMAND`, `COMMAND COUNT`, `COMMAND INFO name…`, `COMMAND DOCS` (no
/// docs: clients fall back to their own help).
fn command(_: &Store, args: &mut [ByteBuf], _: &Clock) -> Reply {
    let Some(sub) = args.get(1) else {
        return Reply::Array(COMMANDS.iter().map(info).collect());
    };
    match &sub.to_ascii_lowercase()[..] {
        b"count" if args.len() == 2 => Reply::integer(COMMANDS.len() as i64),
        b"docs" => Reply::Array(Vec::new()),
        b"info" => Reply::Array(
            args[2..]
                .iter()
                .map(|name| find(name).map_or(Reply::Null, info))
                .collect(),
        ),
        _ => {
            let mut text = b"ERR unknown subcommand '".to_vec();
            let sub = c_str(sub);
            text.extend_from_slice(&sub[..sub.len().min(128)]);
            text.extend_from_slice(b"'. Try COMMAND HELP.");
            Reply::error(text)
        }
    }
}
