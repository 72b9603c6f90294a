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

/// `/etc/hosts` as the app should find it when no `net.hosts` are given:
/// the image's own, with what Docker's always has added when missing
/// (`localhost` for IPv4 and IPv6, and the machine's name), or all of it
/// when the image has none. `None` when the image's lacks nothing.
pub fn hosts_completed(existing: Option<&str>, hostname: Option<&str>) -> Option<String> {
    let Some(text) = existing else {
        return Some(hosts_file(&[], hostname));
    };
    let (mut v4_localhost, mut v6_localhost, mut named) = (false, false, hostname.is_none());
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(addr) = words.next().and_then(|a| a.parse::<IpAddr>().ok()) else {
            continue;
        };
        for name in words {
            if name == "localhost" {
                v4_localhost |= addr.is_ipv4();
                v6_localhost |= addr.is_ipv6();
            }
            named |= Some(name) == hostname;
        }
    }
    let mut added = String::new();
    if !v4_localhost {
        added.push_str("127.0.0.1\tlocalhost\n");
    }
    if !v6_localhost {
        added.push_str("::1\tlocalhost ip6-localhost ip6-loopback\n");
    }
    if let Some(name) = hostname.filter(|_| !named) {
        added.push_str(&format!("127.0.1.1\t{name}\n"));
    }
    if added.is_empty() {
        return None;
    }
    let mut completed = text.to_owned();
    if !completed.is_empty() && !completed.ends_with('\n') {
        completed.push('\n');
    }
    completed.push_str("# Added by vminit\n");
    completed.push_str(&added);
    Some(completed)
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

    #[test]
    fn the_images_hosts_file_is_kept_and_completed() {
        let none = hosts_completed(None, Some("a1b2c3d4e5f6")).unwrap();
        assert!(
            none.contains("127.0.0.1\tlocalhost\n::1\tlocalhost"),
            "{none}"
        );
        assert!(none.ends_with("127.0.1.1\ta1b2c3d4e5f6\n"), "{none}");
        // Debian's own: both localhosts, no machine name.
        let debian = "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n";
        assert_eq!(
            hosts_completed(Some(debian), Some("web")).unwrap(),
            format!("{debian}# Added by vminit\n127.0.1.1\tweb\n")
        );
        assert_eq!(hosts_completed(Some(debian), None), None);
        // Alpine's old one: IPv4 only, and a comment that names localhost.
        let alpine = "127.0.0.1 localhost.localdomain localhost # ::1 localhost";
        let completed = hosts_completed(Some(alpine), Some("web")).unwrap();
        assert!(
            completed.starts_with(&format!("{alpine}\n# Added by vminit\n::1\t")),
            "{completed}"
        );
        let complete = "127.0.0.1 localhost web\n::1 localhost\n";
        assert_eq!(hosts_completed(Some(complete), Some("web")), None);
    }
}
