//! A ranged GET as a byte stream (blocking, ureq): `Range: bytes=OFFSET-`, optionally with a
//! bearer key. Used by distribution jobs to fetch an asset from a storage server or a peer edge
//! and to resume at an offset after switching sources. Only `206` with a `Content-Range` that
//! starts at the offset (or `200` when the offset is 0) is accepted, so a resumed transfer can
//! never splice the wrong bytes into a file.

use std::io::Read;
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RangeFetchError {
    #[error("GET {url}: {message}")]
    Transport { url: String, message: String },
    #[error("GET {url} from byte {offset}: answered {status}")]
    Status { url: String, offset: u64, status: u16 },
    #[error("GET {url} from byte {offset}: Content-Range {got:?} does not start there")]
    WrongRange { url: String, offset: u64, got: String },
}

/// The body of `url` from `offset` to its end; the asset's total length.
pub fn open_from(
    url: &str,
    bearer: Option<&str>,
    offset: u64,
    timeout: Duration,
) -> Result<(u64, Box<dyn Read + Send>), RangeFetchError> {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(timeout))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let mut req = agent
        .get(url)
        .header("range", format!("bytes={offset}-"))
        .header("user-agent", "strata-job");
    if let Some(key) = bearer {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let resp = req.call().map_err(|e| RangeFetchError::Transport {
        url: url.into(),
        message: e.to_string(),
    })?;
    let status = resp.status().as_u16();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let total = match status {
        206 => {
            let cr = header("content-range").unwrap_or_default();
            // bytes START-END/TOTAL
            let parsed = cr.strip_prefix("bytes ").and_then(|r| {
                let (span, total) = r.split_once('/')?;
                let (start, _) = span.split_once('-')?;
                Some((start.parse::<u64>().ok()?, total.parse::<u64>().ok()?))
            });
            match parsed {
                Some((start, total)) if start == offset => total,
                _ => {
                    return Err(RangeFetchError::WrongRange {
                        url: url.into(),
                        offset,
                        got: cr,
                    })
                }
            }
        }
        200 if offset == 0 => header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| RangeFetchError::Transport {
                url: url.into(),
                message: "200 without Content-Length".into(),
            })?,
        _ => {
            return Err(RangeFetchError::Status {
                url: url.into(),
                offset,
                status,
            })
        }
    };
    let body = resp.into_body().into_reader();
    Ok((total, Box::new(body)))
}
