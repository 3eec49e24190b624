//! Detectors of personal information, run on the light view (digits kept) and reported as byte ranges of
//! the original text.
//!
//! Phones (common formats, spaced digits), card numbers (13-19 digits passing Luhn), emails (also "name at
//! gmail dot com"), street addresses ("123 Oak Street", "I live on Maple Street", zip codes), passwords and
//! PINs ("my password is ..."), schools ("I go to Lincoln Elementary", "Room 12", "3rd grade at ...",
//! "Mrs Smith's class") and full names ("my last name is ...").

use regex::Regex;

use crate::normalize::{LightView, evasion_views};
use crate::types::{PiiKind, PiiSpan};

/// Compiled detectors. All regexes use ASCII word boundaries so that they stay on the lazy DFA (linear).
#[derive(Clone, Debug)]
pub struct PiiDetector {
    email: Regex,
    email_spoken: Regex,
    address: Regex,
    address_street_only: Regex,
    zip: Regex,
    password: Regex,
    school: Regex,
    room: Regex,
    grade_at: Regex,
    teacher_class: Regex,
    full_name: Regex,
}

const STREET: &str = "street|st|avenue|ave|road|rd|lane|ln|drive|dr|court|ct|boulevard|blvd|way|place|pl|circle|cir|terrace|parkway|pkwy|highway|hwy|trail|crescent|close|loop";
const SCHOOL: &str =
    "elementary|primary|middle|high|junior high|intermediate|academy|school|prep|montessori|charter";

/// Words that do not come after the first word of a school's name ("jump off the high board", "to write
/// letters at school").
const NOT_IN_A_NAME: &[&str] = &[
    "the", "a", "an", "my", "your", "off", "on", "up", "down", "out", "into", "it", "to", "at", "in", "for",
    "with", "about",
];

/// Words that cannot be a street or school name (so that "3 on the road" or "go to the school" stay safe).
const GENERIC: &[&str] = &[
    "a",
    "an",
    "the",
    "my",
    "our",
    "your",
    "his",
    "her",
    "their",
    "this",
    "that",
    "to",
    "on",
    "in",
    "at",
    "of",
    "and",
    "or",
    "is",
    "was",
    "new",
    "big",
    "old",
    "middle",
    "high",
    "elementary",
    "primary",
    "public",
    "private",
    "summer",
    "sunday",
    "art",
    "swim",
    "dance",
    "karate",
    "music",
    "after",
    "before",
    "home",
    "night",
    "boarding",
    "driving",
    "secondary",
    "junior",
    "grade",
    "same",
    "other",
    "next",
    "best",
    "good",
    "bad",
    "cool",
    "fun",
    "last",
    "first",
    "main",
    "one",
    "every",
    "some",
    "no",
    "any",
    "back",
    "down",
    "up",
    "out",
    "for",
    "from",
    "with",
    "by",
    "into",
    "its",
    "it",
    "go",
    "going",
    "went",
    "like",
    "so",
    "very",
    "bus",
    "cooking",
    "coding",
    "sports",
    "chess",
    "math",
    "language",
    "ballet",
    "gymnastics",
    "soccer",
    "football",
    "tennis",
    "sleepover",
    "hebrew",
    "bible",
    "space",
    "magic",
    "wizard",
    "wizarding",
    "hogwarts",
    "monster",
    "dragon",
    "pirate",
];

const PASSWORD_NOT_VALUES: &[&str] = &[
    "a",
    "the",
    "my",
    "secret",
    "not",
    "wrong",
    "too",
    "very",
    "so",
    "hard",
    "easy",
    "long",
    "short",
    "strong",
    "weak",
    "safe",
    "private",
    "incorrect",
    "correct",
    "right",
    "what",
    "and",
    "but",
    "for",
    "required",
    "needed",
    "case",
    "changed",
    "reset",
    "expired",
    "invalid",
    "protected",
    "forgotten",
    "forgot",
    "something",
    "your",
    "is",
    "it",
    "that",
    "this",
    "still",
    "same",
    "different",
    "in",
    "on",
    "of",
    "to",
    "an",
    "and",
    "or",
    "i",
    "you",
    "we",
    "they",
    "he",
    "she",
];

