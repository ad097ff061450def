//! Envoy's router at the end of the decode chain: route the request, dispatch it upstream (or
//! answer locally as Envoy would), deliver the response to the client.

use crate::headers::HeaderMap;
use crate::route_config::Decision;
use crate::state::LocalReply;
use crate::upstreams::{UpstreamReply, UpstreamRequest};

use super::phase::{Ev, RequestPhase, UpstreamPhase};
use super::Session;

impl Session<'_> {
    pub(super) fn router(&mut self, ev: Ev) {
        let end = match ev {
            Ev::Headers { end } => {
                self.route_request();
                end
            }
            Ev::Data { chunk, end } => {
                self.out.upstream_request_body.extend_from_slice(&chunk);
                end
            }
            Ev::Trailers => {
                self.out.upstream_request_trailers = self.stream.request_trailers.to_vec();
                true
            }
        };
        if end && self.request == RequestPhase::Open && self.out.cluster.is_some() {
            self.dispatch();
        }
    }

    /// Envoy's router: re-resolve the route if a filter cleared it, then pick the cluster.
    pub(super) fn route_request(&mut self) {
        if self.stream.route_cleared || self.decision.is_none() {
            let d = self.routes.resolve(&self.stream.request_headers);
            self.stream.route = d.info();
            self.stream.virtual_host = d.virtual_host();
            self.stream.route_cleared = false;
            self.decision = Some(d);
        }
        let reply = match self.decision.clone() {
            None | Some(Decision::NoRoute { .. }) => envoy_reply(404, "", "route_not_found"),
            Some(Decision::Direct { status, body, .. }) => LocalReply {
                status,
                headers: Vec::new(),
                body,
                details: "direct_response".into(),
                grpc_status: -1,
            },
            Some(Decision::NoCluster { .. }) => envoy_reply(
                self.routes.cluster_not_found_status,
                "",
                "cluster_not_found",
            ),
            Some(Decision::Cluster {
                cluster,
                timeout,
                remove_headers,
                ..
            }) => {
                if self.sim.upstreams().exists(&cluster) {
                    self.stream.upstream_address = Some(self.sim.upstreams().address(&cluster));
                    self.out.cluster = Some(cluster);
                    self.upstream = UpstreamPhase::Waiting {
                        timeout_at: self.now() + timeout.as_nanos() as u64,
                        reply: None,
                    };
                    let mut headers = self.stream.request_headers.clone();
                    for name in &remove_headers {
                        headers.remove(name);
                    }
                    headers.replace(
                        "x-envoy-expected-rq-timeout-ms",
                        timeout.as_millis().to_string(),
                    );
                    self.out.upstream_request = Some(headers.to_vec());
                    return;
                }
                envoy_reply(
                    self.routes.cluster_not_found_status,
                    "",
                    "cluster_not_found",
                )
            }
        };
        self.request_local_reply(reply, false);
    }

    pub(super) fn dispatch(&mut self) {
        self.request = RequestPhase::Dispatched;
        let Some(cluster) = self.out.cluster.clone() else {
            return;
        };
        let req = UpstreamRequest {
            cluster,
            headers: HeaderMap::from_pairs(self.out.upstream_request.clone().unwrap_or_default()),
            body: self.out.upstream_request_body.clone(),
            from_http_call: false,
        };
        let reply = self.sim.upstreams().reply(&req);
        let due = self.now() + reply.delay.as_nanos() as u64;
        match &mut self.upstream {
            UpstreamPhase::Waiting {
                timeout_at,
                reply: r,
            } if due <= *timeout_at => {
                *r = Some((due, reply));
            }
            // The route timeout fires first.
            _ => {}
        }
    }

    pub(super) fn upstream_response(&mut self, reply: UpstreamReply) {
        if reply.reset {
            let body = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
            self.request_local_reply(
                envoy_reply(
                    503,
                    body,
                    "upstream_reset_before_response_started{connection_termination}",
                ),
                false,
            );
            return;
        }
        self.stream.response_headers = reply.header_map();
        self.stream.response_trailers =
            HeaderMap::from_pairs(reply.trailers.iter().map(|(k, v)| (k.as_bytes(), v)));
        self.stream.response_code = Some(reply.status);
        self.stream.response_details = "via_upstream".into();
        self.out.details = "via_upstream".into();
        if self.head {
            // Envoy's codec reads no body after the headers of a reply to HEAD.
            self.start_encode_chunks(Vec::new(), false);
            return;
        }
        let trailers = !reply.trailers.is_empty();
        self.start_encode_chunks(reply.chunks(), trailers);
    }

    pub(super) fn deliver_to_client(&mut self, ev: Ev) {
        match ev {
            Ev::Headers { end } => {
                let headers = self.stream.response_headers.clone();
                self.client.headers_sent(headers, end);
            }
            Ev::Data { chunk, end } => {
                self.out.response_body.extend_from_slice(&chunk);
                self.client.more_sent(end);
            }
            Ev::Trailers => {
                self.out.response_trailers = self.stream.response_trailers.to_vec();
                self.client.more_sent(true);
            }
        }
    }
}

/// Whether a response that ends with its headers gets `content-length: 0` on the wire:
/// not for 1xx, 204 and 304, nor when it already says how it is framed.
pub(super) fn codec_adds_zero_length(status: u16, h: &HeaderMap) -> bool {
    !(status < 200 || status == 204 || status == 304)
        && h.get("content-length").is_none()
        && h.get("transfer-encoding").is_none()
}

pub(super) fn envoy_reply(status: u16, body: &str, details: &str) -> LocalReply {
    LocalReply {
        status,
        headers: Vec::new(),
        body: body.as_bytes().to_vec(),
        details: details.to_string(),
        grpc_status: -1,
    }
}
