//! A minimal RESP client for the tests: requests as arrays of bulk
//! strings, replies read whole and returned as the bytes they came as.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};

/// The length of the reply at the front of `data`, if it is all there.
pub fn reply_len(data: &[u8]) -> Option<usize> {
    let cr = data.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&data[1..cr]).ok()?;
    let after = cr + 2;
    match data.first()? {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let end = after + n as usize + 2;
            (data.len() >= end).then_some(end)
        }
        b'*' => {
            let n: i64 = line.parse().ok()?;
            let mut at = after;
            for _ in 0..n.max(0) {
                at += reply_len(&data[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// A request of `args` as an array of bulk strings.
pub fn request(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A connection to a RESP server.
pub struct Client {
    pub stream: TcpStream,
    pending: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        Client {
            stream: crate::common::connect(addr),
            pending: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).expect("send to the server");
    }

    /// Reads one whole reply.
    pub fn reply(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 64 << 10];
        loop {
            if let Some(n) = reply_len(&self.pending) {
                return Ok(self.pending.drain(..n).collect());
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Sends a command and reads its reply, as text (lossy).
    pub fn call(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&request(&args));
        String::from_utf8_lossy(&self.reply().expect("a reply")).into_owned()
    }

    /// Reads until the server closes: what came before the end.
    pub fn rest(&mut self) -> Vec<u8> {
        let (data, _) = crate::common::read_until_closed(&mut self.stream);
        let mut all = std::mem::take(&mut self.pending);
        all.extend_from_slice(&data);
        all
    }
}
