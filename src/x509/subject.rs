//! The certified identity: subject DN attributes and subjectAltName entries, built from a profile
//! and the vetted subscriber record. It is frozen into the request when it is submitted, so the
//! approver approves exactly what will be issued.

use crate::error::{Error, Result};
use crate::x509::profile::{Profile, SubjectField};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
use unicode_script::{Script, UnicodeScript};
use unicode_security::mixed_script::AugmentedScriptSet;

/// X.520 upper bound for commonName, organizationName and serialNumber.
pub const UB_NAME: usize = 64;

/// A DN attribute the RA certifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DnAttr {
    /// commonName (CN).
    CommonName,
    /// organizationName (O).
    Organisation,
    /// serialNumber.
    SerialNumber,
}

impl DnAttr {
    fn short(self) -> &'static str {
        match self {
            DnAttr::CommonName => "CN",
            DnAttr::Organisation => "O",
            DnAttr::SerialNumber => "serialNumber",
        }
    }

    /// The attribute type's OID, dotted.
    pub fn oid(self) -> &'static str {
        match self {
            DnAttr::CommonName => "2.5.4.3",
            DnAttr::Organisation => "2.5.4.10",
            DnAttr::SerialNumber => "2.5.4.5",
        }
    }
}

/// The certified identity: subject DN attributes and subjectAltName entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectSpec {
    /// DN attributes in order, most significant first.
    pub dn: Vec<(DnAttr, String)>,
    /// rfc822Name entries for subjectAltName.
    pub emails: Vec<String>,
}

/// The parts of a vetted subscriber record a profile may certify.
pub struct VettedIdentity<'a> {
    /// The vetted name.
    pub name: &'a str,
    /// The organisation, for a person who belongs to one.
    pub organisation: Option<&'a str>,
    /// The vetted email address.
    pub email: Option<&'a str>,
    /// Number of the first identifier whose evidence is still valid.
    pub identifier: Option<&'a str>,
}

impl SubjectSpec {
    /// The identity `profile` certifies for `who`; refused when a value breaks the name rules.
    pub fn build(profile: &Profile, who: &VettedIdentity<'_>) -> Result<Self> {
        let mut dn = Vec::new();
        // Order: O before CN (most significant first), then serialNumber.
        if profile.subject.contains(&SubjectField::Organisation) {
            if let Some(o) = who.organisation.filter(|o| !o.is_empty()) {
                dn.push((DnAttr::Organisation, o.to_string()));
            }
        }
        dn.push((DnAttr::CommonName, who.name.to_string()));
        if profile.subject.contains(&SubjectField::SerialNumber) {
            let id = who.identifier.ok_or_else(|| {
                Error::refused(
                    "evidence_expired",
                    "the profile certifies an identifier, but none is valid",
                )
            })?;
            dn.push((DnAttr::SerialNumber, id.to_string()));
        }
        let emails = match (profile.email_in_san, who.email) {
            (true, Some(e)) if !e.is_empty() => vec![e.to_string()],
            _ => Vec::new(),
        };
        for (attr, value) in &dn {
            check_dn_value(*attr, value)?;
        }
        Ok(SubjectSpec { dn, emails })
    }

