//! The listening server, assembled from actix-web's own parts as its `HttpServer` does, with one
//! difference: each accepted stream is wrapped in a `HeadGuarded` before HTTP/1 sees it.

use std::fmt;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use actix_http::body::MessageBody;
use actix_http::{HttpService, Request, Response};
use actix_service::{map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{fn_service, AppConfig, Server, Service, ServiceFactory};
use actix_web::rt::net::TcpStream;

use super::head_guard::{self, HeadGuarded};
use crate::config::ClientTimeouts;
use crate::error::ApiError;

/// How the server listens and paces its clients.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    /// Worker threads, each with its own copy of the app.
    pub workers: usize,
    /// Pending connections the kernel holds.
    pub backlog: u32,
    /// Open connections per worker at most; past it, accepting pauses.
    pub max_connections: usize,
    /// Seconds a graceful stop waits for open connections.
    pub shutdown_timeout: u64,
    /// The bounds on a client's pace.
    pub client: ClientTimeouts,
}

/// Binds every address `host` resolves to (at least one must bind).
pub fn bind(host: &str, port: u16, backlog: u32) -> std::io::Result<Vec<TcpListener>> {
    let mut bound = Vec::new();
    let mut last_error = None;
    for addr in (host, port).to_socket_addrs()? {
        match listener(addr, backlog) {
            Ok(lst) => bound.push(lst),
            Err(e) => last_error = Some(e),
        }
    }
    if bound.is_empty() {
        return Err(last_error.unwrap_or_else(|| {
            std::io::Error::other(format!("{host}:{port} resolves to no address"))
        }));
    }
    Ok(bound)
}

fn listener(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// Serves the app `factory` builds (once per worker) on `listeners`; actix's own signal handling
/// is off (the binary stops the server itself, after flushing).
pub fn serve<F, I, S, B>(
    factory: F,
    listeners: Vec<TcpListener>,
    how: Listening,
) -> std::io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let mut builder = Server::build()
        .workers(how.workers.max(1))
        .backlog(how.backlog)
        .max_concurrent_connections(how.max_connections)
        .shutdown_timeout(how.shutdown_timeout)
        .disable_signals();
    let client = how.client;
    let refusal = head_guard::refusal(&ApiError::HeadTimeout(client.header).body().to_string());
    for lst in listeners {
        let addr = lst.local_addr()?;
        let factory = factory.clone();
        let refusal = refusal.clone();
        let shutdown = builder.graceful_shutdown_signal();
        builder = builder.listen(format!("llmgate-{addr}"), lst, move || {
            let shutdown = shutdown.clone();
            let refusal = refusal.clone();
            let app = factory()
                .into_factory()
                .map_err(|err| err.into().error_response());
            let http = HttpService::build()
                .graceful_shutdown_signal(move || {
                    let signal = shutdown.clone();
                    async move { signal.notified().await }
                })
                // Slow clients are bounded: a new connection's first head (actix), every later
                // head (`HeadGuarded`), an idle kept-alive connection, and the time a refused
                // client gets to hang up; a body's pace is bounded where it is read
                // (`routes::body`).
                .client_request_timeout(client.header)
                .keep_alive(client.keep_alive)
                .client_disconnect_timeout(client.disconnect)
                // A client that hangs up ends its request: the handler, and with it the upstream
                // call, is dropped instead of running on for nobody.
                .h1_allow_half_closed(false)
                .local_addr(addr)
                .h1(map_config(app, |_| AppConfig::default()));
            fn_service(move |io: TcpStream| {
                let refusal = refusal.clone();
                async move {
                    // Streamed chunks go out as they are written, not after a delayed ACK.
                    let _ = io.set_nodelay(true);
                    let peer = io.peer_addr().ok();
                    Ok((HeadGuarded::new(io, client.header, refusal), peer))
                }
            })
            .and_then(http)
        })?;
    }
    Ok(builder.run())
}
