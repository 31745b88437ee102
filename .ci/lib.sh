# Shared by .ci/dev and .ci/test (sourced, not run): installs whatever is missing into the
# project's git-ignored folders, puts the tools on PATH and builds. Needs only rustup/cargo,
# Node >= 20 and npm; every download comes from crates.io or npm.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TOOLS="$ROOT/.tools"
WORKER_BUILD_VERSION=0.8.7

# Wrangler would otherwise phone home (metrics, banner check, cf fetch) and wait on timeouts.
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true CLOUDFLARE_CF_FETCH_ENABLED=false
# node_modules/.bin first: it carries Node 22 (wrangler needs it), wrangler, wasm-opt, esbuild.
export PATH="$ROOT/node_modules/.bin:$TOOLS/bin:$HOME/.cargo/bin:$PATH"
# worker-build would download these from GitHub; point it at the local ones.
export WASM_BINDGEN_BIN="$TOOLS/bin/wasm-bindgen"
export WASM_OPT_BIN="$ROOT/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$ROOT/node_modules/.bin/esbuild"

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

locked_version() { # the version of crate $1 in Cargo.lock
  awk -v want="$1" '$0 == "name = \"" want "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_tools() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  for component in rustfmt clippy; do
    rustup component list --installed | grep -q "^$component" || rustup component add "$component"
  done
  # The two tools install at once, beside npm ci, with a quick release profile: their own
  # speed hardly matters (worker-build only drives the build; wasm-bindgen runs once a build),
  # and a fresh clone spends most of its first minutes here.
  local wbg pids=()
  wbg=$(locked_version wasm-bindgen)
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=false \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=0
  if ! "$TOOLS/bin/worker-build" --version 2>/dev/null | grep -qF "$WORKER_BUILD_VERSION"; then
    say "installing worker-build $WORKER_BUILD_VERSION into .tools (once)"
    cargo install --quiet --root "$TOOLS" worker-build --version "$WORKER_BUILD_VERSION" --locked &
    pids+=($!)
  fi
  if ! "$TOOLS/bin/wasm-bindgen" --version 2>/dev/null | grep -qF "$wbg"; then
    # Without --locked: its lockfile pins a dependency that is no longer published.
    say "installing wasm-bindgen-cli $wbg into .tools (once)"
    cargo install --quiet --root "$TOOLS" wasm-bindgen-cli --version "$wbg" &
    pids+=($!)
  fi
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "npm ci (wrangler, Node 22, binaryen)"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  local pid
  for pid in "${pids[@]}"; do wait "$pid"; done
  unset CARGO_PROFILE_RELEASE_OPT_LEVEL CARGO_PROFILE_RELEASE_LTO CARGO_PROFILE_RELEASE_CODEGEN_UNITS CARGO_PROFILE_RELEASE_DEBUG
  # The docs site's API reference renderer (Redoc, pinned in package.json), served from the
  # site's own assets so its CSP allows no other origin. Not committed: copied from npm.
  mkdir -p "$ROOT/src/site/docs/vendor"
  cp -u node_modules/redoc/bundles/redoc.standalone.js node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt \
    "$ROOT/src/site/docs/vendor/"
  # The console's charts (uPlot, pinned in package.json), likewise from npm.
  mkdir -p "$ROOT/src/site/console/vendor"
  cp -u node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css node_modules/uplot/LICENSE \
    "$ROOT/src/site/console/vendor/"
}

