//! Loading a job file: parse with spans, deserialize each part on its own so that every
//! mistake is reported (not just the first), then run the semantic checks on whatever
//! parsed. Pure: the environment comes in as a lookup function and nothing touches the
//! network.
//!
//! One `validate` lists everything: a syntax error does not hide the rest of the document
//! (toml's recovering parser), a wrong type or unknown key is reported and taken out (a
//! required key is put back as a placeholder) so the table still deserializes, and the
//! value checks (names, URLs, currency, cron, time zone, secrets, metric settings) then run
//! on that partial result. A value check on a key that already has a type error is dropped.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use serde::de::{DeserializeOwned, IntoDeserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::{JobHeader, check_name};
use super::words::{check_currency, did_you_mean, suggest_time_zone};
use super::{
    EnvLookup, JobConfig, SOURCE_KINDS, SourceConfig, Template, cron_schedule, process_env,
};
use crate::error::{Error, Result};
use crate::sink::WarehouseUrl;

/// The largest job file read (1 MiB): a job file is a few kilobytes, and a huge one (a
/// wrong path, a generated file gone wrong) would otherwise cost gigabytes to parse.
pub const MAX_JOB_FILE_BYTES: u64 = 1 << 20;

/// Syntax errors listed one by one; past these, one line counts the rest.
const MAX_SYNTAX_ERRORS: usize = 20;

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

/// How loading treats the environment.
#[derive(Clone, Copy)]
pub struct EnvCheck<'a> {
    /// Looks variables up.
    pub lookup: EnvLookup<'a>,
    /// `false` for `validate --no-env`: referenced variables need not be set, and checks
    /// that need their values (a URL built from `${…}`) are skipped; all else is checked.
    pub resolve: bool,
    /// Variable names a misspelt reference is compared with ("did you mean").
    pub names: &'a [String],
}

