//! The proxy-wasm side: each callback becomes one call on `wasmgate_core::multicluster`,
//! which decides; `hostcalls.rs` carries its host calls out.

use std::rc::Rc;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};
use wasmgate_core::multicluster::http_stream::ATTEMPT_COUNT;
use wasmgate_core::multicluster::{
    tcp_connection, BalancerHost, BalancerStream, BalancerWorker, HealthChecker, StreamAction,
};

use crate::hostcalls::ProxyHost;

type Worker = BalancerWorker<ProxyHost>;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(BalancerRoot { worker: None, checks: None })
    });
}}

fn action(a: StreamAction) -> Action {
    match a {
        StreamAction::Continue => Action::Continue,
        StreamAction::Pause => Action::Pause,
    }
}

struct BalancerRoot {
    worker: Option<Rc<Worker>>,
    checks: Option<HealthChecker>,
}

impl Context for BalancerRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        if let (Some(w), Some(checks)) = (&self.worker, &mut self.checks) {
            // A failed call (reset, timeout, no cluster) calls back with no headers.
            checks.on_response(w, token, num_headers > 0);
        }
    }
}

impl RootContext for BalancerRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match Worker::configure(ProxyHost, &config) {
            Ok((worker, checks)) => {
                self.worker = Some(Rc::new(worker));
                self.checks = Some(checks);
                true
            }
            Err(e) => {
                // Reject the whole config: the proxy refuses the plugin rather than run half of it.
                error!("wasmgate.balancer: invalid configuration: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let (Some(w), Some(checks)) = (&self.worker, &mut self.checks) {
            checks.on_tick(w);
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.worker.as_ref().is_some_and(|w| w.serves_tcp()) {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(BalancerHttp {
            worker: self.worker.clone(),
            stream: BalancerStream::new(),
        }))
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(BalancerTcp {
            worker: self.worker.clone(),
        }))
    }
}

struct BalancerHttp {
    worker: Option<Rc<Worker>>,
    stream: BalancerStream,
}

impl Context for BalancerHttp {}

impl HttpContext for BalancerHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        match &self.worker {
            Some(w) => action(self.stream.on_request_headers(w)),
            None => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        match &self.worker {
            Some(w) => action(self.stream.on_response_headers(w)),
            None => {
                ProxyHost.remove_response_header(ATTEMPT_COUNT);
                Action::Continue
            }
        }
    }

    fn on_log(&mut self) {
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
