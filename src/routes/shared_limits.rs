//! The one Redis round trip of a request on several instances: its key's limits (on its first
//! attempt) and its deployment's rpm and tpm, checked and counted together.

use std::time::Instant;

use crate::actors::{Charge, KeyLimits, Lease};
use crate::config::Deployment;
use crate::keys::{Admission, Counting, Rejection};
use crate::shared::{Checks, Remaining, Verdict};
use crate::state::AppState;

/// Where a new request's key limits are counted: in Redis while it answers, else here.
pub fn counting(state: &AppState) -> Counting {
    match &state.shared {
        Some(s) if s.redis.is_up() => Counting::Shared,
        _ => Counting::Local,
    }
}

/// Notes on a new request's charge that its key's limits are left to Redis.
pub fn mark_pending(state: &AppState, admission: Option<&Admission>, charge: &mut Charge) {
    if let (Some(shared), Some(a)) = (&state.shared, admission) {
        if !a.counted_here {
            charge.set_key_limits(KeyLimits::SharedPending(shared.clone()));
        }
    }
}

/// What the check decided for this attempt.
pub enum Shared {
    /// Go on (admitted, nothing to check, or Redis unreachable: local state only).
    Go {
        /// The key's requests and tokens left, when Redis counted them.
        remaining: Option<Remaining>,
    },
    /// The key may not make the request.
    KeyRefused(Rejection),
    /// The deployment is full across instances: try another.
    DeploymentFull(Instant),
}

/// Checks the attempt on `deployment` (holding `lease`) against the limits held in Redis.
pub async fn check(
    state: &AppState,
    deployment: &Deployment,
    reserve: u64,
    admission: Option<&Admission>,
    group_name: &str,
    charge: &mut Option<Charge>,
    lease: &mut Lease,
) -> Shared {
    let go = Shared::Go { remaining: None };
    let Some(shared) = state.shared.as_ref().filter(|s| s.redis.is_up()) else {
        return go;
    };
    let ns = shared.ns();
    let mut checks = Checks::default();
    let key_pending = charge
        .as_ref()
        .is_some_and(|c| matches!(c.key_limits(), KeyLimits::SharedPending(_)));
    if let (true, Some(a)) = (key_pending, admission) {
        let slot_ms = shared.slot_lifetime.as_millis() as u64;
        checks.key(&ns, &a.record.row.token, group_name, a, slot_ms);
    }
    let hard = state.settings.routing.hard_limits();
    if hard && (deployment.rpm.is_some() || deployment.tpm.is_some()) {
        checks.deployment(&ns, &deployment.id, deployment.rpm, deployment.tpm, reserve);
    }
    if checks.is_empty() {
        if key_pending {
            // Nothing to hold the key to in Redis: it is admitted as it is.
            if let Some(c) = charge.as_mut() {
                c.set_key_limits(KeyLimits::Nowhere);
            }
        }
        return go;
    }
    let slot = shared.slot_id();
    match shared.admit(checks, slot.clone()).await {
        Ok(Verdict::Admitted {
            key,
            deployment,
            remaining,
        }) => {
            lease.shared(shared.clone(), deployment);
            if key_pending {
                if let Some(c) = charge.as_mut() {
                    c.set_key_limits(KeyLimits::Shared {
                        shared: shared.clone(),
                        ticket: key,
                        slot,
                    });
                }
                return Shared::Go {
                    remaining: Some(remaining),
                };
            }
            go
        }
        Ok(Verdict::KeyRefused(why)) => {
            lease.withdraw();
            Shared::KeyRefused(why)
        }
        Ok(Verdict::DeploymentFull { retry_after }) => {
            lease.withdraw();
            Shared::DeploymentFull(Instant::now() + retry_after)
        }
        // Redis did not answer: this request goes on (the next ones are counted here).
        Err(_) => {
            if key_pending {
                if let Some(c) = charge.as_mut() {
                    c.set_key_limits(KeyLimits::Nowhere);
                }
            }
            go
        }
    }
}
