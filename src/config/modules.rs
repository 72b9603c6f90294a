//! The `modules` setting: kernel module names, as the kernel knows them.
//! [`crate::machine::modules`] plans which files to load for them.

use crate::config::error::Problem;

/// The kernel's `MODULE_NAME_LEN` less the NUL.
const MAX_NAME: usize = 55;

/// A module's name as the kernel knows it: `-` and `_` are the same.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// Checks a comma-separated list of module names.
pub fn parse_list(value: &str) -> Result<Vec<String>, Problem> {
    value
        .split(',')
        .map(|name| {
            let ok = !name.is_empty()
                && name.len() <= MAX_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if ok {
                Ok(normalize(name))
            } else {
                Err(Problem::BadSetting(
                    "must be module names separated by ',': letters, digits, '_' and '-', \
                     at most 55 bytes each",
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(
            parse_list("virtio_net,vsock-loopback"),
            Ok(vec!["virtio_net".into(), "vsock_loopback".into()])
        );
        for bad in ["", "a,,b", "a b", "a/b", &"m".repeat(56)] {
            assert!(parse_list(bad).is_err(), "{bad:?}");
        }
    }
}
