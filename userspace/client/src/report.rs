//! What the client tells the control plane at the end (`POST /v1/reports`, no token): per
//! server the bytes it fetched, the milliseconds they took and the errors it saw. The map maker
//! turns them into costs for the client's block.

use std::time::Duration;

use strata_wire::network_map::{ClientReport, ServerTiming};

use crate::session::Session;

/// The report of `session`.
pub fn of(session: &Session) -> ClientReport {
    ClientReport {
        client: None,
        timings: session
            .servers
            .iter()
            .filter(|s| s.bytes > 0 || s.errors > 0)
            .map(|s| ServerTiming {
                server: s.server.addr,
                bytes: s.bytes,
                ms: s.ms.max(u64::from(s.bytes > 0)),
                errors: s.errors,
            })
            .collect(),
    }
}

/// Posts `report` to the control plane at `control` (e.g. `http://10.0.0.1:9090`).
pub fn send(control: &str, report: &ClientReport) -> Result<(), String> {
    let url = format!("{}/v1/reports", control.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let resp = agent
        .post(&url)
        .send_json(report)
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status().as_u16();
    if status != 200 {
        let body = resp.into_body().read_to_string().unwrap_or_default();
        return Err(format!("{url} answered {status}: {}", body.trim()));
    }
    Ok(())
}
