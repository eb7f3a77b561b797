//! Uploads (`--upload`, issue 11 §2): `PUT` with a `Content-Length`
//! stores the body under the root, 201 when it creates the file and 204
//! when it replaces one, and the connection serves on. The body goes to a
//! hidden temporary in the target's directory, renamed into place once
//! complete: an aborted upload (FIN or reset mid-body) leaves nothing
//! behind, concurrent uploads of one path leave exactly one of their
//! bodies, and a GET of the replaced file is not disturbed.
//!
//! Refused, and nothing is created or modified: no length (411), over
//! `--max-upload` (413, answered after the head, without the body), a
//! directory or a missing parent (409), dotfiles (404), and every path
//! that would leave the root, however encoded or symlinked (403/404);
//! with uploads off, 405. `Expect: 100-continue` gets its interim 100
//! only when the upload is accepted.
//!
//! Sizes and aborts in every mode × trigger × allocator; 256 MiB and the
//! concurrent uploads in every mode × trigger, the allocator alternating.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wharf::Trigger;

use crate::client::{Client, Response, first_difference, request};
use crate::common::{self, Config, Rng, for_each, for_each_parallel, wait_until};
use crate::site::{Site, Spec, data};

/// How long a refusal may take to arrive while the client sends nothing.
pub(crate) const PROMPTLY: Duration = Duration::from_secs(5);

/// How long the server may take to notice a closed connection and clean up.
pub(crate) const CLEANUP: Duration = Duration::from_secs(10);

/// The head of `PUT target` announcing a body of `len` bytes.
pub(crate) fn put_head(target: &str, len: u64, extra: &[(&str, &str)]) -> Vec<u8> {
    let len = len.to_string();
    let mut fields = vec![("Content-Length", len.as_str())];
    fields.extend_from_slice(extra);
    request("PUT", target, &fields)
}

/// Writes `bytes`; if the server stopped taking them, fails with what it
/// answered instead (a refusal that closed the connection says more than
/// the broken pipe).
pub(crate) fn send(client: &mut Client, bytes: &[u8]) {
    if let Err(e) = client.try_send(bytes) {
        let answer = client
            .response(false)
            .map(|r| format!("{} {:?}", r.status, r.text()))
            .unwrap_or_else(|e| format!("nothing ({e})"));
        panic!("the server stopped reading the upload ({e}); it answered {answer}");
    }
}

/// `PUT target` with `body`, head and body in one write: the response.
pub(crate) fn put(client: &mut Client, target: &str, body: &[u8]) -> Response {
    let mut bytes = put_head(target, body.len() as u64, &[]);
    bytes.extend_from_slice(body);
    send(client, &bytes);
    client
        .response(false)
        .unwrap_or_else(|e| panic!("PUT {target}: no response: {e}"))
}

/// Writes `body` in writes of uneven sizes drawn from `rng`: a quarter of a
/// few bytes, the rest up to 256 KiB.
pub(crate) fn send_uneven(client: &mut Client, body: &[u8], rng: &mut Rng) {
    let mut at = 0;
    while at < body.len() {
        let n = if rng.range(0, 3) == 0 {
            rng.range(1, 512)
        } else {
            rng.range(1, 256 << 10)
        };
        let end = (at + n).min(body.len());
        send(client, &body[at..end]);
        at = end;
    }
}

/// How an upload's bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// The head alone, then the body in uneven writes.
    Apart,
    /// The head and the body's first bytes in one write (the server finds
    /// body bytes buffered with the head), the rest in uneven writes.
    WithHead,
    /// The body in uneven writes, its last bytes in one write with a GET
    /// of the same path pipelined behind them (head, body and GET in one
    /// write for the smallest bodies).
    Pipelined,
}

const DELIVERIES: [Delivery; 3] = [Delivery::Apart, Delivery::WithHead, Delivery::Pipelined];