    /// RFC 4514 style rendering, most significant attribute last as OpenSSL's `-nameopt RFC2253`.
    pub fn display(&self) -> String {
        self.dn
            .iter()
            .rev()
            .map(|(a, v)| format!("{}={}", a.short(), escape_rfc4514(v)))
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn escape_rfc4514(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Rules every DN value must meet before it goes into a certificate: the name rules of
/// [`checked_name`], already in NFC (the certificate carries exactly the stored text), and
/// PrintableString for serialNumber.
pub fn check_dn_value(attr: DnAttr, value: &str) -> Result<()> {
    let nfc = checked_name(attr.short(), value, UB_NAME)?;
    if nfc != value {
        return Err(Error::invalid(
            "invalid_field",
            format!(
                "{} is not in Unicode normalisation form C; register the name again",
                attr.short()
            ),
        ));
    }
    if attr == DnAttr::SerialNumber && !is_printable_string(value) {
        return Err(Error::invalid(
            "invalid_field",
            "identifier numbers certified as serialNumber must use PrintableString characters",
        ));
    }
    Ok(())
}

/// Check a name that goes into a certificate subject or is shown to operators as a name, and
/// return the form to store: Unicode NFC.
///
/// Refused, each with the character and its position (counted in characters from 1):
/// - control characters (C0, DEL, C1, including NUL), line and paragraph separators;
/// - bidirectional formatting characters (U+061C, U+200E/F, U+202A–202E, U+2066–2069);
/// - invisible and formatting characters: general category Cf and every Default_Ignorable code
///   point (zero-width space and joiners, word joiner, the byte order mark U+FEFF, soft hyphen,
///   variation selectors, Hangul fillers, tags ...);
/// - private-use and unassigned code points; spaces other than U+0020;
/// - a combining mark with no letter or digit before it to combine with;
/// - leading or trailing spaces, and more than `max` characters (after NFC);
/// - scripts mixed in a way that confuses. Allowed: one script, with Common and Inherited
///   characters (digits, punctuation such as the middle dot ·); Han with Hiragana/Katakana, with
///   Hangul or with Bopomofo; and Latin with one other Recommended script (UAX #31), which takes
///   in Latin with Chinese, Japanese or Korean. Latin with Cyrillic or Greek, and any two
///   non-Latin scripts that are not such a CJK pair, are refused. This is UTS #39's "moderately
///   restrictive" level, computed on UTS #39 augmented script sets.
pub fn checked_name(field: &str, value: &str, max: usize) -> Result<String> {
    for (i, c) in value.chars().enumerate() {
        if let Some(why) = refused_char(c) {
            return Err(name_error(
                field,
                format!("contains {} at position {}; {why}", describe(c), i + 1),
            ));
        }
    }
    let nfc: String = value.nfc().collect();
    let n = nfc.chars().count();
    if n == 0 || n > max {
        return Err(name_error(field, format!("must be 1..={max} characters")));
    }
    if nfc.trim() != nfc {
        return Err(name_error(
            field,
            "must not have leading or trailing spaces",
        ));
    }
    let mut prev: Option<char> = None;
    for (i, c) in nfc.chars().enumerate() {
        if is_mark(c) && !prev.is_some_and(|p| is_mark(p) || is_base(p)) {
            let after = match prev {
                None => "at the start".to_string(),
                Some(p) => format!("after {}", describe(p)),
            };
            return Err(name_error(
                field,
                format!(
                    "has the combining mark {} at position {} {after}, with no letter to combine with",
                    describe(c),
                    i + 1
                ),
            ));
        }
        prev = Some(c);
    }
    check_scripts(field, &nfc)?;
    Ok(nfc)
}

fn name_error(field: &str, msg: impl std::fmt::Display) -> Error {
    Error::invalid("invalid_field", format!("{field}: {msg}"))
}

/// Why a character may not appear in a name, if it may not.
fn refused_char(c: char) -> Option<&'static str> {
    if matches!(c, '\u{2028}' | '\u{2029}') {
        return Some("line and paragraph separators are not allowed");
    }
    if c.is_control() {
        return Some("control characters are not allowed");
    }
    if is_bidi_control(c) {
        return Some("bidirectional formatting characters are not allowed");
    }
    if is_default_ignorable(c) || c.general_category() == GeneralCategory::Format {
        return Some("invisible and formatting characters are not allowed");
    }
    match c.general_category() {
        GeneralCategory::PrivateUse => return Some("private-use characters are not allowed"),
        GeneralCategory::Unassigned | GeneralCategory::Surrogate => {
            return Some("unassigned code points are not allowed")
        }
        _ => {}
    }
    if c.is_whitespace() && c != ' ' {
        return Some("only the ordinary space U+0020 may separate words");
    }
    None
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt): characters a renderer may
/// show as nothing at all.
fn is_default_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

fn is_mark(c: char) -> bool {
    c.general_category_group() == GeneralCategoryGroup::Mark
}

/// A character a combining mark may follow.
fn is_base(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
    )
}

/// `U+200B ZERO WIDTH SPACE`: the names of the characters the rule refuses most often, else the
/// code point and its script.
fn describe(c: char) -> String {
    let name = match c {
        '\0' => "NULL",
        '\t' => "CHARACTER TABULATION",
        '\n' => "LINE FEED",
        '\r' => "CARRIAGE RETURN",
        ' ' => "SPACE",
        '\u{7F}' => "DELETE",
        '\u{85}' => "NEXT LINE",
        '\u{A0}' => "NO-BREAK SPACE",
        '\u{AD}' => "SOFT HYPHEN",
        '\u{300}' => "COMBINING GRAVE ACCENT",
        '\u{301}' => "COMBINING ACUTE ACCENT",
        '\u{308}' => "COMBINING DIAERESIS",
        '\u{34F}' => "COMBINING GRAPHEME JOINER",
        '\u{61C}' => "ARABIC LETTER MARK",
        '\u{115F}' => "HANGUL CHOSEONG FILLER",
        '\u{1160}' => "HANGUL JUNGSEONG FILLER",
        '\u{180E}' => "MONGOLIAN VOWEL SEPARATOR",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202A}' => "LEFT-TO-RIGHT EMBEDDING",
        '\u{202B}' => "RIGHT-TO-LEFT EMBEDDING",
        '\u{202C}' => "POP DIRECTIONAL FORMATTING",
        '\u{202D}' => "LEFT-TO-RIGHT OVERRIDE",
        '\u{202E}' => "RIGHT-TO-LEFT OVERRIDE",
        '\u{2060}' => "WORD JOINER",
        '\u{2061}' => "FUNCTION APPLICATION",
        '\u{2062}' => "INVISIBLE TIMES",
        '\u{2063}' => "INVISIBLE SEPARATOR",
        '\u{2064}' => "INVISIBLE PLUS",
        '\u{2066}' => "LEFT-TO-RIGHT ISOLATE",
        '\u{2067}' => "RIGHT-TO-LEFT ISOLATE",
        '\u{2068}' => "FIRST STRONG ISOLATE",
        '\u{2069}' => "POP DIRECTIONAL ISOLATE",
        '\u{3000}' => "IDEOGRAPHIC SPACE",
        '\u{3164}' => "HANGUL FILLER",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE (byte order mark)",
        '\u{FFA0}' => "HALFWIDTH HANGUL FILLER",
        _ => {
            let script = c.script();
            let shown = if is_base(c) {
                format!("'{c}' ")
            } else {
                String::new()
            };
            return if matches!(script, Script::Common | Script::Inherited | Script::Unknown) {
                format!("{shown}U+{:04X}", c as u32)
            } else {
                format!("{shown}U+{:04X} ({})", c as u32, script.full_name())
            };
        }
    };
    format!("U+{:04X} {name}", c as u32)
}

