//! Chaos: a group with a dead deployment and a flapping one keeps answering every request, and
//! the dead one is kept out of rotation by its cooldowns.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Behavior, Gateway, MockUpstream};

/// A port that accepts connections and drops them at once, noting when each came.
struct DeadEndpoint {
    base: String,
    hits: Arc<Mutex<Vec<Instant>>>,
}

impl DeadEndpoint {
    async fn start() -> Self {
        let listener = actix_rt::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let seen = hits.clone();
        actix_rt::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                seen.lock().unwrap().push(Instant::now());
                drop(socket);
            }
        });
        Self {
            base: format!("http://127.0.0.1:{port}/v1"),
            hits,
        }
    }

    fn hits(&self) -> Vec<Instant> {
        self.hits.lock().unwrap().clone()
    }
}

/// Switches `mock` between answering and failing with a 500 every `period`.
fn flap(mock: &MockUpstream, period: Duration) -> actix_rt::task::JoinHandle<()> {
    let shared = mock.clone();
    actix_rt::spawn(async move {
        let mut failing = false;
        loop {
            actix_rt::time::sleep(period).await;
            failing = !failing;
            shared.set(if failing {
                Behavior::Fail(500, r#"{"error":{"message":"flap"}}"#.into())
            } else {
                Behavior::default()
            });
        }
    })
}

const ALLOWED_FAILS: usize = 2;
const CONCURRENCY: usize = 8;
const REQUESTS: usize = 2_000;

#[actix_rt::test]
async fn a_dead_and_a_flapping_deployment_never_fail_a_request() {
    let dead = DeadEndpoint::start().await;
    let flapping = MockUpstream::start().await;
    let healthy = MockUpstream::start().await;
    let cooldown = Duration::from_millis(500);
    let yaml = format!(
        "model_list:\n\
         - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{}'}}}}\n\
         - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{}'}}}}\n\
         - {{model_name: g, litellm_params: {{model: openai/m, api_base: '{}'}}}}\n\
         router_settings: {{allowed_fails: {ALLOWED_FAILS}, cooldown_time: {}, num_retries: 2}}\n",
        dead.base,
        flapping.v1(),
        healthy.v1(),
        cooldown.as_secs_f64()
    );
    let gw = Gateway::start(&yaml).await;
    let flapper = flap(&flapping, Duration::from_millis(150));

    let started = Instant::now();
    let body = json!({"model": "g", "messages": [{"role": "user", "content": "hi"}]});
    let clients = (0..CONCURRENCY).map(|_| {
        let (gw, body) = (&gw, &body);
        async move {
            let mut failures = Vec::new();
            for _ in 0..REQUESTS / CONCURRENCY {
                let r = gw.post("/v1/chat/completions", None, body).await;
                if r.status != 200 {
                    failures.push((r.status, r.text));
                }
            }
            failures
        }
    });
    let failures: Vec<_> = futures_util::future::join_all(clients)
        .await
        .into_iter()
        .flatten()
        .collect();
    let elapsed = started.elapsed();
    flapper.abort();

    assert!(
        failures.is_empty(),
        "{} of {REQUESTS} failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let hits = dead.hits();
    assert!(!hits.is_empty(), "the dead deployment was never tried");
    // Within any stretch shorter than a cooldown, the dead deployment sees at most the failures
    // it is allowed, the one that cools it, and what was already in flight to it.
    let limit = ALLOWED_FAILS + CONCURRENCY;
    let span = cooldown.mul_f64(0.9);
    for (i, &at) in hits.iter().enumerate() {
        let within = hits[i..].iter().take_while(|&&t| t < at + span).count();
        assert!(
            within <= limit,
            "{within} calls to the dead deployment within {span:?} (limit {limit}); {} in all over {elapsed:?}",
            hits.len()
        );
    }
    // And across the run it is cooled most of the time: bursts, not a share of the traffic.
    let periods = (elapsed.as_secs_f64() / cooldown.as_secs_f64()).ceil() as usize + 1;
    assert!(
        hits.len() <= periods * limit,
        "{} calls to the dead deployment over {elapsed:?}",
        hits.len()
    );
    let served = flapping.call_count() + healthy.call_count();
    assert!(served >= REQUESTS, "served {served}");
}
