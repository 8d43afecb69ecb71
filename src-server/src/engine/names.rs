//! Display names (PROTOCOL.md §3), made safe to show on a teacher's roster: NFC, no direction
//! overrides or other invisible format characters (joiners between letters stay: Persian and Arabic
//! names use them), spaces collapsed, and at least one visible character. A student cannot pass as
//! the teacher: names like "Teacher" or "المعلم" are kept for the teacher.

use unicode_normalization::UnicodeNormalization;

/// The longest name, in characters, after cleaning.
pub const MAX_CHARS: usize = 64;

/// Names a student may not take (compared without case, spaces or punctuation).
const RESERVED: [&str; 9] =
    ["teacher", "theteacher", "lectern", "admin", "administrator", "معلم", "المعلم", "المعلمة", "الأستاذ"];

/// Characters that show nothing but change how text around them is drawn: bidirectional
/// embeddings, overrides and isolates, invisible operators, fillers, and the like.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// Joiners: kept between visible characters, dropped elsewhere.
fn joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// A student's name cleaned for showing, or why it cannot be one: as [`clean`], and not one of the
/// names kept for the teacher.
pub fn student(raw: &str) -> Result<String, String> {
    let name = clean(raw)?;
    let bare: String = name.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect();
    if RESERVED.contains(&bare.as_str()) {
        return Err("that name is kept for the teacher; use your own".into());
    }
    Ok(name)
}

/// A name cleaned for showing, or why it cannot be one.
pub fn clean(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut pending_space = false;
    for c in raw.nfc() {
        if c.is_control() || invisible(c) {
            continue;
        }
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if joiner(c) && (out.is_empty() || pending_space) {
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    let out = out.trim_end_matches(joiner).to_string();
    let visible = out.chars().filter(|c| !joiner(*c) && !c.is_whitespace()).count();
    if visible == 0 {
        return Err("name must have at least one visible character".into());
    }
    let n = out.chars().count();
    if n > MAX_CHARS {
        return Err(format!("name must be 1 to {MAX_CHARS} characters, not {n}"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{clean, student};

    #[test]
    fn invisible_names_are_refused() {
        for raw in
            ["", "   ", "\u{200B}\u{200B}", "\u{202E}\u{2066}", "\u{200D}", "\u{3164}", "\u{FEFF} \u{00AD}"]
        {
            assert!(clean(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn direction_overrides_and_hidden_characters_are_removed() {
        assert_eq!(clean("Ali\u{202E}rahcuT").unwrap(), "AlirahcuT");
        assert_eq!(clean("  Maryam \u{200B}  Yusuf\t").unwrap(), "Maryam Yusuf");
        assert_eq!(clean("Zay\u{2066}nab\u{2069}").unwrap(), "Zaynab");
    }

    #[test]
    fn joiners_between_letters_stay_and_text_is_nfc() {
        assert_eq!(clean("می\u{200C}خواهم").unwrap(), "می\u{200C}خواهم");
        assert_eq!(clean("\u{200C}Amina\u{200D}").unwrap(), "Amina");
        assert_eq!(clean("Zoe\u{0301}").unwrap(), "Zoé");
    }

    #[test]
    fn a_student_cannot_pass_as_the_teacher() {
        for raw in ["Teacher", "TEACHER", "the teacher", "T.e.a.c.h.e.r", "المعلم", "Teacher\u{200B}"] {
            assert!(student(raw).is_err(), "{raw:?}");
        }
        assert!(student("Teacher's helper").is_ok());
        assert_eq!(clean("Teacher").unwrap(), "Teacher", "the teacher may call itself so");
    }

    #[test]
    fn long_names_are_refused() {
        assert!(clean(&"a".repeat(64)).is_ok());
        assert!(clean(&"a".repeat(65)).is_err());
    }
}
