//! Privacy before any cloud call: the child's name and any personal information are replaced in every
//! message (system prompt included) before a request leaves the machine, and the child's name is put
//! back into the reply.
//!
//! - **Personal information** (emails, phones, street addresses, card numbers, passwords, schools, full
//!   names) is found by the safety engine's own detectors (`onda_safety::pii`, the same ones behind
//!   `Verdict::pii`) and replaced the way `Verdict::redact` does: `[email]`, `[phone]`, `[address]`... The
//!   detectors are called directly rather than through `assess()`, because `assess()` fails closed to a
//!   blocking verdict with no PII spans, which here would fail open (send the text unscrubbed).
//! - **The child's first name** becomes a pseudonym: a real, gender-neutral name that is not an English
//!   word ("Quinn", "Remy"...) and that appears nowhere in the conversation. A name reads naturally to the
//!   model (a token such as `[child]` tends to be echoed literally or read as a template slot), the model
//!   addresses the child by it, and since it appears nowhere else, every occurrence of it in the reply can
//!   safely be mapped back to the child's real name ([`restore_name`]), also when it arrives split
//!   across deltas. Matching is on the safety engine's light view (case, accents and look-alike letters
//!   folded), whole words only ("Sam" is not replaced inside "Samuel"). A name that is also a common
//!   word ("Will", "May", "Hope") is replaced only where it is written with a capital, so that "I will"
//!   keeps its meaning.

use std::sync::OnceLock;

use futures::StreamExt;
use onda_safety::Verdict;
use onda_safety::normalize::light;
use onda_safety::pii::PiiDetector;

use super::{ChatMessage, ChatRequest, DeltaStream, ProviderError};

/// Stand-ins for the child's name: gender-neutral, and not English words (so that mapping them back in
/// the reply never turns a bird or a tree into the child).
const PSEUDONYMS: &[&str] = &["Quinn", "Remy", "Emery", "Sasha", "Kiran", "Ellis", "Avery", "Marlo"];

/// First names that are also everyday words: replaced only where capitalised.
const WORD_NAMES: &[&str] = &[
    "amber", "angel", "april", "art", "ash", "august", "autumn", "bill", "brook", "buddy", "chase", "cliff",
    "crystal", "daisy", "dash", "dawn", "destiny", "dusty", "eve", "faith", "frank", "grace", "happy",
    "harmony", "hazel", "heather", "holly", "honey", "hope", "hunter", "ivy", "jack", "jay", "joy", "june",
    "king", "lance", "liberty", "lily", "mark", "max", "may", "melody", "miles", "nick", "page", "pat",
    "pearl", "penny", "rain", "ray", "reed", "rich", "river", "rocky", "rose", "ruby", "sage", "sandy",
    "scout", "sky", "star", "storm", "summer", "sunny", "will", "willow",
];

/// How the child's name was replaced, to put it back into the reply.
#[derive(Clone, PartialEq, Eq)]
pub struct NameAlias {
    pseudonym: &'static str,
    name: String,
}

impl NameAlias {
    /// The stand-in the model saw.
    pub fn pseudonym(&self) -> &'static str {
        self.pseudonym
    }
}

impl std::fmt::Debug for NameAlias {
    // The child's name stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameAlias").field("pseudonym", &self.pseudonym).finish_non_exhaustive()
    }
}

/// A request fit to leave the machine.
#[derive(Clone, Debug)]
pub struct Scrubbed {
    pub request: ChatRequest,
    /// Present when the child's name was given: map it back in the reply with [`restore_name`].
    pub alias: Option<NameAlias>,
}

fn detector() -> &'static PiiDetector {
    static DETECTOR: OnceLock<PiiDetector> = OnceLock::new();
    DETECTOR.get_or_init(PiiDetector::new)
}

/// The text with every piece of personal information replaced by `[kind]` (as `Verdict::redact`).
pub fn redact_pii(text: &str) -> String {
    let spans = detector().detect(&light(text));
    if spans.is_empty() {
        return text.to_string();
    }
    Verdict { pii: spans, ..Verdict::blocking("") }.redact(text)
}

/// Where `needle` (already in light form) occurs in `text` as a whole word: byte ranges of `text`.
fn whole_word_ranges(text: &str, needle: &str, capitalised_only: bool) -> Vec<(usize, usize)> {
    if needle.is_empty() {
        return Vec::new();
    }
    let view = light(text);
    let hay = view.text.as_str();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(found) = hay[from..].find(needle) {
        let start = from + found;
        let end = start + needle.len();
        from = start + needle.chars().next().map_or(1, char::len_utf8);
        let before_ok = !hay[..start].chars().next_back().is_some_and(char::is_alphanumeric);
        let after_ok = !hay[end..].chars().next().is_some_and(char::is_alphanumeric);
        if !(before_ok && after_ok) {
            continue;
        }
        let Some((s, e)) = view.original_range(start, end) else { continue };
        if capitalised_only && !text[s..e].chars().next().is_some_and(char::is_uppercase) {
            continue;
        }
        if ranges.last().is_none_or(|&(_, last_end)| s >= last_end) {
            ranges.push((s, e));
        }
    }
    ranges
}

