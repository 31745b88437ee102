//! The processes a test runs: the repository root, free ports, the watchdog that stops a
//! process group with the test, the tools in node_modules, the model server binary.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `program args…` in its own process group under a shell that kills that group as
/// soon as its stdin (held by this process) closes — with SIGKILL if the line it reads says
/// `kill` (a crash, for restart tests), else with SIGTERM.
pub fn spawn_guarded(program: &Path, args: &[String], log: Option<&Path>) -> Child {
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

pub fn bin(name: &str) -> PathBuf {
    root().join("node_modules/.bin").join(name)
}

/// A command with node_modules/.bin first on PATH: wrangler needs the Node 22 found there,
/// not the system's Node 20, and must not phone home.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
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

/// Runs `tests/browser/<script>` (Playwright driving Debian's Chromium) with `args`; panics
/// with what it printed unless it succeeds.
pub fn browser_script(script: &str, args: &[&str]) {
    let out = Command::new(root().join("node_modules/.bin/node"))
        .arg(root().join("tests/browser").join(script))
        .args(args)
        .current_dir(root())
        .output()
        .expect("spawn node");
    assert!(
        out.status.success(),
        "{script}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `target/e2e`, where browser tests write their screenshots.
pub fn screenshot_dir() -> PathBuf {
    let dir = root().join("target/e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
