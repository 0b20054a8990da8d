//! What a body mover reports while it works: which kernel path a body took and how many bytes
//! left through it, and each time a full client socket made it wait. The serving layer's
//! metrics implement [`BodyMeter`]; the kernel layer only calls it.

/// The kernel path a response body took.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyPathLabel {
    IoUringSplice,
    Sendfile,
    /// Proxied miss, body moved socket → socket by the sockmap programs.
    ProxySockmap,
    /// Proxied miss, body moved socket → pipe → socket with splice(2).
    ProxySplice,
    /// Proxied miss, body copied through userspace (the last fallback).
    ProxyCopy,
    /// HTTPS: the body read into userspace and encrypted there (rustls; no kernel TLS).
    TlsUserspace,
    /// A small file held in memory, written with its head in one call.
    Memory,
}

impl BodyPathLabel {
    /// Every path, in the order metrics list them.
    pub const ALL: [BodyPathLabel; 7] = [
        BodyPathLabel::IoUringSplice,
        BodyPathLabel::Sendfile,
        BodyPathLabel::ProxySockmap,
        BodyPathLabel::ProxySplice,
        BodyPathLabel::ProxyCopy,
        BodyPathLabel::TlsUserspace,
        BodyPathLabel::Memory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BodyPathLabel::IoUringSplice => "io_uring_splice",
            BodyPathLabel::Sendfile => "sendfile",
            BodyPathLabel::ProxySockmap => "proxy_sockmap",
            BodyPathLabel::ProxySplice => "proxy_splice",
            BodyPathLabel::ProxyCopy => "proxy_copy",
            BodyPathLabel::TlsUserspace => "tls_userspace",
            BodyPathLabel::Memory => "memory",
        }
    }
}

/// Receives a body mover's accounting.
pub trait BodyMeter: Send + Sync {
    /// A body starts on `path`.
    fn body_started(&self, path: BodyPathLabel);
    /// `n` more body bytes left through `path`.
    fn body_bytes(&self, path: BodyPathLabel, n: u64);
    /// A send found the client socket full and waits for room.
    fn send_wait(&self);
}
