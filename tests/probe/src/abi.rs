//! The proxy-wasm 0.2.1 host functions, called raw (every status code is returned, none makes
//! the SDK panic), each behind a safe wrapper: the probe's only unsafe code.
//!
//! SAFETY, for every call in this module: the pointers handed to the host come from live
//! slices with their exact lengths (or are null with length 0), and every out-pointer points
//! at a local that outlives the call. The host only reads the input ranges and only writes
//! through the out-pointers. A buffer the host returns was allocated in our memory through
//! `proxy_on_memory_allocate`, which the SDK serves with a `Vec<u8>` of capacity `len`, so
//! `take` may own it.

#![allow(unsafe_code)]

use std::ptr::{null, null_mut};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_property(p: *const u8, ps: usize, rd: *mut *mut u8, rs: *mut usize) -> u32;
    fn proxy_set_property(p: *const u8, ps: usize, v: *const u8, vs: usize) -> u32;
    fn proxy_get_header_map_value(
        t: u32,
        k: *const u8,
        ks: usize,
        rd: *mut *mut u8,
        rs: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(t: u32, rd: *mut *mut u8, rs: *mut usize) -> u32;
    fn proxy_get_header_map_size(t: u32, rs: *mut usize) -> u32;
    fn proxy_add_header_map_value(t: u32, k: *const u8, ks: usize, v: *const u8, vs: usize) -> u32;
    fn proxy_replace_header_map_value(
        t: u32,
        k: *const u8,
        ks: usize,
        v: *const u8,
        vs: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(t: u32, k: *const u8, ks: usize) -> u32;
    fn proxy_get_shared_data(
        k: *const u8,
        ks: usize,
        rd: *mut *mut u8,
        rs: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(k: *const u8, ks: usize, v: *const u8, vs: usize, cas: u32) -> u32;
    fn proxy_register_shared_queue(n: *const u8, ns: usize, id: *mut u32) -> u32;
    fn proxy_resolve_shared_queue(
        vm: *const u8,
        vms: usize,
        n: *const u8,
        ns: usize,
        id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(id: u32, v: *const u8, vs: usize) -> u32;
    fn proxy_dequeue_shared_queue(id: u32, rd: *mut *mut u8, rs: *mut usize) -> u32;
    fn proxy_define_metric(t: u32, n: *const u8, ns: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
    fn proxy_get_metric(id: u32, value: *mut u64) -> u32;
    fn proxy_get_current_time_nanoseconds(t: *mut u64) -> u32;
    fn proxy_call_foreign_function(
        n: *const u8,
        ns: usize,
        a: *const u8,
        as_: usize,
        rd: *mut *mut u8,
        rs: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        t: u32,
        start: usize,
        max: usize,
        rd: *mut *mut u8,
        rs: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_status(t: u32, len: *mut usize, flags: *mut u32) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_get_status(code: *mut u32, rd: *mut *mut u8, rs: *mut usize) -> u32;
    fn proxy_http_call(
        u: *const u8,
        us: usize,
        h: *const u8,
        hs: usize,
        b: *const u8,
        bs: usize,
        t: *const u8,
        ts: usize,
        timeout: u32,
        token: *mut u32,
    ) -> u32;
    fn proxy_set_tick_period_milliseconds(ms: u32) -> u32;
    fn proxy_set_buffer_bytes(t: u32, start: usize, len: usize, d: *const u8, ds: usize) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_set_header_map_pairs(t: u32, d: *const u8, ds: usize) -> u32;
    fn proxy_close_stream(stream: u32) -> u32;
    fn proxy_send_local_response(
        code: u32,
        d: *const u8,
        ds: usize,
        b: *const u8,
        bs: usize,
        h: *const u8,
        hs: usize,
        grpc: i32,
    ) -> u32;
}

/// Bytes the host allocated in our memory (through `proxy_on_memory_allocate`).
fn take(ptr: *mut u8, len: usize) -> Vec<u8> {
    if ptr.is_null() || len == 0 {
        return Vec::new();
    }
    // SAFETY: see the module note: the SDK's allocator made `ptr` as a `Vec` of capacity `len`.
    unsafe { Vec::from_raw_parts(ptr, len, len) }
}

/// Runs a host call that returns a buffer through (pointer, size) out-parameters.
fn returned(f: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> (u32, Vec<u8>) {
    let (mut p, mut n) = (null_mut(), 0);
    let status = f(&mut p, &mut n);
    (status, take(p, n))
}

/// An input range: null for an empty one, as the ABI's "nothing here".
fn ptr(bytes: &[u8]) -> *const u8 {
    if bytes.is_empty() {
        null()
    } else {
        bytes.as_ptr()
    }
}

pub fn get_property(path: &[u8]) -> (u32, Vec<u8>) {
    // SAFETY: see the module note.
    returned(|p, n| unsafe { proxy_get_property(ptr(path), path.len(), p, n) })
}

pub fn set_property(path: &[u8], value: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_set_property(ptr(path), path.len(), ptr(value), value.len()) }
}

pub fn get_header_map_value(map: u32, key: &[u8]) -> (u32, Vec<u8>) {
    // SAFETY: see the module note.
    returned(|p, n| unsafe { proxy_get_header_map_value(map, ptr(key), key.len(), p, n) })
}

pub fn get_header_map_pairs(map: u32) -> (u32, Vec<u8>) {
    // SAFETY: see the module note.
    returned(|p, n| unsafe { proxy_get_header_map_pairs(map, p, n) })
}

/// The status and the number of entries.
pub fn get_header_map_size(map: u32) -> (u32, usize) {
    let mut size = 0usize;
    // SAFETY: see the module note.
    let status = unsafe { proxy_get_header_map_size(map, &mut size) };
    (status, size)
}

pub fn set_header_map_pairs(map: u32, serialized: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_set_header_map_pairs(map, ptr(serialized), serialized.len()) }
}

pub fn add_header_map_value(map: u32, key: &[u8], value: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_add_header_map_value(map, ptr(key), key.len(), ptr(value), value.len()) }
}

pub fn replace_header_map_value(map: u32, key: &[u8], value: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_replace_header_map_value(map, ptr(key), key.len(), ptr(value), value.len()) }
}

pub fn remove_header_map_value(map: u32, key: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_remove_header_map_value(map, ptr(key), key.len()) }
}

/// The status, the value and its CAS.
pub fn get_shared_data(key: &[u8]) -> (u32, Vec<u8>, u32) {
    let mut cas = 0u32;
    // SAFETY: see the module note.
    let (status, value) =
        returned(|p, n| unsafe { proxy_get_shared_data(ptr(key), key.len(), p, n, &mut cas) });
    (status, value, cas)
}

pub fn set_shared_data(key: &[u8], value: &[u8], cas: u32) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_set_shared_data(ptr(key), key.len(), ptr(value), value.len(), cas) }
}

