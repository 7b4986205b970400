"""Validates Kubernetes manifests offline, and fails on anything it cannot check.

    python3 validate.py --crd CRD.yaml [--monitors OUT.json] FILE...

- Built-in kinds: against the Kubernetes 1.37 OpenAPI schemas (kubernetes-validate,
  strict: unknown fields are errors).
- Cybs3 resources: against the openAPIV3Schema of the CRD given with --crd (jsonschema).
- ServiceMonitors (monitoring.coreos.com): written to --monitors as a JSON list for
  servicemonitor.mjs, which checks them against the prometheus-operator CRD's schema.
Any other kind is an error. Prints one line per object.
"""

import argparse
import json
import sys

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.37.0"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crd", required=True)
    ap.add_argument("--monitors")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    with open(args.crd, encoding="utf-8") as f:
        crd = yaml.safe_load(f)
    cr_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    cr_api = f"{crd['spec']['group']}/{crd['spec']['versions'][0]['name']}"
    monitors, failed, count = [], 0, 0
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            count += 1
            what = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                    monitors.append(doc)
                    print(f"deferred {what} (servicemonitor.mjs)")
                    continue
                if doc.get("kind") == crd["spec"]["names"]["kind"] and doc.get("apiVersion") == cr_api:
                    jsonschema.validate(doc, cr_schema)
                    print(f"ok       {what} (CRD schema)")
                    continue
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
                print(f"ok       {what} (Kubernetes {K8S_VERSION}, strict)")
            except Exception as e:  # every kind of failure is reported the same way
                failed += 1
                print(f"INVALID  {what}: {type(e).__name__}: {str(e).splitlines()[0]}")
    if args.monitors is not None:
        with open(args.monitors, "w", encoding="utf-8") as f:
            json.dump(monitors, f)
    elif monitors:
        print("INVALID  ServiceMonitors found but no --monitors to check them with")
        failed += 1
    if count == 0:
        print("INVALID  no objects found")
        failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
