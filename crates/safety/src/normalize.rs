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
//!   "dont"), every other symbol a word break, single spaces between words. [`segment_spaced`] undoes
//!   spacing tricks ("k i l l m y s e l f", "k.i.l.l"): runs of lone letters are joined and split back into
//!   the words they spell by [`split_words`] (the most likely split under a word list, in linear time).
//!   [`squeeze`] shortens repeated letters: to two ("killlll" -> "kill", keeping legitimate doubles) and to
//!   one (matched against patterns squeezed the same way).
//!
//! Lexicon patterns go through exactly the same functions, so a pattern and a text always agree. The
//! lexical model reads [`normalize_for_model`]; the PII detectors also read [`evasion_views`], light views
//! with leetspeak decoded or spaced letters split, each still mapped to the original text.

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

/// Units that a number counts, written after it with or without a space ("15 years", "9yo", "5km").
const UNITS: &[&str] = &[
    "year", "years", "yr", "yrs", "yro", "yo", "month", "months", "week", "weeks", "day", "days", "hour",
    "hours", "hr", "hrs", "minute", "minutes", "min", "mins", "sec", "secs", "times", "am", "pm", "grade",
    "kg", "lb", "lbs", "km", "cm", "mm", "ft", "mph", "ml", "gb", "mb", "kb", "hp", "fps", "hz",
];

/// Whether a word is one of the [`UNITS`] a number counts.
fn is_unit(word: &str) -> bool {
    UNITS.contains(&word)
}

/// A token that is a number with an ordinal suffix or a unit written onto it ("3rd", "12yo", "10th", "90s",
/// "5km"): its digits are not leetspeak.
fn is_number_with_suffix(token: &str) -> bool {
    let digits = token.chars().take_while(|c| c.is_ascii_digit()).count();
    let suffix = &token[digits..];
    digits > 0
        && (matches!(
            suffix,
            "st" | "nd" | "rd" | "th" | "ish" | "s" | "k" | "m" | "x" | "d" | "p" | "g" | "h" | "v"
        ) || is_unit(suffix))
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

/// Whether a word of the folded view is one letter (or one leet digit) that may be part of a spaced-out
/// word ("k i l l", "n 1 g g a").
fn is_single(word: &str) -> bool {
    let mut cs = word.chars();
    matches!((cs.next(), cs.next()), (Some(c), None) if c.is_alphabetic() || leet_digit(c) != c)
}

/// The runs of three or more single-letter words among `words`, as index ranges.
fn spaced_runs(words: &[&str]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if is_single(words[i]) {
            let start = i;
            while i < words.len() && is_single(words[i]) {
                i += 1;
            }
            // A digit at either end of a run is a number next to a spaced word ("g r a d e 5"), not
            // leetspeak inside it ("n 1 g g a").
            let is_letter = |w: &str| w.chars().all(char::is_alphabetic);
            let mut first = start;
            while first < i && !is_letter(words[first]) {
                first += 1;
            }
            let mut last = i;
            while last > first && !is_letter(words[last - 1]) {
                last -= 1;
            }
            if last - first >= 3 {
                runs.push((first, last));
            }
        } else {
            i += 1;
        }
    }
    runs
}

