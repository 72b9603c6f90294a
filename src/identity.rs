//! Who the application runs as: `uid[:gid]` or `name[:group]`, resolved
//! against the image's `/etc/passwd` and `/etc/group` (passwd(5), group(5))
//! into ids, supplementary groups and a home directory.
//!
//! Pure functions over the files' text; `run.rs` reads the files and the
//! child applies the result (setgroups, setgid, setuid) before exec.

use thiserror::Error;

use crate::error::Problem;

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

/// What the application gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (from `/etc/group`), the primary one included.
    pub groups: Vec<u32>,
    /// `HOME`: the passwd entry's home, or `/` without one.
    pub home: String,
}

/// Why a user specification could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("user {0}: no such user in /etc/passwd")]
    NoSuchUser(String),
    #[error("group {0}: no such group in /etc/group")]
    NoSuchGroup(String),
    #[error("user {0}: not in /etc/passwd, so give its group too, as {0}:GID")]
    NoPrimaryGroup(u32),
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

/// An id from the files; (uid_t)-1 is refused, as set*id(2) reads it as
/// "leave unchanged" (the app would stay root).
fn real_id(text: &str) -> Option<u32> {
    text.parse().ok().filter(|&id| id != u32::MAX)
}

/// One `/etc/passwd` entry: name, uid, gid, home.
struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(passwd: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [name, _, uid, gid, _, home, ..] => Some(PasswdEntry {
                name,
                uid: real_id(uid)?,
                gid: real_id(gid)?,
                // An empty home means `/`, as for login(1).
                home: if home.is_empty() { "/" } else { home },
            }),
            _ => None,
        }
    })
}

/// `/etc/group` entries: name, gid, members.
fn group_entries(group: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    group.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [name, _, gid, members, ..] => {
                let members = members.split(',').filter(|m| !m.is_empty()).collect();
                Some((*name, real_id(gid)?, members))
            }
            [name, _, gid] => Some((*name, real_id(gid)?, Vec::new())),
            _ => None,
        }
    })
}

/// Resolves `spec` against the text of `/etc/passwd` and `/etc/group`
/// (either may be empty when the image has none).
pub fn resolve(spec: &UserSpec, passwd: &str, group: &str) -> Result<Identity, IdentityError> {
    // A name must have an entry; an id may have none.
    let (uid, entry) = match &spec.user {
        Who::Name(name) => {
            let entry = passwd_entries(passwd)
                .find(|e| e.name == name)
                .ok_or_else(|| IdentityError::NoSuchUser(name.clone()))?;
            (entry.uid, Some(entry))
        }
        Who::Id(uid) => (*uid, passwd_entries(passwd).find(|e| e.uid == *uid)),
    };
    let gid = match &spec.group {
        Some(Who::Id(gid)) => *gid,
        Some(Who::Name(name)) => group_entries(group)
            .find(|(n, _, _)| n == name)
            .map(|(_, gid, _)| gid)
            .ok_or_else(|| IdentityError::NoSuchGroup(name.clone()))?,
        None => entry
            .as_ref()
            .map(|e| e.gid)
            .ok_or(IdentityError::NoPrimaryGroup(uid))?,
    };
    let mut groups = vec![gid];
    if let Some(e) = &entry {
        for (_, member_gid, members) in group_entries(group) {
            if members.contains(&e.name) && !groups.contains(&member_gid) {
                groups.push(member_gid);
            }
        }
    }
    let home = entry.as_ref().map_or("/", |e| e.home).to_owned();
    Ok(Identity {
        uid,
        gid,
        groups,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str =
        "root:x:0:\napp:x:1000:\nvideo:x:44:app,other\naudio:x:29:other\nwheel:x:10\n";

    fn resolved(spec: &str) -> Result<Identity, IdentityError> {
        resolve(&parse_user(spec).unwrap(), PASSWD, GROUP)
    }

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

    #[test]
    fn names_ids_groups_and_home() {
        let app = resolved("app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.home.as_str()),
            (1000, 1000, "/home/app")
        );
        assert_eq!(app.groups, [1000, 44]);
        assert_eq!(resolved("1000").unwrap(), app);
        let custom = resolved("app:audio").unwrap();
        assert_eq!((custom.gid, custom.groups.clone()), (29, vec![29, 44]));
        let stranger = resolved("4242:4242").unwrap();
        assert_eq!(
            (stranger.uid, stranger.gid, stranger.home.as_str()),
            (4242, 4242, "/")
        );
        assert_eq!(stranger.groups, [4242]);
    }

    #[test]
    fn odd_entries() {
        let passwd = "evil:x:4294967295:0::/:/bin/sh\nnohome:x:7:7:::/bin/sh\n";
        let evil = resolve(&parse_user("evil").unwrap(), passwd, "");
        assert_eq!(evil, Err(IdentityError::NoSuchUser("evil".into())));
        let nohome = resolve(&parse_user("nohome").unwrap(), passwd, "").unwrap();
        assert_eq!(nohome.home, "/");
    }

    #[test]
    fn unknown_names_are_refused() {
        assert_eq!(
            resolved("nobody"),
            Err(IdentityError::NoSuchUser("nobody".into()))
        );
        assert_eq!(
            resolved("app:staff"),
            Err(IdentityError::NoSuchGroup("staff".into()))
        );
        assert_eq!(resolved("4242"), Err(IdentityError::NoPrimaryGroup(4242)));
        assert_eq!(
            resolve(&parse_user("app").unwrap(), "", ""),
            Err(IdentityError::NoSuchUser("app".into()))
        );
    }
}
