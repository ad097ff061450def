//! High-availability harness: keep-alive HTTP backends that die abruptly or drain, and a
//! paced load generator that records every request's fate.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Open connections of one backend, so that dying can cut them.
type Conns = Arc<Mutex<Vec<TcpStream>>>;

struct Serving {
    stop: Arc<AtomicBool>,
    accept: JoinHandle<()>,
}

/// An HTTP/1.1 backend on a fixed loopback port standing in for one member cluster. It keeps
/// connections alive (as a real service behind Envoy's connection pool does), answers every
/// path 200 with `x-backend: <name>` after `delay`, and can
/// - [`kill`](Self::kill): die abruptly: stop listening and cut every connection, in-flight
///   requests included, without an answer;
/// - [`drain`](Self::drain): stop listening, answer what is in flight with `connection: close`,
///   and close idle connections;
/// - [`restore`](Self::restore): listen again on the same port.
pub struct HaBackend {
    pub name: String,
    addr: SocketAddr,
    delay: Duration,
    served: Arc<AtomicU64>,
    conns: Conns,
    /// Set while dead or draining: connections answer nothing more (dead) or close (drain).
    dead: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    serving: Option<Serving>,
}

impl HaBackend {
    pub fn start(name: &str, delay: Duration) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let mut b = HaBackend {
            name: name.to_string(),
            addr: listener.local_addr()?,
            delay,
            served: Arc::new(AtomicU64::new(0)),
            conns: Arc::default(),
            dead: Arc::default(),
            draining: Arc::default(),
            serving: None,
        };
        b.serve(listener)?;
        Ok(b)
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Requests answered so far (health checks included).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    fn serve(&mut self, listener: TcpListener) -> std::io::Result<()> {
        listener.set_nonblocking(true)?;
        self.dead.store(false, Ordering::SeqCst);
        self.draining.store(false, Ordering::SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, conns) = (stop.clone(), self.conns.clone());
        let ctx = ConnCtx {
            name: self.name.clone(),
            delay: self.delay,
            served: self.served.clone(),
            dead: self.dead.clone(),
            draining: self.draining.clone(),
        };
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if let Ok(c) = conn.try_clone() {
                            if let Ok(mut all) = conns.lock() {
                                all.push(c);
                            }
                        }
                        let ctx = ctx.clone();
                        std::thread::spawn(move || ctx.answer(conn));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
            // The listener drops here: the port refuses connections until restored.
        });
        self.serving = Some(Serving { stop, accept });
        Ok(())
    }

    fn stop_listening(&mut self) {
        if let Some(s) = self.serving.take() {
            s.stop.store(true, Ordering::SeqCst);
            let _ = s.accept.join();
        }
    }

    /// Dies abruptly: refuses new connections and cuts open ones, in-flight requests included.
    pub fn kill(&mut self) {
        self.dead.store(true, Ordering::SeqCst);
        self.stop_listening();
        if let Ok(mut all) = self.conns.lock() {
            for c in all.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Drains: refuses new connections, finishes in-flight requests (closing their
    /// connections after the answer) and closes idle connections.
    pub fn drain(&mut self) {
        self.draining.store(true, Ordering::SeqCst);
        self.stop_listening();
        // In-flight requests take at most `delay`; then whatever is left is idle.
        std::thread::sleep(self.delay + Duration::from_millis(20));
        if let Ok(mut all) = self.conns.lock() {
            for c in all.drain(..) {
                let _ = c.shutdown(Shutdown::Both);
            }
        }
    }

    /// Listens again on the same port.
    pub fn restore(&mut self) -> std::io::Result<()> {
        if self.serving.is_none() {
            let listener = TcpListener::bind(self.addr)?;
            self.serve(listener)?;
        }
        Ok(())
    }
}

impl Drop for HaBackend {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Clone)]
struct ConnCtx {
    name: String,
    delay: Duration,
    served: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
}

impl ConnCtx {
    fn answer(&self, conn: TcpStream) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(mut out) = conn.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(conn);
        loop {
            // Read one request head; requests here carry no body.
            let mut line = Vec::new();
            let mut first = true;
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line == b"\r\n" || line == b"\n" => {
                        if first {
                            continue;
                        }
                        break;
                    }
                    Ok(_) => first = false,
                }
            }
            std::thread::sleep(self.delay);
            if self.dead.load(Ordering::SeqCst) {
                // Died mid-request: no answer, the connection is cut.
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
            let close = self.draining.load(Ordering::SeqCst);
            self.served.fetch_add(1, Ordering::Relaxed);
            let body = format!("{}\n", self.name);
            let resp = format!(
                "HTTP/1.1 200 OK\r\nx-backend: {}\r\ncontent-length: {}\r\n{}\r\n{body}",
                self.name,
                body.len(),
                if close { "connection: close\r\n" } else { "" }
            );
            if out.write_all(resp.as_bytes()).is_err() || close {
                let _ = out.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// What happened to one request of a load run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// When it was sent, from the start of the run.
    pub sent: Duration,
    /// Its affinity key (the `x-user` header), if any.
    pub key: Option<u32>,
    /// The status, or 0 when the connection to Envoy failed.
    pub status: u16,
    pub backend: Option<String>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.status == 200
    }
}

/// Paced load: `rate` requests per second from a schedule (not a closed loop, so a slow
/// answer does not lower the rate), spread over `clients` threads, each request on its own
/// connection to Envoy. Keys cycle over `keys` users when `keys > 0`.
pub struct Load {
    stop: Arc<AtomicBool>,
    scheduler: Option<JoinHandle<()>>,
    results: Arc<Mutex<Vec<Outcome>>>,
    pub start: Instant,
}

impl Load {
    pub fn start(addr: SocketAddr, host: &str, rate: u32, clients: usize, keys: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let results: Arc<Mutex<Vec<Outcome>>> = Arc::default();
        let start = Instant::now();
        let (tx, rx) = mpsc::channel::<(Duration, Option<u32>)>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for _ in 0..clients.max(1) {
            let (rx, results, host) = (rx.clone(), results.clone(), host.to_string());
            workers.push(std::thread::spawn(move || loop {
                let job = match rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok((sent, key)) = job else { return };
                let user = key.map(|k| format!("user-{k}"));
                let headers: Vec<(&str, &[u8])> = user
                    .as_deref()
                    .map(|u| vec![("x-user", u.as_bytes())])
                    .unwrap_or_default();
                let r = crate::http_client::request(addr, "GET", &host, "/", &headers);
                let outcome = Outcome {
                    sent,
                    key,
                    status: r.as_ref().map_or(0, |r| r.status),
                    backend: r.ok().and_then(|r| r.backend()),
                };
                if let Ok(mut all) = results.lock() {
                    all.push(outcome);
                }
            }));
        }
        let flag = stop.clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
        let scheduler = std::thread::spawn(move || {
            let mut n: u32 = 0;
            while !flag.load(Ordering::SeqCst) {
                let due = period * n;
                let now = start.elapsed();
                if due > now {
                    std::thread::sleep(due - now);
                }
                let key = (keys > 0).then(|| n % keys);
                if tx.send((start.elapsed(), key)).is_err() {
                    break;
                }
                n += 1;
            }
            drop(tx);
            for w in workers {
                let _ = w.join();
            }
        });
        Load {
            stop,
            scheduler: Some(scheduler),
            results,
            start,
        }
    }

    /// Time since the run started.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Stops sending, waits for what is in flight, and returns every outcome in send order.
    pub fn finish(mut self) -> Vec<Outcome> {
        self.halt();
        let mut all = self.results.lock().map(|r| r.clone()).unwrap_or_default();
        all.sort_by_key(|o| o.sent);
        all
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.scheduler.take() {
            let _ = s.join();
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One phase of the failover scenario and what it cost.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: &'static str,
    /// Requests sent during the phase.
    pub sent: usize,
    /// Requests that did not get a 200.
    pub lost: usize,
    /// For a phase that brings members back: from the restore to the first request (sent
    /// after it) that each restored member served, the slowest of them.
    pub recovered_after: Option<Duration>,
}

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct FailoverReport {
    pub rate: u32,
    pub phases: Vec<Phase>,
    /// Keys that moved while their own member was up (must be 0 with affinity).
    pub moved_keys: Vec<String>,
    /// The active-check interval of the generated config.
    pub check_interval: Duration,
    /// Envoy's retries into another member (`cluster.<member>.failover.upstream_rq_retry`).
    pub retries: u64,
    /// Access-log entries of the run, for tests that look at them.
    pub access_log: Vec<serde_json::Value>,
    /// Envoy's counters and gauges whose name starts with `wasmcustom.`.
    pub stats: Vec<(String, u64)>,
}

impl FailoverReport {
    pub fn phase(&self, name: &str) -> Option<&Phase> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// A table for people: phase, requests, lost, recovery.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<40} {:>8} {:>6} {:>12}\n",
            "phase", "requests", "lost", "recovered"
        );
        for p in &self.phases {
            out.push_str(&format!(
                "{:<40} {:>8} {:>6} {:>12}\n",
                p.name,
                p.sent,
                p.lost,
                p.recovered_after
                    .map(|d| format!("{} ms", d.as_millis()))
                    .unwrap_or_else(|| "-".into())
            ));
        }
        let stat = |suffix: &str| -> u64 {
            self.stats
                .iter()
                .filter(|(n, _)| n.ends_with(suffix))
                .map(|(_, v)| v)
                .sum()
        };
        out.push_str(&format!(
            "keys that moved off a live member: {}; retries into another member: {}; passive ejections: {}; active-check down verdicts: {}; active-check interval {} ms; {} requests/s\n",
            self.moved_keys.len(),
            self.retries,
            stat(".ejections"),
            stat(".health_check_down"),
            self.check_interval.as_millis(),
            self.rate
        ));
        out
    }
}

/// How long a request may still be in flight after it was sent (answers take 5 ms).
const IN_FLIGHT: Duration = Duration::from_millis(200);

/// Phase names, in order.
pub const WARM: &str = "all members up";
pub const KILL_ONE: &str = "us-east killed abruptly";
pub const BACK_ONE: &str = "us-east restored";
pub const DRAIN_ONE: &str = "us-west drained";
pub const BACK_DRAINED: &str = "us-west restored";
pub const KILL_REGION: &str = "region us (us-east, us-west) killed";
pub const BACK_REGION: &str = "region us restored";

/// The failover scenario on the generated config of `configs/examples/ha-failover` (its
/// inventory replaced by local backends): 3 member clusters in two regions, affinity by the
/// `x-user` header over 60 users, Envoy with 2 workers, `rate` requests/s throughout. Each
/// phase lasts `phase`.
pub fn run_failover(phase: Duration, rate: u32) -> Result<FailoverReport, String> {
    use crate::deploy::{deploy_with, Member};
    let ex = crate::paths::examples().join("ha-failover");
    let inputs: Vec<std::path::PathBuf> = [
        "multiclusterservice.yaml",
        "multiclusteringress.yaml",
        "destinationrule.yaml",
    ]
    .iter()
    .map(|f| ex.join(f))
    .collect();
    let delay = Duration::from_millis(5);
    let names = ["us-east", "us-west", "eu-west"];
    let regions = [
        ("us", "us-east1-b"),
        ("us", "us-west1-a"),
        ("eu", "europe-west1-c"),
    ];
    let mut backends = Vec::new();
    for n in names {
        backends.push(HaBackend::start(n, delay).map_err(|e| e.to_string())?);
    }
    let members: Vec<Member> = names
        .iter()
        .zip(regions)
        .zip(&backends)
        .map(|((name, (region, zone)), b)| Member {
            name: name.to_string(),
            labels: vec![
                ("region".into(), region.into()),
                ("zone".into(), zone.into()),
            ],
            endpoints: vec![("shop".into(), 80, b.endpoint())],
        })
        .collect();
    let d = deploy_with("ha-failover", &inputs, &members, &[], 2).map_err(|e| e.to_string())?;
    let check_interval = d
        .output
        .balancer
        .as_ref()
        .and_then(|b| b.services.get("shop"))
        .and_then(|s| s.health.as_ref()?.active.as_ref())
        .map(|a| Duration::from_millis(a.interval_ms))
        .ok_or("the generated config has no active checks")?;
    // Let the first checks pass before traffic starts.
    std::thread::sleep(check_interval * 2);
    let load = Load::start(d.http, "shop.example", rate, 24, 60);
    let mut marks: Vec<(&'static str, Duration)> = Vec::new();
    let mut mark = |name: &'static str, load: &Load| marks.push((name, load.now()));

    mark(WARM, &load);
    std::thread::sleep(phase);
    mark(KILL_ONE, &load);
    backends[0].kill();
    std::thread::sleep(phase);
    mark(BACK_ONE, &load);
    backends[0].restore().map_err(|e| e.to_string())?;
    std::thread::sleep(phase);
    mark(DRAIN_ONE, &load);
    backends[1].drain();
    std::thread::sleep(phase);
    mark(BACK_DRAINED, &load);
    backends[1].restore().map_err(|e| e.to_string())?;
    std::thread::sleep(phase);
    mark(KILL_REGION, &load);
    backends[0].kill();
    backends[1].kill();
    std::thread::sleep(phase);
    mark(BACK_REGION, &load);
    backends[0].restore().map_err(|e| e.to_string())?;
    backends[1].restore().map_err(|e| e.to_string())?;
    std::thread::sleep(phase);
    let end = load.now();
    let outcomes = load.finish();

    // Which members are down in each phase, and which come back at its start.
    let down: [&[&str]; 7] = [
        &[],
        &["us-east"],
        &[],
        &["us-west"],
        &[],
        &["us-east", "us-west"],
        &[],
    ];
    let back: [&[&str]; 7] = [
        &[],
        &[],
        &["us-east"],
        &[],
        &["us-west"],
        &[],
        &["us-east", "us-west"],
    ];
    // Each key's home: the member that served it while all were up.
    let mut home: std::collections::BTreeMap<u32, String> = Default::default();
    let warm_end = marks.get(1).map_or(end, |m| m.1);
    for o in outcomes.iter().filter(|o| o.sent < warm_end && o.ok()) {
        if let (Some(k), Some(b)) = (o.key, &o.backend) {
            home.entry(k).or_insert_with(|| b.clone());
        }
    }
    let mut phases = Vec::new();
    let mut moved = std::collections::BTreeSet::new();
    for (i, (name, start)) in marks.iter().enumerate() {
        let stop = marks.get(i + 1).map_or(end, |m| m.1);
        let in_phase: Vec<&Outcome> = outcomes
            .iter()
            .filter(|o| o.sent >= *start && o.sent < stop)
            .collect();
        let down_now = down.get(i).copied().unwrap_or(&[]);
        for o in &in_phase {
            let (Some(k), Some(b)) = (o.key, &o.backend) else {
                continue;
            };
            // A key whose home is up (and was up in the phase before, so no move back is
            // pending) must stay there.
            let Some(h) = home.get(&k) else { continue };
            let prev_down = i
                .checked_sub(1)
                .and_then(|j| down.get(j))
                .copied()
                .unwrap_or(&[]);
            let returning = back.get(i).copied().unwrap_or(&[]);
            // A request sent just before a member dies may be in flight when it does, and be
            // retried elsewhere: it belongs to the next phase as well.
            let dying = if o.sent + IN_FLIGHT >= stop {
                down.get(i + 1).copied().unwrap_or(&[])
            } else {
                &[]
            };
            if !down_now.contains(&h.as_str())
                && !dying.contains(&h.as_str())
                && !prev_down.contains(&h.as_str())
                && !returning.contains(&h.as_str())
                && b != h
            {
                moved.insert(format!("user-{k}: {h} -> {b} ({name})"));
            }
        }
        let recovered_after = back.get(i).filter(|b| !b.is_empty()).map(|returning| {
            returning
                .iter()
                .map(|m| {
                    in_phase
                        .iter()
                        .find(|o| o.backend.as_deref() == Some(*m))
                        .map_or(stop - *start, |o| o.sent - *start)
                })
                .max()
                .unwrap_or_default()
        });
        phases.push(Phase {
            name,
            sent: in_phase.len(),
            lost: in_phase.iter().filter(|o| !o.ok()).count(),
            recovered_after,
        });
    }
    // The access log is flushed on Envoy's file-flush interval.
    std::thread::sleep(Duration::from_millis(300));
    let access_log = d.access_log_entries();
    let stats = d.envoy.stats_with_prefix("wasmcustom.");
    let retries = d
        .envoy
        .stats_with_prefix("cluster.")
        .iter()
        .filter(|(n, _)| n.ends_with(".failover.upstream_rq_retry"))
        .map(|(_, v)| v)
        .sum();
    Ok(FailoverReport {
        rate,
        phases,
        moved_keys: moved.into_iter().collect(),
        check_interval,
        retries,
        access_log,
        stats,
    })
}