fn re(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(r) => r,
        // The patterns are constants checked by the unit tests; never reached in a tested build.
        Err(e) => panic!("PII pattern {pattern:?}: {e}"),
    }
}

impl Default for PiiDetector {
    fn default() -> Self {
        Self::new()
    }
}

impl PiiDetector {
    pub fn new() -> Self {
        let b = r"(?-u:\b)";
        Self {
            email: re(&format!(r"{b}[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{{2,}}{b}")),
            email_spoken: re(&format!(
                r"{b}[a-z0-9._\-]+ *(?:\(at\)|\[at\]| at ) *(?:gmail|yahoo|hotmail|outlook|icloud|aol|live|msn|protonmail|proton|me|mail) *(?:\.|\(dot\)|\[dot\]| dot ) *(?:com|net|org|co\.uk|me){b}"
            )),
            address: re(&format!(r"{b}[0-9]{{1,6}}[a-z]? +((?:[a-z]+\.? +){{1,3}})(?:{STREET}){b}\.?")),
            address_street_only: re(&format!(
                r"{b}(?:live|living|stay|staying|house is|home is|apartment is|moved) +(?:on|at|in) +((?:[a-z]+ +){{1,2}})(?:street|avenue|road|lane|drive|court|boulevard|way|place|terrace|crescent){b}"
            )),
            zip: re(&format!(
                r"{b}(?:zip|zip code|zipcode|postcode|post code|postal code) +(?:is +)?:? *[a-z0-9]{{2,4}} ?[0-9][a-z0-9]{{1,4}}{b}"
            )),
            password: re(&format!(
                r"{b}(?:password|passcode|pass word|passwd|pin|pin number|pin code|login|pw|pword) *(?:is|was|=|:|is:) *:? *[^ ]+"
            )),
            school: re(&format!(
                r"{b}(?:go to|goes to|going to|attend|attends|at|from|in|to) +((?:[a-z0-9'.\-]+ +){{1,3}})(?:{SCHOOL})(?: school)?{b}"
            )),
            room: re(&format!(
                r"{b}(?:room|rm|classroom|homeroom) *(?:number +|no\.? *|# *)?[0-9]{{1,4}}[a-z]?{b}"
            )),
            grade_at: re(&format!(
                r"{b}(?:[0-9]{{1,2}}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|kindergarten) +grade +(?:at|in) +(?:[a-z'.\-]+ *){{1,4}}"
            )),
            teacher_class: re(&format!(r"{b}(?:mr|mrs|ms|miss)\.? +[a-z]+'?s +(?:class|classroom|room){b}")),
            full_name: re(&format!(
                r"{b}my (?:full |real |last |sur|whole )name(?: is|s|'s) +[a-z]+(?: +[a-z]+)?"
            )),
        }
    }

    /// Every PII span in the original text, sorted by start and merged where they overlap. The detectors
    /// also read the text with evasion undone (leetspeak, spaced-out letters: see
    /// [`crate::normalize::evasion_views`]), the numbers only as written.
    pub fn detect(&self, view: &LightView) -> Vec<PiiSpan> {
        self.detect_in(view, &evasion_views(view))
    }

    /// [`Self::detect`] with the evasion views already computed (`evasion_views(view)`), for a caller that
    /// reads them too.
    pub fn detect_in(&self, view: &LightView, alternatives: &[LightView]) -> Vec<PiiSpan> {
        let mut found = Vec::new();
        digit_runs(&view.text, &mut found);
        self.detect_words(view, &mut found);
        let mut spans = original_spans(view, found);
        for alternative in alternatives {
            let mut found = Vec::new();
            self.detect_words(alternative, &mut found);
            spans.extend(original_spans(alternative, found));
        }
        merge(spans)
    }

