//! Lingering close (nginx's lingering_close): after a response that ends the connection while
//! the client may still be sending (a head too large, malformed or too slow), closing at once
//! would make the kernel answer the unread bytes with a reset, and a reset can destroy the
//! response in the client's receive queue before the client reads it. So the write side is
//! shut first (the response is followed by FIN), then what the client still sends is read and
//! discarded until it closes, goes quiet for `lingering_timeout`, `lingering_time` has passed,
//! or `MAX_DISCARD` bytes were thrown away (a hostile client cannot hold the slot for free).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Most bytes read and discarded while lingering.
const MAX_DISCARD: usize = 4 << 20;

/// Half-closes `stream` (under TLS after its close_notify) and drains it; returns the bytes
/// discarded.
pub async fn lingering_close<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    lingering_time: Duration,
    lingering_timeout: Duration,
) -> usize {
    if stream.shutdown().await.is_err() || lingering_time.is_zero() {
        return 0;
    }
    let deadline = tokio::time::Instant::now() + lingering_time;
    let mut buf = vec![0u8; 16 * 1024];
    let mut discarded = 0;
    while discarded < MAX_DISCARD {
        let quiet = (tokio::time::Instant::now() + lingering_timeout).min(deadline);
        match tokio::time::timeout_at(quiet, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => discarded += n,
            _ => break,
        }
    }
    discarded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use tokio::net::TcpStream;

    #[test]
    fn the_client_reads_the_response_sent_before_its_unread_bytes_were_drained() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            // Far more than the server reads: without lingering, the close resets.
            let _ = s.write_all(&vec![b'x'; 256 * 1024]);
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            answer
        });
        let (server, _) = listener.accept().expect("accept");
        server.set_nonblocking(true).expect("nonblocking");
        let discarded = rt.block_on(async move {
            let mut stream = TcpStream::from_std(server).expect("tokio stream");
            let mut head = [0u8; 1024];
            let _ = stream.read(&mut head).await;
            stream
                .write_all(b"HTTP/1.1 431 Too Large\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("respond");
            lingering_close(&mut stream, Duration::from_secs(5), Duration::from_secs(1)).await
        });
        let answer = client.join().expect("client");
        assert!(
            answer.starts_with(b"HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&answer)
        );
        assert!(discarded > 0, "the client's extra bytes were drained");
    }
}
