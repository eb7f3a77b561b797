//! Kernel TLS (the `tls` upper-layer protocol, kTLS): where the kernel
//! offers it, the record layer could move into it after the handshake,
//! with the same traffic keys the user-space record layer takes from
//! rustls, and file regions would go back to `sendfile`.
//!
//! What it would take: after the handshake, `setsockopt(TCP_ULP, "tls")`,
//! then `TLS_TX` and `TLS_RX` with a `tls12_crypto_info_*` built from the
//! [`ExtractedSecrets`](rustls::ExtractedSecrets) and sequence numbers
//! (one struct per cipher: AES-GCM-128/256, ChaCha20-Poly1305); records
//! other than application data then arrive as control messages
//! (`recvmsg` with `TLS_GET_RECORD_TYPE`) and go to the same key-update
//! and ticket handling the user-space layer has; key updates need kernel
//! 6.x support for rekeying (`TLS_TX`/`TLS_RX` set again). Nothing of that
//! is built: this machine's kernel does not offer the ULP, so it could not
//! be tested. [`kernel_tls_available`] tells whether a machine would.

use std::fs;

/// Whether the running kernel offers the `tls` upper-layer protocol (it
/// is listed in `/proc/sys/net/ipv4/tcp_available_ulp`).
pub fn kernel_tls_available() -> bool {
    fs::read_to_string("/proc/sys/net/ipv4/tcp_available_ulp")
        .is_ok_and(|ulps| ulps.split_whitespace().any(|ulp| ulp == "tls"))
}
