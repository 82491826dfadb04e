//! The Typeform model: an employee pulse survey (`pulse2026`) — employees with department,
//! team and location, and their roughly monthly completed responses over the 120 days
//! before `today` (eNPS, workload, manager support, optional comment and work e-mail).
//!
//! Responses are stored newest first (ties broken by token, descending), which is the
//! order the API serves; a token index answers `before=<token>`.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::rng::{Rng, hash_bytes};

/// How far back responses are submitted, before `today`.
pub(crate) const SURVEY_WINDOW_DAYS: i64 = 120;
/// Pulse rounds per employee over the window (monthly).
const ROUNDS: i64 = 4;
const ROUND_DAYS: i64 = 30;
const RESPONSE_RATE: f64 = 0.8;
/// The eNPS value a malformed response carries (outside 0–10).
pub(crate) const MALFORMED_ENPS: u8 = 14;

const STREAM_EMPLOYEE: u64 = 0x3001;
const STREAM_TOKEN: u64 = 0x3002;

/// `(department, teams, weight)`; People is not drawn by weight (it has a fixed handful of
/// employees at every scale, so its groups stay below the anonymity threshold).
const DEPARTMENTS: &[(&str, &[&str], u32)] = &[
    (
        "Engineering",
        &["Platform", "Data", "Frontend", "Mobile"],
        36,
    ),
    ("Sales", &["EMEA Sales", "North America Sales", "SDR"], 22),
    ("Support", &["Tier 1", "Tier 2"], 18),
    (
        "Marketing",
        &["Demand Gen", "Content", "Product Marketing"],
        13,
    ),
    ("Finance", &["Accounting", "FP&A"], 4),
    ("People", &["Talent", "HR Ops"], 0),
];
const PEOPLE: usize = 5;
const FINANCE: usize = 4;
/// `(location, weight)`; Tallinn is the tiny office (a fixed three employees).
const LOCATIONS: &[(&str, u32)] = &[
    ("Berlin", 35),
    ("London", 25),
    ("New York", 22),
    ("Lisbon", 18),
    ("Tallinn", 0),
];
const TALLINN: usize = 4;
const FIXED_PEOPLE: usize = 4;
const FIXED_TALLINN: usize = 3;

/// Base eNPS of an employee: a plausible mix of promoters, passives and detractors.
const BASE_SCORES: &[(u8, u32)] = &[
    (0, 2),
    (1, 1),
    (2, 2),
    (3, 3),
    (4, 4),
    (5, 6),
    (6, 8),
    (7, 16),
    (8, 20),
    (9, 20),
    (10, 18),
];

pub(crate) const COMMENTS: &[&str] = &[
    "More focus time would help, too many meetings.",
    "Great team, unclear roadmap.",
    "I feel supported by my manager.",
    "On-call load has been heavy this month.",
    "Love the flexibility to work remotely.",
    "Salary bands are not transparent.",
    "Onboarding was smooth, thanks!",
    "Tooling is slow; builds take forever.",
    "Would like more career growth conversations.",
    "Cross-team communication could be better.",
    "Workload is fine — quieter after the launch.",
    "Proud of what we shipped this quarter.",
];

const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
];

const EMAIL_FIRST: &[&str] = &[
    "alex", "billie", "casey", "dana", "eli", "frankie", "gabi", "harper", "indy", "jo", "kai",
    "lou", "morgan", "nico", "oli", "pat", "robin", "sam", "toni", "vic",
];
const EMAIL_LAST: &[&str] = &[
    "akers", "bauer", "carvalho", "dietz", "evans", "ferreira", "gruber", "hale", "ito", "jansen",
    "keller", "lind", "moss", "nagel", "ortiz", "pohl", "quist", "reyes",
];

#[derive(Debug, Clone)]
pub(crate) struct Employee {
    pub(crate) number: u32,
    pub(crate) department: usize,
    pub(crate) team: &'static str,
    pub(crate) location: usize,
    pub(crate) network_id: u64,
    email_first: &'static str,
    email_last: &'static str,
    base_score: u8,
}

