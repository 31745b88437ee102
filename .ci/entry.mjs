// Rewrites worker-build's exports (build/index.js) so that no request passes through a Proxy.
// worker-build wraps the entrypoint and each Durable Object class in a Proxy that constructs a
// proxied instance and wraps every method it reads in another Proxy, on every call, so that a
// Rust panic can be caught and the wasm re-instantiated. Here:
// - the entrypoint becomes a plain subclass keeping exactly that (the same re-initialisation
//   check before, the same panic marking on a throw);
// - each Durable Object class named in wrangler.toml becomes a class extending the runtime's
//   `DurableObject` that holds the wasm object and forwards each of its methods with the same
//   check and marking, re-creating the wasm object after a re-instantiation as the Proxy did.
//   Extending `DurableObject` is also what lets the Worker call its methods over RPC
//   (platform::object) instead of building an HTTP request and response for each call.
// The build fails when the generated code does not have the expected shape (another
// worker-build): the RPC calls depend on this rewrite.
import { readFileSync, writeFileSync } from "node:fs";

const [file, config = "wrangler.toml"] = process.argv.slice(2);
const src = readFileSync(file, "utf8");
const fail = (what) => {
  console.error(`entry.mjs: ${file}: ${what} not found; is worker-build's output still of the expected shape?`);
  process.exit(1);
};