impl std::fmt::Debug for EnvCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be secrets.
        f.debug_struct("EnvCheck")
            .field("resolve", &self.resolve)
            .field("names", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl<'a> EnvCheck<'a> {
    /// Resolve against `lookup`, with no names to suggest from.
    pub fn with(lookup: EnvLookup<'a>) -> Self {
        EnvCheck {
            lookup,
            resolve: true,
            names: &[],
        }
    }

    /// `validate --no-env`: no variable is looked up.
    pub fn offline() -> EnvCheck<'static> {
        EnvCheck {
            lookup: &no_env,
            resolve: false,
            names: &[],
        }
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// The names of the process environment's variables (for suggestions; never their values).
pub fn process_env_names() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect()
}

/// Read, parse and validate a job file against the process environment.
pub fn load_job(path: &Path) -> Result<JobConfig> {
    let names = process_env_names();
    load_job_checked(
        path,
        &EnvCheck {
            lookup: &process_env,
            resolve: true,
            names: &names,
        },
    )
}

/// Read, parse and validate a job file against the given environment.
pub fn load_job_with(path: &Path, env: EnvLookup<'_>) -> Result<JobConfig> {
    load_job_checked(path, &EnvCheck::with(env))
}

/// Read, parse and validate a job file; `env` says how variables are treated.
pub fn load_job_checked(path: &Path, env: &EnvCheck<'_>) -> Result<JobConfig> {
    let text = read_job_file(path)?;
    parse_job_checked(path, &text, env)
        .map_err(|diags| Error::config(path, render_diagnostics(path, &diags)))
}

/// The file's text, refused past [`MAX_JOB_FILE_BYTES`] before anything is parsed.
fn read_job_file(path: &Path) -> Result<String> {
    let too_big = |size: String| {
        Error::config(
            path,
            format!(
                "  {}: the file is {size}; a job file may be at most 1 MiB ({MAX_JOB_FILE_BYTES} \
                 bytes) — is this the right file?",
                path.display()
            ),
        )
    };
    // A file that cannot be opened is missing or unreadable, not invalid: say which, with the
    // path a person can find (a relative one also resolved against the working directory).
    let unreadable = |e: std::io::Error| {
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
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    if let Ok(meta) = file.metadata()
        && meta.len() > MAX_JOB_FILE_BYTES
    {
        return Err(too_big(format!("{} bytes", meta.len())));
    }
    // Read at most one byte past the cap: a pipe or device has no size up front.
    let mut bytes = Vec::new();
    file.take(MAX_JOB_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_JOB_FILE_BYTES {
        return Err(too_big("larger than that".into()));
    }
    String::from_utf8(bytes)
        .map_err(|e| Error::config(path, format!("the file is not UTF-8 text: {e}")))
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
    parse_job_checked(path, text, &EnvCheck::with(env))
}

/// [`parse_job`] with the environment treated as `env` says.
pub fn parse_job_checked(
    path: &Path,
    text: &str,
    env: &EnvCheck<'_>,
) -> std::result::Result<JobConfig, Vec<Diagnostic>> {
    let mut diags = Diagnostics {
        text,
        line_starts: line_starts(text),
        env: *env,
        list: vec![],
        syntax_failed: false,
    };
    let (mut root, syntax_errors) = DeTable::parse_recoverable(text);
    // The first few syntax errors say what is wrong; a garbled file would otherwise print one
    // line per byte.
    for e in syntax_errors.iter().take(MAX_SYNTAX_ERRORS) {
        diags.push_structural(e.span().unwrap_or(0..0), "", e.message().trim().to_string());
    }
    if let Some(first_unlisted) = syntax_errors.get(MAX_SYNTAX_ERRORS) {
        diags.push_structural(
            first_unlisted.span().unwrap_or(0..0),
            "",
            format!(
                "… and {} more syntax errors from here on (fix the ones above first)",
                syntax_errors.len() - MAX_SYNTAX_ERRORS
            ),
        );
    }
    diags.syntax_failed = !syntax_errors.is_empty();
    let whole = root.clone();
    diags.check_env_references(root.get_ref(), "");

    // A `[fan_in]` job pulls nothing: it is the metrics step over other jobs' tables.
    let fan_in = root.get_ref().get_key_value("fan_in").is_some();
    let sources_value = root.get_mut().remove("sources");
    let root_value = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
    let header: Option<JobHeader> = diags.deserialize(&root_value, "");

    let mut sources = Vec::new();
    let mut survey_scales = Vec::new();
    match sources_value {
        None if fan_in => {}
        Some(_) if fan_in => diags.push(
            0..0,
            "sources",
            "a [fan_in] job is the metrics step over other jobs' tables and pulls nothing: move its [[sources]] into a pull job".into(),
        ),
        None => diags.push_structural(
            0..0,
            "sources",
            "a job needs at least one [[sources]] entry".into(),
        ),
        Some(value) => match value.into_inner() {
            DeValue::Array(items) => {
                diags.check_duplicate_names(&items);
                for (index, item) in items.iter().enumerate() {
                    if let Some(source) = diags.source(index, item) {
                        if let Some(scale) = survey_scale(&source) {
                            survey_scales.push((index, scale));
                        }
                        sources.push(source);
                    }
                }
            }
            _ => diags.push_structural(
                0..0,
                "sources",
                "must be an array of tables ([[sources]])".into(),
            ),
        },
    }

    let Some(header) = header else {
        return Err(diags.finish());
    };
    let timezone = diags.header_checks(&header, whole.get_ref());
    diags.fan_in_checks(&header, whole.get_ref());
    diags.enps_scale_checks(&header, &survey_scales, whole.get_ref());
    if let Some(problem) = header
        .fx
        .rates_file
        .as_ref()
        .and_then(|t| t.resolve(env.lookup).ok())
        .and_then(|location| check_local_rates_file(path, &location))
    {
        let at = path_span(whole.get_ref(), "fx.rates_file").unwrap_or(0..0);
        diags.push(at, "fx.rates_file", problem);
    }
    if !diags.list.is_empty() {
        return Err(diags.finish());
    }
    Ok(JobConfig {
        path: path.to_path_buf(),
        name: header.name,
        schedule: header.schedule,
        timezone: timezone.unwrap_or(chrono_tz::UTC),
        warehouse: header.warehouse,
        reporting_currency: header.reporting_currency,
        // A `[fan_in]` job hashes nothing; `fan_in_checks` requires the key of every other.
        hash_key: header.hash_key.unwrap_or_else(|| super::Template::new("")),
        batch_rows: header.batch_rows,
        raw_retention_days: header.raw_retention_days,
        lock_lease_secs: header.lock_lease_secs,
        shrink_warn_ratio: header.shrink_warn_ratio,
        sources,
        stages: header.stages,
        metrics: header.metrics,
        fx: header.fx,
        compute_metrics: header.compute_metrics,
        fan_in: header.fan_in,
        table_format: header.table_format,
        delta: header.delta,
    })
}

struct Diagnostics<'t> {
    text: &'t str,
    line_starts: Vec<usize>,
    env: EnvCheck<'t>,
    /// Each problem, and whether it is structural (syntax, unknown key, wrong type, missing
    /// key) rather than a value check.
    list: Vec<(Diagnostic, bool)>,
    /// The document had syntax errors: keys may be missing only because their line was
    /// unreadable, so "missing key" is not reported on top.
    syntax_failed: bool,
}

/// Values put in place of a required key that is missing or of the wrong type, tried in
/// turn until the table deserializes (their checks are never reported).
const PLACEHOLDERS: &str = "v = [\"\", 0, 0.0, false, [], {}]";

/// A key holding a placeholder: where, and which of [`PLACEHOLDERS`] it holds.
/// One `[[sources]]` table (without `kind`) handed to the registry, which picks its type.
struct KindReader<'d, 't, 'v, 'b> {
    loader: &'d mut Diagnostics<'t>,
    value: &'v Spanned<DeValue<'v>>,
    base: &'b str,
}

impl crate::sources::ReadKind for KindReader<'_, '_, '_, '_> {
    fn read<T: DeserializeOwned>(&mut self) -> Option<T> {
        self.loader.deserialize(self.value, self.base)
    }
}

struct Placeholder {
    steps: Vec<Step>,
    display: String,
    candidate: usize,
}

impl Diagnostics<'_> {
    fn push(&mut self, span: Range<usize>, key_path: &str, message: String) {
        self.push_kind(span, key_path, message, false);
    }

    fn push_structural(&mut self, span: Range<usize>, key_path: &str, message: String) {
        self.push_kind(span, key_path, message, true);
    }

    fn push_kind(&mut self, span: Range<usize>, key_path: &str, message: String, structural: bool) {
        let (line, column) = line_column(&self.line_starts, self.text.len(), span.start);
        self.list.push((
            Diagnostic {
                line,
                column,
                key_path: key_path.to_string(),
                message,
            },
            structural,
        ));
    }

    /// Every diagnostic, less value checks on keys that already have a structural one (the
    /// value checked was a placeholder, or a type error says enough).
    fn finish(self) -> Vec<Diagnostic> {
        let structural: HashSet<String> = self
            .list
            .iter()
            .filter(|(_, s)| *s)
            .map(|(d, _)| d.key_path.clone())
            .collect();
        self.list
            .into_iter()
            .filter(|(d, s)| *s || !structural.contains(&d.key_path))
            .map(|(d, _)| d)
            .collect()
    }

    /// Deserialize `value` as `T`; on each error record it, drop the offending key (or put
    /// a placeholder in for a required one) and try again, so one pass reports every
    /// unknown key and wrong type in the table and still yields a value to check.
    fn deserialize<T: DeserializeOwned>(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        base: &str,
    ) -> Option<T> {
        let mut working = value.clone();
        // Keys taken out for their type, by path: a required one comes back as a placeholder.
        let mut removed: Vec<Located> = Vec::new();
        let mut placeholders: Vec<Placeholder> = Vec::new();
        let placeholder_root = DeTable::parse(PLACEHOLDERS).ok()?;
        let candidates: Vec<DeValue<'_>> = match placeholder_root.get_ref().get("v")?.get_ref() {
            DeValue::Array(items) => items.iter().map(|i| i.get_ref().clone()).collect(),
            _ => return None,
        };
        // Placeholders get spans past the end of the text, so errors about them are told
        // apart from errors about what the user wrote.
        let mut next_span = self.text.len() + 1;
        let mut synthetic = |width: usize| {
            let span = next_span..next_span + width;
            next_span += width + 1;
            span
        };
        for _ in 0..256 {
            let error = match T::deserialize(working.clone().into_deserializer()) {
                Ok(parsed) => return Some(parsed),
                Err(error) => error,
            };
            let message = error.message().to_string();
            let span = error.span().unwrap_or_else(|| working.span());
            if let Some(field) = missing_field(&message) {
                // The table the key is missing from: the whole value, or the one `locate`
                // finds whose span is the error's.
                let table_steps = match locate(&working, &span) {
                    None => Some((Vec::new(), String::new(), 0..0)),
                    Some(found)
                        if value_at(&working, &found.steps)
                            .is_some_and(|v| v.span() == span && v.get_ref().is_table()) =>
                    {
                        Some((found.steps.clone(), found.display.clone(), found.key_span))
                    }
                    Some(_) => None,
                };
                if let Some((mut steps, display, key_span)) = table_steps {
                    let display = join_path(&join_path(base, &display), field);
                    if placeholders.iter().any(|p| p.display == display) {
                        return None;
                    }
                    let was_removed = removed
                        .iter()
                        .any(|r| join_path(base, &r.display) == display);
                    if !was_removed && !self.syntax_failed {
                        self.push_structural(key_span, &display, format!("missing key `{field}`"));
                    } else if !was_removed {
                        // Keep the placeholder out of the value checks all the same.
                        self.push_structural(key_span, &display, "could not be read".into());
                    }
                    steps.push(Step::Key(field.to_string()));
                    let placed = Spanned::new(synthetic(1), candidates[0].clone());
                    let key = Spanned::new(synthetic(field.len()), field.to_string().into());
                    if !insert_key(&mut working, &steps, key, placed) {
                        return None;
                    }
                    placeholders.push(Placeholder {
                        steps,
                        display,
                        candidate: 0,
                    });
                    continue;
                }
            }
            let Some(found) = locate(&working, &span) else {
                self.push_structural(span, base, human_message(&message));
                return None;
            };
            let display = join_path(base, &found.display);
            if let Some(p) = placeholders.iter_mut().find(|p| p.display == display) {
                // The placeholder is of the wrong type too: try the next kind of value (for
                // an enum, its first variant).
                p.candidate += 1;
                let next = match expected_names(&message).first() {
                    Some(variant) if message.starts_with("unknown variant") => {
                        DeValue::String(variant.to_string().into())
                    }
                    _ => match candidates.get(p.candidate) {
                        Some(c) => c.clone(),
                        None => return None,
                    },
                };
                let steps = p.steps.clone();
                let Some(Step::Key(name)) = steps.last() else {
                    return None;
                };
                let key = Spanned::new(synthetic(name.len()), name.clone().into());
                remove_key(&mut working, &steps);
                if !insert_key(&mut working, &steps, key, Spanned::new(synthetic(1), next)) {
                    return None;
                }
                continue;
            }
            self.push_structural(found.key_span.clone(), &display, human_message(&message));
            remove_key(&mut working, &found.steps);
            removed.push(found);
        }
        None
    }

    fn source(&mut self, index: usize, item: &Spanned<DeValue<'_>>) -> Option<SourceConfig> {
        let env = self.env;
        let base = format!("sources[{index}]");
        let DeValue::Table(table) = item.get_ref() else {
            self.push_structural(item.span(), &base, "must be a table".into());
            return None;
        };
        let Some(kind_value) = table.get("kind") else {
            self.push_structural(
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
        let mut reader = KindReader {
            loader: &mut *self,
            value: &rest,
            base: &base,
        };
        let Some(source) = SourceConfig::read(&kind, &mut reader) else {
            let hint = did_you_mean(&kind, SOURCE_KINDS.iter().copied())
                .map(|k| format!("did you mean `{k}`? "))
                .unwrap_or_default();
            self.push_structural(
                kind_value.span(),
                &format!("{base}.kind"),
                format!(
                    "unknown source kind `{kind}`; {hint}expected one of {}",
                    SOURCE_KINDS.join(", ")
                ),
            );
            return None;
        };
        let source = source?;
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
        for (key, url) in source.http_urls() {
            if let Some(problem) = check_http_url(url, env.lookup) {
                problems.push((key, problem));
            }
        }
        // A costs or intent file may be a local path or an object-store URL, not only http(s).
        let file_url = source.url_is_path().then(|| source.base_url());
        if let Some(url) = file_url
            && let Some(problem) = check_costs_url(url, env.lookup)
        {
            problems.push(("url", problem));
        }
        for (key, secret) in source.secrets() {
            if let Some(problem) = check_secret(secret, &env) {
                problems.push((key, problem));
            }
        }
        problems.extend(source.check());
        for (key, problem) in problems {
            self.push(key_span(key), &format!("{base}.{key}"), problem);
        }
        Some(source)
    }

    /// Source names must be unique, ignoring case: they name folders and files, and a
    /// case-insensitive file system (macOS, Windows) or a person reading the tables would
    /// mix `HubSpot` and `hubspot` up. Checked on the raw tables so a source with other
    /// mistakes still takes part.
    fn check_duplicate_names(&mut self, items: &[Spanned<DeValue<'_>>]) {
        let mut seen: HashMap<String, (usize, String)> = HashMap::new();
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
            match seen.get(&name.to_lowercase()) {
                Some((first, earlier)) if earlier == name => self.push(
                    key.span(),
                    &format!("sources[{index}].name"),
                    format!(
                        "duplicate source name `{name}` (also sources[{first}]); names must be unique"
                    ),
                ),
                Some((first, earlier)) => self.push(
                    key.span(),
                    &format!("sources[{index}].name"),
                    format!(
                        "source name `{name}` differs from `{earlier}` (sources[{first}]) only in \
                         case; names must be unique ignoring case (they name folders)"
                    ),
                ),
                None => {
                    seen.insert(name.to_lowercase(), (index, name.to_string()));
                }
            }
        }
    }

    /// Each survey source's eNPS `scale` against `[metrics.enps] scale`: the source rejects
    /// answers off its scale and the metric buckets answers on its own, so on different
    /// scales answers of 0 would pass the source and then go unscored. Only in a job that
    /// computes metrics (a fan-out's metrics job has its own file).
    fn enps_scale_checks(
        &mut self,
        header: &JobHeader,
        survey_scales: &[(usize, crate::normalize::EnpsScale)],
        root: &DeTable<'_>,
    ) {
        if !header.compute_metrics {
            return;
        }
        let metric = header.metrics.enps.scale;
        for &(index, scale) in survey_scales.iter().filter(|(_, s)| *s != metric) {
            let key = format!("sources[{index}].scale");
            self.push(
                path_span(root, &key).unwrap_or(0..0),
                &key,
                format!(
                    "scale \"{}\" differs from [metrics.enps] scale \"{}\": the eNPS metric would score answers on another scale than this source accepts them; set both to the same",
                    scale.label(),
                    metric.label()
                ),
            );
        }
    }

    /// `[fan_in]` against the rest of the header: a metrics job names other jobs, and a pull
    /// job keeps its `hash_key`.
    fn fan_in_checks(&mut self, header: &JobHeader, root: &DeTable<'_>) {
        let span = |key: &str| path_span(root, key).unwrap_or(0..0);
        match &header.fan_in {
            // A pull job hashes e-mails and respondent ids; a syntax error may have hidden the
            // key's line, and then the syntax error says enough.
            None if header.hash_key.is_none() && !self.syntax_failed => {
                self.push_structural(0..0, "hash_key", "missing key `hash_key`".into());
            }
            None => {}
            Some(fan_in) => {
                if !header.compute_metrics {
                    self.push(
                        span("compute_metrics"),
                        "compute_metrics",
                        "a [fan_in] job is the metrics step: it cannot turn metrics off".into(),
                    );
                }
                for (i, name) in fan_in.jobs.iter().enumerate() {
                    let key = format!("fan_in.jobs[{i}]");
                    if let Err(e) = check_name(name) {
                        self.push(span("fan_in.jobs"), &key, e);
                    } else if *name == header.name {
                        self.push(
                            span("fan_in.jobs"),
                            &key,
                            format!("`{name}` is this job; name the pull jobs it reads"),
                        );
                    } else if fan_in.jobs[..i].contains(name) {
                        self.push(
                            span("fan_in.jobs"),
                            &key,
                            format!("`{name}` is listed twice"),
                        );
                    }
                }
            }
        }
    }

    fn header_checks(&mut self, header: &JobHeader, root: &DeTable<'_>) -> Option<chrono_tz::Tz> {
        let env = self.env;
        let span = |key: &str| {
            root.get_key_value(key)
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
                let hint = suggest_time_zone(&header.timezone)
                    .map(|tz| format!("; did you mean `{tz}`?"))
                    .unwrap_or_default();
                self.push(
                    span("timezone"),
                    "timezone",
                    format!(
                        "`{}` is not an IANA time zone like Europe/Berlin{hint}",
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
        if let Ok(url) = header.warehouse.resolve(env.lookup)
            && let Err(e) = WarehouseUrl::parse(&url)
        {
            self.push(span("warehouse"), "warehouse", e);
        }
        if let Some(hash_key) = &header.hash_key
            && let Some(problem) = check_secret(hash_key, &env)
        {
            self.push(span("hash_key"), "hash_key", problem);
        }
        for (key, problem) in
            crate::metrics::config::check(&header.stages, &header.metrics, &header.fx)
        {
            let at = path_span(root, &key).unwrap_or(0..0);
            self.push(at, &key, problem);
        }
        timezone
    }

    /// Every string with `${…}` anywhere in the file: well-formed and (unless `--no-env`)
    /// set in the environment.
    fn check_env_references(&mut self, table: &DeTable<'_>, base: &str) {
        for (key, value) in table.iter() {
            let path = join_path(base, key.get_ref());
            self.check_env_value(value, &path, key.span());
        }
    }

    fn check_env_value(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        path: &str,
        key_span: Range<usize>,
    ) {
        let env = self.env;
        match value.get_ref() {
            DeValue::String(s) if s.contains("${") => {
                match Template::new(s.to_string()).variables() {
                    Err(e) => self.push(key_span, path, e),
                    Ok(names) if env.resolve => {
                        for name in names {
                            if (env.lookup)(name).is_none() {
                                let hint = did_you_mean(name, env.names.iter().map(String::as_str))
                                    .map(|n| format!("; did you mean `{n}` (which is set)?"))
                                    .unwrap_or_else(|| " (export it before running)".into());
                                self.push(
                                    key_span.clone(),
                                    path,
                                    format!("environment variable `{name}` is not set{hint}"),
                                );
                            }
                        }
                    }
                    Ok(_) => {}
                }
            }
            DeValue::Table(t) => self.check_env_references(t, path),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.check_env_value(item, &format!("{path}[{i}]"), item.span());
                }
            }
            _ => {}
        }
    }
}

/// A credential must not be empty: an empty token is sent as `Bearer ` and the vendor's 401
/// comes only after the run started. The value itself is never shown.
fn check_secret(secret: &Template, env: &EnvCheck<'_>) -> Option<String> {
    if secret.raw().trim().is_empty() {
        return Some("is empty; set it to a `${VARIABLE}` holding the credential".into());
    }
    if !env.resolve {
        return None;
    }
    match secret.resolve(env.lookup) {
        Ok(value) if value.trim().is_empty() => {
            let names = secret.variables().unwrap_or_default().join("`, `");
            Some(format!(
                "is empty: environment variable `{names}` is set to an empty string"
            ))
        }
        _ => None,
    }
}

fn check_http_url(template: &Template, env: EnvLookup<'_>) -> Option<String> {
    let resolved = template.resolve(env).ok()?;
    match url::Url::parse(&resolved) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => None,
        Ok(u) => Some(format!(
            "`{}` must be an http(s) URL, not `{}:`",
            template.raw(),
            u.scheme()
        )),
        Err(url::ParseError::RelativeUrlWithoutBase) => Some(format!(
            "`{}` is not a URL: it needs a scheme, like https://{}",
            template.raw(),
            template.raw().trim_start_matches('/')
        )),
        Err(e) => Some(format!("`{}` is not a valid URL: {e}", template.raw())),
    }
}

/// A costs file is read from a path, `file://`, `s3://` or `http(s)://`; anything else with
/// a scheme (`gopher://…`) would be taken for a relative path and fail only in the run.
fn check_costs_url(template: &Template, env: EnvLookup<'_>) -> Option<String> {
    let resolved = template.resolve(env).ok()?;
    let (scheme, _) = resolved.split_once("://")?;
    let is_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => check_http_url(template, env),
        "file" | "s3" => None,
        _ if is_scheme => Some(format!(
            "`{}`: costs are read from a path, file://, s3:// or http(s)://, not `{scheme}://`",
            template.raw()
        )),
        _ => None,
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

/// The eNPS scale a survey source checks answers against; `None` for other kinds.
fn survey_scale(source: &SourceConfig) -> Option<crate::normalize::EnpsScale> {
    match source {
        SourceConfig::Typeform(c) => Some(c.scale),
        SourceConfig::SurveyMonkey(c) => Some(c.scale),
        _ => None,
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

/// The value at `steps`, if there is one.
fn value_at<'v, 'i>(
    value: &'v Spanned<DeValue<'i>>,
    steps: &[Step],
) -> Option<&'v Spanned<DeValue<'i>>> {
    let Some((first, rest)) = steps.split_first() else {
        return Some(value);
    };
    let child = match (value.get_ref(), first) {
        (DeValue::Table(table), Step::Key(key)) => table.get(key.as_str())?,
        (DeValue::Array(items), Step::Index(i)) => items.get(*i)?,
        _ => return None,
    };
    value_at(child, rest)
}

/// Put `key = placed` at `steps` (whose last step is the key); `false` if the table on the
/// way is not there.
fn insert_key<'i>(
    value: &mut Spanned<DeValue<'i>>,
    steps: &[Step],
    key: Spanned<toml::de::DeString<'i>>,
    placed: Spanned<DeValue<'i>>,
) -> bool {
    match steps.split_first() {
        Some((Step::Key(_), [])) => match value.get_mut() {
            DeValue::Table(table) => {
                table.insert(key, placed);
                true
            }
            _ => false,
        },
        Some((Step::Key(name), rest)) => match value.get_mut() {
            DeValue::Table(table) => match table.get_mut(name.as_str()) {
                Some(child) => insert_key(child, rest, key, placed),
                None => false,
            },
            _ => false,
        },
        Some((Step::Index(i), rest)) => match value.get_mut() {
            DeValue::Array(items) => match items.get_mut(*i) {
                Some(child) => insert_key(child, rest, key, placed),
                None => false,
            },
            _ => false,
        },
        None => false,
    }
}

/// The names a serde message offers after "expected": `` `a`, `b` `` or `` `a` or `b` ``.
fn expected_names(message: &str) -> Vec<&str> {
    let Some((_, expected)) = message.split_once("expected") else {
        return Vec::new();
    };
    expected.split('`').skip(1).step_by(2).collect()
}

/// serde's messages in a job-file writer's words: "key" for field, types as a person says
/// them (`a whole number`, not `u32`), and "did you mean" for a misspelt key or value.
fn human_message(message: &str) -> String {
    let message = message.trim();
    for (prefix, noun) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let word = rest.split('`').next().unwrap_or_default();
            let expected = expected_names(message);
            return match did_you_mean(word, expected.iter().copied()) {
                Some(close) => format!("unknown {noun} `{word}`; did you mean `{close}`?"),
                None if expected.is_empty() => format!("unknown {noun} `{word}`"),
                None => format!(
                    "unknown {noun} `{word}`; expected one of `{}`",
                    expected.join("`, `")
                ),
            };
        }
    }
    if let Some(field) = missing_field(message) {
        return format!("missing key `{field}`");
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((count, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {}, found {count}", human_expected(expected));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                human_expected(expected),
                human_found(found)
            );
        }
    }
    message.to_string()
}

fn human_expected(expected: &str) -> String {
    let expected = expected.trim();
    let words = match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "u128" | "usize" => "a whole number of 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a character" => "a string in quotes",
        "a sequence" => "a list, like [\"a\", \"b\"]",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other
            if other.starts_with("an array of length ")
                || other.starts_with("a tuple of size ") =>
        {
            let n = other.rsplit(' ').next().unwrap_or("?");
            return format!("a list of {n} values");
        }
        other => other,
    };
    words.to_string()
}

fn human_found(found: &str) -> String {
    let found = found.trim();
    let quoted = |s: &str| s.trim_matches('`').to_string();
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the string {text}");
    }
    for prefix in ["integer ", "floating point ", "boolean "] {
        if let Some(value) = found.strip_prefix(prefix) {
            return quoted(value);
        }
    }
    match found {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        other => other.into(),
    }
}

