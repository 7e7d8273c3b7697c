//! The integration suite: the gateway against a real mock upstream on a random port.

mod support;

mod anthropic;
mod auth;
mod bedrock;
mod cache;
mod callbacks;
mod chaos;
mod chat;
mod cli;
mod cohere;
mod config;
mod crash;
mod docker;
mod errors;
mod fallbacks;
mod gemini;
mod health;
mod huggingface;
mod instances;
mod journal;
mod keys;
mod messages;
mod metrics;
mod mock_response;
mod ollama;
mod providers;
mod routing;
mod shared_script;
mod shared_state;
mod spend;
mod strategies;
mod streaming;
mod ui;
mod ui_browser;
mod vertex;
