//! Who the application runs as: the configured `uid[:gid]` or
//! `name[:group]` ([`crate::config::user`]), resolved against the image's
//! `/etc/passwd` and `/etc/group` (passwd(5), group(5)) into ids,
//! supplementary groups and a home directory.
//!
//! Pure functions over the files' text; [`crate::app::start::resolve_user`]
//! reads the files, and the child applies the result (setgroups, setgid,
//! setuid) before exec.

use thiserror::Error;

use crate::config::user::{UserSpec, Who};

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
    use crate::config::user::parse_user;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str =
        "root:x:0:\napp:x:1000:\nvideo:x:44:app,other\naudio:x:29:other\nwheel:x:10\n";

    fn resolved(spec: &str) -> Result<Identity, IdentityError> {
        resolve(&parse_user(spec).unwrap(), PASSWD, GROUP)
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
