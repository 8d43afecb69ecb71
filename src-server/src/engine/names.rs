//! Display names (PROTOCOL.md §3), made safe to show on a teacher's roster: NFC, no direction
//! overrides or other invisible format characters (joiners between letters stay: Persian and Arabic
//! names use them), no private-use or unassigned characters, spaces collapsed, and at least one
//! visible character. A student cannot pass as the teacher: a name holding a word kept for
//! teachers ("Teacher", "Sheikh", "المعلم", "الأستاذة"), however it is spelt in look-alike letters
//! (compared through the Unicode confusables skeleton, UTS #39), is refused, and so is the name
//! the teacher goes by.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest name, in characters, after cleaning.
pub const MAX_CHARS: usize = 64;

/// Whole names a student may not take (compared in their [`key`] form).
const RESERVED_NAMES: [&str; 3] = ["theteacher", "administrator", "lectern"];

/// Words a student's name may not hold anywhere (each word compared in its [`key`] form, digits
/// dropped, an Arabic definite article taken off): titles a class gives its teacher.
const RESERVED_WORDS: [&str; 17] = [
    "teacher",
    "admin",
    "lectern",
    "ustadh",
    "ustadha",
    "ustaz",
    "ustaza",
    "ustadhah",
    "معلم",
    "معلمه",
    "مدرس",
    "مدرسه",
    "استاذ",
    "استاذه",
    "مولانا",
    "مربي",
    "مربيه",
];

/// Titles that are also family names ("Aisha Sheikh", "آل الشيخ"): kept for the teacher only at
/// the start of a name ("Sheikh", "الشيخ أحمد").
const LEADING_TITLES: [&str; 5] = ["sheikh", "shaikh", "shaykh", "sheik", "شيخ"];

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

/// A student's name cleaned for showing, or why it cannot be one: as [`clean`], and holding no
/// name or word kept for the teacher.
pub fn student(raw: &str) -> Result<String, String> {
    let name = clean(raw)?;
    if kept_for_teacher(&name) {
        return Err("that name is kept for the teacher; use your own".into());
    }
    Ok(name)
}

/// Whether a (cleaned) name is, or holds a word that is, kept for the teacher.
fn kept_for_teacher(name: &str) -> bool {
    /// The reserved names and words in their [`key`] form, worked out once.
    struct Keys {
        names: Vec<String>,
        words: Vec<String>,
        leading: Vec<String>,
    }
    static KEYS: std::sync::LazyLock<Keys> = std::sync::LazyLock::new(|| {
        let keys = |list: &[&str]| list.iter().map(|r| key(r)).collect();
        Keys { names: keys(&RESERVED_NAMES), words: keys(&RESERVED_WORDS), leading: keys(&LEADING_TITLES) }
    });
    let reserved = |list: &[String], k: &str| list.iter().any(|r| r == k);
    let whole = key(name);
    if reserved(&KEYS.names, &whole) || reserved(&KEYS.words, &whole) || reserved(&KEYS.leading, &whole) {
        return true;
    }
    // Words: split wherever there is neither a letter, a digit, a mark nor an apostrophe.
    let apart =
        |c: char| !(c.is_alphanumeric() || is_combining_mark(c) || matches!(c, '\'' | '’' | '\u{0640}'));
    name.split(apart)
        .filter(|w| !w.is_empty())
        .map(|word| {
            let word: String = bare(word).chars().filter(|c| !c.is_numeric()).collect();
            // The Arabic definite article: "المعلم" is "معلم" with it.
            let word = match word.strip_prefix("ال") {
                Some(rest) if rest.chars().count() >= 2 => rest,
                _ => &word,
            };
            key(word)
        })
        .enumerate()
        .any(|(i, w)| !w.is_empty() && (reserved(&KEYS.words, &w) || (i == 0 && reserved(&KEYS.leading, &w))))
}

