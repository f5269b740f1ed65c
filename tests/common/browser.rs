//! A real headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`,
//! which scripts/test installs). Each test gets its own chromedriver on a free port.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};

pub struct Browser {
    pub client: Client,
    driver: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
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