    /// The detectors that read words (all but the digit runs), in view coordinates.
    fn detect_words(&self, view: &LightView, found: &mut Vec<(usize, usize, PiiKind)>) {
        let text = view.text.as_str();
        for m in self.email.find_iter(text) {
            found.push((m.start(), m.end(), PiiKind::Email));
        }
        if text.contains(" at ") || text.contains("(at)") || text.contains("[at]") {
            for m in self.email_spoken.find_iter(text) {
                found.push((m.start(), m.end(), PiiKind::Email));
            }
        }
        for m in self.address.find_iter(text) {
            // The words between the number and the street type must look like a name.
            let inner = m.as_str().split(' ').skip(1).filter(|w| !w.is_empty());
            let words: Vec<&str> = inner.collect();
            let name_words = &words[..words.len().saturating_sub(1)];
            if name_words.iter().all(|w| !GENERIC.contains(&w.trim_end_matches('.')))
                && name_words.iter().all(|w| !w.chars().all(|c| c.is_ascii_digit()))
            {
                found.push((m.start(), m.end(), PiiKind::Address));
            }
        }
        for m in self.address_street_only.find_iter(text) {
            let s = m.as_str();
            let words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
            // live on NAME street: the name is the words before the last one
            let prep = words.iter().position(|w| matches!(*w, "on" | "at" | "in")).unwrap_or(0);
            let name = &words[prep + 1..words.len().saturating_sub(1)];
            if !name.is_empty() && name.iter().all(|w| !GENERIC.contains(w)) {
                let offset = s.find(name[0]).unwrap_or(0);
                found.push((m.start() + offset, m.end(), PiiKind::Address));
            }
        }
        for m in self.zip.find_iter(text) {
            found.push((m.start(), m.end(), PiiKind::Address));
        }
        for m in self.password.find_iter(text) {
            let s = m.as_str();
            let value_start = s.rfind([' ', ':', '=']).map(|i| i + 1).unwrap_or(0);
            let value = s[value_start..].trim_end_matches(['.', ',', '!', '?']);
            if value.len() >= 3 && !PASSWORD_NOT_VALUES.contains(&value) {
                found.push((
                    m.start() + value_start,
                    m.start() + value_start + value.len(),
                    PiiKind::Password,
                ));
            }
        }
        for m in self.school.find_iter(text) {
            let s = m.as_str();
            let words: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
            // skip the verb ("go to", "attend", "at"...)
            let verb_len = if matches!(words.get(1), Some(&"to")) { 2 } else { 1 };
            let Some(first) = words.get(verb_len) else { continue };
            if GENERIC.contains(first) || first.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            // A name does not run on through a phrase: "to jump off the high board" names no school.
            let name = &words[verb_len..words.len().saturating_sub(1)];
            if name.iter().skip(1).any(|w| NOT_IN_A_NAME.contains(w)) {
                continue;
            }
            let offset = s.find(first).unwrap_or(0);
            found.push((m.start() + offset, m.end(), PiiKind::School));
        }
        for m in self.room.find_iter(text) {
            found.push((m.start(), m.end(), PiiKind::School));
        }
        for m in self.grade_at.find_iter(text) {
            found.push((m.start(), m.end(), PiiKind::School));
        }
        for m in self.teacher_class.find_iter(text) {
            found.push((m.start(), m.end(), PiiKind::School));
        }
        for m in self.full_name.find_iter(text) {
            let s = m.as_str();
            let name_at = s.find(" is ").map(|i| i + 4).or_else(|| s.find("s ").map(|i| i + 2)).unwrap_or(0);
            found.push((m.start() + name_at, m.end(), PiiKind::FullName));
        }
    }
}

/// Spans found in a view (trailing spaces trimmed), as byte ranges of the original text.
fn original_spans(view: &LightView, found: Vec<(usize, usize, PiiKind)>) -> Vec<PiiSpan> {
    found
        .into_iter()
        .filter_map(|(s, e, kind)| {
            let e = trim_end(&view.text, s, e);
            view.original_range(s, e).map(|(start, end)| PiiSpan { start, end, kind })
        })
        .collect()
}