/// Uploads `body` to `target` as `delivery` says: the PUT's response, and
/// for `Pipelined` the GET's.
fn upload(
    client: &mut Client,
    target: &str,
    body: &[u8],
    delivery: Delivery,
    rng: &mut Rng,
) -> (Response, Option<Response>) {
    let head = put_head(target, body.len() as u64, &[]);
    match delivery {
        Delivery::Apart => {
            send(client, &head);
            send_uneven(client, body, rng);
        }
        Delivery::WithHead => {
            let first = if body.is_empty() {
                0
            } else {
                rng.range(1, body.len().min(70_000))
            };
            send(client, &[&head[..], &body[..first]].concat());
            send_uneven(client, &body[first..], rng);
        }
        Delivery::Pipelined => {
            let last = body.len().min(rng.range(1, 4096));
            let split = body.len() - last;
            let mut tail = Vec::new();
            if split == 0 {
                tail.extend_from_slice(&head);
            } else {
                send(client, &head);
                send_uneven(client, &body[..split], rng);
            }
            tail.extend_from_slice(&body[split..]);
            tail.extend_from_slice(&request("GET", target, &[]));
            send(client, &tail);
        }
    }
    let put = client
        .response(false)
        .unwrap_or_else(|e| panic!("PUT {target} ({delivery:?}): no response: {e}"));
    let get = (delivery == Delivery::Pipelined).then(|| {
        client
            .response(false)
            .unwrap_or_else(|e| panic!("GET {target} after its PUT: no response: {e}"))
    });
    (put, get)
}

/// Asserts `response` is `status` (201 or 204) and keeps the connection;
/// a 204 carries no `Content-Length` (RFC 9110 §8.6).
pub(crate) fn assert_stored(response: &Response, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert!(!response.connection_has("close"), "{what}: {response:?}");
    if status == 204 {
        assert_eq!(response.header("content-length"), None, "{what}");
    }
}

/// Asserts that `body` is exactly `want`.
pub(crate) fn assert_same(body: &[u8], want: &[u8], what: &str) {
    assert!(
        body == want,
        "{what}: {} bytes where {} were uploaded, first difference at {:?}",
        body.len(),
        want.len(),
        first_difference(body, want)
    );
}

/// Asserts that the file at `path` holds exactly `want`, read a MiB at a
/// time (a 256 MiB file is not read whole).
pub(crate) fn assert_holds(path: &Path, want: &[u8], what: &str) {
    let mut file =
        File::open(path).unwrap_or_else(|e| panic!("{what}: open {}: {e}", path.display()));
    let len = file.metadata().expect("the file's metadata").len();
    assert_eq!(
        len,
        want.len() as u64,
        "{what}: {} holds {len} bytes where {} were uploaded",
        path.display(),
        want.len()
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0;
    while at < want.len() {
        let n = buf.len().min(want.len() - at);
        file.read_exact(&mut buf[..n]).expect("read the file back");
        if let Some(i) = first_difference(&buf[..n], &want[at..at + n]) {
            panic!(
                "{what}: {} differs from the upload at byte {}",
                path.display(),
                at + i
            );
        }
        at += n;
    }
}

/// The names in `dir`, dotfiles included (`read_dir` hides none), sorted.
pub(crate) fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The dotfiles in `dir`: the temporaries of uploads in progress.
pub(crate) fn temporaries(dir: &Path) -> Vec<String> {
    names_in(dir)
        .into_iter()
        .filter(|name| name.starts_with('.'))
        .collect()
}

/// What a path in a [`tree`] is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Node {
    Dir,
    Link(PathBuf),
    File(Vec<u8>),
}

