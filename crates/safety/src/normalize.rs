//! Normalisation that defeats evasion, in linear time.
//!
//! Two views of a message are made:
//! - the **light** view ([`light`]): invisible characters removed, compatibility decomposition (NFKD, which
//!   folds fullwidth forms, mathematical alphanumerics, circled letters and ligatures), combining marks
//!   dropped, lowercased, and Cyrillic/Greek/other look-alikes folded to Latin. Digits and punctuation are
//!   kept, and every byte remembers the byte range of the original character it came from, so that the PII
//!   detectors that run on this view report spans into the ORIGINAL text.
//! - the **folded** view ([`fold`]), made from the light view for the lexicons: leetspeak decoded inside
//!   words that contain letters ("k1ll" -> "kill", but "123" stays), apostrophes dropped ("don't" ->
//!   "dont"), every other symbol a word break, single spaces between words. [`join_spaced`] collapses
//!   spacing tricks ("k i l l", "k.i.l.l") and [`squeeze`] shortens repeated letters: to two ("killlll" ->
//!   "kill", keeping legitimate doubles) and to one (matched against patterns squeezed the same way).
//!
//! Lexicon patterns go through exactly the same functions, so a pattern and a text always agree.

use unicode_normalization::char::{decompose_compatible, is_combining_mark};

/// The lightly normalised text with a map back to the original.
#[derive(Clone, Debug, Default)]
pub struct LightView {
    pub text: String,
    /// For each byte of `text`: the original byte range of the character it came from.
    origin: Vec<(usize, usize)>,
}

impl LightView {
    /// The original byte range covering the light-view byte range `start..end` (on char boundaries of the
    /// original). None if the range is empty or out of bounds.
    pub fn original_range(&self, start: usize, end: usize) -> Option<(usize, usize)> {
        if start >= end || end > self.origin.len() {
            return None;
        }
        let first = self.origin[start].0;
        let last = self.origin[end - 1].1;
        (first < last).then_some((first, last))
    }
}

/// Characters that render as nothing (or are used to hide inside words): removed.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{034F}' // combining grapheme joiner
        | '\u{061C}' // arabic letter mark
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // hangul fillers
        | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' // mongolian selectors and vowel separator
        | '\u{200B}'..='\u{200F}' // zero-width space, non-joiner, joiner, LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates, deprecated formats
        | '\u{FE00}'..='\u{FE0F}' // variation selectors
        | '\u{FEFF}' // byte order mark, zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        | '\u{1D173}'..='\u{1D17A}' // musical formatting
        | '\u{E0000}'..='\u{E007F}' // tags
        | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
    ) || (c.is_control() && !c.is_whitespace())
}

/// Characters that look like a space but are not Unicode whitespace.
fn is_blank_lookalike(c: char) -> bool {
    matches!(c, '\u{2800}' /* braille blank */ | '\u{3000}')
}

