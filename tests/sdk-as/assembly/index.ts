// A proxy-wasm module written with another SDK than ours (AssemblyScript and
// @solo-io/proxy-runtime, ABI 0.2.0). The test runs it in Envoy and in host-sim on the same
// requests and compares what the client, the upstream and the logs saw. Every log line the
// test compares starts with "as: ".
export * from "@solo-io/proxy-runtime/proxy";
import {
  RootContext, Context, registerRootContext, log, LogLevelValues,
  FilterHeadersStatusValues, FilterDataStatusValues, stream_context,
  send_local_response, continue_request, HeaderPair, Headers, GrpcStatusValues,
} from "@solo-io/proxy-runtime";
import {
  get_buffer_bytes, BufferTypeValues, enqueue_shared_queue, set_tick_period_milliseconds, get_property,
  WasmResultValues,
} from "@solo-io/proxy-runtime/runtime";
import * as imports from "@solo-io/proxy-runtime/imports";

// The SDK 0.1.8 maps its set_buffer_bytes and shared-data wrappers onto the wrong host calls
// (and its queue wrappers pass tokens by value or do not compile): these are the host's own.
@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(typ: i32, start: u32, length: u32, data: usize, size: usize): u32;
@external("env", "proxy_set_shared_data")
declare function proxy_set_shared_data(key: usize, key_size: usize, value: usize, value_size: usize, cas: u32): u32;
@external("env", "proxy_get_shared_data")
declare function proxy_get_shared_data(key: usize, key_size: usize, value: usize, value_size: usize, cas: usize): u32;

const QUEUE = "as_queue";
let queue_token: u32 = 0;
let ticks: u32 = 0;

class Out { ptr: usize = 0; size: usize = 0; cas: u32 = 0; }

function setShared(key: string, value: string): void {
  const k = String.UTF8.encode(key);
  const v = String.UTF8.encode(value);
  proxy_set_shared_data(changetype<usize>(k), k.byteLength, changetype<usize>(v), v.byteLength, 0);
}

function getShared(key: string): string {
  const k = String.UTF8.encode(key);
  const out = new Out();
  const r = proxy_get_shared_data(changetype<usize>(k), k.byteLength,
    changetype<usize>(out) + offsetof<Out>("ptr"), changetype<usize>(out) + offsetof<Out>("size"),
    changetype<usize>(out) + offsetof<Out>("cas"));
  if (r != WasmResultValues.Ok) return "(" + r.toString() + ")";
  if (out.size == 0) return "";
  return String.UTF8.decodeUnsafe(out.ptr, out.size);
}

function text(b: ArrayBuffer): string {
  return String.UTF8.decode(b);
}

class ProbeRoot extends RootContext {
  createContext(context_id: u32): Context {
    return new Probe(context_id, this);
  }

  onStart(vm_configuration_size: usize): bool {
    log(LogLevelValues.info, "as: vm started");
    return true;
  }

  onConfigure(configuration_size: u32): bool {
    super.onConfigure(configuration_size);
    const config = this.getConfiguration();
    if (config == "reject") {
      log(LogLevelValues.error, "as: configuration rejected");
      return false;
    }
    log(LogLevelValues.info, "as: configured with " + config);
    const token = new Out();
    const name = String.UTF8.encode(QUEUE);
    imports.proxy_register_shared_queue(changetype<usize>(name), name.byteLength,
      changetype<usize>(token) + offsetof<Out>("cas"));
    queue_token = token.cas;
    set_tick_period_milliseconds(100);
    return true;
  }

  onTick(): void {
    ticks++;
    if (ticks == 1) {
      setShared("as_ticked", "yes");
      log(LogLevelValues.info, "as: first tick");
      set_tick_period_milliseconds(0);
    }
  }

  onQueueReady(token: u32): void {
    const out = new Out();
    const r = imports.proxy_dequeue_shared_queue(token, changetype<usize>(out) + offsetof<Out>("ptr"),
      changetype<usize>(out) + offsetof<Out>("size"));
    if (r == WasmResultValues.Ok) {
      const data = String.UTF8.decodeUnsafe(out.ptr, out.size);
      setShared("as_queued", data);
      log(LogLevelValues.info, "as: queue ready " + data);
    } else {
      log(LogLevelValues.warn, "as: queue empty " + r.toString());
    }
  }
}

// A singleton service (bootstrap_extensions): no listener, it lives on its tick.
class ServiceRoot extends RootContext {
  onConfigure(configuration_size: u32): bool {
    super.onConfigure(configuration_size);
    log(LogLevelValues.info, "as: service configured with " + this.getConfiguration());
    set_tick_period_milliseconds(150);
    return true;
  }

  onTick(): void {
    setShared("as_service_ticked", "yes");
    log(LogLevelValues.info, "as: service tick");
    set_tick_period_milliseconds(0);
  }
}

function afterCallout(origin: Context, headers: u32, body_size: usize, trailers: u32): void {
  const ctx = origin as Probe;
  const status = stream_context.headers.http_callback.get(":status");
  const body = text(get_buffer_bytes(BufferTypeValues.HttpCallResponseBody, 0, body_size as u32));
  const backend = stream_context.headers.http_callback.get("x-backend");
  log(LogLevelValues.info, "as: callout answered " + status + " from " + backend + " with " +
    body_size.toString() + " bytes");
  if (ctx.path == "/callout") {
    // The client gets what the upstream received from the callout (the backend echoes it).
    const extra: Headers = [];
    extra.push(new HeaderPair(String.UTF8.encode("x-as-callout-status"), String.UTF8.encode(status)));
    send_local_response(200, "as_callout", String.UTF8.encode(body), extra, GrpcStatusValues.InvalidCode);
    return;
  }
  stream_context.headers.request.add("x-as-callout-status", status);
  stream_context.headers.request.add("x-as-callout-bytes", body.length.toString());
  continue_request();
}