impl Employee {
    /// `E0123`.
    pub(crate) fn employee_id(&self) -> String {
        format!("E{:04}", self.number)
    }

    /// Ten lowercase hex digits, like Typeform's hashed network id.
    pub(crate) fn network_id_hex(&self) -> String {
        format!("{:010x}", self.network_id)
    }

    pub(crate) fn email(&self) -> String {
        format!(
            "{}.{}.{}@staff.brightloom.example",
            self.email_first, self.email_last, self.number
        )
    }

    pub(crate) fn department_name(&self) -> &'static str {
        DEPARTMENTS[self.department].0
    }

    pub(crate) fn location_name(&self) -> &'static str {
        LOCATIONS[self.location].0
    }

    /// The employee's tenure band (asked as a dropdown question, never a hidden field).
    pub(crate) fn tenure(&self) -> &'static str {
        TENURES[self.number as usize % TENURES.len()]
    }
}

/// Every team, in department order: the choices of the "Which team are you in?" question
/// both survey tools ask (its answer is the same team the hidden field carries). An
/// iterator, not a list: a twin looks a team's position up per response.
pub(crate) fn teams() -> impl Iterator<Item = &'static str> {
    DEPARTMENTS
        .iter()
        .flat_map(|(_, teams, _)| teams.iter().copied())
}

/// The choices of the Typeform tenure dropdown.
pub(crate) const TENURES: [&str; 4] = ["Less than 1 year", "1-2 years", "2-5 years", "5+ years"];

/// One completed response; times are epoch seconds.
#[derive(Debug, Clone)]
pub(crate) struct SurveyResponse {
    pub(crate) token: [u8; 32],
    pub(crate) submitted_s: i64,
    pub(crate) landed_s: i64,
    pub(crate) employee: usize,
    pub(crate) workload: Option<u8>,
    /// As served: `MALFORMED_ENPS` when `malformed`.
    pub(crate) enps: Option<u8>,
    pub(crate) manager_support: Option<u8>,
    pub(crate) comment: Option<usize>,
    pub(crate) work_email: bool,
    pub(crate) user_agent: usize,
    pub(crate) malformed: bool,
}

impl SurveyResponse {
    pub(crate) fn token_str(&self) -> &str {
        std::str::from_utf8(&self.token).unwrap_or("")
    }

    pub(crate) fn user_agent(&self) -> &'static str {
        USER_AGENTS[self.user_agent % USER_AGENTS.len()]
    }
}

#[derive(Debug)]
pub(crate) struct Survey {
    pub(crate) employees: Vec<Employee>,
    /// Newest first; ties by token descending.
    pub(crate) responses: Vec<SurveyResponse>,
    by_token: HashMap<[u8; 32], usize>,
}

fn new_token(r: &mut Rng) -> [u8; 32] {
    const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut token = [0u8; 32];
    for slot in &mut token {
        *slot = ALPHABET[r.below(36) as usize];
    }
    token
}

