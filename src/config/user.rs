//! The `user[:group]` setting: a uid or a name, and optionally a gid or a
//! group name, as written. [`crate::app::identity`] resolves it against the
//! image's files.

use crate::config::error::Problem;

/// A user or group as written: a number or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Id(u32),
    Name(String),
}

/// `user[:group]` as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub user: Who,
    pub group: Option<Who>,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Id(id) => write!(f, "{id}"),
            Who::Name(name) => f.write_str(name),
        }
    }
}

impl std::fmt::Display for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.group {
            Some(group) => write!(f, "{}:{group}", self.user),
            None => write!(f, "{}", self.user),
        }
    }
}

/// Parses `uid[:gid]` or `name[:group]` (ids and names may be mixed).
pub fn parse_user(value: &str) -> Result<UserSpec, Problem> {
    let (user, group) = match value.split_once(':') {
        Some((user, group)) => (user, Some(group)),
        None => (value, None),
    };
    Ok(UserSpec {
        user: parse_who(user)?,
        group: group.map(parse_who).transpose()?,
    })
}

fn parse_who(text: &str) -> Result<Who, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be uid[:gid] or name[:group]: ids below 4294967295, names [A-Za-z_][A-Za-z0-9_.-]* of at most 32 bytes",
    );
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            // (uid_t)-1 means "unchanged" to setuid(2): never a real id.
            Ok(id) if id != u32::MAX => Ok(Who::Id(id)),
            _ => Err(RULE),
        };
    }
    let mut bytes = text.bytes();
    let first_ok = matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'));
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok && text.len() <= 32 {
        Ok(Who::Name(text.to_owned()))
    } else {
        Err(RULE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            parse_user("1000"),
            Ok(UserSpec {
                user: Who::Id(1000),
                group: None
            })
        );
        assert_eq!(
            parse_user("app:44"),
            Ok(UserSpec {
                user: Who::Name("app".into()),
                group: Some(Who::Id(44))
            })
        );
        for bad in [
            "",
            ":",
            "1000:",
            "-x",
            "a b",
            "4294967295",
            "99999999999",
            &"a".repeat(33),
        ] {
            assert!(parse_user(bad).is_err(), "{bad:?}");
        }
    }
}
