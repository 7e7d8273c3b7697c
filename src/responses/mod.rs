//! The OpenAI Responses API (`/v1/responses`): passed through to deployments whose provider
//! has it (OpenAI, Azure), served as chat (request, reply and stream translated) by every other.
//!
//! - [`request`]: the request checked, and translated into chat fields.
//! - [`reply`]: a chat completion as a Response object.
//! - [`events`]: a chat stream as the Responses event sequence.
//! - [`native`]: the call, reply and stream of a deployment that speaks the Responses API.
//! - [`ids`]: response ids that name the deployment which holds them.
//! - [`store`]: recent translated conversations, for `previous_response_id`.
//! - [`wire`]: which of the two ways one attempt takes.

pub mod events;
pub mod ids;
pub mod native;
pub mod reply;
pub mod request;
pub mod store;
pub mod wire;

pub use store::ConversationStore;
pub use wire::Wire;
