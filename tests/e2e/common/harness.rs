//! `TestApp` itself: its vars, starting the worker and model server with their own ports and
//! state folder, its local D1, a registered user and key, restarts.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
pub use twinexpert::auth::credentials::Scope;

use super::*;

/// The worker's `[vars]` a test may set (README, Configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Var {
    AllowedModels,
    AuthAttemptsPerMinute,
    AuthFailuresPerMinute,
    DailyTokenQuota,
    DefaultModel,
    EventLogRetentionSecs,
    GenerationMaxSecs,
    JwtSecret,
    KeyRecordTtlSecs,
    MaxApiKeysPerAccount,
    MaxConcurrentGenerations,
    MaxKnowledgeCharsPerAccount,
    MaxKnowledgeDocsPerTwin,
    MaxOutputTokens,
    MaxTwinsPerAccount,
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
    WebhookAllowHttpHosts,
    WebhookDisableAfterSecs,
    WebhookRetryScheduleSecs,
}

impl Var {
    pub fn name(self) -> &'static str {
        match self {
            Var::AllowedModels => "ALLOWED_MODELS",
            Var::AuthAttemptsPerMinute => "AUTH_ATTEMPTS_PER_MINUTE",
            Var::AuthFailuresPerMinute => "AUTH_FAILURES_PER_MINUTE",
            Var::DailyTokenQuota => "DAILY_TOKEN_QUOTA",
            Var::DefaultModel => "DEFAULT_MODEL",
            Var::EventLogRetentionSecs => "EVENT_LOG_RETENTION_SECS",
            Var::GenerationMaxSecs => "GENERATION_MAX_SECS",
            Var::JwtSecret => "JWT_SECRET",
            Var::KeyRecordTtlSecs => "KEY_RECORD_TTL_SECS",
            Var::MaxApiKeysPerAccount => "MAX_API_KEYS_PER_ACCOUNT",
            Var::MaxConcurrentGenerations => "MAX_CONCURRENT_GENERATIONS",
            Var::MaxKnowledgeCharsPerAccount => "MAX_KNOWLEDGE_CHARS_PER_ACCOUNT",
            Var::MaxKnowledgeDocsPerTwin => "MAX_KNOWLEDGE_DOCS_PER_TWIN",
            Var::MaxOutputTokens => "MAX_OUTPUT_TOKENS",
            Var::MaxTwinsPerAccount => "MAX_TWINS_PER_ACCOUNT",
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
            Var::WebhookAllowHttpHosts => "WEBHOOK_ALLOW_HTTP_HOSTS",
            Var::WebhookRetryScheduleSecs => "WEBHOOK_RETRY_SCHEDULE_SECS",
            Var::WebhookDisableAfterSecs => "WEBHOOK_DISABLE_AFTER_SECS",
        }
    }
}

