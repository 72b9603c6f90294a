//! Resource limits for the application (getrlimit(2)): `NAME=SOFT[:HARD]`,
//! each a number or `unlimited`, applied in the child before exec.

use crate::config::error::Problem;

/// The resources, by the names `ulimit` and prlimit(1) use, lower case.
pub const RESOURCES: &[&str] = &[
    "as",
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// A soft and a hard limit; `None` is unlimited (`RLIM_INFINITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let one = |v: Option<u64>| v.map_or("unlimited".to_owned(), |v| v.to_string());
        write!(f, "{}:{}", one(self.soft), one(self.hard))
    }
}

/// The limits set, by resource name, in the names' order, each once. A
/// list rather than a B-tree map: at most 16 entries, and the map's code
/// for one more key type cost the binary 3 KB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits(Vec<(&'static str, Limit)>);

impl Limits {
    /// Sets `name`'s limit, replacing the one it had.
    pub fn insert(&mut self, name: &'static str, limit: Limit) {
        match self.0.binary_search_by(|(n, _)| n.cmp(&name)) {
            Ok(at) => self.0[at].1 = limit,
            Err(at) => self.0.insert(at, (name, limit)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Limit> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, l)| l)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Limit)> {
        self.0.iter().map(|(n, l)| (*n, l))
    }

    /// Sets every limit `other` has, over this one's.
    pub fn overlay(&mut self, other: &Limits) {
        for (name, limit) in &other.0 {
            self.insert(name, *limit);
        }
    }
}

impl std::ops::Index<&str> for Limits {
    type Output = Limit;

    fn index(&self, name: &str) -> &Limit {
        self.get(name).expect("no such limit")
    }
}

/// Checks a resource name against [`RESOURCES`].
pub fn resource(name: &str) -> Result<&'static str, Problem> {
    RESOURCES
        .iter()
        .find(|r| **r == name)
        .copied()
        .ok_or(Problem::UnknownResource(RESOURCES))
}

/// Parses `SOFT[:HARD]` (HARD defaults to SOFT); soft must not exceed hard.
pub fn parse_limit(value: &str) -> Result<Limit, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be SOFT[:HARD], each a number or unlimited, with SOFT at most HARD",
    );
    let one = |text: &str| -> Result<Option<u64>, Problem> {
        match text {
            "unlimited" | "infinity" => Ok(None),
            _ if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().map(Some).map_err(|_| RULE)
            }
            _ => Err(RULE),
        }
    };
    let (soft, hard) = match value.split_once(':') {
        Some((soft, hard)) => (one(soft)?, one(hard)?),
        None => {
            let both = one(value)?;
            (both, both)
        }
    };
    let soft_fits = match (soft, hard) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(s), Some(h)) => s <= h,
    };
    if soft_fits {
        Ok(Limit { soft, hard })
    } else {
        Err(RULE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(
            parse_limit("1024:4096"),
            Ok(Limit {
                soft: Some(1024),
                hard: Some(4096)
            })
        );
        assert_eq!(
            parse_limit("0"),
            Ok(Limit {
                soft: Some(0),
                hard: Some(0)
            })
        );
        assert_eq!(
            parse_limit("unlimited"),
            Ok(Limit {
                soft: None,
                hard: None
            })
        );
        assert_eq!(
            parse_limit("10:unlimited"),
            Ok(Limit {
                soft: Some(10),
                hard: None
            })
        );
        for bad in [
            "",
            "x",
            "-1",
            "5:4",
            "unlimited:5",
            "1:2:3",
            " 1",
            "99999999999999999999999",
        ] {
            assert!(parse_limit(bad).is_err(), "{bad:?}");
        }
        assert_eq!(resource("nofile"), Ok("nofile"));
        assert!(resource("files").is_err());
    }
}
