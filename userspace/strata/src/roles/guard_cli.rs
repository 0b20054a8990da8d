//! `strata edge guard list|add|del`: talks to a running edge's admin listener, so an operator
//! changes the XDP guard's lists without restarting (or reloading) anything.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{bail, Context as _};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::cli::{GuardAction, GuardCommand};
use strata_kernel::xdp_guard::GuardList;

/// Runs one guard command and prints the edge's answer.
pub fn run(cmd: &GuardCommand) -> anyhow::Result<()> {
    let list_name = |l: GuardList| match l {
        GuardList::Allow => "allow",
        GuardList::Block => "block",
    };
    let (method, path) = match &cmd.action {
        GuardAction::List => ("GET", "/guard".to_string()),
        GuardAction::Add { list, prefix } => ("POST", target(list_name(*list), prefix)),
        GuardAction::Del { list, prefix } => ("DELETE", target(list_name(*list), prefix)),
    };
    let (status, body) = request(cmd.admin, method, &path, Duration::from_secs(30))?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    if status >= 300 {
        bail!("the edge at {} answered {status}", cmd.admin);
    }
    Ok(())
}

fn target(list: &str, prefix: &str) -> String {
    format!(
        "/guard/{list}?prefix={}",
        utf8_percent_encode(prefix, NON_ALPHANUMERIC)
    )
}

/// One HTTP/1.1 request with `Connection: close` to an admin listener, waiting up to
/// `read_timeout` for the answer; returns the status and the body.
pub(crate) fn request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    read_timeout: Duration,
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&admin, Duration::from_secs(5))
        .with_context(|| format!("connecting to the edge's admin listener {admin}"))?;
    s.set_read_timeout(Some(read_timeout))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {admin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes())
        .with_context(|| format!("sending to {admin}"))?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .with_context(|| format!("reading the answer from {admin}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("the admin listener's answer has no head")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("the admin listener's answer has no status")?;
    Ok((status, body.to_string()))
}
