//! A [`BalancerHost`] over memory for native tests: shared data in a [`MemoryStore`] (share
//! it between simulated workers), a settable clock, scripted request/response headers and
//! properties, and a record of everything the logic asked the proxy to do. Every method
//! counts as one host call, as it is one in the `.wasm`.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;

use super::balancer_host::{BalancerHost, CheckRequest, LogLevel, MetricKind};
use super::store::{MemoryStore, SharedStore, StoreError};

/// A health check the logic sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentCheck {
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub token: u32,
}

/// A local reply: status, headers, body.
pub type Reply = (u32, Vec<(String, String)>, Vec<u8>);

#[derive(Debug, Default)]
pub struct MockHost {
    pub store: Rc<MemoryStore>,
    pub clock_ms: Cell<u64>,
    pub seed: u64,
    /// Properties by path joined with '.'.
    pub properties: RefCell<Vec<(String, Vec<u8>)>>,
    pub request: RefCell<Vec<(String, Vec<u8>)>>,
    pub response: RefCell<Vec<(String, Vec<u8>)>>,
    /// The `:status` of the check answer being delivered.
    pub check_status: RefCell<Option<Vec<u8>>>,
    pub checks: RefCell<Vec<SentCheck>>,
    pub refuse_checks: Cell<bool>,
    pub tick_period_ms: Cell<Option<u64>>,
    /// Defined metrics (id = index): kind, name, value.
    pub metrics: RefCell<Vec<(MetricKind, String, u64)>>,
    pub filter_state: RefCell<Vec<(String, String)>>,
    pub reply: RefCell<Option<Reply>>,
    pub tcp_cluster: RefCell<Option<String>>,
    pub closed: Cell<bool>,
    pub logs: RefCell<Vec<(LogLevel, String)>>,
    /// Host calls made so far.
    pub calls: Cell<u32>,
    /// The next this many shared-data writes lose a race: another worker rewrites the key
    /// between our read and our write.
    pub races: Cell<u32>,
}

impl MockHost {
    pub fn new(store: &Rc<MemoryStore>, seed: u64) -> Self {
        MockHost {
            store: Rc::clone(store),
            seed,
            ..MockHost::default()
        }
    }

    fn call(&self) {
        self.calls.set(self.calls.get() + 1);
    }

    pub fn set_property(&self, path: &str, value: &[u8]) {
        self.properties
            .borrow_mut()
            .push((path.to_string(), value.to_vec()));
    }

    /// Starts a new stream: request headers set, response and stream outputs cleared.
    pub fn start_request(&self, headers: &[(&str, &str)]) {
        *self.request.borrow_mut() = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
        self.response.borrow_mut().clear();
        self.filter_state.borrow_mut().clear();
        *self.reply.borrow_mut() = None;
    }

    pub fn set_response(&self, headers: &[(&str, &str)]) {
        *self.response.borrow_mut() = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect();
    }

    pub fn request_value(&self, name: &str) -> Option<String> {
        get(&self.request.borrow(), name).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    pub fn response_values(&self, name: &str) -> Vec<String> {
        self.response
            .borrow()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// A metric's value by name (`None`: never defined).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.metrics
            .borrow()
            .iter()
            .find(|(_, n, _)| n == name)
            .map(|(_, _, v)| *v)
    }

    pub fn logged(&self, needle: &str) -> bool {
        self.logs.borrow().iter().any(|(_, l)| l.contains(needle))
    }
}

fn get(map: &[(String, Vec<u8>)], name: &str) -> Option<Vec<u8>> {
    map.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
}

fn set(map: &mut Vec<(String, Vec<u8>)>, name: &str, value: Option<&str>) {
    map.retain(|(n, _)| n != name);
    if let Some(v) = value {
        map.push((name.to_string(), v.as_bytes().to_vec()));
    }
}

impl SharedStore for MockHost {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, u32) {
        self.call();
        self.store.get(key)
    }

    fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), StoreError> {
        self.call();
        if self.races.get() > 0 {
            self.races.set(self.races.get() - 1);
            let (current, c) = self.store.get(key);
            self.store.set(key, &current.unwrap_or_default(), c)?;
        }
        self.store.set(key, value, cas)
    }
}

impl BalancerHost for MockHost {
    fn now_ms(&self) -> u64 {
        self.call();
        self.clock_ms.get()
    }

    fn random_u64(&self) -> u64 {
        self.call();
        self.seed
    }

    fn log(&self, level: LogLevel, message: fmt::Arguments<'_>) {
        self.call();
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.call();
        let key = path.join(".");
        get(&self.properties.borrow(), &key)
    }

    fn define_metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        self.call();
        let mut m = self.metrics.borrow_mut();
        m.push((kind, name.to_string(), 0));
        u32::try_from(m.len() - 1).ok()
    }

    fn increment_metric(&self, id: u32) {
        self.call();
        if let Some(m) = self.metrics.borrow_mut().get_mut(id as usize) {
            m.2 += 1;
        }
    }

    fn record_metric(&self, id: u32, value: u64) {
        self.call();
        if let Some(m) = self.metrics.borrow_mut().get_mut(id as usize) {
            m.2 = value;
        }
    }

    fn set_tick_period_ms(&self, period_ms: u64) {
        self.call();
        self.tick_period_ms.set(Some(period_ms));
    }

    fn dispatch_check(&self, check: &CheckRequest<'_>) -> Option<u32> {
        self.call();
        if self.refuse_checks.get() {
            return None;
        }
        let mut checks = self.checks.borrow_mut();
        let token = u32::try_from(checks.len()).ok()? + 1;
        checks.push(SentCheck {
            cluster: check.cluster.to_string(),
            headers: check
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            timeout_ms: check.timeout_ms,
            token,
        });
        Some(token)
    }

    fn check_response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.call();
        (name == ":status")
            .then(|| self.check_status.borrow().clone())
            .flatten()
    }

    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.call();
        get(&self.request.borrow(), name)
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) {
        self.call();
        set(&mut self.request.borrow_mut(), name, value);
    }

    fn response_header(&self, name: &str) -> Option<Vec<u8>> {
        self.call();
        get(&self.response.borrow(), name)
    }

    fn add_response_header(&self, name: &str, value: &str) {
        self.call();
        self.response
            .borrow_mut()
            .push((name.to_string(), value.as_bytes().to_vec()));
    }

    fn remove_response_header(&self, name: &str) {
        self.call();
        set(&mut self.response.borrow_mut(), name, None);
    }

    fn set_filter_state(&self, key: &str, value: &str) {
        self.call();
        self.filter_state
            .borrow_mut()
            .push((key.to_string(), value.to_string()));
    }

    fn send_reply(&self, status: u32, headers: &[(&str, &str)], body: &[u8]) {
        self.call();
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        *self.reply.borrow_mut() = Some((status, headers, body.to_vec()));
    }

    fn set_tcp_cluster(&self, cluster: &str) {
        self.call();
        *self.tcp_cluster.borrow_mut() = Some(cluster.to_string());
    }

    fn close_downstream(&self) {
        self.call();
        self.closed.set(true);
    }
}
