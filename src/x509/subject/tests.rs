//! Tests of subject names: what each profile certifies of a vetted identity, and the rules
//! names must pass (characters, scripts, normal form, DN values).

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
