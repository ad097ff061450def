#!/usr/bin/env python3
"""Differential probe: the same requests through the real Envoy and through host-sim.

Builds one bootstrap (a Wasm filter in front of a cluster_header route, with upstream
clusters served by direct_response listeners of the same Envoy), sends each request to
Envoy, runs `host-sim run --envoy-config` on the same bootstrap, and prints any difference
in status, body or the watched headers. Exit 1 on a difference.

usage: differential.py [--envoy PATH] [--host-sim PATH] [--wasm PATH] [--keep]
"""
import argparse
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WATCHED_HEADERS = ["x-filter", "x-denied", "x-auth-status", "content-type", "content-length"]

# (name, method, path, headers, body)
REQUESTS = [
    ("routes by filter header", "GET", "/route", {"x-target": "east"}, ""),
    ("unknown cluster", "GET", "/route", {"x-target": "mars"}, ""),
    ("missing cluster header", "GET", "/other", {}, ""),
    ("client header is stripped", "GET", "/other", {"x-wasmgate-cluster": "east"}, ""),
    ("local reply runs response path", "GET", "/deny", {}, ""),
    ("callout resumes", "GET", "/callout", {}, ""),
    ("buffered body", "POST", "/body", {"x-target": "east"}, "hello"),
    ("headers vanish: SDK panics, stream fails closed", "POST", "/late", {"x-target": "east"}, "x"),
    ("after a trap the VM stays failed", "GET", "/route", {"x-target": "east"}, ""),
]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bootstrap(wasm, ports):
    upstream_listeners = ""
    clusters = ""
    for name in ["east", "west", "auth"]:
        upstream_listeners += f"""
  - name: up_{name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {ports[name]}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: up_{name}
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{inline_string: "{name}"}}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
"""
        clusters += f"""
  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {ports[name]}}}}}}}}}]}}]
"""
    return f"""
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {ports['admin']}}}}}
static_resources:
  listeners:
  - name: http
    address: {{socket_address: {{address: 127.0.0.1, port_value: {ports['http']}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress_http
          route_config:
            name: wasmgate
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route: {{cluster_header: x-wasmgate-cluster}}
          http_filters:
          - name: wasmgate.sdk
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: wasmgate.sdk
                root_id: wasmgate.sdk
                fail_open: false
                vm_config: {{vm_id: wasmgate, runtime: envoy.wasm.runtime.v8, code: {{local: {{filename: {wasm}}}}}}}
                configuration: {{"@type": type.googleapis.com/google.protobuf.StringValue, value: '{{}}'}}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
{upstream_listeners}
  clusters:
{clusters}
"""


def envoy_request(port, method, path, headers, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    h = {"host": "foo.com", **headers}
    try:
        conn.request(method, path, body=body.encode() if body else None, headers=h)
        r = conn.getresponse()
        return {"status": r.status, "body": r.read().decode(errors="replace"),
                "headers": {k.lower(): v for k, v in r.getheaders()}}
    except (http.client.HTTPException, ConnectionError) as e:
        return {"status": 0, "body": "", "headers": {}, "error": str(e)}
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--envoy", default=os.path.join(ROOT, ".venv/bin/envoy"))
    ap.add_argument("--host-sim", default=os.path.join(ROOT, "target/debug/host-sim"))
    ap.add_argument("--wasm", default=os.path.join(
        ROOT, "target/host-sim-sdk-guest/wasm32-wasip1/release/host_sim_sdk_guest.wasm"))
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="host-sim-probe-")
    ports = {k: free_port() for k in ["admin", "http", "east", "west", "auth"]}
    cfg = os.path.join(work, "envoy.yaml")
    with open(cfg, "w") as f:
        f.write(bootstrap(args.wasm, ports))
    log = open(os.path.join(work, "envoy.log"), "w")
    envoy = subprocess.Popen([args.envoy, "-c", cfg, "--concurrency", "1", "--disable-hot-restart",
                              "--base-id", str(random.randint(1000, 60000)), "-l", "info"],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                c = http.client.HTTPConnection("127.0.0.1", ports["admin"], timeout=1)
                c.request("GET", "/ready")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        else:
            print("envoy did not become ready; see", os.path.join(work, "envoy.log"))
            return 2
        real = [envoy_request(ports["http"], m, p, h, b) for (_, m, p, h, b) in REQUESTS]
    finally:
        envoy.terminate()
        envoy.wait(timeout=10)

    reqs = os.path.join(work, "requests.jsonl")
    with open(reqs, "w") as f:
        for (name, m, p, h, b) in REQUESTS:
            f.write(json.dumps({"name": name, "method": m, "host": "foo.com", "path": p,
                                "headers": h, "body": b}) + "\n")
    out = subprocess.run([args.host_sim, "run", "--envoy-config", cfg, "--requests", reqs],
                         capture_output=True, text=True)
    if out.returncode != 0:
        print(out.stderr)
        return 2
    sim = [json.loads(line) for line in out.stdout.splitlines()]

    diffs = 0
    for (name, *_), e, s in zip(REQUESTS, real, sim):
        sh = {k: v for k, v in s["response_headers"]}
        problems = []
        if e["status"] != s["status"]:
            problems.append(f"status envoy={e['status']} host-sim={s['status']}")
        if e["body"] != s["response_body"]:
            problems.append(f"body envoy={e['body']!r} host-sim={s['response_body']!r}")
        for h in WATCHED_HEADERS:
            if e["headers"].get(h) != sh.get(h):
                problems.append(f"{h} envoy={e['headers'].get(h)!r} host-sim={sh.get(h)!r}")
        print(("DIFF " if problems else "same ") + name)
        for p in problems:
            print("     " + p)
        diffs += bool(problems)
    if args.keep:
        print("kept", work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
