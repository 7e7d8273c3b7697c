//! `Lease`: one reserved slot on a deployment, reported back exactly once, even if dropped.

use std::time::{Duration, Instant};

use actix::Addr;

use super::deployment::{DeploymentActor, Report};
use crate::providers::{ProviderError, Usage};
use crate::routing::{Failure, Outcome, Reservation};

/// A reserved slot; dropping it without a verdict releases the slot (the client went away).
pub struct Lease {
    /// The deployment's index.
    pub index: usize,
    /// When the attempt started.
    pub started: Instant,
    held: Reservation,
    first_token: Option<Duration>,
    addr: Addr<DeploymentActor>,
    outcome: Option<Outcome>,
}

impl Lease {
    /// A lease on the deployment at `addr`, holding `held`.
    pub fn new(index: usize, addr: Addr<DeploymentActor>, held: Reservation) -> Self {
        Self {
            index,
            started: Instant::now(),
            held,
            first_token: None,
            addr,
            outcome: None,
        }
    }

    /// Notes that a stream's first chunk arrived now (once).
    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
    }

    /// Records success with the call's usage; the report goes when the lease drops.
    pub fn succeed(&mut self, usage: Option<Usage>) {
        let usage = usage.unwrap_or_default();
        self.outcome = Some(Outcome::Success {
            tokens: usage.total_tokens,
            completion_tokens: usage.completion_tokens,
            latency: self.started.elapsed(),
            first_token: self.first_token,
        });
    }

    /// Records a failure; the report goes when the lease drops.
    pub fn fail(&mut self, err: &ProviderError) {
        self.outcome = Some(Outcome::Failure {
            failure: Failure {
                class: err.failure_class(),
                error: err.class(),
            },
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
        self.addr.do_send(Report {
            held: self.held,
            outcome,
        });
    }
}
