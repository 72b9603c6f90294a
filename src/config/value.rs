//! What the values of settings share, whichever setting they belong to:
//! the parsers of yes/no flags ([`parse_flag`]) and of seconds
//! ([`parse_grace`]), and [`pick`], which takes one layer's value over
//! another's. A leaf: [`crate::config::settings`], [`crate::config::mounts`]
//! and [`crate::config::net`] all use it, and it uses none of them.

use std::time::Duration;

use crate::config::error::Problem;

/// Longest grace period accepted.
pub const MAX_GRACE: Duration = Duration::from_secs(3600);

/// Takes `high` over `low` when it is set: one setting of one layer over
/// another's.
pub fn pick<T: Clone>(low: &mut Option<T>, high: &Option<T>) {
    if high.is_some() {
        low.clone_from(high);
    }
}

/// Parses a yes/no setting.
pub fn parse_flag(value: &str) -> Result<bool, Problem> {
    match value {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(Problem::BadSetting("must be true or false (or 1, 0)")),
    }
}

/// Parses a number of seconds with up to three decimals, `0` to `3600`.
pub fn parse_grace(value: &str) -> Result<Duration, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be a number of seconds from 0 to 3600, with at most 3 decimals (e.g. 2.5)",
    );
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 4
        || fraction.len() > 3
        || !digits(whole)
        || !digits(fraction)
    {
        return Err(RULE);
    }
    if value.ends_with('.') {
        return Err(RULE);
    }
    let seconds: u64 = whole.parse().map_err(|_| RULE)?;
    let millis: u64 = format!("{fraction:0<3}").parse().map_err(|_| RULE)?;
    let grace = Duration::from_secs(seconds) + Duration::from_millis(millis);
    if grace > MAX_GRACE {
        return Err(RULE);
    }
    Ok(grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_values() {
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_grace("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_grace("0.001"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_grace("3600"), Ok(MAX_GRACE));
        for bad in [
            "", "-1", "3601", "1.", ".5", "1.0001", "1e3", " 1", "abc", "99999",
        ] {
            assert!(parse_grace(bad).is_err(), "{bad:?}");
        }
    }
}
