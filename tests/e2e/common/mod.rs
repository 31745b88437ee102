//! `TestApp`: the real worker in workerd (`wrangler dev`, prebuilt by the test command) with
//! its own ports, its own local D1/Durable Object state folder, and its own model server.
//! Processes run under a watchdog shell that stops their whole process group when the test
//! process goes away, however it ends.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
pub use twinexpert::auth::credentials::Scope;

/// The worker's `[vars]` a test may set (README, Configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    AllowedModels,
    AuthAttemptsPerMinute,
    AuthFailuresPerMinute,
    DailyTokenQuota,
    DefaultModel,
    GenerationMaxSecs,
    JwtSecret,
    KeyRecordTtlSecs,
    MaxApiKeysPerAccount,
    MaxConcurrentGenerations,
    MaxKnowledgeDocsPerTwin,
    MaxOutputTokens,
    RateLimitBurstPeriodSecs,
    RateLimitFullAccessBurst,
    RateLimitFullAccessHourly,
    RateLimitReadOnlyBurst,
    RateLimitReadOnlyHourly,
    RateLimitWindowSecs,
    SignupsPerIpPerDay,
    SsePingSecs,
    UpstreamApiKey,
    UpstreamBaseUrl,
    UpstreamFirstByteTimeoutMs,
    UpstreamIdleTimeoutMs,
}

impl Var {
    pub fn name(self) -> &'static str {
        match self {
            Var::AllowedModels => "ALLOWED_MODELS",
            Var::AuthAttemptsPerMinute => "AUTH_ATTEMPTS_PER_MINUTE",
            Var::AuthFailuresPerMinute => "AUTH_FAILURES_PER_MINUTE",
            Var::DailyTokenQuota => "DAILY_TOKEN_QUOTA",
            Var::DefaultModel => "DEFAULT_MODEL",
            Var::GenerationMaxSecs => "GENERATION_MAX_SECS",
            Var::JwtSecret => "JWT_SECRET",
            Var::KeyRecordTtlSecs => "KEY_RECORD_TTL_SECS",
            Var::MaxApiKeysPerAccount => "MAX_API_KEYS_PER_ACCOUNT",
            Var::MaxConcurrentGenerations => "MAX_CONCURRENT_GENERATIONS",
            Var::MaxKnowledgeDocsPerTwin => "MAX_KNOWLEDGE_DOCS_PER_TWIN",
            Var::MaxOutputTokens => "MAX_OUTPUT_TOKENS",
            Var::RateLimitBurstPeriodSecs => "RATE_LIMIT_BURST_PERIOD_SECS",
            Var::RateLimitFullAccessBurst => "RATE_LIMIT_FULL_ACCESS_BURST",
            Var::RateLimitFullAccessHourly => "RATE_LIMIT_FULL_ACCESS_HOURLY",
            Var::RateLimitReadOnlyBurst => "RATE_LIMIT_READ_ONLY_BURST",
            Var::RateLimitReadOnlyHourly => "RATE_LIMIT_READ_ONLY_HOURLY",
            Var::RateLimitWindowSecs => "RATE_LIMIT_WINDOW_SECS",
            Var::SignupsPerIpPerDay => "SIGNUPS_PER_IP_PER_DAY",
            Var::SsePingSecs => "SSE_PING_SECS",
            Var::UpstreamApiKey => "UPSTREAM_API_KEY",
            Var::UpstreamBaseUrl => "UPSTREAM_BASE_URL",
            Var::UpstreamFirstByteTimeoutMs => "UPSTREAM_FIRST_BYTE_TIMEOUT_MS",
            Var::UpstreamIdleTimeoutMs => "UPSTREAM_IDLE_TIMEOUT_MS",
        }
    }
}

