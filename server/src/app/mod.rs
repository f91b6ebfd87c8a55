//! Application assembly: builds the shared state, the router with its layer stack, and
//! runs the server until its graceful stop. It defines nothing the rest of the crate uses
//! (the state is `crate::state`); only the binary, the command line and the tests reach in.

mod security;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{middleware, serve::ListenerExt, Router};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tower_sessions_sqlx_store::PostgresStore;

use crate::{
    clock::{Clock, SystemClock},
    config::Config,
    engine::{pg::PgStorage, Engine, EngineParts, EngineTasks},
    http,
    limits::RateLimits,
    live::{self, Hub},
    mail::Mailer,
    metrics::Metrics,
    notify, pages, scheduler,
    sms::{HttpSms, SmsProvider},
    state::AppState,
    templates::Templates,
};

/// Parts of the app a test may swap for its own. `None` builds the real one.
#[derive(Default)]
pub struct Parts {
    /// The clock everything reads "now" from (bids, the calendar, tokens).
    pub clock: Option<Arc<dyn Clock>>,
    /// Where emails go.
    pub mailer: Option<Mailer>,
    /// Where text messages go (default: the configured provider, if any).
    pub sms: Option<Arc<dyn SmsProvider>>,
}

/// How long background tasks (the scheduler, the shards, the journals committing what they
/// hold) get to finish once serving has stopped.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A built server, bound to its port but not yet serving.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    engine_tasks: EngineTasks,
}

impl Application {
    /// Connects to (and creates, and migrates) the database, then builds the app.
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let db = crate::store::connect_and_migrate(&config.database_url).await?;
        Application::build_with_pool(config, db).await
    }

    /// Builds the app on an existing pool (tests hand in a fresh database) and binds
    /// `config.bind`; port 0 picks a free port, see [`Application::port`].
    pub async fn build_with_pool(config: Config, db: PgPool) -> anyhow::Result<Application> {
        Application::build_with(config, db, Parts::default()).await
    }

    /// As [`Application::build_with_pool`], with some parts swapped (tests).
    pub async fn build_with(
        config: Config,
        db: PgPool,
        parts: Parts,
    ) -> anyhow::Result<Application> {
        let (state, hub, engine_tasks) = build_state(config, db, parts).await?;
        let listener =
            listen(state.config.bind).with_context(|| format!("binding {}", state.config.bind))?;
        let router = router(state.clone(), hub);
        Ok(Application {
            listener,
            router,
            state,
            engine_tasks,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` is cancelled (or SIGINT/SIGTERM when `handle_signals`), then
    /// lets in-flight requests finish and stops background tasks.
    pub async fn run(self, handle_signals: bool) -> anyhow::Result<()> {
        let state = self.state.clone();
        let mut background = scheduler::spawn(state.clone());
        background.extend(notify::spawn(state.clone()));
        let token = state.shutdown.clone();
        if handle_signals {
            let token = token.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                tracing::info!("shutdown requested");
                token.cancel();
            });
        }
        let service = self
            .router
            .into_make_service_with_connect_info::<SocketAddr>();
        // Bid acks and price frames are small writes that must leave at once: without
        // TCP_NODELAY, Nagle's algorithm holds them for the peer's delayed ACK (~40 ms).
        let listener = self.listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, service)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
            .context("serving")?;
        // The shards stop taking commands; each journal commits what it already has. One
        // deadline for them all: a stop must not take five seconds per stuck task.
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        for task in background.into_iter().chain(self.engine_tasks.0) {
            let _ = tokio::time::timeout_at(deadline, task).await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The listening socket, with a backlog for the connection storm of auction night (the
/// default of 128 drops SYNs when thousands of phones reconnect at once; the kernel caps
/// it at `net.core.somaxconn`).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn build_state(
    config: Config,
    db: PgPool,
    parts: Parts,
) -> anyhow::Result<(AppState, Arc<Hub>, EngineTasks)> {
    let config = Arc::new(config);
    std::fs::create_dir_all(&config.media_dir)
        .with_context(|| format!("creating MEDIA_DIR {}", config.media_dir.display()))?;
    let mailer = match parts.mailer {
        Some(mailer) => mailer,
        None => Mailer::new(
            config.smtp_url.as_deref(),
            config.mail_dir.clone(),
            &config.mail_from,
        )?,
    };
    let templates = Templates::load(&config.template_dir, config.time_zone)?;
    let sessions = PostgresStore::new(db.clone());
    let shutdown = CancellationToken::new();
    let clock: Arc<dyn Clock> = parts.clock.unwrap_or_else(|| Arc::new(SystemClock));
    let metrics = Arc::new(Metrics::new());
    // The hub belongs to the live edge (its router gets it below); the engine knows it
    // only as its publisher.
    let hub = Arc::new(Hub::new(
        metrics.live.clone(),
        metrics.bid_answer_seconds.clone(),
    ));
    let (engine, engine_tasks) = Engine::start(EngineParts {
        storage: PgStorage::new(db.clone()),
        publisher: hub.clone(),
        clock: clock.clone(),
        shards: config.engine_shards,
        metrics: metrics.journal.clone(),
        shutdown: shutdown.clone(),
    })
    .await?;
    let state = AppState {
        limits: Arc::new(RateLimits::new(&config.rate_limits)),
        db,
        mailer: Arc::new(mailer),
        sms: match parts.sms {
            Some(sms) => Some(sms),
            None => HttpSms::from_config(config.sms.as_ref())?,
        },
        templates: Arc::new(templates),
        sessions,
        known_sessions: Arc::default(),
        clock,
        metrics,
        engine,
        shutdown,
        config,
    };
    Ok((state, hub, engine_tasks))
}

/// The whole router: API, pages, operations and static files, with the layer stack. From
/// the outside in: panics become a 500, every request is counted (`http::ops::track`), then
/// the security layers (`security::apply_layers`), then the routes.
pub fn router(state: AppState, hub: Arc<Hub>) -> Router {
    let app = Router::new()
        .nest("/api", http::api_router())
        .merge(pages::router())
        .merge(http::ops::router())
        .merge(live::router(state.clone(), hub))
        .merge(http::static_files::router(&state.config))
        .fallback(pages::error::fallback)
        .method_not_allowed_fallback(pages::error::page_method_not_allowed);
    security::apply_layers(app, state.clone())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            http::ops::track,
        ))
        // Every log line of a request carries its id, and the response names it
        // (`x-request-id`), so a failure someone reports can be found in the logs. An id
        // sent by the proxy in front is kept.
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %request.uri().path(),
                    id
                )
            }),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        // A bug must cost one request a 500, never the connection or the process.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            http::error::panic_response,
        ))
        .with_state(state)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