/// The status and the queue id.
pub fn register_shared_queue(name: &[u8]) -> (u32, u32) {
    let mut id = 0u32;
    // SAFETY: see the module note.
    let status = unsafe { proxy_register_shared_queue(ptr(name), name.len(), &mut id) };
    (status, id)
}

/// The status and the queue id (0 when not found).
pub fn resolve_shared_queue(vm_id: &[u8], name: &[u8]) -> (u32, u32) {
    let mut id = 0u32;
    // SAFETY: see the module note.
    let status = unsafe {
        proxy_resolve_shared_queue(ptr(vm_id), vm_id.len(), ptr(name), name.len(), &mut id)
    };
    (status, id)
}

pub fn enqueue_shared_queue(id: u32, value: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_enqueue_shared_queue(id, ptr(value), value.len()) }
}

pub fn dequeue_shared_queue(id: u32) -> (u32, Vec<u8>) {
    // SAFETY: see the module note.
    returned(|p, n| unsafe { proxy_dequeue_shared_queue(id, p, n) })
}

/// The status and the metric id.
pub fn define_metric(kind: u32, name: &[u8]) -> (u32, u32) {
    let mut id = 0u32;
    // SAFETY: see the module note.
    let status = unsafe { proxy_define_metric(kind, ptr(name), name.len(), &mut id) };
    (status, id)
}

