//! Capping stored output: what a store keeps of a task's `output` and `error`.
//!
//! The store caps with the same function as the executor ([`jobsched::handler::cap_text`]), so text cut
//! twice carries one marker that counts every dropped byte.

pub use jobsched::handler::cap_text;

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

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
