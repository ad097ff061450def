#!/usr/bin/env python3
"""Removes named function exports from a .wasm module, in place.

The proxy-wasm Rust SDK exports every `proxy_on_*` callback, and Envoy calls each one a module
exports on every stream (context create, request headers, response headers and body, log,
done, delete), entering the VM each time. A callback a filter leaves at the SDK's default does
nothing, and Envoy skips a callback the module does not export, so dropping those exports saves
the VM entries. Only the export section changes: nothing else in a module refers to exports.

usage: drop_exports.py MODULE.wasm LIST   (LIST: a file with one export name a line, # comments)
"""
import sys


def leb(buf, i):
    """Reads an unsigned LEB128 at i; returns (value, next index)."""
    value = shift = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def enc(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def drop(module, names):
    if module[:8] != b"\0asm\1\0\0\0":
        raise SystemExit("not a wasm module (version 1)")
    out, i, dropped = bytearray(module[:8]), 8, set()
    while i < len(module):
        sid = module[i]
        size, body = leb(module, i + 1)
        end = body + size
        if sid == 7:  # the export section
            count, j = leb(module, body)
            kept = []
            for _ in range(count):
                n, k = leb(module, j)
                name = module[k : k + n].decode()
                kind = module[k + n]
                _, after = leb(module, k + n + 1)
                if kind == 0 and name in names:
                    dropped.add(name)
                else:
                    kept.append(module[j:after])
                j = after
            payload = enc(len(kept)) + b"".join(kept)
            out += bytes([7]) + enc(len(payload)) + payload
        else:
            out += module[i:end]
        i = end
    missing = names - dropped
    # A module already stripped (cargo did not relink it) exports none of them.
    if missing and missing != names:
        raise SystemExit(f"not exported (list out of date?): {', '.join(sorted(missing))}")
    return bytes(out)


def main():
    path, listing = sys.argv[1], sys.argv[2]
    with open(listing) as f:
        names = {l.split("#")[0].strip() for l in f} - {""}
    with open(path, "rb") as f:
        module = f.read()
    with open(path, "wb") as f:
        f.write(drop(module, names))


if __name__ == "__main__":
    main()
