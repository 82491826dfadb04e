//! What the survey connectors share: the eNPS answer scale, and the JSON columns that keep
//! extra rating answers and explicitly kept free text apart from the eNPS score.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The eNPS answer scale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Scale {
    /// 0 to 10 (the standard).
    #[default]
    #[serde(rename = "0-10")]
    ZeroToTen,
    /// 1 to 10 (some tools).
    #[serde(rename = "1-10")]
    OneToTen,
}

impl Scale {
    /// The lowest valid answer.
    pub fn min(self) -> i64 {
        match self {
            Scale::ZeroToTen => 0,
            Scale::OneToTen => 1,
        }
    }

    /// `Err` with a reject reason when `score` is off the scale.
    pub fn check(self, score: i64) -> Result<i64, String> {
        if (self.min()..=10).contains(&score) {
            Ok(score)
        } else {
            Err(format!(
                "eNPS answer {score} is outside the {}-10 scale",
                self.min()
            ))
        }
    }

    /// The score of a choice at 1-based `position` in a list of answer choices: the
    /// 0-based index on a 0–10 scale, the position itself on a 1–10 scale.
    pub fn score_of_position(self, position: i64) -> i64 {
        match self {
            Scale::ZeroToTen => position - 1,
            Scale::OneToTen => position,
        }
    }
}

/// `group_questions` of a survey source: grouping dimension → the question (Typeform field
/// ref, SurveyMonkey question id) whose chosen answer is the respondent's group. The answer
/// wins over the hidden field or custom variable of the same dimension.
pub type GroupQuestions = BTreeMap<String, String>;

/// Problems with a source's `group_questions`; `enps` is the eNPS question, which cannot
/// also be a group.
pub fn check_group_questions(groups: &GroupQuestions, enps: &str) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    for (dimension, question) in groups {
        if let Err(e) = crate::metrics::config::check_dimension_name(dimension) {
            problems.push(("group_questions", e));
        }
        if question.trim().is_empty() {
            problems.push((
                "group_questions",
                format!("`{dimension}` names no question"),
            ));
        } else if question == enps {
            problems.push((
                "group_questions",
                format!("`{dimension}`: `{question}` is the eNPS question"),
            ));
        }
    }
    problems
}

/// Sort a response's groups from answers into the three group columns and the `groups`
/// JSON column: `answers` are `(dimension, chosen answer)`; an answer replaces the column's
/// hidden-field value, an unanswered question leaves it.
pub fn place_groups(
    answers: Vec<(&str, Option<String>)>,
    columns: [&mut Option<String>; 3],
) -> Option<String> {
    let [department, team, location] = columns;
    let mut others = BTreeMap::new();
    for (dimension, answer) in answers {
        let Some(answer) = answer else { continue };
        match dimension {
            "department" => *department = Some(answer),
            "team" => *team = Some(answer),
            "location" => *location = Some(answer),
            other => {
                others.insert(other.to_string(), answer);
            }
        }
    }
    json_column(others)
}

/// A JSON object column (`{"ref": value}`), or null when empty; keys sorted so reruns
/// write identical bytes.
pub fn json_column<V: serde::Serialize>(values: BTreeMap<String, V>) -> Option<String> {
    if values.is_empty() {
        None
    } else {
        serde_json::to_string(&values).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_map_to_scores_per_scale() {
        assert_eq!(Scale::ZeroToTen.score_of_position(1), 0);
        assert_eq!(Scale::ZeroToTen.score_of_position(11), 10);
        assert_eq!(Scale::OneToTen.score_of_position(10), 10);
        assert!(Scale::OneToTen.check(0).is_err());
        assert_eq!(Scale::ZeroToTen.check(0), Ok(0));
        assert!(Scale::ZeroToTen.check(11).is_err());
        let mut m = BTreeMap::new();
        assert_eq!(json_column::<i64>(m.clone()), None);
        m.insert("b".to_string(), 2);
        m.insert("a".to_string(), 1);
        assert_eq!(json_column(m).as_deref(), Some(r#"{"a":1,"b":2}"#));
    }
}