/// Whether the text stays within one script, a CJK combination or Latin plus one other
/// Recommended script other than Cyrillic and Greek (see [`checked_name`]).
fn check_scripts(field: &str, s: &str) -> Result<()> {
    let mut all = AugmentedScriptSet::default();
    let mut without_latin = AugmentedScriptSet::default();
    for c in s.chars() {
        let set = AugmentedScriptSet::for_char(c);
        all.intersect_with(set);
        if !set.base.contains_script(Script::Latin) {
            without_latin.intersect_with(set);
        }
    }
    if !all.is_empty() {
        return Ok(());
    }
    if without_latin.jpan || without_latin.kore || without_latin.hanb {
        return Ok(());
    }
    let with_latin_ok = without_latin.base.iter().any(|script| {
        script.is_recommended() && !matches!(script, Script::Cyrillic | Script::Greek)
    });
    if with_latin_ok {
        return Ok(());
    }
    // Name the two characters that clash: the first letter with a script, and the first letter
    // that shares no script with those before it. Latin letters take no part when the clash is
    // between two other scripts.
    let skip_latin = without_latin.is_empty();
    let mut seen = AugmentedScriptSet::default();
    let mut first: Option<(usize, char)> = None;
    for (i, c) in s.chars().enumerate() {
        let set = AugmentedScriptSet::for_char(c);
        if set.is_all() || (skip_latin && set.base.contains_script(Script::Latin)) {
            continue;
        }
        let mut joined = seen;
        joined.intersect_with(set);
        if let (true, Some((j, f))) = (joined.is_empty(), first) {
            return Err(name_error(
                field,
                format!(
                    "mixes scripts that can be confused: {} at position {} and {} at position {}; \
                     write the name in one script (Chinese, Japanese or Korean may be combined \
                     with Latin)",
                    describe(f),
                    j + 1,
                    describe(c),
                    i + 1,
                ),
            ));
        }
        first.get_or_insert((i, c));
        seen = joined;
    }
    Err(name_error(field, "mixes scripts that can be confused"))
}

