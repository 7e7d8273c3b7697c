//! llmgate: an OpenAI-compatible LLM gateway, a drop-in replacement for the LiteLLM proxy.

pub mod actors;
pub mod auth;
pub mod cache;
pub mod callbacks;
pub mod catalog;
pub mod cli;
mod client_mode;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod governance;
pub mod health;
pub mod journal;
pub mod keys;
pub mod metrics;
pub mod modeldb;
pub mod pricing;
pub mod providers;
pub mod responses;
pub mod routes;
pub mod routing;
pub mod security;
pub mod server;
pub mod shared;
pub mod state;
pub mod tokens;
pub mod topology;
pub mod unit_pricing;
