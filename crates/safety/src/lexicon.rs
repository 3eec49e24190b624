//! Curated lexicons: the text format, its parser, and the compiled multi-pattern matcher.
//!
//! # Format
//! ```text
//! # a comment
//! [self_harm] level=4 assistant=4 weight=0.95 reason="mentions wanting to kill themselves"
//! kill myself
//! {want|wanna|wnt} to die
//! masturbat*
//! ```
//! A header names a group: a category (its stable name), `allow` (benign expressions that suppress any
//! match lying inside them: "naked mole rat", "bath bomb"), or `marker:NAME` (a feature used by the rules:
//! `marker:minor`, `marker:conceal`, `marker:online_contact`, `marker:approach`, `marker:harm`). `level` is
//! the level for a child's message, `assistant` the level for the assistant's (defaults to `level`),
//! `assistant_reason` the reason for the assistant's message where it reads differently from `reason` (which
//! says what a child does: "treats the buddy as a person"), `weight` the contribution to the category
//! score, and `explains` (comma-separated categories, optional)
//! the readings of the learned layers that a match accounts for: where the group matches, their level in
//! those categories is at most the group's ("will you be my girlfriend" said to the buddy sits near sexual
//! examples). Each following line is a phrase; `{a|b|}` expands to alternatives (cartesian product), a
//! trailing `*` matches any word ending. Phrases are normalised exactly like messages (see `normalize`), and
//! must match on word boundaries.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::normalize::{self, has_double, segment_spaced, squeeze};
use crate::types::{Category, Role};

/// A feature that the rules combine with categories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Marker {
    /// Mentions a minor ("12 year old", "little girl", "kid").
    Minor,
    /// Hides something from the child's parents ("so my mum cant see", "keep it secret").
    Conceal,
    /// Names someone the child knows only online ("my friend from roblox", "a guy i met in a game").
    OnlineContact,
    /// Someone seeks the child out: to meet or pick them up, for a photo of them, for private contact, with
    /// presents or as a partner ("wants to pick me up", "wants a pic of me", "says hes my boyfriend").
    Approach,
    /// Says what a disclosure of abuse says was done or felt: hurting, fear, secrecy, the body, going
    /// without ("hits", "scared", "secret", "no food").
    Harm,
}

/// What a group of phrases means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupKind {
    Category(Category),
    Allow,
    Marker(Marker),
}

/// A group of phrases sharing a meaning, levels and a reason.
#[derive(Clone, Debug)]
pub struct Group {
    pub kind: GroupKind,
    pub child_level: u8,
    pub assistant_level: u8,
    pub weight: f32,
    pub reason: String,
    /// The reason for the assistant's message, where it differs (`assistant_reason=`).
    pub assistant_reason: Option<String>,
    /// Categories in which a match accounts for the learned layers' reading (`explains=`).
    pub explains: Vec<Category>,
}

impl Group {
    pub fn level(&self, role: Role) -> u8 {
        match role {
            Role::Child => self.child_level,
            Role::Assistant => self.assistant_level,
        }
    }

    /// What a match says about a message written in `role`.
    pub fn reason(&self, role: Role) -> &str {
        match (role, &self.assistant_reason) {
            (Role::Assistant, Some(reason)) => reason,
            _ => &self.reason,
        }
    }
}

/// A parse error, with its line.
#[derive(Debug, thiserror::Error)]
#[error("lexicon line {line}: {message}")]
pub struct LexiconError {
    pub line: usize,
    pub message: String,
}

/// Curated lexicons, not yet compiled.
#[derive(Clone, Debug, Default)]
pub struct Lexicons {
    pub(crate) groups: Vec<Group>,
    /// (phrase, group index)
    pub(crate) phrases: Vec<(String, usize)>,
}

const BUILTIN: &[(&str, &str)] = &[
    ("crisis.txt", include_str!("../lexicons/crisis.txt")),
    ("sexual.txt", include_str!("../lexicons/sexual.txt")),
    ("violence.txt", include_str!("../lexicons/violence.txt")),
    ("hate.txt", include_str!("../lexicons/hate.txt")),
    ("risk.txt", include_str!("../lexicons/risk.txt")),
    ("allow.txt", include_str!("../lexicons/allow.txt")),
];

