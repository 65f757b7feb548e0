//! `boneage serve`: bone age over HTTP, for the reading room and for hospital IT.
//!
//! One binary, one command: a versioned REST API (`/v1`, described at
//! `/openapi.json`), Deeplasia's `POST /predict`, a web page at `/` with no build
//! step, health checks and Prometheus metrics, and an audit store (SQLite) with one
//! row per assessment request and no patient identifiers or pixels.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use boneage::ModelsDir;
//! use boneage_server::{Config, State, serve, shutdown_signal};
//!
//! let config = Config::new(ModelsDir::locate(None)?, "boneage.sqlite".into());
//! let listener = tokio::net::TcpListener::bind(config.addr).await?;
//! let state = State::new(config)?;
//! serve(state, listener, shutdown_signal()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Requests for a bone age pass a queue: `workers` are computed at once on blocking
//! threads, `queue` more may wait, and one more is answered 503 with Retry-After
//! before its body is read, so memory stays bounded by `(workers + queue) ×
//! body_limit` however many clients wait.
#![warn(missing_docs)]

pub mod error;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod store;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State as Shared};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::{ApiError, ErrorBody};
pub use state::{Config, State};

/// The service's routes and layers over `state`.
pub fn app(state: Arc<State>) -> Router {
    let limit = state.config.body_limit;
    let uploads = Router::new()
        .route(
            "/v1/assessments",
            post(routes::create_assessment).get(routes::list),
        )
        .route("/predict", post(routes::predict))
        .route_layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route("/", get(routes::page))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/v1/reference/{sex}", get(routes::reference))
        .route("/v1/assessments/{id}", get(routes::get_assessment))
        .route("/v1/assessments/{id}/overlay.png", get(routes::overlay))
        .route("/v1/assessments/{id}/dicom", get(routes::dicom))
        .merge(uploads)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::json(),
    )
        .into_response()
}

/// A handler that panicked: an opaque 500, the connection kept.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("a handler panicked").into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {}: see /openapi.json",
        req.method(),
        req.uri().path()
    ))
}

/// Counts every answer by route and status.
async fn count(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let response = next.run(req).await;
    state.metrics.request(&route, response.status().as_u16());
    response
}

/// Routes anyone on the network may read: the static page (it holds no data), the
/// health checks and the API's description.
fn is_public(path: &str) -> bool {
    matches!(path, "/" | "/healthz" | "/readyz" | "/openapi.json")
}

/// Bearer authentication on every other route, when a token is set.
async fn authenticate(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    let Some(token) = state.config.token.as_deref() else {
        return next.run(req).await;
    };
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs `Authorization: Bearer TOKEN` (the token given to `boneage serve --token`)",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            r
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Uploads: a declared length over the limit is answered 413 at once, and a full
/// queue 503 with Retry-After, both before the body is read.
async fn admit(Shared(state): Shared<Arc<State>>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let limit = state.config.body_limit;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the request declares {n} bytes; this server takes at most {limit} (--max-body)"
            ),
        )
        .into_response();
    }
    let Some(admission) = state.admit() else {
        state.metrics.busy();
        return ApiError::unavailable(
            "busy",
            format!(
                "the server is busy: {} assessments are running or waiting; try again shortly",
                state.capacity()
            ),
            2,
        )
        .into_response();
    };
    let response = next.run(req).await;
    drop(admission);
    response
}

/// Why the service stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The models could not be loaded.
    #[error("{0}")]
    Models(String),
    /// The listener failed.
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves until `shutdown` completes, then finishes the requests in flight. Loads
/// the models in the background unless they are already set (`/readyz` answers 503
/// until then); stops with an error when they cannot be loaded.
pub async fn serve(
    state: Arc<State>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if state.assessor().is_err() {
        let loading = state.clone();
        tokio::task::spawn_blocking(move || loading.load_models());
    }
    let failed = state.clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = failed.load_failed.notified() => {}
        }
    };
    tokio::pin!(stop);
    // hyper directly rather than `axum::serve`, for a header read timeout: a client
    // that sends its headers a byte at a time is cut off instead of holding a
    // connection for ever.
    let app = app(state.clone());
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.timeout.min(Duration::from_secs(30)));
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, then go on.
                        eprintln!("boneage serve: accepting a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            _ = &mut stop => break,
        }
    }
    drop(listener);
    // Finish the requests in flight (each bounded by the request timeout).
    let grace = state.config.timeout + Duration::from_secs(5);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!("boneage serve: connections still open after {grace:?}; stopping anyway");
    }
    match state.assessor() {
        Err(e) if !e.contains("loading") => Err(ServeError::Models(e)),
        _ => Ok(()),
    }
}

/// Completes on Ctrl-C or SIGTERM.
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
        _ = ctrl_c => {}
        _ = term => {}
    }
}
