//! What the buddy remembers: the recent turns that fit a token budget (estimated at ~4 characters per
//! token), and an extractive summary of the older ones, stored with the conversation. No model call:
//! the summary keeps the first sentence of each of the child's older messages (already redacted), the
//! newest last, within [`SUMMARY_MAX_CHARS`].

use crate::storage::MessageRow;

/// Tokens of recent turns sent with each request (the system prompt comes on top).
pub const MEMORY_TOKEN_BUDGET: usize = 1200;
pub const SUMMARY_MAX_CHARS: usize = 600;
const ITEM_MAX_CHARS: usize = 100;
const SEPARATOR: &str = " | ";

pub fn estimate_tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 4
}

/// Whether a stored message belongs in the model's memory: not a blocked or crisis message, and not a
/// fixed answer written by people (those have no provider).
pub fn remembered(row: &MessageRow) -> bool {
    match row.role.as_str() {
        "child" => row.level <= 2,
        _ => row.provider.is_some(),
    }
}

/// Splits the unsummarised messages (oldest first; the last is the child's new message) into those to
/// fold into the summary and those to send. Returns the seq of the last folded message, if any, and the
/// remembered messages to send.
pub fn plan(rows: &[MessageRow], budget: usize) -> (Option<i64>, Vec<&MessageRow>) {
    let mut used = 0;
    let mut cut = rows.len();
    for (i, row) in rows.iter().enumerate().rev() {
        let cost = if remembered(row) { estimate_tokens(&row.text) } else { 0 };
        // The newest message is always sent.
        if i + 1 < rows.len() && used + cost > budget {
            break;
        }
        used += cost;
        cut = i;
    }
    let folded_through = cut.checked_sub(1).map(|i| rows[i].seq);
    (folded_through, rows[cut..].iter().filter(|r| remembered(r)).collect())
}

fn first_sentence(text: &str) -> String {
    let end = text.find(['.', '!', '?', '\n']).map_or(text.len(), |i| i + 1);
    let sentence = text[..end].trim();
    if sentence.chars().count() <= ITEM_MAX_CHARS {
        sentence.to_string()
    } else {
        let cut: String = sentence.chars().take(ITEM_MAX_CHARS).collect();
        format!("{}…", cut.trim_end())
    }
}

/// The summary with the folded messages added: the first sentence of each of the child's remembered
/// messages, oldest dropped first when it grows past [`SUMMARY_MAX_CHARS`].
pub fn extend_summary(summary: &str, folded: &[MessageRow]) -> String {
    let mut items: Vec<String> =
        summary.split(SEPARATOR).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
    items.extend(
        folded
            .iter()
            .filter(|r| r.role == "child" && remembered(r))
            .map(|r| first_sentence(&r.text))
            .filter(|s| !s.is_empty()),
    );
    while items.len() > 1
        && items.iter().map(|s| s.len() + SEPARATOR.len()).sum::<usize>() > SUMMARY_MAX_CHARS
    {
        items.remove(0);
    }
    items.join(SEPARATOR)
}

/// The summary as the system prompt reads it.
pub fn summary_for_prompt(summary: &str) -> String {
    if summary.is_empty() {
        return String::new();
    }
    format!("the child said things like: {summary}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, role: &str, text: &str, level: i64, provider: Option<&str>) -> MessageRow {
        MessageRow {
            id: format!("m{seq}"),
            conversation_id: "c".into(),
            child_id: "k".into(),
            seq,
            role: role.into(),
            text: text.into(),
            level,
            verdict: "{}".into(),
            provider: provider.map(str::to_string),
            model: None,
            first_token_ms: None,
            total_ms: None,
            whisper: false,
            created_at: 0,
        }
    }

    #[test]
    fn recent_turns_fit_the_budget_and_older_ones_fold() {
        let long = "x".repeat(400); // ~104 tokens
        let mut rows = Vec::new();
        for i in 0..20 {
            rows.push(row(2 * i + 1, "child", &format!("I like topic {i}. {long}"), 0, None));
            rows.push(row(2 * i + 2, "assistant", &long, 0, Some("local")));
        }
        rows.push(row(41, "child", "And now?", 0, None));
        let (through, kept) = plan(&rows, MEMORY_TOKEN_BUDGET);
        let through = through.expect("something folds");
        assert!(kept.iter().map(|r| estimate_tokens(&r.text)).sum::<usize>() <= MEMORY_TOKEN_BUDGET);
        assert_eq!(kept.last().map(|r| r.seq), Some(41));
        assert_eq!(kept.first().map(|r| r.seq), Some(through + 1));
        let folded: Vec<MessageRow> = rows.iter().filter(|r| r.seq <= through).cloned().collect();
        let summary = extend_summary("", &folded);
        assert!(summary.starts_with("I like topic 0.") && summary.contains("I like topic 1."));
        assert!(!summary.contains("xxx"));
        // Everything fits: nothing folds.
        let (through, kept) = plan(&rows[36..], MEMORY_TOKEN_BUDGET);
        assert_eq!(through, None);
        assert_eq!(kept.len(), 5);
    }

    #[test]
    fn blocked_messages_and_fixed_answers_are_not_remembered() {
        let rows = vec![
            row(1, "child", "bad thing", 3, None),
            row(2, "assistant", "That's not something I can talk about.", 0, None),
            row(3, "child", "tell me about whales", 0, None),
        ];
        let (through, kept) = plan(&rows, MEMORY_TOKEN_BUDGET);
        assert_eq!(through, None);
        assert_eq!(kept.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(extend_summary("", &rows), "tell me about whales");
    }

    #[test]
    fn the_summary_stays_bounded_keeping_the_newest() {
        let mut summary = String::new();
        for i in 0..100 {
            summary =
                extend_summary(&summary, &[row(i, "child", &format!("topic number {i} is fun"), 0, None)]);
        }
        assert!(summary.len() <= SUMMARY_MAX_CHARS);
        assert!(summary.ends_with("topic number 99 is fun"));
        assert!(!summary.contains("topic number 1 is"));
    }
}