impl Survey {
    /// About `max(30, scale / 5)` responses, at least 30. `end_s` is midnight UTC of
    /// `today` in epoch seconds.
    pub(crate) fn generate(seed: u64, scale: usize, end_s: i64, malformed_every: usize) -> Self {
        let target = (scale / 5).max(30);
        let per_employee = ROUNDS as f64 * RESPONSE_RATE;
        let mut employee_count = ((target as f64 / per_employee).ceil() as usize).max(12);
        let start_s = end_s - SURVEY_WINDOW_DAYS * 86_400;
        let mut employees = Vec::with_capacity(employee_count);
        let mut responses = Vec::with_capacity(target + target / 8);
        let mut tokens = HashSet::with_capacity(target + target / 8);
        let mut token_rng = Rng::for_record(seed, STREAM_TOKEN, 0);
        let mut e = 0;
        while e < employee_count || responses.len() < 30 {
            let mut r = Rng::for_record(seed, STREAM_EMPLOYEE, e as u64);
            let employee = Self::employee(&mut r, e);
            let t0 = r.range(0, ROUND_DAYS * 86_400 - 1);
            for round in 0..ROUNDS {
                if !r.chance(RESPONSE_RATE) {
                    continue;
                }
                let submitted =
                    start_s + t0 + round * ROUND_DAYS * 86_400 + r.range(-2 * 86_400, 2 * 86_400);
                if submitted < start_s || submitted >= end_s {
                    continue;
                }
                let mut token = new_token(&mut token_rng);
                while !tokens.insert(token) {
                    token = new_token(&mut token_rng);
                }
                let noise = r.weighted(&[(-1i16, 2), (0, 6), (1, 2)]);
                let score = (i16::from(employee.base_score) + noise).clamp(0, 10) as u8;
                responses.push(SurveyResponse {
                    token,
                    submitted_s: submitted,
                    landed_s: submitted - r.range(20, 900),
                    employee: e,
                    workload: (!r.chance(0.03)).then(|| r.range(1, 10) as u8),
                    enps: (!r.chance(0.05)).then_some(score),
                    manager_support: (!r.chance(0.07))
                        .then(|| r.weighted(&[(1u8, 5), (2, 10), (3, 25), (4, 35), (5, 25)])),
                    comment: r
                        .chance(0.3)
                        .then(|| r.below(COMMENTS.len() as u64) as usize),
                    work_email: r.chance(0.25),
                    user_agent: r.below(USER_AGENTS.len() as u64) as usize,
                    malformed: false,
                });
            }
            employees.push(employee);
            e += 1;
            employee_count = employee_count.max(e);
        }
        responses.sort_by(|a, b| {
            b.submitted_s
                .cmp(&a.submitted_s)
                .then_with(|| b.token.cmp(&a.token))
        });
        for (pos, response) in responses.iter_mut().enumerate() {
            if malformed_every > 0 && (pos + 1).is_multiple_of(malformed_every) {
                response.malformed = true;
                response.enps = Some(MALFORMED_ENPS);
            }
        }
        let by_token = responses
            .iter()
            .enumerate()
            .map(|(pos, r)| (r.token, pos))
            .collect();
        Self {
            employees,
            responses,
            by_token,
        }
    }

    fn employee(r: &mut Rng, e: usize) -> Employee {
        let location_weights: Vec<(usize, u32)> = LOCATIONS
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.1))
            .collect();
        let department_weights: Vec<(usize, u32)> = DEPARTMENTS
            .iter()
            .enumerate()
            .map(|(i, d)| (i, d.2))
            .collect();
        let (department, location) = if e < FIXED_PEOPLE {
            (PEOPLE, r.below(2) as usize)
        } else if e == FIXED_PEOPLE {
            (FINANCE, r.weighted(&location_weights))
        } else if e <= FIXED_PEOPLE + FIXED_TALLINN {
            (r.weighted(&[(0usize, 1), (2, 1)]), TALLINN)
        } else {
            (
                r.weighted(&department_weights),
                r.weighted(&location_weights),
            )
        };
        let team = *r.pick(DEPARTMENTS[department].1);
        let mut base_score = r.weighted(BASE_SCORES);
        if DEPARTMENTS[department].0 == "Support" && r.chance(0.3) {
            base_score = base_score.saturating_sub(1);
        }
        let network_id = r.next_u64() & 0xff_ffff_ffff;
        let email_first = *r.pick(EMAIL_FIRST);
        let email_last = *r.pick(EMAIL_LAST);
        Employee {
            number: 101 + e as u32,
            department,
            team,
            location,
            network_id,
            email_first,
            email_last,
            base_score,
        }
    }

    /// Position of the response with this token in serving order.
    pub(crate) fn position(&self, token: &str) -> Option<usize> {
        let key: [u8; 32] = token.as_bytes().try_into().ok()?;
        self.by_token.get(&key).copied()
    }

    /// Every raw identifier the served data contains: employee ids and network ids of
    /// employees who responded, and every work e-mail answered. Sorted, unique.
    pub(crate) fn raw_identifiers(&self) -> Vec<String> {
        let mut out = BTreeSet::new();
        for response in &self.responses {
            let employee = &self.employees[response.employee];
            out.insert(employee.employee_id());
            out.insert(employee.network_id_hex());
            if response.work_email {
                out.insert(employee.email());
            }
        }
        out.into_iter().collect()
    }
}

