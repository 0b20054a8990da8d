//! `proxy_path = auto`: each proxied body moves by the path (sockmap, splice or copy) that was
//! measured fastest for responses like it, so `auto` does not keep using a path slower than
//! another for the response at hand.
//!
//! Responses are classed by the link (the storage server's address), the body size and the
//! concurrency (a moving average of the open client connections). A class is measured in
//! epochs: for a while (at least [`EPOCH_TIME`] and [`EPOCH_BODIES`] bodies) every body of the
//! class takes one path, and the epoch's score is the class's throughput over the epoch: the
//! bytes of its bodies that completed in it, per second, leaving out a first stretch
//! ([`SETTLE`]) in which the bodies of the previous epoch's path are still finishing. Per-body
//! rates would mislead under load: a path that keeps each body waiting longer (sockmap's
//! pieces) can still move more in total, because it leaves the CPU to the others. A class
//! first gives every path two epochs; after that it takes the fastest (splice, which spends
//! the least CPU per byte, with a head start of [`SPLICE_HEAD_START`]), and one epoch in
//! [`EXPLORE_EVERY`] measures another path again (one measured at under half the fastest's
//! rate [`SLOW_EXPLORE_FACTOR`] times less often), so a change in the link or the load is
//! noticed. A change of the fastest path is logged with the rates; every choice is counted in
//! /metrics, and the rates are exposed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::body_relay::ProxyPath;

/// Epochs each path gets in a class before the class picks by rate.
const WARMUP_EPOCHS: u64 = 2;
/// One epoch in this many measures a path other than the fastest again.
const EXPLORE_EVERY: u64 = 12;
/// A path measured at under half the fastest's rate is measured again this many times less
/// often.
const SLOW_EXPLORE_FACTOR: u64 = 8;
/// An epoch lasts at least this long...
const EPOCH_TIME: Duration = Duration::from_millis(250);
/// ... and takes at least this many bodies.
const EPOCH_BODIES: u32 = 8;
/// The start of an epoch that its score leaves out.
const SETTLE: Duration = Duration::from_millis(50);
/// Weight of a new epoch's score in a path's moving average.
const EWMA_WEIGHT: f64 = 0.5;
/// Another path takes over as the fastest only when it measures this much faster (so two
/// paths of about the same rate do not swap back and forth).
const TAKEOVER: f64 = 1.10;
/// Splice's head start when paths are compared: it moves the bytes without copying them
/// through userspace and spends the least CPU per byte of the machine in every bench run, so
/// copy or sockmap leads only when measured this much faster. Epoch scores of near-equal
/// paths differ by a few per cent from one epoch to the next (veth, 16 connections: copy
/// 1556 against splice 1514 MB/s, where splice moved 8 % more over the whole run).
const SPLICE_HEAD_START: f64 = 1.05;

/// Body sizes that behave alike.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SizeClass {
    UpTo64KiB,
    UpTo1MiB,
    UpTo16MiB,
    Larger,
}

impl SizeClass {
    pub fn of(len: u64) -> SizeClass {
        match len {
            ..=0x1_0000 => SizeClass::UpTo64KiB,
            0x1_0001..=0x10_0000 => SizeClass::UpTo1MiB,
            0x10_0001..=0x100_0000 => SizeClass::UpTo16MiB,
            _ => SizeClass::Larger,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SizeClass::UpTo64KiB => "le_64KiB",
            SizeClass::UpTo1MiB => "le_1MiB",
            SizeClass::UpTo16MiB => "le_16MiB",
            SizeClass::Larger => "gt_16MiB",
        }
    }
}

/// Concurrency levels that behave alike: open client connections.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum LoadClass {
    One,
    UpTo8,
    UpTo32,
    More,
}

impl LoadClass {
    pub const ALL: [LoadClass; 4] = [
        LoadClass::One,
        LoadClass::UpTo8,
        LoadClass::UpTo32,
        LoadClass::More,
    ];

    /// The open client connections the class spans.
    fn bounds(self) -> (f64, f64) {
        match self {
            LoadClass::One => (0.0, 1.0),
            LoadClass::UpTo8 => (2.0, 8.0),
            LoadClass::UpTo32 => (9.0, 32.0),
            LoadClass::More => (33.0, f64::INFINITY),
        }
    }