/// Rewrites the runs of single-letter words of a folded text with `rewrite` (given the run's letters, leet
/// digits decoded: a spaced-out word may hide leetspeak, "n 1 g g e r"). None when there is no run.
fn rewrite_runs(folded: &str, mut rewrite: impl FnMut(&str, &mut String)) -> Option<String> {
    // The common case: no one-character word at all, so no run (and no allocation).
    if !folded.split(' ').any(is_single) {
        return None;
    }
    let words: Vec<&str> = folded.split(' ').collect();
    let runs = spaced_runs(&words);
    if runs.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(folded.len());
    let mut letters = String::new();
    let mut run_iter = runs.into_iter().peekable();
    let mut i = 0;
    while i < words.len() {
        if !out.is_empty() {
            out.push(' ');
        }
        if let Some(&(start, end)) = run_iter.peek().filter(|(start, _)| *start == i) {
            letters.clear();
            letters.extend(words[start..end].iter().flat_map(|w| w.chars()).map(leet_digit));
            rewrite(&letters, &mut out);
            run_iter.next();
            i = end;
        } else {
            out.push_str(words[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Splits runs of three or more single-letter (or leet-digit) words back into the words they spell: "i w a
/// n t t o k i l l m y s e l f" (after folding, also "k.i.l.l") -> "i want to kill myself" (see
/// [`split_words`]). None when the text has no such run (the common case), else the new text and the byte
/// ranges of the split runs in it.
pub fn segment_spaced(folded: &str) -> Option<(String, Vec<(usize, usize)>)> {
    let mut ranges = Vec::new();
    let out = rewrite_runs(folded, |letters, out| {
        let begin = out.len();
        for (k, (s, e)) in split_words(letters).into_iter().enumerate() {
            if k > 0 {
                out.push(' ');
            }
            out.push_str(&letters[s..e]);
        }
        ranges.push((begin, out.len()));
    })?;
    Some((out, ranges))
}

/// The word list that [`split_words`] knows, most frequent first (made by `safety-words` from the project's
/// data and the `train` sets; see `model/README.md`).
static WORDS: &str = include_str!("../model/words.txt");

/// Splitting costs (negative log-probabilities, in nats). A known word of rank `r` among `n` costs
/// `ln((r + 1) * ln n)` (Zipf's law: from about 2 for "to" to about 12 for the rarest word). A piece
/// that is no known word (a name, a typo) costs [`UNKNOWN_WORD`] plus [`UNKNOWN_LETTER`] per letter, so
/// that a known word always beats an unknown piece of the same length and a typo stays in one piece
/// rather than in scattered letters. A letter that repeats the one before it ("roommm", "everr") may
/// lengthen the previous piece for [`REPEATED_LETTER`].
const UNKNOWN_WORD: f32 = 10.0;
const UNKNOWN_LETTER: f32 = 2.5;
const REPEATED_LETTER: f32 = 1.0;

struct WordSplitter {
    words: aho_corasick::AhoCorasick,
    costs: Vec<f32>,
}

fn word_splitter() -> Option<&'static WordSplitter> {
    static SPLITTER: std::sync::OnceLock<Option<WordSplitter>> = std::sync::OnceLock::new();
    SPLITTER
        .get_or_init(|| {
            let words: Vec<&str> = WORDS.lines().filter(|w| !w.is_empty()).collect();
            let log_n = (words.len().max(2) as f32).ln();
            let costs = (0..words.len()).map(|r| ((r + 1) as f32 * log_n).ln()).collect();
            let words = aho_corasick::AhoCorasick::builder()
                .match_kind(aho_corasick::MatchKind::Standard)
                .build(&words)
                .ok()?;
            Some(WordSplitter { words, costs })
        })
        .as_ref()
}

/// The most likely split of a string of letters written without spaces into words (the byte ranges of the
/// words, in order, covering `letters`): dynamic programming over the known words found in it (Aho-Corasick,
/// overlapping) and unknown pieces, in time linear in its length (a word is at most 20 letters).
pub fn split_words(letters: &str) -> Vec<(usize, usize)> {
    let n = letters.len();
    if n == 0 {
        return Vec::new();
    }
    let Some(splitter) = word_splitter() else {
        return vec![(0, n)];
    };
    // The known words found, by start.
    let mut found: Vec<(usize, usize, f32)> = splitter
        .words
        .find_overlapping_iter(letters)
        .map(|m| (m.start(), m.end(), splitter.costs[m.pattern().as_usize()]))
        .collect();
    found.sort_unstable_by_key(|(s, e, _)| (*s, *e));
    // Two states per position: after a known word (or at the start), and inside an unknown piece. For each:
    // the cost, and where it came from (position, state, whether a new piece starts there).
    #[derive(Clone, Copy)]
    struct Step {
        cost: f32,
        from: usize,
        from_unknown: bool,
        new_piece: bool,
    }
    let none = Step { cost: f32::INFINITY, from: 0, from_unknown: false, new_piece: false };
    let mut known = vec![none; n + 1];
    let mut unknown = vec![none; n + 1];
    known[0].cost = 0.0;
    let relax = |slot: &mut Step, cost: f32, from: usize, from_unknown: bool, new_piece: bool| {
        if cost < slot.cost {
            *slot = Step { cost, from, from_unknown, new_piece };
        }
    };
    let mut next_found = 0;
    let mut prev_char: Option<char> = None;
    for (i, c) in letters.char_indices() {
        let j = i + c.len_utf8();
        let (k, u) = (known[i].cost, unknown[i].cost);
        while next_found < found.len() && found[next_found].0 == i {
            let (_, end, cost) = found[next_found];
            relax(&mut known[end], k + cost, i, false, true);
            relax(&mut known[end], u + cost, i, true, true);
            next_found += 1;
        }
        relax(&mut unknown[j], k + UNKNOWN_WORD + UNKNOWN_LETTER, i, false, true);
        relax(&mut unknown[j], u + UNKNOWN_LETTER, i, true, false);
        if prev_char == Some(c) {
            relax(&mut known[j], k + REPEATED_LETTER, i, false, false);
            relax(&mut unknown[j], u + REPEATED_LETTER, i, true, false);
        }
        prev_char = Some(c);
    }
    // Walk back, collecting where pieces start.
    let mut starts = Vec::new();
    let (mut pos, mut in_unknown) = (n, unknown[n].cost < known[n].cost);
    while pos > 0 {
        let step = if in_unknown { unknown[pos] } else { known[pos] };
        if !step.cost.is_finite() || step.from >= pos {
            // Unreachable: every position has the unknown step. Keep the rest in one piece.
            starts.push(0);
            break;
        }
        if step.new_piece {
            starts.push(step.from);
        }
        pos = step.from;
        in_unknown = step.from_unknown;
    }
    starts.reverse();
    if starts.first() != Some(&0) {
        starts.insert(0, 0);
    }
    starts.dedup();
    let mut pieces: Vec<(usize, usize)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    pieces.push((starts[starts.len() - 1], n));
    pieces
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

/// The text as the learned lexical model reads it: [`normalize_for_lexicon`], with leetspeak decoded in
/// numbers too when the text shows leetspeak elsewhere ("1 w4n7 70 d13" -> "i want to die"), and spaced-out
/// letters split back into words ("k i l l m y s e l f" -> "kill myself"). A text without either reads
/// exactly as [`normalize_for_lexicon`] reads it.
pub fn normalize_for_model(text: &str) -> String {
    let view = light(text);
    let (folded, leet) = fold_with(&view.text, false);
    let folded = if leet || view.text.contains('$') { fold_with(&view.text, true).0 } else { folded };
    let norm = squeeze(&folded, 2).0;
    match segment_spaced(&norm) {
        Some((segmented, _)) => squeeze(&segmented, 2).0,
        None => norm,
    }
}

/// The text as the sentence embedder reads it: the light view (invisible characters removed, look-alike
/// letters folded, lower case), and, when the text shows leetspeak or spaced-out letters, with those undone
/// in place ([`reads_as_leet`], then [`split_spaced_view`]): the rest of the text, its punctuation
/// and its numbers, stays as written, so that a rewrite reads like the text it hides. The embedder was never
/// shown "k 1 l l" or "ki\u{200b}ll": without this, every rewrite of the evasion test escaped the embedding
/// head; and reading a rewrite through [`normalize_for_model`] (punctuation and apostrophes dropped, every
/// number decoded) gave the embedder another text than the original in most rewrites.
pub fn normalize_for_embedding(text: &str) -> String {
    let view = light(text);
    let (folded, leet) = fold_with(&view.text, false);
    if !leet && !view.text.contains('$') && segment_spaced(&squeeze(&folded, 2).0).is_none() {
        return view.text;
    }
    let view = decode_leet(&view, reads_as_leet).unwrap_or(view);
    split_spaced_view(&view).map_or(view.text, |split| split.text)
}

/// Whether a token of a light view is leetspeak to decode for reading (`tokens` are the view's words, `n`
/// this one's place, `core` it without trailing punctuation): digits and `$` inside words with letters
/// ("k1ll", "my$elf"), and a token made only of leet digits when it spells a common word ("70" -> "to", "17."
/// -> "it.", "1" -> "i"); other numbers stay numbers ("84", "30").
fn reads_as_leet(tokens: &[&str], n: usize, core: &str) -> bool {
    // A number beside another number that spells no word is a list or a phone number, not a word ("5 5 5 1
    // 2 3 4"); "17 4" ("it a") is leetspeak.
    let is_number = |t: &str| {
        t.chars().any(|c| c.is_ascii_digit())
            && t.chars().all(|c| c.is_ascii_digit() || ".,:-/".contains(c))
            && !is_common_word(&spell_leet(t))
    };
    // A number among numbers ("5 5 5 1 2"), or counting something ("15 y34r$ 0ld"), stays a number.
    let before = n.checked_sub(1).map(|p| tokens[p]);
    let after = tokens.get(n + 1).copied();
    let is_number_like = !core.contains('$')
        && (before.is_none_or(is_number) && after.is_none_or(is_number)
            || core.len() > 1 && after.is_some_and(|t| is_unit(&spell_leet(t))));
    if core.chars().any(char::is_alphabetic) {
        // "4nd" and "734m" look like "2nd" and "5m", but spell "and" and "team"; "3rd" and "10th" stay.
        !is_number_with_suffix(core) || (!is_ordinal(core) && is_common_word(&spell_leet(core)))
    } else {
        !core.is_empty()
            && !is_number_like
            && core.len() <= 12
            && core.chars().all(|c| leet_digit(c) != c || c == '$' || is_apostrophe(c))
            && is_common_word(&spell_leet(core))
    }
}

/// What a token reads as with every leet digit decoded, apostrophes and trailing punctuation left out.
fn spell_leet(token: &str) -> String {
    token
        .trim_end_matches(['.', ',', '!', '?', ';', ':'])
        .chars()
        .filter(|&c| !is_apostrophe(c))
        .map(|c| if c == '$' { 's' } else { leet_digit(c) })
        .collect()
}

/// Whether a token is a number with its own ordinal suffix ("1st", "22nd", "3rd", "11th").
fn is_ordinal(token: &str) -> bool {
    let digits: String = token.chars().take_while(char::is_ascii_digit).collect();
    let Ok(n) = digits.parse::<u64>() else {
        return false;
    };
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    token[digits.len()..] == *suffix
}

/// How many of the most frequent known words count as common for [`is_common_word`]: for a word of two
/// letters, and for one of three or more (a real number of one or two digits often spells a rare word: "84"
/// "ba", "19" "ig"; one of three or more rarely spells any).
const COMMON_SHORT_WORDS: usize = 1_000;
const COMMON_WORDS: usize = 20_000;

/// Whether `word` is a common known word (of one letter, only "a" and "i"; see [`COMMON_WORDS`]): a token of
/// leet digits that spells one is read as that word.
fn is_common_word(word: &str) -> bool {
    let limit = match word.chars().count() {
        1 => return word == "a" || word == "i",
        2 => COMMON_SHORT_WORDS,
        _ => COMMON_WORDS,
    };
    word_splitter().is_some_and(|splitter| {
        splitter
            .words
            .find_overlapping_iter(word)
            .any(|m| m.start() == 0 && m.end() == word.len() && m.pattern().as_usize() < limit)
    })
}

impl LightView {
    fn push(&mut self, ch: char, range: (usize, usize)) {
        self.text.push(ch);
        for _ in 0..ch.len_utf8() {
            self.origin.push(range);
        }
    }

    /// The original range of the character at byte `i` of the view.
    fn origin_at(&self, i: usize) -> (usize, usize) {
        self.origin[i]
    }
}

/// Other readings of a light view that undo evasion, for the detectors that need digits and punctuation
/// (personal information): leetspeak decoded in words ("l1v3 47" -> "live 47"), then in numbers too
/// ("live at"); spaced-out letters split back into words ("m a p l e s t r e e t" -> "maple street").
/// Every reading keeps the map to the original text. Empty when the text shows neither (the common case).
pub fn evasion_views(view: &LightView) -> Vec<LightView> {
    let mut views = Vec::new();
    if view.text.bytes().any(|b| b.is_ascii_digit() || b == b'$') {
        let words = decode_leet(view, |_, _, core| leet_in_words(core));
        if (words.is_some() || view.text.contains('$'))
            && let Some(numbers) = decode_leet(view, |_, _, core| leet_in_words_and_numbers(core))
            && words.as_ref().is_none_or(|w| w.text != numbers.text)
        {
            views.push(numbers);
        }
        views.extend(words);
    }
    views.extend(split_spaced_view(view));
    views
}

/// Whether a token is leetspeak to decode in the personal-information views: digits and `$` inside words
/// with letters ("l1v3"), not a number with its unit ("3rd", "12yo").
fn leet_in_words(core: &str) -> bool {
    core.chars().any(char::is_alphabetic) && !is_number_with_suffix(core)
}

/// [`leet_in_words`], and also a short token made only of leet digits ("47" -> "at"), wherever it is.
fn leet_in_words_and_numbers(core: &str) -> bool {
    core.chars().any(char::is_alphabetic)
        || (core.len() <= 12
            && core.chars().any(|c| c.is_ascii_digit() || c == '$')
            && core.chars().all(|c| leet_digit(c) != c || c == '$' || is_apostrophe(c)))
}

/// Leetspeak decoded in the tokens of a light view that `decode` picks (given the view's words, the
/// token's place, and the token without trailing punctuation), keeping the map to the original text. None
/// when nothing changes.
fn decode_leet(view: &LightView, decode: impl Fn(&[&str], usize, &str) -> bool) -> Option<LightView> {
    let mut out = LightView {
        text: String::with_capacity(view.text.len()),
        origin: Vec::with_capacity(view.origin.len()),
    };
    let mut changed = false;
    let mut at = 0;
    let tokens: Vec<&str> = view.text.split(' ').collect();
    for (n, token) in tokens.iter().enumerate() {
        let core = token.trim_end_matches(['.', ',', '!', '?', ';', ':']);
        let decode = decode(&tokens, n, core);
        for (i, c) in token.char_indices() {
            let mapped = match c {
                _ if !decode || i >= core.len() => c,
                '$' => 's',
                d if d.is_ascii_digit() => leet_digit(d),
                other => other,
            };
            changed |= mapped != c;
            out.push(mapped, view.origin_at(at + i));
        }
        at += token.len();
        if at < view.text.len() {
            out.push(' ', view.origin_at(at));
            at += 1;
        }
    }
    changed.then_some(out)
}

/// An apostrophe between letters belongs to the word ("i'm"): its letters never stand alone. One between
/// spaces is a separator ("m a r y ' s").
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_apostrophe(c)
}

/// Whether a light-view text has three lone letters in a row, separated only by spaces or punctuation
/// (what [`split_spaced_view`] splits): a quick test without allocating, for the common text that has none.
fn has_spaced_run(text: &str) -> bool {
    let mut run = 0;
    let mut prev_is_word_char = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let next_is_word_char = chars.peek().is_some_and(|&n| is_word_char(n));
        if c.is_alphabetic() && !prev_is_word_char && !next_is_word_char {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else if c.is_alphanumeric() || c == '@' {
            run = 0;
        }
        prev_is_word_char = is_word_char(c);
    }
    false
}

/// Spaced-out letters of a light view ("m a p l e", "m.a.p.l.e", "s-e-x": three or more letters standing
/// alone, separated by spaces or punctuation) split back into the words they spell, one space between
/// words. None when there is no such run.
fn split_spaced_view(view: &LightView) -> Option<LightView> {
    let text = view.text.as_str();
    if !has_spaced_run(text) {
        return None;
    }
    let is_separator = |c: char| !c.is_alphanumeric() && c != '@';
    // The letters that stand alone: (byte index, char).
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let alone = |k: usize| {
        let c = chars[k].1;
        c.is_alphabetic()
            && (k == 0 || !is_word_char(chars[k - 1].1))
            && chars.get(k + 1).is_none_or(|n| !is_word_char(n.1))
    };
    // Runs of lone letters separated only by separators: (first char index, last char index, letter indices).
    let mut runs: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        if alone(k) {
            current.push(k);
            k += 1;
            continue;
        }
        if is_separator(chars[k].1) && !current.is_empty() {
            k += 1;
            continue;
        }
        if current.len() >= 3 {
            runs.push(std::mem::take(&mut current));
        }
        current.clear();
        k += 1;
    }
    if current.len() >= 3 {
        runs.push(current);
    }
    if runs.is_empty() {
        return None;
    }
    let mut out =
        LightView { text: String::with_capacity(text.len()), origin: Vec::with_capacity(text.len()) };
    let mut k = 0;
    for run in runs {
        let (first, last) = (run[0], run[run.len() - 1]);
        while k < first {
            out.push(chars[k].1, view.origin_at(chars[k].0));
            k += 1;
        }
        // The gaps between the run's letters: the most common one separates letters ("k i l l", "k.i.l.l"),
        // any other separates words ("k.i.l.l m.e", "s a l o n , e a c h").
        let gap = |a: usize| {
            let (at, c) = chars[run[a]];
            (at + c.len_utf8(), chars[run[a + 1]].0)
        };
        let mut counts: Vec<(&str, usize)> = Vec::new();
        for a in 0..run.len() - 1 {
            let (s, e) = gap(a);
            match counts.iter_mut().find(|(g, _)| *g == &text[s..e]) {
                Some((_, n)) => *n += 1,
                None => counts.push((&text[s..e], 1)),
            }
        }
        let separator = counts.iter().rev().max_by_key(|(_, n)| *n).map_or(" ", |(g, _)| *g);
        // The words: the pieces of the run between other gaps, where lone letters in a row are one word
        // spelt with another separator ("k i l l m.y.s.e.l.f"). Ranges of indices into `run`.
        let mut pieces: Vec<(usize, usize)> = Vec::new();
        let mut piece_start = 0;
        for a in 0..run.len() {
            if a + 1 == run.len() || {
                let (s, e) = gap(a);
                &text[s..e] != separator
            } {
                pieces.push((piece_start, a + 1));
                piece_start = a + 1;
            }
        }
        let mut words: Vec<(usize, usize)> = Vec::with_capacity(pieces.len());
        let mut i = 0;
        while i < pieces.len() {
            let mut j = i;
            while j < pieces.len() && pieces[j].1 - pieces[j].0 == 1 {
                j += 1;
            }
            if j - i >= 3 {
                words.push((pieces[i].0, pieces[j - 1].1));
                i = j;
            } else {
                words.push(pieces[i]);
                i += 1;
            }
        }
        for (w, &(mut from, to)) in words.iter().enumerate() {
            if w > 0 {
                // The marks of the gap before the word ("s a l o n , e a c h" -> "salon, each"), one space.
                let (s, e) = gap(from - 1);
                let rest = push_marks(&mut out, view, &text[..e], s, separator);
                for (i, c) in text[rest..e].char_indices() {
                    if !c.is_whitespace() && !separator.contains(c) {
                        out.push(c, view.origin_at(rest + i));
                    }
                }
                // After an apostrophe, the ending of a contraction belongs to the word before and is a word
                // of its own: "s h e ' s a s l e e p" is "she's asleep", not "she' sa sleep".
                if out.text.chars().next_back().is_some_and(is_apostrophe) {
                    let letters: String = run[from..to].iter().map(|&r| chars[r].1).collect();
                    if let Some(ending) =
                        ["ll", "re", "ve", "s", "t", "d", "m"].into_iter().find(|e| letters.starts_with(e))
                    {
                        for &r in &run[from..from + ending.len()] {
                            out.push(chars[r].1, view.origin_at(chars[r].0));
                        }
                        from += ending.len();
                    }
                }
                if from == to {
                    continue;
                }
                out.push(' ', view.origin_at(s));
            }
            push_split_words(&mut out, view, &chars, &run[from..to]);
        }
        k = last + 1;
        // Marks right after the run, separated like its letters ("k.i.l.l.?.?" -> "kill??", "k i l l ." ->
        // "kill.").
        if k < chars.len() {
            let rest = push_marks(&mut out, view, text, chars[k].0, separator);
            while k < chars.len() && chars[k].0 < rest {
                k += 1;
            }
        }
    }
    while k < chars.len() {
        out.push(chars[k].1, view.origin_at(chars[k].0));
        k += 1;
    }
    Some(out)
}

/// Punctuation written between separators after spaced-out letters, from byte `at` of `text` (".," -> ",",
/// ".?.?" -> "??", " ," -> ","): pushes the marks without the separators and returns where they end.
fn push_marks(out: &mut LightView, view: &LightView, text: &str, mut at: usize, separator: &str) -> usize {
    while text[at..].starts_with(separator) {
        let mark = at + separator.len();
        match text[mark..].chars().next() {
            Some(c) if !c.is_alphanumeric() && !c.is_whitespace() => {
                out.push(c, view.origin_at(mark));
                at = mark + c.len_utf8();
            }
            _ => break,
        }
    }
    at
}

/// The letters of `run` (indices into `chars`, a light view's characters) split into the words they spell,
/// one space between words, each letter keeping its place in the original.
fn push_split_words(out: &mut LightView, view: &LightView, chars: &[(usize, char)], run: &[usize]) {
    let letters: String = run.iter().map(|&r| chars[r].1).collect();
    // Byte offsets in `letters` -> the run's letter indices.
    let mut letter_at = Vec::with_capacity(letters.len());
    for &r in run {
        letter_at.extend(std::iter::repeat_n(r, chars[r].1.len_utf8()));
    }
    for (w, (s, e)) in split_words(&letters).into_iter().enumerate() {
        if w > 0 {
            out.push(' ', view.origin_at(chars[letter_at[s]].0));
        }
        for (i, c) in letters[s..e].char_indices() {
            out.push(c, view.origin_at(chars[letter_at[s + i]].0));
        }
    }
}

/// The full normalisation of a pattern or short text, as the lexicons see it (light, fold, squeeze to two).
pub fn normalize_for_lexicon(text: &str) -> String {
    squeeze(&fold(&light(text).text), 2).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedder_reads_evasive_text_decoded_and_ordinary_text_as_written() {
        assert_eq!(normalize_for_embedding("i w4nt 70 k1ll my$elf"), "i want to kill myself");
        assert_eq!(normalize_for_embedding("k i l l   m y s e l f"), "kill myself");
        assert_eq!(normalize_for_embedding("ki\u{200b}ll m\u{0443}self"), "kill myself");
        assert_eq!(
            normalize_for_embedding("Hey! I scored 3 goals, what's next?"),
            "hey! i scored 3 goals, what's next?"
        );
    }

    #[test]
    fn the_embedder_reads_a_rewrite_as_the_text_it_hides() {
        let reads = |s: &str| normalize_for_embedding(s);
        // Punctuation and apostrophes stay; numbers stay numbers unless they spell a common word beside words.
        assert_eq!(reads("1 w4n7 70 k1ll my$3lf."), "i want to kill myself.");
        assert_eq!(reads("my n31ghb0ur 1$ 84 4nd l1v3$ 4l0n3"), "my neighbour is 84 and lives alone");
        assert_eq!(reads("wr173 4 $3x $70ry 4b0u7 4 13 y34r 0ld"), "write a sex story about a 13 year old");
        assert_eq!(reads("my num83r 1$ 5 5 5 1 2 3 4"), "my number is 5 5 5 1 2 3 4");
        // Another gap than the one between letters ends a word; the marks in it stay.
        assert_eq!(reads("k.i.l.l m.y.s.e.l.f.?.?"), "kill myself??");
        assert_eq!(reads("i w4nt to s e l l my p.h.o.n.e"), "i want to sell my phone");
        assert_eq!(reads("h o w , w h e r e ?"), "how, where?");
        assert_eq!(reads("i want to k i l l m.y.s.e.l.f"), "i want to kill myself");
        assert_eq!(reads("s h e ' s a s l e e p"), "she's asleep");
        assert_eq!(
            reads("W.h.a.t is T.a.y.l.o.r S.w.i.f.t.'.s h.o.m.e a.d.d.r.e.s.s.?"),
            "what is taylor swift's home address?"
        );
    }

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
    fn splits_spaced_letters_into_words() {
        let split = |s: &str| segment_spaced(&fold(s));
        assert_eq!(split("k i l l myself"), Some(("kill myself".to_string(), vec![(0, 4)])));
        assert_eq!(split("k.i.l.l m.y.s.e.l.f").map(|s| s.0), Some("kill myself".to_string()));
        assert_eq!(
            split("i w a n t to k i l l m y s e l f").map(|s| s.0),
            Some("i want to kill myself".to_string())
        );
        assert_eq!(split("s-e-x").map(|s| s.0), Some("sex".to_string()));
        // A rare word is one word, not common pieces; repeated letters stay with their word.
        assert_eq!(split("a s s a s s i n").map(|s| s.0), Some("assassin".to_string()));
        assert_eq!(split("r o o m m m at n i g h t").map(|s| s.0), Some("roommm at night".to_string()));
        // Ordinary text with one-letter words is left alone.
        assert_eq!(split("i am a kid"), None);
        assert_eq!(split("i am ok"), None);
    }

    #[test]
    fn split_words_covers_the_letters() {
        assert_eq!(split_words(""), Vec::<(usize, usize)>::new());
        assert_eq!(split_words("killmyself"), vec![(0, 4), (4, 10)]);
        // Unknown letters stay together, between known words.
        assert_eq!(split_words("thezqxjwords"), vec![(0, 3), (3, 7), (7, 12)]);
        let pieces = split_words("ďżxkill");
        assert_eq!(pieces.first().map(|p| p.0), Some(0));
        assert_eq!(pieces.last().map(|p| p.1), Some("ďżxkill".len()));
        assert!(pieces.windows(2).all(|w| w[0].1 == w[1].0));
    }

    #[test]
    fn evasion_views_undo_leetspeak_and_spacing_keeping_the_map() {
        let original = "1 l1v3 47 42 m4pl3 $7r337";
        let views = evasion_views(&light(original));
        assert!(
            views.iter().any(|v| v.text == "1 live 47 42 maple street"),
            "{:?}",
            views.iter().map(|v| &v.text).collect::<Vec<_>>()
        );
        assert!(views.iter().any(|v| v.text == "i live at 42 maple street"));
        let spaced = "i live at 42 m a p l e s t r e e t";
        let views = evasion_views(&light(spaced));
        assert_eq!(views.len(), 1);
        let view = &views[0];
        assert_eq!(view.text, "i live at 42 maple street");
        let at = view.text.find("maple").unwrap_or(0);
        let (s, e) = view.original_range(at, view.text.len()).unwrap_or((0, 0));
        assert_eq!(&spaced[s..e], "m a p l e s t r e e t");
        assert!(evasion_views(&light("call me at 555 1234, I am 12")).is_empty());
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
