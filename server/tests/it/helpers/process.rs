//! `auuction` as a process of its own, for what only a process shows: the command line, the
//! demo, a SIGKILL.

use std::{
    process::{Child, Command},
    time::{Duration, Instant},
};

/// The `auuction` binary Cargo built for these tests.
pub fn auuction() -> Command {
    Command::new(env!("CARGO_BIN_EXE_auuction"))
}

/// `auuction serve` on `port` against `database_url`, its mail and media under `dir`, with
/// the write and login limits lifted (a test's many clients share one address) and its
/// output silenced: the server a crash test kills and starts again.
pub fn serve(database_url: &str, port: u16, dir: &std::path::Path) -> Command {
    let mut command = auuction();
    command
        .arg("serve")
        .env("DATABASE_URL", database_url)
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("SECRET_KEY", "k".repeat(40))
        .env("MAIL_DIR", dir.join("mail"))
        .env("MEDIA_DIR", dir.join("media"))
        .env("RATE_LIMIT_WRITE_PER_ACCOUNT", "100000")
        .env("RATE_LIMIT_AUTH_PER_IP", "100000")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    command
}

/// A free local port: bound, then let go for the process to take.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `base`/healthz until it answers 2xx; false if it does not within `within`.
pub async fn healthy_within(base: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running process, killed (SIGKILL) and reaped when dropped, so that a failed assertion
/// never leaves a server behind.
pub struct ServerProcess {
    child: Child,
}

impl ServerProcess {
    pub fn start(command: &mut Command) -> ServerProcess {
        ServerProcess {
            child: command.spawn().expect("auuction starts"),
        }
    }

    /// SIGKILL, then reap: the process gets no chance to flush or to shut down.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Already reaped after `kill`: both calls then fail harmlessly.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