    pub fn of(clients: usize) -> LoadClass {
        match clients {
            0..=1 => LoadClass::One,
            2..=8 => LoadClass::UpTo8,
            9..=32 => LoadClass::UpTo32,
            _ => LoadClass::More,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LoadClass::One => "1",
            LoadClass::UpTo8 => "2-8",
            LoadClass::UpTo32 => "9-32",
            LoadClass::More => "33+",
        }
    }
}

/// The class of one response.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct ChoiceKey {
    pub link: IpAddr,
    pub size: SizeClass,
    pub load: LoadClass,
}

/// Why a path was chosen.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Why {
    /// It measured fastest for the class.
    Fastest,
    /// It is being measured (a new class, or a periodic check of another path).
    Measuring,
}

impl Why {
    fn as_str(self) -> &'static str {
        match self {
            Why::Fastest => "fastest",
            Why::Measuring => "measuring",
        }
    }
}

/// One response's choice, to be reported back with [`PathChooser::record`].
#[derive(Clone, Copy, Debug)]
pub struct Choice {
    pub path: ProxyPath,
    pub key: ChoiceKey,
    pub why: Why,
}

#[derive(Clone, Copy, Debug, Default)]
struct PathRate {
    /// Epochs scored.
    samples: u64,
    /// Moving average, bytes per second.
    rate: f64,
}

/// A stretch of time in which every body of a class takes one path.
#[derive(Debug)]
struct Epoch {
    slot: usize,
    why: Why,
    started: Instant,
    chosen: u32,
    /// Bytes of the class's bodies that completed after the settling stretch.
    bytes: u64,
}

impl Epoch {
    fn full(&self, now: Instant) -> bool {
        self.chosen >= EPOCH_BODIES && now.saturating_duration_since(self.started) >= EPOCH_TIME
    }

    /// The class's throughput over the epoch, ended at `now`.
    fn score(&self, now: Instant) -> Option<f64> {
        let window = now.saturating_duration_since(self.started + SETTLE);
        (self.bytes > 0 && !window.is_zero()).then(|| self.bytes as f64 / window.as_secs_f64())
    }
}

#[derive(Debug, Default)]
struct ClassStats {
    rates: [PathRate; 3],
    /// Epochs started per path.
    started: [u64; 3],
    /// Epochs started after the warm-up.
    turns: u64,
    fastest: Option<usize>,
    current: Option<Epoch>,
}

/// Counts of choices by (path, size, load, why).
type ChoiceCounts = HashMap<(usize, SizeClass, LoadClass, Why), u64>;

/// The per-response path choice of an edge whose proxy path is `auto`.
#[derive(Debug)]
pub struct PathChooser {
    /// The paths it chooses among, as indices into [`PATHS`].
    slots: Vec<usize>,
    classes: Mutex<HashMap<ChoiceKey, ClassStats>>,
    counts: Mutex<ChoiceCounts>,
    /// Moving average of the open client connections as bodies start, ×16.
    load_average: AtomicUsize,
    /// The concurrency class now, an index into [`LoadClass::ALL`].
    load_class: AtomicUsize,
}

fn index(path: ProxyPath) -> usize {
    match path {
        ProxyPath::Sockmap => 0,
        ProxyPath::Auto | ProxyPath::Splice => 1,
        ProxyPath::Copy => 2,
    }
}

const PATHS: [ProxyPath; 3] = [ProxyPath::Sockmap, ProxyPath::Splice, ProxyPath::Copy];

impl PathChooser {
    /// A chooser over splice and copy, and sockmap when its programs are loaded.
    pub fn new(sockmap: bool) -> PathChooser {
        let paths: &[ProxyPath] = if sockmap { &PATHS } else { &PATHS[1..] };
        PathChooser {
            slots: paths.iter().map(|p| index(*p)).collect(),
            classes: Mutex::new(HashMap::new()),
            counts: Mutex::new(HashMap::new()),
            load_average: AtomicUsize::new(0),
            load_class: AtomicUsize::new(0),
        }
    }

