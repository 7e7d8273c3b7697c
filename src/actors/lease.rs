//! `Lease`: one reserved slot on a deployment, reported back exactly once, even if dropped.

use std::time::{Duration, Instant};

use actix::Addr;

use super::deployment::{DeploymentActor, Report};
use crate::providers::{ProviderError, Usage};
use crate::routing::Outcome;

/// A reserved slot; dropping it without a verdict releases the slot (the client went away).
pub struct Lease {
    /// The deployment's index.
    pub index: usize,
    /// When the attempt started.
    pub started: Instant,
    addr: Addr<DeploymentActor>,
    outcome: Option<Outcome>,
}

impl Lease {
    /// A lease on the deployment at `addr`.
    pub fn new(index: usize, addr: Addr<DeploymentActor>) -> Self {
        Self {
            index,
            started: Instant::now(),
            addr,
            outcome: None,
        }
    }

    /// Records success with the call's usage; the report goes when the lease drops.
    pub fn succeed(&mut self, usage: Option<Usage>) {
        self.outcome = Some(Outcome::Success {
            tokens: usage.map_or(0, |u| u.total_tokens),
            latency: self.started.elapsed(),
        });
    }

    /// Records a failure; the report goes when the lease drops.
    pub fn fail(&mut self, err: &ProviderError) {
        self.outcome = Some(Outcome::Failure {
            class: err.failure_class(),
            retry_after: err.retry_after,
        });
    }

    /// Time since the attempt started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Outcome::Released);
        self.addr.do_send(Report { outcome });
    }
}
