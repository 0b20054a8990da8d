//! The three tiers on real links: storage servers, an edge and clients, each in its own network
//! namespace, joined by veth through a bridge ([`Lan`]). Storage server `i` lives in client
//! namespace `i`; the last client namespace is the viewers'.

use std::net::SocketAddr;
use std::path::Path;

use crate::netns::{in_netns, Lan};
use crate::Strata;

/// Port every tier listens on inside its namespace.
pub const PORT: u16 = 8080;

/// A LAN with `storage` storage hosts and one viewer host.
pub struct Tiers {
    pub lan: Lan,
    storage: usize,
}

impl Tiers {
    pub fn new(storage: usize) -> Tiers {
        Tiers {
            lan: Lan::new(storage + 1),
            storage,
        }
    }

    /// Namespace of storage host `i`.
    pub fn storage_ns(&self, i: usize) -> &str {
        &self.lan.client_ns[i]
    }

    /// Address storage host `i` listens on.
    pub fn storage_addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from((self.lan.client_addr(i), PORT))
    }

    /// The viewers' namespace.
    pub fn viewer_ns(&self) -> String {
        self.lan.client_ns[self.storage].clone()
    }

    pub fn edge_addr(&self) -> SocketAddr {
        SocketAddr::from((self.lan.edge_addr(), PORT))
    }

    /// `strata storage` on storage host `i`, serving `root`.
    pub fn start_storage(&self, i: usize, root: &Path) -> Strata {
        let listen = self.storage_addr(i).to_string();
        Strata::start_in(
            Some(self.storage_ns(i)),
            &[
                "storage",
                "--root",
                root.to_str().expect("utf-8 path"),
                "--listen",
                &listen,
                "--admin-listen",
                "127.0.0.1:0",
                "--body-path",
                "io_uring",
            ],
            1,
        )
    }

    /// `strata edge` in the edge namespace with tenant `acme` homed on storage hosts `home`
    /// (cluster "home") and replicated on `replica` (cluster "replica"), plus `extra` flags.
    pub fn start_edge(&self, cache: &Path, home: &[usize], replica: &[usize], extra: &[&str]) -> Strata {
        let list = |hosts: &[usize]| {
            hosts
                .iter()
                .map(|&i| self.storage_addr(i).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let listen = self.edge_addr().to_string();
        let home_flag = format!("home={}", list(home));
        let replica_flag = format!("replica={}", list(replica));
        let tenant = if replica.is_empty() {
            "acme=home".to_string()
        } else {
            "acme=home,replica".to_string()
        };
        let mut args = vec![
            "edge",
            "--cache-dir",
            cache.to_str().expect("utf-8 path"),
            "--listen",
            &listen,
            "--admin-listen",
            "127.0.0.1:0",
            "--body-path",
            "io_uring",
            "--cluster",
            &home_flag,
            "--tenant",
            &tenant,
            "--miss",
            "proxy",
        ];
        if !replica.is_empty() {
            args.extend(["--cluster", &replica_flag]);
        }
        args.extend_from_slice(extra);
        Strata::start_in(Some(&self.lan.edge_ns), &args, 1)
    }

    /// Runs `f` as a viewer (in the viewers' namespace).
    pub fn as_viewer<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        in_netns(&self.viewer_ns(), f)
    }
}
