//! The architectures vminit is built and booted for, and what each needs:
//! Rust's target, Debian's name for it, QEMU's machine and console.

/// A CPU architecture vminit supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The machine this runs on.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// `x86_64` or `aarch64` (also `amd64`, `arm64`).
    pub fn parse(name: &str) -> Result<Arch, String> {
        match name {
            "x86_64" | "amd64" => Ok(Arch::X86_64),
            "aarch64" | "arm64" => Ok(Arch::Aarch64),
            other => Err(format!("--arch {other}: must be x86_64 or aarch64")),
        }
    }

    /// The kernel's (and Rust's) name: `x86_64`, `aarch64`.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// Rust's static target.
    pub fn target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
        }
    }

    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
        }
    }

    /// The QEMU system emulator, and the Debian package with it.
    pub fn qemu(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => ("qemu-system-x86_64", "qemu-system-x86"),
            Arch::Aarch64 => ("qemu-system-aarch64", "qemu-system-arm"),
        }
    }

    /// The serial console's device in the guest.
    pub fn console(self) -> &'static str {
        match self {
            Arch::X86_64 => "ttyS0",
            Arch::Aarch64 => "ttyAMA0",
        }
    }

    /// The modules a stock Debian kernel needs for the power button, as
    /// `vminit-image` puts them in its initramfs.
    pub fn power_button_modules(self) -> &'static [&'static str] {
        vminit_image::build::power_button_modules(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for arch in Arch::ALL {
            assert_eq!(Arch::parse(arch.name()), Ok(arch));
            assert_eq!(Arch::parse(arch.debian()), Ok(arch));
            assert!(arch.target().starts_with(arch.name()));
        }
        assert!(Arch::parse("riscv64").is_err());
    }
}
