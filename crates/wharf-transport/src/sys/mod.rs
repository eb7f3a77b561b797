//! Every call into the OS that `mio` and `socket2` do not make for us.
//!
//! The rest of the crate is safe code; what is here is thin and dense, as in
//! mio's own `sys` tree. Each wrapper turns a failure into `io::Error`.

pub(crate) mod epoll;
pub(crate) mod file;
pub mod fs;
pub(crate) mod heap;
pub mod limits;
pub(crate) mod net;
pub mod signal;
