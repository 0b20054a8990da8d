//! An HTTPS listener's accept loop: each connection takes a slot from the same pool as the
//! plain listener, gets its TLS handshake (bounded by the head timeout) in its own task, and
//! is then served by the one connection handler. A bad hello, a failed or slow handshake, or
//! plain HTTP closes that connection only; plain HTTP is first told, in plain text, to use
//! https.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::conn_slot::ConnSlot;
use super::connection::serve_client;
use super::context::ServerContext;
use super::lingering_close::lingering_close;
use crate::client_stream::ClientStream;
use crate::tls::acceptor::{Handshake, HttpsAcceptor};
use crate::tls::https_metrics::HttpsMetrics;
use crate::tls::https_settings::HttpsListener;
use crate::tls::ktls_probe;
use strata_http::response::error_response;

/// Accepts HTTPS connections until shutdown.
pub async fn accept_loop(
    listener: TcpListener,
    tls: Arc<HttpsAcceptor>,
    ctx: Arc<ServerContext>,
    slots: Arc<Semaphore>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        let tcp = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(listen = %tls.listen, error = %e, "HTTPS accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // A plain-text 503 means nothing to a TLS client: close.
            ctx.metrics.connection_rejected();
            continue;
        };
        let slot = ConnSlot::new(permit, ctx.metrics.clone());
        let (tls, ctx) = (tls.clone(), ctx.clone());
        tokio::spawn(async move {
            match tls.handshake(tcp, ctx.limits.header_read_timeout).await {
                Handshake::Done(session) => {
                    let client = ClientStream::tls(session, tls.metrics.clone());
                    serve_client(client, ctx, slot, None).await;
                }
                Handshake::PlainHttp(tcp) => {
                    let message = format!(
                        "this port ({}) speaks HTTPS; plain HTTP was sent to it: use https://",
                        tls.listen
                    );
                    let mut client = ClientStream::Plain(tcp);
                    ctx.metrics.response(400);
                    if client
                        .send(&error_response(400, &message, false, &[]))
                        .await
                        .is_ok()
                    {
                        let l = &ctx.limits;
                        lingering_close(&mut client, l.lingering_time, l.lingering_timeout).await;
                    }
                    drop(slot);
                }
                Handshake::Failed => drop(slot),
            }
        });
    }
}

/// The TLS side of every HTTPS listener of a server, built before the listeners are bound.
pub struct HttpsSetup {
    pub acceptors: Vec<Arc<HttpsAcceptor>>,
    pub metrics: Arc<HttpsMetrics>,
}

/// Loads each listener's certificates, probes the kernel for TLS offload and logs the mode.
/// None when the server has no HTTPS listener.
pub fn prepare(role: &str, listeners: &[HttpsListener]) -> anyhow::Result<Option<HttpsSetup>> {
    if listeners.is_empty() {
        return Ok(None);
    }
    let ktls = ktls_probe::probe();
    ktls_probe::log_mode(role, ktls);
    let metrics = HttpsMetrics::new(ktls);
    let acceptors = listeners
        .iter()
        .map(|l| {
            HttpsAcceptor::new(l, metrics.clone())
                .map(Arc::new)
                .with_context(|| format!("{role}: HTTPS listener {}", l.listen))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(HttpsSetup { acceptors, metrics }))
}
