use proptest::prelude::*;

use super::*;

/// Every character a new id may hold.
fn alphabet() -> Vec<char> {
    ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(ID_SPECIALS.chars())
        .collect()
}

#[test]
fn the_alphabet_text_lists_exactly_the_allowed_specials() {
    let listed: String = ID_ALPHABET
        .trim_start_matches("A-Z a-z 0-9 ")
        .split(' ')
        .collect();
    assert_eq!(listed, ID_SPECIALS);
    // Azure's current list, in its order: - . % _ * ? ! ( ) , : = @ $ '
    for c in "-.%_*?!(),:=@$'".chars() {
        assert!(is_id_char(c), "{c:?}");
    }
    for c in "+#;/ \"&<>[]\\^`{|}~".chars() {
        assert!(!is_id_char(c), "{c:?}");
    }
}

#[test]
fn accepts_every_allowed_character_for_new_ids() {
    let all: String = alphabet().into_iter().collect();
    assert!(all.len() < MAX_ID_LEN);
    let id = DeviceId::new(all.as_str()).expect("valid");
    assert_eq!(id.as_str(), all);
    assert_eq!(id.check_creatable(), Ok(()));
    assert!(
        ModuleId::new(all.as_str())
            .expect("valid")
            .check_creatable()
            .is_ok()
    );
}

#[test]
fn legacy_characters_load_but_are_refused_for_new_ids() {
    for (s, c) in [("a+b", '+'), ("a#b", '#'), ("a;b", ';')] {
        let id = DeviceId::new(s).expect("an existing identity still loads");
        let e = id.check_creatable().expect_err("not for a new id");
        assert_eq!(e, IdError::NotForNewIds(c));
        let text = e.to_string();
        assert!(text.contains(&format!("{c:?}")), "{text}");
        assert!(text.contains(ID_ALPHABET), "{text}");
    }
    let plus = IdError::NotForNewIds('+').to_string();
    assert!(plus.contains("MQTT topic wildcard"), "{plus}");
    let semi = IdError::NotForNewIds(';').to_string();
    assert!(semi.contains("connection string"), "{semi}");
}

#[test]
fn rejects_bad_ids_with_a_message_that_says_why() {
    assert_eq!(DeviceId::new(""), Err(IdError::Empty));
    assert_eq!(DeviceId::new("a/b"), Err(IdError::NotAllowed('/')));
    assert_eq!(DeviceId::new("a b"), Err(IdError::NotAllowed(' ')));
    assert_eq!(DeviceId::new("a\nb"), Err(IdError::NotAllowed('\n')));
    assert_eq!(DeviceId::new("über"), Err(IdError::NotAscii('ü')));
    assert_eq!(DeviceId::new("a".repeat(129)), Err(IdError::TooLong(129)));
    assert!(DeviceId::new("a".repeat(128)).is_ok());

    let e = IdError::NotAscii('ü').to_string();
    assert!(e.contains("'ü'") && e.contains("non-ASCII"), "{e}");
    let e = IdError::NotAllowed(' ').to_string();
    assert!(
        e.contains("' ' (a space)") && e.contains(ID_ALPHABET),
        "{e}"
    );
    let e = IdError::NotAllowed('\n').to_string();
    assert!(e.contains("'\\n'"), "{e}");
    let e = IdError::NotAllowed('/').to_string();
    assert!(e.contains("separates device and module"), "{e}");
    let e = IdError::TooLong(129).to_string();
    assert!(e.contains("129") && e.contains("128"), "{e}");
}

#[test]
fn non_ascii_is_named_before_anything_else() {
    // A long id with a non-ASCII character: the character is the first thing to fix.
    let s = format!("{}é", "a".repeat(200));
    assert_eq!(DeviceId::new(s), Err(IdError::NotAscii('é')));
}

proptest! {
    #[test]
    fn every_id_from_the_alphabet_is_valid_and_creatable(
        chars in proptest::collection::vec(proptest::sample::select(alphabet()), 1..=MAX_ID_LEN)
    ) {
        let s: String = chars.into_iter().collect();
        let id = DeviceId::new(s.as_str()).expect("valid");
        prop_assert_eq!(id.check_creatable(), Ok(()));
        prop_assert_eq!(id.to_string(), s);
    }

    #[test]
    fn anything_else_is_refused_and_never_panics(s in ".{0,200}") {
        let ok = !s.is_empty() && s.len() <= MAX_ID_LEN && s.chars().all(is_id_char);
        let strict = DeviceId::new(s.as_str()).and_then(|d| d.check_creatable());
        prop_assert_eq!(strict.is_ok(), ok);
    }
}

proptest! {
    /// `DeviceId=`/`ModuleId=` carry every id character: values are split at their first `=`
    /// and ids hold no `;` (the field separator) or whitespace (trimmed).
    #[test]
    fn every_id_round_trips_through_a_connection_string(
        device in proptest::collection::vec(proptest::sample::select(alphabet()), 1..=MAX_ID_LEN),
        module in proptest::option::of(proptest::collection::vec(proptest::sample::select(alphabet()), 1..=40)),
    ) {
        let device: String = device.into_iter().collect();
        let mut cs = crate::ConnectionString::for_device(
            "hub.local",
            Some(8443),
            DeviceId::new(device.as_str()).expect("valid"),
            crate::Key::from_bytes(&[7; 32]).expect("32 bytes"),
        );
        cs.module_id = module.map(|m| ModuleId::new(m.into_iter().collect::<String>()).expect("valid"));
        let parsed: crate::ConnectionString = cs.to_string().parse().expect("parses");
        prop_assert_eq!(parsed, cs);
    }
}