/// Everything under `dir`, without following symlinks.
pub(crate) fn tree(dir: &Path) -> BTreeMap<PathBuf, Node> {
    let mut found = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(at) = todo.pop() {
        for entry in std::fs::read_dir(&at).expect("read a directory") {
            let path = entry.expect("a directory entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("lstat");
            let node = if meta.is_symlink() {
                Node::Link(std::fs::read_link(&path).expect("readlink"))
            } else if meta.is_dir() {
                todo.push(path.clone());
                Node::Dir
            } else {
                Node::File(std::fs::read(&path).expect("read a file"))
            };
            found.insert(path, node);
        }
    }
    found
}

/// A directory name for `config`'s files (one site serves every
/// configuration at once).
pub(crate) fn dir_name(config: Config) -> String {
    config.to_string().replace('/', "-")
}

/// Every mode × trigger (10), the allocator alternating with the trigger:
/// for the tests whose volume makes all 20 configurations slow.
pub(crate) fn modes_and_triggers() -> Vec<Config> {
    Config::all()
        .into_iter()
        .filter(|c| c.pooled == (c.trigger == Trigger::Edge))
        .collect()
}

/// 0 B to 16 MiB, each size in each way of writing it, in one kept-alive
/// connection: the file on disk (and the GET pipelined behind the PUT) is
/// byte for byte what was sent, and no temporary remains. 16 MiB in one
/// way per configuration (which way rotates), for time.
#[test]
fn uploads_of_0_b_to_16_mib_arrive_byte_exact_in_every_mode_and_trigger() {
    let site = Site::new("upload-sizes");
    let sizes = [0, 1, 1 << 10, (64 << 10) + 1, 1 << 20, 16 << 20];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| data(300 + i as u64, len))
        .collect();
    let configs = Config::all();
    let labels: Vec<String> = configs.iter().map(ToString::to_string).collect();
    for_each_parallel(configs, |config| {
        let index = labels
            .iter()
            .position(|l| *l == config.to_string())
            .expect("a configuration of the list");
        let name = dir_name(config);
        let dir = site.mkdir(&name);
        let running = Spec::new(&site.root).config(config).upload(true).start();
        assert!(running.settings.upload);
        let mut client = running.client();
        let mut rng = Rng::new(index as u64);
        let mut expected = Vec::new();
        for (body, &len) in bodies.iter().zip(&sizes) {
            for (d, delivery) in DELIVERIES.into_iter().enumerate() {
                if len == 16 << 20 && d != index % DELIVERIES.len() {
                    continue;
                }
                let file = format!("{delivery:?}-{len}.bin");
                let target = format!("/{name}/{file}");
                let what = format!("{config}: {len} B {delivery:?}");
                let (put, get) = upload(&mut client, &target, body, delivery, &mut rng);
                assert_stored(&put, 201, &what);
                if let Some(get) = get {
                    assert_eq!(get.status, 200, "{what}: the GET: {get:?}");
                    assert_same(&get.body, body, &format!("{what}: the GET"));
                }
                assert_holds(&dir.join(&file), body, &what);
                expected.push(file);
                expected.sort();
                assert_eq!(names_in(&dir), expected, "{what}: what the directory holds");
            }
        }
        // The connection still serves.
        let response = client.get(&format!("/{name}/Apart-1.bin"));
        assert_eq!(response.status, 200, "{config}: {response:?}");
        assert_same(
            &response.body,
            &bodies[1],
            &format!("{config}: a GET at the end"),
        );
    });
}

/// A quarter GiB in every mode × trigger, the allocator alternating: head
/// and first bytes in one write with the pooled allocator, apart with the
/// other. In a debug build on two cores the 10 uploads take about 1.3 s
/// (spliced into the file) and making the pattern 3 s; a server that
/// copies through memory takes up to 2 s per upload, so not all 20.
#[test]
fn a_256_mib_upload_arrives_byte_exact_in_every_mode_and_trigger() {
    let site = Site::new("upload-256m");
    let body = data(256, 256 << 20);
    for_each(modes_and_triggers(), |config| {
        let delivery = if config.pooled {
            Delivery::WithHead
        } else {
            Delivery::Apart
        };
        let running = Spec::new(&site.root).config(config).upload(true).start();
        let mut client = running.client();
        let what = format!("{config}: 256 MiB {delivery:?}");
        let (put, _) = upload(
            &mut client,
            "/quarter.bin",
            &body,
            delivery,
            &mut Rng::new(256),
        );
        assert_stored(&put, 201, &what);
        assert_holds(&site.root.join("quarter.bin"), &body, &what);
        assert_eq!(names_in(&site.root), ["quarter.bin"], "{what}");
        std::fs::remove_file(site.root.join("quarter.bin")).expect("remove the upload");
    });
}

