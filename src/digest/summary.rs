//! Generated summaries: an article's lead sentences, up to a length.
//!
//! News leads state what the story is about, so the first sentence or two
//! make a strong extractive summary. The hard part is finding sentence
//! ends: Unicode sentence boundaries (UAX #29) break after "Mr." or "U.S."
//! and inside quotations, so those fragments are joined again here.

use unicode_segmentation::UnicodeSegmentation;

/// The default longest summary, in characters.
pub const DEFAULT_MAX_CHARS: usize = 300;

/// Words that end with a period without ending a sentence.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "col", "lt", "sgt", "capt", "cmdr", "adm",
    "gov", "sen", "rep", "pres", "rev", "hon", "amb", "inc", "ltd", "co", "corp", "bros", "dept", "univ", "assn", "no",
    "nos", "vol", "vols", "fig", "p", "pp", "ch", "sec", "art", "vs", "etc", "al", "approx", "est", "jan", "feb",
    "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "e.g", "i.e", "a.m", "p.m",
];

/// Paragraphs that are not the story: sign-up pleas, bylines, corrections.
fn is_boilerplate(paragraph: &str) -> bool {
    let p = paragraph.trim().trim_start_matches(['*', '_', ' ']);
    // What is looked for is near the start, or the paragraph is short.
    let head = p.char_indices().nth(240).map_or(p, |(end, _)| &p[..end]);
    let lower = head.to_lowercase();
    const STARTS: &[&str] = &[
        "sign up",
        "subscribe",
        "support ",
        "clarification",
        "correction",
        "editor's note",
        "editor’s note",
        "related:",
        "read more",
        "this story has been updated",
        "photo:",
    ];
    if STARTS.iter().any(|s| lower.starts_with(s)) {
        return true;
    }
    let is_byline = lower.starts_with("by ") && p.split_whitespace().count() <= 8;
    let is_bio = p.len() < 200
        && [
            " is a freelance ",
            " is a writer ",
            " is a journalist ",
            " is a correspondent ",
            " reported from ",
        ]
        .iter()
        .any(|s| lower.contains(s));
    is_byline || is_bio
}

/// Splits text into sentences, keeping abbreviations, initials and quoted
/// speech inside the sentence they belong to. Each sentence is trimmed.
pub fn sentences(text: &str) -> Vec<String> {
    let mut sentences: Vec<String> = Vec::new();
    let mut current = String::new();
    for fragment in text.split_sentence_bounds() {
        current.push_str(fragment);
        if continues(&current) {
            continue;
        }
        push_trimmed(&mut sentences, &mut current);
    }
    push_trimmed(&mut sentences, &mut current);
    // A fragment that starts in lower case continues the previous sentence
    // ("the U.S. said … at 5 p.m. yesterday").
    let mut joined: Vec<String> = Vec::with_capacity(sentences.len());
    for sentence in sentences {
        match joined.last_mut() {
            Some(previous) if sentence.chars().next().is_some_and(|c| c.is_lowercase()) => {
                previous.push(' ');
                previous.push_str(&sentence);
            }
            _ => joined.push(sentence),
        }
    }
    joined
}

fn push_trimmed(sentences: &mut Vec<String>, current: &mut String) {
    let trimmed = current.trim();
    if !trimmed.is_empty() {
        sentences.push(trimmed.to_owned());
    }
    current.clear();
}

/// Whether a fragment that UAX #29 ended must go on: it ends with an
/// abbreviation or an initial, or a quotation opened in it is still open.
fn continues(fragment: &str) -> bool {
    let body = fragment.trim_end();
    if !body.ends_with('.') {
        return open_quotation(body);
    }
    let last_word = body.rsplit(char::is_whitespace).next().unwrap_or("");
    let word = last_word
        .trim_start_matches(['(', '"', '“', '‘', '\''])
        .trim_end_matches('.')
        .to_lowercase();
    let is_initial = word.chars().count() == 1 && word.chars().all(char::is_alphabetic);
    // "U.S." and "e.g.": letters separated by periods.
    let is_dotted = word.contains('.') && word.split('.').all(|part| part.chars().count() == 1);
    is_initial || is_dotted || ABBREVIATIONS.contains(&word.as_str()) || open_quotation(body)
}

