//! The app under test: the real server, started on port 0 in the test's runtime against the
//! test's own database (one per test, from `#[sqlx::test]`), driven over HTTP and WebSocket
//! like a client would.

use std::{path::PathBuf, sync::Arc};

use auuction::{
    app::Parts,
    clock::ManualClock,
    config::{Config, RateLimitConfig},
    domain::{Role, Roles},
    mail::Mailer,
    passwords,
    store::users,
    Application,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::json;
use sqlx::PgPool;

use super::{bearer_token, Browser, Ws};

/// Every account the helpers make has this password.
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The test's database, shared with the app (closing it closes the app's pool too).
    pub db: PgPool,
    /// This app's own folder: `mail/` (every email, as `.eml` files) and `media/`.
    pub dir: PathBuf,
    /// The app's state, for what a client cannot reach (the engine, the scheduler).
    pub state: auuction::AppState,
}

/// Builds a [`TestApp`]. `TestApp::spawn(db)` is `TestApp::builder().spawn(db)`.
///
/// What can be swapped:
/// - the configuration: [`TestAppBuilder::with_config`] (rate limits, `base_url`,
///   `trust_proxy`...; keep `mail_dir` and `media_dir` under `dir`, where the helpers look);
/// - the clock: [`TestAppBuilder::with_clock`], a [`ManualClock`] the test moves, so
///   time-driven behaviour (a close passing, a calendar flip) needs no real waiting;
/// - the mailer: [`TestAppBuilder::with_mailer`] (by default every email is written under
///   `dir/mail/` and read back by [`TestApp::emails_to`]);
/// - the database's availability, once the app runs: [`TestApp::database_outage`].
pub struct TestAppBuilder {
    config: Config,
    dir: PathBuf,
    parts: Parts,
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        let dir = std::env::temp_dir().join(format!("auuction-test-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = Config::for_tests("unused://", &dir);
        // Tests make many requests from one address; the rate-limit tests lower these.
        config.rate_limits = RateLimitConfig {
            auth_per_ip: 10_000,
            auth_per_account: 10_000,
            write_per_ip: 100_000,
            write_per_account: 100_000,
        };
        TestAppBuilder {
            config,
            dir,
            parts: Parts::default(),
        }
    }

    /// The app with the test configuration, serving on a free port.
    pub async fn spawn(db: PgPool) -> TestApp {
        TestApp::builder().spawn(db).await
    }
}

impl TestAppBuilder {
    /// Changes the configuration the app starts with.
    pub fn with_config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Everything in the app reads "now" from `clock` (the engine's bids and closes, the
    /// calendar, tokens); the test moves it.
    pub fn with_clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.parts.clock = Some(clock);
        self
    }

    /// Emails go to `mailer` instead of `dir/mail/`.
    pub fn with_mailer(mut self, mailer: Mailer) -> Self {
        self.parts.mailer = Some(mailer);
        self
    }

    /// Starts the app on `db` and returns once it listens. It serves until the `TestApp` is
    /// dropped.
    pub async fn spawn(self, db: PgPool) -> TestApp {
        let app = Application::build_with(self.config, db.clone(), self.parts)
            .await
            .expect("app builds");
        let port = app.port();
        let state = app.state().clone();
        tokio::spawn(app.run(false));
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            db,
            dir: self.dir,
            state,
        }
    }
}

impl Drop for TestApp {
    /// Stops the app, and removes its folder unless the test is failing (then its emails and
    /// media stay for a look; the path is in `dir`).
    ///
    /// Stopping matters for time: `#[sqlx::test]` drops the test's database once the test
    /// returns, and Postgres waits up to 5 s for sessions still in it. The bid journal keeps
    /// a connection of its own, outside the pool, until the app shuts down; left running,
    /// every test that placed a bid spent 5 s in that wait.
    fn drop(&mut self) {
        self.state.shutdown.cancel();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A Prometheus counter or gauge of the app, by name (0 when it is not there yet).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(self.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| {
                let (key, value) = l.split_once(' ')?;
                (key == name).then(|| value.parse().ok())?
            })
            .unwrap_or(0.0)
    }

    /// A fresh browser: its own cookie jar, redirects not followed.
    pub fn browser(&self) -> Browser {
        Browser::new(
            Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            &self.base,
        )
    }

