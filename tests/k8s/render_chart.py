"""Renders the Helm chart offline with Helm's own Go engine (helm-python-sdk binds
libhelm_c, Helm v4's SDK built as a C library), lints it, and writes the manifests as
one multi-document YAML file.

    python3 render_chart.py CHART OUT.yaml [VALUES.yaml]
"""

import sys

import helm_python as helm


def main() -> int:
    chart_dir, out = sys.argv[1], sys.argv[2]
    values = {}
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as f:
            values = helm.values_from_yaml(f.read())
    report = helm.lint(chart_dir, values, strict=True)
    problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
    for m in problems:
        print(f"lint: {m.get('path')}: {m.get('error')}", file=sys.stderr)
    if problems or report.get("errors"):
        print(f"lint errors: {report.get('errors')}", file=sys.stderr)
        return 1
    chart = helm.Chart.load(chart_dir)
    manifests = chart.render(values, name="store", namespace="storage", is_install=True)
    docs = []
    for path in sorted(manifests):
        text = manifests[path].strip()
        # NOTES.txt is for people, and a template that renders nothing is no object.
        if path.endswith("NOTES.txt") or not text or all(
            not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
        ):
            continue
        docs.append(f"# Source: {path}\n{text}")
    with open(out, "w", encoding="utf-8") as f:
        f.write("\n---\n".join(docs) + "\n")
    print(f"helm {helm.helm_sdk_version()}: {len(docs)} templates rendered to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
