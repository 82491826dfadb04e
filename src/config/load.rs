//! Loading a job file: parse with spans, deserialize each part on its own so that every
//! mistake is reported (not just the first), then run the semantic checks. Pure: the
//! environment comes in as a lookup function and nothing touches the network.

use std::ops::Range;
use std::path::Path;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::{JobHeader, check_currency, check_name, cron_schedule};
use super::{EnvLookup, JobConfig, SOURCE_KINDS, SourceConfig, process_env};
use crate::error::{Error, Result};
use crate::sink::WarehouseUrl;

/// One problem in a job file, located by line, column and key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// Dotted key path such as `sources[1].page_size`; empty for the whole file.
    pub key_path: String,
    /// What is wrong and, where useful, what to do.
    pub message: String,
}

/// Read, parse and validate a job file against the process environment.
pub fn load_job(path: &Path) -> Result<JobConfig> {
    load_job_with(path, &process_env)
}

/// Read, parse and validate a job file against the given environment.
pub fn load_job_with(path: &Path, env: EnvLookup<'_>) -> Result<JobConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let shown = match std::env::current_dir() {
            Ok(cwd) if path.is_relative() => {
                format!("{} ({})", path.display(), cwd.join(path).display())
            }
            _ => path.display().to_string(),
        };
        Error::JobFileUnreadable {
            path: shown,
            problem: super::file_problem(&e),
        }
    })?;
    parse_job(path, &text, env)
        .map_err(|diags| Error::config(path, render_diagnostics(path, &diags)))
}

/// One line per diagnostic, in file order: `file:line:col: key: message`.
pub fn render_diagnostics(path: &Path, diags: &[Diagnostic]) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| (d.line, d.column));
    sorted
        .into_iter()
        .map(|d| {
            let key = if d.key_path.is_empty() {
                String::new()
            } else {
                format!("`{}`: ", d.key_path)
            };
            format!(
                "  {}:{}:{}: {key}{}",
                path.display(),
                d.line,
                d.column,
                d.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parse and validate job text; every problem found is returned at once.
pub fn parse_job(
    path: &Path,
    text: &str,
    env: EnvLookup<'_>,
) -> std::result::Result<JobConfig, Vec<Diagnostic>> {
    let mut diags = Diagnostics { text, list: vec![] };
    let mut root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            diags.push(span, "", e.message().to_string());
            return Err(diags.list);
        }
    };
    diags.check_env_references(root.get_ref(), "", env);

    let sources_value = root.get_mut().remove("sources");
    let root_value = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let header: Option<JobHeader> = diags.deserialize(&root_value, "");

    let mut sources = Vec::new();
    match sources_value {
        None => diags.push(
            0..0,
            "sources",
            "a job needs at least one [[sources]] entry".into(),
        ),
        Some(value) => match value.into_inner() {
            DeValue::Array(items) => {
                diags.check_duplicate_names(&items);
                for (index, item) in items.iter().enumerate() {
                    if let Some(source) = diags.source(index, item, env) {
                        sources.push(source);
                    }
                }
            }
            _ => diags.push(
                0..0,
                "sources",
                "must be an array of tables ([[sources]])".into(),
            ),
        },
    }

    let Some(header) = header else {
        return Err(diags.list);
    };
    let timezone = diags.header_checks(&header, env);
    if let Some(problem) = header
        .fx
        .rates_file
        .as_ref()
        .and_then(|t| t.resolve(env).ok())
        .and_then(|location| crate::metrics::fx::check_local_rates_file(path, &location))
    {
        let at = DeTable::parse(text)
            .ok()
            .and_then(|root| path_span(root.get_ref(), "fx.rates_file"))
            .unwrap_or(0..0);
        diags.push(at, "fx.rates_file", problem);
    }
    if !diags.list.is_empty() {
        return Err(diags.list);
    }
    Ok(JobConfig {
        path: path.to_path_buf(),
        name: header.name,
        schedule: header.schedule,
        timezone: timezone.unwrap_or(chrono_tz::UTC),
        warehouse: header.warehouse,
        reporting_currency: header.reporting_currency,
        hash_key: header.hash_key,
        batch_rows: header.batch_rows,
        raw_retention_days: header.raw_retention_days,
        lock_lease_secs: header.lock_lease_secs,
        shrink_warn_ratio: header.shrink_warn_ratio,
        sources,
        stages: header.stages,
        metrics: header.metrics,
        fx: header.fx,
    })
}

struct Diagnostics<'t> {
    text: &'t str,
    list: Vec<Diagnostic>,
}

