//! One HTTP stream through the balancer: which service the request names, the pick, the
//! cluster header, the affinity cookie, and on the way back what the response says about the
//! member (passive health). TCP connections are `tcp_connection.rs`.

use super::balancer::ServiceFrom;
use super::balancer_host::BalancerHost;
use super::worker::{BalancerWorker, Picked, Steer};
use super::PickInput;
use crate::observe;

/// The response header carrying Envoy's upstream attempt count.
pub const ATTEMPT_COUNT: &str = "x-envoy-attempt-count";

/// What the proxy does with the stream after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamAction {
    Continue,
    /// A local reply was sent: the stream stops here.
    Pause,
}

/// A stream's state between its callbacks.
#[derive(Debug, Default)]
pub struct BalancerStream {
    picked: Option<Picked>,
    responded: bool,
    /// A generated affinity cookie to hand to the client with the response.
    set_cookie: Option<String>,
}

impl BalancerStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// The request headers: find the service, pick a member, write the cluster header (or
    /// answer 503 when no member may take it).
    pub fn on_request_headers<H: BalancerHost>(&mut self, w: &BalancerWorker<H>) -> StreamAction {
        let host = w.host();
        let b = w.balancer();
        let cluster_header = b.cluster_header();
        let service = match b.service_from() {
            // Composed after the router: the router wrote the service name into its header.
            ServiceFrom::Router(h) | ServiceFrom::Header(h) => host.request_header(h),
            ServiceFrom::Host => host.request_header(":authority"),
        }
        .and_then(|v| b.service(&v));
        // After the router, the cluster header is the router's (it already removed any client
        // value); alone, a client value is removed unless a pick overwrites it.
        let router_owns_cluster_header = match b.service_from() {
            ServiceFrom::Router(_) => true,
            ServiceFrom::Header(h) => h == cluster_header,
            ServiceFrom::Host => false,
        };
        let strip = || {
            if !router_owns_cluster_header {
                host.set_request_header(cluster_header, None);
            }
        };
        let Some((i, sel)) = service.and_then(|i| Some((i, b.selector(i)?))) else {
            strip();
            return StreamAction::Continue;
        };
        let values: Vec<(&str, Vec<u8>)> = sel
            .needed_headers()
            .iter()
            .filter_map(|n| host.request_header(n).map(|v| (n.as_str(), v)))
            .collect();
        let headers: Vec<(&str, &[u8])> = values.iter().map(|(n, v)| (*n, v.as_slice())).collect();
        let source = if sel.needs_source_address() {
            host.property(&["source", "address"])
        } else {
            None
        };
        // A request without the service's generated affinity cookie is placed by a fresh key,
        // which its response hands over: the next requests carry it and land here again.
        let issue = sel.cookie_to_issue(&headers);
        let key = issue.map(|_| w.new_cookie_key());
        let input = PickInput {
            headers: &headers,
            source_address: source.as_deref(),
            affinity_key: key.as_deref().map(str::as_bytes),
        };
        match w.steer(i, &input) {
            Steer::To(cluster, picked, why) => {
                host.set_request_header(cluster_header, Some(&cluster));
                host.set_filter_state(observe::MEMBER_STATE, &why);
                self.picked = Some(picked);
                self.set_cookie = issue.zip(key.as_deref()).map(|(c, k)| c.set_cookie(k));
                StreamAction::Continue
            }
            Steer::Reject => {
                strip();
                host.send_reply(
                    503,
                    &[("x-wasmgate-reason", "no-healthy-cluster")],
                    b"no healthy member cluster\n",
                );
                StreamAction::Pause
            }
            Steer::NotOurs => {
                strip();
                StreamAction::Continue
            }
        }
    }

    /// The response headers: hand over a generated cookie, and report the member's answer
    /// when its service ejects passively.
    pub fn on_response_headers<H: BalancerHost>(&mut self, w: &BalancerWorker<H>) -> StreamAction {
        let host = w.host();
        self.responded = true;
        if let Some(v) = self.set_cookie.take() {
            host.add_response_header("set-cookie", &v);
        }
        // Envoy's count of upstream attempts (the generated route asks for it with
        // `include_attempt_count_in_response`); an Envoy detail the client need not see. Read
        // only when this stream's pick is reported; removed unread otherwise (one host call).
        let report = self.picked.filter(|p| p.passive);
        let attempts = report.and_then(|_| {
            host.response_header(ATTEMPT_COUNT)
                .and_then(|s| std::str::from_utf8(&s).ok()?.trim().parse::<u32>().ok())
        });
        host.remove_response_header(ATTEMPT_COUNT);
        if let Some(picked) = report {
            let status = host
                .response_header(":status")
                .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
            // Envoy answers 503 itself when it cannot connect: that counts as a reset. A
            // response after a retry came from another member (the failover cluster moves a
            // retry on): the first attempt, on the picked member, failed.
            let retried = attempts.is_some_and(|a| a > 1);
            w.report(picked, retried || status.is_none_or(|s| s >= 500));
        }
        StreamAction::Continue
    }

    /// The stream ended: one that never saw response headers was reset upstream.
    pub fn on_log<H: BalancerHost>(&mut self, w: &BalancerWorker<H>) {
        if let (false, Some(picked)) = (self.responded, self.picked.filter(|p| p.passive)) {
            w.report(picked, true);
        }
    }
}
