//! The text of `/etc/resolv.conf` and `/etc/hosts` for the `net.*`
//! settings; [`crate::machine::setup`] writes them.

use std::net::IpAddr;

/// The text of `/etc/resolv.conf` for `nameservers`.
pub fn resolv_conf(nameservers: &[IpAddr]) -> String {
    let mut text = String::from("# Written by vminit\n");
    for server in nameservers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    text
}

/// The text of `/etc/hosts`: the loopback names, the machine's own name
/// (as Debian's installer writes it, so that it resolves), then `hosts`.
pub fn hosts_file(hosts: &[(String, IpAddr)], hostname: Option<&str>) -> String {
    let mut text = String::from(
        "# Written by vminit\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n",
    );
    // Unless an entry names it already: the first match wins.
    if let Some(name) = hostname.filter(|name| !hosts.iter().any(|(host, _)| host == name)) {
        text.push_str(&format!("127.0.1.1\t{name}\n"));
    }
    for (name, addr) in hosts {
        text.push_str(&format!("{addr}\t{name}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::net::NetSettings;

    #[test]
    fn files() {
        let mut net = NetSettings::default();
        net.set("nameservers", "10.0.2.3,fec0::3").unwrap();
        net.set("hosts", "db=10.0.2.20,cache=fec0::20").unwrap();
        assert_eq!(
            resolv_conf(net.nameservers.as_deref().unwrap()),
            "# Written by vminit\nnameserver 10.0.2.3\nnameserver fec0::3\n"
        );
        let hosts = hosts_file(net.hosts.as_deref().unwrap(), Some("web-1"));
        assert!(hosts.starts_with("# Written by vminit\n127.0.0.1\tlocalhost\n"));
        assert!(
            hosts.ends_with("127.0.1.1\tweb-1\n10.0.2.20\tdb\nfec0::20\tcache\n"),
            "{hosts}"
        );
        assert!(!hosts_file(&[], None).contains("127.0.1.1"));
        let own = hosts_file(
            &[("web-1".into(), "10.0.2.15".parse().unwrap())],
            Some("web-1"),
        );
        assert!(!own.contains("127.0.1.1"), "{own}");
    }
}