/// 201 when the file is new, 204 (no body) when it is replaced, whether the
/// new bytes are fewer or more; a GET on the same connection sees each
/// version, and a PUT, PUT, GET pipelined in one write are answered in
/// order.
#[test]
fn a_new_file_is_201_a_replaced_one_204_and_a_get_after_sees_the_new_bytes() {
    let site = Site::new("upload-201-204");
    for_each_parallel(Config::all(), |config| {
        let name = dir_name(config);
        let dir = site.mkdir(&name);
        site.mkdir(&format!("{name}/sub"));
        let running = Spec::new(&site.root).config(config).upload(true).start();
        let mut client = running.client();
        let target = format!("/{name}/doc.txt");
        let versions = [data(1, 1000), data(2, 10), data(3, 100 << 10), Vec::new()];
        for (i, body) in versions.iter().enumerate() {
            let what = format!("{config}: version {i} ({} B)", body.len());
            let response = put(&mut client, &target, body);
            assert_stored(&response, if i == 0 { 201 } else { 204 }, &what);
            if response.status == 204 {
                assert!(response.body.is_empty(), "{what}: a 204 with a body");
            }
            let got = client.get(&target);
            assert_eq!(got.status, 200, "{what}: {got:?}");
            assert_same(&got.body, body, &what);
            assert_holds(&dir.join("doc.txt"), body, &what);
        }
        let response = put(
            &mut client,
            &format!("/{name}/sub/new.bin"),
            b"in a subdirectory",
        );
        assert_stored(&response, 201, &format!("{config}: in a subdirectory"));
        assert_holds(
            &dir.join("sub/new.bin"),
            b"in a subdirectory",
            &format!("{config}: in a subdirectory"),
        );
        // Two PUTs and a GET in one write.
        let target = format!("/{name}/piped.txt");
        let mut bytes = put_head(&target, 5, &[]);
        bytes.extend_from_slice(b"first");
        bytes.extend_from_slice(&put_head(&target, 6, &[]));
        bytes.extend_from_slice(b"second");
        bytes.extend_from_slice(&request("GET", &target, &[]));
        send(&mut client, &bytes);
        let what = format!("{config}: pipelined");
        let first = client.response(false).expect("the first PUT's response");
        assert_stored(&first, 201, &what);
        let second = client.response(false).expect("the second PUT's response");
        assert_stored(&second, 204, &what);
        let got = client.response(false).expect("the GET's response");
        assert_eq!(
            (got.status, got.body.as_slice()),
            (200, &b"second"[..]),
            "{what}"
        );
        assert_eq!(names_in(&dir), ["doc.txt", "piped.txt", "sub"], "{config}");
    });
}

/// How a client walks away from an upload.
#[derive(Debug, Clone, Copy)]
enum Abort {
    /// Closes: a FIN.
    Fin,
    /// Resets (`SO_LINGER` 0).
    Reset,
}

fn abort(mut client: Client, how: Abort) {
    if let Abort::Reset = how {
        socket2::SockRef::from(&*client.stream())
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER 0");
    }
    drop(client);
}