impl Diagnostics<'_> {
    fn push(&mut self, span: Range<usize>, key_path: &str, message: String) {
        let (line, column) = line_column(self.text, span.start);
        self.list.push(Diagnostic {
            line,
            column,
            key_path: key_path.to_string(),
            message,
        });
    }

    /// Deserialize `value` as `T`; on each error record it, drop the offending key and try
    /// again, so one pass reports every unknown key and wrong type in the table.
    fn deserialize<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        base: &str,
    ) -> Option<T> {
        let mut working = value.clone();
        let mut removed: Vec<String> = Vec::new();
        let mut failed = false;
        for _ in 0..64 {
            let error = match T::deserialize(working.clone().into_deserializer()) {
                Ok(parsed) => return (!failed).then_some(parsed),
                Err(error) => error,
            };
            failed = true;
            let message = error.message().to_string();
            if let Some(field) = missing_field(&message)
                && removed.iter().any(|r| r == field)
            {
                return None;
            }
            let span = error.span().unwrap_or_else(|| working.span());
            match locate(&working, &span) {
                Some(found) => {
                    let path = join_path(base, &found.display);
                    self.push(found.key_span.clone(), &path, tidy_message(&message));
                    remove_key(&mut working, &found.steps);
                    if let Some(last) = found.last_key() {
                        removed.push(last.to_string());
                    }
                }
                None => {
                    self.push(span, base, tidy_message(&message));
                    return None;
                }
            }
        }
        None
    }

    fn source(
        &mut self,
        index: usize,
        item: &Spanned<DeValue<'_>>,
        env: EnvLookup<'_>,
    ) -> Option<SourceConfig> {
        let base = format!("sources[{index}]");
        let DeValue::Table(table) = item.get_ref() else {
            self.push(item.span(), &base, "must be a table".into());
            return None;
        };
        let Some(kind_value) = table.get("kind") else {
            self.push(
                item.span(),
                &base,
                format!("missing `kind`; one of {}", SOURCE_KINDS.join(", ")),
            );
            return None;
        };
        let kind = kind_value
            .get_ref()
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut rest = table.clone();
        rest.remove("kind");
        let rest = Spanned::new(item.span(), DeValue::Table(rest));
        let source = match kind.as_str() {
            "hubspot" => self.deserialize(&rest, &base).map(SourceConfig::Hubspot),
            "salesforce" => self.deserialize(&rest, &base).map(SourceConfig::Salesforce),
            "google_ads" => self.deserialize(&rest, &base).map(SourceConfig::GoogleAds),
            "typeform" => self.deserialize(&rest, &base).map(SourceConfig::Typeform),
            "surveymonkey" => self
                .deserialize(&rest, &base)
                .map(SourceConfig::SurveyMonkey),
            "meta_ads" => self.deserialize(&rest, &base).map(SourceConfig::MetaAds),
            "linkedin_ads" => self
                .deserialize(&rest, &base)
                .map(SourceConfig::LinkedinAds),
            "costs" => self.deserialize(&rest, &base).map(SourceConfig::Costs),
            "intent" => self.deserialize(&rest, &base).map(SourceConfig::Intent),
            other => {
                self.push(
                    kind_value.span(),
                    &format!("{base}.kind"),
                    format!(
                        "unknown source kind `{other}`; expected one of {}",
                        SOURCE_KINDS.join(", ")
                    ),
                );
                None
            }
        }?;
        let key_span = |key: &str| {
            table
                .get_key_value(key)
                .map(|(k, _)| k.span())
                .unwrap_or_else(|| item.span())
        };
        let mut problems = Vec::new();
        if let Err(e) = check_name(source.name()) {
            problems.push(("name", e));
        }
        // A costs or intent file may be a local path or an object-store URL, not only http(s).
        if !matches!(source, SourceConfig::Costs(_) | SourceConfig::Intent(_))
            && let Some(problem) = check_http_url(source.base_url(), env)
        {
            problems.push(("base_url", problem));
        }
        problems.extend(source.check());
        for (key, problem) in problems {
            self.push(key_span(key), &format!("{base}.{key}"), problem);
        }
        Some(source)
    }

    /// Source names must be unique: they name files and state. Checked on the raw tables so
    /// a source with other mistakes still takes part.
    fn check_duplicate_names(&mut self, items: &[Spanned<DeValue<'_>>]) {
        let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for (index, item) in items.iter().enumerate() {
            let Some((key, value)) = item
                .get_ref()
                .as_table()
                .and_then(|t| t.get_key_value("name"))
            else {
                continue;
            };
            let Some(name) = value.get_ref().as_str() else {
                continue;
            };
            if let Some(first) = seen.insert(name.to_string(), index) {
                self.push(
                    key.span(),
                    &format!("sources[{index}].name"),
                    format!("duplicate source name `{name}` (also sources[{first}]); names must be unique"),
                );
            }
        }
    }

    fn header_checks(&mut self, header: &JobHeader, env: EnvLookup<'_>) -> Option<chrono_tz::Tz> {
        let root = DeTable::parse(self.text).ok()?;
        let span = |key: &str| {
            root.get_ref()
                .get_key_value(key)
                .map(|(k, _)| k.span())
                .unwrap_or(0..0)
        };
        if let Err(e) = check_name(&header.name) {
            self.push(span("name"), "name", e);
        }
        if let Some(expr) = &header.schedule
            && let Err(e) = cron_schedule(expr)
        {
            self.push(span("schedule"), "schedule", e);
        }
        let timezone = match header.timezone.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                self.push(
                    span("timezone"),
                    "timezone",
                    format!(
                        "`{}` is not an IANA time zone like Europe/Berlin",
                        header.timezone
                    ),
                );
                None
            }
        };
        if let Err(e) = check_currency(&header.reporting_currency) {
            self.push(span("reporting_currency"), "reporting_currency", e);
        }
        if header.batch_rows == 0 || header.batch_rows > 1_000_000 {
            self.push(
                span("batch_rows"),
                "batch_rows",
                "must be between 1 and 1000000".into(),
            );
        }
        if !(0.0..=1.0).contains(&header.shrink_warn_ratio) {
            self.push(
                span("shrink_warn_ratio"),
                "shrink_warn_ratio",
                "must be between 0 and 1 (0 = off)".into(),
            );
        }
        if header.lock_lease_secs == 0 || header.lock_lease_secs > 86_400 {
            self.push(
                span("lock_lease_secs"),
                "lock_lease_secs",
                "must be between 1 and 86400".into(),
            );
        }
        if let Ok(url) = header.warehouse.resolve(env)
            && let Err(e) = WarehouseUrl::parse(&url)
        {
            self.push(span("warehouse"), "warehouse", e);
        }
        for (key, problem) in
            crate::metrics::config::check(&header.stages, &header.metrics, &header.fx)
        {
            let at = path_span(root.get_ref(), &key).unwrap_or(0..0);
            self.push(at, &key, problem);
        }
        timezone
    }

    /// Every string with `${…}` anywhere in the file: well-formed and set in the environment.
    fn check_env_references(&mut self, table: &DeTable<'_>, base: &str, env: EnvLookup<'_>) {
        for (key, value) in table.iter() {
            let path = join_path(base, key.get_ref());
            self.check_env_value(value, &path, key.span(), env);
        }
    }

    fn check_env_value(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        key_span: Range<usize>,
        env: EnvLookup<'_>,
    ) {
        match value.get_ref() {
            DeValue::String(s) if s.contains("${") => {
                match super::Template::new(s.to_string()).variables() {
                    Err(e) => self.push(key_span, path, e),
                    Ok(names) => {
                        for name in names {
                            if env(name).is_none() {
                                self.push(
                                    key_span.clone(),
                                    path,
                                    format!(
                                        "environment variable `{name}` is not set (export it before running)"
                                    ),
                                );
                            }
                        }
                    }
                }
            }
            DeValue::Table(t) => self.check_env_references(t, path, env),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_env_value(item, &format!("{path}[{i}]"), item.span(), env);
                }
            }
            _ => {}
        }
    }
}

