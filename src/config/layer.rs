//! What one source says: a [`Layer`] of the configuration, as
//! [`crate::config::cli`], [`crate::config::cmdline`] and
//! [`crate::config::metadata`] each make one, before
//! [`crate::config::merge`] puts the layers together by precedence.

use crate::config::settings::Settings;
use crate::config::user::UserSpec;

/// One set-up step (metadata `"setup"`): run to its end, in order, after
/// the volumes and before the app; a failure ends the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetupStep {
    pub argv: Vec<String>,
    /// Root unless named.
    pub user: Option<UserSpec>,
    /// Over the app's environment.
    pub env: Vec<(String, String)>,
}

/// A file written before the set-up steps and the app (metadata
/// `"files"`). Its content is never shown: not by `Debug`, not in a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct FileSpec {
    /// Absolute and clean.
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
    /// The owner; when not given, the file is vminit's user's (root's in
    /// a VM), so that a container run as another user can write files.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// The most files the metadata may name: each costs a log line on the
/// console before the app starts.
pub const MAX_FILES: usize = 1024;

/// The mode of a file given without one: what `umask 022` gives.
pub const DEFAULT_FILE_MODE: u32 = 0o644;

impl std::fmt::Debug for FileSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSpec")
            .field("path", &self.path)
            .field("size", &self.content.len())
            .field("mode", &format_args!("{:04o}", self.mode))
            .field("uid", &self.uid)
            .field("gid", &self.gid)
            .finish()
    }
}

/// What one source says; `None` and empty mean "not set here".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// The application's argv; a source that sets it replaces it whole.
    pub argv: Option<Vec<String>>,
    /// Variables in the order given; later ones and higher layers win per key.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    /// Where the metadata file is (never set by the metadata file itself).
    pub metadata: Option<String>,
    /// Set-up steps (the metadata file only); a source that sets them
    /// replaces them whole.
    pub setup: Option<Vec<SetupStep>>,
    /// Files to write (the metadata file only); replaced whole, as `setup`.
    pub files: Option<Vec<FileSpec>>,
    pub settings: Settings,
}
