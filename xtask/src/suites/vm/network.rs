//! The network: virtio-net set up from the command line and reaching the
//! host, `resolv.conf` and `hosts` (also on a read-only root), and the
//! host's side, a one-page HTTP server.

use std::time::Duration;

use super::checks::{expect, refused_before_the_app, require};
use super::{Case, Device, Image};

/// What the HTTP server answers.
const HTTP_BODY: &str = "host-says-hello";

/// The network's set-up, what the guest reaches, and what is refused.
pub(super) fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "modules_then_static_network_reaches_the_host_over_virtio_net",
            image: Image::Normal,
            cmdline: "vminit.modules=virtio_mmio,virtio_net vminit.net.address=10.0.2.15/24,fec0::15/64 \
                      vminit.net.gateway=10.0.2.2,fec0::2 vminit.net.mtu=1400 \
                      vminit.net.nameservers=10.0.2.3 vminit.net.hosts=hostside=10.0.2.2 vminit.hostname=vmbox \
                      -- /tests/net.sh {http_port}",
            after: &[],
            devices: &[Device::Net],
            check: |c, outside| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "mtu=[1400]",
                        "v4 inet 10.0.2.15/24",
                        "v6 inet6 fec0::15/64",
                        "route4 default via 10.0.2.2 dev eth0",
                        "route6 default via fec0::2 dev eth0",
                        "resolv: nameserver 10.0.2.3",
                        "replaced the image's /etc/resolv.conf",
                        "hosts: 10.0.2.2\thostside",
                        "hosts: 127.0.1.1\tvmbox",
                        &format!("http: {HTTP_BODY}"),
                    ],
                )?;
                if c.has("192.0.2.1") {
                    return Err("the image's nameserver is still there".into());
                }
                match outside.http_requests.as_slice() {
                    [one] if one.starts_with("GET /from-guest ") => Ok(()),
                    other => Err(format!("the host's HTTP server saw {other:?}")),
                }
            },
        },
        Case {
            name: "a_network_interface_that_is_not_there_is_refused_before_the_app",
            image: Image::Normal,
            cmdline: r#"vminit.modules=virtio_mmio,virtio_net vminit.net.interface=eth9
                        vminit.net.address=10.0.2.15/24 -- sh -c "echo app-ran""#,
            after: &[],
            devices: &[Device::Net],
            check: |c, _| {
                refused_before_the_app(
                    c,
                    "Cannot configure network interface eth9 (find it): No such device",
                )
            },
        },
        Case {
            name: "resolv_conf_and_hosts_on_a_read_only_root",
            image: Image::ReadOnlyRoot,
            cmdline: r#"vminit.net.nameservers=10.0.2.3 vminit.net.hosts=db=10.0.2.20 --
                        sh -c "touch /etc/x 2>/dev/null || echo root-is-read-only;
                               sed 's/^/resolv: /' /etc/resolv.conf; grep db /etc/hosts""#,
            after: &[],
            devices: &[],
            check: |c, _| {
                expect(c, 0)?;
                require(
                    c,
                    &[
                        "root-is-read-only",
                        "wrote /run/systemd/resolve/stub-resolv.conf, where the read-only image's /etc/resolv.conf points",
                        "resolv: nameserver 10.0.2.3",
                        "mounted /run/vminit/hosts over the image's read-only /etc/hosts",
                        "10.0.2.20\tdb",
                    ],
                )
            },
        },
    ]
}

/// A one-page HTTP server on the host's loopback, for the network case:
/// answers every request with [`HTTP_BODY`] and records its request line.
pub(super) struct HttpServer {
    pub(super) port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<String>>,
}

impl HttpServer {
    pub(super) fn start() -> Result<HttpServer, String> {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut requests = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                // The rest of the head, up to the empty line.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                requests.push(line.trim_end().to_owned());
                let _ = (&stream).write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{HTTP_BODY}\n",
                        HTTP_BODY.len() + 1
                    )
                    .as_bytes(),
                );
            }
            requests
        });
        Ok(HttpServer { port, stop, thread })
    }

    /// Stops the server and returns the request lines it saw.
    pub(super) fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
