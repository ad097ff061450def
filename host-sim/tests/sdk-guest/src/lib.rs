//! Exercises the SDK's host-call conventions; what it does depends on the request path.

use std::time::Duration;

use proxy_wasm::traits::*;
use proxy_wasm::types::*;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { config: Vec::new(), ticks: 0 }) });
}}

struct Root {
    config: Vec<u8>,
    ticks: u64,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        self.config = self.get_plugin_configuration().unwrap_or_default();
        if self.config.starts_with(b"reject") {
            log::warn!("config rejected: {}", String::from_utf8_lossy(&self.config));
            return false;
        }
        if self.config.starts_with(b"tick") {
            self.set_tick_period(Duration::from_secs(1));
        }
        true
    }

    fn on_tick(&mut self) {
        self.ticks += 1;
        let _ = self.set_shared_data("ticks", Some(self.ticks.to_string().as_bytes()), None);
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http { path: String::new() }))
    }

    fn create_stream_context(&self, _: u32) -> Option<Box<dyn StreamContext>> {
        let cluster = self.config.strip_prefix(b"tcp:").unwrap_or_default().to_vec();
        Some(Box::new(Tcp { cluster }))
    }

    fn get_type(&self) -> Option<ContextType> {
        if self.config.starts_with(b"tcp:") {
            Some(ContextType::StreamContext)
        } else {
            Some(ContextType::HttpContext)
        }
    }
}

struct Http {
    path: String,
}

impl Context for Http {
    fn on_http_call_response(&mut self, _token: u32, headers: usize, body: usize, _trailers: usize) {
        if headers == 0 {
            self.send_http_response(503, vec![], Some(b"callout failed"));
            return;
        }
        let status = self.get_http_call_response_header(":status").unwrap_or_default();
        let body = self.get_http_call_response_body(0, body).unwrap_or_default();
        if status == "200" {
            self.set_http_request_header_bytes("x-wasmgate-cluster", Some(&body));
            self.resume_http_request();
        } else {
            self.send_http_response(403, vec![("x-auth-status", &status)], Some(b"denied"));
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        self.path = self.get_http_request_header(":path").unwrap_or_default();
        // Clients never pick the cluster.
        self.set_http_request_header("x-wasmgate-cluster", None);
        if let Some(t) = self.get_http_request_header_bytes("x-target") {
            self.set_http_request_header_bytes("x-wasmgate-cluster", Some(&t));
        }
        match self.path.as_str() {
            "/deny" => {
                self.send_http_response(403, vec![("x-denied", "1")], Some(b"no"));
                Action::Pause
            }
            "/callout" => {
                let headers = vec![(":method", "GET"), (":path", "/check"), (":authority", "auth")];
                match self.dispatch_http_call("auth", headers, None, vec![], Duration::from_secs(1)) {
                    Ok(_) => Action::Pause,
                    Err(e) => {
                        log::error!("dispatch failed: {e:?}");
                        Action::Continue
                    }
                }
            }
            "/panic" => panic!("boom at {}", self.path),
            "/props" => {
                for path in [
                    vec!["request", "path"],
                    vec!["source", "address"],
                    vec!["xds", "node", "metadata", "REGION"],
                    vec!["plugin_name"],
                ] {
                    let v = self.get_property(path.clone()).unwrap_or_default();
                    log::info!("{}={}", path.join("."), String::from_utf8_lossy(&v));
                }
                let port = self.get_property(vec!["source", "port"]).unwrap_or_default();
                let port = <[u8; 8]>::try_from(port.as_slice()).map(i64::from_le_bytes).unwrap_or(-1);
                log::info!("source.port={port}");
                Action::Continue
            }
            "/shared" => {
                let (value, cas) = self.get_shared_data("hits");
                let n: u64 = value.and_then(|v| String::from_utf8(v).ok()?.parse().ok()).unwrap_or(0);
                match self.set_shared_data("hits", Some((n + 1).to_string().as_bytes()), cas) {
                    Ok(()) => log::info!("hits={}", n + 1),
                    Err(e) => log::warn!("cas: {e:?}"),
                }
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, size: usize, end: bool) -> Action {
        match self.path.as_str() {
            "/body" if !end => Action::Pause,
            "/body" => {
                let body = self.get_http_request_body(0, size).unwrap_or_default();
                log::info!("body={}", String::from_utf8_lossy(&body));
                self.set_http_request_body(0, size, b"replaced");
                Action::Continue
            }
            // The request headers are gone by now: the SDK panics on Envoy's BadArgument.
            "/late" => {
                let _ = self.get_http_request_header("x-late");
                Action::Continue
            }
            _ => Action::Continue,
        }
    }

    fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
        self.set_http_response_header("x-filter", Some("sdk"));
        Action::Continue
    }
}

struct Tcp {
    cluster: Vec<u8>,
}

impl Context for Tcp {}

impl StreamContext for Tcp {
    fn on_new_connection(&mut self) -> Action {
        // SetEnvoyFilterStateArguments { path = 1, value = 2 }
        let key = b"envoy.tcp_proxy.cluster";
        let mut args = vec![0x0a, key.len() as u8];
        args.extend_from_slice(key);
        args.extend_from_slice(&[0x12, self.cluster.len() as u8]);
        args.extend_from_slice(&self.cluster);
        if let Err(e) = proxy_wasm::hostcalls::call_foreign_function("set_envoy_filter_state", Some(&args)) {
            log::error!("set_envoy_filter_state: {e:?}");
        }
        Action::Continue
    }
}
