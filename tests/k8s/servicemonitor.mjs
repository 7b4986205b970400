// Checks ServiceMonitor objects (a JSON list, from validate.py) against the
// prometheus-operator CRD's schema as @kubernetes-models/prometheus-operator ships it
// (generated from the upstream CRDs). It checks types, required fields and enums; unlike
// the strict Kubernetes check it lets unknown fields through.
//   node servicemonitor.mjs MONITORS.json NODE_MODULES_DIR
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [file, modules] = process.argv.slice(2);
const model = join(modules, "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js");
const { ServiceMonitor } = await import(pathToFileURL(model).href);
let failed = 0;
const monitors = JSON.parse(readFileSync(file, "utf8"));
for (const doc of monitors) {
  const what = `ServiceMonitor/${doc.metadata?.name}`;
  try {
    new ServiceMonitor(doc).validate();
    console.log(`ok       ${what} (prometheus-operator CRD schema)`);
  } catch (e) {
    failed += 1;
    console.log(`INVALID  ${what}: ${e.message}`);
  }
}
if (monitors.length === 0) {
  console.log("INVALID  no ServiceMonitor to check");
  failed += 1;
}
process.exit(failed ? 1 : 0);
