//! The ad accounts' model (Google Ads, and Meta and LinkedIn generated alike): accounts,
//! their campaigns, and one metrics row per campaign and day over the days before `today`
//! (rows with no activity omitted, as Google omits them). By default 3–6 campaigns per
//! account over 90 days; a [`Volume`] asks for hundreds of campaigns over a year.
//!
//! Rows are stored, ordered by date then campaign id.

use super::rng::Rng;

/// How many days of spend each account has by default, ending the day before `today`.
pub(crate) const SPEND_WINDOW_DAYS: i64 = 90;
/// The fewest days an account can have: campaigns start within the first two thirds of the
/// window and pauses end ten days before its end.
pub(crate) const MIN_SPEND_DAYS: i64 = 30;

/// How much spend each account of a platform has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Volume {
    /// Campaigns per account; `None` draws 3–6 of the six kinds.
    pub(crate) campaigns: Option<usize>,
    /// Days of spend ending the day before `today` (at least [`MIN_SPEND_DAYS`]).
    pub(crate) days: i64,
}

impl Default for Volume {
    fn default() -> Self {
        Volume {
            campaigns: None,
            days: SPEND_WINDOW_DAYS,
        }
    }
}

const STREAM_CAMPAIGNS: u64 = 0x2001;
const STREAM_DAILY: u64 = 0x2002;

/// One advertising account.
#[derive(Debug)]
pub(crate) struct Customer {
    pub(crate) id: &'static str,
    pub(crate) currency: &'static str,
    pub(crate) descriptive_name: String,
    pub(crate) time_zone: &'static str,
    /// Ordered by campaign id.
    pub(crate) campaigns: Vec<Campaign>,
    /// Ordered by day, then campaign id.
    pub(crate) rows: Vec<SpendRow>,
}

#[derive(Debug, Clone)]
pub(crate) struct Campaign {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) channel: &'static str,
    pub(crate) status: &'static str,
}

/// Metrics of one campaign on one day; `malformed` rows serve an unparseable cost.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SpendRow {
    /// Days since 1970-01-01.
    pub(crate) day: i64,
    /// Index into [`Customer::campaigns`].
    pub(crate) campaign: usize,
    pub(crate) cost_micros: i64,
    pub(crate) impressions: i64,
    pub(crate) clicks: i64,
    pub(crate) malformed: bool,
}

/// `costMicros` text of a malformed row.
pub(crate) const MALFORMED_COST: &str = "12x5";

/// Campaign kinds: name stem, channel, daily spend range in account currency, CPM range,
/// CTR range (per mille).
struct Kind {
    stem: &'static str,
    channel: &'static str,
    daily: (i64, i64),
    cpm: (i64, i64),
    ctr_permille: (i64, i64),
}

const BRAND: Kind = Kind {
    stem: "Brand – Search",
    channel: "SEARCH",
    daily: (40, 120),
    cpm: (20, 60),
    ctr_permille: (50, 90),
};
const GENERIC: Kind = Kind {
    stem: "Generic – Search",
    channel: "SEARCH",
    daily: (150, 400),
    cpm: (25, 70),
    ctr_permille: (25, 50),
};
const OPTIONAL_KINDS: [Kind; 4] = [
    Kind {
        stem: "Competitor – Search",
        channel: "SEARCH",
        daily: (60, 180),
        cpm: (30, 80),
        ctr_permille: (20, 40),
    },
    Kind {
        stem: "Retargeting – Display",
        channel: "DISPLAY",
        daily: (50, 150),
        cpm: (2, 6),
        ctr_permille: (3, 8),
    },
    Kind {
        stem: "PMax – Demo Requests",
        channel: "PERFORMANCE_MAX",
        daily: (100, 300),
        cpm: (8, 20),
        ctr_permille: (10, 30),
    },
    Kind {
        stem: "YouTube – Product Tour",
        channel: "VIDEO",
        daily: (30, 100),
        cpm: (5, 12),
        ctr_permille: (2, 6),
    },
];

/// Mild growth of spend with the number of leads.
fn spend_factor(scale: usize) -> f64 {
    (scale.max(1) as f64 / 1_000.0).powf(0.3).clamp(0.1, 100.0)
}

