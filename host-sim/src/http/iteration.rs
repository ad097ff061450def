//! Envoy's filter manager iterating one event at a time through the chain: request events
//! in decode order to the router, response events in reverse order to the client; a filter
//! that stops holds the event (and what follows) until it continues.

use crate::vm::Callback;

use super::phase::{Dir, Ev, FilterPhase, FilterStatus, RequestPhase};
use super::{Flow, Session};

impl Session<'_> {
    /// Sends `ev` through the filters from position `p` in `dir`'s order (request: the
    /// chain's order, to Envoy's router; response: the reverse, to the client) until one
    /// stops it.
    pub(super) fn iterate(&mut self, dir: Dir, mut p: usize, mut ev: Ev) {
        // A local reply restarts the response: events of the response it replaced stop.
        let generation = self.enc_gen;
        let over = |s: &Self| match dir {
            Dir::Decode => s.request == RequestPhase::Done,
            Dir::Encode => s.client.is_reset() || generation != s.enc_gen,
        };
        let n = self.slots.len();
        while p < n {
            if over(self) {
                return;
            }
            let i = match dir {
                Dir::Decode => p,
                Dir::Encode => n - 1 - p,
            };
            if let (Dir::Decode, FilterStatus::Doomed(msg)) = (dir, &self.slots[i].status) {
                let msg = msg.clone();
                self.vm_failed(i, msg);
                return;
            }
            if self.slots[i].status == FilterStatus::Running {
                match self.step(i, dir, ev) {
                    Some(next) => ev = next,
                    None => return,
                }
            }
            p += 1;
        }
        match dir {
            _ if over(self) => {}
            Dir::Decode => self.router(ev),
            Dir::Encode => self.deliver_to_client(ev),
        }
    }

    /// Runs one event through filter `i`; `Some(event)` to pass on, `None` when it stopped.
    fn step(&mut self, i: usize, dir: Dir, ev: Ev) -> Option<Ev> {
        if let FilterPhase::HeadersHeld { queue, .. } = self.phase(i, dir) {
            queue.push_back(ev);
            return None;
        }
        let kind = if dir == Dir::Decode { 0 } else { 1 };
        match ev {
            Ev::Headers { end } => {
                let headers = self.lend_map(i, dir, false);
                let cb = match dir {
                    Dir::Decode => Callback::RequestHeaders { headers, end },
                    Dir::Encode => Callback::ResponseHeaders { headers, end },
                };
                match self.call(i, cb, dir) {
                    Flow::Continue => {
                        *self.map_access(i, dir, false) = false;
                        Some(Ev::Headers { end })
                    }
                    Flow::Stop => {
                        *self.phase(i, dir) = FilterPhase::HeadersHeld {
                            end,
                            queue: Default::default(),
                        };
                        None
                    }
                }
            }
            Ev::Data { chunk, end } => {
                let mut body = self
                    .phase(i, dir)
                    .take_buffered()
                    .map_or_else(Vec::new, |(b, _)| b);
                body.extend_from_slice(&chunk);
                let size = body.len() as u32;
                self.stream.body = body;
                self.slots[i].access.body = Some(kind);
                let cb = match dir {
                    Dir::Decode => Callback::RequestBody { size, end },
                    Dir::Encode => Callback::ResponseBody { size, end },
                };
                let flow = self.call(i, cb, dir);
                let body = std::mem::take(&mut self.stream.body);
                self.slots[i].access.body = None;
                match flow {
                    Flow::Continue => Some(Ev::Data { chunk: body, end }),
                    Flow::Stop => {
                        *self.phase(i, dir) = FilterPhase::BodyHeld { body, end };
                        None
                    }
                }
            }
            Ev::Trailers => {
                // A filter that buffers the body sees (and may edit) it whole at the
                // trailers, as Envoy hands out its decoding / encoding buffer.
                let buffered = self.phase(i, dir).take_buffered().map(|(b, _)| b);
                if let Some(body) = &buffered {
                    self.stream.body = body.clone();
                    self.slots[i].access.body = Some(kind);
                }
                let trailers = self.lend_map(i, dir, true);
                let cb = match dir {
                    Dir::Decode => Callback::RequestTrailers { trailers },
                    Dir::Encode => Callback::ResponseTrailers { trailers },
                };
                let flow = self.call(i, cb, dir);
                let body = buffered.map(|_| {
                    self.slots[i].access.body = None;
                    std::mem::take(&mut self.stream.body)
                });
                *self.map_access(i, dir, true) = false;
                match flow {
                    Flow::Continue => {
                        // A buffering filter that lets trailers through releases its body
                        // first.
                        if let Some(chunk) = body {
                            self.pipe(dir, i, true, Ev::Data { chunk, end: false });
                        }
                        Some(Ev::Trailers)
                    }
                    Flow::Stop => {
                        *self.phase(i, dir) = FilterPhase::TrailersHeld { body };
                        None
                    }
                }
            }
        }
    }

    /// Lends filter `i` the headers (or trailers) of `dir` for its callback; their count.
    fn lend_map(&mut self, i: usize, dir: Dir, trailers: bool) -> u32 {
        *self.map_access(i, dir, trailers) = true;
        match (dir, trailers) {
            (Dir::Decode, false) => self.stream.request_headers.len(),
            (Dir::Encode, false) => self.stream.response_headers.len(),
            (Dir::Decode, true) => self.stream.request_trailers.len(),
            (Dir::Encode, true) => self.stream.response_trailers.len(),
        }
        .try_into()
        .unwrap_or(u32::MAX)
    }

    /// Whether filter `i` may reach the headers (or trailers) of `dir`.
    fn map_access(&mut self, i: usize, dir: Dir, trailers: bool) -> &mut bool {
        let a = &mut self.slots[i].access;
        match (dir, trailers) {
            (Dir::Decode, false) => &mut a.request_headers,
            (Dir::Encode, false) => &mut a.response_headers,
            (Dir::Decode, true) => &mut a.request_trailers,
            (Dir::Encode, true) => &mut a.response_trailers,
        }
    }

    pub(super) fn phase(&mut self, i: usize, dir: Dir) -> &mut FilterPhase {
        match dir {
            Dir::Decode => &mut self.slots[i].dec,
            Dir::Encode => &mut self.slots[i].enc,
        }
    }

    /// Sends `ev` into the pipeline at filter `i` (`after`: at the filter after `i`).
    fn pipe(&mut self, dir: Dir, i: usize, after: bool, ev: Ev) {
        let p = match dir {
            Dir::Decode => i,
            Dir::Encode => self.slots.len() - 1 - i,
        };
        self.iterate(dir, p + usize::from(after), ev);
    }

    /// Filter `i` continues `dir` (`proxy_continue_stream`): what it held goes on, as in
    /// Envoy's `commonContinue` (headers, then the buffered body, then the trailers).
    pub(super) fn resume(&mut self, i: usize, dir: Dir) {
        if (dir == Dir::Decode && self.request == RequestPhase::Done) || self.client.is_reset() {
            return;
        }
        match std::mem::take(self.phase(i, dir)) {
            FilterPhase::Passing => {}
            FilterPhase::HeadersHeld { end, queue } => {
                self.pipe(dir, i, true, Ev::Headers { end });
                for ev in queue {
                    self.pipe(dir, i, false, ev);
                }
            }
            FilterPhase::BodyHeld { body, end } => {
                self.pipe(dir, i, true, Ev::Data { chunk: body, end });
            }
            FilterPhase::TrailersHeld { body } => {
                if let Some(chunk) = body {
                    self.pipe(dir, i, true, Ev::Data { chunk, end: false });
                }
                self.pipe(dir, i, true, Ev::Trailers);
            }
        }
    }

    pub(super) fn start_encode(&mut self, body: Vec<u8>, trailers: bool) {
        let chunks = if body.is_empty() {
            Vec::new()
        } else {
            vec![body]
        };
        self.start_encode_chunks(chunks, trailers);
    }

    pub(super) fn start_encode_chunks(&mut self, chunks: Vec<Vec<u8>>, trailers: bool) {
        let end_with_headers = chunks.is_empty() && !trailers;
        self.iterate(
            Dir::Encode,
            0,
            Ev::Headers {
                end: end_with_headers,
            },
        );
        let n = chunks.len();
        for (k, chunk) in chunks.into_iter().enumerate() {
            self.iterate(
                Dir::Encode,
                0,
                Ev::Data {
                    chunk,
                    end: k + 1 == n && !trailers,
                },
            );
        }
        if trailers {
            self.iterate(Dir::Encode, 0, Ev::Trailers);
        }
    }
}