/// Folds a lowercase character that looks like a Latin letter (or digit) to that letter.
pub fn fold_confusable(c: char) -> char {
    match c {
        // Cyrillic
        'а' | 'ӑ' | 'ӓ' => 'a',
        'в' => 'b',
        'с' | 'ҫ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' | 'ӗ' | 'є' => 'e',
        'һ' | 'н' => 'h',
        'і' | 'ї' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' | 'ҝ' => 'k',
        'м' => 'm',
        'п' => 'n',
        'о' | 'ӧ' | 'ө' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'г' => 'r',
        'ѕ' => 's',
        'т' => 't',
        'ц' | 'џ' => 'u',
        'ѵ' => 'v',
        'ԝ' | 'ш' | 'щ' => 'w',
        'х' | 'ж' => 'x',
        'у' | 'ү' => 'y',
        'з' => '3',
        'ь' | 'ъ' => 'b',
        // Greek
        'α' | 'ά' => 'a',
        'β' => 'b',
        'ϲ' => 'c',
        'δ' => 'd',
        'ε' | 'έ' => 'e',
        'η' | 'ή' => 'n',
        'ι' | 'ί' | 'ϊ' | 'ΐ' => 'i',
        'κ' => 'k',
        'μ' => 'u',
        'ν' => 'v',
        'ο' | 'ό' | 'σ' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' | 'ύ' | 'ϋ' => 'u',
        'χ' => 'x',
        'γ' => 'y',
        'ω' | 'ώ' => 'w',
        'ϳ' => 'j',
        // Armenian and other look-alikes
        'օ' => 'o',
        'ս' => 'u',
        'ց' => 'g',
        'հ' => 'h',
        'ո' => 'n',
        'ı' => 'i',
        'ȷ' => 'j',
        'ł' => 'l',
        'ø' => 'o',
        'đ' | 'ð' => 'd',
        'ħ' => 'h',
        'ß' => 's',
        'æ' => 'a',
        'œ' => 'o',
        'ɑ' => 'a',
        'ɡ' => 'g',
        'ɩ' => 'i',
        'ʀ' => 'r',
        // small capitals
        'ᴀ' => 'a',
        'ʙ' => 'b',
        'ᴄ' => 'c',
        'ᴅ' => 'd',
        'ᴇ' => 'e',
        'ɢ' => 'g',
        'ʜ' => 'h',
        'ɪ' => 'i',
        'ᴊ' => 'j',
        'ᴋ' => 'k',
        'ʟ' => 'l',
        'ᴍ' => 'm',
        'ɴ' => 'n',
        'ᴏ' => 'o',
        'ᴘ' => 'p',
        'ꜱ' => 's',
        'ᴛ' => 't',
        'ᴜ' => 'u',
        'ᴠ' => 'v',
        'ᴡ' => 'w',
        'ʏ' => 'y',
        'ᴢ' => 'z',
        // regional indicator symbols (🇦 ... 🇿) read as letters
        '\u{1F1E6}'..='\u{1F1FF}' => char::from_u32(u32::from('a') + (u32::from(c) - 0x1F1E6)).unwrap_or(c),
        _ => c,
    }
}

