//! Text that reaches a terminal: what a config or a command line names (labels, targets) is
//! shown in status lines, alerts, e-mails and the TUI, so control characters in it are
//! escaped once, where the name is made — an ESC in a label must not repaint the terminal,
//! and a NUL must not cut a line short.

use std::borrow::Cow;

/// `text` with every control character written as a visible `\u{..}` escape (tabs and
/// newlines too: a label is one line).
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(printable("gateway 10.0.0.1"), "gateway 10.0.0.1");
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        assert_eq!(printable("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("nul\0end"), "nul\\u{0}end");
        assert_eq!(printable("two\nlines\t"), "two\\u{a}lines\\u{9}");
        assert_eq!(printable("naïve ✓"), "naïve ✓");
        assert_eq!(printable("\u{9b}31m"), "\\u{9b}31m", "C1 CSI too");
    }
}
