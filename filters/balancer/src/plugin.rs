//! The proxy-wasm side: each callback becomes one call on `wasmgate_core::multicluster`,
//! which decides; `hostcalls.rs` carries its host calls out.

use std::rc::Rc;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType};
use wasmgate_core::multicluster::http_stream::ATTEMPT_COUNT;
use wasmgate_core::multicluster::{
    tcp_connection, BalancerHost, BalancerStream, BalancerWorker, HealthChecker, StreamAction,
};
use wasmgate_core::ConfigError;

use crate::hostcalls::ProxyHost;

type Worker = BalancerWorker<ProxyHost>;

// Left out when another module (filters/combined) links this crate and drives its contexts.
#[cfg(feature = "standalone")]
proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(BalancerRoot::default())
    });
}}

fn action(a: StreamAction) -> Action {
    match a {
        StreamAction::Continue => Action::Continue,
        StreamAction::Pause => Action::Pause,
    }
}

/// The balancer's root: its own in the balancer module, one half of the combined module's.
#[derive(Default)]
pub struct BalancerRoot {
    worker: Option<Rc<Worker>>,
    checks: Option<HealthChecker>,
}

impl BalancerRoot {
    /// Compiles `config` (the balancer's JSON) and sets up health checks; on error the root
    /// keeps no worker.
    pub fn configure(&mut self, config: &[u8]) -> Result<(), ConfigError> {
        let (worker, checks) = Worker::configure(ProxyHost, config)?;
        self.worker = Some(Rc::new(worker));
        self.checks = Some(checks);
        Ok(())
    }

    /// Whether the config serves TCP connections rather than HTTP streams.
    pub fn serves_tcp(&self) -> bool {
        self.worker.as_ref().is_some_and(|w| w.serves_tcp())
    }

    /// The health-check tick.
    pub fn tick(&mut self) {
        if let (Some(w), Some(checks)) = (&self.worker, &mut self.checks) {
            checks.on_tick(w);
        }
    }

    /// A health check's answer; a failed call (reset, timeout, no cluster) calls back with no
    /// headers.
    pub fn health_check_response(&mut self, token: u32, num_headers: usize) {
        if let (Some(w), Some(checks)) = (&self.worker, &mut self.checks) {
            checks.on_response(w, token, num_headers > 0);
        }
    }

    /// The balancer's state for one HTTP stream.
    pub fn http_stream(&self) -> BalancerHttp {
        BalancerHttp {
            worker: self.worker.clone(),
            stream: BalancerStream::new(),
        }
    }
}

impl Context for BalancerRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        self.health_check_response(token, num_headers);
    }
}

impl RootContext for BalancerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match self.configure(&config) {
            Ok(()) => true,
            Err(e) => {
                // Reject the whole config: the proxy refuses the plugin rather than run half of it.
                error!("wasmgate.balancer: invalid configuration: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.tick();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.serves_tcp() {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(self.http_stream()))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(BalancerTcp {
            worker: self.worker.clone(),
        }))
    }
}

/// The balancer's part of one HTTP stream.
pub struct BalancerHttp {
    worker: Option<Rc<Worker>>,
    stream: BalancerStream,
}

impl Context for BalancerHttp {}

impl HttpContext for BalancerHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.on_request_headers()
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.on_response_headers()
    }

    fn on_log(&mut self) {
        self.on_stream_log();
    }
}

impl BalancerHttp {
    /// Picks the member cluster (Continue) or replies (Pause).
    pub fn on_request_headers(&mut self) -> Action {
        match &self.worker {
            Some(w) => action(self.stream.on_request_headers(w)),
            None => Action::Continue,
        }
    }

    /// Passive health and retries from the response.
    pub fn on_response_headers(&mut self) -> Action {
        match &self.worker {
            Some(w) => action(self.stream.on_response_headers(w)),
            None => {
                ProxyHost.remove_response_header(ATTEMPT_COUNT);
                Action::Continue
            }
        }
    }

    /// The stream's end: its outcome counts for the member's health.
    pub fn on_stream_log(&mut self) {
        if let Some(w) = &self.worker {
            self.stream.on_log(w);
        }
    }
}

struct BalancerTcp {
    worker: Option<Rc<Worker>>,
}

impl Context for BalancerTcp {}

impl StreamContext for BalancerTcp {
    fn on_new_connection(&mut self) -> Action {
        if let Some(w) = &self.worker {
            tcp_connection::on_new_connection(w);
        }
        Action::Continue
    }
}