impl Lexicons {
    /// The lexicons that ship with Onda (`crates/safety/lexicons/*.txt`, compiled in).
    pub fn builtin() -> Self {
        let mut all = Lexicons::default();
        for (name, src) in BUILTIN {
            match Lexicons::parse(src) {
                Ok(lex) => all.extend(lex),
                // The built-in lexicons are checked by a unit test; never reached in a tested build.
                Err(e) => panic!("built-in lexicon {name}: {e}"),
            }
        }
        all
    }

    /// Parses lexicons in the text format.
    pub fn parse(src: &str) -> Result<Self, LexiconError> {
        let mut lex = Lexicons::default();
        let mut current: Option<usize> = None;
        for (n, raw) in src.lines().enumerate() {
            let line = raw.trim();
            let err = |message: String| LexiconError { line: n + 1, message };
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line.starts_with('[') {
                lex.groups.push(parse_header(line).map_err(err)?);
                current = Some(lex.groups.len() - 1);
                continue;
            }
            let group = current.ok_or_else(|| err("phrase before any [group] header".into()))?;
            for phrase in expand(line).map_err(err)? {
                let phrase = phrase.split_whitespace().collect::<Vec<_>>().join(" ");
                if !phrase.is_empty() {
                    lex.phrases.push((phrase, group));
                }
            }
        }
        Ok(lex)
    }

    /// Adds the groups and phrases of `other`.
    pub fn extend(&mut self, other: Lexicons) {
        let offset = self.groups.len();
        self.groups.extend(other.groups);
        self.phrases.extend(other.phrases.into_iter().map(|(p, g)| (p, g + offset)));
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The number of (expanded) phrases.
    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }
}

fn parse_header(line: &str) -> Result<Group, String> {
    let close = line.find(']').ok_or("header without ]")?;
    let name = line[1..close].trim();
    let kind = if name == "allow" {
        GroupKind::Allow
    } else if let Some(marker) = name.strip_prefix("marker:") {
        GroupKind::Marker(match marker {
            "minor" => Marker::Minor,
            "conceal" => Marker::Conceal,
            "online_contact" => Marker::OnlineContact,
            "approach" => Marker::Approach,
            "harm" => Marker::Harm,
            other => return Err(format!("unknown marker {other:?}")),
        })
    } else {
        GroupKind::Category(Category::from_name(name).ok_or_else(|| format!("unknown category {name:?}"))?)
    };
    let mut group = Group {
        kind,
        child_level: 0,
        assistant_level: 0,
        weight: 0.5,
        reason: String::new(),
        assistant_reason: None,
        explains: Vec::new(),
    };
    let mut assistant = None;
    let mut rest = line[close + 1..].trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| format!("expected key=value at {rest:?}"))?;
        let key = rest[..eq].trim();
        let after = &rest[eq + 1..];
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').ok_or("unterminated quote")?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        let level = |v: &str| -> Result<u8, String> {
            v.parse::<u8>().ok().filter(|l| *l <= 4).ok_or_else(|| format!("bad level {v:?}"))
        };
        match key {
            "level" => group.child_level = level(value)?,
            "assistant" => assistant = Some(level(value)?),
            "weight" => {
                group.weight = value
                    .parse::<f32>()
                    .ok()
                    .filter(|w| (0.0..=1.0).contains(w))
                    .ok_or_else(|| format!("bad weight {value:?}"))?
            }
            "reason" => group.reason = value.to_string(),
            "assistant_reason" => group.assistant_reason = Some(value.to_string()),
            "explains" => {
                group.explains = value
                    .split(',')
                    .map(|name| {
                        Category::from_name(name.trim()).ok_or_else(|| format!("unknown category {name:?}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown key {other:?}")),
        }
        rest = remainder.trim();
    }
    group.assistant_level = assistant.unwrap_or(group.child_level);
    if matches!(group.kind, GroupKind::Category(_)) && group.reason.is_empty() {
        return Err("a category group needs a reason".into());
    }
    Ok(group)
}

/// Expands `{a|b|}` alternatives.
fn expand(line: &str) -> Result<Vec<String>, String> {
    let mut outs = vec![String::new()];
    let mut rest = line;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').map(|c| c + open).ok_or("unclosed {")?;
        let literal = &rest[..open];
        let alternatives: Vec<&str> = rest[open + 1..close].split('|').collect();
        let mut next = Vec::with_capacity(outs.len() * alternatives.len());
        for o in &outs {
            for a in &alternatives {
                next.push(format!("{o}{literal}{a}"));
            }
        }
        if next.len() > 25_000 {
            return Err("expansion too large".into());
        }
        outs = next;
        rest = &rest[close + 1..];
    }
    if rest.contains('}') {
        return Err("unopened }".into());
    }
    Ok(outs.into_iter().map(|o| o + rest).collect())
}

