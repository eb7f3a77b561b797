//! Running out of descriptors (issue 9, point 3). With `ulimit -n 256`
//! and the default `--max-connections` of 10 000, the server used to
//! accept until no descriptor was left to open files: most clients got a
//! 503 on a connection that then stayed open for the keep-alive time, and
//! the rest no answer at all. Now the connection limit is capped to what
//! the descriptor limit allows (said at start-up), every 503 closes its
//! connection, and a file that cannot be opened for `EMFILE` is a 503
//! that closes. In every reactor mode × trigger: accepting and closing
//! run through the loops.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::child::{ServerProcess, mode_args};
use crate::client::{Client, Response, request};
use crate::common::{self, Config};
use crate::site::Site;

fn configs() -> Vec<Config> {
    Config::all().into_iter().filter(|c| c.pooled).collect()
}

/// Checks what a 503 must carry, and that the connection then closes;
/// then closes it, as a client does at the end of the stream.
fn check_503(what: &str, response: &Response, client: &mut Client) {
    assert!(
        response.connection_has("close"),
        "{what}: a 503 without Connection: close: {response:?}"
    );
    assert!(
        response.header("retry-after").is_some(),
        "{what}: a 503 without Retry-After: {response:?}"
    );
    client.expect_closed();
    let _ = client.stream().shutdown(std::net::Shutdown::Both);
}

pub fn three_hundred_clients_with_256_descriptors_all_get_an_answer() {
    const CLIENTS: usize = 300;
    let site = Site::new("nofile-256");
    site.write("a.txt", b"hello\n");
    common::for_each(configs(), |config| {
        let what = config.to_string();
        let mut flags = mode_args(config);
        flags.extend(["--keepalive-timeout".to_string(), "30".to_string()]);
        let mut server = ServerProcess::start(&site.root, &flags, Some(256));
        let addr = server.addr;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        // Each connects and sends one request; then all wait for answers.
        let mut clients: Vec<Client> = (0..CLIENTS)
            .map(|i| {
                let stream = TcpStream::connect(addr)
                    .unwrap_or_else(|e| panic!("{what}: client {i}: connect: {e}"));
                let mut client = Client::from_stream(stream);
                client.send(&request("GET", "/a.txt", &[]));
                client
            })
            .collect();
        let (mut ok, mut busy) = (0, 0);
        for (i, client) in clients.iter_mut().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            client.read_timeout(left.max(Duration::from_millis(1)));
            let response = client.response(false).unwrap_or_else(|e| {
                panic!(
                    "{what}: client {i} of {CLIENTS} got no answer within 5 s ({ok} got 200, \
                     {busy} got 503 before it): {e}"
                )
            });
            match response.status {
                200 => ok += 1,
                503 => {
                    busy += 1;
                    check_503(&format!("{what}: client {i}"), &response, client);
                }
                other => panic!("{what}: client {i}: {other} {response:?}"),
            }
        }
        let took = started.elapsed();
        eprintln!("{what}: {ok} × 200 and {busy} × 503 in {took:?}");
        assert!(ok > 0, "{what}: nobody was served");
        // They leave; the next one is served (once the server has seen
        // them go: a 503 until then).
        drop(clients);
        common::wait_until(
            Duration::from_secs(5),
            &format!("{what}: a 200 for a client after the crowd"),
            || {
                let mut late = Client::connect(addr);
                late.read_timeout(Duration::from_secs(5));
                late.get("/a.txt").status == 200
            },
        );
        let line = server.wait_for_line(Duration::from_secs(1), |l| {
            l.starts_with("connections: at most")
        });
        assert!(
            line.contains("capped") && line.contains("256"),
            "{what}: the start-up line {line:?}"
        );
    });
}

pub fn a_file_that_cannot_be_opened_for_emfile_is_503_and_a_close() {
    const REQUESTS: usize = 200;
    let site = Site::new("nofile-64");
    site.write("t.txt", b"t");
    common::for_each(configs(), |config| {
        let what = config.to_string();
        // Without the open-file cache, which would send every response
        // from one descriptor (and never run out).
        let mut flags = mode_args(config);
        flags.extend(["--open-file-cache".to_string(), "0".to_string()]);
        let mut server = ServerProcess::start(&site.root, &flags, Some(64));
        // One client pipelines many requests for a small file: the server
        // opens one descriptor per response queued, and runs out.
        let mut client = Client::connect(server.addr);
        let one = request("GET", "/t.txt", &[]);
        client.send(&one.repeat(REQUESTS));
        let mut ok = 0;
        loop {
            let response = client.response(false).unwrap_or_else(|e| {
                panic!(
                    "{what}: the connection ended after {ok} answers and no 503: {e}; the \
                     server's output: {:#?}",
                    server.drain_output()
                )
            });
            match response.status {
                200 => ok += 1,
                503 => {
                    check_503(
                        &format!("{what}: after {ok} answers"),
                        &response,
                        &mut client,
                    );
                    break;
                }
                other => panic!("{what}: {other} {response:?}"),
            }
            assert!(ok < REQUESTS, "{what}: every request was served: no EMFILE");
        }
        // The descriptors came back: the next client is served.
        let mut next = Client::connect(server.addr);
        assert_eq!(next.get("/t.txt").body, b"t", "{what}");
        drop(next);
        let _ = server.drain_output();
    });
}
