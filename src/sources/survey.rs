//! What the survey connectors share: the eNPS answer scale, and the JSON columns that keep
//! extra rating answers and explicitly kept free text apart from the eNPS score.

use std::collections::BTreeMap;

use compact_str::CompactString;

/// The eNPS answer scale (the one type the eNPS metric reads too).
pub use crate::normalize::EnpsScale as Scale;

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
    columns: [&mut Option<CompactString>; 3],
) -> Option<String> {
    let [department, team, location] = columns;
    let mut others = BTreeMap::new();
    for (dimension, answer) in answers {
        let Some(answer) = answer else { continue };
        match dimension {
            "department" => *department = Some(answer.into()),
            "team" => *team = Some(answer.into()),
            "location" => *location = Some(answer.into()),
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