pub const JWT_SECRET: &str = "e2e-jwt-secret-0123456789abcdef0123456789abcdef";
pub const UPSTREAM_KEY: &str = "e2e-upstream-key-never-logged";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program args…` in its own process group under a shell that kills that group as
/// soon as its stdin (held by this process) closes — with SIGKILL if the line it reads says
/// `kill` (a crash, for restart tests), else with SIGTERM.
fn spawn_guarded(program: &Path, args: &[String], log: Option<&Path>) -> Child {
    let redirect = match log {
        Some(path) => format!(">'{}' 2>&1", path.display()),
        None => String::new(),
    };
    let script = format!(
        "set -m; \"$@\" {redirect} & child=$!; read -r how; \
         if [ \"$how\" = kill ]; then kill -KILL -- -$child; else kill -TERM -- -$child; fi 2>/dev/null; wait"
    );
    command("bash")
        .arg("-c")
        .arg(script)
        .arg("guard")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        // Only bash's job-control notices land here; the program's output goes to its log.
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn guarded process")
}

fn bin(name: &str) -> PathBuf {
    root().join("node_modules/.bin").join(name)
}

/// A command with node_modules/.bin first on PATH: wrangler needs the Node 22 found there,
/// not the system's Node 20, and must not phone home.
fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let path = format!(
        "{}:{}",
        root().join("node_modules/.bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new(program);
    cmd.current_dir(root())
        .env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("CI", "true");
    cmd
}

pub struct TestApp {
    pub base: String,
    pub model_url: String,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    worker: Child,
    model: Child,
}

#[derive(Default)]
pub struct Options {
    pub vars: Vec<(Var, String)>,
    /// Reuse this state folder (to test that state survives a restart).
    pub state_dir: Option<PathBuf>,
}

impl TestApp {
    pub fn spawn() -> TestApp {
        Self::spawn_with(Options::default())
    }

    pub fn spawn_with(opts: Options) -> TestApp {
        assert!(
            root().join("build/worker/shim.mjs").exists(),
            "the worker is not built: run the test command (npm test), which builds it first"
        );
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let state_dir = opts.state_dir.clone().unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            let name = exe.file_stem().unwrap().to_string_lossy().to_string();
            root()
                .join("target/e2e")
                .join(format!("{name}-{}-{n}", std::process::id()))
        });
        std::fs::create_dir_all(&state_dir).unwrap();
        let persist = state_dir.join("wrangler");

        // The model server reports its port on its first line.
        let model_args = [
            "--port".to_owned(),
            "0".to_owned(),
            "--api-key".to_owned(),
            UPSTREAM_KEY.to_owned(),
        ];
        let mut model = spawn_guarded(&model_server(), &model_args, None);
        let mut first = String::new();
        BufReader::new(model.stdout.as_mut().unwrap())
            .read_line(&mut first)
            .unwrap();
        let model_url = first.trim().rsplit(' ').next().unwrap().to_owned();

        let status = command(bin("wrangler"))
            .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
            .arg(&persist)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        assert!(status.success(), "migrations failed");

        let port = free_port();
        let mut args: Vec<String> = vec![
            "dev".into(),
            // The API first (it takes the port), then the docs site it forwards to.
            "-c".into(),
            "wrangler.toml".into(),
            "-c".into(),
            "src/site/wrangler.toml".into(),
            "--ip".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--inspector-port".into(),
            free_port().to_string(),
            "--persist-to".into(),
            persist.display().to_string(),
            "--log-level".into(),
            "log".into(),
        ];
        let mut vars = vec![
            (Var::JwtSecret, JWT_SECRET.to_owned()),
            (Var::UpstreamApiKey, UPSTREAM_KEY.to_owned()),
            (Var::UpstreamBaseUrl, format!("{model_url}/v1")),
            (Var::DefaultModel, "twin-local-1".to_owned()),
            // Every local client is one IP: only tests of this limit set it low.
            (Var::AuthFailuresPerMinute, "100000".to_owned()),
            (Var::SignupsPerIpPerDay, "100000".to_owned()),
        ];
        // A test's own value replaces the default one.
        vars.retain(|(k, _)| !opts.vars.iter().any(|(o, _)| o == k));
        vars.extend(opts.vars.iter().cloned());
        for (k, v) in vars {
            args.push("--var".into());
            args.push(format!("{}:{v}", k.name()));
        }
        let log_path = state_dir.join(format!("worker-{n}.log"));
        let worker = spawn_guarded(&bin("wrangler"), &args, Some(&log_path));
        let app = TestApp {
            base: format!("http://127.0.0.1:{port}"),
            model_url,
            state_dir,
            log_path,
            worker,
            model,
        };
        app.wait_ready();
        app
    }

    fn wait_ready(&self) {
        // Generous: on 2 busy cores a first start (migrations, bundling) has taken over 60 s.
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            // The worker answers: 200, or its own 500 envelope when its configuration is
            // refused (a test of that starts it on purpose).
            let answered = match ureq::get(&format!("{}/api/v1/health", self.base))
                .timeout(Duration::from_secs(2))
                .call()
            {
                Ok(r) => r.status() == 200,
                Err(ureq::Error::Status(500, r)) => {
                    r.into_string().is_ok_and(|t| t.contains("INTERNAL_ERROR"))
                }
                Err(_) => false,
            };
            if answered {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("worker not ready in 120 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The API worker's JSON log lines (with two workers, wrangler prefixes each line with its
    /// worker's name).
    pub fn log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .map(|l| l.trim().trim_start_matches("[twinexpert-api]").trim_start())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str, auth: Auth) -> Reply {
        self.send("GET", path, auth, None)
    }

    pub fn post(&self, path: &str, auth: Auth, body: Value) -> Reply {
        self.send("POST", path, auth, Some(body))
    }

    pub fn patch(&self, path: &str, auth: Auth, body: Value) -> Reply {
        self.send("PATCH", path, auth, Some(body))
    }

    pub fn delete(&self, path: &str, auth: Auth) -> Reply {
        self.send("DELETE", path, auth, None)
    }

    pub fn send(&self, method: &str, path: &str, auth: Auth, body: Option<Value>) -> Reply {
        let req =
            auth.apply(ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60)));
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        Reply::from(result)
    }

    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        Reply::from(req.send_bytes(body))
    }

    /// `POST /chat/completions` with an API key and a JSON body (a refusal is a reply too).
    pub fn chat_completion(&self, key: &str, body: Value) -> Reply {
        self.raw(
            "POST",
            "/api/v1/chat/completions",
            &[
                ("Authorization", &format!("Bearer {key}")),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
    }

    /// Runs SQL against this app's local D1 (for states the API cannot reach quickly,
    /// such as an expired key).
    pub fn d1(&self, sql: &str) {
        let status = command(bin("wrangler"))
            .args(["d1", "execute", "DB", "--local", "--persist-to"])
            .arg(self.state_dir.join("wrangler"))
            .args(["--command", sql])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "d1 execute failed: {sql}");
    }

    /// Runs a query against this app's local D1 and returns its rows.
    pub fn d1_rows(&self, sql: &str) -> Vec<Value> {
        let out = command(bin("wrangler"))
            .args(["d1", "execute", "DB", "--local", "--json", "--persist-to"])
            .arg(self.state_dir.join("wrangler"))
            .args(["--command", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "d1 execute failed: {sql}");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["results"].as_array().cloned().unwrap_or_default()
    }

    /// Opens a streaming POST; the reply's events can then be read one by one as they arrive.
    pub fn open_stream(&self, path: &str, auth: Auth, body: Value) -> EventStream {
        self.try_stream("POST", path, auth, &[], Some(body))
            .unwrap_or_else(|r| panic!("stream refused: {} {}", r.status, r.text))
    }

    /// Opens a stream with any method and headers; a refusal comes back as the JSON reply.
    pub fn try_stream(
        &self,
        method: &str,
        path: &str,
        auth: Auth,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<EventStream, Box<Reply>> {
        let started = Instant::now();
        let mut req =
            auth.apply(ureq::request(method, &self.url(path)).timeout(Duration::from_secs(60)));
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let result = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        match result {
            Ok(resp) if resp.content_type() == "text/event-stream" => Ok(EventStream {
                message_id: resp.header("X-Message-Id").map(str::to_owned),
                status: resp.status(),
                content_type: resp.header("Content-Type").unwrap_or_default().to_owned(),
                reader: Some(resp.into_reader()),
                parser: twinexpert::llm::sse::Parser::new(),
                pending: std::collections::VecDeque::new(),
                started,
                raw: String::new(),
            }),
            other => Err(Box::new(Reply::from(other))),
        }
    }

    /// What the model server has seen (`GET /stats` of the model server).
    pub fn model_stats(&self) -> Value {
        ureq::get(&format!("{}/stats", self.model_url))
            .call()
            .unwrap()
            .into_json()
            .unwrap()
    }

    /// Kills the worker's whole process group with SIGKILL, as a crash would, and waits for it.
    pub fn crash_worker(&mut self) {
        use std::io::Write;
        if let Some(mut stdin) = self.worker.stdin.take() {
            let _ = stdin.write_all(b"kill\n");
        }
        let _ = self.worker.wait();
    }

    // --- fixtures ---

    /// Registers a fresh user.
    pub fn user(&self) -> TestUser {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let email = format!("user{n}-{}@example.com", std::process::id());
        let password = format!("pw-{n}-long-enough");
        let r = self.post(
            "/api/v1/auth/register",
            Auth::None,
            json!({"email": email, "password": password, "name": "Test User"}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let jwt = r.body["data"]["token"].as_str().unwrap().to_owned();
        TestUser {
            email,
            password,
            jwt,
        }
    }

    /// A new API key of `scope` for the user behind `jwt`.
    pub fn key(&self, jwt: &str, scope: Scope) -> TestKey {
        let r = self.post(
            "/api/v1/auth/api-keys",
            Auth::Bearer(jwt),
            json!({"name": "test", "scope": scope.as_str()}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        TestKey {
            secret: r.body["data"]["key"].as_str().unwrap().to_owned(),
            id: r.body["data"]["id"].as_str().unwrap().to_owned(),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Closing stdin tells each watchdog to stop its process group.
        for child in [&mut self.worker, &mut self.model] {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    XApiKey(&'a str),
}

impl Auth<'_> {
    fn apply(self, req: ureq::Request) -> ureq::Request {
        match self {
            Auth::None => req,
            Auth::Bearer(v) => req.set("Authorization", &format!("Bearer {v}")),
            Auth::XApiKey(v) => req.set("X-API-Key", v),
        }
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub body: Value,
}

impl Reply {
    fn from(result: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("transport error: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|n| {
                let v = resp.header(&n).unwrap_or_default().to_owned();
                (n, v)
            })
            .collect();
        let mut text = String::new();
        resp.into_reader().read_to_string(&mut text).unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts the full error envelope (docs: errors) and returns self for more checks.
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.body["success"], false, "{}", self.text);
        assert_eq!(self.body["error"], code, "{}", self.text);
        assert_eq!(self.body["statusCode"], status);
        assert!(self.body["message"].is_string());
        assert!(self.body["timestamp"].is_string());
        assert!(self.body["path"].is_string());
        assert!(self.body["method"].is_string());
        assert!(self.body["details"].is_object());
        let rid = self.header("X-Request-Id").expect("X-Request-Id");
        assert_eq!(self.body["meta"]["requestId"], rid);
        self
    }

    pub fn data(&self) -> &Value {
        assert_eq!(self.body["success"], true, "{}", self.text);
        &self.body["data"]
    }
}

/// A Server-Sent Events reply read incrementally, each event stamped with its arrival time.
pub struct EventStream {
    pub status: u16,
    /// `X-Message-Id`: the reply being streamed.
    pub message_id: Option<String>,
    pub content_type: String,
    reader: Option<Box<dyn Read + Send + Sync + 'static>>,
    parser: twinexpert::llm::sse::Parser,
    pending: std::collections::VecDeque<twinexpert::llm::sse::Event>,
    pub started: Instant,
    /// Everything received so far, as text (to look for comments such as `: ping`).
    pub raw: String,
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub id: u64,
    pub event: String,
    pub data: Value,
    pub at: Duration,
}

impl EventStream {
    pub fn next_event(&mut self) -> Option<Ev> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Ev {
                    id: e.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or(0),
                    event: e.event.unwrap_or_default(),
                    data: serde_json::from_str(&e.data).unwrap_or(Value::Null),
                    at: self.started.elapsed(),
                });
            }
            let reader = self.reader.as_mut()?;
            let mut buf = [0u8; 4096];
            let n = reader.read(&mut buf).unwrap_or(0);
            if n == 0 {
                self.reader = None;
                self.pending.extend(self.parser.finish());
                if self.pending.is_empty() {
                    return None;
                }
                continue;
            }
            self.raw.push_str(&String::from_utf8_lossy(&buf[..n]));
            self.pending.extend(self.parser.feed(&buf[..n]));
        }
    }

    pub fn collect(mut self) -> (Vec<Ev>, String) {
        let mut out = Vec::new();
        while let Some(e) = self.next_event() {
            out.push(e);
        }
        (out, self.raw)
    }

    /// Reads events until one satisfies `stop` (returned with all before it), or the end.
    pub fn read_until(&mut self, mut stop: impl FnMut(&Ev) -> bool) -> Vec<Ev> {
        let mut out = Vec::new();
        while let Some(e) = self.next_event() {
            let done = stop(&e);
            out.push(e);
            if done {
                break;
            }
        }
        out
    }

    /// Closes the connection, as a client that goes away would.
    pub fn disconnect(mut self) {
        self.reader = None;
    }
}

/// A registered user.
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub jwt: String,
}

/// A new API key: its plaintext and id.
pub struct TestKey {
    pub secret: String,
    pub id: String,
}

impl Options {
    /// The defaults, with `vars` over them.
    pub fn with(vars: &[(Var, &str)]) -> Options {
        Options {
            vars: vars.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            ..Default::default()
        }
    }

    /// Reuses a state folder (to test what survives a restart).
    pub fn state_dir(mut self, dir: PathBuf) -> Options {
        self.state_dir = Some(dir);
        self
    }
}

/// Declares `app()`, the app a test module shares, with these vars over the defaults:
/// `app!(AuthAttemptsPerMinute = "1000", MaxOutputTokens = "64");`.
macro_rules! app {
    ($($var:ident = $value:expr),* $(,)?) => {
        fn app() -> &'static $crate::common::TestApp {
            static APP: std::sync::OnceLock<$crate::common::TestApp> = std::sync::OnceLock::new();
            $crate::common::shared_app(&APP, &[$(($crate::common::Var::$var, $value)),*])
        }
    };
}
pub(crate) use app;

/// The app a test module shares, started on first use with `vars` over the defaults.
pub fn shared_app(cell: &'static OnceLock<TestApp>, vars: &[(Var, &str)]) -> &'static TestApp {
    cell.get_or_init(|| TestApp::spawn_with(Options::with(vars)))
}

/// The text of a stream's `delta` events, concatenated.
pub fn deltas(events: &[Ev]) -> String {
    events
        .iter()
        .filter(|e| e.event == "delta")
        .map(|e| e.data["content"].as_str().unwrap_or_default())
        .collect()
}

/// Polls `check` every 50 ms until it gives a value, or panics naming `what` after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The local model server, a workspace crate of its own: built once per test run (a no-op when
/// `.ci/test` built it already), since cargo builds only this package's binaries for its tests.
pub fn model_server() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "model-server"])
                .current_dir(root())
                .status()
                .expect("cargo runs");
            assert!(status.success(), "the model server builds");
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target"));
            target.join("debug/model-server")
        })
        .clone()
}
