//! host-sim against Envoy, host call by host call. The probe module (`tests/probe`) calls
//! every proxy-wasm host function it can from a request-headers callback and answers with a
//! JSON report of each status and value. The same bootstrap runs in a real Envoy and in
//! host-sim; the two reports must agree on every entry, except the differences listed in
//! `KNOWN` with their reason (and in host-sim/README.md, "Known differences").
//! Besides the report at request headers it compares two whole streams (`POST /flow`, and
//! `POST /flow-trailers` with a chunked body and request trailers), what the upstream
//! received, and what each stream's `on_log` and `on_done` saw, which a later `GET /late`
//! fetches from shared data.
//!
//! The second test does the same for a network filter: the probe with root id `probe.tcp`
//! before `tcp_proxy`, on one TCP connection to a backend that greets and echoes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use host_sim::bootstrap_reader::parse_bootstrap;
use host_sim::{HostSim, HttpRequest, TcpConnection, UpstreamReply};
use serde_json::{json, Value};
use wasmgate_harness::bootstrap::{socket, static_cluster, HttpBootstrap};
use wasmgate_harness::{
    free_port, paths, post, post_chunked, request, Backend, Envoy, Scratch, TcpBackend,
};

/// Report entries whose value legitimately differs per request, connection or process
/// (addresses, ports, ids); only their status is compared. A key matches when it contains
/// one of these.
const VARYING: &[&str] = &[
    "property request.id",
    "property source.address",
    "property source.port",
    "property destination.address",
    "property destination.port",
    "property connection.id",
    "property connection_id",
    "property upstream.port",
    "property upstream.local_address",
    "property request.duration",
    "property request.time",
];

/// Entries where host-sim knowingly answers otherwise than Envoy 1.40, with the reason.
/// A listed entry that starts to agree fails the test too, so the list stays true.
const KNOWN: &[(&str, &str)] = &[
    ("trailers log: request trailers add", TRAILERS_ADDED_IN_LOG),
    (
        "trailers log: request trailers replace",
        TRAILERS_ADDED_IN_LOG,
    ),
    (
        "trailers log: request trailers remove",
        TRAILERS_ADDED_IN_LOG,
    ),
    ("trailers log: request trailers size", TRAILERS_ADDED_IN_LOG),
];

const TRAILERS_ADDED_IN_LOG: &str = "the filter paused a request body chunk before the \
    trailers, so Envoy still holds that body pointer; with the stream's last callback at its \
    end, Envoy's getMap adds an empty request trailer map (addDecodedTrailers) in the log \
    phase, writable and of size 0; host-sim has no request trailer map there";

const HOST: &str = "probe.test";
const PATH: &str = "/probe/path?x=1&y=two";
const HEADERS: &[(&str, &[u8])] = &[("x-probe-in", b"hello"), ("x-probe-remove", b"bye")];

const FLOW_PATH: &str = "/flow";
const FLOW_BODY: &[u8] = b"hello-body";

/// The request-trailers flow: a chunked body (one chunk) and two trailers.
const TRAILERS_PATH: &str = "/flow-trailers";
const TRAILERS_BODY: &[u8] = b"chunked-body";
const TRAILERS: &[(&str, &[u8])] = &[("x-probe-trailer", b"t1"), ("x-probe-trailer-remove", b"r")];
/// A reader request: the probe answers with the entries its earlier streams recorded in
/// `on_log` and `on_done`.
const LATE_PATH: &str = "/late";
/// The streams that record late entries, in the order they run.
const LOGGED_STREAMS: &[&str] = &["report", "flow", "trailers"];

fn probe_bootstrap(listen: SocketAddr, admin: SocketAddr, backend: SocketAddr) -> HttpBootstrap {
    HttpBootstrap::probe(listen, admin, &[("backend", backend)])
}

/// The probe's bootstrap as JSON, with HTTP/1.1 trailers enabled downstream and upstream:
/// by default Envoy's HTTP/1 codec drops them (no `on_http_request_trailers` at all).
fn probe_json(boot: &HttpBootstrap) -> Value {
    let mut json = boot.to_json();
    let hcm = &mut json["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
        ["typed_config"];
    hcm["http_protocol_options"] = json!({"enable_trailers": true});
    if let Some(clusters) = json["static_resources"]["clusters"].as_array_mut() {
        for c in clusters {
            c["typed_extension_protocol_options"] = json!({
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http_protocol_options": {"enable_trailers": true}}
                }
            });
        }
    }
    json
}

