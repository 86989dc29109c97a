//! The vehicle in its own network namespace, joined to the bench (the host's namespace) by a
//! veth pair, and the link between them cut with nftables drop rules inside the vehicle's
//! namespace (kernel `netem` is not available on these machines). Needs root, iproute2 and
//! nftables; `create` says why not where they are missing, and the bench skips the row.

use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};

pub struct VehicleNamespace {
    pub name: String,
    /// The vehicle's end of the veth pair (inside the namespace).
    vehicle_if: String,
    /// The vehicle's address on the link, where its launcher listens for the bench.
    pub vehicle_ip: String,
    cut: bool,
}

/// Runs `ip`/`nft` with `args`; the error names the command and what it printed.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        std::io::Write::write_all(&mut stdin, text.as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

impl VehicleNamespace {
    /// `rfx-veh-PID` with a veth pair `rfxhPID` (host) / `rfxvPID` (vehicle) on
    /// 10.77.(PID % 250).0/30, loopback up inside. Namespaces left by killed benches (their
    /// process gone) are removed first. `Err` says why the machine cannot do it.
    pub fn create() -> Result<Self> {
        for tool in [("ip", "-V"), ("nft", "--version")] {
            if Command::new(tool.0).arg(tool.1).stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
                bail!(
                    "{} is not installed (apt-get install {})",
                    tool.0,
                    if tool.0 == "nft" { "nftables" } else { "iproute2" }
                );
            }
        }
        remove_stale();
        let pid = std::process::id();
        let name = format!("rfx-veh-{pid}");
        // Interface names are at most 15 bytes.
        let (host_if, vehicle_if) = (format!("rfxh{}", pid % 100_000_000), format!("rfxv{}", pid % 100_000_000));
        let net = pid % 250;
        let (host_ip, vehicle_ip) = (format!("10.77.{net}.2"), format!("10.77.{net}.1"));
        run("ip", &["netns", "add", &name], None).context("cannot create a network namespace (root needed)")?;
        let namespace =
            Self { name: name.clone(), vehicle_if: vehicle_if.clone(), vehicle_ip: vehicle_ip.clone(), cut: false };
        run("ip", &["link", "add", &host_if, "type", "veth", "peer", "name", &vehicle_if, "netns", &name], None)?;
        run("ip", &["addr", "add", &format!("{host_ip}/30"), "dev", &host_if], None)?;
        run("ip", &["link", "set", &host_if, "up"], None)?;
        namespace.exec(&["ip", "addr", "add", &format!("{vehicle_ip}/30"), "dev", &vehicle_if], None)?;
        namespace.exec(&["ip", "link", "set", &vehicle_if, "up"], None)?;
        namespace.exec(&["ip", "link", "set", "lo", "up"], None)?;
        Ok(namespace)
    }

    /// The command line prefix that runs a program inside the namespace.
    pub fn prefix(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }

    /// Runs `args` inside the namespace, with `input` on its standard input.
    fn exec(&self, args: &[&str], input: Option<&str>) -> Result<()> {
        let mut all: Vec<&str> = self.prefix()[1..].to_vec();
        all.extend_from_slice(args);
        run("ip", &all, input)
    }

    /// Drops every packet in and out of the vehicle's end of the link.
    pub fn cut(&mut self) -> Result<()> {
        let rules = format!(
            "table inet reflex_link_cut {{\n  chain input {{ type filter hook input priority 0; policy accept; iifname \"{0}\" drop; }}\n  \
             chain output {{ type filter hook output priority 0; policy accept; oifname \"{0}\" drop; }}\n}}\n",
            self.vehicle_if
        );
        self.exec(&["nft", "-f", "-"], Some(&rules))?;
        self.cut = true;
        Ok(())
    }

    /// Takes the drop rules away again.
    pub fn restore(&mut self) -> Result<()> {
        if self.cut {
            self.exec(&["nft", "delete", "table", "inet", "reflex_link_cut"], None)?;
            self.cut = false;
        }
        Ok(())
    }
}

impl Drop for VehicleNamespace {
    /// Deleting the namespace deletes the veth pair (and the rules) with it.
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.name], None);
    }
}

/// Namespaces `rfx-veh-PID` whose bench process is gone.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.strip_prefix("rfx-veh-").and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run("ip", &["netns", "del", &name], None);
        }
    }
}