pub fn increment_metric(id: u32, offset: i64) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_increment_metric(id, offset) }
}

pub fn record_metric(id: u32, value: u64) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_record_metric(id, value) }
}

pub fn get_metric(id: u32) -> (u32, u64) {
    let mut value = 0u64;
    // SAFETY: see the module note.
    let status = unsafe { proxy_get_metric(id, &mut value) };
    (status, value)
}

pub fn get_current_time_nanoseconds() -> (u32, u64) {
    let mut t = 0u64;
    // SAFETY: see the module note.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut t) };
    (status, t)
}

pub fn get_log_level() -> (u32, u32) {
    let mut level = 0u32;
    // SAFETY: see the module note.
    let status = unsafe { proxy_get_log_level(&mut level) };
    (status, level)
}

pub fn call_foreign_function(name: &[u8], args: &[u8]) -> (u32, Vec<u8>) {
    // SAFETY: see the module note.
    returned(|p, n| unsafe {
        proxy_call_foreign_function(ptr(name), name.len(), ptr(args), args.len(), p, n)
    })
}

pub fn get_buffer_bytes(buffer: u32, start: usize, max: usize) -> (u32, Vec<u8>) {
    // SAFETY: see the module note.
    returned(|p, n| unsafe { proxy_get_buffer_bytes(buffer, start, max, p, n) })
}

/// The status, the buffered length and the flags.
pub fn get_buffer_status(buffer: u32) -> (u32, usize, u32) {
    let (mut len, mut flags) = (0usize, 0u32);
    // SAFETY: see the module note.
    let status = unsafe { proxy_get_buffer_status(buffer, &mut len, &mut flags) };
    (status, len, flags)
}

pub fn set_buffer_bytes(buffer: u32, start: usize, len: usize, data: &[u8]) -> u32 {
    // SAFETY: see the module note.
    unsafe { proxy_set_buffer_bytes(buffer, start, len, ptr(data), data.len()) }
}

/// The status, the gRPC status code and its message.
pub fn get_status() -> (u32, u32, Vec<u8>) {
    let mut code = 0u32;
    // SAFETY: see the module note.
    let (status, message) = returned(|p, n| unsafe { proxy_get_status(&mut code, p, n) });
    (status, code, message)
}

/// The status and the call's token.
pub fn http_call(
    upstream: &[u8],
    headers: &[u8],
    body: &[u8],
    trailers: &[u8],
    timeout_ms: u32,
) -> (u32, u32) {
    let mut token = 0u32;
    // SAFETY: see the module note.
    let status = unsafe {
        proxy_http_call(
            ptr(upstream),
            upstream.len(),
            ptr(headers),
            headers.len(),
            ptr(body),
            body.len(),
            ptr(trailers),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    };
    (status, token)
}

pub fn set_tick_period_milliseconds(ms: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_set_tick_period_milliseconds(ms) }
}

pub fn continue_stream(stream: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_continue_stream(stream) }
}

pub fn close_stream(stream: u32) -> u32 {
    // SAFETY: no pointers.
    unsafe { proxy_close_stream(stream) }
}

pub fn send_local_response(
    code: u32,
    details: &[u8],
    body: &[u8],
    headers: &[u8],
    grpc_status: i32,
) -> u32 {
    // SAFETY: see the module note.
    unsafe {
        proxy_send_local_response(
            code,
            ptr(details),
            details.len(),
            ptr(body),
            body.len(),
            ptr(headers),
            headers.len(),
            grpc_status,
        )
    }
}