    /// A client that sends no cookies (an API client or a stranger).
    pub fn anonymous(&self) -> Browser {
        Browser::new(
            Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            &self.base,
        )
    }

    /// An API client: no cookies, the bearer `token` on every request.
    pub fn api_client(&self, token: &str) -> Browser {
        let mut client = self.anonymous();
        client.token = Some(token.to_string());
        client
    }

    /// A guest's WebSocket.
    pub async fn ws(&self) -> Ws {
        Ws::connect(&self.base, None).await
    }

    /// A WebSocket logged in as the existing account `email`.
    pub async fn ws_as(&self, email: &str) -> Ws {
        Ws::connect(&self.base, Some(&self.bearer_token(email).await)).await
    }

    // ---- accounts ---------------------------------------------------------------------

    /// Registers `email` through the API, as a newcomer does (name "Jane Doe", email
    /// notices on); returns the raw answer. The account is not verified.
    pub async fn register(&self, email: &str) -> Response {
        self.anonymous()
            .post("/api/auth/register", registration(email))
            .await
    }

    /// Creates a verified account with the given roles directly (as `auuction user add` does).
    pub async fn create_user(&self, email: &str, roles: &[Role]) -> i64 {
        let hash = passwords::hash(PASSWORD.to_string()).await.unwrap();
        let row = users::insert(
            &self.db,
            users::NewUser {
                email,
                name: &format!("User {email}"),
                password_hash: &hash,
                roles: &Roles::new(roles.to_vec()),
                preferences: users::Preferences {
                    email: true,
                    sms: false,
                },
                verified: true,
            },
        )
        .await
        .unwrap()
        .expect("new email");
        row.id
    }

    /// A fresh browser logged in (through the API) as the existing account `email`.
    pub async fn log_in(&self, email: &str) -> Browser {
        let mut b = self.browser();
        let (status, body) = b.login(email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
        b
    }

    /// Logs in a fresh browser as a new verified user with `roles`.
    pub async fn login_as(&self, email: &str, roles: &[Role]) -> Browser {
        self.create_user(email, roles).await;
        self.log_in(email).await
    }

    /// The bearer token of a fresh API login as the existing account `email`.
    pub async fn bearer_token(&self, email: &str) -> String {
        bearer_token(&self.base, email).await
    }

    /// `n` new verified bidders (`bidder<i>@example.org`), each with its id and a bearer token.
    pub async fn bidders(&self, n: usize) -> Vec<(i64, String)> {
        let mut out = Vec::new();
        for i in 0..n {
            let email = format!("bidder{i}@example.org");
            let id = self.create_user(&email, &[Role::Bidder]).await;
            out.push((id, self.bearer_token(&email).await));
        }
        out
    }

    // ---- email ------------------------------------------------------------------------

    /// All emails written for `to`, oldest first, as raw text.
    pub fn emails_to(&self, to: &str) -> Vec<String> {
        let mut mails: Vec<(std::time::SystemTime, String)> =
            std::fs::read_dir(self.dir.join("mail"))
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .filter_map(|e| {
                            let text = std::fs::read_to_string(e.path()).ok()?;
                            let modified = e.metadata().ok()?.modified().ok()?;
                            text.lines()
                                .any(|l| l.starts_with("To:") && l.contains(to))
                                .then_some((modified, text))
                        })
                        .collect()
                })
                .unwrap_or_default();
        mails.sort_by_key(|(t, _)| *t);
        mails.into_iter().map(|(_, t)| t).collect()
    }

    /// The token in the newest email to `to` whose link contains `path`.
    pub fn token_from_email(&self, to: &str, path: &str) -> String {
        let mails = self.emails_to(to);
        let mail = mails.last().unwrap_or_else(|| panic!("no email to {to}"));
        let marker = format!("{path}?token=");
        let start = mail
            .find(&marker)
            .unwrap_or_else(|| panic!("no {marker} link in:\n{mail}"))
            + marker.len();
        mail[start..]
            .chars()
            .take_while(|c| c.is_ascii_hexdigit())
            .collect()
    }
}

/// The registration the API expects, for `email` (password [`PASSWORD`]).
fn registration(email: &str) -> serde_json::Value {
    json!({ "name": "Jane Doe", "email": email, "password": PASSWORD, "preferences": { "email": true, "sms": false } })
}
