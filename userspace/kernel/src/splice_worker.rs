//! io_uring splice workers: the seed's send queue and back-end write workers.
//!
//! Each worker thread owns one io_uring ring. A connection task hands it a [`SpliceJob`]: an
//! optional `file → pipe` SPLICE linked (IOSQE_IO_LINK) to a `pipe → socket` SPLICE, so the body
//! moves from the page cache to the socket without entering userspace. The worker answers with
//! the two results through a oneshot channel. New jobs wake a worker blocked in
//! `io_uring_enter` through an eventfd it always keeps a READ posted on.
//!
//! A job owns (through `Arc`s) every descriptor it names: a task that is dropped while its job
//! is in flight cannot let a descriptor number be closed and reused under the kernel's feet.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use io_uring::{opcode, squeue, types, IoUring, Probe};
use slab::Slab;
use thiserror::Error;
use tokio::sync::oneshot;

use super::pipe::Pipe;

/// Idle pipes kept for reuse.
const MAX_IDLE_PIPES: usize = 64;
/// Submission queue entries per worker ring.
const RING_ENTRIES: u32 = 256;
/// user_data of the eventfd read that wakes a worker.
const WAKE_TOKEN: u64 = u64::MAX;

/// Why the splice pool could not start or run a job.
#[derive(Debug, Error)]
pub enum SpliceError {
    #[error("io_uring setup failed: {0}")]
    Setup(io::Error),
    #[error("this kernel's io_uring does not support IORING_OP_SPLICE")]
    NoSpliceOp,
    #[error("creating a splice pipe failed: {0}")]
    Pipe(io::Error),
    #[error("splice worker {0} has stopped")]
    WorkerGone(usize),
}

/// A pipe used as the in-kernel buffer between file and socket (blocking ends: the io-wq
/// thread that fills it never finds it full).
pub type SplicePipe = Pipe;

/// One step of a body transfer.
pub struct SpliceJob {
    /// Source file and offset; used when `fill > 0`.
    pub file: Arc<File>,
    pub file_offset: u64,
    /// Bytes to move file → pipe first (0: the pipe already holds data).
    pub fill: u32,
    pub pipe: Arc<SplicePipe>,
    /// The client socket (a dup owned by the transfer).
    pub socket: Arc<OwnedFd>,
    /// Bytes to move pipe → socket.
    pub drain: u32,
}

/// What the kernel did with a job.
#[derive(Debug)]
pub struct SpliceOutcome {
    /// Bytes moved file → pipe, if a fill was asked for.
    pub filled: Option<io::Result<u32>>,
    /// Bytes moved pipe → socket. `ECANCELED` when a short fill broke the link.
    pub drained: io::Result<u32>,
}

struct Queued {
    job: SpliceJob,
    reply: oneshot::Sender<SpliceOutcome>,
}

struct InFlight {
    queued: Queued,
    filled: Option<io::Result<u32>>,
    drained: Option<io::Result<u32>>,
}

struct WorkerHandle {
    queue: mpsc::Sender<Queued>,
    wake: Arc<OwnedFd>,
}

/// The pool of splice workers, one ring per worker.
pub struct SplicePool {
    workers: Vec<WorkerHandle>,
    next: AtomicUsize,
    idle_pipes: Mutex<Vec<SplicePipe>>,
}

impl SplicePool {
    /// Probes io_uring for SPLICE support and starts `workers` worker threads.
    pub fn start(workers: usize) -> Result<Arc<SplicePool>, SpliceError> {
        probe()?;
        let mut handles = Vec::with_capacity(workers.max(1));
        for index in 0..workers.max(1) {
            let ring = IoUring::new(RING_ENTRIES).map_err(SpliceError::Setup)?;
            // SAFETY: eventfd returns a new descriptor or -1.
            let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
            if efd < 0 {
                return Err(SpliceError::Setup(io::Error::last_os_error()));
            }
            // SAFETY: efd was just created and is owned only here.
            let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
            let (tx, rx) = mpsc::channel();
            let worker_wake = wake.clone();
            std::thread::Builder::new()
                .name(format!("splice-worker-{index}"))
                .spawn(move || run_worker(index, ring, rx, worker_wake))
                .map_err(SpliceError::Setup)?;
            handles.push(WorkerHandle { queue: tx, wake });
        }
        Ok(Arc::new(SplicePool {
            workers: handles,
            next: AtomicUsize::new(0),
            idle_pipes: Mutex::new(Vec::new()),
        }))
    }

    /// Number of worker rings.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Takes an empty pipe from the pool or makes one.
    pub fn take_pipe(&self) -> Result<SplicePipe, SpliceError> {
        if let Some(p) = self.idle_pipes.lock().ok().and_then(|mut v| v.pop()) {
            return Ok(p);
        }
        Pipe::new(false).map_err(SpliceError::Pipe)
    }

    /// Returns a pipe that is known to be empty.
    pub fn put_pipe(&self, pipe: SplicePipe) {
        if let Ok(mut idle) = self.idle_pipes.lock() {
            if idle.len() < MAX_IDLE_PIPES {
                idle.push(pipe);
            }
        }
    }