/// Is this response one the respondent left unfinished (SurveyMonkey-only: Typeform serves
/// completed responses)? About one in ten.
pub(crate) fn is_partial(r: &SurveyResponse) -> bool {
    hash_bytes(0x5301, &r.token).is_multiple_of(10)
}

/// How many of the survey's responses (newest first) before each position are partial:
/// `counts[i]` for `responses[..i]`, so any run of responses counts its partial ones in O(1).
#[derive(Debug)]
pub(crate) struct PartialCounts(Vec<u32>);

impl PartialCounts {
    pub(crate) fn of(responses: &[SurveyResponse]) -> Self {
        let mut counts = Vec::with_capacity(responses.len() + 1);
        let mut partial = 0u32;
        counts.push(0);
        for r in responses {
            partial += u32::from(is_partial(r));
            counts.push(partial);
        }
        PartialCounts(counts)
    }

    /// Partial responses among `responses[from..to]`.
    pub(crate) fn between(&self, from: usize, to: usize) -> usize {
        (self.0[to] - self.0[from]) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const END_S: i64 = 1_795_132_800;

    #[test]
    fn responses_are_sorted_unique_and_in_window() {
        let s = Survey::generate(42, 1_000, END_S, 0);
        assert!(
            (150..=260).contains(&s.responses.len()),
            "{}",
            s.responses.len()
        );
        let start_s = END_S - SURVEY_WINDOW_DAYS * 86_400;
        let mut tokens = HashSet::new();
        for w in s.responses.windows(2) {
            assert!(
                (w[0].submitted_s, w[0].token) > (w[1].submitted_s, w[1].token),
                "order"
            );
        }
        for (pos, r) in s.responses.iter().enumerate() {
            assert!(tokens.insert(r.token));
            assert!(r.submitted_s >= start_s && r.submitted_s < END_S);
            assert!(r.landed_s < r.submitted_s);
            assert_eq!(s.position(r.token_str()), Some(pos));
            assert!(r.token_str().len() == 32);
        }
    }

    #[test]
    fn small_scales_still_have_thirty_responses() {
        for seed in 0..20 {
            let s = Survey::generate(seed, 1, END_S, 0);
            assert!(
                s.responses.len() >= 30,
                "seed {seed}: {}",
                s.responses.len()
            );
        }
    }

    #[test]
    fn small_groups_exist_and_scores_are_mixed() {
        let s = Survey::generate(42, 1_000, END_S, 0);
        let mut per_dept_month: BTreeMap<(&str, i64), usize> = BTreeMap::new();
        let mut buckets = [0usize; 3];
        for r in &s.responses {
            let e = &s.employees[r.employee];
            *per_dept_month
                .entry((e.department_name(), r.submitted_s / (30 * 86_400)))
                .or_default() += 1;
            match r.enps {
                Some(9..=10) => buckets[0] += 1,
                Some(7..=8) => buckets[1] += 1,
                Some(_) => buckets[2] += 1,
                None => {}
            }
        }
        assert!(per_dept_month.values().any(|&n| n < 5));
        assert!(per_dept_month.values().any(|&n| n >= 5));
        assert!(buckets.iter().all(|&b| b > 10), "{buckets:?}");
        let tallinn = s
            .employees
            .iter()
            .filter(|e| e.location_name() == "Tallinn")
            .count();
        assert_eq!(tallinn, FIXED_TALLINN);
    }

    #[test]
    fn malformed_responses_carry_out_of_range_enps() {
        let s = Survey::generate(3, 1_000, END_S, 9);
        for (pos, r) in s.responses.iter().enumerate() {
            assert_eq!(r.malformed, (pos + 1) % 9 == 0);
            if r.malformed {
                assert_eq!(r.enps, Some(MALFORMED_ENPS));
            } else {
                assert!(r.enps.is_none_or(|v| v <= 10));
            }
        }
    }
}
