//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which scripts/test installs). Each test gets its own chromedriver on a free port.
//! `axe` runs axe-core (AXE_CORE_JS, which scripts/test installs) inside the page.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

use super::free_port;

pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Browser {
    pub async fn start() -> Self {
        // Two crates enable different rustls providers; WebDriver here is plain HTTP anyway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        let chrome = std::env::var("CHROME_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
        assert!(
            std::path::Path::new(&chromedriver).exists(),
            "{chromedriver} is missing: run ./scripts/test, which installs chromium and chromium-driver"
        );
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": chrome,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    "--window-size=640,1000"
                ]
            }
        });
        let caps = match caps {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::rustls()
                .expect("rustls client")
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("chromedriver did not answer: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        Self { client, driver }
    }

    /// Sets the viewport (not the window) to `width` CSS pixels, whatever the window chrome.
    pub async fn viewport(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window resizes");
        // The window may include chrome around the page: grow it by the difference once.
        let inner = self.js_u32("return window.innerWidth").await;
        if inner != width {
            self.client
                .set_window_size(width + width.saturating_sub(inner), height)
                .await
                .expect("window resizes");
        }
    }

    pub async fn js_u32(&self, script: &str) -> u32 {
        self.client
            .execute(script, vec![])
            .await
            .expect("script runs")
            .as_u64()
            .expect("a number") as u32
    }

    /// Saves a full-page screenshot under target/screenshots/ as a test artefact.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let png = self.client.screenshot().await.expect("screenshot");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    /// Waits until `script` returns true, up to 20 s (generous: a loaded 2-core machine).
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let done = self
                .client
                .execute(script, vec![])
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the page whose first heading is `h1`.
    pub async fn wait_for_heading(&self, h1: &str) {
        let script = format!(
            "const h = document.querySelector('h1'); return document.readyState === 'complete' \
             && !!h && h.textContent.trim() === {};",
            serde_json::Value::String(h1.to_string())
        );
        self.wait_until(&format!("the page \"{h1}\""), &script)
            .await;
    }

    pub async fn url(&self) -> String {
        self.client.current_url().await.expect("a URL").to_string()
    }

    /// Runs axe-core's WCAG 2.0 and 2.1 A and AA rules in the page; fails on any violation.
    pub async fn axe(&self, page: &str) {
        let path = std::env::var("AXE_CORE_JS").unwrap_or_else(|_| {
            format!(
                "{}/target/web-tests/node_modules/axe-core/axe.min.js",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core is missing at {path} ({e}): run ./scripts/test, which installs it")
        });
        // WebDriver runs scripts as function bodies: put axe on window explicitly.
        let install = format!("{source}\n;window.axe = axe; return true;");
        self.client
            .execute(&install, vec![])
            .await
            .expect("axe-core loads");
        let run = r#"
            const done = arguments[arguments.length - 1];
            axe.run(document, { runOnly: { type: 'tag',
                                           values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
              .then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' at ' +
                    v.nodes.map(n => n.target.join(' ')).join(', '))))
              .catch(e => done(['axe failed: ' + e]));"#;
        let violations = self
            .client
            .execute_async(run, vec![])
            .await
            .expect("axe runs");
        let violations: Vec<String> = serde_json::from_value(violations).expect("a list");
        assert!(
            violations.is_empty(),
            "{page}: accessibility violations:\n{}",
            violations.join("\n")
        );
    }

    /// Fails when the page is wider than the viewport, so scrolls sideways.
    pub async fn fits_width(&self, page: &str) {
        let width = self.js_u32("return window.innerWidth").await;
        let scroll = self
            .js_u32("return document.documentElement.scrollWidth")
            .await;
        assert!(
            scroll <= width,
            "{page}: {scroll} px wide in a {width} px viewport"
        );
    }

    /// A screenshot of the whole page at `width`, then the viewport as it was.
    pub async fn full_screenshot(&self, name: &str, width: u32) -> PathBuf {
        let height = self
            .js_u32("return document.documentElement.scrollHeight")
            .await;
        let before = self.js_u32("return window.innerHeight").await;
        self.viewport(width, height.clamp(200, 12_000)).await;
        let path = self.screenshot(name).await;
        self.viewport(width, before).await;
        path
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}
