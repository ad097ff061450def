//! Envoy's `sendLocalReply`: a reply from a filter or from Envoy itself (no route, timeout,
//! failed VM) ends the request and runs through every filter's response callbacks, unless
//! the response already started, when Envoy can only reset the stream.

use crate::headers::HeaderMap;
use crate::state::LocalReply;

use super::phase::{ClientPhase, FilterPhase, RequestPhase, UpstreamPhase};
use super::Session;

impl Session<'_> {
    pub(super) fn request_local_reply(&mut self, lr: LocalReply, from_filter: bool) {
        if self.pending_local.is_none() {
            self.pending_local = Some((lr, from_filter));
        }
        // Nothing more reaches the filters or the router once a reply is on its way.
        self.request = RequestPhase::Done;
    }

    pub(super) fn apply_local_reply(&mut self, lr: LocalReply, from_filter: bool) {
        if self.client.is_reset() {
            return;
        }
        if self.client.headers().is_some() || self.local_replies >= 2 {
            // The response already started: Envoy can only reset the stream.
            self.client = ClientPhase::Reset;
            return;
        }
        self.local_replies += 1;
        if from_filter && self.out.local_reply.is_none() {
            self.out.local_reply = Some(lr.clone());
        }
        self.upstream = UpstreamPhase::Idle;
        self.enc_gen += 1;
        for s in &mut self.slots {
            s.enc = FilterPhase::Passing;
            s.access.response_headers = false;
            s.access.response_trailers = false;
        }
        // Envoy builds the map from the status, then the filter's headers, then, with a
        // body, its length and (unless the filter gave one) its type; without a body it
        // removes both.
        let mut h = HeaderMap::new();
        h.add(":status", lr.status.to_string());
        for (k, v) in &lr.headers {
            h.add(k, v);
        }
        if lr.body.is_empty() {
            h.remove("content-length");
            h.remove("content-type");
        } else {
            h.replace("content-length", lr.body.len().to_string());
            if h.get("content-type").is_none() {
                h.add("content-type", "text/plain");
            }
        }
        self.stream.response_headers = h;
        self.stream.response_trailers = HeaderMap::new();
        self.stream.response_code = Some(lr.status);
        self.stream.response_details = lr.details.clone();
        self.out.details = lr.details;
        // A HEAD request gets the headers (with the body's length) and no body.
        let body = if self.head { Vec::new() } else { lr.body };
        self.start_encode(body, false);
    }
}
