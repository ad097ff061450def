//! The host functions: every import of proxy-wasm ABI v0.2.1 (plus the 0.1.0 leftovers
//! Envoy still serves) and the WASI preview1 calls Envoy implements.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use crate::headers::HeaderMap;
use crate::memory::{in_bounds, read, return_bytes, write, write_u32, write_u64};
use crate::pairs;
use crate::protobuf;
use crate::shared::{lock, Metric, MetricKind, EPOCH_START_NANOS};
use crate::state::{CallResponse, HostAction, HostState, LocalReply, PendingGrpc, PendingHttpCall};
use crate::types::{Level, Status};
use crate::upstreams::{Callout, UpstreamRequest};

type C<'a> = Caller<'a, HostState>;
type R = wasmtime::Result<i32>;

/// Unwraps a `Result<_, Status>`, returning the status code to the guest on error.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(s) => return Ok(Status::code(s)),
        }
    };
}

fn ok(s: Status) -> R {
    Ok(s.code())
}

fn count(c: &mut C<'_>) {
    c.data_mut().host_calls += 1;
}

/// Filter-state keys with an object factory in Envoy 1.40 (its start-up log lists them);
/// `set_envoy_filter_state` answers NOT_FOUND for any other key.
const KNOWN_FILTER_STATE_KEYS: &[&str] = &[
    "envoy.ai.llm_protocol.request",
    "envoy.ai.model.request",
    "envoy.bool",
    "envoy.filters.listener.original_dst.local_ip",
    "envoy.filters.listener.original_dst.remote_ip",
    "envoy.hashable_string",
    "envoy.network.application_protocols",
    "envoy.network.ip",
    "envoy.network.network_namespace",
    "envoy.network.transport_socket.http_11_proxy.info",
    "envoy.network.transport_socket.original_dst_address",
    "envoy.network.upstream_server_name",
    "envoy.network.upstream_subject_alt_names",
    "envoy.ratelimit.hits_addend",
    "envoy.router.debug_config",
    "envoy.string",
    "envoy.tcp_proxy.cluster",
    "envoy.tcp_proxy.disable_tunneling",
    "envoy.tcp_proxy.per_connection_idle_timeout_ms",
    "envoy.upstream.dynamic_host",
    "envoy.upstream.dynamic_port",
];

pub(crate) fn add_to_linker(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_general(l)?;
    add_maps(l)?;
    add_buffers(l)?;
    add_shared(l)?;
    add_stream_control(l)?;
    add_callouts(l)?;
    add_metrics(l)?;
    add_wasi(l, "wasi_snapshot_preview1")?;
    add_wasi(l, "wasi_unstable")?;
    Ok(())
}