    /// The concurrency class of a body starting while `clients` client connections are open:
    /// from a moving average of that count as bodies start, so that the bodies of one steady
    /// load share a class (and an epoch) rather than scatter by the moment each started; and
    /// it changes only once the average is well outside the class (by half again), so a load
    /// near a boundary does not flap between two classes. Open connections, not proxied bodies
    /// in flight: how long a body stays in flight depends on its path, so a slower path being
    /// measured raised the count and moved the class under its own epoch (over veth at 64
    /// connections the classes then held a few bodies each, splice was measured at 149 MB/s,
    /// and `auto` moved 89 % of bytes by sockmap, at ×0.79 splice's throughput).
    pub fn load_class(&self, clients: usize) -> LoadClass {
        // Fixed point, ×16; a lost update under a race only delays the average a little.
        let old = self.load_average.load(Ordering::Relaxed);
        let new = old + (clients * 16) / 8 - old / 8;
        self.load_average.store(new, Ordering::Relaxed);
        let average = new as f64 / 16.0;
        let current = LoadClass::ALL[self.load_class.load(Ordering::Relaxed) % LoadClass::ALL.len()];
        let (low, high) = current.bounds();
        let class = if average < low / 1.5 || average > high * 1.5 {
            let next = LoadClass::of(average.round() as usize);
            self.load_class.store(
                LoadClass::ALL.iter().position(|c| *c == next).unwrap_or(0),
                Ordering::Relaxed,
            );
            next
        } else {
            current
        };
        class
    }

    /// The path for a body of `len` bytes from `link` at the concurrency class `load` (as
    /// [`load_class`](Self::load_class) returns it).
    pub fn choose(&self, link: IpAddr, len: u64, load: LoadClass) -> Choice {
        self.choose_at(link, len, load, Instant::now())
    }

    fn choose_at(&self, link: IpAddr, len: u64, load: LoadClass, now: Instant) -> Choice {
        let key = ChoiceKey {
            link,
            size: SizeClass::of(len),
            load,
        };
        let (slot, why) = match self.classes.lock() {
            Ok(mut classes) => self.enter_epoch(key, classes.entry(key).or_default(), now),
            Err(_) => (index(ProxyPath::Splice), Why::Fastest),
        };
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((slot, key.size, key.load, why)).or_default() += 1;
        }
        let choice = Choice {
            path: PATHS[slot],
            key,
            why,
        };
        tracing::debug!(path = path_name(slot), why = why.as_str(), link = %link, size = key.size.as_str(), load = key.load.as_str(), "proxy auto: path chosen");
        choice
    }

    /// Counts a body into the class's current epoch, first ending a full one and starting the
    /// next on the path it picks.
    fn enter_epoch(&self, key: ChoiceKey, class: &mut ClassStats, now: Instant) -> (usize, Why) {
        let ended = match &class.current {
            None => true,
            Some(e) => e.full(now),
        };
        if ended {
            if let Some(old) = class.current.take() {
                self.score(key, class, &old, now);
            }
            let (slot, why) = self.pick(class);
            class.started[slot] += 1;
            class.current = Some(Epoch {
                slot,
                why,
                started: now,
                chosen: 0,
                bytes: 0,
            });
        }
        match class.current.as_mut() {
            Some(e) => {
                e.chosen += 1;
                (e.slot, e.why)
            }
            None => (index(ProxyPath::Splice), Why::Fastest),
        }
    }

    /// The path for a new epoch.
    fn pick(&self, class: &mut ClassStats) -> (usize, Why) {
        let slots = &self.slots;
        // A class first measures every path.
        if let Some(&least) = slots
            .iter()
            .filter(|&&s| class.started[s] < WARMUP_EPOCHS)
            .min_by_key(|&&s| class.started[s])
        {
            return (least, Why::Measuring);
        }
        class.turns += 1;
        let fastest = class.fastest.unwrap_or_else(|| leader(class, slots));
        if class.turns.is_multiple_of(EXPLORE_EVERY) {
            let others: Vec<usize> = slots.iter().copied().filter(|&s| s != fastest).collect();
            let round = class.turns / EXPLORE_EVERY;
            if let Some(&other) = others.get(round as usize % others.len().max(1)) {
                let slow = class.rates[other].rate * 2.0 < class.rates[fastest].rate;
                if !slow || round.is_multiple_of(SLOW_EXPLORE_FACTOR) {
                    return (other, Why::Measuring);
                }
            }
        }
        (fastest, Why::Fastest)
    }

    /// Reports that the body chosen by `choice` ended, having moved `bytes` (0 if it failed).
    pub fn record(&self, choice: &Choice, bytes: u64) {
        self.record_at(choice, bytes, Instant::now());
    }

    fn record_at(&self, choice: &Choice, bytes: u64, now: Instant) {
        let Ok(mut classes) = self.classes.lock() else {
            return;
        };
        let Some(class) = classes.get_mut(&choice.key) else {
            return;
        };
        // Whatever path moved it: the epoch measures the class's throughput while its path is
        // the one chosen.
        if let Some(e) = class.current.as_mut() {
            if now >= e.started + SETTLE {
                e.bytes += bytes;
            }
        }
    }

    /// Folds an ended epoch's score into its path's rate; logs a change of the fastest path.
    fn score(&self, key: ChoiceKey, class: &mut ClassStats, epoch: &Epoch, now: Instant) {
        let Some(rate) = epoch.score(now) else {
            return;
        };
        let r = &mut class.rates[epoch.slot];
        r.rate = if r.samples == 0 {
            rate
        } else {
            r.rate + EWMA_WEIGHT * (rate - r.rate)
        };
        r.samples += 1;
        let slots = &self.slots;
        if slots.iter().any(|&s| class.rates[s].samples == 0) {
            return;
        }
        let fastest = Some(leader(class, slots));
        if fastest != class.fastest {
            let rates: Vec<String> = slots
                .iter()
                .map(|&s| format!("{} {:.0} MB/s", path_name(s), class.rates[s].rate / 1e6))
                .collect();
            tracing::info!(
                link = %key.link,
                size = key.size.as_str(),
                load = key.load.as_str(),
                fastest = fastest.map_or("none", path_name),
                rates = %rates.join(", "),
                "proxy auto: fastest path for this class of responses changed"
            );
            class.fastest = fastest;
        }
    }

    /// The fastest path measured for `key`, once every path has been measured.
    pub fn fastest(&self, key: &ChoiceKey) -> Option<ProxyPath> {
        let classes = self.classes.lock().ok()?;
        classes.get(key)?.fastest.map(|s| PATHS[s])
    }
}

