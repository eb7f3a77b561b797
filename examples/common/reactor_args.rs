//! The command-line flags that choose how a server example is wired
//! (`--mode`, `--trigger`, `--reactors`, `--workers`), shared by the
//! examples so that they mean the same everywhere.

use wharf::{ReactorMode, Trigger};

/// How the server's threads are arranged.
#[derive(Debug, clap::Args)]
pub struct ReactorArgs {
    /// Reactor mode: one loop; one loop plus workers; main loop plus
    /// sub-reactors (plus workers); independent SO_REUSEPORT loops.
    #[arg(long, default_value = "single", value_parser = ["single", "pool", "multi", "reuseport"])]
    pub mode: String,
    /// Edge- or level-triggered epoll (edge or level).
    #[arg(long, default_value = "edge")]
    pub trigger: Trigger,
    /// Sub-reactors (multi) or reactors (reuseport) [default: CPU count].
    #[arg(long)]
    pub reactors: Option<usize>,
    /// Worker threads running the handler [default: CPU count for pool, 0 for multi].
    #[arg(long)]
    pub workers: Option<usize>,
}

impl ReactorArgs {
    /// The mode the flags describe, with the defaults filled in from the
    /// number of CPUs.
    pub fn mode(&self) -> std::io::Result<ReactorMode> {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let reactors = self.reactors.unwrap_or(cpus);
        let workers = self
            .workers
            .unwrap_or(if self.mode == "pool" { cpus } else { 0 });
        ReactorMode::from_name(&self.mode, reactors, workers)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }

    /// `edge` or `level`.
    pub fn trigger_name(&self) -> &'static str {
        match self.trigger {
            Trigger::Edge => "edge",
            Trigger::Level => "level",
        }
    }
}
