//! Parks keep-alive connections that stay idle, so that thousands of quiet viewers cost a few
//! hundred bytes each instead of a tokio task and I/O registration apiece.
//!
//! A connection idle for `park_after` leaves tokio (`into_std`) and its task ends; the parker
//! keeps the socket, its open asset and its connection slot in a slab and watches it with its
//! own epoll instance (EPOLLONESHOT). When the client sends its next request (or closes), the
//! parker hands the socket back to the runtime as a new connection task; when the idle timeout
//! passes first, it closes it. One thread, one epoll fd, whatever the number of parked sockets.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slab::Slab;

use super::conn_slot::{CachedAsset, ConnSlot};

/// Longest the parker sleeps between idle-timeout sweeps.
const SWEEP: Duration = Duration::from_millis(500);

/// Parked connections added since the last trim that make a sweep hand freed memory back.
const TRIM_AFTER_PARKED: usize = 256;

struct Parked {
    stream: std::net::TcpStream,
    asset: Option<CachedAsset>,
    slot: ConnSlot,
    deadline: Instant,
}

/// The parked connections of one server.
pub struct IdleParker {
    epoll: OwnedFd,
    parked: Mutex<Slab<Parked>>,
}

impl IdleParker {
    /// Creates the parker; `run_on` starts its thread once the server context exists.
    pub fn new() -> io::Result<Arc<IdleParker>> {
        // SAFETY: epoll_create1 returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is new and owned only here.
        Ok(Arc::new(IdleParker {
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            parked: Mutex::new(Slab::new()),
        }))
    }

    /// Starts the parker's thread, which hands connections that wake to `resume` (a new task on
    /// `runtime`, with the server context `ctx`) and stops when that context is gone.
    pub fn run_on<C, F, Fut>(
        self: &Arc<Self>,
        runtime: tokio::runtime::Handle,
        ctx: &Arc<C>,
        resume: F,
    ) -> io::Result<()>
    where
        C: Send + Sync + 'static,
        F: Fn(tokio::net::TcpStream, Arc<C>, ConnSlot, Option<CachedAsset>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let worker = self.clone();
        let ctx = Arc::downgrade(ctx);
        std::thread::Builder::new()
            .name("idle-parker".into())
            .spawn(move || worker.run(runtime, ctx, Arc::new(resume)))?;
        Ok(())
    }

    /// Parks an idle connection until it becomes readable or `deadline` passes.
    pub fn park(
        &self,
        stream: std::net::TcpStream,
        asset: Option<CachedAsset>,
        slot: ConnSlot,
        deadline: Instant,
    ) {
        let fd = stream.as_raw_fd();
        slot.metrics().parked(1);
        let Ok(mut parked) = self.parked.lock() else {
            return;
        };
        let key = parked.insert(Parked {
            stream,
            asset,
            slot,
            deadline,
        });
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: key as u64,
        };
        // SAFETY: valid epoll fd, socket fd and event pointer.
        if unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) } != 0 {
            // Cannot watch it: close it rather than leak it.
            tracing::warn!(error = %io::Error::last_os_error(), "parking an idle connection failed; closing it");
            let p = parked.remove(key);
            p.slot.metrics().parked(-1);
        }
    }

    fn take(&self, key: usize) -> Option<Parked> {
        let mut parked = self.parked.lock().ok()?;
        let p = parked.try_remove(key)?;
        p.slot.metrics().parked(-1);
        // SAFETY: valid fds; the event pointer may be null for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                p.stream.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
        Some(p)
    }

    fn run<C, F, Fut>(
        self: Arc<Self>,
        runtime: tokio::runtime::Handle,
        ctx: std::sync::Weak<C>,
        resume: Arc<F>,
    ) where
        C: Send + Sync + 'static,
        F: Fn(tokio::net::TcpStream, Arc<C>, ConnSlot, Option<CachedAsset>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut next_sweep = Instant::now() + SWEEP;
        // The first sweep trims too: start-up (program loading, rings) leaves freed memory.
        let mut parked_at_trim: Option<usize> = None;
        loop {
            let Some(ctx) = ctx.upgrade() else { return };
            // SAFETY: the buffer holds events.len() entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    events.as_mut_ptr(),
                    events.len() as i32,
                    SWEEP.as_millis() as i32,
                )
            };
            for ev in events.iter().take(n.max(0) as usize) {
                let Some(p) = self.take(ev.u64 as usize) else {
                    continue;
                };
                let (ctx, resume) = (ctx.clone(), resume.clone());
                runtime.spawn(async move {
                    match tokio::net::TcpStream::from_std(p.stream) {
                        Ok(stream) => resume(stream, ctx, p.slot, p.asset).await,
                        Err(e) => tracing::warn!(error = %e, "resuming a parked connection failed"),
                    }
                });
            }
            let now = Instant::now();
            if now >= next_sweep {
                next_sweep = now + SWEEP;
                let expired: Vec<usize> = match self.parked.lock() {
                    Ok(parked) => parked
                        .iter()
                        .filter(|(_, p)| p.deadline <= now)
                        .map(|(k, _)| k)
                        .collect(),
                    Err(_) => return,
                };
                for key in expired {
                    if let Some(p) = self.take(key) {
                        p.slot.metrics().timeout();
                    }
                }
                let parked = self.parked.lock().map_or(0, |p| p.len());
                match parked_at_trim {
                    Some(at) if parked < at + TRIM_AFTER_PARKED => {
                        // Connections left: the next burst counts from here.
                        parked_at_trim = Some(at.min(parked));
                    }
                    _ => {
                        release_freed_memory();
                        parked_at_trim = Some(parked);
                    }
                }
            }
        }
    }
}

/// Hands memory the allocator holds free back to the kernel. A burst of connections leaves the
/// heap full of freed task and buffer memory once they park; without this the process keeps it
/// resident, and idle viewers look several times dearer than they are (glibc's malloc_trim).
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
