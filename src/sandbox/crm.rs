//! What changes in the CRM twins between two runs, and the limits they enforce. The data is
//! still a pure function of the options; on top of it this keeps the simulated edits
//! (`POST /_admin/crm/mutate`: contacts and leads updated, HubSpot contacts archived,
//! Salesforce leads deleted), HubSpot's burst and daily request limits (with their headers
//! and 429 bodies), and Salesforce's sessions, API allocation and injected faults (expired
//! session, invalid query locator).
//!
//! Every edit of one mutation round shares one modification time — a minute after the
//! previous round, starting at the end of the data — so rounds create timestamp ties, the
//! case incremental connectors must get right.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::contacts::{Contact, ContactModel};
use super::rng::Rng;

const STREAM_MUTATE: u64 = 0x1101;
const STREAM_SF_MUTATE: u64 = 0x1102;
/// Minutes between two mutation rounds' modification times.
const ROUND_MS: i64 = 60_000;

/// One contact's simulated history.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Edit {
    /// Times updated.
    pub(crate) updates: u32,
    /// The last change (update, archive or delete), epoch ms.
    pub(crate) modified_ms: i64,
    /// When it was archived (HubSpot) or deleted (Salesforce).
    pub(crate) removed_ms: Option<i64>,
}

/// What `POST /_admin/crm/mutate` asks for.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mutation {
    /// HubSpot contacts and Salesforce leads to update (each vendor).
    pub updates: usize,
    /// HubSpot contacts to archive and Salesforce leads to delete (each vendor).
    pub removals: usize,
}

/// What `POST /_admin/crm/hubspot_redate` asks for: one HubSpot contact (by its position in
/// the data) modified at `modified_at` — any RFC 3339 time, the future included (a vendor
/// bug or a bad import dates a record in year 2099 or 9999).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubspotRedate {
    /// Index of the contact (0-based, list order).
    pub index: usize,
    /// Its new `lastmodifieddate`.
    pub modified_at: String,
}

/// What a mutation changed, by vendor id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MutationReport {
    /// The round's modification time (RFC 3339, ms).
    pub modified_at: String,
    /// Updated HubSpot contact ids.
    pub hubspot_updated: Vec<String>,
    /// Archived HubSpot contact ids.
    pub hubspot_archived: Vec<String>,
    /// Updated Salesforce lead ids.
    pub salesforce_updated: Vec<String>,
    /// Deleted Salesforce lead ids.
    pub salesforce_deleted: Vec<String>,
}

/// HubSpot's limits as the sandbox enforces them (`POST /_admin/crm/limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubspotLimits {
    /// Requests per rolling interval (`X-HubSpot-RateLimit-Max`).
    pub burst: u32,
    /// The interval (`X-HubSpot-RateLimit-Interval-Milliseconds`).
    pub interval_ms: u64,
    /// Requests per day (`X-HubSpot-RateLimit-Daily`), counted from the sandbox's start.
    pub daily: u64,
}

impl Default for HubspotLimits {
    /// Generous: headers on every answer, but no test or benchmark slowed by default.
    fn default() -> Self {
        HubspotLimits {
            burst: 10_000,
            interval_ms: 10_000,
            daily: 10_000_000,
        }
    }
}

/// Salesforce behaviour the sandbox can be told to show (`POST /_admin/crm/salesforce`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceFaults {
    /// The org's rolling 24-hour API allocation (`Sforce-Limit-Info: api-usage=used/max`);
    /// past it every call is `403 REQUEST_LIMIT_EXCEEDED`.
    pub api_allocation: u64,
    /// Expire every issued session after this many more API calls (once; 0 = never).
    pub expire_session_after: u64,
    /// Answer the Nth next `nextRecordsUrl` fetch with `INVALID_QUERY_LOCATOR` (once; 0 =
    /// never).
    pub invalidate_locator_at: u64,
}

impl Default for SalesforceFaults {
    fn default() -> Self {
        SalesforceFaults {
            api_allocation: 100_000,
            expire_session_after: 0,
            invalidate_locator_at: 0,
        }
    }
}

/// A Salesforce query cursor: the matching leads, fixed when the query ran.
#[derive(Debug, Clone)]
pub(crate) struct Locator {
    /// `Lead` or `Contact`.
    pub(crate) object: String,
    pub(crate) fields: Vec<String>,
    pub(crate) rows: Vec<usize>,
    pub(crate) batch: usize,
}