/// One compiled phrase.
#[derive(Clone, Debug)]
struct Entry {
    group: usize,
    prefix: bool,
    multiword: bool,
}

/// For each byte position of `text` (and its end), how many bytes before it are not spaces.
fn non_space_index(text: &str) -> Vec<usize> {
    let mut index = Vec::with_capacity(text.len() + 1);
    let mut n = 0;
    for b in text.bytes() {
        index.push(n);
        n += usize::from(b != b' ');
    }
    index.push(n);
    index
}

/// A pattern of one automaton: the entries that share its normalised form.
type Targets = Vec<usize>;

/// The lexicons compiled into Aho-Corasick automata over three forms of each phrase.
#[derive(Clone, Debug)]
pub struct Matcher {
    groups: Vec<Group>,
    entries: Vec<Entry>,
    light: AhoCorasick,
    light_targets: Vec<Targets>,
    squeezed: AhoCorasick,
    squeezed_targets: Vec<Targets>,
    compact: AhoCorasick,
    compact_targets: Vec<Targets>,
}

/// The group hits of one text: for each group hit, the number of distinct phrases of it that matched.
#[derive(Clone, Debug, Default)]
pub struct Hits {
    pub groups: Vec<(usize, u32)>,
}

impl Hits {
    pub fn contains_group(&self, group: usize) -> bool {
        self.groups.iter().any(|(g, _)| *g == group)
    }
}

fn build(patterns: &[String]) -> Result<AhoCorasick, aho_corasick::BuildError> {
    AhoCorasickBuilder::new().match_kind(MatchKind::Standard).build(patterns)
}

/// One view's automaton over its distinct forms, and for each form the entries that share it.
fn build_view(
    mut pairs: Vec<(String, usize)>,
) -> Result<(AhoCorasick, Vec<Targets>), aho_corasick::BuildError> {
    pairs.sort_unstable();
    let mut forms: Vec<String> = Vec::new();
    let mut targets: Vec<Targets> = Vec::new();
    for (form, entry) in pairs {
        if forms.last() == Some(&form) {
            if let Some(last) = targets.last_mut()
                && !last.contains(&entry)
            {
                last.push(entry);
            }
        } else {
            forms.push(form);
            targets.push(vec![entry]);
        }
    }
    Ok((build(&forms)?, targets))
}

