//! The power button: QEMU's `system_powerdown` and cloud-hypervisor's
//! `power-button` reach the guest as a `KEY_POWER` press on an input
//! device (the ACPI button on x86-64, `gpio-keys` on arm64 `virt`). vminit
//! watches every event device that has that key and treats a press as
//! SIGTERM: the app is stopped gracefully and the VM powers off with its
//! status. On a stock kernel the devices need the modules `button` (x86)
//! or `gpio_keys` (arm64), and `evdev` for `/dev/input/eventN`.

use std::fs::File;
use std::path::Path;

use crate::sys::input::{self, EV_KEY, KEY_POWER};
use crate::{debug, warn};

/// Where the kernel lists input event devices.
const INPUT_CLASS: &str = "/sys/class/input";

/// More would be an odd machine; each is an open file while the app runs.
const MAX_DEVICES: usize = 4;

/// The watched devices.
#[derive(Debug, Default)]
pub struct PowerButton {
    devices: Vec<(String, File)>,
}

impl PowerButton {
    /// Finds and opens every event device with a power key; none is not
    /// an error (a machine may have no button, or no `evdev`).
    pub fn watch() -> PowerButton {
        let mut button = PowerButton::default();
        let Ok(entries) = std::fs::read_dir(INPUT_CLASS) else {
            debug!("no power button to watch: {INPUT_CLASS} cannot be read");
            return button;
        };
        let names = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| name.starts_with("event"));
        for name in names {
            let class = Path::new(INPUT_CLASS).join(&name).join("device");
            let caps = std::fs::read_to_string(class.join("capabilities/key")).unwrap_or_default();
            if !input::has_key(&caps, KEY_POWER) {
                continue;
            }
            if button.devices.len() == MAX_DEVICES {
                warn!(
                    "more than {MAX_DEVICES} devices with a power key: /dev/input/{name} is not watched"
                );
                continue;
            }
            let label = std::fs::read_to_string(class.join("name"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            let path = Path::new("/dev/input").join(&name);
            match input::open_signalling(&path) {
                Ok(file) => {
                    debug!(
                        "watching {} ({label:?}) for the power button",
                        path.display()
                    );
                    button.devices.push((path.display().to_string(), file));
                }
                Err(e) => warn!(
                    "cannot watch {} ({label:?}) for the power button: {e}",
                    path.display()
                ),
            }
        }
        if button.devices.is_empty() {
            debug!("no input device with a power key (modules button or gpio_keys, and evdev)");
        }
        button
    }

    /// Whether the button was pressed since the last call: reads every
    /// queued event of every device.
    pub fn pressed(&self) -> bool {
        let mut pressed = false;
        for (path, device) in &self.devices {
            match input::read_events(device) {
                Ok(events) => {
                    pressed |= events
                        .iter()
                        .any(|e| e.kind == EV_KEY && e.code == KEY_POWER && e.value == 1);
                }
                Err(e) => debug!("cannot read {path}: {e}"),
            }
        }
        pressed
    }
}