#[derive(Debug, Default)]
struct Inner {
    round: u32,
    hubspot: BTreeMap<usize, Edit>,
    salesforce: BTreeMap<usize, Edit>,
    hubspot_limits: HubspotLimits,
    hubspot_window: VecDeque<Instant>,
    hubspot_daily_used: u64,
    /// Refusals (429) per request fingerprint.
    refusals: HashMap<u64, u32>,
    faults: SalesforceFaults,
    sf_calls: u64,
    sf_sessions: HashSet<String>,
    sf_sessions_issued: u64,
    sf_locators: HashMap<String, Locator>,
    sf_locator_fetches: u64,
}

/// The mutable side of the CRM twins.
#[derive(Debug)]
pub(crate) struct CrmState {
    /// The Salesforce org's leads (a model of its own, 18-character `00Q…` ids).
    pub(crate) leads: ContactModel,
    end_ms: i64,
    seed: u64,
    inner: Mutex<Inner>,
    hubspot_order: OnceLock<Vec<(i64, u32)>>,
}

/// Why HubSpot refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The rolling burst window is full.
    Burst,
    /// The day's requests are spent.
    Daily,
}

/// HubSpot's `X-HubSpot-RateLimit-*` values for one answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HubspotUsage {
    pub(crate) limits: HubspotLimits,
    pub(crate) remaining: u64,
    pub(crate) daily_remaining: u64,
}

