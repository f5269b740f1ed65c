//! `lscp-mail preview` served in-process on a free port, as the preview and local-image tests
//! use it: its pages, and its `/events` stream as the page's EventSource hears it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lscp_mail::preview::{self, Sources};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A preview server on a free port of 127.0.0.1, serving until [`Running::stop`].
pub struct Running {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Serves `issue` with the repository's lscp-mail.toml and `templates` (none: built in).
    pub async fn start(issue: &Path, templates: Option<PathBuf>) -> Self {
        Self::start_with(Sources {
            issue: issue.to_path_buf(),
            config: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("lscp-mail.toml")),
            templates,
        })
        .await
    }

    pub async fn start_with(sources: Sources) -> Self {
        let listener = preview::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(preview::serve(sources, listener, async {
            let _ = stopped.await;
        }));
        Self {
            base,
            stop: Some(stop),
            task,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("{}{path}", self.base))
            .await
            .expect("the preview answers");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    pub async fn events(&self) -> Events {
        Events::connect(&self.base).await
    }

    /// Stops the server, which must end even with an event stream open.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("the preview stops with streams open")
            .expect("join")
            .expect("served");
    }
}

/// `/events` read line by line over a plain socket: what the page's EventSource hears.
pub struct Events {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
}

impl Events {
    async fn connect(base: &str) -> Self {
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(
                format!(
                    "GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .expect("request");
        Self {
            lines: BufReader::new(stream).lines(),
        }
    }

    /// The next `built` event's build number (chunked framing and `building` events skipped).
    pub async fn next_built(&mut self) -> u64 {
        let wait = async {
            let mut built = false;
            while let Some(line) = self.lines.next_line().await.expect("read") {
                if line == "event: built" {
                    built = true;
                } else if built && let Some(n) = line.strip_prefix("data: ") {
                    return n.trim().parse().expect("a build number");
                }
            }
            panic!("the event stream ended");
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .expect("a build within 10 s")
    }
}
