//! `os.environ/NAME` references resolved on the raw YAML tree, through the `environment_variables` overlay.

use std::collections::HashMap;

use serde_yaml::Value;

use super::ConfigError;

const ENV_PREFIX: &str = "os.environ/";

/// The process environment seen through the config's `environment_variables` overlay.
///
/// The overlay is never written into the process environment, so no thread can race on it.
#[derive(Debug, Clone, Default)]
pub struct Env {
    overlay: HashMap<String, String>,
}

impl Env {
    /// An environment with `overlay` taking precedence over the process's own variables.
    pub fn with_overlay(overlay: HashMap<String, String>) -> Self {
        Self { overlay }
    }

    /// The value of `name`, from the overlay first, then the process.
    pub fn get(&self, name: &str) -> Option<String> {
        self.overlay
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .filter(|v| !v.is_empty())
    }

    /// Reads the `environment_variables` section into an overlay.
    pub fn from_section(section: Option<&Value>) -> Result<Self, ConfigError> {
        let mut overlay = HashMap::new();
        let Some(section) = section else {
            return Ok(Self::default());
        };
        let Value::Mapping(map) = section else {
            if section.is_null() {
                return Ok(Self::default());
            }
            return Err(ConfigError::at(
                "environment_variables",
                "expected a mapping",
            ));
        };
        for (k, v) in map {
            let Some(name) = k.as_str() else {
                return Err(ConfigError::at(
                    "environment_variables",
                    "keys must be strings",
                ));
            };
            let path = format!("environment_variables.{name}");
            let value = match v {
                Value::String(s) => match s.strip_prefix(ENV_PREFIX) {
                    Some(var) => std::env::var(var).map_err(|_| missing(&path, var))?,
                    None => s.clone(),
                },
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                _ => return Err(ConfigError::at(path, "expected a string")),
            };
            overlay.insert(name.to_owned(), value);
        }
        Ok(Self { overlay })
    }

    /// Replaces every `os.environ/NAME` string in `tree` by the variable's value.
    pub fn resolve_tree(&self, tree: &mut Value) -> Result<(), ConfigError> {
        let mut path = String::new();
        self.resolve_at(tree, &mut path)
    }

    fn resolve_at(&self, node: &mut Value, path: &mut String) -> Result<(), ConfigError> {
        match node {
            Value::String(s) => {
                if let Some(var) = s.strip_prefix(ENV_PREFIX) {
                    let var = var.trim().to_owned();
                    *s = self.get(&var).ok_or_else(|| missing(path, &var))?;
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    self.resolve_at(item, path)?;
                    path.truncate(len);
                }
            }
            Value::Mapping(map) => {
                for (k, v) in map.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    match k {
                        Value::String(k) => path.push_str(k),
                        other => path.push_str(&serde_yaml::to_string(other).unwrap_or_default()),
                    }
                    self.resolve_at(v, path)?;
                    path.truncate(len);
                }
            }
            Value::Tagged(t) => self.resolve_at(&mut t.value, path)?,
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
        Ok(())
    }
}

fn missing(path: &str, var: &str) -> ConfigError {
    ConfigError::at(path, format!("environment variable {var} is not set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_through_the_overlay_anywhere_in_the_tree() {
        let env = Env::with_overlay(HashMap::from([("LLMGATE_T_KEY".into(), "sk-x".into())]));
        let mut tree: Value =
            serde_yaml::from_str("a:\n  - b: os.environ/LLMGATE_T_KEY\n    c: 3\n").unwrap();
        env.resolve_tree(&mut tree).unwrap();
        assert_eq!(tree["a"][0]["b"].as_str(), Some("sk-x"));
    }

    #[test]
    fn a_missing_variable_names_the_yaml_path() {
        let env = Env::default();
        let mut tree: Value = serde_yaml::from_str(
            "model_list:\n  - litellm_params:\n      api_key: os.environ/LLMGATE_SURELY_UNSET\n",
        )
        .unwrap();
        let err = env.resolve_tree(&mut tree).unwrap_err().to_string();
        assert_eq!(
            err,
            "model_list[0].litellm_params.api_key: environment variable LLMGATE_SURELY_UNSET is not set"
        );
    }
}
