//! The end of a stream: the access log, done and delete callbacks (as Envoy's connection
//! manager calls them), then the outcome as the client saw it.

use crate::state::Access;
use crate::vm::Callback;

use super::phase::ClientPhase;
use super::router::codec_adds_zero_length;
use super::{HttpOutcome, Session};

impl Session<'_> {
    pub(super) fn finish(mut self) -> HttpOutcome {
        // Access log, then filter destruction, like Envoy's connection manager. The request
        // is complete now (`request.duration`).
        self.stream.end_nanos = Some(self.now());
        for cb in [Callback::Log, Callback::Done, Callback::Delete] {
            for i in 0..self.slots.len() {
                if self.slots[i].ctx == 0 {
                    continue;
                }
                let slot = &mut self.slots[i];
                let mut vm = slot.plugin.vm(slot.worker);
                if vm.failed.is_some() {
                    continue;
                }
                // The maps the filter still holds (a request map it never let go on, as
                // after a local reply from its request headers) stay writable.
                let mut access = Access {
                    log_phase: matches!(cb, Callback::Log),
                    body: None,
                    ..slot.access
                };
                let before = vm.host_calls();
                let out = vm.call(slot.ctx, cb, &mut self.stream, &mut access);
                self.calls += vm.host_calls().saturating_sub(before);
                drop(vm);
                self.out.logs.extend(out.logs);
                self.out.callouts.extend(out.callouts);
                if let Err(m) = out.result {
                    self.out.vm_failures.push(m);
                }
            }
        }
        let mut out = self.out;
        out.host_calls = self.calls;
        let (client_headers, headers_only) = match self.client {
            ClientPhase::Waiting | ClientPhase::Reset => (None, false),
            ClientPhase::Receiving(h) => (Some(h), false),
            ClientPhase::Complete {
                headers,
                headers_only,
            } => (headers, headers_only),
        };
        if let Some(h) = client_headers {
            out.status = h
                .get_str(":status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            out.response_headers = h.to_vec();
            if headers_only && !self.head && codec_adds_zero_length(out.status, &h) {
                // Envoy's HTTP/1.1 codec frames a response that ends with its headers.
                out.response_headers
                    .push(("content-length".into(), b"0".to_vec()));
            }
        } else {
            out.status = 0;
            out.reset = true;
        }
        out.filter_state = self
            .stream
            .filter_state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out
    }
}