/// Builds every account's campaigns and rows. `accounts` is `(id, currency)`;
/// `today_days` is `today` in days since the epoch.
pub(crate) fn generate(
    seed: u64,
    scale: usize,
    today_days: i64,
    malformed_every: usize,
    accounts: &[(&'static str, &'static str)],
    volume: Volume,
) -> Vec<Customer> {
    let factor = spend_factor(scale);
    let window = volume.days.max(MIN_SPEND_DAYS);
    // A set, not a list: hundreds of campaigns would make the scan quadratic.
    let mut used_ids = std::collections::HashSet::new();
    let mut row_number = 0usize;
    let mut customers = Vec::with_capacity(accounts.len());
    for (ci, &(id, currency)) in accounts.iter().enumerate() {
        let mut r = Rng::for_record(seed, STREAM_CAMPAIGNS, ci as u64);
        let region = if currency == "EUR" { "EU" } else { "US" };
        let kinds: Vec<&Kind> = match volume.campaigns {
            None => {
                let count = 3 + r.below(4) as usize;
                let mut kinds: Vec<&Kind> = vec![&BRAND, &GENERIC];
                let mut optional: Vec<&Kind> = OPTIONAL_KINDS.iter().collect();
                while kinds.len() < count && !optional.is_empty() {
                    let i = r.below(optional.len() as u64) as usize;
                    kinds.push(optional.remove(i));
                }
                kinds
            }
            // Many campaigns: every kind in turn, so each channel has its share.
            Some(n) => [&BRAND, &GENERIC]
                .into_iter()
                .chain(&OPTIONAL_KINDS)
                .cycle()
                .take(n)
                .collect(),
        };
        let mut plans: Vec<(Campaign, Plan)> = kinds
            .iter()
            .enumerate()
            .map(|(k, kind)| {
                let mut cid = r.range(1_000_000_000, 99_999_999_999) as u64;
                while used_ids.contains(&cid) {
                    cid = r.range(1_000_000_000, 99_999_999_999) as u64;
                }
                used_ids.insert(cid);
                let name = match volume.campaigns {
                    None => format!("{} {region}", kind.stem),
                    Some(_) => format!("{} {region} {:03}", kind.stem, k + 1),
                };
                let campaign = Campaign {
                    id: cid,
                    name,
                    channel: kind.channel,
                    status: "ENABLED",
                };
                (campaign, Plan::new(&mut r, kind, k < 2, factor, window))
            })
            .collect();
        plans.sort_by_key(|(c, _)| c.id);

        let first_day = today_days - window;
        let mut rows = Vec::new();
        for offset in 0..window {
            let day = first_day + offset;
            for (index, (campaign, plan)) in plans.iter().enumerate() {
                let mut dr = Rng::for_record(seed ^ campaign.id, STREAM_DAILY, day as u64);
                if let Some((cost_micros, impressions, clicks)) = plan.day(&mut dr, offset, day) {
                    row_number += 1;
                    rows.push(SpendRow {
                        day,
                        campaign: index,
                        cost_micros,
                        impressions,
                        clicks,
                        malformed: malformed_every > 0
                            && row_number.is_multiple_of(malformed_every),
                    });
                }
            }
        }
        customers.push(Customer {
            id,
            currency,
            descriptive_name: format!("Funnelhouse Demo {region}"),
            time_zone: if currency == "EUR" {
                "Europe/Berlin"
            } else {
                "America/New_York"
            },
            campaigns: plans.into_iter().map(|(c, _)| c).collect(),
            rows,
        });
    }
    customers
}

/// Per-campaign spending behaviour.
#[derive(Debug, Clone, Copy)]
struct Plan {
    daily_micros: f64,
    cpm_micros: f64,
    ctr: f64,
    first_active: i64,
    paused: (i64, i64),
    free_impressions: bool,
}

impl Plan {
    fn new(r: &mut Rng, kind: &Kind, always_on: bool, factor: f64, window: i64) -> Self {
        let daily = r.range(kind.daily.0, kind.daily.1) as f64 * factor;
        let first_active = if always_on || r.chance(0.5) {
            0
        } else {
            r.range(5, window * 2 / 3)
        };
        let paused = if !always_on && r.chance(0.4) {
            let start = r.range(first_active, window - 10);
            (start, start + r.range(3, 9))
        } else {
            (-1, -1)
        };
        Self {
            daily_micros: daily * 1e6,
            cpm_micros: r.range(kind.cpm.0, kind.cpm.1) as f64 * 1e6,
            ctr: r.range(kind.ctr_permille.0, kind.ctr_permille.1) as f64 / 1_000.0,
            first_active,
            paused,
            free_impressions: matches!(kind.channel, "DISPLAY" | "VIDEO"),
        }
    }

