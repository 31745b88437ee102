//! SPEC §18: the developer console (`/console/`) driven in Chromium as a new user would use it
//! (tests/browser/console.mjs): every page audited by axe-core and photographed at 360 px and
//! 1280 px into target/e2e/.

use crate::common::{browser_script, screenshot_dir};

// The page imported in the console is this server's own docs page, on 127.0.0.1.
crate::common::app!(
    ingest;
    AuthAttemptsPerMinute = "1000",
    WebhookAllowHttpHosts = "127.0.0.1"
);

#[test]
fn a_new_user_does_everything_from_the_console() {
    let dir = screenshot_dir();
    browser_script("console.mjs", &[&app().base, dir.to_str().unwrap()]);
    for page in [
        "signup",
        "keys",
        "twins",
        "twin",
        "playground",
        "usage",
        "conversations",
        "conversation",
        "webhooks",
    ] {
        for width in [360, 1280] {
            let shot = dir.join(format!("console-{page}-{width}.png"));
            assert!(
                std::fs::metadata(&shot)
                    .map(|m| m.len() > 5_000)
                    .unwrap_or(false),
                "{shot:?}"
            );
        }
    }
}