class Probe extends Context {
  path: string = "";

  constructor(context_id: u32, root_context: ProbeRoot) {
    super(context_id, root_context);
  }

  onRequestHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const req = stream_context.headers.request;
    this.path = req.get(":path");
    const method = req.get(":method");
    log(LogLevelValues.info, "as: request " + method + " " + this.path + " end " + end_of_stream.toString());
    req.add("x-as-added", "yes");
    req.remove("x-as-remove");
    req.replace("x-as-replace", "replaced");
    req.replace("x-wasmgate-cluster", "backend");
    if (this.path == "/local") {
      const extra: Headers = [];
      extra.push(new HeaderPair(String.UTF8.encode("x-as-local"), String.UTF8.encode("one")));
      extra.push(new HeaderPair(String.UTF8.encode("x-as-second"), String.UTF8.encode("two")));
      send_local_response(418, "as_teapot", String.UTF8.encode("short and stout\n"), extra,
        GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (this.path == "/local-empty") {
      send_local_response(204, "as_empty", new ArrayBuffer(0), [], GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    if (method == "POST") {
      // The body changes length below.
      req.remove("content-length");
    }
    if (this.path == "/callout" || this.path == "/callout-continue") {
      const headers: Headers = [];
      headers.push(new HeaderPair(String.UTF8.encode(":method"), String.UTF8.encode("POST")));
      headers.push(new HeaderPair(String.UTF8.encode(":path"), String.UTF8.encode("/from-callout")));
      headers.push(new HeaderPair(String.UTF8.encode(":authority"), String.UTF8.encode("callout.test")));
      headers.push(new HeaderPair(String.UTF8.encode("x-as-callout"), String.UTF8.encode("1")));
      const r = this.root_context.httpCall("backend", headers, String.UTF8.encode("callout-body"), [],
        5000, this, afterCallout);
      log(LogLevelValues.info, "as: callout sent " + r.toString());
      return FilterHeadersStatusValues.StopIteration;
    }
    if (this.path == "/enqueue") {
      const vm_id = text(get_property("plugin_vm_id"));
      const token = new Out();
      const v = String.UTF8.encode(vm_id);
      const q = String.UTF8.encode(QUEUE);
      const r = imports.proxy_resolve_shared_queue(changetype<usize>(v), v.byteLength,
        changetype<usize>(q), q.byteLength, changetype<usize>(token) + offsetof<Out>("cas"));
      const e = enqueue_shared_queue(token.cas, String.UTF8.encode("msg " + req.get("x-as-msg")));
      log(LogLevelValues.info, "as: enqueued " + r.toString() + " " + e.toString() + " same token " +
        (token.cas == queue_token).toString());
    }
    if (this.path == "/shared") {
      setShared("as_last", req.get("x-as-msg"));
      const body = "ticked=" + getShared("as_ticked") + " service=" + getShared("as_service_ticked") +
        " queued=" + getShared("as_queued") + " last=" + getShared("as_last") +
        " missing=" + getShared("as_missing") + "\n";
      send_local_response(200, "as_shared", String.UTF8.encode(body), [], GrpcStatusValues.InvalidCode);
      return FilterHeadersStatusValues.StopIteration;
    }
    return FilterHeadersStatusValues.Continue;
  }

  onRequestBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (!end_of_stream) {
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const body = text(get_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, body_buffer_length as u32));
    log(LogLevelValues.info, "as: request body " + body);
    const replacement = String.UTF8.encode("AS(" + body + ")");
    proxy_set_buffer_bytes(BufferTypeValues.HttpRequestBody, 0, body_buffer_length as u32,
      changetype<usize>(replacement), replacement.byteLength);
    return FilterDataStatusValues.Continue;
  }

  onResponseHeaders(a: u32, end_of_stream: bool): FilterHeadersStatusValues {
    const res = stream_context.headers.response;
    const status = res.get(":status");
    log(LogLevelValues.warn, "as: response " + status + " for " + this.path + " end " + end_of_stream.toString());
    res.add("x-as-response", status);
    const pairs = res.get_headers();
    let names = "";
    for (let i = 0; i < pairs.length; i++) {
      const name = text(pairs[i].key);
      if (name != "date" && name != "server" && name != "x-envoy-upstream-service-time") {
        names += (i == 0 ? "" : ",") + name;
      }
    }
    log(LogLevelValues.info, "as: response headers " + names);
    if (this.path == "/wrap") {
      res.remove("content-length");
    }
    return FilterHeadersStatusValues.Continue;
  }

  onResponseBody(body_buffer_length: usize, end_of_stream: bool): FilterDataStatusValues {
    if (this.path != "/wrap") {
      return FilterDataStatusValues.Continue;
    }
    if (!end_of_stream) {
      return FilterDataStatusValues.StopIterationAndBuffer;
    }
    const body = text(get_buffer_bytes(BufferTypeValues.HttpResponseBody, 0, body_buffer_length as u32));
    const wrapped = String.UTF8.encode("[as]" + body.length.toString() + "[/as]");
    proxy_set_buffer_bytes(BufferTypeValues.HttpResponseBody, 0, body_buffer_length as u32,
      changetype<usize>(wrapped), wrapped.byteLength);
    return FilterDataStatusValues.Continue;
  }

  onLog(): void {
    log(LogLevelValues.info, "as: logged " + this.path);
  }
}

registerRootContext((context_id: u32) => { return new ProbeRoot(context_id); }, "as_probe");
registerRootContext((context_id: u32) => { return new ServiceRoot(context_id); }, "as_service");