    /// `(cost_micros, impressions, clicks)` on window day `offset`, `None` when the
    /// campaign did nothing (Google omits such rows).
    fn day(&self, r: &mut Rng, offset: i64, day: i64) -> Option<(i64, i64, i64)> {
        if offset < self.first_active || (self.paused.0..self.paused.1).contains(&offset) {
            return None;
        }
        // 1970-01-01 was a Thursday; Monday = 0.
        let weekday = (day + 3).rem_euclid(7);
        let weekday_factor = if weekday >= 5 { 0.65 } else { 1.0 };
        if self.free_impressions && r.chance(0.04) {
            // Served but not charged (budget cap reached, view-through): cost and clicks 0.
            return Some((0, r.range(1, 400), 0));
        }
        let cost = self.daily_micros * weekday_factor * (0.6 + 0.8 * r.f64());
        let cost_micros = ((cost / 10_000.0).round() as i64) * 10_000;
        let impressions = (cost / self.cpm_micros * 1_000.0 * (0.85 + 0.3 * r.f64())).round();
        let clicks = (impressions * self.ctr * (0.7 + 0.6 * r.f64())).round();
        let (impressions, clicks) = (impressions as i64, clicks as i64);
        (cost_micros > 0 || impressions > 0 || clicks > 0).then_some((
            cost_micros,
            impressions,
            clicks,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i64 = 20_777; // 2026-11-20

    fn accounts() -> [(&'static str, &'static str); 2] {
        [("1112223334", "EUR"), ("5556667778", "USD")]
    }

    #[test]
    fn campaigns_and_rows_are_plausible() {
        let customers = generate(42, 1_000, TODAY, 0, &accounts(), Volume::default());
        assert_eq!(customers.len(), 2);
        for c in &customers {
            assert!((3..=6).contains(&c.campaigns.len()));
            assert!(c.campaigns.windows(2).all(|w| w[0].id < w[1].id));
            assert!(c.campaigns.iter().filter(|k| k.channel == "SEARCH").count() >= 2);
            for k in &c.campaigns {
                let digits = k.id.to_string().len();
                assert!((10..=11).contains(&digits), "{}", k.id);
            }
            assert!(c.rows.windows(2).all(|w| {
                (w[0].day, c.campaigns[w[0].campaign].id)
                    < (w[1].day, c.campaigns[w[1].campaign].id)
            }));
            assert!(c.rows.iter().all(|r| r.day < TODAY && r.day >= TODAY - 90));
            assert!(
                c.rows
                    .iter()
                    .all(|r| r.cost_micros > 0 || r.impressions > 0 || r.clicks > 0)
            );
            assert!(c.rows.iter().all(|r| r.cost_micros % 10_000 == 0));
            assert!(c.rows.len() >= 90 * 2);
        }
    }

    #[test]
    fn some_rows_have_impressions_without_cost() {
        let zero_cost = (0..5)
            .flat_map(|seed| generate(seed, 1_000, TODAY, 0, &accounts(), Volume::default()))
            .flat_map(|c| c.rows)
            .filter(|r| r.cost_micros == 0 && r.impressions > 0)
            .count();
        assert!(zero_cost > 0);
    }

    #[test]
    fn malformed_rows_are_every_nth_across_accounts() {
        let customers = generate(1, 1_000, TODAY, 25, &accounts(), Volume::default());
        let flags: Vec<bool> = customers
            .iter()
            .flat_map(|c| c.rows.iter().map(|r| r.malformed))
            .collect();
        for (i, f) in flags.iter().enumerate() {
            assert_eq!(*f, (i + 1) % 25 == 0);
        }
    }

    #[test]
    fn a_volume_serves_its_campaigns_over_its_days() {
        let volume = Volume {
            campaigns: Some(40),
            days: 365,
        };
        let customers = generate(42, 1_000, TODAY, 200, &accounts()[..1], volume);
        let c = &customers[0];
        assert_eq!(c.campaigns.len(), 40);
        assert!(c.campaigns.windows(2).all(|w| w[0].id < w[1].id));
        let names: std::collections::HashSet<_> = c.campaigns.iter().map(|k| &k.name).collect();
        assert_eq!(names.len(), 40, "campaign names are unique");
        assert!(c.rows.iter().all(|r| r.day < TODAY && r.day >= TODAY - 365));
        assert!(c.rows.iter().any(|r| r.day == TODAY - 365));
        // Most campaign-days spend (a few start late or pause).
        assert!(c.rows.len() > 40 * 365 * 3 / 4, "{} rows", c.rows.len());
        let malformed = c.rows.iter().filter(|r| r.malformed).count();
        assert_eq!(malformed, c.rows.len() / 200);
    }

    #[test]
    fn the_default_volume_is_the_small_shape() {
        let default = generate(42, 1_000, TODAY, 0, &accounts(), Volume::default());
        let explicit = generate(
            42,
            1_000,
            TODAY,
            0,
            &accounts(),
            Volume {
                campaigns: None,
                days: 90,
            },
        );
        assert_eq!(default[0].rows.len(), explicit[0].rows.len());
        assert!(default.iter().all(|c| (3..=6).contains(&c.campaigns.len())));
    }
}