fn check_http_url(template: &super::Template, env: EnvLookup<'_>) -> Option<String> {
    let resolved = template.resolve(env).ok()?;
    match url::Url::parse(&resolved) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => None,
        Ok(u) => Some(format!(
            "`{}` must be an http(s) URL, not `{}:`",
            template.raw(),
            u.scheme()
        )),
        Err(e) => Some(format!("`{}` is not a valid URL: {e}", template.raw())),
    }
}

/// One step down a TOML value: a table key or an array position.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

struct Located {
    /// Keys and array positions down to the offending key (what to remove to go on).
    steps: Vec<Step>,
    /// The path for messages, array indices included.
    display: String,
    key_span: Range<usize>,
}

impl Located {
    /// The last table key on the way (for "missing field" bookkeeping).
    fn last_key(&self) -> Option<&str> {
        self.steps.iter().rev().find_map(|s| match s {
            Step::Key(k) => Some(k.as_str()),
            Step::Index(_) => None,
        })
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// Find the deepest key or array item whose key or value span holds `span`. Children are
/// searched whatever their parent's span says: tables made implicitly by a header such as
/// `[[stages.rules]]` do not span their contents.
fn locate(value: &Spanned<DeValue<'_>>, span: &Range<usize>) -> Option<Located> {
    match value.get_ref() {
        DeValue::Table(table) => {
            for (key, child) in table.iter() {
                let name = key.get_ref().to_string();
                if key.span() == *span {
                    return Some(Located {
                        steps: vec![Step::Key(name.clone())],
                        display: name,
                        key_span: key.span(),
                    });
                }
                if let Some(mut deeper) = locate(child, span) {
                    deeper.steps.insert(0, Step::Key(name.clone()));
                    deeper.display = if deeper.display.starts_with('[') {
                        format!("{name}{}", deeper.display)
                    } else {
                        join_path(&name, &deeper.display)
                    };
                    return Some(deeper);
                }
                if contains(&child.span(), span) {
                    return Some(Located {
                        steps: vec![Step::Key(name.clone())],
                        display: name,
                        key_span: key.span(),
                    });
                }
            }
            None
        }
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(mut deeper) = locate(item, span) {
                    deeper.steps.insert(0, Step::Index(i));
                    deeper.display = if deeper.display.starts_with('[') {
                        format!("[{i}]{}", deeper.display)
                    } else {
                        format!("[{i}].{}", deeper.display)
                    };
                    return Some(deeper);
                }
                if contains(&item.span(), span) {
                    return Some(Located {
                        steps: vec![Step::Index(i)],
                        display: format!("[{i}]"),
                        key_span: item.span(),
                    });
                }
            }
            None
        }
        _ => None,
    }
}

