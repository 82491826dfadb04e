//! The eNPS answer scale: what an answer to the eNPS question of `survey_responses` can be.
//! One type for both ends, so the survey sources (which reject answers off the scale) and
//! the eNPS metric (which buckets answers into promoters, passives and detractors) read
//! the same words in a job file the same way.

use serde::Deserialize;

/// The eNPS answer scale (`scale = "0-10"` or `"1-10"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum EnpsScale {
    /// 0 to 10 (the standard; detractors 0–6).
    #[default]
    #[serde(rename = "0-10")]
    ZeroToTen,
    /// 1 to 10 (some tools; detractors 1–6).
    #[serde(rename = "1-10")]
    OneToTen,
}

impl EnpsScale {
    /// The highest valid answer, whatever the scale.
    pub const MAX: i64 = 10;

    /// The lowest valid answer.
    pub fn min(self) -> i64 {
        match self {
            EnpsScale::ZeroToTen => 0,
            EnpsScale::OneToTen => 1,
        }
    }

    /// `Err` with a reject reason when `score` is off the scale.
    pub fn check(self, score: i64) -> Result<i64, String> {
        if self.contains(score) {
            Ok(score)
        } else {
            Err(format!(
                "eNPS answer {score} is outside the {} scale",
                self.label()
            ))
        }
    }

    /// Is `score` on the scale?
    pub fn contains(self, score: i64) -> bool {
        (self.min()..=Self::MAX).contains(&score)
    }

    /// The scale as a job file writes it (`0-10`, `1-10`).
    pub fn label(self) -> &'static str {
        match self {
            EnpsScale::ZeroToTen => "0-10",
            EnpsScale::OneToTen => "1-10",
        }
    }

    /// The score of a choice at 1-based `position` in a list of answer choices: the
    /// 0-based index on a 0–10 scale, the position itself on a 1–10 scale.
    pub fn score_of_position(self, position: i64) -> i64 {
        match self {
            EnpsScale::ZeroToTen => position - 1,
            EnpsScale::OneToTen => position,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_off_the_scale_are_named_with_it() {
        assert!(EnpsScale::OneToTen.contains(1) && !EnpsScale::OneToTen.contains(0));
        assert!(EnpsScale::ZeroToTen.contains(0) && !EnpsScale::ZeroToTen.contains(11));
        assert_eq!(
            EnpsScale::ZeroToTen.check(11),
            Err("eNPS answer 11 is outside the 0-10 scale".into())
        );
        assert_eq!(EnpsScale::default(), EnpsScale::ZeroToTen);
    }
}
