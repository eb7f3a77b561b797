//! `ChunkedFile`: a file sent in chunks that the handler transforms, only
//! while the channel is writable. In every mode × trigger × allocator: a
//! slow reader gets every byte, transformed, in order, while the server's
//! queue stays within the high water mark plus one chunk; a file shorter
//! than its range fails with an error and ends the connection; an empty
//! range completes at once.

mod common;

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Config, connect, pattern};
use wharf::buf::ByteBuf;
use wharf::{ChunkedFile, Context, Handler, Pipeline};

const CHUNK: usize = 16 << 10;
const HIGH: usize = 64 << 10;
const LOW: usize = 32 << 10;
const KEY: u8 = 0x5a;

/// Sends its chunked file XORed with `KEY`, then closes.
struct Scrambler {
    file: ChunkedFile,
    max_pending: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl Scrambler {
    fn pump(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        let result = self.file.write_while_writable(ctx, |mut chunk| {
            chunk.iter_mut().for_each(|b| *b ^= KEY);
            chunk
        });
        self.max_pending
            .fetch_max(ctx.pending_outbound_bytes(), Ordering::Relaxed);
        match result {
            Ok(true) => ctx.close(),
            Ok(false) => {}
            Err(e) => {
                self.errors.lock().expect("errors").push(e.to_string());
                ctx.close();
            }
        }
    }
}

impl Handler for Scrambler {
    type In = ByteBuf;
    type Out = ByteBuf;

    fn on_active(&mut self, ctx: &mut Context<'_, ByteBuf>) {
        self.pump(ctx);
    }

    fn on_read(&mut self, _ctx: &mut Context<'_, ByteBuf>, _msg: ByteBuf) {}

    fn on_writability_changed(&mut self, ctx: &mut Context<'_, ByteBuf>, writable: bool) {
        if writable {
            self.pump(ctx);
        }
    }
}

struct Served {
    server: wharf::Server,
    max_pending: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
}

fn serve(config: Config, file: &Arc<File>, count: u64) -> Served {
    let max_pending = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let (f, m, e) = (
        Arc::clone(file),
        Arc::clone(&max_pending),
        Arc::clone(&errors),
    );
    let server = config
        .server()
        .water_mark(LOW, HIGH)
        .child_handler(move || {
            Pipeline::bytes(Scrambler {
                file: ChunkedFile::new(Arc::clone(&f), 0, count).with_chunk_size(CHUNK),
                max_pending: Arc::clone(&m),
                errors: Arc::clone(&e),
            })
        })
        .bind("127.0.0.1:0")
        .expect("bind");
    Served {
        server,
        max_pending,
        errors,
    }
}

fn temp_file(name: &str, data: &[u8]) -> (PathBuf, Arc<File>) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chunked-{name}-{}", std::process::id()));
    std::fs::write(&path, data).expect("write the file");
    let file = Arc::new(File::open(&path).expect("open the file"));
    (path, file)
}

#[test]
fn a_slow_reader_gets_every_transformed_byte_within_the_water_mark() {
    let data = pattern(21, 4 << 20);
    let (path, file) = temp_file("slow", &data);
    common::for_each(Config::all(), |config| {
        let served = serve(config, &file, data.len() as u64);
        let mut client = connect(served.server.local_addr());
        let mut got = Vec::with_capacity(data.len());
        let mut buf = vec![0u8; 32 << 10];
        loop {
            let n = client.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            // A slow reader: a pause every 512 KiB.
            if got.len() % (512 << 10) < n {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        assert_eq!(got.len(), data.len(), "{config}: length");
        assert!(
            got.iter().zip(&data).all(|(g, d)| *g == d ^ KEY),
            "{config}: the transformed bytes differ"
        );
        let max = served.max_pending.load(Ordering::Relaxed);
        assert!(
            max <= HIGH + CHUNK + 64,
            "{config}: {max} bytes queued, more than {HIGH} + one {CHUNK}-byte chunk"
        );
        assert!(served.errors.lock().expect("errors").is_empty(), "{config}");
    });
    std::fs::remove_file(path).expect("remove");
}

#[test]
fn a_file_shorter_than_its_range_ends_the_connection_with_an_error() {
    let data = pattern(22, 100_000);
    let (path, file) = temp_file("short", &data);
    common::for_each(Config::all(), |config| {
        let served = serve(config, &file, data.len() as u64 + 5000);
        let mut client = connect(served.server.local_addr());
        let (got, _end) = common::read_until_closed(&mut client);
        assert!(got.len() <= data.len(), "{config}: more than the file");
        assert!(
            got.iter().zip(&data).all(|(g, d)| *g == d ^ KEY),
            "{config}: the bytes before the error"
        );
        common::wait_until(Duration::from_secs(5), "the error", || {
            !served.errors.lock().expect("errors").is_empty()
        });
        let error = served.errors.lock().expect("errors")[0].clone();
        assert!(
            error.contains("file ended at byte 100000"),
            "{config}: {error}"
        );
    });
    std::fs::remove_file(path).expect("remove");
}

#[test]
fn an_empty_range_completes_at_once() {
    let (path, file) = temp_file("empty", b"");
    common::for_each(Config::all(), |config| {
        let served = serve(config, &file, 0);
        let mut client = connect(served.server.local_addr());
        let got = common::read_to_end(&mut client).expect("a clean end");
        assert!(got.is_empty(), "{config}");
    });
    std::fs::remove_file(path).expect("remove");
}
