//! The test images' contents: the scripts and files under `/tests` and
//! `/etc`, the kernel modules, and the read-only image's `/init`.

/// Scripts and files in the test image, under `/tests`.
pub(super) const FILES: &[(&str, &str)] = &[
    (
        "/tests/show-env.sh",
        r#"#!/bin/sh
echo "GREETING=[$GREETING] SPACED=[$SPACED] EQ=[$EQ] A=[$A] B=[$B]"
echo "PWD=[$(pwd)] pid=[$$]"
echo "leaked=[$(env | grep -cE '^(workdir|metadata|vminit)')]"
for p in /proc/self /sys/kernel /dev/pts /dev/shm /run /dev/null; do [ -e $p ] && echo "have $p"; done
echo "lo-flags=[$(cat /sys/class/net/lo/flags)]"
[ -e /tests/meta.json ] && echo "metadata-file=present" || echo "metadata-file=gone"
[ -e /etc/app/app.conf ] && echo "file=[$(cat /etc/app/app.conf)] $(stat -c '%a %u:%g' /etc/app/app.conf)"
exit ${1:-0}
"#,
    ),
    (
        "/tests/zombies.sh",
        r#"#!/bin/sh
i=0
while [ $i -lt 60 ]; do sh -c 'sleep 0.3 &'; i=$((i+1)); done
sleep 3
cat /proc/[0-9]*/stat 2>/dev/null | sed 's/^[0-9]* (.*) //' | awk '$1 == "Z" { n++ } END { print "zombies=" n+0 }'
kill -KILL $$
"#,
    ),
    (
        "/tests/wait-for-int.sh",
        r#"#!/bin/sh
trap 'echo "app got SIGINT"; exit 42' INT
echo "app ready"
while :; do sleep 1; done
"#,
    ),
    (
        "/tests/meta.json",
        r#"{"argv": ["/tests/show-env.sh"], "env": {"A": "meta", "B": "meta"}, "working_dir": "/tests",
            "files": [{"path": "/etc/app/app.conf", "content": "ZnJvbS1tZXRhZGF0YQ==", "mode": "0640", "uid": 1000, "gid": 44}],
            "vminit": {"delete_metadata": true}}"#,
    ),
    ("/tests/broken.json", r#"{"env": {"K": "s3cret-in-json""#),
    (
        "/tests/api.json",
        r#"{"vminit": {"api": {"vsock": 10000, "token": "test-t0ken-9f3"}}}"#,
    ),
    (
        "/tests/files-traversal.json",
        r#"{"files": [{"path": "/etc/../root/.ssh/authorized_keys", "content": "a2V5Cg=="}]}"#,
    ),
    (
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n",
    ),
    ("/etc/group", "root:x:0:\napp:x:1000:\nvideo:x:44:app\n"),
    // The image's own, which vminit must say it replaces.
    ("/etc/resolv.conf", "nameserver 192.0.2.1\n"),
    ("/etc/hosts", "127.0.0.1\tlocalhost image-hosts\n"),
    (
        "/tests/net.sh",
        r#"#!/bin/sh
echo "mtu=[$(cat /sys/class/net/eth0/mtu)]"
ip -4 addr show dev eth0 | grep -o 'inet [0-9./]*' | sed 's/^/v4 /'
ip -6 addr show dev eth0 | grep -o 'inet6 fec0[0-9a-f:/]*' | sed 's/^/v6 /'
ip -4 route | grep default | sed 's/^/route4 /'
ip -6 route | grep default | sed 's/^/route6 /'
sed 's/^/resolv: /' /etc/resolv.conf
grep -E 'hostside|127.0.1.1' /etc/hosts | sed 's/^/hosts: /'
wget -q -O - "http://10.0.2.2:$1/from-guest" | sed 's/^/http: /'
"#,
    ),
    (
        "/tests/count.sh",
        r#"#!/bin/sh
echo "args=$# keys=$(env | grep -c '^key[0-9]*=v$')"
"#,
    ),
    (
        "/tests/signal-init.sh",
        r#"#!/bin/sh
trap '' USR1
i=0
while [ $i -lt 15 ]; do kill -USR1 1; i=$((i+1)); sleep 0.1; done
sleep 0.3
"#,
    ),
    (
        "/tests/who-am-i.sh",
        r#"#!/bin/sh
echo "id=[$(id)] home=[$HOME] host=[$(hostname)] nofile=[$(ulimit -n)]"
grep NoNewPrivs /proc/self/status
"#,
    ),
];

/// The `/init` of the read-only image.
pub(super) const READ_ONLY_INIT: &str = r#"#!/bin/sh
/bin/ln -sf ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
/bin/mkdir -p /etc/static && /bin/mv /etc/hosts /etc/static/hosts && /bin/ln -s static/hosts /etc/hosts
/bin/mount -t proc proc /proc
/bin/mount -o remount,ro / || echo "cannot remount / read-only"
exec /sbin/vminit "$@"
"#;

/// The modules the test image carries (with their dependencies).
pub(super) const MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_net",
    "virtio_console",
    "vmw_vsock_virtio_transport",
    "virtio_blk",
    "crc32c_generic",
    "ext4",
    "overlay",
];