/// Remove the key at `steps`; an array item cannot be removed on its own, so a bad item
/// removes the whole array (its other items' mistakes show on the next validate).
fn remove_key(value: &mut Spanned<DeValue<'_>>, steps: &[Step]) {
    let steps = match steps.split_last() {
        Some((Step::Index(_), parent)) => parent,
        _ => steps,
    };
    let Some((first, rest)) = steps.split_first() else {
        return;
    };
    match (value.get_mut(), first) {
        (DeValue::Table(table), Step::Key(key)) => {
            if rest.is_empty() {
                table.remove(key.as_str());
            } else if let Some(child) = table.get_mut(key.as_str()) {
                remove_key(child, rest);
            }
        }
        (DeValue::Array(items), Step::Index(i)) => {
            if let Some(child) = items.get_mut(*i) {
                remove_key(child, rest);
            }
        }
        _ => {}
    }
}

/// The span of the key at a dotted path such as `fx.rates[0].date` (the deepest part found).
fn path_span(table: &DeTable<'_>, path: &str) -> Option<Range<usize>> {
    let mut current = table;
    let mut found = None;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((name, rest)) => (name, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some((key, value)) = current.get_key_value(name) else {
            break;
        };
        found = Some(key.span());
        let value = match (value.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => match items.get(i) {
                Some(item) => {
                    found = Some(item.span());
                    item
                }
                None => break,
            },
            _ => value,
        };
        match value.get_ref() {
            DeValue::Table(t) => current = t,
            _ => break,
        }
    }
    found
}

fn join_path(base: &str, key: &str) -> String {
    match (base.is_empty(), key.is_empty()) {
        (true, _) => key.to_string(),
        (_, true) => base.to_string(),
        _ => format!("{base}.{key}"),
    }
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// serde's messages are good; make unknown-key ones say "key" as job-file users expect.
fn tidy_message(message: &str) -> String {
    message.trim().replacen("unknown field", "unknown key", 1)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}
