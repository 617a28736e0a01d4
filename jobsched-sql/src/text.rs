//! Capping stored output: what a store keeps of a task's `output` and `error`.

use std::borrow::Cow;

/// Keeps at most `max_bytes` of `text`: the tail (where a failing program prints why), cut at a character
/// boundary, after a marker line that says how many bytes were dropped — the same marker the executor's
/// output capture uses. Text within the cap is returned as it is.
///
/// ```
/// use jobsched_sql::cap_text;
/// assert_eq!(cap_text("short", 100), "short");
/// let long = "x".repeat(1000);
/// let capped = cap_text(&long, 100);
/// assert!(capped.starts_with("[jobsched: "));
/// assert!(capped.len() <= 100 && capped.ends_with("xxx"));
/// ```
pub fn cap_text(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    // The marker's length depends on the number it carries; size it for the worst case (every byte
    // dropped), then keep as much of the tail as fits beside it.
    let marker_room = marker(text.len()).len();
    let keep = max_bytes.saturating_sub(marker_room);
    let mut start = text.len() - keep;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    Cow::Owned(format!("{}{}", marker(start), &text[start..]))
}

fn marker(dropped: usize) -> String {
    format!("[jobsched: {dropped} earlier bytes truncated]\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_within_the_cap() {
        let text = format!("{}TAIL", "a".repeat(10_000));
        let capped = cap_text(&text, 200);
        assert!(capped.len() <= 200, "{} bytes", capped.len());
        assert!(capped.ends_with("aTAIL"));
        let dropped = text.len() - (capped.len() - capped.find('\n').unwrap() - 1);
        assert!(
            capped.starts_with(&format!("[jobsched: {dropped} earlier bytes truncated]\n")),
            "{capped}"
        );
    }

    #[test]
    fn cuts_at_a_character_boundary() {
        let text = "🚀".repeat(100);
        for cap in 50..70 {
            let capped = cap_text(&text, cap);
            assert!(capped.len() <= cap);
            assert!(capped.ends_with('🚀'));
        }
    }

    #[test]
    fn text_within_the_cap_is_untouched() {
        assert!(matches!(cap_text("abc", 3), Cow::Borrowed("abc")));
        assert_eq!(cap_text("", 0), "");
    }
}
