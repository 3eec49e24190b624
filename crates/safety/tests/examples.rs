//! The project-authored examples (`data/examples.jsonl`): every unsafe row reaches at least its level
//! and scores in its category; every safe row (homonyms, kid chat) stays at or below its level.

use std::collections::HashSet;

use onda_safety::{Category, Context, Role, assess};
use serde::Deserialize;

#[derive(Deserialize)]
struct Example {
    text: String,
    #[serde(rename = "unsafe")]
    label: u8,
    category: String,
    role: Role,
    level: u8,
    /// The child's age, when the row is about how the engine reads a young child.
    #[serde(default)]
    age: Option<u8>,
}

fn examples() -> Vec<Example> {
    include_str!("../data/examples.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad example {l}: {e}")))
        .collect()
}

#[test]
fn every_example_gets_its_level() {
    let mut failures = Vec::new();
    for ex in examples() {
        let ctx = Context { role: ex.role, age: ex.age, ..Context::default() };
        let v = assess(&ex.text, &ctx);
        let category =
            Category::from_name(&ex.category).unwrap_or_else(|| panic!("category {}", ex.category));
        if ex.label == 1 {
            if v.level < ex.level || v.categories.get(category) <= 0.0 {
                failures.push(format!(
                    "UNSAFE {:?} {:?} (age {:?}) expected >= {} in {}, got {} {:?}",
                    ex.role, ex.text, ex.age, ex.level, ex.category, v.level, v.reasons
                ));
            }
        } else if v.level > ex.level {
            failures.push(format!(
                "SAFE {:?} {:?} expected <= {}, got {} {:?}",
                ex.role, ex.text, ex.level, v.level, v.reasons
            ));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_category_has_positive_and_negative_examples_for_both_roles() {
    let mut seen = HashSet::new();
    for ex in examples() {
        seen.insert((ex.category.clone(), ex.role, ex.label));
    }
    let mut missing = Vec::new();
    for c in Category::ALL {
        for role in [Role::Child, Role::Assistant] {
            for label in [0, 1] {
                if !seen.contains(&(c.name().to_string(), role, label)) {
                    missing.push(format!("{} {:?} unsafe={label}", c.name(), role));
                }
            }
        }
    }
    assert!(missing.is_empty(), "missing examples: {missing:?}");
}
