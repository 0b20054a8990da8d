//! The servers under test as child processes: strata (storage origin and edge), nginx and
//! HAProxy, each pinned to the server core, logging into the report's logs/ directory, reachable
//! on a free loopback port, and stopped (TERM, then KILL) when dropped.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::peer_configs;

/// A loopback address with a port nobody listens on now.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0 to find a free port")?;
    l.local_addr().context("local_addr of a probe listener")
}

/// Restricts the calling thread (and what it spawns later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> anyhow::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).with_context(|| format!("CPU {cpu} out of range"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning to CPU {cpu}"))
}

/// A running server.
pub struct ServerProcess {
    pub name: String,
    pub addr: SocketAddr,
    /// strata's admin listener (/metrics), when the server is strata.
    pub admin: Option<SocketAddr>,
    child: Child,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `cmd` pinned to `cpu`, output to `logs/{name}.log`, and waits until `addr` accepts.
    pub(crate) fn spawn(
        name: &str,
        mut cmd: Command,
        addr: SocketAddr,
        admin: Option<SocketAddr>,
        cpu: usize,
        logs: &Path,
    ) -> anyhow::Result<ServerProcess> {
        std::fs::create_dir_all(logs).with_context(|| format!("creating {}", logs.display()))?;
        let log = logs.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating a log file handle")?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        // SAFETY: only async-signal-safe work (sched_setaffinity) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name}: {:?}", cmd.get_program()))?;
        let mut server = ServerProcess {
            name: name.to_string(),
            addr,
            admin,
            child,
            log,
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let began = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().context("polling a server")? {
                bail!(
                    "{} exited at start ({status}); its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            let ready = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok()
                && self
                    .admin
                    .is_none_or(|a| TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok());
            if ready {
                return Ok(());
            }
            if began.elapsed() > Duration::from_secs(20) {
                bail!(
                    "{} did not accept on {} within 20 s; its log:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GETs strata's /metrics and returns the value of `name` (summed over its label sets).
    pub fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let admin = self.admin.context("not a strata server: no /metrics")?;
        let text = crate::http_get::get_text(admin, "/metrics")?;
        Ok(text
            .lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }
}

impl ServerProcess {
    /// strata's `name{path="…"}` samples from /metrics: (path, value).
    pub fn metric_by_path(&self, name: &str) -> anyhow::Result<Vec<(String, f64)>> {
        let admin = self.admin.context("not a strata server: no /metrics")?;
        let text = crate::http_get::get_text(admin, "/metrics")?;
        let prefix = format!("{name}{{path=\"");
        Ok(text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (path, tail) = rest.split_once('"')?;
                let value = tail.rsplit(' ').next()?.parse::<f64>().ok()?;
                Some((path.to_string(), value))
            })
            .collect())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything a server needs: where strata is, where logs and scratch files go, which CPU.
pub struct ServerEnv {
    pub strata: PathBuf,
    /// Scratch space (peer configs and temp files).
    pub work: PathBuf,
    /// Where each server's output goes, as {name}.log.
    pub logs: PathBuf,
    pub cpu: usize,
}

impl ServerEnv {
    fn logs(&self) -> PathBuf {
        self.logs.clone()
    }

    fn strata_cmd(&self, role: &str, addr: SocketAddr, admin: SocketAddr) -> Command {
        let mut cmd = Command::new(&self.strata);
        cmd.arg(role)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--admin-listen")
            .arg(admin.to_string())
            .args(["--worker-threads", "1", "--splice-workers", "1"])
            // Warnings, and what proxy_path=auto measured and chose.
            .env("RUST_LOG", "warn,strata_edge::upstream::path_choice=info");
        cmd
    }

    /// A strata storage server over `root` (the origin of the proxy scenarios).
    pub fn strata_storage(&self, name: &str, root: &Path) -> anyhow::Result<ServerProcess> {
        let (addr, admin) = (free_addr()?, free_addr()?);
        let mut cmd = self.strata_cmd("storage", addr, admin);
        cmd.arg("--root").arg(root).args(["--telemetry", "off"]);
        ServerProcess::spawn(name, cmd, addr, Some(admin), self.cpu, &self.logs())
    }

    /// A strata edge over `cache_dir`; `origin` makes misses go to it (tenant `bench`).
    pub fn strata_edge(
        &self,
        name: &str,
        cache_dir: &Path,
        origin: Option<SocketAddr>,
        extra: &[&str],
    ) -> anyhow::Result<ServerProcess> {
        let (addr, admin) = (free_addr()?, free_addr()?);
        let mut cmd = self.strata_cmd("edge", addr, admin);
        cmd.arg("--cache-dir").arg(cache_dir);
        if let Some(o) = origin {
            cmd.arg("--cluster").arg(format!("origin={o}")).args([
                "--tenant",
                "bench=origin",
                "--miss",
                "proxy",
            ]);
        }
        cmd.args(extra);
        ServerProcess::spawn(name, cmd, addr, Some(admin), self.cpu, &self.logs())
    }

    /// nginx, one worker, with the given role's configuration written next to its logs.
    pub fn nginx(&self, name: &str, role: &peer_configs::NginxRole) -> anyhow::Result<ServerProcess> {
        let addr = free_addr()?;
        let dir = self.work.join("peers").join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, peer_configs::nginx(addr, &dir, role))
            .with_context(|| format!("writing {}", conf.display()))?;
        let mut cmd = Command::new("nginx");
        cmd.arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log"));
        ServerProcess::spawn(name, cmd, addr, None, self.cpu, &self.logs())
    }

    /// HAProxy, one thread, `option splice-response`, in front of `origin`.
    pub fn haproxy(&self, name: &str, origin: SocketAddr) -> anyhow::Result<ServerProcess> {
        let addr = free_addr()?;
        let dir = self.work.join("peers").join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let conf = dir.join("haproxy.cfg");
        std::fs::write(&conf, peer_configs::haproxy(addr, origin))
            .with_context(|| format!("writing {}", conf.display()))?;
        let mut cmd = Command::new("haproxy");
        cmd.arg("-db").arg("-f").arg(&conf);
        ServerProcess::spawn(name, cmd, addr, None, self.cpu, &self.logs())
    }
}

/// Whether a peer program is installed (on PATH).
pub fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        || Path::new("/usr/sbin").join(program).is_file()
}