/// Where each line starts, for [`line_column`]: computed once per file, as a file may hold
/// many mistakes.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// 1-based line and (byte) column of `offset`.
fn line_column(starts: &[usize], text_len: usize, offset: usize) -> (usize, usize) {
    let offset = offset.min(text_len);
    let line = starts.partition_point(|&start| start <= offset).max(1);
    (line, offset - starts[line - 1] + 1)
}

/// For `validate`: a local rates file (relative to the job file) must exist and parse; URLs
/// are left to the run (no network while validating).
fn check_local_rates_file(job_path: &Path, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return None;
    }
    let path = super::resolve_job_path(job_path, location);
    match std::fs::read_to_string(&path) {
        Err(e) => Some(format!("{path} {}", super::file_problem(&e))),
        Ok(text) => crate::metrics::fx::check_rates_text(&text, &path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name = \"t\"\nwarehouse = \"./w\"\nhash_key = \"k\"\n\n[[sources]]\n\
                        name = \"hs\"\nkind = \"hubspot\"\ntoken = \"t\"\n";

    fn keys(text: &str) -> Vec<(usize, String)> {
        let mut diags = parse_job(Path::new("j.toml"), text, &|_| None).unwrap_err();
        diags.sort_by_key(|d| (d.line, d.column));
        diags.into_iter().map(|d| (d.line, d.key_path)).collect()
    }

    #[test]
    fn a_required_key_of_the_wrong_type_does_not_hide_the_value_checks() {
        let text = GOOD
            .replace("name = \"t\"", "name = 5\nreporting_currency = \"euro\"")
            .replace("name = \"hs\"", "name = \"bad name\"")
            .replace("token = \"t\"", "token = [1]");
        let got = keys(&text);
        assert_eq!(
            got,
            vec![
                (1, "name".to_string()),
                (2, "reporting_currency".to_string()),
                (7, "sources[0].name".to_string()),
                (9, "sources[0].token".to_string()),
            ],
        );
    }

    #[test]
    fn a_missing_key_and_a_syntax_error_do_not_hide_the_rest() {
        let missing = GOOD
            .replace("hash_key = \"k\"\n", "")
            .replace("name = \"t\"", "name = \"t\"\ntimezone = \"Mars\"");
        let got = keys(&missing);
        assert!(got.contains(&(2, "timezone".to_string())), "{got:?}");
        assert!(got.iter().any(|(_, k)| k == "hash_key"), "{got:?}");
        let broken = GOOD.replace("name = \"t\"", "name = \"t\nreporting_currency = \"ZZZ\"");
        let diags = parse_job(Path::new("j.toml"), &broken, &|_| None).unwrap_err();
        assert!(diags.iter().any(|d| d.key_path.is_empty()), "{diags:?}");
        assert!(
            !diags.iter().any(|d| d.message.starts_with("missing key")),
            "{diags:?}"
        );
    }

    #[test]
    fn a_survey_scale_other_than_the_metrics_one_is_named() {
        let survey = "name = \"t\"\nwarehouse = \"./w\"\nhash_key = \"k\"\n\n[[sources]]\n\
                      name = \"tf\"\nkind = \"typeform\"\ntoken = \"t\"\nform_ids = [\"f\"]\n\
                      scale = \"1-10\"\n";
        assert_eq!(keys(survey), vec![(10, "sources[0].scale".to_string())]);
        let agreed = format!("{survey}\n[metrics.enps]\nscale = \"1-10\"\n");
        assert!(parse_job(Path::new("j.toml"), &agreed, &|_| None).is_ok());
        let no_metrics = survey.replace("hash_key", "compute_metrics = false\nhash_key");
        assert!(parse_job(Path::new("j.toml"), &no_metrics, &|_| None).is_ok());
    }

    #[test]
    fn messages_use_plain_words() {
        assert_eq!(
            human_message("invalid type: string \"many\", expected u32"),
            "expected a whole number from 0 to 4294967295, found the string \"many\""
        );
        assert_eq!(
            human_message("invalid type: integer `5`, expected a string"),
            "expected a string in quotes, found 5"
        );
        assert_eq!(
            human_message("invalid type: string \"x\", expected a sequence"),
            "expected a list, like [\"a\", \"b\"], found the string \"x\""
        );
        assert_eq!(
            human_message("unknown field `tokn`, expected one of `token`, `name`"),
            "unknown key `tokn`; did you mean `token`?"
        );
        assert_eq!(
            human_message("invalid length 1, expected an array of length 2"),
            "expected a list of 2 values, found 1"
        );
        assert_eq!(
            human_message("unknown variant `x`, expected `a` or `b`"),
            "unknown value `x`; expected one of `a`, `b`"
        );
    }
}
