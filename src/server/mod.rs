//! The HTTP server: actors started, one awc client per worker, the route table mounted.

mod head_guard;
mod listen;

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{web, App};

use crate::actors::ProxyBudget;
use crate::config::Settings;
use crate::db::DbHandle;

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

/// Opens the database, starts the spend writer, and binds the server (the worker that serves
/// the first request starts the router and deployment actors); call inside an actix system.
pub async fn start(
    settings: Settings,
    host: &str,
    port: u16,
    workers: usize,
) -> std::io::Result<Running> {
    let db = DbHandle::connect(settings.database.clone(), settings.database_pool_size)
        .await
        .map_err(|e| {
            std::io::Error::other(format!(
                "cannot open the database ({}): {e}",
                settings.database.describe()
            ))
        })?;
    // Spend a crash left in the journal is in the database before anything reads it.
    let journal = crate::journal::recover(&settings, &db, port).await?;
    let (stored_spend, mut stored_reset) = db
        .run(|db| async move { db.proxy_spend().await })
        .await
        .map_err(|e| std::io::Error::other(format!("cannot read the proxy spend: {e}")))?;
    if let (None, Some(first)) = (
        stored_reset,
        settings
            .budget_duration
            .and_then(|d| d.after(chrono::Utc::now())),
    ) {
        // Every instance on this database counts the budget period the first one started.
        let at = first.naive_utc();
        stored_reset = db
            .run(move |db| async move { db.claim_proxy_reset(at).await })
            .await
            .map_err(|e| {
                std::io::Error::other(format!("cannot store the proxy budget's reset: {e}"))
            })?;
    }
    let proxy_budget = ProxyBudget {
        max_budget: settings.max_budget,
        spend: stored_spend,
        duration: settings.budget_duration,
        reset_at: stored_reset.map(crate::keys::record::utc).or_else(|| {
            settings
                .budget_duration
                .and_then(|d| d.after(chrono::Utc::now()))
        }),
    };
    let state = web::Data::new(AppState::new(settings, db, proxy_budget, journal));
    if state.models.enabled() {
        if !state.models.can_seal() {
            return Err(std::io::Error::other(
                "store_model_in_db needs LITELLM_SALT_KEY or a master key: stored provider credentials are encrypted with it",
            ));
        }
        // The stored models serve from the first request on.
        state
            .models
            .reload(&state)
            .await
            .map_err(|e| std::io::Error::other(format!("cannot read the stored models: {e}")))?;
        actix_rt::spawn(crate::modeldb::ModelStore::keep_in_sync(state.clone()));
    }
    if let Some(shared) = state.shared.clone() {
        let hearer = state.clone();
        actix_rt::spawn(shared.listen(move |event| hearer.on_event(event)));
    }
    if state.settings.health.background {
        crate::health::start_background(state.clone(), upstream_client);
    }
    let app_state = state.clone();
    let client = state.settings.client;
    let listeners = listen::bind(host, port, 2048)?;
    let addr = listeners
        .first()
        .and_then(|l| l.local_addr().ok())
        .ok_or_else(|| std::io::Error::other("no address bound"))?;
    let app = move || {
        let filter_ips = app_state.settings.security.ip_filter.is_some();
        App::new()
            .app_data(app_state.clone())
            .app_data(web::Data::new(upstream_client()))
            // Outermost last: CORS answers preflights, the access log sees every other request,
            // refusals by address included.
            .wrap(actix_web::middleware::Condition::new(
                filter_ips,
                actix_web::middleware::from_fn(crate::security::ip::ip_filter),
            ))
            .wrap(actix_web::middleware::from_fn(
                routes::access_log::access_log,
            ))
            .wrap(crate::security::cors::cors(
                &app_state.settings.security.cors,
            ))
            .configure(routes::configure)
    };
    let server = listen::serve(
        app,
        listeners,
        listen::Listening {
            workers,
            backlog: 2048,
            max_connections: 4096,
            shutdown_timeout: 30,
            client,
        },
    )?;
    Ok(Running {
        addr,
        state,
        server,
    })
}

/// Writes every buffered spend record, retrying for a while if the database is down.
pub async fn flush_spend(state: &AppState) {
    use crate::actors::Flush;
    for attempt in 0..20u32 {
        match state.spend().send(Flush).await {
            Ok(Ok(())) => {
                log::info!("spend flushed");
                return;
            }
            Ok(Err(e)) => log::warn!("spend flush failed ({e}); retrying"),
            Err(_) => {
                log::error!("the spend writer is gone; buffered spend is lost");
                return;
            }
        }
        actix_rt::time::sleep(Duration::from_millis(250 * u64::from(attempt + 1))).await;
    }
    log::error!("spend could not be written before exit");
}

/// Empties the spend journal's queue and removes the file when the database holds all of it
/// (after the last flush of a clean stop).
pub async fn close_journal(state: &AppState) {
    if let Some(journal) = &state.spend_journal {
        journal.close().await;
    }
}

/// Sends what the logging callbacks still hold, waiting at most `CALLBACK_FLUSH_WAIT`.
pub async fn flush_callbacks(state: &AppState) {
    if !state.callbacks.is_on() {
        return;
    }
    match actix_rt::time::timeout(CALLBACK_FLUSH_WAIT, state.callbacks.flush()).await {
        Ok(()) => log::info!("logging callbacks flushed"),
        Err(_) => log::warn!(
            "logging callbacks: {} events still unsent at exit",
            state.callbacks.queued()
        ),
    }
}

/// How long a graceful stop waits for the logging callbacks' receivers.
const CALLBACK_FLUSH_WAIT: Duration = Duration::from_secs(10);

/// Logs how long the router's picks took over the gateway's life (measured in the process).
async fn log_pick_times(state: &AppState) {
    let Some(actors) = state.started_actors() else {
        return;
    };
    if let Ok(t) = actors.router.send(crate::actors::PickStats).await {
        log::info!(
            "router: {} picks, mean {:.2} µs, p99 {:.2} µs",
            t.count,
            t.mean.as_secs_f64() * 1e6,
            t.p99.as_secs_f64() * 1e6
        );
    }
}

/// On SIGTERM or SIGINT: stops accepting, lets in-flight requests finish (at most 30 s),
/// writes the buffered spend, sends the logging callbacks' events, then stops the server.
pub fn stop_on_signal(server: actix_web::dev::ServerHandle, state: web::Data<AppState>) {
    actix_rt::spawn(async move {
        let interrupt = Box::pin(actix_rt::signal::ctrl_c());
        #[cfg(unix)]
        {
            use actix_rt::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    let terminate = Box::pin(async move { term.recv().await });
                    futures_util::future::select(interrupt, terminate).await;
                }
                Err(_) => {
                    let _ = interrupt.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = interrupt.await;
        }
        log::info!("shutting down: finishing in-flight requests, then writing buffered spend");
        server.pause().await;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while state
            .live_requests
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
            && std::time::Instant::now() < deadline
        {
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
        log_pick_times(&state).await;
        flush_spend(&state).await;
        flush_callbacks(&state).await;
        server.stop(true).await;
    });
}