/// A client that closes or resets after the head, mid-body or one byte
/// short leaves nothing behind: no new file, no temporary, the replaced
/// file untouched. Cut mid-body only once the server has written some of
/// it to its temporary, so the abort finds an upload in progress. The
/// server serves on.
#[test]
fn an_aborted_upload_leaves_no_file_and_no_temporary_in_every_mode_and_trigger() {
    let site = Site::new("upload-aborts");
    let body = data(8, (1 << 20) + 3);
    let old = data(7, 100_000);
    for_each_parallel(Config::all(), |config| {
        let name = dir_name(config);
        let dir = site.mkdir(&name);
        std::fs::write(dir.join("keep.bin"), &old).expect("the file to replace");
        let running = Spec::new(&site.root).config(config).upload(true).start();
        let mut rng = Rng::new(9);
        for file in ["new.bin", "keep.bin"] {
            for how in [Abort::Fin, Abort::Reset] {
                for cut in [0, body.len() / 2, body.len() - 1] {
                    let what = format!("{config}: {file}, {how:?} after {cut} body bytes");
                    let mut client = running.client();
                    let mut bytes = put_head(&format!("/{name}/{file}"), body.len() as u64, &[]);
                    bytes.extend_from_slice(&body[..cut.min(1000)]);
                    send(&mut client, &bytes);
                    send_uneven(&mut client, &body[cut.min(1000)..cut], &mut rng);
                    if cut > 0 {
                        wait_until(CLEANUP, &format!("{what}: a temporary"), || {
                            !temporaries(&dir).is_empty()
                        });
                    }
                    abort(client, how);
                    common::wait_for_no_connections(&running.server);
                    wait_until(CLEANUP, &format!("{what}: nothing left"), || {
                        names_in(&dir) == ["keep.bin"]
                    });
                    assert_holds(&dir.join("keep.bin"), &old, &what);
                }
            }
        }
        // The server serves on, the aborted path included.
        let mut client = running.client();
        let got = client.get(&format!("/{name}/keep.bin"));
        assert_eq!(got.status, 200, "{config}: {got:?}");
        assert_same(&got.body, &old, &format!("{config}: after the aborts"));
        let response = put(&mut client, &format!("/{name}/new.bin"), &body);
        assert_stored(&response, 201, &format!("{config}: after the aborts"));
        assert_holds(&dir.join("new.bin"), &body, &format!("{config}: after"));
        assert_eq!(names_in(&dir), ["keep.bin", "new.bin"], "{config}");
    });
}

pub(crate) const PAYLOAD: &[u8] = b"UPLOADED-PAYLOAD-5d1e";
pub(crate) const SECRET: &[u8] = b"TOP-SECRET-a7f3c9";

