//! The nameserver's sockets: UDP (one task per core on a shared socket; answers larger than
//! the client's limit go out truncated, TC set) and TCP (two-byte length prefix, several
//! queries per connection, an idle timeout). Malformed queries get FORMERR when their header
//! is readable; anything shorter is dropped.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{watch, Semaphore};

use crate::answer::{answer, AnswerSettings};
use crate::dns_metrics::DnsMetrics;
use strata_wire::map_view::MapView;

/// TCP connections served at once.
const MAX_TCP: usize = 1024;
/// A TCP connection with no query for this long is closed.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// What every query handler shares.
pub struct Shared {
    pub view: RwLock<Arc<MapView>>,
    pub answers: AnswerSettings,
    pub metrics: Arc<DnsMetrics>,
    /// Client block → SRV queries since the last report to the control plane.
    pub queries: Mutex<HashMap<String, u64>>,
}

impl Shared {
    fn view(&self) -> Arc<MapView> {
        self.view.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The answer's wire bytes for `query` from `source`; None to stay silent.
    fn respond(
        &self,
        query: &[u8],
        source: IpAddr,
        udp_limit: Option<&dyn Fn(&Message) -> usize>,
    ) -> Option<Vec<u8>> {
        let started = Instant::now();
        let transport = if udp_limit.is_some() { "udp" } else { "tcp" };
        let request = match Message::from_vec(query) {
            Ok(m) => m,
            Err(_) if query.len() >= 12 => {
                // A readable header: say FORMERR with its id.
                let id = u16::from_be_bytes([query[0], query[1]]);
                let reply = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
                self.metrics
                    .answered("malformed", "FORMERR", transport, started.elapsed().as_secs_f64());
                return reply.to_vec().ok();
            }
            Err(_) => return None,
        };
        if request.message_type() != hickory_proto::op::MessageType::Query {
            return None;
        }
        let view = self.view();
        let answered = answer(&view, &self.answers, &request, source);
        if let Some(block) = answered.block {
            *self
                .queries
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(block)
                .or_default() += 1;
        }
        let mut bytes = answered.message.to_vec().ok()?;
        if let Some(limit) = udp_limit {
            let max = limit(&request);
            if bytes.len() > max {
                let mut cut = answered.message.truncate();
                cut.set_truncated(true);
                bytes = cut.to_vec().ok()?;
                self.metrics.truncated.inc();
            }
        }
        let qtype = request
            .queries()
            .first()
            .map_or("none".to_string(), |q| q.query_type().to_string());
        let rcode = rcode_name(answered.message.response_code());
        self.metrics
            .answered(&qtype, &rcode, transport, started.elapsed().as_secs_f64());
        Some(bytes)
    }
}

/// The largest UDP answer `request` may get.
fn udp_limit(max_udp: u16) -> impl Fn(&Message) -> usize {
    move |request: &Message| match request.extensions() {
        Some(edns) => usize::from(edns.max_payload().clamp(512, max_udp.max(512))),
        None => 512,
    }
}

/// Serves UDP on `socket` until shutdown.
pub async fn serve_udp(socket: Arc<UdpSocket>, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let limit = udp_limit(shared.answers.max_udp);
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "dns: UDP receive failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        if let Some(reply) = shared.respond(&buf[..n], peer.ip(), Some(&limit)) {
            if let Err(e) = socket.send_to(&reply, peer).await {
                tracing::debug!(%peer, error = %e, "dns: UDP send failed");
            }
        }
    }
}

/// Serves TCP on `listener` until shutdown.
pub async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_TCP));
    loop {
        let (stream, peer) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "dns: TCP accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            tcp_connection(stream, peer, &shared).await;
            drop(permit);
        });
    }
}

async fn tcp_connection(mut stream: TcpStream, peer: SocketAddr, shared: &Shared) {
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => return,
        }
        let Some(reply) = shared.respond(&query, peer.ip(), None) else {
            return;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return;
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        if stream.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// The response code's mnemonic, as dig prints it.
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        other => u16::from(other).to_string(),
    }
}