pub const JWT_SECRET: &str = "e2e-jwt-secret-0123456789abcdef0123456789abcdef";
pub const UPSTREAM_KEY: &str = "e2e-upstream-key-never-logged";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

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
    /// Also run the ingest worker (files and pages, SPEC §17). Only the servers of tests that
    /// upload start it: its 4 MB bundle costs every start a second or two of CPU.
    pub ingest: bool,
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

        // Ports are picked free, then bound by wrangler a moment later: another test server
        // starting at once can take one first ("Address already in use"). Then this one starts
        // again on fresh ports.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (port, log_path, mut worker) =
                Self::start_worker(&opts, &persist, &state_dir, &model_url);
            let base = format!("http://127.0.0.1:{port}");
            match wait_ready(&base, &log_path) {
                Ok(()) => {
                    return TestApp {
                        base,
                        model_url,
                        state_dir,
                        log_path,
                        worker,
                        model,
                    }
                }
                Err(log) => {
                    drop(worker.stdin.take());
                    let _ = worker.wait();
                    let port_taken = log.contains("Address already in use");
                    assert!(
                        attempt < 3 && port_taken,
                        "worker not ready in 120 s; log:\n{log}"
                    );
                }
            }
        }
    }

    /// Starts `wrangler dev` with every worker on fresh ports: its port, log and process.
    fn start_worker(
        opts: &Options,
        persist: &Path,
        state_dir: &Path,
        model_url: &str,
    ) -> (u16, PathBuf, Child) {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let port = free_port();
        let mut args: Vec<String> = vec![
            "dev".into(),
            // The API first (it takes the port), then the cells worker whose objects it
            // binds, the docs site it forwards to (and below, the ingest worker).
            "-c".into(),
            "wrangler.toml".into(),
            "-c".into(),
            "src/cells/wrangler.toml".into(),
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
        if opts.ingest {
            args.extend(["-c".into(), "src/ingest/wrangler.toml".into()]);
        }
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
        (port, log_path, worker)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The API worker's JSON log lines (with several workers, wrangler prefixes each line with
    /// its worker's name).
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

    /// Runs SQL against this app's local D1 (for states the API cannot reach quickly,
    /// such as an expired key).
    pub fn d1(&self, sql: &str) {
        self.d1_execute(sql, false);
    }

    /// `wrangler d1 execute` on this app's local D1. It starts a runtime of its own on the
    /// SQLite file the running worker writes, and once in a few hundred runs under a full
    /// suite it fails (a busy file, a runtime that did not start). It runs the statements as
    /// one batch, all or none, so a failed run is simply tried again.
    fn d1_execute(&self, sql: &str, json: bool) -> Vec<u8> {
        for attempt in 1.. {
            let mut cmd = command(bin("wrangler"));
            cmd.args(["d1", "execute", "DB", "--local", "--persist-to"])
                .arg(self.state_dir.join("wrangler"))
                .args(["--command", sql]);
            if json {
                cmd.arg("--json");
            }
            let out = cmd.output().unwrap();
            if out.status.success() {
                return out.stdout;
            }
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(attempt < 4, "d1 execute failed: {sql}\n{said}");
            eprintln!("d1 execute failed (attempt {attempt}), trying again: {said}");
            std::thread::sleep(Duration::from_millis(200 * attempt));
        }
        unreachable!()
    }

    /// Whether this app's local R2 bucket `bucket` holds `key`.
    pub fn r2_has(&self, bucket: &str, key: &str) -> bool {
        let out = command(bin("wrangler"))
            .args(["r2", "object", "get", &format!("{bucket}/{key}"), "--pipe"])
            .args(["--local", "--persist-to"])
            .arg(self.state_dir.join("wrangler"))
            .output()
            .unwrap();
        out.status.success() && !out.stdout.is_empty()
    }

    /// Runs a query against this app's local D1 and returns its rows.
    pub fn d1_rows(&self, sql: &str) -> Vec<Value> {
        let v: Value = serde_json::from_slice(&self.d1_execute(sql, true)).unwrap();
        v[0]["results"].as_array().cloned().unwrap_or_default()
    }

    /// Runs `sql` in the SQLite of every instance of the Durable Object class `class` (its
    /// folder in the local state, e.g. `twinexpert-cells-Account`), for states the API cannot
    /// reach quickly. Only while the runtime is stopped (`crash_worker`): a live object keeps
    /// its storage open. Answers how many rows it changed.
    pub fn object_sql(&self, class: &str, sql: &str) -> u64 {
        let script = r#"
import glob, sqlite3, sys
n = 0
for f in glob.glob(sys.argv[1] + "/*.sqlite"):
    if f.endswith("metadata.sqlite"):
        continue
    c = sqlite3.connect(f)
    n += c.execute(sys.argv[2]).rowcount
    c.commit()
    c.close()
print(n)
"#;
        let dir = self.state_dir.join("wrangler/v3/do").join(class);
        let out = command(root().join(".tools/py/bin/python"))
            .args(["-c", script])
            .arg(&dir)
            .arg(sql)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: {}", String::from_utf8_lossy(&out.stderr)))
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

/// Waits until the worker at `base` answers; `Err(its log)` after 120 s, or at once when it
/// could not bind its ports.
fn wait_ready(base: &str, log_path: &Path) -> Result<(), String> {
    // Generous: on 2 busy cores a first start (migrations, bundling) has taken over 60 s.
    let deadline = Instant::now() + Duration::from_secs(120);
    let log = || std::fs::read_to_string(log_path).unwrap_or_default();
    while Instant::now() < deadline {
        // The worker answers: 200, or its own 500 envelope when its configuration is
        // refused (a test of that starts it on purpose).
        let answered = match ureq::get(&format!("{base}/api/v1/health"))
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
            return Ok(());
        }
        if log().contains("Address already in use") {
            return Err(log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(log())
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

    /// With the ingest worker.
    pub fn ingest(mut self) -> Options {
        self.ingest = true;
        self
    }

    /// Reuses a state folder (to test what survives a restart).
    pub fn state_dir(mut self, dir: PathBuf) -> Options {
        self.state_dir = Some(dir);
        self
    }
}

/// The app a test module shares, started on first use with `vars` over the defaults.
pub fn shared_app(cell: &'static OnceLock<TestApp>, opts: Options) -> &'static TestApp {
    cell.get_or_init(|| TestApp::spawn_with(opts))
}
