// Serves one worker for bench/run (the trivial worker, the TypeScript peer, the floor) and
// bench/scale the way `wrangler dev` does (same config, local D1 and Durable Objects, Miniflare
// on workerd), but with no DevTools inspector attached: when this was written, wrangler dev
// forwarded every console.log through it at a cost above the trivial worker's whole request
// (BENCHMARKS.md); a deployed worker has none. One config only: the API with its cells is
// served by bench/run's serve_stack, in one runtime.
// Usage: node bench/serve.mjs CONFIG PORT PERSIST_DIR [NAME=VALUE ...]   (vars and secrets)
import { join } from "node:path";
import { unstable_startWorker } from "wrangler";

const [config, port, persist, ...vars] = process.argv.slice(2);
const bindings = Object.fromEntries(
  vars.map((pair) => {
    const at = pair.indexOf("=");
    return [pair.slice(0, at), { type: "plain_text", value: pair.slice(at + 1) }];
  }),
);
const worker = await unstable_startWorker({
  config,
  bindings,
  dev: {
    server: { hostname: "127.0.0.1", port: Number(port) },
    persist,
    inspector: false,
    logLevel: process.env.BENCH_LOG_LEVEL ?? "warn",
    watch: false,
    // A registry of its own: the API's SITE binding (the docs site, not benchmarked) stays
    // unresolved without failing the start, and no other local dev session is joined.
    registry: join(persist, "dev-registry"),
  },
});
await worker.ready;
const stop = async () => {
  await worker.dispose();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
