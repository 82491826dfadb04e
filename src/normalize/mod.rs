//! Canonical datasets (design §4): one declared Arrow schema per dataset, typed rows that
//! sources decode into, batch builders, value parsers, the personal-data hasher and rejects.

pub mod bounds;
mod columns;
pub mod datasets;
mod enps_scale;
mod hash;
pub mod parse;
mod redact;
mod rejects;
pub mod scalar;

pub use columns::{
    BatchStamp, CustomValue, MONEY_PRECISION, MONEY_SCALE, TableRows, custom_value_fields,
    money_type, timestamp_type,
};
pub use datasets::{
    CostRow, CostsBuilder, Dataset, LeadRow, LeadsBuilder, SpendBuilder, SpendRow,
    SurveyResponseRow, SurveyResponsesBuilder, costs_schema, leads_schema, spend_schema,
    survey_responses_schema,
};
pub use datasets::{IntentSignalRow, IntentSignalsBuilder, intent_signals_schema};
pub use enps_scale::EnpsScale;
pub use hash::{DEMO_HASH_KEY, PersonalDataHasher, hash_key_is_demo, scrub_personal_data};
pub use redact::{redact_text, scrub_text};
pub use rejects::{RejectRow, RejectsBuilder, RunRow, RunsBuilder, rejects_schema, runs_schema};
