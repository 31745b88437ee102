// Rewrites worker-build's default export (build/index.js) to a plain subclass of the
// entrypoint class. worker-build wraps the entrypoint in a Proxy that, on every request,
// constructs a proxied instance and wraps each method it reads in another Proxy, so that a
// Rust panic can be caught and the wasm re-instantiated. The subclass keeps exactly that
// (the same re-initialisation check before, the same panic marking on a throw) without the
// Proxies. If the generated code does not have the expected shape (another worker-build), the
// file is left as it is.
import { readFileSync, writeFileSync } from "node:fs";

const file = process.argv[2];
const src = readFileSync(file, "utf8");
const exported = src.match(/(\w+) as default\}/);
const proxied = exported && src.match(new RegExp(`\\b${exported[1]}=new Proxy\\((\\w+),(\\w+)\\)`));
const handler = proxied && src.match(new RegExp(`\\b${proxied[2]}=\\{construct\\(\\w+,\\w+,\\w+\\)\\{try\\{(\\w+)\\(\\);`));
const marker = src.match(/catch\((\w+)\)\{throw (\w+)\(\1\),\1\}/);
if (!exported || !proxied || !handler || !marker) {
  console.error(`entry.mjs: ${file} does not have the expected shape; left as built`);
  process.exit(0);
}
const [entry, reinit, markPanic] = [proxied[1], handler[1], marker[2]];
const plain =
  `var __TwinExpertEntry=class extends ${entry}{async fetch(request){${reinit}();` +
  `try{return await super.fetch(request)}catch(e){throw ${markPanic}(e),e}}};`;
const out = src
  .replace(exported[0], "__TwinExpertEntry as default}")
  .replace(/export\{/, `${plain}export{`);
writeFileSync(file, out);
