//! One HTTPS listener's TLS side: the rustls server configuration (TLS 1.2 and 1.3, ring,
//! ALPN http/1.1, certificates by SNI) and the handshake of each accepted connection, bounded
//! by the head timeout. A client that sends plain HTTP to the port is recognised from its
//! first bytes so it can be told so in plain text; anything else that is not a TLS hello
//! fails the handshake and closes that connection alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::certificates::{CertError, CertTable, SniResolver};
use super::https_metrics::{HandshakeFailure, HttpsMetrics};
use super::https_settings::HttpsListener;

/// TLS content type of a handshake record: the first byte of every client hello.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The TLS side of one HTTPS listener.
pub struct HttpsAcceptor {
    pub listen: SocketAddr,
    acceptor: TlsAcceptor,
    pub metrics: Arc<HttpsMetrics>,
}

/// How a connection's handshake ended.
pub enum Handshake {
    Done(Box<TlsStream<TcpStream>>),
    /// The client spoke plain HTTP: answer it in plain text and close.
    PlainHttp(TcpStream),
    /// Closed (bad hello, failed handshake, timeout, or the client left); already counted.
    Failed,
}

impl HttpsAcceptor {
    /// Loads the listener's certificates and builds its TLS configuration.
    pub fn new(listener: &HttpsListener, metrics: Arc<HttpsMetrics>) -> Result<HttpsAcceptor, CertError> {
        let resolver = Arc::new(SniResolver::new(CertTable::load(&listener.certificates)?));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| CertError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(HttpsAcceptor {
            listen: listener.listen,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            metrics,
        })
    }

    /// Runs the handshake on an accepted connection within `timeout`.
    pub async fn handshake(&self, tcp: TcpStream, timeout: Duration) -> Handshake {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
            Err(_) => {
                self.metrics.failure(HandshakeFailure::Timeout);
                return Handshake::Failed;
            }
            Ok(Ok(1)) => {}
            Ok(_) => return Handshake::Failed, // closed or failed before a byte: not counted
        }
        if first[0] != TLS_HANDSHAKE_RECORD && first[0].is_ascii_uppercase() {
            self.metrics.failure(HandshakeFailure::PlainHttp);
            return Handshake::PlainHttp(tcp);
        }
        match tokio::time::timeout_at(deadline, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.metrics.handshake(tls.get_ref().1.protocol_version());
                Handshake::Done(Box::new(tls))
            }
            Ok(Err(e)) => {
                tracing::debug!(listen = %self.listen, error = %e, "TLS handshake failed; connection closed");
                self.metrics.failure(HandshakeFailure::Handshake);
                Handshake::Failed
            }
            Err(_) => {
                self.metrics.failure(HandshakeFailure::Timeout);
                Handshake::Failed
            }
        }
    }
}
