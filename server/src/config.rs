//! One typed configuration, read from the environment (and a `.env` file if present).
//! Every variable and its default is documented here and in README.md.

use std::{net::SocketAddr, path::PathBuf, str::FromStr, time::Duration};

use anyhow::{bail, Context};
use url::Url;

use crate::local_time::LocalTime;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Limits of the governor rate limiters, in requests per minute (with the same burst).
#[derive(Clone, Debug)]
pub struct RateLimitConfig {
    /// Register, login, verify, password reset: per client IP.
    pub auth_per_ip: u32,
    /// Login and password reset attempts per submitted email address.
    pub auth_per_account: u32,
    /// Unsafe (write) API requests per client IP.
    pub write_per_ip: u32,
    /// Unsafe (write) API requests per signed-in account.
    pub write_per_account: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        // Generous enough for a family sharing one church Wi-Fi address during the last
        // minutes of bidding, tight enough to make password guessing pointless.
        RateLimitConfig {
            auth_per_ip: 30,
            auth_per_account: 10,
            write_per_ip: 6000,
            write_per_account: 600,
        }
    }
}

/// The text-message provider (`crate::sms`): all four variables, or none (no SMS).
#[derive(Clone, Debug)]
pub struct SmsConfig {
    /// `SMS_API_URL`, e.g. `https://api.twilio.com/2010-04-01`.
    pub api_url: String,
    /// `SMS_ACCOUNT_SID`.
    pub account: String,
    /// `SMS_AUTH_TOKEN`.
    pub token: String,
    /// `SMS_FROM`: the sending number, e.g. `+15551234567`.
    pub from: String,
}

/// The notification outbox's workers (see `crate::notify`).
#[derive(Clone, Debug)]
pub struct NotifyConfig {
    /// `NOTIFY_WORKERS`, default 2: outbox workers in this process; 0 sends nothing (the
    /// rows wait for another node, or for a restart with workers).
    pub workers: usize,
    /// Mails one worker sends at once (and SMTP connections it may hold), default 8.
    pub concurrency: usize,
    /// Rows one worker claims per pass, default 32.
    pub batch: i64,
    /// `NOTIFY_LEASE_SECS`, default 120: how long a claimed row belongs to its worker. A
    /// worker that dies mid-send leaves it; another takes it up once this has passed.
    pub lease: Duration,
    /// `NOTIFY_MAX_ATTEMPTS`, default 8: sends tried before a row ends `failed`.
    pub max_attempts: i32,
    /// `NOTIFY_RETRY_BASE_SECS`, default 30: the first retry's delay, doubled at each
    /// attempt (with jitter) up to `retry_max`.
    pub retry_base: Duration,
    /// The longest delay between two attempts, one hour.
    pub retry_max: Duration,
    /// `OUTBID_QUIET_SECS`, default 120: at most one outbid mail per bidder and item within
    /// this window; what happens meanwhile waits and goes out as one mail, latest price.
    pub outbid_quiet: Duration,
    /// How long an idle worker sleeps before looking again, one second.
    pub poll: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            workers: 2,
            concurrency: 8,
            batch: 32,
            lease: Duration::from_secs(120),
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            outbid_quiet: Duration::from_secs(120),
            poll: Duration::from_secs(1),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/auuction?sslmode=disable`:
    /// the default database is on this box, where TLS protects nothing and costs CPU on
    /// every statement (about 15% of the server's and of Postgres's at 2,000 bids/s).
    /// A URL without `sslmode` uses TLS when the server offers it.
    pub database_url: String,
    /// `BIND`, default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `BASE_URL`, default `http://<BIND>`: links in emails, the WebSocket Origin check,
    /// and whether cookies are Secure and HSTS is sent (when it is https).
    pub base_url: Url,
    /// `SECRET_KEY`: signs session cookies. Generated and kept in `var/secret_key` when unset.
    pub secret_key: String,
    /// `SMTP_URL`, e.g. `smtps://user:pass@smtp.example.org:465`. When unset, every email is
    /// written as an `.eml` file into `MAIL_DIR` and logged.
    pub smtp_url: Option<String>,
    /// `MAIL_FROM`, default `auuction <auction@localhost>`.
    pub mail_from: String,
    /// `MAIL_DIR`, default `var/mail/`.
    pub mail_dir: PathBuf,
    /// `MEDIA_DIR`, default `var/media/`.
    pub media_dir: PathBuf,
    /// `STATIC_DIR`, default `static/` beside `templates/` (found from the crate when unset).
    pub static_dir: PathBuf,
    /// `TEMPLATE_DIR`, default `templates/`.
    pub template_dir: PathBuf,
    /// `LOG_FORMAT`: `text` (default) or `json`.
    pub log_format: LogFormat,
    /// `TRUST_PROXY`: take the client address from `X-Forwarded-For` (behind Caddy). Default false.
    pub trust_proxy: bool,
    /// `ENGINE_SHARDS`: bid engine shards (one task each), default the number of cores.
    pub engine_shards: usize,
    /// `RATE_LIMIT_AUTH_PER_IP`, `RATE_LIMIT_AUTH_PER_ACCOUNT`, `RATE_LIMIT_WRITE_PER_IP`,
    /// `RATE_LIMIT_WRITE_PER_ACCOUNT`: requests per minute.
    pub rate_limits: RateLimitConfig,
    /// `WS_MAX_SOCKETS_PER_ADDRESS`, default 1000: WebSockets one client address may hold
    /// open at once. A parish hall's phones often share one Wi-Fi address (several tabs
    /// each), so the default is generous; it bounds what one address can make the server
    /// hold, not what one person needs.
    pub ws_max_sockets_per_address: usize,
    /// `AUCTION_TIME_ZONE`, an IANA name, default `America/New_York`: every date on a page
    /// or in an email is written in it, and times typed into forms are read in it.
    pub time_zone: LocalTime,
    /// `NOTIFY_*`, `OUTBID_QUIET_SECS`: the notification outbox.
    pub notify: NotifyConfig,
    /// `SMS_API_URL`, `SMS_ACCOUNT_SID`, `SMS_AUTH_TOKEN`, `SMS_FROM`: text messages, off
    /// unless all four are set.
    pub sms: Option<SmsConfig>,
}