fn replace_ranges(text: &str, ranges: &[(usize, usize)], with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for &(s, e) in ranges {
        out.push_str(&text[at..s]);
        out.push_str(with);
        at = e;
    }
    out.push_str(&text[at..]);
    out
}

/// The request with personal information replaced in every message and the child's first name
/// replaced by a pseudonym (see the module documentation). An empty name replaces only the PII.
pub fn scrub_request(request: &ChatRequest, child_first_name: &str) -> Scrubbed {
    let messages: Vec<ChatMessage> =
        request.messages.iter().map(|m| ChatMessage::new(m.role, redact_pii(&m.content))).collect();
    let name = child_first_name.trim();
    let needle = light(name).text.trim().to_string();
    if needle.is_empty() || !needle.chars().any(char::is_alphanumeric) {
        return Scrubbed { request: ChatRequest { messages, ..request.clone() }, alias: None };
    }
    let capitalised_only = WORD_NAMES.contains(&needle.as_str());
    let found: Vec<Vec<(usize, usize)>> =
        messages.iter().map(|m| whole_word_ranges(&m.content, &needle, capitalised_only)).collect();
    // A pseudonym that appears nowhere (once the name is out) can be mapped back without ambiguity.
    let free = PSEUDONYMS.iter().copied().find(|p| {
        let p_light = p.to_ascii_lowercase();
        p_light != needle
            && messages.iter().all(|m| whole_word_ranges(&m.content, &p_light, false).is_empty())
    });
    let pseudonym = free.unwrap_or(PSEUDONYMS[0]);
    let messages = messages
        .iter()
        .zip(&found)
        .map(|(m, ranges)| ChatMessage::new(m.role, replace_ranges(&m.content, ranges, pseudonym)))
        .collect();
    Scrubbed {
        request: ChatRequest { messages, ..request.clone() },
        alias: free.map(|pseudonym| NameAlias { pseudonym, name: name.to_string() }),
    }
}

/// Puts the child's name back where the reply says the pseudonym (whole words, any case), also when
/// the pseudonym is split across deltas: text that could be the start of it is held until the next
/// delta tells.
pub fn restore_name(stream: DeltaStream, alias: NameAlias) -> DeltaStream {
    struct State {
        inner: DeltaStream,
        restorer: Restorer,
        queued_error: Option<ProviderError>,
        done: bool,
    }
    let state = State { inner: stream, restorer: Restorer::new(alias), queued_error: None, done: false };
    futures::stream::unfold(state, |mut s| async move {
        if let Some(err) = s.queued_error.take() {
            s.done = true;
            return Some((Err(err), s));
        }
        if s.done {
            return None;
        }
        loop {
            match s.inner.next().await {
                Some(Ok(delta)) => {
                    let out = s.restorer.push(&delta);
                    if !out.is_empty() {
                        return Some((Ok(out), s));
                    }
                }
                Some(Err(err)) => {
                    let out = s.restorer.finish();
                    if out.is_empty() {
                        s.done = true;
                        return Some((Err(err), s));
                    }
                    s.queued_error = Some(err);
                    return Some((Ok(out), s));
                }
                None => {
                    s.done = true;
                    let out = s.restorer.finish();
                    return (!out.is_empty()).then_some((Ok(out), s));
                }
            }
        }
    })
    .boxed()
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric()
}

/// The incremental replacement behind [`restore_name`].
#[derive(Debug)]
struct Restorer {
    alias: NameAlias,
    pending: String,
    after_word: bool,
}

impl Restorer {
    fn new(alias: NameAlias) -> Self {
        Self { alias, pending: String::new(), after_word: false }
    }

    fn push(&mut self, delta: &str) -> String {
        self.pending.push_str(delta);
        self.drain(false)
    }

    fn finish(&mut self) -> String {
        self.drain(true)
    }