impl CrmState {
    pub(crate) fn new(seed: u64, leads: ContactModel, end_ms: i64) -> Self {
        let inner = Inner {
            faults: SalesforceFaults::default(),
            ..Inner::default()
        };
        CrmState {
            leads,
            end_ms,
            seed,
            inner: Mutex::new(inner),
            hubspot_order: OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Update and remove contacts in both CRMs, all at this round's modification time.
    pub(crate) fn mutate(&self, contacts: &ContactModel, m: Mutation) -> MutationReport {
        let mut inner = self.lock();
        inner.round += 1;
        let round = inner.round;
        let at = self.end_ms + i64::from(round) * ROUND_MS;
        let mut report = MutationReport {
            modified_at: super::encoding::format_iso_millis(at),
            ..MutationReport::default()
        };
        let mut r = Rng::for_record(self.seed, STREAM_MUTATE, u64::from(round));
        let (updated, removed) = pick(&mut r, contacts.count(), &inner.hubspot, m);
        for i in updated {
            let e = inner.hubspot.entry(i).or_default();
            e.updates += 1;
            e.modified_ms = at;
            report
                .hubspot_updated
                .push(contacts.contact(i).id.to_string());
        }
        for i in removed {
            let e = inner.hubspot.entry(i).or_default();
            e.removed_ms = Some(at);
            report
                .hubspot_archived
                .push(contacts.contact(i).id.to_string());
        }
        let mut r = Rng::for_record(self.seed, STREAM_SF_MUTATE, u64::from(round));
        let (updated, removed) = pick(&mut r, self.leads.count(), &inner.salesforce, m);
        for i in updated {
            let e = inner.salesforce.entry(i).or_default();
            e.updates += 1;
            e.modified_ms = at;
            report
                .salesforce_updated
                .push(super::encoding::lead_id(self.leads.contact(i).id));
        }
        for i in removed {
            let e = inner.salesforce.entry(i).or_default();
            e.removed_ms = Some(at);
            e.modified_ms = at;
            report
                .salesforce_deleted
                .push(super::encoding::lead_id(self.leads.contact(i).id));
        }
        report
    }

    /// Give HubSpot contact `index` the modification time `at_ms` (an update, so its values
    /// change as any update's do); returns its id.
    pub(crate) fn redate_hubspot(
        &self,
        contacts: &ContactModel,
        index: usize,
        at_ms: i64,
    ) -> Option<String> {
        if index >= contacts.count() {
            return None;
        }
        let mut inner = self.lock();
        let e = inner.hubspot.entry(index).or_default();
        e.updates += 1;
        e.modified_ms = at_ms;
        Some(contacts.contact(index).id.to_string())
    }

    /// HubSpot contact `i` with its edits; `None` when archived.
    pub(crate) fn hubspot_contact(&self, contacts: &ContactModel, i: usize) -> Option<Contact> {
        let edit = self.lock().hubspot.get(&i).copied();
        apply(contacts.contact(i), edit)
    }

    /// HubSpot contact `i` as its archived record: `(contact, archived at)`.
    pub(crate) fn hubspot_archived(&self, contacts: &ContactModel) -> Vec<(Contact, i64)> {
        let edits: Vec<(usize, Edit)> = self.lock().hubspot.iter().map(|(&i, &e)| (i, e)).collect();
        edits
            .into_iter()
            .filter_map(|(i, e)| {
                let at = e.removed_ms?;
                let c = contacts.contact(i);
                let c = if e.updates > 0 {
                    c.touched(e.modified_ms, e.updates)
                } else {
                    c
                };
                Some((c, at))
            })
            .collect()
    }

    /// Index of the `pos`-th contact that is not archived (list order), if any.
    pub(crate) fn hubspot_live_index(&self, contacts: &ContactModel, pos: usize) -> Option<usize> {
        let inner = self.lock();
        let mut index = pos;
        for (&i, e) in &inner.hubspot {
            if e.removed_ms.is_some() && i <= index {
                index += 1;
            }
        }
        (index < contacts.count()).then_some(index)
    }

    /// Contacts not archived.
    pub(crate) fn hubspot_live_count(&self, contacts: &ContactModel) -> usize {
        let archived = self
            .lock()
            .hubspot
            .values()
            .filter(|e| e.removed_ms.is_some())
            .count();
        contacts.count() - archived
    }

    /// Live contacts with `lastmodifieddate >= from_ms`, ascending by it (then by id):
    /// `(modified ms, index)`.
    pub(crate) fn hubspot_search(
        &self,
        contacts: &ContactModel,
        from_ms: i64,
    ) -> Vec<(i64, usize)> {
        let order = self.hubspot_order.get_or_init(|| {
            let mut order: Vec<(i64, u32)> = (0..contacts.count())
                .map(|i| (contacts.contact(i).modified_ms, i as u32))
                .collect();
            order.sort_unstable();
            order
        });
        let edits = self.lock().hubspot.clone();
        let start = order.partition_point(|&(ms, _)| ms < from_ms);
        let mut hits: Vec<(i64, usize)> = order[start..]
            .iter()
            .map(|&(ms, i)| (ms, i as usize))
            .filter(|(_, i)| !edits.contains_key(i))
            .collect();
        hits.extend(edits.iter().filter_map(|(&i, e)| {
            if e.removed_ms.is_some() {
                return None;
            }
            let ms = contacts.contact(i).modified_ms.max(e.modified_ms);
            (ms >= from_ms).then_some((ms, i))
        }));
        // Ids rise with the index, so (ms, index) is (ms, id).
        hits.sort_unstable();
        hits
    }

    /// Count a HubSpot request against the limits: its usage, or why it is refused.
    pub(crate) fn hubspot_admit(
        &self,
        fingerprint: u64,
    ) -> Result<HubspotUsage, (Refusal, HubspotUsage)> {
        let mut inner = self.lock();
        let limits = inner.hubspot_limits;
        let now = Instant::now();
        let window = Duration::from_millis(limits.interval_ms);
        while inner
            .hubspot_window
            .front()
            .is_some_and(|&t| now.duration_since(t) >= window)
        {
            inner.hubspot_window.pop_front();
        }
        let used = inner.hubspot_window.len() as u64;
        let usage = |used: u64, daily_used: u64| HubspotUsage {
            limits,
            remaining: u64::from(limits.burst).saturating_sub(used),
            daily_remaining: limits.daily.saturating_sub(daily_used),
        };
        let refusal = if inner.hubspot_daily_used >= limits.daily {
            Some(Refusal::Daily)
        } else if used >= u64::from(limits.burst) {
            Some(Refusal::Burst)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            *inner.refusals.entry(fingerprint).or_insert(0) += 1;
            return Err((refusal, usage(used, inner.hubspot_daily_used)));
        }
        inner.hubspot_window.push_back(now);
        inner.hubspot_daily_used += 1;
        Ok(usage(used + 1, inner.hubspot_daily_used))
    }

    pub(crate) fn set_hubspot_limits(&self, limits: HubspotLimits) {
        let mut inner = self.lock();
        inner.hubspot_limits = limits;
        inner.hubspot_window.clear();
        inner.hubspot_daily_used = 0;
    }

    /// `(requests refused, distinct requests refused more than once)`.
    pub(crate) fn refusals(&self) -> (u64, u64) {
        let inner = self.lock();
        (
            inner.refusals.values().map(|&n| u64::from(n)).sum(),
            inner.refusals.values().filter(|&&n| n > 1).count() as u64,
        )
    }

    pub(crate) fn set_salesforce_faults(&self, faults: SalesforceFaults) {
        let mut inner = self.lock();
        inner.faults = faults;
        inner.sf_calls = 0;
        inner.sf_locator_fetches = 0;
    }

    /// A new Salesforce session token.
    pub(crate) fn issue_session(&self) -> String {
        let mut inner = self.lock();
        inner.sf_sessions_issued += 1;
        let token = format!(
            "00Dsandbox!{:016x}",
            super::rng::hash_bytes(self.seed, &inner.sf_sessions_issued.to_le_bytes())
        );
        inner.sf_sessions.insert(token.clone());
        token
    }

    /// Sessions issued so far (one per refresh).
    pub(crate) fn sessions_issued(&self) -> u64 {
        self.lock().sf_sessions_issued
    }

    /// Count one Salesforce API call: `Err` says why it is refused; `Ok` the usage header.
    pub(crate) fn salesforce_call(&self, token: Option<&str>) -> Result<String, SfRefusal> {
        let mut inner = self.lock();
        let valid = token.is_some_and(|t| inner.sf_sessions.contains(t));
        if !valid {
            return Err(SfRefusal::Session);
        }
        let faults = inner.faults;
        if inner.sf_calls >= faults.api_allocation {
            return Err(SfRefusal::Allocation(format!(
                "api-usage={}/{}",
                inner.sf_calls, faults.api_allocation
            )));
        }
        inner.sf_calls += 1;
        if faults.expire_session_after > 0 && inner.sf_calls >= faults.expire_session_after {
            inner.faults.expire_session_after = 0;
            inner.sf_sessions.clear();
            return Err(SfRefusal::Session);
        }
        Ok(format!(
            "api-usage={}/{}",
            inner.sf_calls, faults.api_allocation
        ))
    }

    /// Leads with their edits: `(lead, deleted)`; `include_deleted` as `queryAll`.
    pub(crate) fn salesforce_leads(&self) -> Vec<(usize, Contact, bool)> {
        let edits = self.lock().salesforce.clone();
        (0..self.leads.count())
            .map(|i| {
                let edit = edits.get(&i).copied();
                let lead = self.leads.contact(i);
                let deleted = edit.is_some_and(|e| e.removed_ms.is_some());
                let lead = match edit {
                    Some(e) if e.updates > 0 || deleted => lead.touched(e.modified_ms, e.updates),
                    _ => lead,
                };
                (i, lead, deleted)
            })
            .collect()
    }

    /// Lead `i` with its edits, and whether it is deleted.
    pub(crate) fn salesforce_lead(&self, i: usize) -> (Contact, bool) {
        let edit = self.lock().salesforce.get(&i).copied();
        let lead = self.leads.contact(i);
        match edit {
            Some(e) => (
                lead.touched(e.modified_ms, e.updates),
                e.removed_ms.is_some(),
            ),
            None => (lead, false),
        }
    }

    pub(crate) fn store_locator(&self, locator: Locator) -> String {
        let mut inner = self.lock();
        let id = format!(
            "01g{:015}",
            inner.sf_locators.len() as u64 + 1 + u64::from(inner.round) * 1_000_000
        );
        inner.sf_locators.insert(id.clone(), locator);
        id
    }

    /// The cursor `id`, unless it is unknown or a fault invalidates this fetch.
    pub(crate) fn locator(&self, id: &str) -> Option<Locator> {
        let mut inner = self.lock();
        inner.sf_locator_fetches += 1;
        if inner.faults.invalidate_locator_at > 0
            && inner.sf_locator_fetches >= inner.faults.invalidate_locator_at
        {
            inner.faults.invalidate_locator_at = 0;
            inner.sf_locators.remove(id);
            return None;
        }
        inner.sf_locators.get(id).cloned()
    }
}

/// Why a Salesforce call is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SfRefusal {
    /// No valid session: 401 `INVALID_SESSION_ID`.
    Session,
    /// The allocation is spent: 403 `REQUEST_LIMIT_EXCEEDED`, with the usage header value.
    Allocation(String),
}

fn apply(contact: Contact, edit: Option<Edit>) -> Option<Contact> {
    match edit {
        None => Some(contact),
        Some(e) if e.removed_ms.is_some() => None,
        Some(e) if e.updates > 0 => Some(contact.touched(e.modified_ms, e.updates)),
        Some(_) => Some(contact),
    }
}

/// Distinct indices to update and to remove, never one already removed.
fn pick(
    r: &mut Rng,
    count: usize,
    edits: &BTreeMap<usize, Edit>,
    m: Mutation,
) -> (Vec<usize>, Vec<usize>) {
    let live = count - edits.values().filter(|e| e.removed_ms.is_some()).count();
    let wanted = (m.updates + m.removals).min(live);
    let mut chosen: Vec<usize> = Vec::with_capacity(wanted);
    let mut tries = 0;
    while chosen.len() < wanted && tries < wanted * 50 + 1_000 {
        tries += 1;
        let i = r.below(count as u64) as usize;
        if chosen.contains(&i) || edits.get(&i).is_some_and(|e| e.removed_ms.is_some()) {
            continue;
        }
        chosen.push(i);
    }
    let removed = chosen.split_off(chosen.len().min(m.updates));
    (chosen, removed)
}
