//! Cuts a stream of text deltas into sentences, so that each sentence can be assessed before the child
//! sees it. A sentence ends at `.`, `!`, `?` or `…` followed by white space (so "3.5" stays whole), or at
//! a line break; a run of terminators and closing quotes stays with its sentence. A sentence that grows
//! past [`MAX_SENTENCE_CHARS`] without an end is cut at its last space (or hard, without one).

/// The longest piece held back while waiting for a sentence end.
pub const MAX_SENTENCE_CHARS: usize = 240;

#[derive(Debug, Default)]
pub struct SentenceSplitter {
    buffer: String,
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | '…')
}

fn is_closer(c: char) -> bool {
    matches!(c, '"' | '\'' | ')' | ']' | '”' | '’' | '»')
}

impl SentenceSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a delta; returns the sentences it completed (trimmed, never empty).
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.buffer.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = self.next_end() {
            let rest = self.buffer.split_off(end);
            let sentence = std::mem::replace(&mut self.buffer, rest);
            let sentence = sentence.trim();
            if !sentence.is_empty() {
                out.push(sentence.to_string());
            }
        }
        out
    }

    /// The text left when the stream ends, as a last sentence.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buffer);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_string())
    }

    /// Byte index where the first complete sentence of the buffer ends, if there is one.
    fn next_end(&self) -> Option<usize> {
        let chars: Vec<(usize, char)> = self.buffer.char_indices().collect();
        let mut i = 0;
        while i < chars.len() {
            let (at, c) = chars[i];
            if c == '\n' {
                return Some(at + 1);
            }
            if is_terminator(c) {
                let mut j = i + 1;
                while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
                    j += 1;
                }
                match chars.get(j) {
                    // A terminator at the end of the buffer: wait for what follows.
                    None => return None,
                    Some((end, next)) if next.is_whitespace() => return Some(*end),
                    Some(_) => i = j,
                }
                continue;
            }
            i += 1;
        }
        if chars.len() > MAX_SENTENCE_CHARS {
            let (limit, _) = chars[MAX_SENTENCE_CHARS];
            let cut = self.buffer[..limit].rfind(char::is_whitespace).filter(|&p| p > 0).unwrap_or(limit);
            return Some(cut);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(deltas: &[&str]) -> Vec<String> {
        let mut s = SentenceSplitter::new();
        let mut out: Vec<String> = deltas.iter().flat_map(|d| s.push(d)).collect();
        out.extend(s.finish());
        out
    }

    #[test]
    fn sentences_end_at_terminators_and_line_breaks() {
        assert_eq!(
            split(&["Hello there! How", " are you? I am", " fine.\nNew line", " here… and more"]),
            vec!["Hello there!", "How are you?", "I am fine.", "New line here…", "and more"]
        );
    }

    #[test]
    fn decimals_and_runs_of_terminators_stay_whole() {
        assert_eq!(
            split(&["Pi is 3.14 or so. Wow!!! Really?!", " Yes."]),
            vec!["Pi is 3.14 or so.", "Wow!!!", "Really?!", "Yes."]
        );
        assert_eq!(split(&["He said \"hi.\" Then", " left."]), vec!["He said \"hi.\"", "Then left."]);
    }

    #[test]
    fn a_terminator_at_the_end_of_a_delta_waits_for_the_next() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("It is 3.").is_empty());
        assert!(s.push("5 metres").is_empty());
        assert_eq!(s.push(" long. Next"), vec!["It is 3.5 metres long."]);
        assert_eq!(s.finish().as_deref(), Some("Next"));
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn long_text_without_an_end_is_cut_at_a_space() {
        let long = "word ".repeat(100);
        let parts = split(&[&long]);
        assert!(parts.len() >= 2);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_SENTENCE_CHARS));
        assert!(parts.iter().all(|p| !p.contains("wor ") && p.ends_with("word")));
        let solid = "x".repeat(600);
        let parts = split(&[&solid]);
        assert_eq!(parts.concat(), solid);
        assert!(parts.iter().all(|p| p.chars().count() <= MAX_SENTENCE_CHARS));
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é".repeat(500);
        assert_eq!(split(&[&text]).concat(), text);
        assert_eq!(split(&["Ça va? Très bien… merci"]), vec!["Ça va?", "Très bien…", "merci"]);
    }
}
