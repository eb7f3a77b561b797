//! Long byte streams (hundreds of MiB) that are cheap to make and to check,
//! even in a debug build: stream byte `i` lies in block `i / BLOCK`, which
//! is a window of one random base buffer starting at an offset that
//! differs per block. A lost, repeated or reordered block, or a shifted
//! byte, shows at the first byte that differs; writing and checking are
//! slice copies and compares.

use std::io::{self, Read, Write};
use std::sync::Arc;

/// Bytes per block.
const BLOCK: usize = 64 << 10;
/// Distinct block offsets into the base buffer.
const OFFSETS: usize = 4093;

/// One stream's contents: `len` bytes derived from `seed`.
#[derive(Debug, Clone)]
pub struct PatternStream {
    base: Arc<Vec<u8>>,
    pub len: u64,
}

impl PatternStream {
    pub fn new(seed: u64, len: u64) -> PatternStream {
        PatternStream {
            base: Arc::new(super::pattern(seed, BLOCK + OFFSETS)),
            len,
        }
    }

    /// The expected bytes from stream offset `at`, as far as the block
    /// `at` is in goes (at most `max`).
    fn expected(&self, at: u64, max: usize) -> &[u8] {
        let block = (at / BLOCK as u64) as usize;
        let within = (at % BLOCK as u64) as usize;
        let start = (block.wrapping_mul(61)) % OFFSETS + within;
        let n = (BLOCK - within)
            .min(max)
            .min(usize::try_from(self.len - at).unwrap_or(usize::MAX));
        &self.base[start..start + n]
    }

    /// Writes the whole stream to `out`.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut at = 0;
        while at < self.len {
            let chunk = self.expected(at, BLOCK);
            out.write_all(chunk)?;
            at += chunk.len() as u64;
        }
        Ok(())
    }

    /// A checker of received bytes.
    pub fn checker(&self) -> Checker {
        Checker {
            stream: self.clone(),
            at: 0,
        }
    }

    /// Reads `input` to its end and checks it: `Ok` with the bytes read if
    /// they are the stream exactly, else what went wrong.
    pub fn check_reader(&self, input: &mut impl Read) -> Result<u64, String> {
        let mut checker = self.checker();
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => checker.feed(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("after {} bytes: {e}", checker.at)),
            }
        }
        checker.finish()
    }
}

/// Checks a stream's bytes as they arrive.
#[derive(Debug)]
pub struct Checker {
    stream: PatternStream,
    pub at: u64,
}

impl Checker {
    /// Checks the next bytes.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), String> {
        while !data.is_empty() {
            if self.at >= self.stream.len {
                return Err(format!(
                    "{} bytes more than the {} sent",
                    data.len(),
                    self.stream.len
                ));
            }
            let expected = self.stream.expected(self.at, data.len());
            let n = expected.len();
            if data[..n] != *expected {
                let k = (0..n).find(|&k| data[k] != expected[k]).unwrap_or(0);
                return Err(format!("byte {} differs", self.at + k as u64));
            }
            self.at += n as u64;
            data = &data[n..];
        }
        Ok(())
    }

    /// Whether everything arrived: `Ok` with the length, or how short.
    pub fn finish(&self) -> Result<u64, String> {
        if self.at == self.stream.len {
            Ok(self.at)
        } else {
            Err(format!(
                "ended after {} of {} bytes",
                self.at, self.stream.len
            ))
        }
    }
}
