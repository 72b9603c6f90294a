//! The rules every input obeys, whatever source it came from.
//!
//! These are plain functions over strings; callers attach the source (which
//! cmdline key, which file and field) when they turn a [`Problem`] into a
//! [`crate::config::error::ConfigError`]. No message here ever contains an env value.

use crate::config::error::{NameKind, Problem};

/// Longest environment variable name accepted, in bytes.
pub const MAX_ENV_KEY_BYTES: usize = 256;
/// The longest string the kernel copies into a new program, its NUL
/// included: `MAX_ARG_STRLEN` (32 pages of 4 KiB). An argv word, or an
/// environment entry `KEY=VALUE`, longer than this fails exec with E2BIG.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;
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

/// Checks an environment variable's value: free of NUL (which `execve`
/// cannot carry), and `KEY=VALUE` with its NUL within [`MAX_ARG_STRLEN`].
pub fn env_value(key: &str, value: &str) -> Result<(), Problem> {
    let entry = key.len() + 1 + value.len() + 1;
    if entry > MAX_ARG_STRLEN {
        return Err(Problem::EnvTooLong(entry));
    }
    if value.contains('\0') {
        return Err(Problem::EnvValueNul);
    }
    Ok(())
}

/// The position of the first byte of `word`, from `start` on, that cannot
/// be in a name of `kind`.
///
/// A malformed name is most often a name and a value that lost their `=`
/// (`env.TOKEN:hunter2`): everything from that byte on may be a secret, so
/// callers show the word only up to it, and say which byte it was.
pub fn foreign_byte(word: &[u8], start: usize, kind: NameKind) -> Option<usize> {
    word.iter()
        .skip(start)
        .position(|&b| !kind.allows(b))
        .map(|i| start + i)
}

/// Checks a name written at the start of `word` (from `start` on, after a
/// known prefix such as `env.`): on a foreign byte, returns the part that
/// may be shown and the problem that names the byte, never the rest.
pub fn name_in_word(word: &[u8], start: usize, kind: NameKind) -> Result<(), (String, Problem)> {
    match foreign_byte(word, start, kind) {
        None => Ok(()),
        Some(position) => Err((
            // Every byte before `position` is ASCII.
            String::from_utf8_lossy(&word[..position]).into_owned(),
            Problem::ForeignByte {
                byte: word[position],
                position,
                kind,
            },
        )),
    }
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

/// Checks a host name: dot-separated labels of `[A-Za-z0-9-]`, none empty or
/// starting or ending with `-`, at most 64 bytes in all (RFC 1123, and the
/// kernel's limit).
pub fn hostname(value: &str) -> Result<String, Problem> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if value.len() <= 64 && value.split('.').all(label_ok) {
        Ok(value.to_owned())
    } else {
        Err(Problem::BadSetting(
            "must be a host name: labels of letters, digits and '-' joined by '.', at most 64 bytes",
        ))
    }
}

/// Checks one word of the application's argv: no NUL, the program name
/// (`index` 0) not empty, and the word with its NUL within [`MAX_ARG_STRLEN`].
pub fn argv_word(index: usize, word: &str) -> Result<(), Problem> {
    if word.len() + 1 > MAX_ARG_STRLEN {
        return Err(Problem::ArgTooLong(index, word.len() + 1));
    }
    if word.contains('\0') {
        return Err(Problem::ArgNul(index));
    }
    if index == 0 && word.is_empty() {
        return Err(Problem::ProgramEmpty);
    }
    Ok(())
}

/// The bytes a new program's argv and environment take on its stack as
/// the kernel counts them (`bprm_stack_limits()` and `copy_strings()` in
/// `fs/exec.c`): each string with its NUL, the program's path once more,
/// and a pointer per string.
/// `env` gives the length of each variable's key and value.
pub fn exec_size(argv: &[String], env: impl IntoIterator<Item = (usize, usize)>) -> usize {
    let (mut env_bytes, mut env_count) = (0, 0);
    for (key, value) in env {
        env_bytes += key + value + 2;
        env_count += 1;
    }
    let strings: usize = argv.iter().map(|word| word.len() + 1).sum::<usize>()
        + env_bytes
        + argv.first().map_or(1, |program| program.len() + 1);
    strings + (argv.len().max(1) + env_count) * std::mem::size_of::<usize>()
}