/// Concurrent uploads of one path: 8 clients × 4 MiB of distinct bytes,
/// written a chunk of each in turn, leave exactly one of the bodies whole
/// and no temporary. Then 4 uploads held one byte short and finished one
/// at a time: after each, the file is the one just finished (the last
/// complete upload wins). Every mode × trigger, the allocator
/// alternating (33 MiB each: all 20 would double the time for little).
#[test]
fn concurrent_uploads_of_one_path_leave_exactly_one_whole_body() {
    let site = Site::new("upload-concurrent");
    let bodies: Vec<Vec<u8>> = (0..8).map(|c| data(500 + c, 4 << 20)).collect();
    let short: Vec<Vec<u8>> = (0..4).map(|c| data(600 + c, 256 << 10)).collect();
    for_each(modes_and_triggers(), |config| {
        let name = dir_name(config);
        let dir = site.mkdir(&name);
        let running = Spec::new(&site.root).config(config).upload(true).start();
        let target = format!("/{name}/same.bin");
        let mut rng = Rng::new(800);
        let mut clients: Vec<Client> = bodies.iter().map(|_| running.client()).collect();
        let mut sent = vec![0usize; bodies.len()];
        for (client, body) in clients.iter_mut().zip(&bodies) {
            send(client, &put_head(&target, body.len() as u64, &[]));
        }
        while sent.iter().zip(&bodies).any(|(&at, body)| at < body.len()) {
            for (c, client) in clients.iter_mut().enumerate() {
                let body = &bodies[c];
                let end = (sent[c] + rng.range(1, 128 << 10)).min(body.len());
                if sent[c] < end {
                    send(client, &body[sent[c]..end]);
                    sent[c] = end;
                }
            }
        }
        for (c, client) in clients.iter_mut().enumerate() {
            let response = client.response(false).expect("the PUT's response");
            assert!(
                matches!(response.status, 201 | 204),
                "{config}: client {c}: {response:?}"
            );
        }
        drop(clients);
        assert_eq!(names_in(&dir), ["same.bin"], "{config}: no temporary");
        let stored = std::fs::read(dir.join("same.bin")).expect("read the upload");
        assert!(
            bodies.contains(&stored),
            "{config}: {} bytes that are none of the bodies (the first 8: {:?})",
            stored.len(),
            &stored[..stored.len().min(8)]
        );

        // The last complete one wins.
        let target = format!("/{name}/ordered.bin");
        let mut clients: Vec<Client> = short.iter().map(|_| running.client()).collect();
        for (client, body) in clients.iter_mut().zip(&short) {
            send(client, &put_head(&target, body.len() as u64, &[]));
            send_uneven(client, &body[..body.len() - 1], &mut rng);
        }
        for (n, c) in [2, 0, 3, 1].into_iter().enumerate() {
            let what = format!("{config}: upload {c}, finished {n}th");
            let body = &short[c];
            send(&mut clients[c], &body[body.len() - 1..]);
            let response = clients[c].response(false).expect("the PUT's response");
            let allowed: &[u16] = if n == 0 { &[201] } else { &[201, 204] };
            assert!(allowed.contains(&response.status), "{what}: {response:?}");
            assert_holds(&dir.join("ordered.bin"), body, &what);
        }
        drop(clients);
        common::wait_for_no_connections(&running.server);
        assert_eq!(names_in(&dir), ["ordered.bin", "same.bin"], "{config}");
    });
}

/// Replacing a file that a GET is sending does not change what that GET
/// sends: the rename leaves the old file to the open descriptor. With
/// every transfer strategy, the reader holding back (small socket buffers
/// both ends) so the GET is in progress while the PUT replaces the file.
#[test]
fn replacing_a_file_does_not_corrupt_a_get_in_progress() {
    let site = Site::new("upload-under-get");
    let old = data(70, 8 << 20);
    let new = data(71, (8 << 20) - 5);
    for send in crate::transfers::SENDS {
        let what = send.label;
        site.write("big.bin", &old);
        let running = send.spec(&site).upload(true).send_buffer(64 << 10).start();
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket.set_recv_buffer_size(64 << 10).expect("SO_RCVBUF");
        socket
            .connect(&running.server.local_addr().into())
            .expect("connect");
        let stream: std::net::TcpStream = socket.into();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let mut reader = Client::from_stream(stream);
        reader.send(&request("GET", "/big.bin", &[]));
        let head = reader.response_head().expect("the GET's head");
        assert_eq!(head.content_length(), Some(old.len() as u64), "{what}");
        let first = reader.body_bytes(1 << 10).expect("the first bytes");

        let mut writer = running.client();
        let response = put(&mut writer, "/big.bin", &new);
        assert_stored(&response, 204, what);
        assert_holds(&site.root.join("big.bin"), &new, what);

        let rest = reader
            .body_bytes(old.len() - first.len())
            .expect("the rest of the GET");
        assert_same(&[first, rest].concat(), &old, &format!("{what}: the GET"));
        let again = reader.get("/big.bin");
        assert_same(&again.body, &new, &format!("{what}: the next GET"));
        drop((reader, writer));
        common::wait_for_no_connections(&running.server);
        assert_eq!(names_in(&site.root), ["big.bin"], "{what}");
    }
}