apt_install() {
  say "apt-get install $*"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# What only the test command needs: a Python venv with the OpenAPI validator, schemathesis and
# requests (for the seed's Python examples), and Debian's Chromium for the docs-page test.
PY_PINS="schemathesis==4.32.5 openapi-spec-validator==0.9.0 requests==2.34.2 openai==3.57.0 standardwebhooks==1.3.0"

ensure_test_tools() {
  if [ "$(cat "$TOOLS/py/.pins" 2>/dev/null)" != "$PY_PINS" ]; then
    command -v python3 >/dev/null || apt_install python3 python3-venv
    say "installing $PY_PINS into .tools/py"
    python3 -m venv "$TOOLS/py"
    "$TOOLS/py/bin/pip" install --quiet --disable-pip-version-check $PY_PINS
    echo "$PY_PINS" >"$TOOLS/py/.pins"
  fi
  command -v chromium >/dev/null || apt_install chromium
}

build_worker() {
  say "building the workers (release wasm: the API, then the cells)"
  build_one build "$ROOT/wrangler.toml"
  build_one build-cells "$ROOT/src/cells/wrangler.toml" --features cells
}

# Builds one worker of the crate into ./$1 (extra arguments go to cargo: the cells' feature).
# Built beside the live build, then swapped in with one rename of the symlink: a running
# `wrangler dev` never loads a half-written wasm.
# CRATE_DIR: a crate other than the API's (bench/floor-rs); $link is then a path under $ROOT.
build_one() {
  local link=$1 config=$2 name next
  shift 2
  name="$(date +%s%N)-${link//\//-}"
  next="$ROOT/target/worker-builds/$name"
  mkdir -p "$ROOT/target/worker-builds"
  # KEEP_NAMES=1 (bench/profile): optimised, with the names a CPU profile shows.
  local mode=--release
  [ -n "${KEEP_NAMES:-}" ] && mode=--profiling
  worker-build "$mode" --out-dir "$next" "${CRATE_DIR:-.}" "$@" >"$ROOT/target/worker-build.log" 2>&1 \
    || { cat "$ROOT/target/worker-build.log"; return 1; }
  # worker-build runs wasm-opt with --debuginfo, which keeps the function-names section
  # (~170 KB raw). Drop it: panics still report file:line, only frame names are lost.
  # KEEP_NAMES=1 (bench/profile) keeps them, so a CPU profile names Rust functions.
  local strip=(--strip-debug --strip-producers)
  # (wasm-opt writes the names section only when told to: -g.)
  [ -n "${KEEP_NAMES:-}" ] && strip=(-g --strip-producers)
  # -Oz once more, on the module without its debug info: 2.9 KB less gzip (~10 s a worker).
  wasm-opt "$next/index_bg.wasm" -o "$next/index_bg.wasm" -Oz "${strip[@]}" \
    --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
    --enable-multivalue --enable-reference-types --enable-exception-handling
  # Exports without worker-build's per-call Proxies: a plain entrypoint (A/B: /health +18 %) and
  # Durable Object classes extending `DurableObject` (the objects' RPC needs that).
  node "$ROOT/.ci/entry.mjs" "$next/index.js" "$config"
  if [ -d "$ROOT/$link" ] && [ ! -L "$ROOT/$link" ]; then rm -rf "$ROOT/$link"; fi
  ln -sfn "$next" "$ROOT/$link.next" && mv -T "$ROOT/$link.next" "$ROOT/$link"
  # Keep the live build and the one before it (a dev server may still be reading it).
  ls -1dt "$ROOT"/target/worker-builds/*-"${link//\//-}" | tail -n +3 | xargs -r rm -rf
}

# For the benchmarks: wrangler's local explorer and local observability (dev-time UIs on by
# default in this wrangler, absent from a deployed worker) wrap every Durable Object class and
# stream every invocation — each request and each object call — to a collector worker. That
# cost falls on each hop, so it weighed more on a route with more of them. Off for every worker
# bench/run, bench/scale and bench/profile measure (ours, the baseline, the peer, the floor),
# as the inspector is (bench/serve.mjs). Side by side, 2 × 30 turns: our /health 4.9 → 2.6 ms,
# a keyed read 16 → 10 ms, the floor's 8.2 → 5.2 ms.
bench_runtime() {
  export X_LOCAL_OBSERVABILITY=false X_LOCAL_EXPLORER=false
}

# A free TCP port on 127.0.0.1.
free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# For the benchmarks: wrangler's port is a proxy (a workerd of its own) in front of the
# runtime's workerd, which listens on a port it picked (`entry=127.0.0.1:0`); the proxy's cost is
# not the worker's (measured: it roughly halves req/s), so measure the runtime's socket.
# runtime_workerd PATH TEXT [ANCESTOR]: prints "pid port" of the runtime workerd whose socket
# answers PATH with a body containing TEXT (and, given ANCESTOR, that descends from that
# process: the API and its baseline answer alike); fails when none does.
descends_from() { # pid ancestor
  local p=$1
  while [ -n "$p" ] && [ "$p" -gt 1 ]; do
    [ "$p" = "$2" ] && return 0
    p=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)
  done
  return 1
}
runtime_workerd() {
  local pid p
  for pid in $(pgrep -x workerd); do
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- '--socket-addr=entry=127.0.0.1:0 ' || continue
    [ -z "${3:-}" ] || descends_from "$pid" "$3" || continue
    for p in $(ss -ltnpH 2>/dev/null | awk -v pid="pid=$pid," 'index($0, pid) { n = split($4, a, ":"); print a[n] }'); do
      if node -e "fetch('http://127.0.0.1:$p$1').then(r=>r.text()).then(t=>process.exit(t.includes(process.argv[1])?0:1)).catch(()=>process.exit(1))" "$2" 2>/dev/null; then
        echo "$pid $p"
        return
      fi
    done
  done
  echo "no runtime socket answers $1 with $2" >&2
  return 1
}

build_model_server() {
  cargo build --quiet -p model-server
}

# Issue 18 fixes the enforced budget at 400 KB (goal 350 KB); `npm test` fails above it.
WASM_GZIP_BUDGET=400000

# The budget is the API worker's (the one every request starts); the cells worker's size is
# reported beside it and held to the same budget.
wasm_size() {
  local wasm=build/index_bg.wasm cells=build-cells/index_bg.wasm
  WASM_RAW=$(wc -c <"$wasm")
  WASM_GZIP=$(gzip -9 -c "$wasm" | wc -c)
  CELLS_GZIP=$(gzip -9 -c "$cells" | wc -c)
  printf 'wasm size: %s bytes raw, %s bytes gzip (budget %s gzip); cells worker: %s bytes raw, %s bytes gzip\n' \
    "$WASM_RAW" "$WASM_GZIP" "$WASM_GZIP_BUDGET" "$(wc -c <"$cells")" "$CELLS_GZIP"
}