impl Matcher {
    pub fn new(lexicons: &Lexicons) -> Result<Self, aho_corasick::BuildError> {
        let mut entries = Vec::new();
        // Each view's (form, entry) pairs, without an index of cloned strings; the expanded lexicons hold
        // hundreds of thousands of phrases, and start-up memory is what a family's machine notices.
        let (mut light, mut squeezed, mut compact) = (Vec::new(), Vec::new(), Vec::new());
        for (phrase, group) in &lexicons.phrases {
            let (body, prefix) = match phrase.strip_suffix('*') {
                Some(body) => (body, true),
                None => (phrase.as_str(), false),
            };
            let light_form = normalize::normalize_for_lexicon(body);
            if light_form.is_empty() {
                continue;
            }
            let multiword = light_form.contains(' ');
            let id = entries.len();
            entries.push(Entry { group: *group, prefix, multiword });
            squeezed.push((squeeze(&light_form, 1).0, id));
            let compact_form: String = light_form.chars().filter(|c| *c != ' ').collect();
            if compact_form.chars().count() >= 4 {
                compact.push((compact_form, id));
            }
            light.push((light_form, id));
        }
        // One view's automaton is built and its forms dropped before the next.
        let (light, light_targets) = build_view(light)?;
        let (squeezed, squeezed_targets) = build_view(squeezed)?;
        let (compact, compact_targets) = build_view(compact)?;
        Ok(Matcher {
            groups: lexicons.groups.clone(),
            entries,
            light,
            light_targets,
            squeezed,
            squeezed_targets,
            compact,
            compact_targets,
        })
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Finds the groups whose phrases occur in a light-view text (see `normalize`).
    pub fn scan(&self, light_text: &str) -> Hits {
        let (folded, leet) = normalize::fold_with(light_text, false);
        let mut hit_entries: Vec<usize> = Vec::new();
        self.scan_folded(&folded, &mut hit_entries);
        if leet || light_text.contains('$') {
            let (aggressive, _) = normalize::fold_with(light_text, true);
            if aggressive != folded {
                self.scan_folded(&aggressive, &mut hit_entries);
            }
        }
        hit_entries.sort_unstable();
        hit_entries.dedup();
        let mut groups: Vec<(usize, u32)> = Vec::new();
        for e in hit_entries {
            let g = self.entries[e].group;
            match groups.iter_mut().find(|(x, _)| *x == g) {
                Some((_, n)) => *n += 1,
                None => groups.push((g, 1)),
            }
        }
        Hits { groups }
    }

    /// Scans one folded view, and the same with its spaced-out letters split back into words. The matches of
    /// all of them are weighed against the allowed expressions together ("cut myself on p a p e r": the
    /// allowed "cut myself on paper" is only seen once "paper" is split back), in one coordinate that they
    /// share: the count of non-space bytes before a position (splitting only moves spaces, and squeezing is
    /// mapped back).
    fn scan_folded(&self, folded: &str, hit_entries: &mut Vec<usize>) {
        let (view, _) = squeeze(folded, 2);
        let found = self.find_in_view(&view);
        let Some((segmented, runs)) = segment_spaced(&view) else {
            self.keep_unallowed(found, hit_entries);
            return;
        };
        let (squeezed, map) = squeeze(&segmented, 2);
        let mut in_segmented = self.find_in_view(&squeezed);
        self.find_compact(&squeezed, &map, &runs, &mut in_segmented);
        // Positions of `squeezed` -> `segmented` (the end of the text maps to the end).
        let unsqueeze = |p: usize| map.get(p).copied().unwrap_or(segmented.len());
        let view_index = non_space_index(&view);
        let segmented_index = non_space_index(&segmented);
        let mut all: Vec<(usize, usize, usize)> =
            found.into_iter().map(|(s, e, entry)| (view_index[s], view_index[e], entry)).collect();
        all.extend(
            in_segmented
                .into_iter()
                .map(|(s, e, entry)| (segmented_index[unsqueeze(s)], segmented_index[unsqueeze(e)], entry)),
        );
        self.keep_unallowed(all, hit_entries);
    }

    /// Spaced-out letters split back into words may be split wrongly where a short word was glued on ("k i l
    /// l a p e r s o n" -> "killa person"): there, the view with its spaces removed is matched against the
    /// phrases without their spaces. A match must overlap a run of spaced-out letters and start and end
    /// where a word of the split starts and ends, or one letter inside it when that letter is a glued "a" or
    /// "i" ("amass shooting", "killa"); a `stem*` phrase may end anywhere. Allowed expressions suppress
    /// matches as in the other views ("cut myself on paper").
    fn find_compact(
        &self,
        view: &str,
        map: &[usize],
        runs: &[(usize, usize)],
        found: &mut Vec<(usize, usize, usize)>,
    ) {
        // The runs, moved into the squeezed view.
        let ranges: Vec<(usize, usize)> = runs
            .iter()
            .map(|(s, e)| (map.partition_point(|&m| m < *s), map.partition_point(|&m| m < *e)))
            .collect();
        let bytes = view.as_bytes();
        let glue = |b: u8| matches!(b, b'a' | b'i');
        let word_start = |p: usize| p == 0 || bytes[p - 1] == b' ';
        let word_end = |p: usize| p == bytes.len() || bytes[p] == b' ';
        let start_ok = |p: usize| word_start(p) || (p >= 1 && glue(bytes[p - 1]) && word_start(p - 1));
        let end_ok = |p: usize| word_end(p) || (p < bytes.len() && glue(bytes[p]) && word_end(p + 1));
        // The ranges are sorted and disjoint: a binary search keeps this linear in the text.
        let overlapping = |vs: usize, ve: usize| {
            let i = ranges.partition_point(|(_, e)| *e <= vs);
            ranges.get(i).is_some_and(|(s, _)| *s < ve)
        };
        let mut compact = String::with_capacity(view.len());
        let mut cmap = Vec::with_capacity(view.len());
        for (i, c) in view.char_indices() {
            if c != ' ' {
                compact.push(c);
                cmap.extend(i..i + c.len_utf8());
            }
        }
        for m in self.compact.find_overlapping_iter(&compact) {
            let vs = cmap[m.start()];
            let ve = cmap[m.end() - 1] + 1;
            if !start_ok(vs) || !overlapping(vs, ve) {
                continue;
            }
            for &entry in &self.compact_targets[m.pattern().as_usize()] {
                if self.entries[entry].prefix || end_ok(ve) {
                    found.push((vs, ve, entry));
                }
            }
        }
    }

    /// The matches (start, end, entry) in a view, allowed expressions included.
    fn find_in_view(&self, view: &str) -> Vec<(usize, usize, usize)> {
        let mut found: Vec<(usize, usize, usize)> = Vec::new();
        self.collect(view, &self.light, &self.light_targets, None, &mut found);
        if has_double(view) {
            let (sq, map) = squeeze(view, 1);
            let mut sq_found = Vec::new();
            self.collect(&sq, &self.squeezed, &self.squeezed_targets, Some((view, &map)), &mut sq_found);
            found.extend(sq_found);
        }
        found
    }

    /// Adds the entries of `found` (start, end, entry) that are not allowed expressions, nor suppressed by
    /// one: a match is suppressed when an allowed expression covers its end ("kill him" in "kill him in
    /// minecraft", "he hit me" in "he hit me up", "get high" in "get high scores"), unless the match holds
    /// the whole allowed expression and more: "wish i was dead" says more than the allowed "i was dead"
    /// (as in "lol i was dead"), and is kept.
    fn keep_unallowed(&self, found: Vec<(usize, usize, usize)>, out: &mut Vec<usize>) {
        let is_allow = |entry: usize| self.groups[self.entries[entry].group].kind == GroupKind::Allow;
        // Allowed expressions sorted by start, and hits sorted by end: one sweep (linear after sorting).
        let mut allowed: Vec<(usize, usize)> =
            found.iter().filter(|(_, _, e)| is_allow(*e)).map(|(s, e, _)| (*s, *e)).collect();
        allowed.sort_unstable();
        // The earliest start of the allowed expressions ending at each position.
        let mut earliest_start_by_end: std::collections::HashMap<usize, usize> =
            std::collections::HashMap::new();
        for &(a, b) in &allowed {
            earliest_start_by_end.entry(b).and_modify(|s| *s = (*s).min(a)).or_insert(a);
        }
        let mut hits: Vec<(usize, usize, usize)> =
            found.iter().filter(|(_, _, e)| !is_allow(*e)).map(|(s, e, entry)| (*e, *s, *entry)).collect();
        hits.sort_unstable();
        // The allowed expressions themselves are reported too (the engine ignores them for scores, but a
        // learned layer defers to them: "cut myself on paper" is a known homonym, not a near miss).
        out.extend(found.iter().filter(|(_, _, e)| is_allow(*e)).map(|(_, _, e)| *e));
        let mut next = 0;
        let mut furthest_end = 0;
        for (e, start, entry) in hits {
            // The allowed (a, b) with a < e, and the furthest end among them.
            while next < allowed.len() && allowed[next].0 < e {
                furthest_end = furthest_end.max(allowed[next].1);
                next += 1;
            }
            let covered = next > 0 && furthest_end >= e;
            // Every allowed expression covering the end ends where the match does and starts after it:
            // the match holds all of it, and more.
            let holds_all = covered
                && furthest_end == e
                && earliest_start_by_end.get(&e).is_some_and(|&earliest| earliest > start);
            if covered && !holds_all {
                continue;
            }
            out.push(entry);
        }
    }

    /// Matches with word boundaries. For the squeezed view (`unsqueezed` given), positions are mapped back
    /// to the view, and a one-word phrase is accepted only where squeezing changed the text, so that "bob"
    /// is not read as a squeezed "boob".
    fn collect(
        &self,
        text: &str,
        ac: &AhoCorasick,
        targets: &[Targets],
        unsqueezed: Option<(&str, &Vec<usize>)>,
        found: &mut Vec<(usize, usize, usize)>,
    ) {
        let bytes = text.as_bytes();
        for m in ac.find_overlapping_iter(text) {
            let (s, e) = (m.start(), m.end());
            if s > 0 && bytes[s - 1] != b' ' {
                continue;
            }
            let at_end = e == bytes.len() || bytes[e] == b' ';
            for &entry in &targets[m.pattern().as_usize()] {
                let meta = &self.entries[entry];
                if !at_end && !meta.prefix {
                    continue;
                }
                let (vs, ve) = match unsqueezed {
                    None => (s, e),
                    Some((view, map)) => {
                        let vs = map[s];
                        let ve = if e < map.len() { map[e] } else { view.len() };
                        if !meta.multiword && ve - vs == e - s {
                            continue;
                        }
                        (vs, ve)
                    }
                };
                found.push((vs, ve, entry));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_lexicons_parse_and_compile() {
        for (name, src) in BUILTIN {
            if let Err(e) = Lexicons::parse(src) {
                panic!("{name}: {e}");
            }
        }
        let lex = Lexicons::builtin();
        assert!(lex.len() > 500, "{} phrases", lex.len());
        assert!(Matcher::new(&lex).is_ok());
    }

    #[test]
    fn expands_alternatives() {
        assert_eq!(expand("{a|b} x {c|}").unwrap_or_default(), vec!["a x c", "a x ", "b x c", "b x "]);
        assert!(expand("{a").is_err());
    }

    #[test]
    fn allow_list_suppresses_matches_inside_it() {
        let lex = Lexicons::parse(
            "[sexual] level=3 reason=\"x\"\nnaked\n[allow]\nnaked mole rat\n[violence] level=2 reason=\"y\"\nkill\n",
        );
        let lex = lex.unwrap_or_default();
        let m = Matcher::new(&lex).unwrap_or_else(|e| panic!("{e}"));
        let light = |s: &str| normalize::light(s).text;
        // Only the allowed expression itself is reported (group 1), never the word inside it.
        assert_eq!(m.scan(&light("the naked mole rat")).groups, vec![(1, 1)]);
        assert_eq!(m.scan(&light("naked pics")).groups.len(), 1);
        assert_eq!(m.scan(&light("k i l l")).groups.len(), 1);
        assert_eq!(m.scan(&light("kiiiiilll")).groups.len(), 1);
        assert!(m.scan(&light("skill")).groups.is_empty());
        // A collapsed run counts only as whole words: no match in the middle of one.
        assert!(m.scan(&light("s k i l l s")).groups.is_empty());
        assert_eq!(m.scan(&light("i k i l l")).groups.len(), 1);
    }

    #[test]
    fn a_match_that_holds_a_whole_allowed_expression_and_more_is_kept() {
        let lex = Lexicons::parse(
            "[self_harm] level=4 reason=\"x\"\nwish i was dead\ni was dead\n[allow]\ni was dead\ni was dead tired\n",
        );
        let lex = lex.unwrap_or_default();
        let m = Matcher::new(&lex).unwrap_or_else(|e| panic!("{e}"));
        let light = |s: &str| normalize::light(s).text;
        let self_harm = |s: &str| m.scan(&light(s)).groups.iter().any(|(g, _)| *g == 0);
        assert!(self_harm("i wish i was dead"));
        assert!(self_harm("everyone would be happier if i wish i was dead"));
        // The allowed expression alone, or one that reaches past the match, still suppresses it.
        assert!(!self_harm("lol i was dead"));
        assert!(!self_harm("i wish i was dead tired"));
    }
}