/// Sorts and merges overlaps (the first kind wins).
fn merge(mut found: Vec<PiiSpan>) -> Vec<PiiSpan> {
    found.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut merged: Vec<PiiSpan> = Vec::new();
    for span in found {
        match merged.last_mut() {
            Some(last) if span.start < last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

fn trim_end(text: &str, s: usize, mut e: usize) -> usize {
    while e > s && text.as_bytes()[e - 1] == b' ' {
        e -= 1;
    }
    e
}

/// Phone and card numbers: runs of digits with common separators, including spaced digits.
fn digit_runs(text: &str, found: &mut Vec<(usize, usize, PiiKind)>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts_number = bytes[i].is_ascii_digit() || (bytes[i] == b'+' || bytes[i] == b'(');
        let after_word = i > 0 && bytes[i - 1].is_ascii_alphanumeric();
        if !starts_number || after_word {
            i += 1;
            continue;
        }
        let start = i;
        let plus = bytes[i] == b'+';
        let mut digits: Vec<u8> = Vec::new();
        let mut groups = 0;
        let mut in_group = false;
        let mut has_dot = false;
        let mut last_digit_end = i;
        let mut sep_run = 0;
        let mut group_sizes: Vec<usize> = Vec::new();
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_digit() {
                if !in_group {
                    groups += 1;
                    group_sizes.push(0);
                    in_group = true;
                }
                if let Some(last) = group_sizes.last_mut() {
                    *last += 1;
                }
                digits.push(b - b'0');
                last_digit_end = i + 1;
                sep_run = 0;
            } else if matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+') && sep_run < 3 && digits.len() < 20
            {
                has_dot |= b == b'.';
                in_group = false;
                sep_run += 1;
            } else {
                break;
            }
            i += 1;
        }
        // A number glued to a following letter ("3rd", "10am") is not a phone number.
        if last_digit_end < bytes.len() && bytes[last_digit_end].is_ascii_alphabetic() {
            continue;
        }
        let n = digits.len();
        let first_digit = text[start..].find(|c: char| c.is_ascii_digit()).map_or(start, |o| start + o);
        let span_start = if plus { start } else { first_digit };
        if (13..=19).contains(&n) && luhn(&digits) {
            found.push((span_start, last_digit_end, PiiKind::CardNumber));
            continue;
        }
        let looks_like_date = group_sizes.len() == 3
            && ((group_sizes[0] == 4 && group_sizes[1] <= 2 && group_sizes[2] <= 2)
                || (group_sizes[0] <= 2 && group_sizes[1] <= 2 && group_sizes[2] == 4));
        let decimal = has_dot && groups == 2;
        let counting = is_consecutive(&digits);
        let phone_shape =
            if groups <= 1 { (10..=13).contains(&n) || (plus && n >= 8) } else { (7..=15).contains(&n) };
        if phone_shape && !looks_like_date && !decimal && !counting && !is_public_helpline(&digits) {
            found.push((span_start, last_digit_end, PiiKind::Phone));
        }
    }
}

/// "1 2 3 4 5 6 7" (counting) or "7 6 5 4 3 2 1" is not a phone number.
fn is_consecutive(digits: &[u8]) -> bool {
    digits.windows(2).all(|w| w[1] == (w[0] + 1) % 10) || digits.windows(2).all(|w| w[0] == (w[1] + 1) % 10)
}

/// The Luhn checksum of a card number.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(*d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Public helplines for children and people in crisis. They are nobody's personal information, and a
/// reply that gives one must never be cut off as if it leaked a phone number.
const PUBLIC_HELPLINES: &[&str] = &[
    "08001111",    // Childline (UK)
    "116123",      // Samaritans (UK and Ireland)
    "08088025544", // Samaritans Wales (Welsh)
    "18002738255", // the former US National Suicide Prevention Lifeline
    "18004224453", // Childhelp National Child Abuse Hotline (US)
    "741741",      // Crisis Text Line (US)
    "85258",       // Shout (UK)
];

/// `digits` are digit values (0-9), as the detector collects them.
fn is_public_helpline(digits: &[u8]) -> bool {
    let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    // "+44 800 1111" is the international form of the UK's "0800 1111".
    let digits = text.strip_prefix("44").unwrap_or(&text);
    PUBLIC_HELPLINES.contains(&digits)
        || PUBLIC_HELPLINES.iter().any(|h| h.strip_prefix('0').is_some_and(|national| national == digits))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::light;

    #[test]
    fn public_helplines_are_not_personal_phone_numbers() {
        for t in ["call Childline on 0800 1111", "call 0800-1111", "1-800-422-4453", "+44 800 1111"] {
            assert!(!kinds(t).iter().any(|(_, k)| *k == PiiKind::Phone), "{t}");
        }
        assert!(kinds("call me on 0800 1112").iter().any(|(_, k)| *k == PiiKind::Phone));
    }

    fn kinds(text: &str) -> Vec<(String, PiiKind)> {
        PiiDetector::new()
            .detect(&light(text))
            .into_iter()
            .map(|s| (text[s.start..s.end].to_string(), s.kind))
            .collect()
    }

    #[test]
    fn finds_phones_in_common_formats() {
        for t in [
            "call me at 555-123-4567",
            "(555) 123 4567",
            "my number is 5 5 5 1 2 3 4",
            "+44 20 7946 0958",
            "5551234567",
        ] {
            assert!(kinds(t).iter().any(|(_, k)| *k == PiiKind::Phone), "{t}");
        }
        for t in [
            "I have 3 cats and 2 dogs",
            "1 2 3 4 5 6 7 8",
            "on 2024-05-01",
            "pi is 3.14159",
            "I scored 1000000 points",
            "I'm 9",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }

    #[test]
    fn finds_cards_with_luhn_only() {
        assert_eq!(
            kinds("card 4111 1111 1111 1111"),
            vec![("4111 1111 1111 1111".into(), PiiKind::CardNumber)]
        );
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
    }

    #[test]
    fn finds_emails_addresses_passwords_schools() {
        assert_eq!(
            kinds("mail me: Kid.Name@Example.com ok"),
            vec![("Kid.Name@Example.com".into(), PiiKind::Email)]
        );
        assert_eq!(kinds("emma at gmail dot com")[0].1, PiiKind::Email);
        assert_eq!(kinds("I live at 123 Oak Street"), vec![("123 Oak Street".into(), PiiKind::Address)]);
        assert_eq!(kinds("i live on maple street")[0], ("maple street".into(), PiiKind::Address));
        assert_eq!(kinds("my password is Sparkle99!"), vec![("Sparkle99".into(), PiiKind::Password)]);
        assert_eq!(kinds("I go to Lincoln Elementary"), vec![("Lincoln Elementary".into(), PiiKind::School)]);
        assert_eq!(kinds("i go to lincoln park high")[0], ("lincoln park high".into(), PiiKind::School));
        assert_eq!(kinds("I'm in Room 12")[0].1, PiiKind::School);
        assert_eq!(kinds("im in 3rd grade at oakwood")[0].1, PiiKind::School);
        assert_eq!(kinds("my last name is Johnson")[0], ("Johnson".into(), PiiKind::FullName));
        for t in [
            "I go to school",
            "we scored 3 on the road",
            "i go to middle school",
            "my password is secret",
            "I'm in 3rd grade",
            "what is a password",
            "i dont have the guts to jump off the high board",
            "were learning to write letters at school",
            "we go to the park in the middle of the day",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }

    #[test]
    fn spans_point_into_the_original_text() {
        let text = "ｍｙ number: ５５５-１２３-４５６７ 😀";
        let spans = PiiDetector::new().detect(&light(text));
        assert_eq!(spans.len(), 1);
        assert_eq!(&text[spans[0].start..spans[0].end], "５５５-１２３-４５６７");
    }
}
