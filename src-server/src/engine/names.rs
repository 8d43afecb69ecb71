//! Display names (PROTOCOL.md §3), made safe to show on a teacher's roster: NFC, no direction
//! overrides or other invisible format characters (joiners between letters stay: Persian and Arabic
//! names use them), spaces collapsed, and at least one visible character. A student cannot pass as
//! the teacher: names like "Teacher" or "المعلم" are kept for the teacher.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The longest name, in characters, after cleaning.
pub const MAX_CHARS: usize = 64;

/// Names a student may not take (compared in their [`bare`] form).
const RESERVED: [&str; 10] = [
    "teacher",
    "theteacher",
    "lectern",
    "admin",
    "administrator",
    "معلم",
    "المعلم",
    "المعلمه",
    "الاستاذ",
    "استاذ",
];

/// The most combining marks kept on one character (Arabic takes a vowel and a shadda; more only
/// spills over the roster's rows).
const MAX_MARKS: usize = 3;

/// Characters that show nothing but change how text around them is drawn: bidirectional
/// embeddings, overrides and isolates, invisible operators, fillers, blanks, and the like.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}' | '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// Characters that only join or vary the one before them (zero-width joiners, variation selectors,
/// including Mongolian's): kept after a visible character, dropped elsewhere.
fn attached(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}' | '\u{FE00}'..='\u{FE0F}' | '\u{180B}'..='\u{180D}' | '\u{180F}')
}

/// A student's name cleaned for showing, or why it cannot be one: as [`clean`], and not one of the
/// names kept for the teacher.
pub fn student(raw: &str) -> Result<String, String> {
    let name = clean(raw)?;
    if RESERVED.contains(&bare(&name).as_str()) {
        return Err("that name is kept for the teacher; use your own".into());
    }
    Ok(name)
}

/// A name reduced for comparing: compatibility forms (full-width, mathematical letters) folded,
/// marks, tatweel and everything but letters and digits dropped, lower case, and the Arabic alef
/// and teh marbuta forms folded.
pub(crate) fn bare(name: &str) -> String {
    name.nfkc()
        .filter(|c| c.is_alphanumeric() && !is_combining_mark(*c) && *c != '\u{0640}')
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
            'ة' => 'ه',
            c => c,
        })
        .collect()
}

/// A name cleaned for showing, or why it cannot be one.
pub fn clean(raw: &str) -> Result<String, String> {
    // What shows nothing goes first, then the text is normalized (so what is left is NFC).
    let kept: String = raw.chars().filter(|c| !c.is_control() && !invisible(*c)).collect();
    let mut out = String::new();
    let mut pending_space = false;
    let mut marks = 0;
    for c in kept.nfc() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let base_before = !out.is_empty() && !pending_space;
        if (attached(c) || is_combining_mark(c)) && !base_before {
            continue;
        }
        if is_combining_mark(c) {
            marks += 1;
            if marks > MAX_MARKS {
                continue;
            }
        } else if !attached(c) {
            marks = 0;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(c);
    }
    let out = out.trim_end_matches(['\u{200C}', '\u{200D}']).to_string();
    let visible =
        out.chars().filter(|c| !attached(*c) && !c.is_whitespace() && !is_combining_mark(*c)).count();
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
        for raw in [
            "Teacher",
            "TEACHER",
            "the teacher",
            "T.e.a.c.h.e.r",
            "المعلم",
            "Teacher\u{200B}",
            "Ｔｅａｃｈｅｒ",
            "𝐓𝐞𝐚𝐜𝐡𝐞𝐫",
            "المعلّم",
            "المعـلم",
            "الأستاذ",
            "الاستاذ",
            "المعلمة",
        ] {
            assert!(student(raw).is_err(), "{raw:?}");
        }
        assert!(student("Teacher's helper").is_ok());
        assert_eq!(clean("Teacher").unwrap(), "Teacher", "the teacher may call itself so");
    }

    #[test]
    fn emoji_and_their_variation_selectors_stay_and_stacked_marks_are_cut() {
        assert_eq!(clean("Hafsa ❤\u{FE0F}").unwrap(), "Hafsa ❤\u{FE0F}");
        assert_eq!(clean("\u{FE0F}Hafsa").unwrap(), "Hafsa");
        assert_eq!(clean(&format!("Z{}", "\u{0301}".repeat(60))).unwrap().chars().count(), 1 + 3);
        assert!(clean("\u{2800}\u{2800}").is_err(), "braille blanks show nothing");
    }

    #[test]
    fn long_names_are_refused() {
        assert!(clean(&"a".repeat(64)).is_ok());
        assert!(clean(&"a".repeat(65)).is_err());
    }
}
