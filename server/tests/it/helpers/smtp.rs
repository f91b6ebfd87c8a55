//! A real SMTP server on loopback for the notification tests: enough of RFC 5321 (EHLO,
//! MAIL, RCPT, DATA, RSET, NOOP, QUIT) for lettre's client, over a real TCP socket. Each
//! message's answer at the end of DATA follows a script the test writes (accept, refuse
//! with a 4xx or 5xx, or hang as a server that never answers); what it accepted is kept.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
};

/// The answer to one message's DATA.
#[derive(Clone, Debug)]
pub enum Verdict {
    Accept,
    /// e.g. `Refuse("451 4.3.0 try again later")` or `Refuse("550 5.1.1 no such user")`.
    Refuse(&'static str),
    /// Never answers (the connection stays open): a send that hangs mid-way.
    Hang,
}

/// A message the sink received in full (accepted or not).
#[derive(Clone, Debug)]
pub struct Received {
    /// The envelope sender (`MAIL FROM`).
    #[allow(dead_code)]
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-unstuffed, CRLF line ends.
    pub data: String,
    pub accepted: bool,
}

impl Received {
    /// The value of the first header `name` (case-insensitive), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut value: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = &mut value {
                if line.starts_with(' ') || line.starts_with('\t') {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                if n.eq_ignore_ascii_case(name) {
                    value = Some(v.trim().to_string());
                }
            }
        }
        value
    }
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Verdict>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl SmtpSink {
    /// Starts listening on a free loopback port; serves until the test's runtime ends.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = SmtpSink {
            addr: listener.local_addr().unwrap(),
            inner: Arc::default(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let sink = serving.clone();
                tokio::spawn(async move {
                    let _ = sink.serve(socket).await;
                });
            }
        });
        sink
    }

    /// `smtp://127.0.0.1:<port>` for `SMTP_URL` (plain SMTP, no TLS, no auth).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The answers to the next messages, in order; after them every message is accepted.
    pub fn script(&self, verdicts: impl IntoIterator<Item = Verdict>) {
        self.inner.lock().unwrap().script.extend(verdicts);
    }

    /// Every message received in full, accepted or not, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// The messages accepted (delivered), in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.received().into_iter().filter(|m| m.accepted).collect()
    }

    /// Waits (up to `within`) until `n` messages were received; returns them all.
    pub async fn wait_received(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to `within`) until `n` messages were accepted; returns them all.
    pub async fn wait_delivered(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let got = self.delivered();
            if got.len() >= n || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn serve(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink.test ESMTP ready\r\n").await?;
        let (mut from, mut to) = (String::new(), Vec::new());
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-sink.test\r\n250-8BITMIME\r\n250 PIPELINING\r\n"
            } else if command.starts_with("HELO") || command.starts_with("NOOP") {
                b"250 OK\r\n"
            } else if command.starts_with("MAIL FROM:") {
                from = line.trim_end()[10..].trim().to_string();
                to.clear();
                b"250 OK\r\n"
            } else if command.starts_with("RCPT TO:") {
                to.push(line.trim_end()[8..].trim().to_string());
                b"250 OK\r\n"
            } else if command.starts_with("RSET") {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            } else if command.starts_with("DATA") {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    let text = line.trim_end_matches(['\r', '\n']);
                    if text == "." {
                        break;
                    }
                    data.push_str(
                        text.strip_prefix('.')
                            .filter(|_| text.starts_with(".."))
                            .unwrap_or(text),
                    );
                    data.push_str("\r\n");
                }
                let verdict = self
                    .inner
                    .lock()
                    .unwrap()
                    .script
                    .pop_front()
                    .unwrap_or(Verdict::Accept);
                let accepted = matches!(verdict, Verdict::Accept);
                self.inner.lock().unwrap().received.push(Received {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    accepted,
                });
                match verdict {
                    Verdict::Accept => write.write_all(b"250 OK queued\r\n").await?,
                    Verdict::Refuse(answer) => {
                        write.write_all(format!("{answer}\r\n").as_bytes()).await?
                    }
                    Verdict::Hang => std::future::pending::<()>().await,
                }
                continue;
            } else if command.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                b"502 command not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}
