//! `DeploymentActor`: the authority on one deployment's in-flight requests, usage and cooldown.

use std::time::{Duration, Instant};

use actix::{Actor, Addr, AsyncContext, Context, Handler, Message, MessageResult};

use super::router::{Publish, RouterActor};
use crate::metrics::DeploymentMetrics;
use crate::routing::{
    CooldownPolicy, DeploymentSnapshot, DeploymentState, Enforce, Outcome, Refused, Reservation,
};
use crate::shared::events::Event;
use crate::shared::Shared;

/// Tracks one `model_list` entry and publishes each change to the router.
pub struct DeploymentActor {
    index: usize,
    group_has_others: bool,
    policy: CooldownPolicy,
    state: DeploymentState,
    router: Addr<RouterActor>,
    published: DeploymentSnapshot,
    publish_pending: bool,
    /// Where its cooldowns are told to the other instances, and its id there.
    shared: Option<(Shared, String)>,
    /// Its attempts, counted for `/metrics`.
    metrics: Option<DeploymentMetrics>,
}

impl DeploymentActor {
    /// An actor for deployment `index` enforcing `enforce`, reporting to `router`.
    pub fn new(
        index: usize,
        group_has_others: bool,
        policy: CooldownPolicy,
        enforce: Enforce,
        router: Addr<RouterActor>,
    ) -> Self {
        Self {
            index,
            group_has_others,
            policy,
            state: DeploymentState::new(enforce),
            router,
            published: DeploymentSnapshot::default(),
            publish_pending: false,
            shared: None,
            metrics: None,
        }
    }

    /// Counts its attempts in `metrics`.
    pub fn with_metrics(mut self, metrics: DeploymentMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Tells every other instance of this deployment's cooldowns (by its `id`).
    pub fn sharing_cooldowns(mut self, shared: Shared, id: String) -> Self {
        self.shared = Some((shared, id));
        self
    }

    /// Tells the router about a change: at once when the cooldown changed (routing depends on
    /// it), else at most every `PUBLISH_EVERY`, so a busy deployment does not send the router a
    /// message per request. The deployment's own state stays the authority for `Reserve`.
    fn publish(&mut self, now: Instant, ctx: &mut Context<Self>) {
        let snapshot = self.state.snapshot(now);
        if snapshot.cooling_until != self.published.cooling_until {
            self.send_snapshot(snapshot);
        } else if !self.publish_pending {
            self.publish_pending = true;
            ctx.run_later(PUBLISH_EVERY, |act, _| {
                act.publish_pending = false;
                let snapshot = act.state.snapshot(Instant::now());
                act.send_snapshot(snapshot);
            });
        }
    }

    fn send_snapshot(&mut self, snapshot: DeploymentSnapshot) {
        self.published = snapshot;
        self.router.do_send(Publish {
            index: self.index,
            snapshot,
        });
    }
}

/// How stale the router's view of a deployment's usage may get.
const PUBLISH_EVERY: Duration = Duration::from_millis(25);

impl Actor for DeploymentActor {
    type Context = Context<Self>;
}

/// Takes a slot for one request and reserves its estimated tokens, unless the deployment is
/// cooling down or at a limit.
#[derive(Message)]
#[rtype(result = "Result<Reservation, Refused>")]
pub struct Reserve {
    /// Tokens to reserve against `tpm`.
    pub tokens: u64,
}

impl Handler<Reserve> for DeploymentActor {
    type Result = Result<Reservation, Refused>;

    fn handle(&mut self, msg: Reserve, ctx: &mut Context<Self>) -> Self::Result {
        let now = Instant::now();
        let reserved = self.state.reserve(now, msg.tokens);
        if reserved.is_err() {
            // The router offered this deployment from a stale view: correct it at once.
            let snapshot = self.state.snapshot(now);
            self.send_snapshot(snapshot);
        } else {
            self.publish(now, ctx);
        }
        reserved
    }
}

/// Ends a request: releases its slot, reconciles its tokens and counts its outcome.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Report {
    /// What the request held.
    pub held: Reservation,
    /// How the attempt ended.
    pub outcome: Outcome,
}

impl Handler<Report> for DeploymentActor {
    type Result = ();

    fn handle(&mut self, msg: Report, ctx: &mut Context<Self>) {
        let now = Instant::now();
        if let Some(m) = &self.metrics {
            m.attempt(&msg.outcome);
        }
        let cooled = self.state.report(
            now,
            msg.held,
            msg.outcome,
            &self.policy,
            self.group_has_others,
        );
        if cooled {
            log::warn!(
                "deployment #{} is cooling down for {:?} after failures",
                self.index,
                self.policy.cooldown_time
            );
            let until = self.state.snapshot(now).cooling_until;
            if let (Some((shared, id)), Some(until)) = (&self.shared, until) {
                shared.publish(Event::Cooldown {
                    deployment: id.clone(),
                    millis: until.saturating_duration_since(now).as_millis() as u64,
                });
            }
        }
        self.publish(now, ctx);
    }
}

/// Another instance cooled this deployment down until `until`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CoolDown {
    /// When the cooldown ends.
    pub until: Instant,
}

impl Handler<CoolDown> for DeploymentActor {
    type Result = ();

    fn handle(&mut self, msg: CoolDown, ctx: &mut Context<Self>) {
        self.state.cool_until(msg.until);
        self.publish(Instant::now(), ctx);
    }
}

/// The deployment was changed at runtime (`/model/update`, or its group gained or lost
/// members): new limits, same counters.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure {
    /// What it enforces now.
    pub enforce: Enforce,
    /// Whether its group has other deployments now.
    pub group_has_others: bool,
    /// Its metrics under its new names, when those changed.
    pub metrics: Option<DeploymentMetrics>,
}

impl Handler<Reconfigure> for DeploymentActor {
    type Result = ();

    fn handle(&mut self, msg: Reconfigure, ctx: &mut Context<Self>) {
        self.state.reconfigure(msg.enforce);
        self.group_has_others = msg.group_has_others;
        if let Some(m) = msg.metrics {
            self.metrics = Some(m);
        }
        self.publish(Instant::now(), ctx);
    }
}

/// Reads the deployment's current state (tests and health pages).
#[derive(Message)]
#[rtype(result = "DeploymentSnapshot")]
pub struct Inspect;

impl Handler<Inspect> for DeploymentActor {
    type Result = MessageResult<Inspect>;

    fn handle(&mut self, _: Inspect, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.state.snapshot(Instant::now()))
    }
}
