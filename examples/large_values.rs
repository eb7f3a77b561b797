//! How long a server takes to receive one large value: a Redis `SET` of
//! 1 MB to 400 MB, sent by the same client to each server given, in
//! alternating rounds, timed from the first byte sent to the `+OK`.
//!
//! ```text
//! redis-server --port 6390 --save '' --appendonly no --proto-max-bulk-len 1gb &
//! cargo run --release --example kv_server -- --addr 127.0.0.1:6391 &
//! cargo run --release --example large_values -- --target redis=127.0.0.1:6390 --target wharf=127.0.0.1:6391
//! ```
//!
//! A server that grows its input buffer in fixed steps copies a value
//! over and over and takes time quadratic in its size; one that reserves
//! the value's size once (Redis for bulks of 32 KiB and more; wharf's RESP
//! codec through `Codec::size_hint`) takes linear time. The table gives the
//! median over the rounds, each server's time per MB (flat when linear),
//! and the ratio to the first target.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;

/// Times large SETs against RESP servers.
#[derive(Debug, Parser)]
struct Args {
    /// A server to time, as NAME=ADDR (repeat; the first is the reference).
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// Value sizes in MB (10^6 bytes).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64,100,200,400")]
    sizes: Vec<usize>,
    /// Rounds per size and server (alternating servers).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Also print every round's time.
    #[arg(long)]
    each: bool,
}

/// One `SET` of `value` under `key`; returns how long it took.
fn set(addr: SocketAddr, key: &str, value: &[u8]) -> io::Result<Duration> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(120)))?;
    let head = format!(
        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${}\r\n",
        key.len(),
        value.len()
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes())?;
    for chunk in value.chunks(4 << 20) {
        stream.write_all(chunk)?;
    }
    stream.write_all(b"\r\n")?;
    let mut reply = [0u8; 5];
    stream.read_exact(&mut reply)?;
    let took = started.elapsed();
    if &reply != b"+OK\r\n" {
        return Err(io::Error::other(format!(
            "{addr} answered {:?}",
            String::from_utf8_lossy(&reply)
        )));
    }
    // Free the server's memory before the next size.
    stream.write_all(b"*2\r\n$3\r\nDEL\r\n")?;
    stream.write_all(format!("${}\r\n{key}\r\n", key.len()).as_bytes())?;
    let mut deleted = [0u8; 4];
    stream.read_exact(&mut deleted)?;
    Ok(took)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> io::Result<()> {
    let args = Args::parse();
    let targets: Vec<(String, SocketAddr)> = args
        .targets
        .iter()
        .map(|t| {
            let (name, addr) = t
                .split_once('=')
                .ok_or_else(|| io::Error::other(format!("--target {t}: expected NAME=ADDR")))?;
            let addr = addr
                .parse()
                .map_err(|e| io::Error::other(format!("--target {t}: {e}")))?;
            Ok((name.to_string(), addr))
        })
        .collect::<io::Result<_>>()?;
    let largest = args.sizes.iter().max().copied().unwrap_or(1) * 1_000_000;
    let value: Vec<u8> = (0..largest).map(|i| b'a' + (i % 26) as u8).collect();
    print!("| value |");
    for (name, _) in &targets {
        print!(" {name} ms | {name} ms/MB |");
    }
    for (name, _) in &targets[1..] {
        print!(" {name} / {} |", targets[0].0);
    }
    println!();
    println!("|---|{}", "---|".repeat(3 * targets.len() - 1));
    for &mb in &args.sizes {
        let value = &value[..mb * 1_000_000];
        let mut times = vec![Vec::new(); targets.len()];
        for round in 0..args.rounds {
            // Alternate which server goes first.
            for k in 0..targets.len() {
                let i = (k + round) % targets.len();
                let took = set(targets[i].1, "large", value)?;
                if args.each {
                    eprintln!("{mb} MB, round {round}, {}: {took:?}", targets[i].0);
                }
                times[i].push(took);
            }
        }
        let medians: Vec<Duration> = times.into_iter().map(median).collect();
        print!("| {mb} MB |");
        for m in &medians {
            let ms = m.as_secs_f64() * 1e3;
            print!(" {ms:.1} | {:.2} |", ms / mb as f64);
        }
        for m in &medians[1..] {
            print!(" {:.2}× |", m.as_secs_f64() / medians[0].as_secs_f64());
        }
        println!();
    }
    Ok(())
}