/// The folder that holds the repository's `templates/`, `static/` and `var/`: the current
/// directory when it has `templates/`, else the workspace root this binary was built from.
fn project_root() -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if cwd.join("templates").is_dir() {
        return cwd;
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if built_from.join("templates").is_dir() {
        return built_from;
    }
    cwd
}

fn default_shards() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// See [`Config::ws_max_sockets_per_address`].
pub const DEFAULT_WS_MAX_SOCKETS_PER_ADDRESS: usize = 1000;

fn parse_var<T: FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| anyhow::anyhow!("{name}={raw:?} is not valid: {e}")),
    }
}

impl Config {
    /// Reads the configuration from the process environment, after loading `.env` if present.
    pub fn from_env() -> anyhow::Result<Config> {
        let _ = dotenvy::dotenv();
        let root = project_root();
        let var_dir = root.join("var");
        let bind: SocketAddr = parse_var("BIND", SocketAddr::from(([127, 0, 0, 1], 8080)))?;
        let base_url = match var("BASE_URL") {
            Some(raw) => Url::parse(raw.trim()).with_context(|| format!("BASE_URL={raw:?}"))?,
            None => Url::parse(&format!("http://{bind}"))?,
        };
        if !matches!(base_url.scheme(), "http" | "https") {
            bail!("BASE_URL must be http or https");
        }
        let secret_key = match var("SECRET_KEY") {
            Some(key) => key,
            None => load_or_create_secret(&var_dir.join("secret_key"))?,
        };
        if secret_key.len() < 32 {
            bail!("SECRET_KEY must be at least 32 characters");
        }
        let log_format = match var("LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("LOG_FORMAT={other:?}: expected text or json"),
        };
        let defaults = RateLimitConfig::default();
        let notify_defaults = NotifyConfig::default();
        let secs = |name: &str, default: Duration| -> anyhow::Result<Duration> {
            parse_var(name, default.as_secs()).map(Duration::from_secs)
        };
        let notify = NotifyConfig {
            workers: parse_var("NOTIFY_WORKERS", notify_defaults.workers)?,
            lease: secs("NOTIFY_LEASE_SECS", notify_defaults.lease)?,
            max_attempts: parse_var("NOTIFY_MAX_ATTEMPTS", notify_defaults.max_attempts)?,
            retry_base: secs("NOTIFY_RETRY_BASE_SECS", notify_defaults.retry_base)?,
            outbid_quiet: secs("OUTBID_QUIET_SECS", notify_defaults.outbid_quiet)?,
            ..notify_defaults
        };
        let sms = match (
            var("SMS_API_URL"),
            var("SMS_ACCOUNT_SID"),
            var("SMS_AUTH_TOKEN"),
            var("SMS_FROM"),
        ) {
            (Some(api_url), Some(account), Some(token), Some(from)) => {
                Url::parse(api_url.trim()).with_context(|| format!("SMS_API_URL={api_url:?}"))?;
                Some(SmsConfig {
                    api_url: api_url.trim().to_string(),
                    account,
                    token,
                    from,
                })
            }
            (None, None, None, None) => None,
            _ => {
                bail!("SMS needs all of SMS_API_URL, SMS_ACCOUNT_SID, SMS_AUTH_TOKEN and SMS_FROM")
            }
        };
        if notify.max_attempts < 1 || notify.lease.is_zero() {
            bail!("NOTIFY_MAX_ATTEMPTS and NOTIFY_LEASE_SECS must be at least 1");
        }
        Ok(Config {
            database_url: var("DATABASE_URL").unwrap_or_else(|| {
                "postgres://postgres@127.0.0.1:5432/auuction?sslmode=disable".into()
            }),
            bind,
            base_url,
            secret_key,
            smtp_url: var("SMTP_URL"),
            mail_from: var("MAIL_FROM").unwrap_or_else(|| "auuction <auction@localhost>".into()),
            mail_dir: var("MAIL_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| var_dir.join("mail")),
            media_dir: var("MEDIA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| var_dir.join("media")),
            static_dir: var("STATIC_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("static")),
            template_dir: var("TEMPLATE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("templates")),
            log_format,
            trust_proxy: parse_var("TRUST_PROXY", false)?,
            engine_shards: parse_var("ENGINE_SHARDS", default_shards())?,
            rate_limits: RateLimitConfig {
                auth_per_ip: parse_var("RATE_LIMIT_AUTH_PER_IP", defaults.auth_per_ip)?,
                auth_per_account: parse_var(
                    "RATE_LIMIT_AUTH_PER_ACCOUNT",
                    defaults.auth_per_account,
                )?,
                write_per_ip: parse_var("RATE_LIMIT_WRITE_PER_IP", defaults.write_per_ip)?,
                write_per_account: parse_var(
                    "RATE_LIMIT_WRITE_PER_ACCOUNT",
                    defaults.write_per_account,
                )?,
            },
            ws_max_sockets_per_address: parse_var(
                "WS_MAX_SOCKETS_PER_ADDRESS",
                DEFAULT_WS_MAX_SOCKETS_PER_ADDRESS,
            )?,
            time_zone: match var("AUCTION_TIME_ZONE") {
                None => LocalTime::default(),
                Some(name) => LocalTime::parse(&name)
                    .map_err(|e| anyhow::anyhow!("AUCTION_TIME_ZONE: {e}"))?,
            },
            notify,
            sms,
        })
    }

    /// A configuration for tests and tools: everything local, mail into `dir/mail`.
    pub fn for_tests(database_url: &str, dir: &std::path::Path) -> Config {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        Config {
            database_url: database_url.to_string(),
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            base_url: Url::parse("http://127.0.0.1").expect("static URL"),
            secret_key: "test-secret-key-test-secret-key-test-secret-key".into(),
            smtp_url: None,
            mail_from: "auuction <auction@localhost>".into(),
            mail_dir: dir.join("mail"),
            media_dir: dir.join("media"),
            static_dir: root.join("static"),
            template_dir: root.join("templates"),
            log_format: LogFormat::Text,
            trust_proxy: false,
            engine_shards: 2,
            rate_limits: RateLimitConfig::default(),
            ws_max_sockets_per_address: DEFAULT_WS_MAX_SOCKETS_PER_ADDRESS,
            time_zone: LocalTime::default(),
            // No outbox workers: tests that look at waiting notifications must find them
            // waiting; the notification tests start workers of their own.
            notify: NotifyConfig {
                workers: 0,
                ..NotifyConfig::default()
            },
            sms: None,
        }
    }

    /// True when the public URL is https: cookies get `Secure` and responses get HSTS.
    pub fn is_https(&self) -> bool {
        self.base_url.scheme() == "https"
    }

    /// The public URL with a path appended, e.g. `url("/verify?token=x")`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}{}",
            self.base_url.as_str().trim_end_matches('/'),
            path_and_query
        )
    }
}

/// Development convenience: a random secret kept in `var/secret_key` so sessions survive
/// restarts. Production sets `SECRET_KEY` explicitly.
fn load_or_create_secret(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}
