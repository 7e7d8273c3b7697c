//! Startup errors in the configuration, each naming where in the YAML it is.

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file's path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML.
    #[error("config file is not valid YAML: {0}")]
    Yaml(String),
    /// A value is missing, of the wrong type or out of range.
    #[error("{path}: {message}")]
    At {
        /// Where, as `model_list[2].litellm_params.rpm`.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// An error at a YAML path.
    pub fn at(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self::At {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Converts serde's located error into one naming the YAML path.
    pub fn from_serde(err: serde_path_to_error::Error<serde_yaml::Error>, prefix: &str) -> Self {
        let inner = err.path().to_string();
        let path = match (prefix.is_empty(), inner == ".") {
            (true, _) => inner,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{inner}"),
        };
        let message = err.into_inner().to_string();
        // serde_yaml appends " at line N column M" for its own errors; the path already locates it.
        let message = match message.find(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        Self::At { path, message }
    }
}
