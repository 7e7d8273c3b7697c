//! Speech: the upstream's audio streamed through to the client as it arrives, the deployment's
//! lease held until it ends and the call charged then.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_rt::time::{sleep, Sleep};
use bytes::Bytes;
use futures_util::Stream;

use crate::actors::{Charge, Durable, Lease};
use crate::providers::client::UpstreamBody;
use crate::providers::{ProviderError, ProviderKind, Usage};

/// Relays a binary upstream body; the call is charged once the body has ended well, and the
/// response ends once that charge is durable.
pub struct BinaryRelay {
    upstream: UpstreamBody,
    provider: ProviderKind,
    deadline: Pin<Box<Sleep>>,
    deadline_after: Duration,
    lease: Option<Lease>,
    charge: Option<Charge>,
    usage: Usage,
    cost: f64,
    done_after: Option<Durable>,
    ended: bool,
}

impl BinaryRelay {
    /// A relay of `upstream` that must end within `deadline`; on success it charges `cost` with
    /// `usage` (known from the request: speech is priced by its input).
    pub fn new(
        upstream: UpstreamBody,
        provider: ProviderKind,
        deadline: Duration,
        lease: Lease,
        charge: Option<Charge>,
        (usage, cost): (Usage, f64),
    ) -> Self {
        Self {
            upstream,
            provider,
            deadline: Box::pin(sleep(deadline)),
            deadline_after: deadline,
            lease: Some(lease),
            charge,
            usage,
            cost,
            done_after: None,
            ended: false,
        }
    }

    fn fail(&mut self, err: &ProviderError) -> actix_web::Error {
        if let Some(mut lease) = self.lease.take() {
            lease.fail(err);
        }
        if let Some(mut charge) = self.charge.take() {
            charge.failed(|| crate::callbacks::CallError {
                status: err.status,
                kind: err.error_type().to_owned(),
                message: err.message.clone(),
            });
        }
        self.ended = true;
        // An error ends the response short: the client sees the audio cut, not a complete file.
        actix_web::error::ErrorBadGateway(err.message.clone())
    }

    fn finish(&mut self) {
        if let Some(mut lease) = self.lease.take() {
            if let Some(c) = self.charge.as_mut() {
                c.upstream_took(lease.elapsed());
            }
            lease.succeed(Some(self.usage));
        }
        self.done_after = self.charge.take().map(|c| c.succeed(self.usage, self.cost));
        self.ended = true;
    }
}

impl Drop for BinaryRelay {
    /// A client that leaves mid-stream is still charged: the upstream read the whole input.
    fn drop(&mut self) {
        if let Some(charge) = self.charge.take() {
            charge.cancelled(self.usage, self.cost);
        }
    }
}

impl Stream for BinaryRelay {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                if let Some(durable) = this.done_after.as_mut() {
                    if Pin::new(durable).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    this.done_after = None;
                }
                return Poll::Ready(None);
            }
            if this.deadline.as_mut().poll(cx).is_ready() {
                let err = ProviderError::timeout(this.provider, this.deadline_after);
                return Poll::Ready(Some(Err(this.fail(&err))));
            }
            match this.upstream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if bytes.is_empty() {
                        continue;
                    }
                    if let Some(lease) = this.lease.as_mut() {
                        lease.first_token();
                    }
                    return Poll::Ready(Some(Ok(bytes)));
                }
                Poll::Ready(Some(Err(e))) => {
                    let err = ProviderError::connection(
                        this.provider,
                        format!("audio stream interrupted: {e}"),
                    );
                    return Poll::Ready(Some(Err(this.fail(&err))));
                }
                Poll::Ready(None) => this.finish(),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
