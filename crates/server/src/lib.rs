//! The Infusafe server: the pump link, live alarms and escalation to the care team, accounts and access
//! control, the JSON API and the live streams; the HTML screens plug in through `web::routes()`.
//!
//! Entry points: [`build_app`] (state + router, for tests and the binary), [`start`] (bind and serve in the
//! background, returning the real address), [`run`] (serve until Ctrl-C / SIGTERM). See docs/server.md.

pub mod access;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod escalation;
pub mod hub;
pub mod journal;
pub mod link;
pub mod live;
pub mod openapi;
pub mod plan;
pub mod practice;
pub mod simpump;
pub mod store;
pub mod web;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use access::PatientAccess;
pub use auth::{CurrentUser, Role, WebUser, csrf_token};
pub use config::ServerConfig;
pub use error::AppError;

/// Everything a handler needs; cheap to clone (all shared handles).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<ServerConfig>,
    pub db: db::Db,
    pub journal: journal::Journal,
    pub hub: hub::Hub,
    pub board: live::Board,
    pub limiter: auth::LoginLimiter,
    pub webhooks: webhook::Webhooks,
    /// Running practice pumps.
    pub practice: practice::Practice,
    /// `http://ADDR` of this server once it listens (the practice pump talks to it over the link).
    pub self_url: Arc<std::sync::OnceLock<String>>,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error("cannot listen on {addr}: {source}; is another program using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the infusion record: {0}")]
    Record(record::RecordError),
    #[error("cannot load patients: {0}")]
    Load(#[from] AppError),
}

/// Open the database (migrating it), build the state and the router. Starts the background tasks
/// (webhook worker, watchdog and escalation ticker), which stop when the runtime stops.
pub async fn build_app(config: ServerConfig) -> Result<(Router, AppState), StartError> {
    config.validate()?;
    let db = db::Db::open(&config.database_url).await?;
    let record = record::Store::open(record::Config::new(config.database_url.clone()))
        .await
        .map_err(StartError::Record)?;
    let journal = journal::Journal::new(Arc::new(record));
    let webhooks = webhook::Webhooks::start(db.clone(), journal.clone(), config.clone());
    let state = AppState {
        config: Arc::new(config),
        db,
        journal,
        hub: hub::Hub::default(),
        board: live::Board::default(),
        limiter: auth::LoginLimiter::default(),
        webhooks,
        practice: practice::Practice::default(),
        self_url: Arc::default(),
    };
    for (patient_id, clinic_id) in store::all_patients(&state).await? {
        live::register(&state, &patient_id, &clinic_id);
    }
    plan::load_time_zones(&state).await?;
    live::restore(&state).await?;
    let ticker_state = state.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(ticker_state.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            live::tick(&ticker_state).await;
        }
    });
    Ok((router(state.clone()), state))
}

/// The API, pump link and live streams merged with the screens, behind the CSRF guard, the body limits and
/// the HTML error pages.
pub fn router(state: AppState) -> Router {
    let link_limit = state.config.link_body_limit_bytes;
    let body_limit = state.config.body_limit_bytes;
    let link = api::link_routes().layer(DefaultBodyLimit::max(link_limit));
    let rest = api::routes()
        .merge(web::routes())
        .layer(DefaultBodyLimit::max(body_limit));
    Router::new()
        .merge(link)
        .merge(rest)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::csrf_guard,
        ))
        .layer(axum::middleware::from_fn(error::render_html_errors))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    use axum::http::{HeaderValue, header};
    let h = response.headers_mut();
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    response
}

/// A server running in the background (tests, the demo).
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), std::io::Error>>,
}

impl Running {
    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop accepting, finish in-flight requests, return.
    pub async fn stop(self) -> Result<(), std::io::Error> {
        self.state.hub.close();
        let _ = self.shutdown.send(true);
        self.task.await.map_err(std::io::Error::other)?
    }
}

/// Build and serve in the background; returns once the port is bound.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    let bind = config.bind;
    let (app, state) = build_app(config).await?;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr: bind, source })?;
    let _ = state.self_url.set(format!("http://{addr}"));
    let (shutdown, mut rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.wait_for(|v| *v).await;
        })
        .await
    });
    Ok(Running {
        addr,
        state,
        shutdown,
        task,
    })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
