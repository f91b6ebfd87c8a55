//! Input rules shared by the API and the pages, so both refuse the same things the same way.

/// A field failed validation: which one and why, in words a person understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> FieldError {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

pub const PASSWORD_MIN: usize = 10;
pub const PASSWORD_MAX: usize = 128;

/// Normalises and checks an email address: trimmed, lower-cased, one `@`, a dotted domain,
/// no spaces, at most 254 characters. Deliberately simple: the verification email is the
/// real test of an address.
pub fn email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    let bad = || {
        FieldError::new(
            "email",
            "Please enter a valid email address, like name@example.org.",
        )
    };
    if email.len() > 254 {
        return Err(FieldError::new("email", "That email address is too long."));
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
        || domain.contains('@')
        || email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
    {
        return Err(bad());
    }
    Ok(email)
}

/// A person's display name: 1 to 200 characters after trimming, no control characters.
pub fn name(raw: &str) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(FieldError::new("name", "Please enter your name."));
    }
    text("name", trimmed, 200).map(|s| s.to_string())
}

/// Passwords: long enough to resist guessing, short enough to hash quickly.
pub fn password(raw: &str) -> Result<(), FieldError> {
    let len = raw.chars().count();
    if len < PASSWORD_MIN {
        return Err(FieldError::new(
            "password",
            format!("Please choose a password of at least {PASSWORD_MIN} characters."),
        ));
    }
    if len > PASSWORD_MAX {
        return Err(FieldError::new(
            "password",
            format!("Passwords may be at most {PASSWORD_MAX} characters."),
        ));
    }
    Ok(())
}

/// Free text with a length cap (in characters) and no control characters but newlines/tabs.
pub fn text<'a>(field: &'static str, value: &'a str, max: usize) -> Result<&'a str, FieldError> {
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("{field} may be at most {max} characters."),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(FieldError::new(
            field,
            format!("{field} contains characters that are not allowed."),
        ));
    }
    Ok(value)
}

/// Optional text: blank becomes `None`.
pub fn optional_text(
    field: &'static str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(field, v, max).map(|v| Some(v.to_string())),
    }
}

/// Phone numbers: digits and the usual punctuation, 5 to 40 characters.
pub fn phone(value: Option<&str>) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => {
            let ok = v.len() <= 40
                && v.chars().filter(|c| c.is_ascii_digit()).count() >= 5
                && v.chars()
                    .all(|c| c.is_ascii_digit() || " +-().x".contains(c));
            if ok {
                Ok(Some(v.to_string()))
            } else {
                Err(FieldError::new(
                    "phone",
                    "Please enter a phone number using digits, spaces, + - ( ).",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(email("  Jane@Example.ORG ").unwrap(), "jane@example.org");
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.org",
            "jane@org",
            "ja ne@example.org",
            "a@b@c.org",
            "jane@.org",
            "jane@example.org.",
            "x@a..b",
        ] {
            assert!(email(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(email(&format!("{}@example.org", "a".repeat(250))).is_err());
    }

    #[test]
    fn names_and_passwords() {
        assert_eq!(name("  Jane Doe ").unwrap(), "Jane Doe");
        assert!(name("   ").is_err());
        assert!(name(&"x".repeat(201)).is_err());
        assert!(name("bell\u{7}").is_err());
        assert!(password("short").is_err());
        assert!(password(&"p".repeat(129)).is_err());
        assert!(password("correct horse").is_ok());
    }

    #[test]
    fn phones() {
        assert_eq!(
            phone(Some(" +1 (555) 123-4567 ")).unwrap().as_deref(),
            Some("+1 (555) 123-4567")
        );
        assert_eq!(phone(Some("")).unwrap(), None);
        assert!(phone(Some("call me")).is_err());
        assert!(phone(Some("12")).is_err());
    }
}
