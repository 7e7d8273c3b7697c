//! A TCP proxy the test controls, to cut a database connection without touching the server.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// Forwards 127.0.0.1:`port` to `target` until cut.
pub struct TcpProxy {
    /// The port it listens on.
    pub port: u16,
    open: Arc<AtomicBool>,
    cut: broadcast::Sender<()>,
    accepted: Arc<AtomicUsize>,
}

impl TcpProxy {
    /// Starts forwarding to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let (cut, _) = broadcast::channel::<()>(4);
        let accepted = Arc::new(AtomicUsize::new(0));
        let (target, is_open, cut_tx) = (target.to_owned(), open.clone(), cut.clone());
        let counted = accepted.clone();
        actix_rt::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                if !is_open.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let mut stop = cut_tx.subscribe();
                actix_rt::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = stop.recv() => {}
                    }
                });
            }
        });
        Self {
            port,
            open,
            cut,
            accepted,
        }
    }

    /// Connections tried so far (refused ones while cut included).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        let _ = self.cut.send(());
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
