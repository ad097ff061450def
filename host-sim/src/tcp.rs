//! TCP connections through Wasm network filters, ending at Envoy's `tcp_proxy`, whose
//! cluster a filter may pick with `set_envoy_filter_state("envoy.tcp_proxy.cluster", ...)`.

use crate::plugin::Plugin;
use crate::properties::{PropValue, PropertyOverrides};
use crate::state::{Access, HostAction, Stream};
use crate::types::Level;
use crate::vm::Callback;

const TCP_PROXY_CLUSTER_KEY: &str = "envoy.tcp_proxy.cluster";

/// A downstream connection and the bytes both sides send.
#[derive(Clone, Debug)]
pub struct TcpConnection {
    pub source_address: String,
    /// The listener port the client connected to (`destination.port`).
    pub downstream_local_port: u16,
    /// Chunks the client sends, one `proxy_on_downstream_data` call each.
    pub downstream_data: Vec<Vec<u8>>,
    /// Chunks the upstream answers, one `proxy_on_upstream_data` call each.
    pub upstream_data: Vec<Vec<u8>>,
    /// `tcp_proxy`'s configured cluster, used when no filter overrides it.
    pub default_cluster: Option<String>,
    pub properties: PropertyOverrides,
}

impl Default for TcpConnection {
    fn default() -> Self {
        TcpConnection {
            source_address: "127.0.0.1:50000".into(),
            downstream_local_port: 10000,
            downstream_data: Vec::new(),
            upstream_data: Vec::new(),
            default_cluster: None,
            properties: PropertyOverrides::default(),
        }
    }
}

impl TcpConnection {
    pub fn property(mut self, path: &[&str], value: PropValue) -> Self {
        self.properties.set(path, value);
        self
    }
}

/// The final state of one TCP connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TcpOutcome {
    /// The cluster `tcp_proxy` connects to.
    pub cluster: Option<String>,
    pub filter_state: Vec<(String, Vec<u8>)>,
    /// Bytes that reached the upstream / the client after the filters.
    pub to_upstream: Vec<u8>,
    pub to_downstream: Vec<u8>,
    /// A filter closed the connection (or its VM failed it).
    pub closed: bool,
    pub logs: Vec<(Level, String)>,
    pub host_calls: u64,
    pub vm_failures: Vec<String>,
}

impl Plugin {
    /// Runs one TCP connection through this network filter.
    pub fn tcp(&self, conn: TcpConnection) -> TcpOutcome {
        let mut out = TcpOutcome::default();
        let worker = self.pick_worker();
        let mut vm = self.vm(worker);
        let before = vm.host_calls();
        let id = self.sim().shared().next_vm_uid();
        let mut stream = Box::new(Stream {
            source_address: conn.source_address.clone(),
            destination_address: format!("127.0.0.1:{}", conn.downstream_local_port),
            connection_id: id,
            network: true,
            start_nanos: self.sim().shared().now(),
            overrides: conn.properties.clone(),
            ..Stream::default()
        });
        if let Some(m) = vm.failed.clone() {
            // A failed VM closes new connections unless fail_open.
            out.vm_failures.push(m);
            out.closed = !self.fail_open();
            if !out.closed {
                out.cluster = conn.default_cluster.clone();
                out.to_upstream = conn.downstream_data.concat();
                out.to_downstream = conn.upstream_data.concat();
            }
            return out;
        }
        let ctx = match vm.create_stream_context() {
            Ok(c) => c,
            Err(m) => {
                out.vm_failures.push(m);
                out.closed = !self.fail_open();
                out.logs.extend(vm.take_logs());
                return out;
            }
        };
        let mut access = Access::default();
        let run = |vm: &mut crate::vm::Vm,
                   cb: Callback,
                   stream: &mut Box<Stream>,
                   access: &mut Access,
                   out: &mut TcpOutcome| {
            let r = vm.call(ctx, cb, stream, access);
            out.logs.extend(r.logs);
            for (_, a) in r.actions {
                if matches!(a, HostAction::Close(2 | 3)) {
                    out.closed = true;
                }
            }
            match r.result {
                Ok(v) => v,
                Err(m) => {
                    out.vm_failures.push(m);
                    if !self.fail_open() {
                        out.closed = true;
                    }
                    0
                }
            }
        };
        run(
            &mut vm,
            Callback::NewConnection,
            &mut stream,
            &mut access,
            &mut out,
        );
        // tcp_proxy, the next filter, reads the filter state when it sees the connection.
        out.cluster = stream
            .filter_state
            .get(TCP_PROXY_CLUSTER_KEY)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .or_else(|| conn.default_cluster.clone());
        // tcp_proxy connects before any data flows: from then on the connection's stream
        // info names the upstream host and cluster (`upstream.*`, `xds.cluster_name`).
        if let Some(c) = &out.cluster {
            stream.upstream_address = Some(self.sim().upstreams().address(c));
            stream.upstream_cluster = Some(c.clone());
        }
        let n = conn.downstream_data.len();
        for (k, chunk) in conn.downstream_data.iter().enumerate() {
            if out.closed {
                break;
            }
            stream.downstream_data.extend_from_slice(chunk);
            access.downstream_data = true;
            let size = stream.downstream_data.len() as u32;
            let r = run(
                &mut vm,
                Callback::DownstreamData {
                    size,
                    end: k + 1 == n,
                },
                &mut stream,
                &mut access,
                &mut out,
            );
            access.downstream_data = false;
            // A paused network filter keeps the bytes buffered for the next read.
            if r == 0 {
                out.to_upstream
                    .extend(std::mem::take(&mut stream.downstream_data));
            }
        }
        let n = conn.upstream_data.len();
        for (k, chunk) in conn.upstream_data.iter().enumerate() {
            if out.closed {
                break;
            }
            stream.upstream_data.extend_from_slice(chunk);
            access.upstream_data = true;
            let size = stream.upstream_data.len() as u32;
            let r = run(
                &mut vm,
                Callback::UpstreamData {
                    size,
                    end: k + 1 == n,
                },
                &mut stream,
                &mut access,
                &mut out,
            );
            access.upstream_data = false;
            if r == 0 {
                out.to_downstream
                    .extend(std::mem::take(&mut stream.upstream_data));
            }
        }
        // Envoy 1.40, as the fidelity probe sees it when both sides end the stream: the
        // upstream close (peer unknown), then the downstream close (local: Envoy closes the
        // connection once both directions ended), then done, log and delete.
        for cb in [
            Callback::UpstreamClose { peer: 0 },
            Callback::DownstreamClose { peer: 1 },
            Callback::Done,
            Callback::Log,
            Callback::Delete,
        ] {
            if vm.failed.is_some() {
                break;
            }
            let mut a = Access {
                log_phase: matches!(cb, Callback::Log),
                ..Access::default()
            };
            run(&mut vm, cb, &mut stream, &mut a, &mut out);
        }
        out.host_calls = vm.host_calls() - before;
        out.filter_state = stream
            .filter_state
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out
    }
}
