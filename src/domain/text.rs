//! Rules for text that clients send: what PostgreSQL can store at all, and
//! what may be shown to a person as a name without lying about itself.

/// Whether PostgreSQL can hold `s` in a text column. It refuses U+0000 in
/// any encoding (SQLSTATE 22021), so a string holding one can neither be
/// stored nor equal anything that was: a lookup by it finds nothing, and
/// an input holding it is refused before it reaches the database.
pub fn storable(s: &str) -> bool {
    !s.contains('\0')
}

/// Whether `s` reads as what it is when shown to a person: no control
/// characters, no line or paragraph separators, and no invisible format
/// characters (Unicode category Cf: bidirectional embeddings, overrides and
/// isolates, zero-width spaces, soft hyphens, ...), which make
/// "Official Client \u{202e}gnp.exe" display as a name it is not. The one
/// exception is what real app names use: a zero-width joiner between two
/// visible characters (an emoji sequence such as 👩‍💻), and the tag
/// characters of a subdivision flag (🏴 followed by tags).
pub fn displayable(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    chars.iter().enumerate().all(|(i, &c)| {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            return false;
        }
        if !is_format(c) {
            return true;
        }
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1).copied();
        match c {
            '\u{200D}' => {
                before.is_some_and(is_emoji_part)
                    && after.is_some_and(|a| !is_format(a) && !a.is_whitespace())
            }
            // Tag characters: only after the black flag or another tag.
            '\u{E0020}'..='\u{E007F}' => {
                before.is_some_and(|b| b == '\u{1F3F4}' || ('\u{E0020}'..='\u{E007F}').contains(&b))
            }
            _ => false,
        }
    })
}

/// What may stand before a zero-width joiner in an emoji sequence: an
/// emoji (or any pictograph outside ASCII and Latin), a variation selector
/// or a skin-tone modifier.
fn is_emoji_part(c: char) -> bool {
    matches!(c,
        '\u{FE0F}'
        | '\u{2190}'..='\u{2BFF}'
        | '\u{1F000}'..='\u{1FAFF}')
}

/// Unicode's general category Cf (format characters), as of Unicode 15.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{0890}'..='\u{0891}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_not_storable() {
        assert!(storable("a client id"));
        assert!(!storable("a\0b"));
    }

    #[test]
    fn names_that_lie_are_not_displayable() {
        for bad in [
            "Official Client \u{202e}gnp.exe",
            "a\u{200b}b",
            "isolate \u{2066}x\u{2069}",
            "soft\u{00ad}hyphen",
            "bom\u{feff}",
            "line\u{2028}break",
            "tab\tname",
            "nul\0",
            "\u{200d}leading joiner",
            "a\u{200d}b",
            "trailing joiner 👩\u{200d}",
            "stray tag \u{E0067}",
        ] {
            assert!(!displayable(bad), "{bad:?} passed");
        }
    }

    #[test]
    fn real_names_are_displayable() {
        for good in [
            "Tusky",
            "Ivory für Mastodon",
            "トゥート",
            "עברית",
            "Dev 👩\u{200d}💻 tools",
            "❤\u{fe0f}\u{200d}🔥 app",
            "Flag 🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}",
        ] {
            assert!(displayable(good), "{good:?} refused");
        }
    }
}