/// The most [`exec_size`] the kernel allows for a stack limit of `stack`
/// bytes (`None`: unlimited): a quarter of it, at most 6 MiB (3/4 of
/// `_STK_LIM`), at least 128 KiB (`ARG_MAX`, 32 pages).
pub fn exec_limit(stack: Option<u64>) -> usize {
    const MOST: u64 = 6 * 1024 * 1024;
    let quarter = stack.map_or(MOST, |s| s / 4).min(MOST);
    usize::try_from(quarter.max(MAX_ARG_STRLEN as u64)).unwrap_or(MAX_ARG_STRLEN)
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
        assert_eq!(env_value("K", ""), Ok(()));
        assert_eq!(env_value("K", "a=b c\"d"), Ok(()));
        // `K=` and the NUL take 3 of the kernel's 131072 bytes.
        let fits = MAX_ARG_STRLEN - 3;
        assert_eq!(env_value("K", &"x".repeat(fits)), Ok(()));
        assert_eq!(
            env_value("K", &"x".repeat(fits + 1)),
            Err(Problem::EnvTooLong(MAX_ARG_STRLEN + 1))
        );
        assert_eq!(env_value("K", "a\0b"), Err(Problem::EnvValueNul));
    }

    #[test]
    fn names_are_cut_at_the_first_foreign_byte() {
        assert_eq!(foreign_byte(b"env.TOKEN", 4, NameKind::Variable), None);
        assert_eq!(
            foreign_byte(b"env.TOKEN:c2VjcmV0==", 4, NameKind::Variable),
            Some(9)
        );
        assert_eq!(foreign_byte(b"log-target", 0, NameKind::Setting), None);
        assert_eq!(foreign_byte(b"user:root", 0, NameKind::Setting), Some(4));
        let (shown, problem) =
            name_in_word(b"env.TOKEN hunter2\xff", 4, NameKind::Variable).unwrap_err();
        assert_eq!(shown, "env.TOKEN");
        let message = problem.to_string();
        assert!(
            message.starts_with("the byte ' ' at position 9 "),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
        let (_, problem) = name_in_word(b"A\xffsecret", 0, NameKind::Variable).unwrap_err();
        assert!(
            problem
                .to_string()
                .starts_with("the byte 0xff at position 1 ")
        );
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
    fn exec_sizes_and_limits() {
        let argv = vec!["/bin/sh".to_owned(), "-c".to_owned()];
        // "/bin/sh\0-c\0" + "/bin/sh\0" again + "A=bc\0", 3 pointers.
        assert_eq!(exec_size(&argv, [(1, 2)]), 8 + 3 + 8 + 5 + 24);
        assert_eq!(exec_limit(Some(8 * 1024 * 1024)), 2 * 1024 * 1024);
        assert_eq!(exec_limit(None), 6 * 1024 * 1024);
        assert_eq!(exec_limit(Some(4096)), MAX_ARG_STRLEN);
    }

    #[test]
    fn argv_words() {
        assert_eq!(argv_word(0, "sh"), Ok(()));
        assert_eq!(argv_word(1, ""), Ok(()));
        assert_eq!(argv_word(0, ""), Err(Problem::ProgramEmpty));
        assert_eq!(argv_word(2, "a\0"), Err(Problem::ArgNul(2)));
        assert_eq!(argv_word(1, &"x".repeat(MAX_ARG_STRLEN - 1)), Ok(()));
        assert_eq!(
            argv_word(1, &"x".repeat(MAX_ARG_STRLEN)),
            Err(Problem::ArgTooLong(1, MAX_ARG_STRLEN + 1))
        );
    }
}
