//! `cargo xtask install`: puts strata on a bare-metal Linux host — the binary, one systemd unit
//! and one TOML config per role, and the state directories. `--dry-run` only shows the plan;
//! `--prefix` installs under another root (for packaging or a safe look).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use clap::Args;

use crate::build::release_binary;
use crate::setup;
use crate::shell::exec;

#[derive(Args)]
pub struct InstallArgs {
    /// Root to install under.
    #[arg(long, default_value = "/")]
    prefix: PathBuf,
    /// Print what would be installed, change nothing, build nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Appended to the edge's config: an HTTPS listener to uncomment.
const HTTPS_EXAMPLE: &str = "
# HTTPS (uncomment and point at your PEM files). The first certificate is also the default for
# clients that send no or an unknown server name; more [[https.certificates]] are chosen by SNI.
# [[https]]
# listen = \"0.0.0.0:443\"
# [[https.certificates]]
# cert = \"/etc/strata/tls/cdn.example.com.pem\"   # chain, server certificate first
# key = \"/etc/strata/tls/cdn.example.com.key\"
# names = [\"cdn.example.com\"]
# [[https.certificates]]
# cert = \"/etc/strata/tls/media.example.org.pem\"
# key = \"/etc/strata/tls/media.example.org.key\"
# names = [\"media.example.org\", \"*.media.example.org\"]
";

/// Roles that get a systemd unit and a config file.
const ROLES: &[(&str, &str, &str)] = &[
    ("storage", "--root", "/var/lib/strata/storage"),
    ("edge", "--cache-dir", "/var/lib/strata/edge-cache"),
    ("dns", "--config", "/var/lib/strata/dns"),
    ("control", "--data-dir", "/var/lib/strata/control"),
    ("live", "--root", "/var/lib/strata/live"),
];

/// Where the edge's access log goes on an installed host (rotated by [`LOGROTATE`]).
const EDGE_ACCESS_LOG: &str = "/var/log/strata/edge-access.log";

/// logrotate's rule for the access logs: rename, then SIGUSR1 makes the server reopen the path.
const LOGROTATE: &str = "/var/log/strata/*-access.log {\n    daily\n    rotate 14\n    compress\n    delaycompress\n    missingok\n    notifempty\n    sharedscripts\n    postrotate\n        systemctl kill --kill-whom=main --signal=SIGUSR1 strata-edge.service strata-storage.service 2>/dev/null || true\n    endscript\n}\n";

/// Flags the installed config of `role` is printed with (over the built-in defaults).
fn config_flags(role: &str) -> Vec<&'static str> {
    match role {
        "edge" => vec!["--access-log", EDGE_ACCESS_LOG],
        _ => vec![],
    }
}

/// The strata command line that runs `role` (the control plane's is `control serve`).
fn subcommand(role: &str) -> Vec<&str> {
    match role {
        "control" => vec!["control", "serve"],
        other => vec![other],
    }
}

/// Unit lines for the serving roles, which reload and upgrade by handing their listeners to a new
/// process (a new main PID, announced with sd_notify MAINPID=): `Type=notify`.
fn service_type(role: &str) -> &'static str {
    match role {
        "edge" => {
            "Type=notify\n\
             NotifyAccess=main\n\
             # Validates /etc/strata/edge.toml, then a new process takes the listeners over and the old one\n\
             # drains; a broken config fails the reload and the old process serves on. --admin: admin_listen.\n\
             ExecReload=/usr/local/bin/strata edge reload --admin 127.0.0.1:9080\n"
        }
        "storage" => {
            "Type=notify\n\
             NotifyAccess=main\n\
             # SIGHUP: the same handover as `strata edge reload` (errors in the journal).\n\
             ExecReload=/bin/kill -HUP $MAINPID\n"
        }
        _ => "",
    }
}

