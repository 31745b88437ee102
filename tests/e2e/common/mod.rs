//! `TestApp`: the real worker in workerd (`wrangler dev`, prebuilt by the test command) with
//! its own ports, its own local D1/Durable Object state folder, and its own model server.
//! Processes run under a watchdog shell that stops their whole process group when the test
//! process goes away, however it ends.
#![allow(dead_code)]

mod harness;
mod http;
mod process;
mod receiver;
mod stream;

pub use harness::*;
pub use http::*;
pub use process::*;
pub use receiver::*;
pub use stream::*;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Declares `app()`, the app a test module shares, with these vars over the defaults:
/// `app!(AuthAttemptsPerMinute = "1000", MaxOutputTokens = "64");`.
macro_rules! app {
    // `app!(ingest; …)`: with the ingest worker too.
    (ingest; $($var:ident = $value:expr),* $(,)?) => {
        fn app() -> &'static $crate::common::TestApp {
            static APP: std::sync::OnceLock<$crate::common::TestApp> = std::sync::OnceLock::new();
            let opts = $crate::common::Options::with(&[$(($crate::common::Var::$var, $value)),*]);
            $crate::common::shared_app(&APP, opts.ingest())
        }
    };
    ($($var:ident = $value:expr),* $(,)?) => {
        fn app() -> &'static $crate::common::TestApp {
            static APP: std::sync::OnceLock<$crate::common::TestApp> = std::sync::OnceLock::new();
            let opts = $crate::common::Options::with(&[$(($crate::common::Var::$var, $value)),*]);
            $crate::common::shared_app(&APP, opts)
        }
    };
}
pub(crate) use app;

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

/// Milliseconds since the Unix epoch (unique enough for a state folder's name).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A state folder of its own under target/e2e, for a test that stops its runtime and starts
/// another on the same state (`Options::state_dir`).
pub fn restart_dir(name: &str) -> std::path::PathBuf {
    root().join(format!(
        "target/e2e/{name}-{}-{}",
        std::process::id(),
        unix_ms()
    ))
}
