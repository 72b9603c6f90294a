//! The rules every input obeys, whatever source it came from.
//!
//! These are plain functions over strings; callers attach the source (which
//! cmdline key, which file and field) when they turn a [`Problem`] into a
//! [`crate::error::ConfigError`]. No message here ever contains an env value.

use crate::error::Problem;

/// Longest environment variable name accepted, in bytes.
pub const MAX_ENV_KEY_BYTES: usize = 256;
/// Longest environment variable value accepted, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 128 * 1024;
/// Longest path accepted, in bytes (`PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;

/// Checks an environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most
/// [`MAX_ENV_KEY_BYTES`].
pub fn env_key(key: &str) -> Result<(), Problem> {
    if key.len() > MAX_ENV_KEY_BYTES {
        return Err(Problem::EnvKeyTooLong(key.len()));
    }
    let mut bytes = key.bytes();
    let first_ok = matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'));
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(Problem::EnvKeyInvalid);
    }
    Ok(())
}

/// Checks an environment variable value: at most [`MAX_ENV_VALUE_BYTES`] and
/// free of NUL (which `execve` cannot carry).
pub fn env_value(value: &str) -> Result<(), Problem> {
    if value.len() > MAX_ENV_VALUE_BYTES {
        return Err(Problem::EnvValueTooLong(value.len()));
    }
    if value.contains('\0') {
        return Err(Problem::EnvValueNul);
    }
    Ok(())
}

/// Checks a path: absolute and already clean (no `.` or `..` component, no
/// `//`, no trailing `/` except for `/` itself), at most [`MAX_PATH_BYTES`],
/// and free of NUL.
pub fn clean_absolute_path(path: &str) -> Result<(), Problem> {
    if path.len() > MAX_PATH_BYTES {
        return Err(Problem::PathTooLong(path.len()));
    }
    if path.contains('\0') {
        return Err(Problem::PathNul);
    }
    if !path.starts_with('/') {
        return Err(Problem::PathNotAbsolute);
    }
    if path == "/" {
        return Ok(());
    }
    if path.ends_with('/') {
        return Err(Problem::PathTrailingSlash);
    }
    for component in path[1..].split('/') {
        match component {
            "" => return Err(Problem::PathDoubleSlash),
            "." | ".." => return Err(Problem::PathDotComponent(component.to_owned())),
            _ => {}
        }
    }
    Ok(())
}

/// Checks one word of the application's argv: no NUL, and the program name
/// (`index` 0) not empty.
pub fn argv_word(index: usize, word: &str) -> Result<(), Problem> {
    if word.contains('\0') {
        return Err(Problem::ArgNul(index));
    }
    if index == 0 && word.is_empty() {
        return Err(Problem::ProgramEmpty);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_keys() {
        for ok in [
            "A",
            "_",
            "PATH",
            "lower_case",
            "_x1",
            "A".repeat(256).as_str(),
        ] {
            assert_eq!(env_key(ok), Ok(()), "{ok}");
        }
        for bad in ["", "1A", "A-B", "A.B", "A B", "Ä", "A=B", "A\0"] {
            assert_eq!(env_key(bad), Err(Problem::EnvKeyInvalid), "{bad:?}");
        }
        assert_eq!(env_key(&"A".repeat(257)), Err(Problem::EnvKeyTooLong(257)));
    }

    #[test]
    fn env_values() {
        assert_eq!(env_value(""), Ok(()));
        assert_eq!(env_value("a=b c\"d"), Ok(()));
        assert_eq!(env_value(&"x".repeat(MAX_ENV_VALUE_BYTES)), Ok(()));
        assert_eq!(
            env_value(&"x".repeat(MAX_ENV_VALUE_BYTES + 1)),
            Err(Problem::EnvValueTooLong(MAX_ENV_VALUE_BYTES + 1))
        );
        assert_eq!(env_value("a\0b"), Err(Problem::EnvValueNul));
    }

    #[test]
    fn paths() {
        for ok in ["/", "/app", "/a/b.c/d", "/.hidden", "/a/..b"] {
            assert_eq!(clean_absolute_path(ok), Ok(()), "{ok}");
        }
        let cases = [
            ("", Problem::PathNotAbsolute),
            ("app", Problem::PathNotAbsolute),
            ("/app/", Problem::PathTrailingSlash),
            ("//app", Problem::PathDoubleSlash),
            ("/a//b", Problem::PathDoubleSlash),
            ("/a/./b", Problem::PathDotComponent(".".into())),
            ("/a/..", Problem::PathDotComponent("..".into())),
            ("/a\0", Problem::PathNul),
        ];
        for (path, problem) in cases {
            assert_eq!(clean_absolute_path(path), Err(problem), "{path:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(
            clean_absolute_path(&long),
            Err(Problem::PathTooLong(long.len()))
        );
    }

    #[test]
    fn argv_words() {
        assert_eq!(argv_word(0, "sh"), Ok(()));
        assert_eq!(argv_word(1, ""), Ok(()));
        assert_eq!(argv_word(0, ""), Err(Problem::ProgramEmpty));
        assert_eq!(argv_word(2, "a\0"), Err(Problem::ArgNul(2)));
    }
}
