//! The application: who it runs as ([`identity`]), and PID 1's duties
//! while it runs and after ([`supervisor`]). Starting it is
//! [`crate::sys::process::spawn`].

pub mod identity;
pub mod supervisor;
