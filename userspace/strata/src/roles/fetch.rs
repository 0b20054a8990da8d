//! `strata fetch`: the intelligent client from the command line, with a progress bar (rate,
//! server, region, rendition), a summary, `--trace` and `--qoe` files, and the report to the
//! control plane.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};

use anyhow::{bail, Context as _};
use indicatif::{ProgressBar, ProgressStyle};
use strata_client::asset_list::{self, pick, Profile};
use strata_client::discover::{self, Discovery};
use strata_client::player::{self, PlayerTuning};
use strata_client::session::{Session, Tuning};
use strata_client::trace::Trace;
use strata_client::{download, report, Progress};

use crate::cli::FetchArgs;

/// This host's IPv4 address toward `dns` (the kernel's source address choice).
fn own_address(dns: SocketAddr) -> Option<Ipv4Addr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect(dns).ok()?;
    match s.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}

fn discovery(args: &FetchArgs) -> anyhow::Result<Discovery> {
    match args.dns {
        Some(dns) => {
            let ip = args.client_ip.or_else(|| own_address(dns));
            Ok(discover::discover(dns, &args.domain, args.bucket, ip)?)
        }
        None if !args.servers.is_empty() => Ok(discover::direct(&args.servers)?),
        None => bail!("strata fetch: give --dns ADDR (and --domain) or --server URL"),
    }
}

pub fn run(args: &FetchArgs) -> anyhow::Result<()> {
    let parts: Vec<&str> = args.target.trim_matches('/').split('/').collect();
    let (tenant, content, asset_name) = match parts[..] {
        [t, c] => (t, c, None),
        [t, c, a] => (t, c, Some(a)),
        _ => bail!(
            "strata fetch: {:?} is not TENANT/CONTENT or TENANT/CONTENT/ASSET",
            args.target
        ),
    };
    if args.output.is_none() && !args.play {
        bail!("strata fetch: give -o PATH to write the asset, or --play to simulate a player");
    }
    let found = discovery(args)?;
    let names: Vec<String> = found
        .servers
        .iter()
        .map(|s| format!("{} ({}, priority {})", s.addr, s.region, s.priority))
        .collect();
    eprintln!("servers: {}", names.join(", "));
    let tuning = Tuning {
        hedge_after: if args.no_hedge {
            0.0
        } else {
            Tuning::default().hedge_after
        },
        reprobe_every: args.reprobe_every.max(1),
        ..Tuning::default()
    };
    let mut session = Session::new(found, tuning);
    // The asset list, from the first server that gives it.
    let list_path = format!("/{tenant}/{content}/assets.json");
    let mut list = None;
    let mut errors = Vec::new();
    for s in &mut session.servers {
        let Some(conn) = s.conn.as_mut() else { continue };
        match conn.whole(&list_path) {
            Ok(f) => {
                list = Some(
                    asset_list::parse(&f.bytes)
                        .with_context(|| format!("{list_path} from {}", s.server.addr))?,
                );
                break;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let list = list.with_context(|| format!("no server gave {list_path}: {}", errors.join("; ")))?;
    let profile = Profile {
        max_height: args.max_height,
        codecs: args.codecs.clone(),
        prefer: args.prefer.clone(),
    };
    let renditions = asset_list::renditions(&list, &profile);
    let named = asset_name
        .or((args.rendition != "auto").then_some(args.rendition.as_str()))
        .map(|n| asset_list::get(&list, n).with_context(|| format!("{tenant}/{content} has no asset {n}")))
        .transpose()?;
    // Probe the best few servers with the first asset we will read.
    let probe_asset = named
        .or(renditions.first().copied())
        .context("the asset list has no asset to fetch")?;
    session.probe(&probe_asset.url, probe_asset.size, true);
    if let Some(best) = session.best(None) {
        session.current = best;
    }
    let first = &session.servers[session.current];
    eprintln!(
        "starting with {} ({}): {:.1} Mbit/s in the probe",
        first.server.addr,
        first.server.region,
        first.rate_bps.unwrap_or(0.0) / 1e6
    );
    let mut trace = Trace::open(args.trace.as_deref()).context("opening the trace file")?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut show = |p: &Progress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
        bar.set_message(format!(
            "{:.1} Mbit/s via {} ({}) {}",
            p.rate_bps / 1e6,
            p.server,
            p.region,
            p.rendition
        ));
    };
    let (dns, domain, bucket, ip) = (args.dns, args.domain.clone(), args.bucket, args.client_ip);
    let mut rediscover = move || {
        let dns = dns?;
        let ip = ip.or_else(|| own_address(dns));
        discover::discover(dns, &domain, bucket, ip)
            .map_err(|e| tracing::warn!(error = %e, "fetch: asking DNS again failed; keeping the servers"))
            .ok()
    };
    let outcome = if args.play {
        let fixed = named;
        let qoe = player::play(
            &mut session,
            &renditions,
            fixed,
            &PlayerTuning::default(),
            &mut trace,
            &mut rediscover,
            &mut show,
        );
        bar.finish_and_clear();
        let qoe = qoe?;
        println!(
            "QoE: startup {} ms, {} rebuffers ({} ms), average {:.2} Mbit/s, {} rendition switches, {} server switches, mostly {}",
            qoe.startup_ms,
            qoe.rebuffers,
            qoe.rebuffer_ms,
            qoe.average_bitrate_bps as f64 / 1e6,
            qoe.rendition_switches,
            qoe.server_switches,
            qoe.main_rendition
        );
        if let Some(path) = &args.qoe {
            std::fs::write(path, serde_json::to_vec_pretty(&qoe)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    } else {
        let asset = match named {
            Some(a) => a,
            None => {
                let rate = session.servers[session.current].rate_bps.unwrap_or(0.0);
                pick(&renditions, rate, 0.8)
                    .context("the asset list has no video rendition this device can play")?
            }
        };
        let out = args.output.as_deref().context("-o PATH")?;
        let stats = download::download(&mut session, asset, out, &mut trace, &mut rediscover, &mut show);
        bar.finish_and_clear();
        let stats = stats?;
        println!(
            "{}: {} bytes in {:.2} s ({:.1} Mbit/s), {} pieces ({} hedged), {} server switches; SHA-256 checked",
            out.display(),
            stats.bytes,
            stats.seconds,
            stats.bytes as f64 * 8.0 / stats.seconds.max(1e-3) / 1e6,
            stats.pieces,
            stats.hedged,
            stats.server_switches
        );
        Ok(())
    };
    trace.flush();
    if let Some(control) = &args.control {
        match report::send(control, &report::of(&session)) {
            Ok(()) => eprintln!("timings reported to {control}"),
            Err(e) => eprintln!("warning: reporting timings failed: {e}"),
        }
    }
    outcome
}