fn unit(role: &str) -> String {
    let command = subcommand(role).join(" ");
    let service_type = service_type(role);
    format!(
        "[Unit]\n\
         Description=strata {role}\n\
         Documentation=man:strata(1)\n\
         After=network-online.target\n\
         Wants=network-online.target\n\n\
         [Service]\n\
         {service_type}\
         ExecStart=/usr/local/bin/strata {command} --config /etc/strata/{role}.toml\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         # eBPF programs and io_uring need these; the kernel detaches eBPF links when the process exits.\n\
         AmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_RESOURCE\n\
         LimitNOFILE=1048576\n\
         LimitMEMLOCK=infinity\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// One step of the plan.
enum Step {
    Dir(PathBuf),
    Binary {
        from: PathBuf,
        to: PathBuf,
    },
    File {
        to: PathBuf,
        text: String,
        keep_existing: bool,
    },
    ConfigFromBinary {
        role: &'static str,
        to: PathBuf,
    },
}

fn under(prefix: &Path, abs: &str) -> PathBuf {
    prefix.join(abs.trim_start_matches('/'))
}

fn plan(prefix: &Path, binary: PathBuf) -> Vec<Step> {
    let mut steps = vec![
        Step::Dir(under(prefix, "/usr/local/bin")),
        Step::Binary {
            from: binary,
            to: under(prefix, "/usr/local/bin/strata"),
        },
        Step::Dir(under(prefix, "/etc/strata")),
        Step::Dir(under(prefix, "/etc/systemd/system")),
        Step::Dir(under(prefix, "/var/log/strata")),
        Step::Dir(under(prefix, "/etc/logrotate.d")),
        Step::File {
            to: under(prefix, "/etc/logrotate.d/strata"),
            text: LOGROTATE.to_string(),
            keep_existing: true,
        },
    ];
    for (role, _, state) in ROLES {
        steps.push(Step::Dir(under(prefix, state)));
        steps.push(Step::ConfigFromBinary {
            role,
            to: under(prefix, &format!("/etc/strata/{role}.toml")),
        });
        steps.push(Step::File {
            to: under(prefix, &format!("/etc/systemd/system/strata-{role}.service")),
            text: unit(role),
            keep_existing: false,
        });
    }
    steps
}

pub fn run(args: InstallArgs) -> anyhow::Result<()> {
    let binary = if args.dry_run {
        crate::shell::root().join("target/release/strata")
    } else {
        setup::ensure()?;
        release_binary()?
    };
    let steps = plan(&args.prefix, binary.clone());
    let verb = if args.dry_run { "would" } else { "will" };
    println!("install: {verb} install strata under {}", args.prefix.display());
    for step in &steps {
        match step {
            Step::Dir(d) => println!("  mkdir -p {}", d.display()),
            Step::Binary { from, to } => println!("  install -m 0755 {} {}", from.display(), to.display()),
            Step::File { to, .. } => println!("  write {}", to.display()),
            Step::ConfigFromBinary { role, to } => {
                println!(
                    "  write {} (from `strata {} --print-config`; an existing file is kept)",
                    to.display(),
                    subcommand(role).join(" ")
                )
            }
        }
    }
    let systemd = args.prefix == Path::new("/") && Path::new("/run/systemd/system").exists();
    if systemd {
        println!("  systemctl daemon-reload");
    }
    if args.dry_run {
        println!("install: dry run, nothing changed");
        return Ok(());
    }
    for step in steps {
        match step {
            Step::Dir(d) => {
                std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?
            }
            Step::Binary { from, to } => {
                let tmp = to.with_extension("new");
                std::fs::copy(&from, &tmp)
                    .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
                std::fs::rename(&tmp, &to).with_context(|| format!("moving {} into place", to.display()))?;
            }
            Step::File {
                to,
                text,
                keep_existing,
            } => {
                if !(keep_existing && to.exists()) {
                    std::fs::write(&to, text).with_context(|| format!("writing {}", to.display()))?;
                }
            }
            Step::ConfigFromBinary { role, to } => {
                if to.exists() {
                    println!("install: kept existing {}", to.display());
                    continue;
                }
                let command = subcommand(role).join(" ");
                let out = Command::new(&binary)
                    .args(subcommand(role))
                    .args(config_flags(role))
                    .arg("--print-config")
                    .output()
                    .with_context(|| format!("running {} {command} --print-config", binary.display()))?;
                anyhow::ensure!(
                    out.status.success(),
                    "strata {command} --print-config failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut text = format!(
                    "# strata {command} configuration; every key is optional (defaults shown).\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
                if role == "edge" {
                    text.push_str(HTTPS_EXAMPLE);
                }
                std::fs::write(&to, text).with_context(|| format!("writing {}", to.display()))?;
            }
        }
    }
    if systemd {
        exec(Command::new("systemctl").arg("daemon-reload"))?;
    }
    println!("install: done. Start a role with: systemctl enable --now strata-edge");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serving_units_are_notify_units_with_a_reload_the_others_are_not() {
        let edge = unit("edge");
        assert!(
            edge.contains("[Service]\nType=notify\nNotifyAccess=main\n"),
            "{edge}"
        );
        assert!(edge.contains("\nExecReload=/usr/local/bin/strata edge reload --admin 127.0.0.1:9080\n"));
        assert!(edge.contains("\nExecStart=/usr/local/bin/strata edge --config /etc/strata/edge.toml\n"));
        assert!(unit("storage").contains("\nExecReload=/bin/kill -HUP $MAINPID\n"));
        for role in ["dns", "control", "live"] {
            assert!(!unit(role).contains("Type=notify"), "{role}");
        }
    }
}
