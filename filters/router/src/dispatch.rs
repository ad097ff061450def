//! A lean dispatch for the router's HTTP streams, on the proxy-wasm crate's ABI types.
//!
//! The SDK's dispatcher boxes every stream as a `dyn HttpContext` in a map and looks it up in
//! three maps per callback. Here the HTTP streams live in one map of plain `RouterHttp` values,
//! and only their callbacks (context create, request and response headers, delete) are ours;
//! roots, TCP streams and everything else stay with the SDK.
//!
//! The SDK defines every `proxy_on_*` export itself, so a second definition does not link.
//! These functions are exported as `wasmgate_lean_proxy_on_*`; `make build`
//! (filters/tools/drop_exports.py) drops the SDK's export of the same callback and gives ours
//! its name. A module built without that step keeps the SDK's exports and behaves the same.
//! Unknown ids are handed to the SDK, so nothing here can trap the VM.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use log::warn;
use proxy_wasm::traits::HttpContext;
use proxy_wasm::types::Action;

use crate::plugin::{RouterHttp, Shared};

/// What a root hands its HTTP streams: its table once configured, and whether it serves TCP.
#[derive(Default)]
pub struct RootSlot {
    pub shared: RefCell<Option<Rc<Shared>>>,
    pub tcp: Cell<bool>,
}

/// Context ids are distinct integers: one multiply spreads them over the table.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u32(&mut self, id: u32) {
        self.0 = u64::from(id).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<V> = HashMap<u32, V, BuildHasherDefault<IdHasher>>;

thread_local! {
    static ROOTS: RefCell<IdMap<Rc<RootSlot>>> = RefCell::default();
    static STREAMS: RefCell<IdMap<RouterHttp>> = RefCell::default();
}

/// Called by the SDK's root factory: the root's streams will read its slot.
pub fn register_root(context_id: u32, slot: Rc<RootSlot>) {
    ROOTS.with(|r| match r.try_borrow_mut() {
        Ok(mut roots) => {
            roots.insert(context_id, slot);
        }
        Err(_) => warn!("wasmgate.router: root {context_id} not registered (map busy)"),
    });
}

// The SDK's own callbacks, for the contexts that stay with it.
extern "C" {
    #[link_name = "proxy_on_context_create"]
    fn sdk_on_context_create(context_id: u32, root_context_id: u32);
    #[link_name = "proxy_on_delete"]
    fn sdk_on_delete(context_id: u32);
}

#[export_name = "wasmgate_lean_proxy_on_context_create"]
pub extern "C" fn on_context_create(context_id: u32, root_context_id: u32) {
    let http_root = ROOTS
        .with(|r| r.try_borrow().ok()?.get(&root_context_id).cloned())
        .filter(|slot| !slot.tcp.get());
    let Some(slot) = http_root else {
        // A root (root id 0) or a TCP stream: the SDK's.
        // SAFETY: the SDK's exported callback, called with the arguments the host gave us.
        unsafe { sdk_on_context_create(context_id, root_context_id) };
        return;
    };
    let stream = RouterHttp::new(slot.shared.borrow().clone());
    STREAMS.with(|s| match s.try_borrow_mut() {
        Ok(mut streams) => {
            streams.insert(context_id, stream);
        }
        Err(_) => warn!("wasmgate.router: stream {context_id} not created (map busy)"),
    });
}

/// Runs `f` on HTTP stream `context_id`; `None` (logged) for a stream we do not hold.
fn with_stream(context_id: u32, f: impl FnOnce(&mut RouterHttp) -> Action) -> Option<Action> {
    STREAMS.with(|s| match s.try_borrow_mut() {
        Ok(mut streams) => match streams.get_mut(&context_id) {
            Some(stream) => Some(f(stream)),
            None => {
                warn!("wasmgate.router: callback for unknown stream {context_id}");
                None
            }
        },
        Err(_) => {
            warn!("wasmgate.router: re-entered callback for stream {context_id}");
            None
        }
    })
}

#[export_name = "wasmgate_lean_proxy_on_request_headers"]
pub extern "C" fn on_request_headers(
    context_id: u32,
    num_headers: usize,
    end_of_stream: bool,
) -> Action {
    with_stream(context_id, |s| {
        s.on_http_request_headers(num_headers, end_of_stream)
    })
    // A request the router did not see must not go on with a client's cluster header.
    .unwrap_or_else(|| {
        crate::plugin::send_unrouted();
        Action::Pause
    })
}

#[export_name = "wasmgate_lean_proxy_on_response_headers"]
pub extern "C" fn on_response_headers(
    context_id: u32,
    num_headers: usize,
    end_of_stream: bool,
) -> Action {
    with_stream(context_id, |s| {
        s.on_http_response_headers(num_headers, end_of_stream)
    })
    .unwrap_or(Action::Continue)
}

#[export_name = "wasmgate_lean_proxy_on_delete"]
pub extern "C" fn on_delete(context_id: u32) {
    let removed = STREAMS.with(|s| s.try_borrow_mut().ok()?.remove(&context_id));
    if removed.is_none() {
        ROOTS.with(|r| {
            if let Ok(mut roots) = r.try_borrow_mut() {
                roots.remove(&context_id);
            }
        });
        // SAFETY: the SDK's exported callback, for a context it created.
        unsafe { sdk_on_delete(context_id) };
    }
}
