//! The application: who it runs as ([`identity`]), what starting it takes
//! ([`start`]: its user, environment, limits and set-up steps), and PID 1's
//! duties while it runs and after ([`supervisor`]). Starting it is
//! [`crate::sys::process::spawn`].

pub mod identity;
pub mod start;
pub mod supervisor;