    /// Runs one job on the worker chosen by `affinity` and waits for the kernel's answer.
    pub async fn run(&self, affinity: usize, job: SpliceJob) -> Result<SpliceOutcome, SpliceError> {
        let index = affinity % self.workers.len();
        let worker = &self.workers[index];
        let (reply, answer) = oneshot::channel();
        worker
            .queue
            .send(Queued { job, reply })
            .map_err(|_| SpliceError::WorkerGone(index))?;
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to the worker's eventfd.
        unsafe { libc::write(worker.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
        answer.await.map_err(|_| SpliceError::WorkerGone(index))
    }

    /// A number that spreads callers over the workers.
    pub fn next_affinity(&self) -> usize {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// Checks that io_uring exists here and supports SPLICE.
pub fn probe() -> Result<(), SpliceError> {
    let ring = IoUring::new(2).map_err(SpliceError::Setup)?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(SpliceError::Setup)?;
    if !probe.is_supported(opcode::Splice::CODE) {
        return Err(SpliceError::NoSpliceOp);
    }
    Ok(())
}

fn result(res: i32) -> io::Result<u32> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as u32)
    }
}

/// The worker loop: queue jobs as SQEs, wait, deliver completions.
fn run_worker(index: usize, mut ring: IoUring, queue: mpsc::Receiver<Queued>, wake: Arc<OwnedFd>) {
    let mut in_flight: Slab<InFlight> = Slab::with_capacity(64);
    let mut wake_buf = Box::new([0u8; 8]);
    let mut wake_posted = false;
    let mut closing = false;
    loop {
        if !wake_posted {
            let read = opcode::Read::new(types::Fd(wake.as_raw_fd()), wake_buf.as_mut_ptr(), 8)
                .build()
                .user_data(WAKE_TOKEN);
            if push(&mut ring, &read) {
                wake_posted = true;
            }
        }
        loop {
            match queue.try_recv() {
                Ok(queued) => submit_job(&mut ring, &mut in_flight, queued),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    closing = true;
                    break;
                }
            }
        }
        if closing && in_flight.is_empty() {
            tracing::debug!(worker = index, "splice worker stopping");
            return;
        }
        match ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) || e.raw_os_error() == Some(libc::EBUSY) => {}
            Err(e) => {
                tracing::error!(worker = index, error = %e, "io_uring_enter failed; splice worker stops");
                return;
            }
        }
        let completions: Vec<(u64, i32)> = ring.completion().map(|c| (c.user_data(), c.result())).collect();
        for (token, res) in completions {
            if token == WAKE_TOKEN {
                wake_posted = false;
                continue;
            }
            let slot = (token >> 2) as usize;
            let Some(entry) = in_flight.get_mut(slot) else {
                continue;
            };
            if token & 3 == 1 {
                entry.filled = Some(result(res));
            } else {
                entry.drained = Some(result(res));
            }
            let fill_done = entry.queued.job.fill == 0 || entry.filled.is_some();
            if fill_done && entry.drained.is_some() {
                let InFlight {
                    queued: Queued { job, reply },
                    filled,
                    drained,
                } = in_flight.remove(slot);
                // Release the job's descriptors before answering, so the task gets its pipe
                // back unshared and can return it to the pool.
                drop(job);
                let outcome = SpliceOutcome {
                    filled,
                    drained: drained.unwrap_or_else(|| Err(io::Error::from_raw_os_error(libc::ECANCELED))),
                };
                // The task may have gone away; then the outcome is simply dropped.
                let _ = reply.send(outcome);
            }
        }
    }
}

/// Pushes one SQE, submitting first if the queue is full. False if it still does not fit.
fn push(ring: &mut IoUring, sqe: &squeue::Entry) -> bool {
    // SAFETY: every buffer and descriptor an SQE names is owned by the worker or by the job,
    // and stays alive until its completion has been reaped.
    if unsafe { ring.submission().push(sqe) }.is_ok() {
        return true;
    }
    let _ = ring.submit();
    // SAFETY: as above.
    unsafe { ring.submission().push(sqe) }.is_ok()
}

fn submit_job(ring: &mut IoUring, in_flight: &mut Slab<InFlight>, queued: Queued) {
    let job = &queued.job;
    let pipe_r = types::Fd(job.pipe.read.as_raw_fd());
    let pipe_w = types::Fd(job.pipe.write.as_raw_fd());
    let sock = types::Fd(job.socket.as_raw_fd());
    let file = types::Fd(job.file.as_raw_fd());
    let fill = (job.fill > 0).then(|| {
        opcode::Splice::new(file, job.file_offset as i64, pipe_w, -1, job.fill)
            .flags(libc::SPLICE_F_MOVE)
            .build()
            .flags(squeue::Flags::IO_LINK)
    });
    let drain = opcode::Splice::new(pipe_r, -1, sock, -1, job.drain)
        .flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK)
        .build();
    let slot = in_flight.vacant_key() as u64;
    // Both SQEs of a linked pair must land in the same submission batch.
    let needed = if fill.is_some() { 2 } else { 1 };
    let free = {
        let sq = ring.submission();
        sq.capacity() - sq.len()
    };
    if free < needed {
        let _ = ring.submit();
    }
    let mut ok = true;
    if let Some(fill) = fill {
        ok &= push(ring, &fill.user_data(slot << 2 | 1));
    }
    ok &= push(ring, &drain.user_data(slot << 2 | 2));
    if !ok {
        let _ = queued.reply.send(SpliceOutcome {
            filled: None,
            drained: Err(io::Error::other("splice worker submission queue full")),
        });
        return;
    }
    in_flight.insert(InFlight {
        queued,
        filled: None,
        drained: None,
    });
}
