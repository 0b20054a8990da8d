//! `strata dns`: the authoritative nameserver until Ctrl-C or SIGTERM.

use tokio::sync::watch;

use strata_dns::settings::DnsSettings;

pub async fn run(cfg: DnsSettings) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let running = strata_dns::start(&cfg, stop_rx).await?;
    super::serve::stop_signal().await;
    tracing::info!(role = "dns", "stopping");
    let _ = stop_tx.send(true);
    running.join().await;
    Ok(())
}
