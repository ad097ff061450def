#!/usr/bin/env python3
"""Refreshes the CRD schemas the generator's tests validate against.

Reads the upstream CustomResourceDefinitions in ../shared/crds (see its README for sources and
versions) and writes, per CRD, its group, kind and each version's openAPIV3Schema as compact
JSON, with the prose `description` strings dropped. The tests then need nothing outside the
repository. Needs PyYAML. Run from the repository root:

    python3 configs/wasmgate/tests/crds/refresh.py [path/to/shared/crds]
"""
import json
import os
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../../../../shared/crds")
# Every CRD the generator reads or writes is kept (DestinationRule is read as the tuning
# policy of a multi-cluster service).
SKIP = ()


def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value


for folder in ("gateway-api", "mcs-api", "istio"):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    for name in sorted(os.listdir(os.path.join(SOURCE, folder))):
        if any(s in name for s in SKIP):
            continue
        with open(os.path.join(SOURCE, folder, name)) as f:
            (crd,) = [d for d in yaml.safe_load_all(f) if d]
        spec = crd["spec"]
        out = {"spec": {
            "group": spec["group"],
            "names": {"kind": spec["names"]["kind"]},
            "versions": [{"name": v["name"], "schema": strip(v.get("schema", {}))} for v in spec["versions"]],
        }}
        target = os.path.join(HERE, folder, name.rsplit(".", 1)[0] + ".json")
        with open(target, "w") as f:
            f.write(json.dumps(out, separators=(",", ":"), sort_keys=True) + "\n")