/// X.680 PrintableString alphabet.
pub fn is_printable_string(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || " '()+,-./:=?".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x509::profile::{Profile, BUILT_IN};

    fn profile(i: usize) -> Profile {
        Profile::parse(BUILT_IN[i].1).unwrap()
    }

    #[test]
    fn person_subject_ignores_identifier_and_puts_email_in_san() {
        let who = VettedIdentity {
            name: "Li Wei",
            organisation: Some("City Hall"),
            email: Some("li.wei@example.org"),
            identifier: Some("110101199003070011"),
        };
        let s = SubjectSpec::build(&profile(0), &who).unwrap();
        assert_eq!(s.display(), "CN=Li Wei,O=City Hall");
        assert_eq!(s.emails, vec!["li.wei@example.org"]);
    }

    #[test]
    fn organisation_subject_certifies_registration_number() {
        let who = VettedIdentity {
            name: "Acme, Ltd",
            organisation: None,
            email: None,
            identifier: Some("91310000X"),
        };
        let s = SubjectSpec::build(&profile(2), &who).unwrap();
        assert_eq!(s.display(), "serialNumber=91310000X,CN=Acme\\, Ltd");
        let none = VettedIdentity {
            identifier: None,
            ..who
        };
        assert_eq!(
            SubjectSpec::build(&profile(2), &none).unwrap_err().code(),
            "evidence_expired"
        );
    }

    fn refusal(value: &str) -> String {
        match checked_name("name", value, UB_NAME) {
            Ok(v) => panic!("{value:?} was accepted as {v:?}"),
            Err(e) => {
                assert_eq!(e.code(), "invalid_field");
                e.to_string()
            }
        }
    }

    #[test]
    fn invisible_and_directional_characters_are_refused_by_name_and_position() {
        assert_eq!(
            refusal("Ad\u{200B}min"),
            "name: contains U+200B ZERO WIDTH SPACE at position 3; invisible and formatting \
             characters are not allowed"
        );
        let cases = [
            (
                "Admin\u{202E}",
                "U+202E RIGHT-TO-LEFT OVERRIDE at position 6",
            ),
            (
                "\u{202D}Admin",
                "U+202D LEFT-TO-RIGHT OVERRIDE at position 1",
            ),
            (
                "Ad\u{2066}min\u{2069}",
                "U+2066 LEFT-TO-RIGHT ISOLATE at position 3",
            ),
            ("Ad\u{200E}min", "U+200E LEFT-TO-RIGHT MARK"),
            ("Ad\u{200F}min", "U+200F RIGHT-TO-LEFT MARK"),
            ("\u{061C}Admin", "U+061C ARABIC LETTER MARK"),
            (
                "\u{FEFF}Admin",
                "U+FEFF ZERO WIDTH NO-BREAK SPACE (byte order mark) at position 1",
            ),
            ("Ad\u{200C}min", "U+200C ZERO WIDTH NON-JOINER"),
            ("Ad\u{200D}min", "U+200D ZERO WIDTH JOINER"),
            ("Ad\u{2060}min", "U+2060 WORD JOINER"),
            ("Ad\u{AD}min", "U+00AD SOFT HYPHEN"),
            ("Ad\u{FE0F}min", "U+FE0F"),
            ("Ad\u{E0041}min", "U+E0041"),
            ("Ad\u{3164}min", "U+3164 HANGUL FILLER"),
            (
                "Li\u{2028}Wei",
                "U+2028 LINE SEPARATOR at position 3; line and paragraph",
            ),
            ("Li\u{2029}Wei", "U+2029 PARAGRAPH SEPARATOR"),
            (
                "Li\u{0}Wei",
                "U+0000 NULL at position 3; control characters",
            ),
            ("Li\nWei", "U+000A LINE FEED"),
            ("Li\u{85}Wei", "U+0085 NEXT LINE"),
            (
                "Li\u{A0}Wei",
                "U+00A0 NO-BREAK SPACE at position 3; only the ordinary space",
            ),
            ("李\u{3000}伟", "U+3000 IDEOGRAPHIC SPACE"),
            ("Li\u{E000}", "U+E000 at position 3; private-use"),
            ("Li\u{378}", "U+0378 at position 3; unassigned"),
        ];
        for (value, expected) in cases {
            let msg = refusal(value);
            assert!(msg.contains(expected), "{value:?}: {msg}");
        }
    }

    #[test]
    fn combining_marks_need_a_base() {
        let msg = refusal("\u{301}Admin");
        assert!(
            msg.contains("U+0301 COMBINING ACUTE ACCENT at position 1 at the start"),
            "{msg}"
        );
        let msg = refusal("Li \u{308}Wei");
        assert!(
            msg.contains("U+0308 COMBINING DIAERESIS at position 4 after U+0020 SPACE"),
            "{msg}"
        );
        assert!(refusal("Li-\u{301}").contains("position 4 after U+002D"));
        // A mark on a letter is composed (NFC) or kept on its base.
        assert_eq!(checked_name("name", "Jose\u{301}", 64).unwrap(), "José");
        assert_eq!(
            checked_name("name", "Nguye\u{302}\u{303}n", 64).unwrap(),
            "Nguyễn"
        );
        assert_eq!(checked_name("name", "q\u{307}", 64).unwrap(), "q\u{307}");
    }

    #[test]
    fn names_are_stored_in_nfc() {
        let decomposed = "Ange\u{300}le Dubois";
        let stored = checked_name("name", decomposed, 64).unwrap();
        assert_eq!(stored, "Angèle Dubois");
        assert_eq!(stored.chars().count(), 13);
        // The DN check wants the stored (NFC) form, so the certificate carries it exactly.
        assert!(check_dn_value(DnAttr::CommonName, &stored).is_ok());
        let err = check_dn_value(DnAttr::CommonName, decomposed).unwrap_err();
        assert!(err.to_string().contains("normalisation form C"), "{err}");
        // The length limit counts characters of the NFC form.
        let long = "e\u{301}".repeat(64);
        assert_eq!(checked_name("name", &long, 64).unwrap().chars().count(), 64);
    }

    #[test]
    fn scripts_that_confuse_are_refused() {
        // A Cyrillic А that looks like Latin A.
        let msg = refusal("\u{410}dmin");
        assert!(
            msg.contains(
                "mixes scripts that can be confused: 'А' U+0410 (Cyrillic) at position 1 and \
                 'd' U+0064 (Latin) at position 2"
            ),
            "{msg}"
        );
        assert!(refusal("Pay\u{440}al").contains("U+0440 (Cyrillic) at position 4"));
        // Latin with Greek.
        assert!(refusal("\u{3BF}pen Data").contains("(Greek)"));
        assert!(refusal("Micros\u{3BF}ft").contains("U+03BF (Greek) at position 7"));
        // Two other scripts, even with Latin around them.
        assert!(refusal("Иван Ωmega").contains("'Ω' U+03A9 (Greek) at position 6"));
        assert!(refusal("李伟 Li Иван").contains("'И' U+0418 (Cyrillic) at position 7"));
        assert!(refusal("שלום سلام").contains("(Arabic)"));
    }

    #[test]
    fn names_people_have_pass() {
        for name in [
            "Li Wei",
            "李伟",
            "李伟 Li Wei",
            "阿依古丽·买买提",
            "阿依古丽・买买提",
            "欧阳娜娜",
            "𠮷野家",
            "山田 太郎",
            "やまだ たろう",
            "ヤマダ・タロウ",
            "김민준",
            "金敏俊 김민준",
            "陳大文 ㄔㄣˊ",
            "Иван Петров",
            "Γιώργος Παπαδόπουλος",
            "محمد علي",
            "דוד כהן",
            "राम शर्मा",
            "Zoë O'Brien-Núñez",
            "Łukasz Żółć",
            "Nguyễn Văn An",
            "Acme, Ltd",
            "Stadtwerke Köln GmbH",
            "北京市公安局 Beijing PSB",
            "Tokyo 東京都庁",
            "Amr عمرو",
            "Dr. J. R. R. Tolkien (3rd)",
        ] {
            assert_eq!(
                checked_name("name", name, 64)
                    .as_deref()
                    .map_err(|e| e.to_string()),
                Ok(name),
                "{name}"
            );
        }
    }

    #[test]
    fn dn_value_rules() {
        assert!(check_dn_value(DnAttr::CommonName, &"a".repeat(65)).is_err());
        assert!(check_dn_value(DnAttr::CommonName, "a\u{7}b").is_err());
        assert!(check_dn_value(DnAttr::SerialNumber, "ID_1").is_err());
        assert!(check_dn_value(DnAttr::SerialNumber, "ID-1").is_ok());
    }
}