const exported = src.match(/(\w+) as default\}/) ?? fail("the default export");
const handler =
  src.match(/\b(\w+)=\{construct\(\w+,\w+,\w+\)\{try\{(\w+)\(\);/) ?? fail("the Proxy handler");
const [handlerName, reinit] = [handler[1], handler[2]];
const markPanic = (src.match(/catch\((\w+)\)\{throw (\w+)\(\1\),\1\}/) ?? fail("the panic marker"))[2];
const proxyOf = (name) =>
  (src.match(new RegExp(`\\b${name}=new Proxy\\((\\w+),${handlerName}\\)`)) ?? fail(`${name}'s Proxy`))[1];

// The classes this script defines: bindings that name another script (script_name) are not.
const classes = [...readFileSync(config, "utf8").matchAll(/\{[^{}\n]*class_name = "(\w+)"[^{}\n]*\}/g)]
  .filter((m) => !m[0].includes("script_name"))
  .map((m) => m[1]);
let out = src.replace(exported[0], "__TwinExpertEntry as default}");
let plain =
  `var __TwinExpertEntry=class extends ${proxyOf(exported[1])}{async fetch(request){${reinit}();` +
  `try{return await super.fetch(request)}catch(e){throw ${markPanic}(e),e}}};`;
if (classes.length) {
  out = `import{DurableObject as __TwinExpertDO}from"cloudflare:workers";` + out;
  plain +=
    `function __twinExpertObject(Wasm){const state=globalThis.__worker_init_state;` +
    `class Obj extends __TwinExpertDO{constructor(ctx,env){super(ctx,env);${reinit}();` +
    `this.__args=[ctx,env];this.__wasm=new Wasm(ctx,env);this.__instance=state.instanceId}}` +
    `for(const name of Object.getOwnPropertyNames(Wasm.prototype)){` +
    `if(name==="constructor"||name==="free"||name.startsWith("__"))continue;` +
    `Obj.prototype[name]=async function(...args){${reinit}();` +
    `if(this.__instance!==state.instanceId){this.__wasm=new Wasm(...this.__args);this.__instance=state.instanceId}` +
    `try{return await this.__wasm[name](...args)}catch(e){throw ${markPanic}(e),e}}}` +
    `return Obj}`;
}
for (const name of classes) {
  const binding = (out.match(new RegExp(`(\\w+) as ${name}\\b`)) ?? fail(`the export of ${name}`))[1];
  const wasmClass = proxyOf(binding);
  plain += `var __TwinExpert${name}=__twinExpertObject(${wasmClass});`;
  out = out.replace(new RegExp(`\\b${binding} as ${name}\\b`), `__TwinExpert${name} as ${name}`);
}
// BENCH_COUNT_D1=1 (bench/scale only): every D1 statement the worker and its objects run is
// counted, by kind, and `GET /__bench/d1` answers the counts (`?reset=1` zeroes them). Never in
// a build that is deployed or tested: .ci/lib.sh sets it for bench/scale's own build alone.
if (process.env.BENCH_COUNT_D1 === "1") {
  plain = plain
    .replace("this.__args=[ctx,env];this.__wasm=new Wasm(ctx,env);", "env=__countEnv(env);this.__args=[ctx,env];this.__wasm=new Wasm(ctx,env);")
    .replace(
      "var __TwinExpertEntry=class extends",
      // The binding's own prototypes are patched (once per isolate): a Proxy around it would
      // fail workers-rs' type check of the binding.
      `const __d1={reads:0,writes:0};` +
        `function __countEnv(env){const db=env&&env.DB;if(!db||__countEnv.done)return env;__countEnv.done=true;` +
        `const count=(s)=>{s.__write?__d1.writes++:__d1.reads++};` +
        `const mark=(s,w)=>{if(s&&typeof s==="object")Object.defineProperty(s,"__write",{value:w,configurable:true});return s};` +
        `const dp=Object.getPrototypeOf(db);` +
        `const sp=Object.getPrototypeOf(dp.prepare.call(db,"SELECT 1")),bind=sp.bind;` +
        // The database's and a Sessions API session's (D1DatabaseSession) prepare and batch.
        `const patch=(p)=>{const prepare=p.prepare,batch=p.batch;` +
        `p.prepare=function(sql){return mark(prepare.call(this,sql),!/^\\s*SELECT/i.test(sql))};` +
        `p.batch=function(stmts){__countEnv.batching=true;for(const s of stmts)count(s);` +
        `try{return batch.call(this,stmts)}finally{__countEnv.batching=false}}};` +
        `const xp=dp.withSession&&Object.getPrototypeOf(dp.withSession.call(db,"first-unconstrained"));if(xp&&xp!==dp)patch(xp);patch(dp);` +
        `sp.bind=function(...a){return mark(bind.apply(this,a),this.__write)};` +
        `for(const m of ["all","first","run","raw"]){const f=sp[m];sp[m]=function(...a){if(!__countEnv.batching)count(this);return f.apply(this,a)}}` +
        // The network the bench simulates (BENCH_HOP_MS_D1, BENCH_HOP_MS_DO: vars of this
        // worker, 0 by default): each D1 round trip (a statement, or a batch) and each call to
        // a Durable Object stub waits that long first, as a hop across the network would. (An
        // RPC stub takes any property for a remote method, `apply` too: calls go through Reflect.)
        `const hopD1=Number(env.BENCH_HOP_MS_D1||0),hopDO=Number(env.BENCH_HOP_MS_DO||0);` +
        `const wait=(ms)=>ms>0?new Promise((r)=>setTimeout(r,ms)):Promise.resolve();` +
        `if(hopD1>0){const delay=(p,m)=>{const f=p[m];p[m]=async function(...a){if(!__countEnv.batching)await wait(hopD1);return f.apply(this,a)}};` +
        `for(const m of ["all","first","run","raw"])delay(sp,m);delay(dp,"batch");if(xp&&xp!==dp)delay(xp,"batch")}` +
        `if(hopDO>0){for(const v of Object.values(env)){const np=v&&typeof v.getByName==="function"&&Object.getPrototypeOf(v);` +
        `if(!np||np.__hop)continue;np.__hop=true;for(const m of ["get","getByName"]){const f=np[m];` +
        `np[m]=function(...a){const stub=f.apply(this,a);return new Proxy(stub,{get(t,k){const x=Reflect.get(t,k);` +
        `if(k==="call"||k==="fetch")return async(...b)=>{await wait(hopDO);return Reflect.apply(x,t,b)};` +
        `return typeof x==="function"?(...b)=>Reflect.apply(x,t,b):x}})}}}}` +
        `return env}` +
        `var __TwinExpertEntry=class extends`,
    )
    .replace(
      `async fetch(request){${reinit}();`,
      `constructor(ctx,env){super(ctx,__countEnv(env))}async fetch(request){const u=new URL(request.url);` +
        `if(u.pathname==="/__bench/d1"){const now={...__d1};if(u.searchParams.has("reset")){__d1.reads=0;__d1.writes=0}return Response.json(now)}${reinit}();`,
    );
}
out = out.replace(/export\{(?=[^{}]*\}\s*;?\s*$)/, `${plain}export{`);
writeFileSync(file, out);
