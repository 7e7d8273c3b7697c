//! `Lease`: one reserved slot on a deployment, reported back exactly once, even if dropped.

use std::time::{Duration, Instant};

use actix::Addr;

use super::deployment::{DeploymentActor, Report};
use crate::providers::{ProviderError, Usage};
use crate::routing::{Failure, Outcome, Reservation};
use crate::shared::{Shared, Ticket};

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
    /// The deployment's limits held across instances, settled with the outcome.
    shared: Option<(Shared, Ticket)>,
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
            shared: None,
        }
    }

    /// Notes that Redis counted this attempt against the deployment's shared rpm and tpm.
    pub fn shared(&mut self, shared: Shared, ticket: Ticket) {
        if !ticket.is_empty() {
            self.shared = Some((shared, ticket));
        }
    }

    /// The attempt will not run (a limit held across instances refused it): nothing counts.
    pub fn withdraw(&mut self) {
        self.outcome = Some(Outcome::Withdrawn);
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
        if let Some((shared, ticket)) = self.shared.take() {
            let tokens = match outcome {
                Outcome::Success { tokens, .. } => tokens,
                Outcome::Failure { .. } | Outcome::Withdrawn => 0,
                // What the call used is unknown: the reservation stands.
                Outcome::Released => self.held.tokens,
            };
            shared.settle(ticket, "", tokens, 0.0);
        }
        self.addr.do_send(Report {
            held: self.held,
            outcome,
        });
    }
}