/// The light view: see the module documentation.
pub fn light(original: &str) -> LightView {
    let mut text = String::with_capacity(original.len());
    let mut origin = Vec::with_capacity(original.len());
    let mut push = |text: &mut String, ch: char, range: (usize, usize)| {
        text.push(ch);
        for _ in 0..ch.len_utf8() {
            origin.push(range);
        }
    };
    for (i, c) in original.char_indices() {
        let range = (i, i + c.len_utf8());
        if c.is_ascii() {
            if c.is_ascii_control() && !c.is_ascii_whitespace() {
                continue;
            }
            let ch = if c.is_ascii_whitespace() { ' ' } else { c.to_ascii_lowercase() };
            push(&mut text, ch, range);
            continue;
        }
        if is_invisible(c) {
            continue;
        }
        if c.is_whitespace() || is_blank_lookalike(c) {
            push(&mut text, ' ', range);
            continue;
        }
        decompose_compatible(c, |d| {
            if is_combining_mark(d) || is_invisible(d) {
                return;
            }
            if d.is_whitespace() {
                push(&mut text, ' ', range);
                return;
            }
            for l in d.to_lowercase() {
                push(&mut text, fold_confusable(l), range);
            }
        });
    }
    LightView { text, origin }
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`' | '\u{02BC}' | '\u{00B4}')
}

fn leet_digit(c: char) -> char {
    match c {
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' => 'a',
        '5' => 's',
        '7' => 't',
        '8' => 'b',
        '9' => 'g',
        other => other,
    }
}

/// Emoji that stand for a word in the lexicons.
fn emoji_word(c: char) -> Option<&'static str> {
    Some(match c {
        '🔪' | '🗡' => "knife",
        '🔫' => "gun",
        '💣' => "bomb",
        '💊' => "pills",
        '🩸' => "blood",
        '🪢' => "rope",
        _ => return None,
    })
}

/// A token that is a number with a short unit or ordinal suffix ("3rd", "12yo", "10th", "90s"): its digits
/// are not leetspeak.
fn is_number_with_suffix(token: &str) -> bool {
    let digits = token.chars().take_while(|c| c.is_ascii_digit()).count();
    let suffix = &token[digits..];
    digits > 0
        && matches!(
            suffix,
            "st" | "nd"
                | "rd"
                | "th"
                | "yo"
                | "yr"
                | "yrs"
                | "yro"
                | "am"
                | "pm"
                | "s"
                | "k"
                | "m"
                | "x"
                | "d"
                | "p"
                | "g"
                | "h"
                | "ish"
                | "min"
                | "mins"
                | "kg"
                | "km"
                | "cm"
                | "mm"
                | "lb"
                | "lbs"
                | "ft"
                | "mph"
                | "gb"
                | "mb"
                | "hp"
                | "hr"
                | "hrs"
                | "sec"
                | "secs"
                | "ml"
                | "v"
                | "kb"
                | "fps"
                | "hz"
        )
}

/// The folded view of a light-view text: see the module documentation. Words are separated by one space,
/// with no leading or trailing space.
pub fn fold(light: &str) -> String {
    fold_with(light, false).0
}

/// [`fold`], also telling whether leetspeak was decoded. With `aggressive`, short all-digit tokens made of
/// leet digits are decoded too ("70" -> "to"): used only as a second view of a text that already showed
/// leetspeak, so that ordinary numbers are left alone.
pub fn fold_with(light: &str, aggressive: bool) -> (String, bool) {
    let mut decoded = false;
    let mut out = String::with_capacity(light.len() + 8);
    let mut at_break = true;
    let word_break = |out: &mut String, at_break: &mut bool| {
        if !*at_break {
            out.push(' ');
            *at_break = true;
        }
    };
    for token in light.split(' ').filter(|t| !t.is_empty()) {
        let has_letter = token.chars().any(char::is_alphabetic);
        let leet = if aggressive {
            has_letter
                || (token.len() <= 12
                    && token.chars().all(|c| {
                        matches!(c, '0' | '1' | '3' | '4' | '5' | '7' | '8' | '9' | '$' | '@')
                            || is_apostrophe(c)
                    }))
        } else {
            has_letter && !is_number_with_suffix(token)
        };
        let mut chars = token.chars().peekable();
        while let Some(c) = chars.next() {
            if is_apostrophe(c) {
                continue;
            }
            let next_is_alnum = chars.peek().is_some_and(|n| n.is_alphanumeric());
            let mapped = if c.is_alphanumeric() {
                if leet && c.is_ascii_digit() && leet_digit(c) != c {
                    decoded = true;
                    Some(leet_digit(c))
                } else {
                    Some(c)
                }
            } else if leet {
                match c {
                    '@' => Some('a'),
                    '$' => Some('s'),
                    '!' | '¡' if next_is_alnum && !at_break => Some('i'),
                    '|' if next_is_alnum || !at_break => Some('l'),
                    '€' => Some('e'),
                    _ => None,
                }
            } else {
                None
            };
            match mapped {
                Some(ch) => {
                    out.push(ch);
                    at_break = false;
                }
                None => {
                    word_break(&mut out, &mut at_break);
                    if let Some(word) = emoji_word(c) {
                        out.push_str(word);
                        at_break = false;
                        word_break(&mut out, &mut at_break);
                    }
                }
            }
        }
        word_break(&mut out, &mut at_break);
    }
    if out.ends_with(' ') {
        out.pop();
    }
    (out, decoded)
}

/// Collapses runs of three or more single-letter (or leet-digit) words ("k i l l", after folding "k.i.l.l")
/// into one word.
/// Returns None when the text has no such run (the common case), else the new text and the byte ranges
/// of the joined words in it.
pub fn join_spaced(folded: &str) -> Option<(String, Vec<(usize, usize)>)> {
    let words: Vec<&str> = folded.split(' ').collect();
    let single = |w: &str| {
        let mut cs = w.chars();
        matches!((cs.next(), cs.next()), (Some(c), None) if c.is_alphabetic() || leet_digit(c) != c)
    };
    let mut runs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if single(words[i]) {
            let start = i;
            while i < words.len() && single(words[i]) {
                i += 1;
            }
            if i - start >= 3 {
                runs.push((start, i));
            }
        } else {
            i += 1;
        }
    }
    if runs.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(folded.len());
    let mut ranges = Vec::with_capacity(runs.len());
    let mut run_iter = runs.into_iter().peekable();
    let mut i = 0;
    while i < words.len() {
        if !out.is_empty() {
            out.push(' ');
        }
        if let Some(&(start, end)) = run_iter.peek().filter(|(start, _)| *start == i) {
            let begin = out.len();
            for w in &words[start..end] {
                // A spaced-out word may hide leetspeak ("n 1 g g e r").
                out.extend(w.chars().map(leet_digit));
            }
            ranges.push((begin, out.len()));
            run_iter.next();
            i = end;
        } else {
            out.push_str(words[i]);
            i += 1;
        }
    }
    Some((out, ranges))
}

/// Shortens runs of the same letter to at most `keep` letters. Returns the new text and, for each of its
/// bytes, the byte offset in the input it came from.
pub fn squeeze(text: &str, keep: usize) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(text.len());
    let mut map = Vec::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut run = 0;
    for (i, c) in text.char_indices() {
        if Some(c) == prev && c.is_alphabetic() {
            run += 1;
        } else {
            run = 1;
            prev = Some(c);
        }
        if run <= keep {
            out.push(c);
            for _ in 0..c.len_utf8() {
                map.push(i);
            }
        }
    }
    (out, map)
}

/// Whether any letter is repeated (a text that squeezing to one letter changes).
pub fn has_double(text: &str) -> bool {
    let mut prev = None;
    for c in text.chars() {
        if Some(c) == prev && c.is_alphabetic() {
            return true;
        }
        prev = Some(c);
    }
    false
}

/// The full normalisation of a pattern or short text, as the lexicons see it (light, fold, squeeze to two).
pub fn normalize_for_lexicon(text: &str) -> String {
    squeeze(&fold(&light(text).text), 2).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize_for_lexicon(s)
    }

    #[test]
    fn folds_case_homoglyphs_fullwidth_and_math() {
        assert_eq!(norm("KILL"), "kill");
        assert_eq!(norm("kіll"), "kill"); // Cyrillic і
        assert_eq!(norm("ｋｉｌｌ"), "kill");
        assert_eq!(norm("𝐤𝐢𝐥𝐥"), "kill");
        assert_eq!(norm("ⓚⓘⓛⓛ"), "kill");
        assert_eq!(norm("kïll"), "kill");
    }

    #[test]
    fn removes_invisibles_and_decodes_leet() {
        assert_eq!(norm("k\u{200B}i\u{200D}l\u{FEFF}l"), "kill");
        assert_eq!(norm("k1ll"), "kill");
        assert_eq!(norm("$h!t"), "shit");
        assert_eq!(norm("p0rn"), "porn");
        assert_eq!(norm("I'm 12 and in 3rd grade"), "im 12 and in 3rd grade");
        assert_eq!(norm("don't tell"), "dont tell");
        assert_eq!(norm("hi!!! you"), "hi you");
    }

    #[test]
    fn squeezes_repeats_but_keeps_doubles() {
        assert_eq!(norm("killlllll"), "kill");
        assert_eq!(norm("soooo"), "soo");
        assert_eq!(squeeze("soo", 1).0, "so");
    }

    #[test]
    fn joins_spaced_letters() {
        let (joined, ranges) = join_spaced(&fold("k i l l myself")).unwrap_or_default();
        assert_eq!(joined, "kill myself");
        assert_eq!(ranges, vec![(0, 4)]);
        assert_eq!(join_spaced(&fold("k.i.l.l")).map(|j| j.0), Some("kill".to_string()));
        assert_eq!(join_spaced("i am ok"), None);
    }

    #[test]
    fn light_view_maps_back_to_original_bytes() {
        let original = "call ５５５ now";
        let view = light(original);
        let start = view.text.find("555").unwrap_or(0);
        let (s, e) = view.original_range(start, start + 3).unwrap_or((0, 0));
        assert_eq!(&original[s..e], "５５５");
        let zw = "a\u{200B}b";
        assert_eq!(light(zw).text, "ab");
    }
}