/// True when the text has more opening than closing quotation marks.
fn open_quotation(text: &str) -> bool {
    let opening = text.matches(['“', '«']).count();
    let closing = text.matches(['”', '»']).count();
    let straight = text.matches('"').count();
    opening > closing || straight % 2 == 1
}

/// The lead of `body` (one paragraph a line): the first paragraph that is
/// the story (not boilerplate, not a line drawn with box-drawing
/// characters), whole when it fits in `max_chars`, else as many of its
/// sentences as fit. Paragraphs are never run together. Never cuts a word:
/// when even the first sentence is too long, it is cut at a word boundary
/// and ends with "…".
pub fn lead_summary(body: &str, max_chars: usize) -> String {
    lead_of(body.lines(), max_chars)
}

/// [`lead_summary`] over paragraphs given one by one (a body's lines
/// without its layout).
pub fn lead_of<'a>(paragraphs: impl IntoIterator<Item = &'a str>, max_chars: usize) -> String {
    let Some(lead) = lead_paragraph(paragraphs) else {
        return String::new();
    };
    if lead.chars().count() <= max_chars {
        return lead.to_owned();
    }
    // Sentences past `max_chars` cannot be part of the summary: only a
    // bounded prefix is segmented, however long the paragraph (the margin
    // lets the segmenter see how the last sentence that fits ends).
    let prefix = lead
        .char_indices()
        .nth(max_chars + 64)
        .map_or(lead, |(end, _)| &lead[..end]);
    let mut candidates = sentences(prefix);
    if prefix.len() < lead.len() && candidates.len() > 1 {
        // The last one was cut by the prefix.
        candidates.pop();
    }
    let mut summary = String::new();
    for sentence in candidates {
        let extra = if summary.is_empty() { 0 } else { 1 };
        if summary.chars().count() + extra + sentence.chars().count() > max_chars {
            if summary.is_empty() {
                return cut_at_word(&sentence, max_chars);
            }
            break;
        }
        if extra == 1 {
            summary.push(' ');
        }
        summary.push_str(&sentence);
    }
    summary
}

/// The first paragraph that is the story: not empty, not boilerplate, not
/// drawn with box-drawing characters.
pub fn lead_paragraph<'a>(paragraphs: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    paragraphs
        .into_iter()
        .map(str::trim)
        .find(|p| !p.is_empty() && !is_boilerplate(p) && !crate::digest::html_text::is_drawn(p))
}

/// The start of `text`, at most `max_chars` long: all of it when it fits,
/// else cut at a word boundary and ended with "…".
pub fn cut_at_word(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_owned();
    }
    cut_with_ellipsis(text, max_chars)
}