/// A name reduced for telling look-alikes apart: its confusables skeleton (UTS #39: Cyrillic
/// `Тeacher` and `Teacher` share one), then [`bare`].
pub(crate) fn key(name: &str) -> String {
    // The skeleton keeps case (`К` is `K`, `к` is `ĸ`): taken on the name as written, then in lower
    // case, then again, so that either case of a look-alike meets the same letters.
    let skeleton = |s: &str| unicode_security::skeleton(s).collect::<String>();
    let lower: String =
        skeleton(&name.nfkc().collect::<String>()).chars().flat_map(char::to_lowercase).collect();
    bare(&skeleton(&lower))
}

/// Whether two names would pass for each other on a roster (compared in their [`key`] form).
pub fn same_to_the_eye(a: &str, b: &str) -> bool {
    let (a, b) = (key(a), key(b));
    !a.is_empty() && a == b
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
            'ى' => 'ي',
            c => c,
        })
        .collect()
}

/// Characters no name may hold: private-use (their look depends on the font at hand), unassigned
/// ones (their look is anyone's guess), and Latin letters outside the UTS #39 general security
/// profile (small capitals, phonetic and modifier letters: they spell sounds, not names, and pass
/// for ordinary letters, as `ᴛᴇᴀᴄʜᴇʀ` does). Compatibility forms are judged by what they fold to.
fn refused(c: char) -> bool {
    use unicode_script::{Script, UnicodeScript};
    use unicode_security::GeneralSecurityProfile;
    let odd_latin = |c: char| c.is_alphabetic() && c.script() == Script::Latin && !c.identifier_allowed();
    matches!(
        c.general_category(),
        GeneralCategory::PrivateUse | GeneralCategory::Unassigned | GeneralCategory::Surrogate
    ) || std::iter::once(c).nfkc().any(odd_latin)
}

/// A name cleaned for showing, or why it cannot be one.
pub fn clean(raw: &str) -> Result<String, String> {
    if raw.chars().any(refused) {
        return Err(
            "use ordinary letters: names may not hold small capitals, phonetic letters, private-use or \
                    unassigned characters"
                .into(),
        );
    }
    // What shows nothing goes first (format characters, but the joiners and selectors a script
    // needs), then the text is normalized (so what is left is NFC).
    let shows_nothing =
        |c: char| invisible(c) || (c.general_category() == GeneralCategory::Format && !attached(c));
    let kept: String = raw.chars().filter(|c| !c.is_control() && !shows_nothing(*c)).collect();
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

    /// Issue 22, finding 5: look-alikes of the teacher that got through, and names that show
    /// nothing or depend on a font.
    #[test]
    fn look_alikes_and_titles_of_the_teacher_are_refused() {
        for raw in [
            "ᴛᴇᴀᴄʜᴇʀ",
            "Teacher 2",
            "Mr Teacher",
            "Sheikh",
            "الشيخ",
            "الأستاذة",
            "معلمة",
            "المدرس",
            "Тeacher",
            "teacher2",
            "Ustadha",
            "Sheikh Ahmad",
            "Mr‑Teacher",
            "Mr‧Teacher",
        ] {
            assert!(student(raw).is_err(), "{raw:?}");
        }
        for raw in ["Teacher's helper", "Aisha", "عائشة", "شيخة", "Sheikha", "Badminton", "Yusuf 2", "مدرسي"]
        {
            assert!(student(raw).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn format_private_use_and_unassigned_characters_are_refused() {
        assert!(clean("\u{1BCA0}\u{13437}").is_err(), "only invisible format characters");
        assert_eq!(clean("Ali\u{1BCA0}").unwrap(), "Ali", "a format character goes");
        assert!(clean("Ali\u{E000}").is_err(), "private use");
        assert!(clean("Ali\u{F0000}").is_err(), "supplementary private use");
        assert!(clean("Ali\u{0378}").is_err(), "unassigned");
    }

    #[test]
    fn the_teachers_own_name_is_told_apart_through_look_alikes() {
        assert!(super::same_to_the_eye("Ustadh Karim", "Ustadh Кarim"));
        assert!(super::same_to_the_eye("Maryam", "MARYAM"));
        assert!(!super::same_to_the_eye("Maryam", "Mariam"));
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
