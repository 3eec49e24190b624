//! Rewrites a text the ways people evade filters, to measure that the engine still flags it.

/// One way of rewriting a text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evasion {
    /// Letters replaced by digits and symbols ("kill" -> "k1ll", "sex" -> "s3x").
    Leetspeak,
    /// Latin letters replaced by Cyrillic and Greek look-alikes.
    Homoglyphs,
    /// A zero-width character between every two letters.
    ZeroWidth,
    /// The letters of every word of four letters or more separated ("k i l l").
    SpacedLetters,
    /// The letters of every word of four letters or more separated by dots ("k.i.l.l").
    DottedLetters,
}

impl Evasion {
    pub const ALL: [Evasion; 5] = [
        Evasion::Leetspeak,
        Evasion::Homoglyphs,
        Evasion::ZeroWidth,
        Evasion::SpacedLetters,
        Evasion::DottedLetters,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Evasion::Leetspeak => "leetspeak",
            Evasion::Homoglyphs => "homoglyphs",
            Evasion::ZeroWidth => "zero_width",
            Evasion::SpacedLetters => "spaced_letters",
            Evasion::DottedLetters => "dotted_letters",
        }
    }

    /// The rewritten text.
    pub fn apply(self, text: &str) -> String {
        match self {
            Evasion::Leetspeak => text
                .chars()
                .map(|c| match c {
                    'a' | 'A' => '4',
                    'e' | 'E' => '3',
                    'i' | 'I' => '1',
                    'o' | 'O' => '0',
                    's' | 'S' => '$',
                    't' | 'T' => '7',
                    other => other,
                })
                .collect(),
            Evasion::Homoglyphs => text
                .chars()
                .map(|c| match c {
                    'a' => 'а',
                    'e' => 'е',
                    'o' => 'ο',
                    'p' => 'р',
                    'c' => 'с',
                    'y' => 'у',
                    'x' => 'х',
                    'i' => 'і',
                    'k' => 'κ',
                    other => other,
                })
                .collect(),
            Evasion::ZeroWidth => {
                let mut out = String::with_capacity(text.len() * 3);
                let mut prev_letter = false;
                for c in text.chars() {
                    if prev_letter && c.is_alphabetic() {
                        out.push('\u{200B}');
                    }
                    prev_letter = c.is_alphabetic();
                    out.push(c);
                }
                out
            }
            Evasion::SpacedLetters => spread(text, " "),
            Evasion::DottedLetters => spread(text, "."),
        }
    }
}

fn spread(text: &str, sep: &str) -> String {
    text.split(' ')
        .map(|word| {
            if word.chars().filter(|c| c.is_alphabetic()).count() >= 4 {
                word.chars().map(String::from).collect::<Vec<_>>().join(sep)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