fn cut_with_ellipsis(text: &str, max_chars: usize) -> String {
    let limit = max_chars.saturating_sub(1);
    let mut end = 0;
    for (index, _) in text.char_indices().take(limit + 1) {
        if text[index..].starts_with(char::is_whitespace) {
            end = index;
        }
    }
    if end == 0 {
        // One enormous word: cut it at a character boundary rather than return nothing.
        end = text.char_indices().nth(limit).map_or(text.len(), |(i, _)| i);
    }
    format!("{}…", text[..end].trim_end_matches([',', ';', ':', ' ', '—', '-']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str = include_str!("../../tests/fixtures/article-tajikistan-multi-vector.txt");

    #[test]
    fn the_fixture_is_summed_up_by_its_lead() {
        let summary = lead_summary(FIXTURE, DEFAULT_MAX_CHARS);
        assert_eq!(
            summary,
            "Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience. Russia is trying to \
             bolster its influence in Dushanbe by pressing for the return of Russian border troops, but Tajik \
             leaders are rebuffing Moscow’s embrace."
        );
    }

    #[test]
    fn a_short_limit_keeps_whole_sentences() {
        let summary = lead_summary(FIXTURE, 100);
        assert_eq!(
            summary,
            "Tajikistan’s “multi-vector” foreign policy is testing the Kremlin’s patience."
        );
    }

    #[test]
    fn abbreviations_and_initials_do_not_end_sentences() {
        let text = "Mr. Smith met Dr. J. R. Jones in the U.S. capital on Monday. They talked for an hour.";
        assert_eq!(
            sentences(text),
            [
                "Mr. Smith met Dr. J. R. Jones in the U.S. capital on Monday.",
                "They talked for an hour."
            ]
        );
        let text = "Gen. Ivanov arrived at 5 p.m. on Friday. Sen. Warren, e.g. the critic, was there.";
        assert_eq!(
            sentences(text),
            [
                "Gen. Ivanov arrived at 5 p.m. on Friday.",
                "Sen. Warren, e.g. the critic, was there."
            ]
        );
    }

    #[test]
    fn quoted_speech_stays_in_its_sentence() {
        let text = "“Stop. Think first,” the minister said. Nobody answered.";
        assert_eq!(
            sentences(text),
            ["“Stop. Think first,” the minister said.", "Nobody answered."]
        );
        let text = "\"Tajik territory is not property. It has value,\" Zarifi said. Moscow was silent.";
        assert_eq!(
            sentences(text),
            [
                "\"Tajik territory is not property. It has value,\" Zarifi said.",
                "Moscow was silent."
            ]
        );
    }

    #[test]
    fn questions_exclamations_and_decimals() {
        let text = "Will it last? Nobody knows! Growth was 3.5 percent. Prices rose.";
        assert_eq!(
            sentences(text),
            [
                "Will it last?",
                "Nobody knows!",
                "Growth was 3.5 percent.",
                "Prices rose."
            ]
        );
    }

    #[test]
    fn boilerplate_is_never_summary() {
        let body = "By Jane Doe\nSign up for our free weekly newsletter.\nThe river flooded the town. Hundreds fled.";
        assert_eq!(lead_summary(body, 300), "The river flooded the town. Hundreds fled.");
        assert!(is_boilerplate(
            "Konstantin Parshin is a freelance writer based in Tajikistan."
        ));
        assert!(is_boilerplate(
            "**CLARIFICATION: An earlier version of this story said otherwise."
        ));
        assert!(!is_boilerplate(
            "By the end of the year, the border will be closed to all traffic from the south."
        ));
    }

    #[test]
    fn the_lead_is_one_paragraph_however_short() {
        assert_eq!(
            lead_summary("Short lead.\nSecond paragraph.\nThird.", 300),
            "Short lead."
        );
        assert_eq!(lead_summary("One. Two. Three.\nNext paragraph.", 10), "One. Two.");
        assert_eq!(lead_of(["", "  ", "Sign up now", "┌──┐", "Story."], 300), "Story.");
        assert_eq!(lead_summary("", 300), "");
    }

    /// A paragraph of a megabyte is summed up from its start, not segmented
    /// whole.
    #[test]
    fn a_huge_lead_paragraph_is_summed_up_from_its_start() {
        let huge = "Word after word without an end ".repeat(40_000);
        let summary = lead_summary(&huge, 100);
        assert!(summary.ends_with('…') && summary.chars().count() <= 100, "{summary}");
        let sentences = "A sentence. ".repeat(100_000);
        assert_eq!(lead_summary(&sentences, 30), "A sentence. A sentence.");
    }

    #[test]
    fn an_overlong_first_sentence_is_cut_at_a_word() {
        let body = "This sentence goes on and on without ever reaching a full stop in any reasonable distance";
        let summary = lead_summary(body, 30);
        assert_eq!(summary, "This sentence goes on and on…");
        assert!(summary.chars().count() <= 30);
    }

    proptest! {
        #[test]
        fn summaries_fit_and_come_from_the_text(body in "[A-Za-z .,!?\"“”\n]{0,600}", max in 20usize..400) {
            let summary = lead_summary(&body, max);
            prop_assert!(summary.chars().count() <= max);
            if let Some(stem) = summary.strip_suffix('…') {
                prop_assert!(body.contains(stem.split_whitespace().next().unwrap_or("")));
            }
        }
    }
}
