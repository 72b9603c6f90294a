//! The `report.*` settings: where else the exit record goes, a
//! virtio-serial port's name or a vsock address. [`crate::record`] sends it.

use crate::config::error::Problem;

/// A vsock address: context id and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VsockAddr {
    pub cid: u32,
    pub port: u32,
}

impl std::fmt::Display for VsockAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.cid, self.port)
    }
}

/// `CID:PORT`, both decimal; `-1` (any) is not an address.
pub fn parse_vsock(value: &str) -> Result<VsockAddr, Problem> {
    const RULE: Problem = Problem::BadSetting(
        "must be CID:PORT, two numbers below 4294967295 (e.g. 2:5000 for the host)",
    );
    let (cid, port) = value.split_once(':').ok_or(RULE)?;
    let number = |text: &str| match text.parse::<u32>() {
        Ok(n) if n != u32::MAX && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(RULE),
    };
    Ok(VsockAddr {
        cid: number(cid)?,
        port: number(port)?,
    })
}

/// A virtio-serial port name, as QEMU's `virtserialport,name=` gives it.
pub fn parse_port_name(value: &str) -> Result<String, Problem> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Problem::BadSetting(
            "must be a port name of letters, digits, '.', '_' and '-' (e.g. org.vminit.exit)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_names() {
        assert_eq!(parse_vsock("2:5000"), Ok(VsockAddr { cid: 2, port: 5000 }));
        assert_eq!(parse_vsock("1:0").map(|a| a.to_string()), Ok("1:0".into()));
        for bad in [
            "2",
            "2:",
            ":1",
            "-1:5",
            "2:4294967295",
            "2:+5",
            "x:1",
            "2:5:6",
        ] {
            assert!(parse_vsock(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_port_name("org.vminit.exit"),
            Ok("org.vminit.exit".into())
        );
        for bad in ["", "a/b", "a b", "../x"] {
            assert!(parse_port_name(bad).is_err(), "{bad:?}");
        }
    }
}