    fn drain(&mut self, at_end: bool) -> String {
        let text = std::mem::take(&mut self.pending);
        let pattern = self.alias.pseudonym.as_bytes();
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        while let Some(c) = text[i..].chars().next() {
            if !self.after_word && c.is_ascii() {
                let n = (bytes.len() - i).min(pattern.len());
                if bytes[i..i + n].eq_ignore_ascii_case(&pattern[..n]) {
                    if n < pattern.len() {
                        if !at_end {
                            // Could be the pseudonym, cut by the end of this delta: wait for more.
                            self.pending = text[i..].to_string();
                            return out;
                        }
                    } else {
                        match text[i + n..].chars().next() {
                            None if !at_end => {
                                // "Quinn" or the start of "Quinnton"? The next delta tells.
                                self.pending = text[i..].to_string();
                                return out;
                            }
                            Some(next) if is_word(next) => {}
                            _ => {
                                out.push_str(&self.alias.name);
                                self.after_word = self.alias.name.chars().next_back().is_some_and(is_word);
                                i += n;
                                continue;
                            }
                        }
                    }
                }
            }
            out.push(c);
            self.after_word = is_word(c);
            i += c.len_utf8();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::chat::ChatRole;

    fn request(texts: &[(ChatRole, &str)]) -> ChatRequest {
        ChatRequest {
            messages: texts.iter().map(|(r, t)| ChatMessage::new(*r, *t)).collect(),
            max_tokens: 50,
            temperature: 0.7,
        }
    }

    fn texts(request: &ChatRequest) -> Vec<&str> {
        request.messages.iter().map(|m| m.content.as_str()).collect()
    }

    #[test]
    fn the_name_and_pii_leave_every_message() {
        let scrubbed = scrub_request(
            &request(&[
                (ChatRole::System, "You talk with Sam, aged 8. Call Sam by name."),
                (ChatRole::User, "hi im SAM! my email is sam.lee@example.com and my phone is 555-123-4567"),
                (ChatRole::Assistant, "Hi Sam's friend"),
                (ChatRole::User, "I live at 42 Oak St. Samuel is my brother. Sám!"),
            ]),
            "Sam",
        );
        let alias = scrubbed.alias.expect("an alias");
        assert_eq!(alias.pseudonym(), "Quinn");
        assert_eq!(
            texts(&scrubbed.request),
            [
                "You talk with Quinn, aged 8. Call Quinn by name.",
                "hi im Quinn! my email is [email] and my phone is [phone]",
                "Hi Quinn's friend",
                "I live at [address] Samuel is my brother. Quinn!",
            ]
        );
        assert!(!format!("{alias:?}").contains("Sam"));
    }

    #[test]
    fn the_pseudonym_avoids_names_already_in_the_conversation() {
        let scrubbed =
            scrub_request(&request(&[(ChatRole::User, "Quinn and remy are my friends, I'm Zoë")]), "Zoe");
        assert_eq!(texts(&scrubbed.request), ["Quinn and remy are my friends, I'm Emery"]);
        assert_eq!(scrubbed.alias.expect("an alias").pseudonym(), "Emery");
    }

    #[test]
    fn a_name_that_is_a_word_is_replaced_only_with_a_capital() {
        let scrubbed = scrub_request(&request(&[(ChatRole::User, "Will said I will win")]), "Will");
        assert_eq!(texts(&scrubbed.request), ["Quinn said I will win"]);
    }

    #[test]
    fn no_name_means_only_pii_is_replaced() {
        let scrubbed = scrub_request(&request(&[(ChatRole::User, "mail me at a@b.co")]), "  ");
        assert_eq!(texts(&scrubbed.request), ["mail me at [email]"]);
        assert!(scrubbed.alias.is_none());
    }

    fn restored(deltas: &[&str]) -> String {
        let alias = NameAlias { pseudonym: "Quinn", name: "Sam".into() };
        let mut restorer = Restorer::new(alias);
        let mut out: String = deltas.iter().map(|d| restorer.push(d)).collect();
        out.push_str(&restorer.finish());
        out
    }

    #[test]
    fn the_name_comes_back_even_when_split_across_deltas() {
        assert_eq!(restored(&["Hi Quinn!"]), "Hi Sam!");
        assert_eq!(restored(&["Hi Q", "ui", "nn", ", you rock, QUINN"]), "Hi Sam, you rock, Sam");
        assert_eq!(restored(&["Quinn", "'s turn"]), "Sam's turn");
        assert_eq!(restored(&["Quinn", "ton and Quin"]), "Quinnton and Quin");
        assert_eq!(restored(&["McQuinn ", "Qu", "een"]), "McQuinn Queen");
        assert_eq!(restored(&["ü Quinn"]), "ü Sam");
    }

    #[tokio::test]
    async fn the_stream_wrapper_holds_and_flushes() {
        let alias = NameAlias { pseudonym: "Quinn", name: "Sam".into() };
        let inner: DeltaStream = futures::stream::iter(vec![
            Ok("Hello Qu".to_string()),
            Ok("inn".to_string()),
            Err(ProviderError::Dropped),
        ])
        .boxed();
        let items: Vec<_> = restore_name(inner, alias).collect().await;
        assert_eq!(items, vec![Ok("Hello ".to_string()), Ok("Sam".to_string()), Err(ProviderError::Dropped)]);
    }
}