/// The fastest of `slots` for `class`: the current one unless another beats it by
/// [`TAKEOVER`], splice counted with its [`SPLICE_HEAD_START`].
fn leader(class: &ClassStats, slots: &[usize]) -> usize {
    let weighed = |slot: usize| {
        let head_start = if slot == index(ProxyPath::Splice) {
            SPLICE_HEAD_START
        } else {
            1.0
        };
        class.rates[slot].rate * head_start
    };
    let best = slots
        .iter()
        .copied()
        .max_by(|&a, &b| weighed(a).total_cmp(&weighed(b)))
        .unwrap_or(index(ProxyPath::Splice));
    match class.fastest {
        Some(current) if weighed(best) <= weighed(current) * TAKEOVER => current,
        _ => best,
    }
}

fn path_name(slot: usize) -> &'static str {
    match PATHS[slot] {
        ProxyPath::Sockmap => "sockmap",
        ProxyPath::Auto | ProxyPath::Splice => "splice",
        ProxyPath::Copy => "copy",
    }
}

impl Collector for PathChooser {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.encode_metrics(&mut encoder)
    }
}

impl PathChooser {
    /// Writes the choice counts and the measured rates (scraped with the upstream pool's).
    pub fn encode_metrics(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<_> = match self.counts.lock() {
            Ok(c) => c.iter().map(|(k, v)| (*k, *v)).collect(),
            Err(_) => Vec::new(),
        };
        let mut family = encoder.encode_descriptor(
            "proxy_auto_choices",
            "Proxied bodies by the path proxy_path=auto chose, the body's size and concurrency class, and why (fastest measured, or measuring)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for ((slot, size, load, why), n) in counts {
            ConstCounter::new(n).encode(family.encode_family(&[
                ("path", path_name(slot)),
                ("size", size.as_str()),
                ("load", load.as_str()),
                ("why", why.as_str()),
            ])?)?;
        }
        let rates: Vec<(ChoiceKey, usize, f64)> = match self.classes.lock() {
            Ok(classes) => classes
                .iter()
                .flat_map(|(key, class)| {
                    self.slots
                        .iter()
                        .copied()
                        .filter(|&s| class.rates[s].samples > 0)
                        .map(|s| (*key, s, class.rates[s].rate))
                        .collect::<Vec<_>>()
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        let mut family = encoder.encode_descriptor(
            "proxy_auto_rate_bytes_per_second",
            "Moving average of the rate proxied bodies moved at, by link, size and concurrency class and path (what proxy_path=auto chooses by)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (key, slot, rate) in rates {
            let link = key.link.to_string();
            ConstGauge::new(rate as i64).encode(family.encode_family(&[
                ("link", link.as_str()),
                ("size", key.size.as_str()),
                ("load", key.load.as_str()),
                ("path", path_name(slot)),
            ])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    /// One body at a time for `secs` of simulated time, 1 MiB each, where each path moves at
    /// `rate(path)` MB/s; returns the choices made.
    fn run(c: &PathChooser, clock: &mut Instant, secs: f64, rate: impl Fn(ProxyPath) -> f64) -> Vec<Choice> {
        let end = *clock + Duration::from_secs_f64(secs);
        let mut out = Vec::new();
        while *clock < end {
            let choice = c.choose_at(LINK, 1 << 20, LoadClass::One, *clock);
            *clock += Duration::from_secs_f64((1 << 20) as f64 / (rate(choice.path) * 1e6));
            c.record_at(&choice, 1 << 20, *clock);
            out.push(choice);
        }
        out
    }

    fn share(choices: &[Choice], path: ProxyPath) -> f64 {
        choices.iter().filter(|c| c.path == path).count() as f64 / choices.len() as f64
    }

    #[test]
    fn after_measuring_every_path_it_takes_the_fastest() {
        let c = PathChooser::new(true);
        let mut clock = Instant::now();
        let rate = |p| match p {
            ProxyPath::Sockmap => 200.0,
            ProxyPath::Copy => 800.0,
            _ => 1000.0,
        };
        let warm = run(&c, &mut clock, 1.5, rate);
        for p in PATHS {
            assert!(
                warm.iter().any(|c| c.path == p && c.why == Why::Measuring),
                "{p:?} measured"
            );
        }
        let later = run(&c, &mut clock, 60.0, rate);
        assert!(
            share(&later, ProxyPath::Splice) > 0.9,
            "{}",
            share(&later, ProxyPath::Splice)
        );
        assert_eq!(
            c.fastest(&warm[0].key),
            Some(ProxyPath::Splice),
            "the fastest is known"
        );
        // Copy (80 % of splice) is measured again now and then; sockmap (20 %) more rarely.
        let copy = later.iter().filter(|c| c.path == ProxyPath::Copy).count();
        let sockmap = later.iter().filter(|c| c.path == ProxyPath::Sockmap).count();
        assert!(copy > sockmap && sockmap > 0, "copy {copy}, sockmap {sockmap}");
    }

    #[test]
    fn of_near_equal_paths_splice_is_taken_and_a_clearly_faster_one_beats_it() {
        for (copy, expected) in [(1030.0, ProxyPath::Splice), (1300.0, ProxyPath::Copy)] {
            let c = PathChooser::new(false);
            let mut clock = Instant::now();
            let rate = |p| if p == ProxyPath::Copy { copy } else { 1000.0 };
            let warm = run(&c, &mut clock, 3.0, rate);
            let later = run(&c, &mut clock, 30.0, rate);
            assert_eq!(c.fastest(&warm[0].key), Some(expected), "copy at {copy}");
            assert!(
                share(&later, expected) > 0.85,
                "copy at {copy}: {}",
                share(&later, expected)
            );
        }
    }

    #[test]
    fn a_path_that_becomes_faster_is_noticed_and_taken() {
        let c = PathChooser::new(true);
        let mut clock = Instant::now();
        run(&c, &mut clock, 10.0, |p| {
            if p == ProxyPath::Splice {
                1000.0
            } else {
                700.0
            }
        });
        let after = run(&c, &mut clock, 120.0, |p| {
            if p == ProxyPath::Sockmap {
                2000.0
            } else {
                700.0
            }
        });
        let tail = &after[after.len() * 3 / 4..];
        assert!(
            share(tail, ProxyPath::Sockmap) > 0.8,
            "{}",
            share(tail, ProxyPath::Sockmap)
        );
    }

    #[test]
    fn under_concurrency_an_epoch_scores_the_total_throughput_not_each_bodys_rate() {
        // Sockmap keeps each of 16 bodies waiting 4 × longer but moves them all at once; splice
        // moves them one after another, each fast: sockmap moves more in total.
        let c = PathChooser::new(true);
        let mut clock = Instant::now();
        for _ in 0..400 {
            let choices: Vec<Choice> = (0..16)
                .map(|_| c.choose_at(LINK, 1 << 20, LoadClass::UpTo32, clock))
                .collect();
            let path = choices[0].path;
            assert!(choices.iter().all(|c| c.path == path), "one path per epoch");
            let batch = match path {
                ProxyPath::Sockmap => Duration::from_millis(8),
                ProxyPath::Splice => Duration::from_millis(16),
                _ => Duration::from_millis(20),
            };
            for (i, choice) in choices.iter().enumerate() {
                let done = match path {
                    ProxyPath::Sockmap => clock + batch,
                    _ => clock + batch * (i as u32 + 1) / 16,
                };
                c.record_at(choice, 1 << 20, done);
            }
            clock += batch;
        }
        let key = c.choose_at(LINK, 1 << 20, LoadClass::UpTo32, clock).key;
        assert_eq!(c.fastest(&key), Some(ProxyPath::Sockmap));
    }

    #[test]
    fn classes_are_measured_apart_and_without_sockmap_it_is_never_chosen() {
        let c = PathChooser::new(false);
        let mut clock = Instant::now();
        // Small bodies a while (copy is faster for them), then large ones (splice is).
        for _ in 0..20_000 {
            let small = c.choose_at(LINK, 4096, LoadClass::One, clock);
            clock += Duration::from_micros(if small.path == ProxyPath::Copy { 100 } else { 400 });
            c.record_at(&small, 4096, clock);
            assert_ne!(small.path, ProxyPath::Sockmap);
        }
        for _ in 0..5_000 {
            let big = c.choose_at(LINK, 8 << 20, LoadClass::One, clock);
            clock += Duration::from_millis(if big.path == ProxyPath::Copy { 4 } else { 1 });
            c.record_at(&big, 8 << 20, clock);
            assert_ne!(big.path, ProxyPath::Sockmap);
        }
        let small = c.choose_at(LINK, 4096, LoadClass::One, clock);
        let big = c.choose_at(LINK, 8 << 20, LoadClass::One, clock);
        assert_eq!(c.fastest(&small.key), Some(ProxyPath::Copy));
        assert_eq!(c.fastest(&big.key), Some(ProxyPath::Splice));
    }

    #[test]
    fn a_failed_body_counts_no_bytes() {
        let c = PathChooser::new(false);
        let mut clock = Instant::now();
        let choice = c.choose_at(LINK, 1 << 20, LoadClass::One, clock);
        clock += Duration::from_millis(5);
        c.record_at(&choice, 0, clock);
        run(&c, &mut clock, 5.0, |_| 500.0);
        let rate = c.classes.lock().expect("lock")[&choice.key].rates[index(choice.path)].rate;
        // Its 5 ms moved nothing: the epoch it fell in scores a little lower.
        assert!(rate > 450e6 && rate < 520e6, "{rate}");
    }

    #[test]
    fn the_concurrency_class_follows_the_average_load_and_does_not_flap_at_a_boundary() {
        let c = PathChooser::new(false);
        // Open connections swing between 6 and 12 around the 8/9 boundary: the class settles
        // once and stays.
        let seen: Vec<LoadClass> = (0..400)
            .map(|i| c.load_class(if (i / 7) % 2 == 0 { 6 } else { 12 }))
            .collect();
        let settled = &seen[100..];
        assert!(settled.iter().all(|l| *l == settled[0]), "{settled:?}");
        // A load well past the class moves it.
        let more: Vec<LoadClass> = (0..200).map(|_| c.load_class(64)).collect();
        assert_eq!(more.last(), Some(&LoadClass::More));
    }

    #[test]
    fn choices_are_counted_in_metrics() {
        let c = PathChooser::new(true);
        let mut clock = Instant::now();
        let n = run(&c, &mut clock, 3.0, |_| 100.0).len();
        let mut registry = prometheus_client::registry::Registry::with_prefix("strata");
        registry.register_collector(Box::new(c));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with("strata_proxy_auto_choices_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert_eq!(total, n as f64, "{text}");
        assert!(
            text.contains(
                "strata_proxy_auto_rate_bytes_per_second{link=\"10.0.0.2\",size=\"le_1MiB\",load=\"1\",path=\"sockmap\"}"
            ),
            "{text}"
        );
    }
}
