//! The HTTP server: actors started, one awc client per worker, the route table mounted.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{web, App, HttpServer};

use crate::config::Settings;
use crate::routes;
use crate::state::AppState;

/// A started gateway.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The shared state (its actors can be inspected).
    pub state: web::Data<AppState>,
    /// The server future; await it to serve until stopped.
    pub server: actix_web::dev::Server,
}

/// One awc client per worker: awc clients are not `Send`, and each keeps its own pool.
fn upstream_client() -> awc::Client {
    let connector = awc::Connector::new()
        .limit(1024)
        .conn_keep_alive(Duration::from_secs(30))
        .timeout(Duration::from_secs(10));
    awc::Client::builder()
        .connector(connector)
        // Timeouts are set per attempt from the config; the client's own 5 s default would cut
        // long generations short.
        .disable_timeout()
        .finish()
}

/// Binds the server (its first worker starts the actors); call inside an actix system.
pub fn start(
    settings: Settings,
    host: &str,
    port: u16,
    workers: usize,
) -> std::io::Result<Running> {
    let state = web::Data::new(AppState::new(settings));
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        // The first worker to get here hosts the actors (see `AppState::actors`).
        app_state.actors();
        App::new()
            .app_data(app_state.clone())
            .app_data(web::Data::new(upstream_client()))
            .wrap(actix_web::middleware::from_fn(
                routes::access_log::access_log,
            ))
            .configure(routes::configure)
    })
    .workers(workers.max(1))
    .tcp_nodelay(true)
    .backlog(2048)
    .max_connection_rate(4096)
    .shutdown_timeout(5)
    .bind((host, port))?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other("no address bound"))?;
    Ok(Running {
        addr,
        state,
        server: server.run(),
    })
}
