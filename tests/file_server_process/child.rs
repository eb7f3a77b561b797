//! The file server in a child process: this test binary again, told by
//! an environment variable to be the server, so that it has its own signal
//! mask, its own descriptor limit, and an exit status.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use crossbeam_channel::{Receiver, unbounded};

use crate::common::Config;

/// Set in the child: be the file server, with the process's arguments as
/// its flags.
const SERVE: &str = "WHARF_FILE_SERVER_PROCESS";
/// Set in the child: lower the descriptor limit, soft and hard, to this
/// (as `ulimit -n` does) before anything else.
const NOFILE: &str = "WHARF_FILE_SERVER_NOFILE";

/// In the child: runs the file server exactly as the example's `main`
/// does, and gives its exit code. `None` in the parent.
pub fn serve_if_child() -> Option<ExitCode> {
    std::env::var_os(SERVE)?;
    if let Some(limit) = std::env::var(NOFILE)
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        let both = libc::rlimit {
            rlim_cur: limit as libc::rlim_t,
            rlim_max: limit as libc::rlim_t,
        };
        // SAFETY: `both` is a valid, initialised rlimit that outlives the call.
        let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &both) };
        assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
    }
    let args = crate::serve::Args::parse_from(std::env::args_os());
    Some(crate::serve::main(args))
}

/// The flags that select `config`'s reactor mode and trigger.
pub fn mode_args(config: Config) -> Vec<String> {
    let mut args = vec!["--mode".to_string(), config.mode.to_string()];
    args.push("--trigger".into());
    args.push(format!("{:?}", config.trigger).to_lowercase());
    args
}

/// A file server running in a child process.
pub struct ServerProcess {
    child: Child,
    lines: Receiver<String>,
    /// Every line it printed so far, stdout and stderr.
    pub output: Vec<String>,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl ServerProcess {
    /// Starts a server for `root` with `flags` (and a descriptor limit of
    /// `nofile`, if given); returns once it says where it listens.
    pub fn start(root: &Path, flags: &[String], nofile: Option<u64>) -> ServerProcess {
        let mut command = Command::new(std::env::current_exe().expect("this test's executable"));
        command
            .arg("--root")
            .arg(root)
            .args(["--addr", "127.0.0.1:0"])
            .args(flags)
            .env(SERVE, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = nofile {
            command.env(NOFILE, n.to_string());
        }
        let mut child = command.spawn().expect("start the server process");
        let (tx, lines) = unbounded();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let out_tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out_tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = ServerProcess {
            child,
            lines,
            output: Vec::new(),
            addr: "127.0.0.1:0".parse().expect("an address"),
        };
        let line = server.wait_for_line(Duration::from_secs(20), |l| l.starts_with("serving "));
        let url = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        server.addr = url.parse().expect("the server's address");
        server
    }

    /// Waits up to `limit` for a line that `matches`; returns it.
    pub fn wait_for_line(&mut self, limit: Duration, matches: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.output.iter().find(|l| matches(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.output.push(line.clone());
                    if matches(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "the server process printed no such line within {limit:?} (status {:?}); \
                     its output: {:#?}",
                    self.child.try_wait(),
                    self.output
                ),
            }
        }
    }

    /// Everything it printed up to now (a short wait for lines in flight).
    pub fn drain_output(&mut self) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(100)) {
            self.output.push(line);
        }
        &self.output
    }

    /// Sends it `signal` (`libc::SIGINT`, `libc::SIGTERM`), as Ctrl-C or
    /// `kill` would.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill has no memory-safety preconditions; `pid` is our
        // child, which is not reaped before `self` drops.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Its exit status, if it exits within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
