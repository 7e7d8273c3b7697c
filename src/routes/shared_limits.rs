//! The one Redis round trip of a request on several instances: its key's limits and the
//! proxy-wide budget (on its first attempt) and its deployment's rpm and tpm, checked and
//! counted together.

use std::time::Instant;

use crate::actors::{Charge, Governed, Lease, ProxyBudget, SharedLimits};
use crate::config::Deployment;
use crate::keys::record::Headroom;
use crate::keys::{Admission, Counting, Rejection};
use crate::shared::{Asked, Checks, Credit, Remaining, Verdict};
use crate::state::AppState;

/// Where a new request's key limits are counted: in Redis while it answers, else here.
pub fn counting(state: &AppState) -> Counting {
    match &state.shared {
        Some(s) if s.redis.is_up() => Counting::Shared,
        _ => Counting::Local,
    }
}

/// Notes on a new request's charge where its key (and its entities) were counted, and whether
/// Redis has limits to hold it to at its first attempt (the key's and the entities', when not
/// counted here, or the proxy's budget).
pub fn mark_pending(
    state: &AppState,
    admission: Option<&Admission>,
    governed: Option<&Governed>,
    proxy: Option<ProxyBudget>,
    charge: &mut Charge,
) {
    let counted_here =
        admission.is_none_or(|a| a.counted_here) && governed.is_none_or(|g| g.counted_here);
    charge.set_counted_here(counted_here);
    if let Some(shared) = &state.shared {
        if !counted_here || (proxy.is_some() && shared.redis.is_up()) {
            charge.set_shared(SharedLimits::Pending(shared.clone()));
        }
    }
}

/// Holds a request answered from the response cache to its key's and entities' limits in
/// Redis (there is no deployment to check); the refusal, if it may not be made now.
pub async fn check_cached(
    state: &AppState,
    admission: Option<&Admission>,
    governed: Option<&Governed>,
    group_name: &str,
    charge: &mut Charge,
) -> Option<Rejection> {
    let shared = state.shared.as_ref()?;
    if !shared.redis.is_up() {
        return None;
    }
    let mut checks = Checks::default();
    let slot_ms = shared.slot_lifetime.as_millis() as u64;
    if let Some(a) = admission.filter(|a| !a.counted_here) {
        checks.key(shared.ns(), &a.record.row.token, group_name, a, slot_ms);
    }
    for held in governed
        .filter(|g| !g.counted_here)
        .map_or(&[][..], |g| &g.held[..])
    {
        checks.entity(shared.ns(), held, slot_ms);
    }
    if checks.is_empty() {
        return None;
    }
    let slot = shared.slot_id();
    match shared.admit(checks, slot.clone()).await {
        Ok(Verdict::Admitted { key, .. }) => {
            charge.set_shared(SharedLimits::Held {
                shared: shared.clone(),
                ticket: key,
                slot,
            });
            None
        }
        Ok(Verdict::KeyRefused(why)) => Some(why),
        Ok(Verdict::DeploymentFull { .. }) | Err(_) => None,
    }
}

/// What one request needs checked, besides its deployment.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The key's admission.
    pub admission: Option<&'a Admission>,
    /// The admission of its users, teams, members, end users and tags.
    pub governed: Option<&'a Governed>,
    /// The proxy-wide budget, when one is set.
    pub proxy: Option<ProxyBudget>,
    /// The model group's name.
    pub group_name: &'a str,
}

/// What the check decided for this attempt.
pub enum Shared {
    /// Go on (admitted, nothing to check, or Redis unreachable: local state only).
    Go {
        /// The key's requests and tokens left, when Redis counted them.
        remaining: Option<Remaining>,
    },
    /// The key (or the proxy's budget) does not allow the request.
    Refused(Rejection),
    /// The deployment is full across instances: try another.
    DeploymentFull(Instant),
}

/// A check begun: decided already, or Redis's verdict on its way. It lives for one attempt,
/// on the stack or in the attempt's gate, so the larger variant is not boxed (that would cost
/// an allocation per request).
#[allow(clippy::large_enum_variant)]
pub enum Begun {
    /// Nothing to wait for.
    Now(Shared),
    /// Asked of Redis.
    Asked(Asking),
}

/// An admission asked of Redis, to be applied to the request's charge and lease once in.
pub struct Asking {
    asked: Asked,
    shared: crate::shared::Shared,
    slot: String,
    /// Whether the key's checks (or the proxy's budget) are among the checks.
    pending: bool,
    /// The key's note of whether it is far from its limits.
    headroom: Option<Headroom>,
    /// Whether the request may go upstream before the verdict is in.
    pub early: bool,
}

