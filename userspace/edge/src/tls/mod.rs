//! HTTPS on the edge: listener settings, certificates chosen by SNI, the rustls acceptor with
//! its handshake limits, the kernel TLS probe, the userspace file-body sender, and the HTTPS
//! metrics. The connection handler serves a TLS client through
//! [`crate::client_stream::ClientStream`] exactly as a plain one.

pub mod acceptor;
pub mod certificates;
pub mod file_body;
pub mod https_metrics;
pub mod https_settings;
pub mod ktls_probe;
