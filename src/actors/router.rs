//! `RouterActor`: picks a group's deployment from the snapshots the deployments publish.

use std::time::Instant;

use actix::{Actor, Context, Handler, Message};

use crate::routing::{choose, DeploymentSnapshot, NoCapacity};

/// Holds every deployment's latest snapshot and each group's members.
pub struct RouterActor {
    groups: Vec<Vec<usize>>,
    weights: Vec<f64>,
    snapshots: Vec<DeploymentSnapshot>,
}

impl RouterActor {
    /// A router over `groups` (member indices), with each deployment's shuffle weight.
    pub fn new(groups: Vec<Vec<usize>>, weights: Vec<f64>) -> Self {
        let snapshots = vec![DeploymentSnapshot::default(); weights.len()];
        Self {
            groups,
            weights,
            snapshots,
        }
    }
}

impl Actor for RouterActor {
    type Context = Context<Self>;
}

/// Asks for a deployment of `group`, skipping those in `exclude`.
#[derive(Message)]
#[rtype(result = "Result<usize, NoCapacity>")]
pub struct Pick {
    /// The group's index.
    pub group: usize,
    /// Deployments already tried or refused.
    pub exclude: Vec<usize>,
}

impl Handler<Pick> for RouterActor {
    type Result = Result<usize, NoCapacity>;

    fn handle(&mut self, msg: Pick, _: &mut Context<Self>) -> Self::Result {
        let members = self.groups.get(msg.group).map_or(&[][..], Vec::as_slice);
        choose(
            members,
            &self.weights,
            &self.snapshots,
            &msg.exclude,
            Instant::now(),
            fastrand::f64(),
        )
    }
}

/// A deployment's new state.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    /// Which deployment.
    pub index: usize,
    /// Its state now.
    pub snapshot: DeploymentSnapshot,
}

impl Handler<Publish> for RouterActor {
    type Result = ();

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) {
        if let Some(slot) = self.snapshots.get_mut(msg.index) {
            *slot = msg.snapshot;
        }
    }
}