fn parse(body: &[u8], from: &str) -> BTreeMap<String, String> {
    serde_json::from_slice(body).unwrap_or_else(|e| {
        panic!(
            "{from}: the probe's report is not JSON ({e}):\n{}",
            String::from_utf8_lossy(body)
        )
    })
}

/// The probe's reports (host calls at request headers; the whole flow; the trailers flow;
/// the late entries of all three from `on_log` and `on_done`) and what reached the upstream.
struct Reports {
    calls: BTreeMap<String, String>,
    flow: BTreeMap<String, String>,
    upstream_body: Vec<u8>,
    trailers: BTreeMap<String, String>,
    late: BTreeMap<String, String>,
    /// The trailers flow as the upstream received it: body and trailers.
    trailers_upstream: (Vec<u8>, Vec<(String, String)>),
}

/// The late entries a reader request received: `--late--`, one `{"k": "v"}` per line,
/// `--end--`.
fn http_late_entries(body: &[u8], from: &str) -> BTreeMap<String, String> {
    late_entries(body, from)
}

/// Whether every logged stream's late entries include both its `on_log` and `on_done`.
fn all_logged(late: &BTreeMap<String, String>) -> bool {
    LOGGED_STREAMS.iter().all(|name| {
        let callbacks: Vec<&String> = late
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{name} callback ")))
            .map(|(_, v)| v)
            .collect();
        ["0:log", "0:done"]
            .iter()
            .all(|c| callbacks.iter().any(|v| v == c))
    })
}