fn add_general(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> R {
            count(&mut c);
            let Some(level) = Level::from_abi(level as u32) else {
                return ok(Status::BadArgument);
            };
            let msg = tri!(read(&mut c, ptr, len));
            c.data_mut()
                .log(level, String::from_utf8_lossy(&msg).into_owned());
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: C<'_>, ret: i32| -> R {
            count(&mut c);
            let level = c.data().info.log_level.to_abi();
            tri!(write_u32(&mut c, ret, level));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> R {
            count(&mut c);
            let now = c.data().shared.now();
            tri!(write_u64(&mut c, ret, now));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, period: i32| -> R {
            count(&mut c);
            let st = c.data_mut();
            // Envoy keeps one timer per root context; stream contexts set their root's.
            st.tick_period_ms = period as u32;
            st.next_tick =
                (period != 0).then(|| st.shared.now() + u64::from(period as u32) * 1_000_000);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, path_ptr: i32, path_len: i32, ret_ptr: i32, ret_len: i32| -> R {
            count(&mut c);
            let path = tri!(read(&mut c, path_ptr, path_len));
            let value = tri!(c.data().property(&path));
            Ok(return_bytes(&mut c, &value, ret_ptr, ret_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, path_ptr: i32, path_len: i32, v_ptr: i32, v_len: i32| -> R {
            count(&mut c);
            let path = tri!(read(&mut c, path_ptr, path_len));
            let value = tri!(read(&mut c, v_ptr, v_len));
            let Some(stream) = c.data_mut().stream.as_deref_mut() else {
                return ok(Status::NotFound);
            };
            stream.guest_properties.push((path, value));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_configuration",
        |mut c: C<'_>, ret_ptr: i32, ret_len: i32| -> R {
            count(&mut c);
            let st = c.data();
            let cfg = if st.configuring {
                st.info.configuration.clone()
            } else {
                st.info.vm_configuration.clone()
            };
            Ok(return_bytes(&mut c, &cfg, ret_ptr, ret_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: C<'_>, code_ptr: i32, msg_ptr: i32, msg_len: i32| -> R {
            count(&mut c);
            let (code, msg) = c.data().status.clone();
            tri!(write_u32(&mut c, code_ptr, code));
            Ok(return_bytes(&mut c, &msg, msg_ptr, msg_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, ctx: i32| -> R {
            count(&mut c);
            let st = c.data_mut();
            if !st.contexts.contains_key(&(ctx as u32)) {
                return ok(Status::BadArgument);
            }
            st.effective_context = Some(ctx as u32);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap("env", "proxy_done", |mut c: C<'_>| -> R {
        count(&mut c);
        ok(Status::Ok)
    })?;
    l.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: C<'_>,
         name_ptr: i32,
         name_len: i32,
         args_ptr: i32,
         args_len: i32,
         res_ptr: i32,
         res_len: i32|
         -> R {
            count(&mut c);
            let name = tri!(read(&mut c, name_ptr, name_len));
            let args = tri!(read(&mut c, args_ptr, args_len));
            let status = foreign_function(c.data_mut(), &name, &args);
            // Neither supported function returns data: report an empty result.
            if res_ptr != 0 {
                tri!(write_u32(&mut c, res_ptr, 0));
            }
            if res_len != 0 {
                tri!(write_u32(&mut c, res_len, 0));
            }
            ok(status)
        },
    )?;
    Ok(())
}

fn foreign_function(st: &mut HostState, name: &[u8], args: &[u8]) -> Status {
    let on_stream = st.stream.is_some() && st.context() == st.stream_context;
    match name {
        b"clear_route_cache" => {
            if let (true, Some(s)) = (on_stream, st.stream.as_deref_mut()) {
                s.route_cleared = true;
            }
            Status::Ok
        }
        b"set_envoy_filter_state" => {
            let Some(args) = protobuf::decode_set_envoy_filter_state(args) else {
                return Status::BadArgument;
            };
            if !KNOWN_FILTER_STATE_KEYS.contains(&args.path.as_str()) {
                return Status::NotFound;
            }
            let (true, Some(s)) = (on_stream, st.stream.as_deref_mut()) else {
                return Status::NotFound;
            };
            s.filter_state.insert(args.path, args.value);
            Status::Ok
        }
        _ => Status::NotFound,
    }
}

fn add_maps(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, t: i32, ret_ptr: i32, ret_len: i32| -> R {
            count(&mut c);
            // Envoy answers an absent map with an empty one here (not an error).
            let bytes = match tri!(c.data().map(t as u32)) {
                Some(m) if !m.is_empty() => m.serialize(),
                _ => Vec::new(),
            };
            Ok(return_bytes(&mut c, &bytes, ret_ptr, ret_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, t: i32, ptr: i32, len: i32| -> R {
            count(&mut c);
            let data = tri!(read(&mut c, ptr, len));
            let parsed = pairs::deserialize(&data).unwrap_or_default();
            let map = tri!(c.data_mut().map_mut(t as u32));
            *map = HeaderMap::from_pairs(parsed);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>, t: i32, k_ptr: i32, k_len: i32, ret_ptr: i32, ret_len: i32| -> R {
            count(&mut c);
            let key = tri!(read(&mut c, k_ptr, k_len));
            let value = match tri!(c.data().map(t as u32)) {
                // In the log phase Envoy answers a map it has none of as not found.
                None if c.data().access.log_phase => return ok(Status::NotFound),
                None => return ok(Status::BadArgument),
                Some(m) => match m.get(&key) {
                    None => return ok(Status::NotFound),
                    Some(v) => v.to_vec(),
                },
            };
            Ok(return_bytes(&mut c, &value, ret_ptr, ret_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: C<'_>, t: i32, k_ptr: i32, k_len: i32, v_ptr: i32, v_len: i32| -> R {
            count(&mut c);
            let key = tri!(read(&mut c, k_ptr, k_len));
            let value = tri!(read(&mut c, v_ptr, v_len));
            tri!(c.data_mut().map_mut(t as u32)).replace(&key, &value);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: C<'_>, t: i32, k_ptr: i32, k_len: i32, v_ptr: i32, v_len: i32| -> R {
            count(&mut c);
            let key = tri!(read(&mut c, k_ptr, k_len));
            let value = tri!(read(&mut c, v_ptr, v_len));
            tri!(c.data_mut().map_mut(t as u32)).add(&key, &value);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, t: i32, k_ptr: i32, k_len: i32| -> R {
            count(&mut c);
            let key = tri!(read(&mut c, k_ptr, k_len));
            tri!(c.data_mut().map_mut(t as u32)).remove(&key);
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: C<'_>, t: i32, ret: i32| -> R {
            count(&mut c);
            if c.data().access.log_phase && !c.data().map_held(t as u32) {
                return ok(Status::BadArgument);
            }
            let size = match tri!(c.data().map(t as u32)) {
                Some(m) => m.byte_size() as u32,
                None => return ok(Status::BadArgument),
            };
            tri!(write_u32(&mut c, ret, size));
            ok(Status::Ok)
        },
    )?;
    Ok(())
}

fn add_buffers(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, max: i32, ret_ptr: i32, ret_len: i32| -> R {
            count(&mut c);
            let (start, max) = (start as u32 as usize, max as u32 as usize);
            if start.checked_add(max).is_none() {
                return ok(Status::BadArgument);
            }
            let bytes = match tri!(c.data().buffer(t as u32)) {
                None => return ok(Status::NotFound),
                Some(b) => {
                    let end = start.saturating_add(max).min(b.len());
                    b.get(start..end).unwrap_or_default().to_vec()
                }
            };
            // Like Envoy, an empty slice leaves the return pointers untouched.
            if bytes.is_empty() {
                return ok(Status::Ok);
            }
            Ok(return_bytes(&mut c, &bytes, ret_ptr, ret_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_buffer_status",
        |mut c: C<'_>, t: i32, len_ptr: i32, flags_ptr: i32| -> R {
            count(&mut c);
            let len = match tri!(c.data().buffer(t as u32)) {
                None => return ok(Status::NotFound),
                Some(b) => b.len() as u32,
            };
            tri!(write_u32(&mut c, len_ptr, len));
            tri!(write_u32(&mut c, flags_ptr, 0));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: C<'_>, t: i32, start: i32, len: i32, d_ptr: i32, d_len: i32| -> R {
            count(&mut c);
            if t as u32 > 8 {
                return ok(Status::BadArgument);
            }
            let data = tri!(read(&mut c, d_ptr, d_len));
            let status = c.data_mut().set_buffer(
                t as u32,
                start as u32 as usize,
                len as u32 as usize,
                &data,
            );
            ok(status)
        },
    )?;
    Ok(())
}

fn add_shared(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>, k_ptr: i32, k_len: i32, ret_ptr: i32, ret_len: i32, cas_ptr: i32| -> R {
            count(&mut c);
            let key = tri!(read(&mut c, k_ptr, k_len));
            let found = {
                let st = c.data();
                lock(&st.shared.shared_data).get(&st.info.vm_id, &key)
            };
            let Some((value, cas)) = found else {
                return ok(Status::NotFound);
            };
            let s = return_bytes(&mut c, &value, ret_ptr, ret_len)?;
            if s != Status::Ok {
                return ok(s);
            }
            tri!(write_u32(&mut c, cas_ptr, cas));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, k_ptr: i32, k_len: i32, v_ptr: i32, v_len: i32, cas: i32| -> R {
            count(&mut c);
            let key = tri!(read(&mut c, k_ptr, k_len));
            let value = tri!(read(&mut c, v_ptr, v_len));
            let st = c.data();
            let done = lock(&st.shared.shared_data).set(&st.info.vm_id, &key, &value, cas as u32);
            ok(if done {
                Status::Ok
            } else {
                Status::CasMismatch
            })
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: C<'_>, n_ptr: i32, n_len: i32, ret: i32| -> R {
            count(&mut c);
            let name = tri!(read(&mut c, n_ptr, n_len));
            let token = {
                let st = c.data();
                let mut q = lock(&st.shared.queues);
                let key = (st.info.vm_id.clone(), name);
                // Envoy registers the queue to the caller's root context, which is the one
                // `proxy_on_queue_ready` later reaches, even when a stream registered it.
                let owner = (st.vm_uid, st.root_context);
                match q.by_name.get(&key).copied() {
                    Some(t) => {
                        if let Some(queue) = q.queues.get_mut(&t) {
                            queue.owner_vm = owner.0;
                            queue.owner_context = owner.1;
                        }
                        t
                    }
                    None => {
                        q.next_token += 1;
                        let t = q.next_token;
                        q.by_name.insert(key, t);
                        q.queues.insert(
                            t,
                            crate::shared::Queue {
                                owner_vm: owner.0,
                                owner_context: owner.1,
                                items: Default::default(),
                            },
                        );
                        t
                    }
                }
            };
            tri!(write_u32(&mut c, ret, token));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: C<'_>, vm_ptr: i32, vm_len: i32, n_ptr: i32, n_len: i32, ret: i32| -> R {
            count(&mut c);
            let vm_id = tri!(read(&mut c, vm_ptr, vm_len));
            let name = tri!(read(&mut c, n_ptr, n_len));
            let token = {
                let q = lock(&c.data().shared.queues);
                q.by_name
                    .get(&(String::from_utf8_lossy(&vm_id).into_owned(), name))
                    .copied()
            };
            let Some(token) = token else {
                return ok(Status::NotFound);
            };
            tri!(write_u32(&mut c, ret, token));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: C<'_>, token: i32, ret_ptr: i32, ret_len: i32| -> R {
            count(&mut c);
            let item = {
                let mut q = lock(&c.data().shared.queues);
                match q.queues.get_mut(&(token as u32)) {
                    None => return ok(Status::NotFound),
                    Some(queue) => queue.items.pop_front(),
                }
            };
            let Some(item) = item else {
                return ok(Status::Empty);
            };
            Ok(return_bytes(&mut c, &item, ret_ptr, ret_len)?.code())
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: C<'_>, token: i32, v_ptr: i32, v_len: i32| -> R {
            count(&mut c);
            let value = tri!(read(&mut c, v_ptr, v_len));
            let mut q = lock(&c.data().shared.queues);
            let Some(queue) = q.queues.get_mut(&(token as u32)) else {
                return ok(Status::NotFound);
            };
            queue.items.push_back(value);
            let note = (queue.owner_vm, queue.owner_context, token as u32);
            if !q.ready.contains(&note) {
                q.ready.push(note);
            }
            ok(Status::Ok)
        },
    )?;
    Ok(())
}

fn add_stream_control(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: C<'_>, t: i32| -> R {
            count(&mut c);
            if t as u32 > 3 {
                return ok(Status::BadArgument);
            }
            // Envoy has no way to resume the upstream side of a connection.
            if t == 3 {
                return ok(Status::Unimplemented);
            }
            c.data_mut().defer(HostAction::Continue(t as u32));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap("env", "proxy_close_stream", |mut c: C<'_>, t: i32| -> R {
        count(&mut c);
        if t as u32 > 3 {
            return ok(Status::BadArgument);
        }
        c.data_mut().defer(HostAction::Close(t as u32));
        ok(Status::Ok)
    })?;
    l.func_wrap("env", "proxy_continue_request", |mut c: C<'_>| -> R {
        count(&mut c);
        c.data_mut().defer(HostAction::Continue(0));
        ok(Status::Ok)
    })?;
    l.func_wrap("env", "proxy_continue_response", |mut c: C<'_>| -> R {
        count(&mut c);
        c.data_mut().defer(HostAction::Continue(1));
        ok(Status::Ok)
    })?;
    l.func_wrap("env", "proxy_clear_route_cache", |mut c: C<'_>| -> R {
        count(&mut c);
        foreign_function(c.data_mut(), b"clear_route_cache", &[]);
        ok(Status::Ok)
    })?;
    l.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>,
         code: i32,
         d_ptr: i32,
         d_len: i32,
         b_ptr: i32,
         b_len: i32,
         h_ptr: i32,
         h_len: i32,
         grpc: i32|
         -> R {
            count(&mut c);
            let details = tri!(read(&mut c, d_ptr, d_len));
            let body = tri!(read(&mut c, b_ptr, b_len));
            let headers = tri!(read(&mut c, h_ptr, h_len));
            let headers = pairs::deserialize(&headers)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).to_ascii_lowercase(), v))
                .collect();
            c.data_mut().defer(HostAction::LocalReply(LocalReply {
                status: code as u32 as u16,
                headers,
                body,
                details: String::from_utf8_lossy(&details).into_owned(),
                grpc_status: grpc,
            }));
            ok(Status::Ok)
        },
    )?;
    Ok(())
}

fn add_callouts(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         u_ptr: i32,
         u_len: i32,
         h_ptr: i32,
         h_len: i32,
         b_ptr: i32,
         b_len: i32,
         t_ptr: i32,
         t_len: i32,
         timeout_ms: i32,
         token_ptr: i32|
         -> R {
            count(&mut c);
            let cluster = tri!(read(&mut c, u_ptr, u_len));
            let headers = tri!(read(&mut c, h_ptr, h_len));
            let body = tri!(read(&mut c, b_ptr, b_len));
            let trailers = tri!(read(&mut c, t_ptr, t_len));
            // Envoy checks the token pointer before starting the call.
            tri!(write_u32(&mut c, token_ptr, 0));
            let headers = HeaderMap::from_pairs(pairs::deserialize(&headers).unwrap_or_default());
            let cluster = String::from_utf8_lossy(&cluster).into_owned();
            let st = c.data_mut();
            let shared = st.shared.clone();
            let reply = {
                let upstreams = lock(&shared.upstreams);
                if !upstreams.exists(&cluster) {
                    return ok(Status::BadArgument);
                }
                if [":path", ":method", ":authority"]
                    .iter()
                    .any(|k| headers.get(k).is_none())
                {
                    return ok(Status::BadArgument);
                }
                let mut headers = headers;
                if !body.is_empty() {
                    headers.replace("content-length", body.len().to_string());
                }
                // What Envoy's async client adds to every callout.
                headers.replace("x-envoy-internal", "true");
                if timeout_ms != 0 {
                    headers.replace(
                        "x-envoy-expected-rq-timeout-ms",
                        (timeout_ms as u32).to_string(),
                    );
                }
                st.callouts.push(Callout {
                    kind: "http".into(),
                    cluster: cluster.clone(),
                    headers: headers.to_vec(),
                    body: body.clone(),
                    trailers: pairs::deserialize(&trailers)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                        .collect(),
                    timeout_ms: timeout_ms as u32,
                    ..Callout::default()
                });
                upstreams.reply(&UpstreamRequest {
                    cluster,
                    headers,
                    body,
                    from_http_call: true,
                })
            };
            let now = st.shared.now();
            let timeout = Duration::from_millis(u64::from(timeout_ms as u32));
            let (delay, response) = if timeout_ms != 0 && reply.delay > timeout {
                let mut headers = HeaderMap::new();
                headers.add(":status", "504");
                let body = b"upstream request timeout".to_vec();
                headers.add("content-length", body.len().to_string());
                (
                    timeout,
                    CallResponse {
                        headers,
                        body,
                        trailers: HeaderMap::new(),
                        failed: false,
                    },
                )
            } else if reply.reset {
                (
                    reply.delay,
                    CallResponse {
                        failed: true,
                        ..CallResponse::default()
                    },
                )
            } else {
                let trailers =
                    HeaderMap::from_pairs(reply.trailers.iter().map(|(k, v)| (k.as_bytes(), v)));
                (
                    reply.delay,
                    CallResponse {
                        headers: reply.header_map(),
                        body: reply.body,
                        trailers,
                        failed: false,
                    },
                )
            };
            let mut token = st.next_http_token;
            while token == 0 || st.http_calls.contains_key(&token) {
                token = token.wrapping_add(1);
            }
            st.next_http_token = token.wrapping_add(1);
            let context = st.context();
            st.http_calls.insert(
                token,
                PendingHttpCall {
                    context,
                    due: now + delay.as_nanos() as u64,
                    response,
                },
            );
            tri!(write_u32(&mut c, token_ptr, token));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut c: C<'_>,
         s_ptr: i32,
         s_len: i32,
         sn_ptr: i32,
         sn_len: i32,
         m_ptr: i32,
         m_len: i32,
         md_ptr: i32,
         md_len: i32,
         msg_ptr: i32,
         msg_len: i32,
         timeout: i32,
         token_ptr: i32|
         -> R {
            count(&mut c);
            let service = tri!(read(&mut c, s_ptr, s_len));
            let service_name = tri!(read(&mut c, sn_ptr, sn_len));
            let method = tri!(read(&mut c, m_ptr, m_len));
            let metadata = tri!(read(&mut c, md_ptr, md_len));
            let message = tri!(read(&mut c, msg_ptr, msg_len));
            let call = GrpcCallout {
                service_name: String::from_utf8_lossy(&service_name).into_owned(),
                method: String::from_utf8_lossy(&method).into_owned(),
                metadata: pairs::deserialize(&metadata)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                    .collect(),
                message,
                timeout_ms: timeout as u32,
            };
            let token = tri!(start_grpc(c.data_mut(), &service, Some(call)));
            tri!(write_u32(&mut c, token_ptr, token));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut c: C<'_>,
         s_ptr: i32,
         s_len: i32,
         sn_ptr: i32,
         sn_len: i32,
         m_ptr: i32,
         m_len: i32,
         md_ptr: i32,
         md_len: i32,
         token_ptr: i32|
         -> R {
            count(&mut c);
            let service = tri!(read(&mut c, s_ptr, s_len));
            for (p, n) in [(sn_ptr, sn_len), (m_ptr, m_len), (md_ptr, md_len)] {
                tri!(read(&mut c, p, n));
            }
            let token = tri!(start_grpc(c.data_mut(), &service, None));
            tri!(write_u32(&mut c, token_ptr, token));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut c: C<'_>, token: i32, ptr: i32, len: i32, _end: i32| -> R {
            count(&mut c);
            tri!(read(&mut c, ptr, len));
            if token % 2 == 1 {
                return ok(Status::BadArgument);
            }
            let known = c.data().grpc_calls.contains_key(&(token as u32));
            ok(if known { Status::Ok } else { Status::NotFound })
        },
    )?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        l.func_wrap("env", name, |mut c: C<'_>, token: i32| -> R {
            count(&mut c);
            let removed = c.data_mut().grpc_calls.remove(&(token as u32)).is_some();
            ok(if removed {
                Status::Ok
            } else {
                Status::NotFound
            })
        })?;
    }
    Ok(())
}

/// A unary gRPC call as the guest made it.
struct GrpcCallout {
    service_name: String,
    method: String,
    metadata: Vec<(String, Vec<u8>)>,
    message: Vec<u8>,
    timeout_ms: u32,
}

/// Starts a gRPC call (`Some`) or stream (`None`). A unary call gets the answer scripted for
/// its cluster (after its delay); anything else is answered UNIMPLEMENTED on the next
/// event-loop turn.
fn start_grpc(
    st: &mut HostState,
    service: &[u8],
    unary: Option<GrpcCallout>,
) -> Result<u32, Status> {
    let call = unary.is_some();
    let cluster = std::str::from_utf8(service).map_err(|_| Status::ParseFailure)?;
    let scripted = {
        let upstreams = lock(&st.shared.upstreams);
        if !upstreams.exists(cluster) {
            return Err(Status::ParseFailure);
        }
        unary
            .as_ref()
            .and_then(|u| upstreams.grpc_reply(cluster, &u.service_name, &u.method))
    };
    if let Some(u) = unary {
        st.callouts.push(Callout {
            kind: "grpc".into(),
            cluster: cluster.to_string(),
            headers: u.metadata,
            body: u.message,
            trailers: Vec::new(),
            timeout_ms: u.timeout_ms,
            service: u.service_name,
            method: u.method,
        });
    }
    // Envoy keeps calls on odd tokens and streams on even ones.
    let mut token = st.next_grpc_token;
    loop {
        if token != 0 && (token % 2 == 1) == call && !st.grpc_calls.contains_key(&token) {
            break;
        }
        token = token.wrapping_add(1);
    }
    st.next_grpc_token = token.wrapping_add(1);
    let context = st.context();
    let now = st.shared.now();
    let pending = match scripted {
        Some(r) => PendingGrpc {
            context,
            due: now + r.delay.as_nanos() as u64,
            status: r.status,
            message: answered_upstream(r.message),
            response: (r.status == 0).then_some(r.response),
        },
        None => PendingGrpc {
            context,
            due: now,
            status: Status::Unimplemented as u32,
            message: "unimplemented".to_string(),
            response: None,
        },
    };
    st.grpc_calls.insert(token, pending);
    Ok(token)
}

/// The status message Envoy's gRPC client gives for a server's answer: the server's
/// `grpc-message` with the response code details (`via_upstream`) appended in braces, or
/// the details alone (`enhancedGrpcMessage`; seen with a real gRPC server).
fn answered_upstream(message: String) -> String {
    if message.is_empty() {
        "via_upstream".to_string()
    } else {
        format!("{message}{{via_upstream}}")
    }
}

fn add_metrics(l: &mut Linker<HostState>) -> wasmtime::Result<()> {
    l.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, kind: i32, n_ptr: i32, n_len: i32, ret: i32| -> R {
            count(&mut c);
            let kind_bits = kind as u32;
            let kind = match kind_bits {
                0 => MetricKind::Counter,
                1 => MetricKind::Gauge,
                2 => MetricKind::Histogram,
                _ => return ok(Status::BadArgument),
            };
            let name = tri!(read(&mut c, n_ptr, n_len));
            let name = String::from_utf8_lossy(&name).into_owned();
            let st = c.data_mut();
            lock(&st.shared.metrics)
                .by_name
                .entry(name.clone())
                .or_insert(Metric {
                    kind,
                    value: 0,
                    samples: Vec::new(),
                });
            st.next_metric_seq += 1;
            // Envoy encodes the metric type in the two low bits of the id.
            let id = (st.next_metric_seq << 2) | kind_bits;
            st.metric_ids.insert(id, name);
            tri!(write_u32(&mut c, ret, id));
            ok(Status::Ok)
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, offset: i64| -> R {
            count(&mut c);
            ok(update_metric(c.data(), id as u32, |m| match m.kind {
                MetricKind::Counter if offset > 0 => {
                    m.value = m.value.saturating_add(offset);
                    Status::Ok
                }
                MetricKind::Gauge => {
                    m.value = m.value.saturating_add(offset);
                    Status::Ok
                }
                _ => Status::BadArgument,
            }))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, value: i64| -> R {
            count(&mut c);
            ok(update_metric(c.data(), id as u32, |m| {
                match m.kind {
                    MetricKind::Counter => m.value = m.value.saturating_add(value),
                    MetricKind::Gauge => m.value = value,
                    MetricKind::Histogram => m.samples.push(value as u64),
                }
                Status::Ok
            }))
        },
    )?;
    l.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> R {
            count(&mut c);
            let mut value = 0i64;
            let s = update_metric(c.data(), id as u32, |m| {
                value = m.value;
                if m.kind == MetricKind::Histogram {
                    Status::BadArgument
                } else {
                    Status::Ok
                }
            });
            if s != Status::Ok {
                return ok(s);
            }
            tri!(write_u64(&mut c, ret, value as u64));
            ok(Status::Ok)
        },
    )?;
    Ok(())
}

fn update_metric(st: &HostState, id: u32, f: impl FnOnce(&mut Metric) -> Status) -> Status {
    let Some(name) = st.metric_ids.get(&id) else {
        return Status::NotFound;
    };
    match lock(&st.shared.metrics).by_name.get_mut(name) {
        Some(m) => f(m),
        None => Status::NotFound,
    }
}

// WASI errno values.
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const ENOENT: i32 = 44;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;

fn add_wasi(l: &mut Linker<HostState>, m: &str) -> wasmtime::Result<()> {
    l.func_wrap(
        m,
        "fd_write",
        |mut c: C<'_>, fd: i32, iovs: i32, n: i32, nwritten: i32| -> R {
            let level = match fd {
                1 => Level::Info,
                2 => Level::Error,
                _ => return Ok(EBADF),
            };
            let mut out = Vec::new();
            for i in 0..n.max(0) {
                let Ok(iov) = read(&mut c, iovs.wrapping_add(i * 8), 8) else {
                    return Ok(EFAULT);
                };
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let Ok(chunk) = read(&mut c, ptr, len) else {
                    return Ok(EFAULT);
                };
                out.extend_from_slice(&chunk);
            }
            let written = out.len() as u32;
            if !out.is_empty() {
                if out.last() == Some(&b'\n') {
                    out.pop();
                }
                c.data_mut()
                    .log(level, String::from_utf8_lossy(&out).into_owned());
            }
            if write_u32(&mut c, nwritten, written).is_err() {
                return Ok(EFAULT);
            }
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(
        m,
        "fd_read",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32| -> R { Ok(ENOSYS) },
    )?;
    l.func_wrap(
        m,
        "fd_seek",
        |mut c: C<'_>, _: i32, _: i64, _: i32, _: i32| -> R {
            c.data_mut()
                .log(Level::Error, "wasi_unstable fd_seek".into());
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(m, "fd_close", |mut c: C<'_>, _: i32| -> R {
        c.data_mut()
            .log(Level::Error, "wasi_unstable fd_close".into());
        Ok(ESUCCESS)
    })?;
    l.func_wrap(
        m,
        "fd_fdstat_get",
        |mut c: C<'_>, fd: i32, stat: i32| -> R {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            let mut buf = [0u8; 24];
            buf[8] = 64; // fs_rights_base = FD_WRITE
            Ok(if write(&mut c, stat, &buf).is_ok() {
                ESUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    l.func_wrap(m, "fd_prestat_get", |_: C<'_>, _: i32, _: i32| -> R {
        Ok(EBADF)
    })?;
    l.func_wrap(
        m,
        "fd_prestat_dir_name",
        |_: C<'_>, _: i32, _: i32, _: i32| -> R { Ok(ENOSYS) },
    )?;
    l.func_wrap(
        m,
        "path_open",
        |_: C<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i64, _: i64, _: i32, _: i32| -> R {
            Ok(ENOENT)
        },
    )?;
    l.func_wrap(
        m,
        "environ_sizes_get",
        |mut c: C<'_>, count_ptr: i32, size_ptr: i32| -> R {
            let env = c.data().info.env.clone();
            let size: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            if write_u32(&mut c, count_ptr, env.len() as u32).is_err()
                || write_u32(&mut c, size_ptr, size as u32).is_err()
            {
                return Ok(EFAULT);
            }
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(
        m,
        "environ_get",
        |mut c: C<'_>, mut array: i32, mut buf: i32| -> R {
            let env = c.data().info.env.clone();
            for (k, v) in env {
                let entry = format!("{k}={v}\0");
                if write_u32(&mut c, array, buf as u32).is_err()
                    || write(&mut c, buf, entry.as_bytes()).is_err()
                {
                    return Ok(EFAULT);
                }
                array = array.wrapping_add(4);
                buf = buf.wrapping_add(entry.len() as i32);
            }
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(
        m,
        "args_sizes_get",
        |mut c: C<'_>, argc: i32, size: i32| -> R {
            if write_u32(&mut c, argc, 0).is_err() || write_u32(&mut c, size, 0).is_err() {
                return Ok(EFAULT);
            }
            Ok(ESUCCESS)
        },
    )?;
    l.func_wrap(m, "args_get", |_: C<'_>, _: i32, _: i32| -> R {
        Ok(ESUCCESS)
    })?;
    l.func_wrap(
        m,
        "clock_time_get",
        |mut c: C<'_>, id: i32, _precision: i64, ret: i32| -> R {
            let now = c.data().shared.now();
            let t = match id {
                0 => now,
                // Monotonic time counts from the simulated host's start.
                1 => now - EPOCH_START_NANOS,
                _ => return Ok(ENOTSUP),
            };
            Ok(if write_u64(&mut c, ret, t).is_ok() {
                ESUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    l.func_wrap(m, "random_get", |mut c: C<'_>, buf: i32, len: i32| -> R {
        // Found by fuzzing: a bad length used to allocate and fill up to 4 GiB first.
        if !in_bounds(&mut c, buf, len) {
            return Ok(EFAULT);
        }
        let mut bytes = vec![0u8; len as u32 as usize];
        for chunk in bytes.chunks_mut(8) {
            let r = c.data_mut().next_random().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        Ok(if write(&mut c, buf, &bytes).is_ok() {
            ESUCCESS
        } else {
            EFAULT
        })
    })?;
    l.func_wrap(m, "sched_yield", |_: C<'_>| -> R { Ok(ESUCCESS) })?;
    l.func_wrap(
        m,
        "proc_exit",
        |mut c: C<'_>, code: i32| -> wasmtime::Result<()> {
            c.data_mut()
                .log(Level::Error, "wasi_unstable proc_exit".into());
            Err(wasmtime::Error::msg(format!("proc_exit({code})")))
        },
    )?;
    Ok(())
}
