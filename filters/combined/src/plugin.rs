//! The contexts: each callback goes to the router's and the balancer's types in the order
//! Envoy would call the two filters (decode: router, balancer; encode: balancer, router).

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};
use wasmgate_balancer::plugin::{BalancerHttp, BalancerRoot};
use wasmgate_core::combined::{split, under};
use wasmgate_core::{ConfigError, ConfigErrorKind};
use wasmgate_router::plugin::{RouterHttp, RouterRoot};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(CombinedRoot::default())
    });
}}

#[derive(Default)]
struct CombinedRoot {
    router: RouterRoot,
    balancer: BalancerRoot,
}

impl CombinedRoot {
    /// Configures both halves, or neither counts: any error fails the whole plugin.
    fn configure(&mut self, config: &[u8]) -> Result<(), ConfigError> {
        let halves = split(config)?;
        self.router
            .configure(&halves.router)
            .map_err(|e| under("router", e))?;
        if self.router.serves_tcp() {
            return Err(ConfigError::new("", ConfigErrorKind::CombinedHttpOnly));
        }
        self.balancer
            .configure(&halves.balancer)
            .map_err(|e| under("balancer", e))
    }
}

impl Context for CombinedRoot {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        // Only the balancer's health checks make calls.
        self.balancer.health_check_response(token, num_headers);
    }
}

impl RootContext for CombinedRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        match self.configure(&config) {
            Ok(()) => true,
            Err(e) => {
                // Reject the whole config: the proxy refuses the plugin rather than run half of it.
                error!("wasmgate.combined: invalid configuration: {e}");
                false
            }
        }
    }

    fn on_tick(&mut self) {
        self.balancer.tick();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(CombinedHttp {
            router: self.router.http_stream(),
            balancer: self.balancer.http_stream(),
        }))
    }
}

struct CombinedHttp {
    router: RouterHttp,
    balancer: BalancerHttp,
}

impl Context for CombinedHttp {}

impl HttpContext for CombinedHttp {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // A router reply (Pause) ends decoding: the balancer, after it, never sees the request.
        match self.router.on_request_headers() {
            Action::Continue => self.balancer.on_request_headers(),
            paused => paused,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        // Encode order: the balancer (the later filter) first.
        match self.balancer.on_response_headers() {
            Action::Continue => self.router.on_response_headers(),
            paused => paused,
        }
    }

    fn on_log(&mut self) {
        self.balancer.on_stream_log();
    }
}