fn reports_from_envoy() -> Reports {
    let backend = Backend::start("backend").unwrap();
    let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
    let boot = probe_bootstrap(
        SocketAddr::from(([127, 0, 0, 1], listen)),
        SocketAddr::from(([127, 0, 0, 1], admin)),
        backend.addr(),
    );
    let scratch = Scratch::new("fidelity").unwrap();
    let config = scratch
        .write("envoy.json", &probe_json(&boot).to_string())
        .unwrap();
    let envoy = Envoy::start(&config, admin, 1).unwrap();
    let r = request(boot.listen, "GET", HOST, PATH, HEADERS).unwrap();
    assert_eq!(
        (r.status, r.header("x-probe")),
        (200, Some("report")),
        "the probe did not answer in Envoy:\n{}\n{}",
        r.text(),
        envoy.log_text()
    );
    let calls = parse(&r.body, "Envoy");
    let f = post(boot.listen, HOST, FLOW_PATH, HEADERS, FLOW_BODY)
        .unwrap_or_else(|e| panic!("POST {FLOW_PATH}: {e}\n{}", envoy.log_text()));
    assert_eq!(
        f.status,
        200,
        "the flow failed in Envoy:\n{}\n{}",
        f.text(),
        envoy.log_text()
    );
    let t = post_chunked(
        boot.listen,
        HOST,
        TRAILERS_PATH,
        HEADERS,
        &[TRAILERS_BODY],
        TRAILERS,
    )
    .unwrap_or_else(|e| panic!("POST {TRAILERS_PATH}: {e}\n{}", envoy.log_text()));
    assert_eq!(
        t.status,
        200,
        "the trailers flow failed in Envoy:\n{}\n{}",
        t.text(),
        envoy.log_text()
    );
    let received = backend.received();
    let upstream_body = received
        .iter()
        .find(|r| r.path == FLOW_PATH)
        .map(|r| r.body.clone())
        .unwrap_or_default();
    let trailers_upstream = received
        .iter()
        .find(|r| r.path == TRAILERS_PATH)
        .map(|r| (r.body.clone(), r.trailers.clone()))
        .unwrap_or_default();
    // Envoy logs a stream as it ends, just after the client has its response: reader
    // requests fetch the late entries until every logged stream's are there (2 s at most).
    let start = Instant::now();
    let late = loop {
        let r = request(boot.listen, "GET", HOST, LATE_PATH, &[])
            .unwrap_or_else(|e| panic!("GET {LATE_PATH}: {e}\n{}", envoy.log_text()));
        let late = http_late_entries(&r.body, "Envoy reader");
        if all_logged(&late) || start.elapsed() > Duration::from_secs(2) {
            break late;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Reports {
        calls,
        flow: parse(&f.body, "Envoy flow"),
        upstream_body,
        trailers: parse(&t.body, "Envoy trailers flow"),
        late,
        trailers_upstream,
    }
}

fn reports_from_host_sim() -> Reports {
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let boot = probe_bootstrap(any, any, any);
    let setup = parse_bootstrap(&probe_json(&boot).to_string(), Path::new(".")).unwrap();
    let sim = HostSim::new().unwrap();
    setup.declare_clusters(&sim);
    // What the test backend answers: its name in `x-backend`, JSON.
    let mut reply = UpstreamReply::status(200);
    reply.headers = vec![
        ("content-type".into(), b"application/json".to_vec()),
        ("x-backend".into(), b"backend".to_vec()),
    ];
    reply.body = b"{}".to_vec();
    sim.set_upstream("backend", reply);
    let plugin = sim.load(setup.http_filters[0].clone()).unwrap();
    let with_headers = |mut req: HttpRequest| {
        for (k, v) in HEADERS {
            req = req.header(k, v);
        }
        req
    };
    let out = plugin.http(&setup.routes, with_headers(HttpRequest::get(HOST, PATH)));
    assert!(out.vm_failures.is_empty(), "{:?}", out.vm_failures);
    assert_eq!(out.status, 200, "{out:?}");
    let calls = parse(&out.response_body, "host-sim");
    let f = plugin.http(
        &setup.routes,
        with_headers(HttpRequest::post(HOST, FLOW_PATH, FLOW_BODY)),
    );
    assert!(f.vm_failures.is_empty(), "{:?}", f.vm_failures);
    assert_eq!(f.status, 200, "the flow failed in host-sim: {f:?}");
    let mut req = with_headers(HttpRequest::new("POST", HOST, TRAILERS_PATH))
        .header("transfer-encoding", b"chunked")
        .chunk(TRAILERS_BODY);
    for (k, v) in TRAILERS {
        req = req.trailer(k, v);
    }
    let t = plugin.http(&setup.routes, req);
    assert!(t.vm_failures.is_empty(), "{:?}", t.vm_failures);
    assert_eq!(t.status, 200, "the trailers flow failed in host-sim: {t:?}");
    // Each stream is logged before the next one starts: one reader request suffices.
    let reader = plugin.http(&setup.routes, HttpRequest::get(HOST, LATE_PATH));
    assert!(reader.vm_failures.is_empty(), "{:?}", reader.vm_failures);
    let trailers_upstream = (
        t.upstream_request_body.clone(),
        t.upstream_request_trailers
            .iter()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
    );
    Reports {
        calls,
        flow: parse(&f.response_body, "host-sim flow"),
        upstream_body: f.upstream_request_body.clone(),
        trailers: parse(&t.response_body, "host-sim trailers flow"),
        late: http_late_entries(&reader.response_body, "host-sim reader"),
        trailers_upstream,
    }
}

/// The status part of a `status:value` entry.
fn status(entry: &str) -> &str {
    entry.split_once(':').map_or(entry, |(s, _)| s)
}

/// Entry-by-entry differences that are neither varying nor known.
fn differences(envoy: &BTreeMap<String, String>, sim: &BTreeMap<String, String>) -> Vec<String> {
    let mut diffs = Vec::new();
    let keys: BTreeSet<&String> = envoy.keys().chain(sim.keys()).collect();
    for key in keys {
        let (e, s) = (envoy.get(key), sim.get(key));
        let agree = match (e, s) {
            (Some(e), Some(s)) if VARYING.iter().any(|v| key.contains(v)) => status(e) == status(s),
            (e, s) => e == s,
        };
        match (KNOWN.iter().any(|(k, _)| k == key), agree) {
            (true, true) => diffs.push(format!(
                "{key}: listed as a known difference but now agrees; drop it from KNOWN"
            )),
            (false, false) => diffs.push(format!(
                "{key}:\n    envoy:    {}\n    host-sim: {}",
                e.map_or("(missing)", String::as_str),
                s.map_or("(missing)", String::as_str)
            )),
            _ => {}
        }
    }
    diffs
}

#[test]
fn the_probe_sees_the_same_host_in_envoy_and_in_host_sim() {
    let envoy = reports_from_envoy();
    let sim = reports_from_host_sim();
    assert!(
        envoy.calls.len() > 70 && envoy.flow.len() > 35 && envoy.trailers.len() > 20,
        "the probe reported too little: {:?} {:?} {:?}",
        envoy.calls,
        envoy.flow,
        envoy.trailers
    );
    assert!(
        all_logged(&envoy.late) && all_logged(&sim.late),
        "on_log / on_done entries missing:\nenvoy: {:?}\nhost-sim: {:?}",
        envoy.late,
        sim.late
    );
    let mut diffs = differences(&envoy.calls, &sim.calls);
    diffs.extend(differences(&envoy.flow, &sim.flow));
    diffs.extend(differences(&envoy.trailers, &sim.trailers));
    diffs.extend(differences(&envoy.late, &sim.late));
    if envoy.trailers_upstream != sim.trailers_upstream {
        diffs.push(format!(
            "trailers flow as the upstream received it (body, trailers):\n    envoy:    {:?}\n    host-sim: {:?}",
            envoy.trailers_upstream, sim.trailers_upstream
        ));
    }
    if envoy.upstream_body != sim.upstream_body {
        diffs.push(format!(
            "body forwarded upstream:\n    envoy:    {:?}\n    host-sim: {:?}",
            String::from_utf8_lossy(&envoy.upstream_body),
            String::from_utf8_lossy(&sim.upstream_body)
        ));
    }
    assert!(
        diffs.is_empty(),
        "{} entries differ between Envoy and host-sim (status:value):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// TCP: the probe as a network filter before tcp_proxy.
// ---------------------------------------------------------------------------------------

const TCP_ROOT: &str = "probe.tcp";
/// What the client sends once it has the (edited) greeting.
const CLIENT_LINE: &[u8] = b"PING\n";
/// The probe ends the edited greeting with this, and wraps its report in the markers.
const GREETING_END: &[u8] = b"#\n";
const REPORT_START: &str = "--report--\n";
const REPORT_END: &[u8] = b"--end--\n";
const LATE_START: &str = "--late--\n";

/// A TCP listener with the probe's network root before `tcp_proxy`, whose own cluster is
/// `fallback`: the probe moves the connection to `backend` with the filter state.
fn tcp_bootstrap(
    listen: SocketAddr,
    admin: SocketAddr,
    backend: SocketAddr,
    fallback: SocketAddr,
) -> Value {
    json!({
        "admin": {"address": socket(admin)},
        "static_resources": {
            "listeners": [{
                "name": "tcp",
                "address": socket(listen),
                "filter_chains": [{"filters": [
                    {"name": TCP_ROOT, "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm",
                        "config": {
                            "name": TCP_ROOT,
                            "root_id": TCP_ROOT,
                            "vm_config": {
                                "vm_id": "wasmgate",
                                "runtime": "envoy.wasm.runtime.v8",
                                "code": {"local": {"filename": paths::wasm("wasmgate_probe").display().to_string()}}
                            },
                            "configuration": {
                                "@type": "type.googleapis.com/google.protobuf.StringValue",
                                "value": ""
                            }
                        }
                    }},
                    {"name": "envoy.filters.network.tcp_proxy", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": "probe",
                        "cluster": "fallback"
                    }}
                ]}]
            }],
            "clusters": [static_cluster("backend", backend), static_cluster("fallback", fallback)]
        }
    })
}

/// What one probed TCP connection gave: the report the client received (plus what reached
/// the client before it), and the entries recorded after it (end of stream, close
/// callbacks), which a later connection receives.
struct TcpReports {
    report: BTreeMap<String, String>,
    late: BTreeMap<String, String>,
}

/// Splits what the client received into the greeting part and the report.
fn tcp_report(received: &[u8], from: &str) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(received);
    let Some((before, rest)) = text.split_once(REPORT_START) else {
        panic!("{from}: no report in what the client received:\n{text}");
    };
    let json = rest
        .strip_suffix(std::str::from_utf8(REPORT_END).unwrap_or_default())
        .unwrap_or(rest);
    let mut report = parse(json.as_bytes(), from);
    report.insert(
        "client received before the report".into(),
        format!("0:{before:?}"),
    );
    report
}

/// The late entries a reader connection received: `--late--`, one `{"k": "v"}` per line,
/// `--end--`.
fn late_entries(received: &[u8], from: &str) -> BTreeMap<String, String> {
    let text = String::from_utf8_lossy(received);
    let Some((_, lines)) = text.split_once(LATE_START) else {
        panic!("{from}: no late entries in what the reader connection received:\n{text}");
    };
    let mut late = BTreeMap::new();
    for line in lines.lines().filter(|l| l.starts_with('{')) {
        let one: BTreeMap<String, String> = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{from}: a late entry is not JSON ({e}): {line}"));
        late.extend(one);
    }
    late
}

/// Whether the late entries include the last close callbacks.
fn closed(late: &BTreeMap<String, String>) -> bool {
    let closes: Vec<&String> = late
        .iter()
        .filter(|(k, _)| k.starts_with("close callback"))
        .map(|(_, v)| v)
        .collect();
    closes.iter().any(|v| v.ends_with(":log")) && closes.iter().any(|v| v.ends_with(":done"))
}

/// Reads until what arrived ends with `end` (or the peer closes, or 10 s pass).
fn read_until(conn: &mut TcpStream, end: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(end) {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    got
}

fn tcp_reports_from_envoy() -> TcpReports {
    let backend = TcpBackend::start("backend").unwrap();
    let fallback = TcpBackend::start("fallback").unwrap();
    let (listen, admin) = (free_port().unwrap(), free_port().unwrap());
    let local = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let boot = tcp_bootstrap(local(listen), local(admin), backend.addr(), fallback.addr());
    let scratch = Scratch::new("fidelity-tcp").unwrap();
    let config = scratch.write("envoy.json", &boot.to_string()).unwrap();
    let envoy = Envoy::start(&config, admin, 1).unwrap();
    let mut conn = TcpStream::connect(local(listen)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut received = read_until(&mut conn, GREETING_END);
    conn.write_all(CLIENT_LINE).unwrap();
    received.extend(read_until(&mut conn, REPORT_END));
    assert!(
        received.ends_with(REPORT_END),
        "no report from the probe in Envoy:\n{}\n{}",
        String::from_utf8_lossy(&received),
        envoy.log_text()
    );
    // The client closes its side; Envoy ends the upstream, which closes, and so on.
    let _ = conn.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
    drop(conn);
    // The close callbacks run as the connection goes: reader connections fetch what they
    // recorded until it includes the last of them.
    let start = Instant::now();
    let late = loop {
        let mut reader = TcpStream::connect(local(listen)).unwrap();
        reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let got = read_until(&mut reader, REPORT_END);
        let late = late_entries(&got, "Envoy tcp reader");
        if closed(&late) || start.elapsed() > Duration::from_secs(10) {
            break late;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    TcpReports {
        report: tcp_report(&received, "Envoy tcp"),
        late,
    }
}

fn tcp_reports_from_host_sim() -> TcpReports {
    let any = SocketAddr::from(([127, 0, 0, 1], 1));
    let boot = tcp_bootstrap(any, any, any, any);
    let setup = parse_bootstrap(&boot.to_string(), Path::new(".")).unwrap();
    let sim = HostSim::new().unwrap();
    let connect = |plugin: &host_sim::Plugin, sent: Vec<Vec<u8>>, answered: Vec<Vec<u8>>| {
        let out = plugin.tcp(TcpConnection {
            downstream_data: sent,
            upstream_data: answered,
            default_cluster: setup.tcp_cluster.clone(),
            ..TcpConnection::default()
        });
        assert!(out.vm_failures.is_empty(), "{:?}", out.vm_failures);
        out
    };
    let load = || {
        let sim = sim.fresh();
        setup.declare_clusters(&sim);
        sim.load(setup.network_filters[0].clone()).unwrap()
    };
    // The client sends its line, then ends its side. The backend greets with the name of
    // the cluster tcp_proxy picked, echoes what reached it, then ends its side: a first run
    // on a VM of its own learns both.
    let sent = || vec![CLIENT_LINE.to_vec(), Vec::new()];
    let first = connect(&load(), sent(), vec![b"?\n".to_vec()]);
    let greeting = format!("{}\n", first.cluster.as_deref().unwrap_or("(none)"));
    let plugin = load();
    let out = connect(
        &plugin,
        sent(),
        vec![greeting.into_bytes(), first.to_upstream.clone(), Vec::new()],
    );
    // The reader connection sends nothing and gets the fallback cluster's greeting.
    let reader = connect(&plugin, Vec::new(), vec![b"fallback\n".to_vec()]);
    TcpReports {
        report: tcp_report(&out.to_downstream, "host-sim tcp"),
        late: late_entries(&reader.to_downstream, "host-sim tcp reader"),
    }
}

#[test]
fn the_probe_sees_the_same_network_host_in_envoy_and_in_host_sim() {
    let envoy = tcp_reports_from_envoy();
    let sim = tcp_reports_from_host_sim();
    assert!(
        envoy.report.len() > 80 && envoy.late.len() > 5,
        "the probe reported too little: {:?} {:?}",
        envoy.report,
        envoy.late
    );
    let mut diffs = differences(&envoy.report, &sim.report);
    diffs.extend(differences(&envoy.late, &sim.late));
    assert!(
        diffs.is_empty(),
        "{} entries differ between Envoy and host-sim (status:value):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