/// Begins checking the attempt on `deployment` (reserving `reserve` tokens) against the limits
/// held in Redis, without waiting: `Begun::finish` applies the verdict. A key that Redis last
/// found far from every limit (and no deployment limit to check) may have its request sent
/// upstream meanwhile (`Asking::early`); its answer still waits for the verdict, and a refusal
/// drops the upstream call, so no limit is exceeded. That takes Redis's round trip off the
/// request's path, which on a busy worker is as long as the rest of the request.
pub fn begin(
    state: &AppState,
    deployment: &Deployment,
    reserve: u64,
    request: Request<'_>,
    charge: &mut Option<Charge>,
) -> Begun {
    let go = Begun::Now(Shared::Go { remaining: None });
    let Some(shared) = state.shared.as_ref().filter(|s| s.redis.is_up()) else {
        return go;
    };
    let ns = shared.ns();
    let pending = charge
        .as_ref()
        .is_some_and(|c| matches!(c.shared(), SharedLimits::Pending(_)));
    let hard = state.settings.routing.hard_limits();
    let deployment_checked = hard && (deployment.rpm.is_some() || deployment.tpm.is_some());
    if pending && !deployment_checked && request.proxy.is_none_or(|p| p.max_budget.is_none()) {
        if let Some(credit) = leased(shared, &request) {
            settle_charge(
                charge,
                SharedLimits::Held {
                    shared: shared.clone(),
                    ticket: credit.ticket,
                    slot: credit.slot,
                },
            );
            return Begun::Now(Shared::Go {
                remaining: Some(credit.remaining),
            });
        }
    }
    let mut checks = Checks::default();
    let mut headroom = None;
    if pending {
        let slot_ms = shared.slot_lifetime.as_millis() as u64;
        if let Some(a) = request.admission.filter(|a| !a.counted_here) {
            checks.key(ns, &a.record.row.token, request.group_name, a, slot_ms);
            headroom = Some(a.record.headroom.clone());
        }
        for held in request
            .governed
            .filter(|g| !g.counted_here)
            .map_or(&[][..], |g| &g.held[..])
        {
            checks.entity(ns, held, slot_ms);
        }
        if let Some(p) = request.proxy {
            if let Some(budget) = p.max_budget {
                checks.proxy(ns, budget, p.spend, p.reset_at);
            }
        }
    }
    if deployment_checked {
        checks.deployment(ns, &deployment.id, deployment.rpm, deployment.tpm, reserve);
    }
    if checks.is_empty() {
        if pending {
            // Nothing to hold the request to in Redis: it is admitted as it is.
            settle_charge(charge, SharedLimits::None);
        }
        return go;
    }
    let early =
        pending && !checks.has_deployment() && headroom.as_ref().is_some_and(Headroom::ample);
    let slot = shared.slot_id();
    match shared.ask(checks, slot.clone()) {
        Ok(asked) => Begun::Asked(Asking {
            asked,
            shared: shared.clone(),
            slot,
            pending,
            headroom,
            early,
        }),
        // Redis cannot take it: this request goes on (the next ones are counted here).
        Err(_) => {
            if pending {
                settle_charge(charge, SharedLimits::None);
            }
            go
        }
    }
}

/// A request admitted on its key's lease (see `shared::lease`), when the key holds only rate
/// and parallel limits, is far from them and has a leased request left in this second; a lease
/// running low is renewed (with the key's `checks`) on the way.
fn leased(shared: &crate::shared::Shared, request: &Request<'_>) -> Option<Credit> {
    if request.governed.is_some_and(|g| !g.counted_here) {
        // Its users', teams' or tags' limits are checked request by request.
        return None;
    }
    let a = request.admission.filter(|a| !a.counted_here)?;
    let most = Checks::lease_size(a, request.group_name);
    if most < 2 {
        return None;
    }
    let headroom = &a.record.headroom;
    let (credit, lease) = headroom.take(shared, most);
    if let Some(copies) = lease {
        let mut checks = Checks::default();
        let slot_ms = shared.slot_lifetime.as_millis() as u64;
        checks.key(
            shared.ns(),
            &a.record.row.token,
            request.group_name,
            a,
            slot_ms,
        );
        headroom.lease(shared, checks, copies);
    }
    credit
}

fn settle_charge(charge: &mut Option<Charge>, to: SharedLimits) {
    if let Some(c) = charge.as_mut() {
        c.set_shared(to);
    }
}

impl Begun {
    /// Whether the request may go upstream before the verdict is in.
    pub fn early(&self) -> bool {
        matches!(self, Begun::Asked(a) if a.early)
    }

    /// The verdict, applied to the request's `charge` and to the attempt's `lease`.
    pub async fn finish(self, charge: &mut Option<Charge>, lease: &mut Lease) -> Shared {
        let asking = match self {
            Begun::Now(decided) => return decided,
            Begun::Asked(asking) => asking,
        };
        let go = Shared::Go { remaining: None };
        let Asking {
            asked,
            shared,
            slot,
            pending,
            headroom,
            ..
        } = asking;
        match asked.verdict().await {
            Ok(Verdict::Admitted {
                key,
                deployment,
                remaining,
                ample,
                ..
            }) => {
                if let Some(h) = &headroom {
                    h.set(ample);
                }
                lease.shared(shared.clone(), deployment);
                if !pending {
                    return go;
                }
                let ticket = key;
                settle_charge(
                    charge,
                    SharedLimits::Held {
                        shared,
                        ticket,
                        slot,
                    },
                );
                Shared::Go {
                    remaining: Some(remaining),
                }
            }
            Ok(Verdict::KeyRefused(why)) => {
                if let Some(h) = &headroom {
                    h.set(false);
                }
                lease.withdraw();
                Shared::Refused(why)
            }
            Ok(Verdict::DeploymentFull { retry_after }) => {
                lease.withdraw();
                Shared::DeploymentFull(Instant::now() + retry_after)
            }
            // Redis did not answer: this request goes on (the next ones are counted here).
            Err(_) => {
                if pending {
                    settle_charge(charge, SharedLimits::None);
                }
                go
            }
        }
    }
}
