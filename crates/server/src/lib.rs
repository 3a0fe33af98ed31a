//! The Infusafe server: the pump link, live alarms and escalation to the care team, accounts and access
//! control, the JSON API, the live streams and the screens, in layers with one direction of dependency:
//! `http` (axum only) and `mllp` (IHE PCD over TCP) → `services` (the I/O shell) → `domain` (the rules, sans-IO), `store` (all SQL) and
//! `journal` (the adapter to the record). `config`, `error` and `ids` are leaves every layer may use; this file
//! and `demo` compose them. See ARCHITECTURE.md and docs/server.md.
//!
//! Entry points: [`build_app`] (state + router, for tests and the binary), [`start`] (bind and serve in the
//! background, returning the real address), [`shutdown_signal`].

pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod ids;
pub mod journal;
pub mod mllp;
pub mod services;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use config::ServerConfig;
pub use domain::Role;
pub use error::AppError;
pub use http::extract::WebUser;
pub use services::AppState;
pub use services::access::PatientAccess;
pub use services::auth::{CurrentUser, csrf_token};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Db(#[from] store::DbError),
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
    let db = store::Db::open(&config.database_url).await?;
    let record = record::Store::open(record::Config::new(config.database_url.clone()))
        .await
        .map_err(StartError::Record)?;
    let instance = store::cluster::register_instance(&db).await?;
    let journal = journal::Journal::new(
        Arc::new(record),
        instance,
        db.backend == store::Backend::Postgres,
    );
    let telemetry = services::telemetry::TelemetryWriter::start(db.clone(), journal.clone());
    let webhooks = services::webhook::Webhooks::start(db.clone(), journal.clone(), config.clone());
    let board = services::alarms::LiveBoard::new(services::alarms::settings(&config));
    let pcd = services::pcd::Pcd::start(db.clone(), journal.clone(), &config);
    let state = AppState {
        config: Arc::new(config),
        db,
        journal,
        hub: services::hub::Hub::default(),
        board,
        plans: services::plans::PlanCache::default(),
        limiter: services::auth::LoginLimiter::default(),
        webhooks,
        telemetry,
        practice: services::practice::Practice::default(),
        pcd,
        self_url: Arc::default(),
    };
    services::plans::load_all(&state).await?;
    let positions = services::follow::positions(&state).await?;
    services::restore::restore(&state).await?;
    services::follow::restore_contacts(&state).await?;
    if let Some(positions) = positions {
        tokio::spawn(services::follow::run(state.clone(), positions));
    }
    tokio::spawn(services::ticker::run(state.clone()));
    Ok((http::router(state.clone()), state))
}

/// A server running in the background (tests, the demo).
pub struct Running {
    pub addr: SocketAddr,
    /// Where the IHE PCD (MLLP) listener listens, when `pcd_bind` is set.
    pub pcd_addr: Option<SocketAddr>,
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
        let served = self.task.await.map_err(std::io::Error::other)?;
        // What the grouped writer still holds is written before the process goes.
        self.state.telemetry.flush().await;
        served
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
    let pcd_addr = match state.config.pcd_bind {
        None => None,
        Some(pcd_bind) => {
            let pcd_listener =
                TcpListener::bind(pcd_bind)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: pcd_bind,
                        source,
                    })?;
            let pcd_addr = pcd_listener
                .local_addr()
                .map_err(|source| StartError::Bind {
                    addr: pcd_bind,
                    source,
                })?;
            tokio::spawn(mllp::serve(pcd_listener, state.clone(), rx.clone()));
            Some(pcd_addr)
        }
    };
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
        pcd_addr,
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
