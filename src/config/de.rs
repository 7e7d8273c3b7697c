//! Lenient scalar deserializers: numbers and booleans may arrive as strings, as LiteLLM allows.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// An optional non-negative whole number.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => scalar_text(&v)
            .and_then(|t| t.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a whole number")),
    }
}

/// An optional non-negative whole number that fits in 32 bits.
pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match opt_u64(d)? {
        None => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom("number too large")),
    }
}

/// An optional finite number.
pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        v => scalar_text(&v)
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|n| n.is_finite())
            .map(Some)
            .ok_or_else(|| D::Error::custom("expected a number")),
    }
}

/// An optional boolean (`true`, `"true"`, `"True"`, `"1"` ...).
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        v => match scalar_text(&v).map(|t| t.to_ascii_lowercase()).as_deref() {
            Some("true" | "1" | "yes" | "on") => Ok(Some(true)),
            Some("false" | "0" | "no" | "off") => Ok(Some(false)),
            _ => Err(D::Error::custom("expected a boolean")),
        },
    }
}

/// An optional string; numbers are taken as their text (`api_version: 2024-02-01` stays a string).
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        _ => Err(D::Error::custom("expected a string")),
    }
}
