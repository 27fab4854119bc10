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
mod tests;
