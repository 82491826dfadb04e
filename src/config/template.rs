//! `${ENV_VAR}` templates in job files and the `Secret` type that keeps resolved credentials
//! out of logs, errors and `Debug` output.

use serde::Deserialize;

/// How templates look up environment variables; tests pass their own.
/// `Sync` so a run holding it stays `Send` (the scheduler runs jobs on the worker threads).
pub type EnvLookup<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// Looks variables up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A job-file string that may contain `${VAR}` references, resolved when the job is built.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(transparent)]
pub struct Template(String);

impl Template {
    /// A template from literal text.
    pub fn new(text: impl Into<String>) -> Self {
        Template(text.into())
    }

    /// The unresolved text, with `${VAR}` references as written (safe to print).
    pub fn raw(&self) -> &str {
        &self.0
    }

    /// Names of the variables this template references, in order; `Err` on a malformed
    /// reference such as an unclosed `${`.
    pub fn variables(&self) -> Result<Vec<&str>, String> {
        let mut names = Vec::new();
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{}`", self.0))?;
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a valid environment variable reference"
                ));
            }
            names.push(name);
            rest = &after[end + 1..];
        }
        Ok(names)
    }

    /// Replace every `${VAR}`; `Err(name)` names the first variable that is not set.
    pub fn resolve(&self, env: EnvLookup<'_>) -> Result<String, String> {
        let mut out = String::with_capacity(self.0.len());
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(rest.to_string());
            };
            let name = &after[..end];
            out.push_str(&env(name).ok_or_else(|| name.to_string())?);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A resolved credential. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a resolved credential.
    pub fn new(value: String) -> Self {
        Secret(value)
    }

    /// The credential itself, for building a request header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "http://127.0.0.1:9".to_string())
    }

    #[test]
    fn resolves_references_and_names_missing_ones() {
        let t = Template::new("${HOST}/hubspot");
        assert_eq!(t.resolve(&env).unwrap(), "http://127.0.0.1:9/hubspot");
        assert_eq!(t.variables().unwrap(), vec!["HOST"]);
        let missing = Template::new("${HOST}/${TOKEN}");
        assert_eq!(missing.resolve(&env).unwrap_err(), "TOKEN");
        assert!(Template::new("${OOPS").variables().is_err());
        assert!(Template::new("${BAD-NAME}").variables().is_err());
        assert_eq!(Template::new("plain").resolve(&env).unwrap(), "plain");
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }
}
