"""A real gRPC server on loopback for the host-sim fidelity test (grpcio, no generated code).

Service `probe.Echo`, messages as raw bytes:
  Ok    answers `pong:` + the request message, with initial metadata `x-probe-grpc: init`
        and trailing metadata `x-probe-grpc: trail`;
  Fail  answers PERMISSION_DENIED with the message below and trailing metadata.

Prints `port N` once listening, then one JSON line per call received (method, metadata,
message in hex). Stops when its standard input closes (the test's guard closes it, or
kills the process).
"""

import json
import sys
from concurrent import futures

import grpc

FAIL_MESSAGE = "denied: no ticket"


def record(method, request, context):
    metadata = [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()]
    line = {"method": method, "metadata": metadata, "message": request.hex()}
    print(json.dumps(line), flush=True)


def ok(request, context):
    record("Ok", request, context)
    context.send_initial_metadata((("x-probe-grpc", "init"),))
    context.set_trailing_metadata((("x-probe-grpc", "trail"),))
    return b"pong:" + request


def fail(request, context):
    record("Fail", request, context)
    context.set_trailing_metadata((("x-probe-grpc", "trail"),))
    context.abort(grpc.StatusCode.PERMISSION_DENIED, FAIL_MESSAGE)


def main():
    handlers = {
        "Ok": grpc.unary_unary_rpc_method_handler(ok),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("probe.Echo", handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()
