//! What a stream is doing, as explicit phases: of each filter in each direction, of the
//! request on its way upstream, of the upstream, and of what the client received. Each is
//! one enum, so a combination the filter manager cannot be in cannot be written down.

use std::collections::VecDeque;

use crate::headers::HeaderMap;
use crate::upstreams::UpstreamReply;

/// One event of a stream in one direction.
#[derive(Clone, Debug)]
pub(super) enum Ev {
    Headers { end: bool },
    Data { chunk: Vec<u8>, end: bool },
    Trailers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dir {
    Decode,
    Encode,
}

/// Where one filter holds one direction of the stream, as Envoy's filter manager tracks it.
#[derive(Debug, Default)]
pub(super) enum FilterPhase {
    /// Events go through the filter as they come.
    #[default]
    Passing,
    /// The filter paused on the headers: iteration stopped, every later event waits here.
    HeadersHeld { end: bool, queue: VecDeque<Ev> },
    /// The filter paused on a body chunk: the body so far is buffered and shown whole on
    /// the next call.
    BodyHeld { body: Vec<u8>, end: bool },
    /// The filter paused on the trailers; `body` is what it had buffered before them.
    TrailersHeld { body: Option<Vec<u8>> },
}

impl FilterPhase {
    /// Takes the buffered body out (leaving the phase `Passing` if it was `BodyHeld`).
    pub(super) fn take_buffered(&mut self) -> Option<(Vec<u8>, bool)> {
        match std::mem::take(self) {
            FilterPhase::BodyHeld { body, end } => Some((body, end)),
            other => {
                *self = other;
                None
            }
        }
    }
}

/// How a filter takes part in the stream.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FilterStatus {
    /// Its context is in the stream and gets the callbacks.
    Running,
    /// Out of the stream: its VM failed and it fails open.
    Skipped,
    /// Its VM had failed before the stream and it fails closed: it fails the stream when
    /// the headers reach it.
    Doomed(String),
    /// Its VM failed during the stream and it failed the stream closed.
    FailedClosed,
}

/// How far the request has gone on its way upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RequestPhase {
    /// Request events still flow through the filters to Envoy's router.
    Open,
    /// The router sent the whole request upstream; the response is awaited.
    Dispatched,
    /// Nothing more reaches the filters or the router: a local reply is on its way or the
    /// stream was reset.
    Done,
}

/// What Envoy's router waits for from the upstream.
pub(super) enum UpstreamPhase {
    /// Nothing: no cluster picked yet, or its answer came or was cancelled.
    Idle,
    /// A cluster was picked and the route timeout runs; `reply` is there once the whole
    /// request went upstream and the reply comes before the timeout.
    Waiting {
        timeout_at: u64,
        reply: Option<(u64, UpstreamReply)>,
    },
}

impl UpstreamPhase {
    /// When the next upstream event (reply or timeout) is due.
    pub(super) fn next_event(&self) -> Option<u64> {
        match self {
            UpstreamPhase::Idle => None,
            UpstreamPhase::Waiting { timeout_at, reply } => Some(
                reply
                    .as_ref()
                    .map_or(*timeout_at, |(due, _)| (*due).min(*timeout_at)),
            ),
        }
    }
}

/// What of the response has reached the client.
pub(super) enum ClientPhase {
    /// Nothing yet.
    Waiting,
    /// The response headers; more is coming.
    Receiving(HeaderMap),
    /// The end of the response. `headers_only`: it ended with its headers (the codec then
    /// frames it). `headers` is `None` only if data or trailers ended it without headers.
    Complete {
        headers: Option<HeaderMap>,
        headers_only: bool,
    },
    /// The stream was reset: the client gets no (more) response.
    Reset,
}

impl ClientPhase {
    pub(super) fn headers(&self) -> Option<&HeaderMap> {
        match self {
            ClientPhase::Waiting | ClientPhase::Reset => None,
            ClientPhase::Receiving(h) => Some(h),
            ClientPhase::Complete { headers, .. } => headers.as_ref(),
        }
    }

    pub(super) fn is_reset(&self) -> bool {
        matches!(self, ClientPhase::Reset)
    }

    /// Whether the client got its whole answer or the stream was reset.
    pub(super) fn is_over(&self) -> bool {
        matches!(self, ClientPhase::Complete { .. } | ClientPhase::Reset)
    }

    /// The response headers reached the client, ending the response when `end` (a
    /// response already complete stays complete).
    pub(super) fn headers_sent(&mut self, headers: HeaderMap, end: bool) {
        *self = match self {
            ClientPhase::Reset => ClientPhase::Reset,
            ClientPhase::Complete { .. } => ClientPhase::Complete {
                headers: Some(headers),
                headers_only: end,
            },
            ClientPhase::Waiting | ClientPhase::Receiving(_) if end => ClientPhase::Complete {
                headers: Some(headers),
                headers_only: true,
            },
            ClientPhase::Waiting | ClientPhase::Receiving(_) => ClientPhase::Receiving(headers),
        };
    }

    /// Data (or trailers, `end` = true) reached the client.
    pub(super) fn more_sent(&mut self, end: bool) {
        if !end {
            return;
        }
        *self = match std::mem::replace(self, ClientPhase::Waiting) {
            ClientPhase::Waiting => ClientPhase::Complete {
                headers: None,
                headers_only: false,
            },
            ClientPhase::Receiving(h) => ClientPhase::Complete {
                headers: Some(h),
                headers_only: false,
            },
            over @ (ClientPhase::Complete { .. } | ClientPhase::Reset) => over,
        };
    }
}
