//! Redis's two text parsers, byte for byte: `string2ll` (the integers of
//! the protocol's headers and of commands such as `INCRBY`) and
//! `sdssplitargs` (the arguments of an inline command). A server that is
//! to answer as Redis does must accept and refuse exactly what these do:
//! Rust's own `str::parse` takes `+5` and `007`, which Redis refuses.

/// Redis's `LONG_STR_SIZE`: a number of 21 or more bytes is refused.
const LONG_STR_SIZE: usize = 21;

/// Parses `s` as Redis's `string2ll` does: optional `-`, then `0` alone or
/// a digit 1–9 followed by digits, within `i64`; no sign `+`, no leading
/// zeros, no spaces, nothing after the digits, at most 20 bytes.
///
/// ```
/// use wharf_codec::resp::parse_integer;
///
/// assert_eq!(parse_integer(b"-42"), Some(-42));
/// assert_eq!(parse_integer(b"9223372036854775807"), Some(i64::MAX));
/// assert_eq!(parse_integer(b"+1"), None);
/// assert_eq!(parse_integer(b"01"), None);
/// assert_eq!(parse_integer(b"-0"), None);
/// assert_eq!(parse_integer(b" 1"), None);
/// ```
pub fn parse_integer(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= LONG_STR_SIZE {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (&first, rest) = digits.split_first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut value = u64::from(first - b'0');
    for &d in rest {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        // Down to i64::MIN, whose magnitude is one more than i64::MAX.
        0i64.checked_sub_unsigned(value)
    } else {
        i64::try_from(value).ok()
    }
}

/// C's `isspace` in the C locale.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The bytes that end an unquoted argument of `sdssplitargs` (a NUL too,
/// where the line has one): not `\v` or `\f`, which `isspace` skips
/// between arguments.
pub(crate) fn ends_word(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t' | 0)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|v| u8::try_from(v).ok())
}

/// Splits an inline command line into arguments as Redis's `sdssplitargs`
/// does; `None` for unbalanced quotes (Redis's "unbalanced quotes in
/// request").
///
/// Arguments are separated by blanks. In `"double quotes"` the escapes
/// `\xHH`, `\n`, `\r`, `\t`, `\b`, `\a` and `\<any>` are decoded; in
/// `'single quotes'` only `\'`. A closing quote must be followed by a blank
/// or the end. As in C, a NUL byte ends the line (what follows is
/// ignored; inside quotes it leaves them unbalanced).
///
/// ```
/// use wharf_codec::resp::split_args;
///
/// let args = split_args(br#"SET "a key" 'it\'s' "\x41\n""#).unwrap();
/// assert_eq!(args, [&b"SET"[..], b"a key", b"it's", b"A\n"]);
/// assert_eq!(split_args(b"GET \"x"), None);
/// assert_eq!(split_args(b"ECHO \"a\"b"), None);
/// ```
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // A C string: it ends at the first NUL.
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => line.get(..nul).unwrap_or_default(),
        None => line,
    };
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(at(i)) {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut current = Vec::new();
        let (mut in_double, mut in_single) = (false, false);
        loop {
            let c = at(i);
            if in_double {
                let hex = (hex_value(at(i + 2)), hex_value(at(i + 3)));
                if let (b'\\', b'x', (Some(hi), Some(lo))) = (c, at(i + 1), hex) {
                    current.push(hi * 16 + lo);
                    i += 4;
                    continue;
                }
                if c == b'\\' && at(i + 1) != 0 {
                    i += 1;
                    current.push(match at(i) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a blank or
                    // nothing at all.
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return None;
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_single {
                if c == b'\\' && at(i + 1) == b'\'' {
                    i += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(i + 1) != 0 && !is_space(at(i + 1)) {
                        return None;
                    }
                    i += 1;
                    break;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    // Only these end an unquoted argument (not \v or \f).
                    c if ends_word(c) => break,
                    b'"' => in_double = true,
                    b'\'' => in_single = true,
                    _ => current.push(c),
                }
            }
            i += 1;
        }
        args.push(current);
    }
}
