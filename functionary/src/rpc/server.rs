//! The HTTP side of the RPC server: bind, cookie file, basic auth before any body is read, body size limit,
//! graceful shutdown on the `stop` watch, cookie removal afterwards.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use super::cookie::{cookie_path, CookieCredentials};
use super::jsonrpc::{handle_body, HttpReply};
use super::methods::Methods;
use super::{RpcContext, RpcError};

/// Largest accepted request body (1 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 1 << 20;

/// Delay before answering a request with bad credentials (slows guessing, as bitcoind).
const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(250);

struct ServerState {
    cookie: CookieCredentials,
    methods: Arc<Methods>,
}

/// A running RPC server.
pub struct RpcServer {
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl RpcServer {
    /// The address the server listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has shut down (after the shutdown watch became `true`) and the cookie is deleted.
    pub async fn wait(self) {
        if let Err(e) = self.task.await {
            tracing::error!(target: "rpc", error = %e, "rpc server task failed");
        }
    }
}

/// Binds `bind`, writes the cookie file `<data_dir>/.cookie` (mode 0600, atomically) and serves JSON-RPC until
/// `ctx.shutdown` becomes `true`; then deletes the cookie file.
pub async fn start(
    bind: SocketAddr,
    data_dir: &Path,
    ctx: RpcContext,
) -> Result<RpcServer, RpcError> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|source| RpcError::Bind { addr: bind, source })?;
    let local_addr = listener.local_addr().map_err(RpcError::LocalAddr)?;

    let cookie = CookieCredentials::generate();
    let cookie_file = cookie_path(data_dir);
    cookie
        .write_to(&cookie_file)
        .map_err(|source| RpcError::Cookie {
            path: cookie_file.clone(),
            source,
        })?;

    let mut shutdown = ctx.shutdown.subscribe();
    let state = Arc::new(ServerState {
        cookie,
        methods: Arc::new(Methods::new(ctx)),
    });
    let app = Router::new()
        .route("/", post(handle_request))
        .with_state(state);

    tracing::info!(target: "rpc", addr = %local_addr, cookie = %cookie_file.display(), "rpc server listening");
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // Err means the sender is gone: nobody can ask us to stop any more, so stop now.
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(target: "rpc", error = %e, "rpc server stopped with an error");
        }
        remove_cookie(&cookie_file);
        tracing::info!(target: "rpc", addr = %local_addr, "rpc server stopped");
    });
    Ok(RpcServer { local_addr, task })
}

fn remove_cookie(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(target: "rpc", path = %path.display(), error = %e, "cannot delete rpc cookie")
        }
    }
}

async fn handle_request(State(state): State<Arc<ServerState>>, request: Request) -> Response {
    let authorized = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|value| state.cookie.authorizes(value.as_bytes()));
    if !authorized {
        tracing::warn!(target: "rpc", "rpc request with missing or wrong credentials");
        tokio::time::sleep(AUTH_FAILURE_DELAY).await;
        return unauthorized();
    }

    let declared_length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_length.is_some_and(|len| len > MAX_REQUEST_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match axum::body::to_bytes(request.into_body(), MAX_REQUEST_BODY_BYTES).await {
        Ok(body) => body,
        Err(e) => {
            tracing::debug!(target: "rpc", error = %e, "cannot read rpc request body");
            return too_large();
        }
    };

    let methods = Arc::clone(&state.methods);
    let reply = tokio::task::spawn_blocking(move || handle_body(methods.as_ref(), &body)).await;
    match reply {
        Ok(reply) => http_response(reply),
        Err(e) => {
            tracing::error!(target: "rpc", error = %e, "rpc handler panicked");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn http_response(reply: HttpReply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.body {
        None => status.into_response(),
        Some(body) => {
            let mut text = body.to_string();
            text.push('\n');
            let mut response = (status, text).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

fn unauthorized() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"jsonrpc\""),
    );
    response
}

fn too_large() -> Response {
    (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
}
