//! The Linux capabilities each detector needs, the ones this process holds, and the checks
//! made before loading: a detector needing a capability the probe lacks fails naming both,
//! and with `strict_privileges` the probe refuses to start while holding more than its
//! detectors need.
//!
//! The needs were found by running each detector as a non-root user with chosen ambient
//! capabilities (kernel 6.18). Every detector loads programs and maps (CAP_BPF) of tracing
//! types and opens perf events (CAP_PERFMON). Uprobe perf events take CAP_SYS_ADMIN: kernels
//! since 6.15, and the stable updates of older ones, no longer accept CAP_PERFMON for them.
//! Tracepoint ids are read from tracefs, which only its owner (root) may read, so a probe
//! running under another user needs CAP_DAC_READ_SEARCH for tracepoints. `pool_faults` reads
//! `/proc/<pid>/maps` of processes of other users (or with more capabilities), which takes
//! CAP_SYS_PTRACE. Nothing needs CAP_SYS_RESOURCE: the kernel charges eBPF memory to the
//! cgroup, not to `RLIMIT_MEMLOCK`.

use std::fmt;
use std::os::unix::fs::MetadataExt;

use tracing::{info, warn};

use crate::detector::{self, Detector};
use crate::features::{Feature, KernelFeatures};
use crate::loader::TRACEFS_ROOTS;
use crate::{requirements, ProbeError};

const STATUS: &str = "/proc/self/status";
/// `nobody`: the user the strict-mode advice assumes, owning nothing.
const UNPRIVILEGED_USER: u32 = 65534;

/// The kernel's names of capabilities 0 to 40, in bit order.
#[rustfmt::skip]
const NAMES: [&str; 41] = [
    "chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
    "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin",
    "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace",
    "sys_pacct", "sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time",
    "sys_tty_config", "mknod", "lease", "audit_write", "audit_control", "setfcap",
    "mac_override", "mac_admin", "syslog", "wake_alarm", "block_suspend", "audit_read",
    "perfmon", "bpf", "checkpoint_restore",
];

/// One Linux capability, by its bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Capability(u8);

impl Capability {
    pub const DAC_OVERRIDE: Capability = Capability(1);
    pub const DAC_READ_SEARCH: Capability = Capability(2);
    pub const SYS_PTRACE: Capability = Capability(19);
    pub const SYS_ADMIN: Capability = Capability(21);
    pub const PERFMON: Capability = Capability(38);
    pub const BPF: Capability = Capability(39);

    /// The name `setpriv` and `capsh` take: `bpf`, `sys_admin`.
    pub fn short_name(self) -> String {
        NAMES
            .get(usize::from(self.0))
            .map_or_else(|| format!("cap_{}", self.0), |name| (*name).to_owned())
    }

    /// The broader capabilities the kernel accepts in place of this one.
    fn implied_by(self) -> &'static [Capability] {
        match self {
            Capability::BPF | Capability::PERFMON => &[Capability::SYS_ADMIN],
            Capability::DAC_READ_SEARCH => &[Capability::DAC_OVERRIDE],
            _ => &[],
        }
    }
}

impl fmt::Display for Capability {
    /// `CAP_BPF`, as the kernel headers and systemd name it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CAP_{}", self.short_name().to_uppercase())
    }
}

/// A set of capabilities, as the kernel prints them in `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySet(u64);

impl CapabilitySet {
    pub fn of(capabilities: &[Capability]) -> CapabilitySet {
        CapabilitySet(capabilities.iter().fold(0, |bits, cap| bits | 1 << cap.0))
    }

    pub fn contains(self, capability: Capability) -> bool {
        self.0 & 1 << capability.0 != 0
    }

    /// Whether holding this set lets the kernel grant `capability`.
    pub fn grants(self, capability: Capability) -> bool {
        self.contains(capability) || capability.implied_by().iter().any(|&c| self.contains(c))
    }

    /// The capabilities of `self` that are not in `other`.
    pub fn without(self, other: CapabilitySet) -> CapabilitySet {
        CapabilitySet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        (0..64u8)
            .filter(move |bit| self.0 & 1 << bit != 0)
            .map(Capability)
    }
}

impl fmt::Display for CapabilitySet {
    /// `CAP_BPF, CAP_PERFMON`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<String> = self.iter().map(|cap| cap.to_string()).collect();
        f.write_str(&names.join(", "))
    }
}

/// What this process may do: its effective capabilities and the user files are opened as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Privileges {
    pub effective: CapabilitySet,
    pub fsuid: u32,
}

impl Privileges {
    /// Reads this process's privileges from `/proc/self/status`.
    pub fn current() -> Result<Privileges, ProbeError> {
        let text = std::fs::read_to_string(STATUS).map_err(|source| ProbeError::Privileges {
            reason: format!("reading {STATUS}"),
            source: Some(source),
        })?;
        Privileges::parse(&text).ok_or_else(|| ProbeError::Privileges {
            reason: format!("{STATUS} has no CapEff and Uid lines"),
            source: None,
        })
    }

    /// The `CapEff:` (hex mask) and `Uid:` (real, effective, saved, filesystem) lines.
    fn parse(status: &str) -> Option<Privileges> {
        let field = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .map(str::trim)
        };
        let effective = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
        let fsuid = field("Uid:")?.split_whitespace().nth(3)?.parse().ok()?;
        Some(Privileges {
            effective: CapabilitySet(effective),
            fsuid,
        })
    }
}

/// One capability a detector needs, and what for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub capability: Capability,
    pub why: &'static str,
}

/// The capabilities a detector of `detector_type` with the kernel `features` it needs (see
/// `requirements`) takes when running as `privileges`.
pub fn needs(detector_type: &str, features: &[Feature], privileges: &Privileges) -> Vec<Need> {
    let mut needs = vec![
        Need {
            capability: Capability::BPF,
            why: "to create maps and load programs",
        },
        Need {
            capability: Capability::PERFMON,
            why: "to load tracing programs and open perf events",
        },
    ];
    if features.contains(&Feature::Uprobes) {
        needs.push(Need {
            capability: Capability::SYS_ADMIN,
            why: "to attach uprobes (kernels since 6.15 take it for uprobe perf events)",
        });
    }
    if features.contains(&Feature::Tracefs) && !owns_tracefs(privileges.fsuid) {
        needs.push(Need {
            capability: Capability::DAC_READ_SEARCH,
            why: "to read tracepoint ids from tracefs, which only root may read",
        });
    }
    if detector_type == detector::POOL_FAULTS {
        needs.push(Need {
            capability: Capability::SYS_PTRACE,
            why: "to read /proc/<pid>/maps of other users' processes",
        });
    }
    needs
}

/// The first need `privileges` do not grant, as the error the detector fails with.
pub fn missing(privileges: &Privileges, needs: &[Need]) -> Option<ProbeError> {
    let lacking = needs
        .iter()
        .find(|need| !privileges.effective.grants(need.capability))?;
    Some(ProbeError::MissingCapability {
        capability: lacking.capability.to_string(),
        why: lacking.why,
        held: privileges.effective.to_string(),
    })
}

/// `strict_privileges`: an error listing what `privileges` hold beyond the capabilities of
/// `needs`, with how to run the probe as a user of its own with those of `as_user` (which
/// differ from `needs` when running as root: root owns tracefs); `None` when nothing is extra.
pub fn excess(privileges: &Privileges, needs: &[Need], as_user: &[Need]) -> Option<ProbeError> {
    let set = |needs: &[Need]| {
        CapabilitySet::of(&needs.iter().map(|need| need.capability).collect::<Vec<_>>())
    };
    let extra = privileges.effective.without(set(needs));
    if extra.is_empty() {
        return None;
    }
    let needed = set(as_user);
    let names: Vec<String> = needed.iter().map(|cap| cap.to_string()).collect();
    let short: Vec<String> = needed
        .iter()
        .map(|cap| format!("+{}", cap.short_name()))
        .collect();
    let short = short.join(",");
    Some(ProbeError::ExcessCapabilities {
        extra: extra.to_string(),
        needed: needed.to_string(),
        systemd: format!("AmbientCapabilities={}", names.join(" ")),
        setpriv: format!(
            "setpriv --reuid=wbpf --regid=wbpf --init-groups --inh-caps=-all,{short} \
             --ambient-caps=-all,{short} wbpf probe --config FILE"
        ),
    })
}

/// The first capability a detector of `detector_type` needing the kernel `features` lacks,
/// read from this process; `None` (logged) when the process's capabilities cannot be read,
/// leaving the verdict to the loader.
pub fn missing_for(detector_type: &str, features: &[Feature]) -> Option<ProbeError> {
    match Privileges::current() {
        Ok(privileges) => missing(&privileges, &needs(detector_type, features, &privileges)),
        Err(error) => {
            warn!(error = %error, "not checking capabilities before loading");
            None
        }
    }
}

/// `strict_privileges` at start: fails when this process holds capabilities none of
/// `detectors` needs (with the trace-context uprobe when `context`).
pub fn refuse_excess(detectors: &[&Detector], context: bool) -> Result<(), ProbeError> {
    let privileges = Privileges::current()?;
    let mut features = KernelFeatures::default();
    let as_user = Privileges {
        fsuid: UNPRIVILEGED_USER,
        ..privileges
    };
    let (mut all, mut all_as_user) = (Vec::new(), Vec::new());
    for detector in detectors {
        let kernel = requirements::of_detector(&mut features, detector, context);
        all.extend(needs(detector.type_name(), &kernel, &privileges));
        all_as_user.extend(needs(detector.type_name(), &kernel, &as_user));
    }
    if let Some(error) = excess(&privileges, &all, &all_as_user) {
        return Err(error);
    }
    info!(
        capabilities = %privileges.effective,
        "strict privileges: holding only what the detectors need"
    );
    Ok(())
}

/// Whether the tracefs mount belongs to `fsuid` (root, when running as root).
fn owns_tracefs(fsuid: u32) -> bool {
    TRACEFS_ROOTS
        .iter()
        .filter_map(|root| std::fs::metadata(root).ok())
        .any(|meta| meta.uid() == fsuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT_STATUS: &str = "Name:\twbpf\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n\
        CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\n";

    fn running_as(caps: &[Capability], fsuid: u32) -> Privileges {
        Privileges {
            effective: CapabilitySet::of(caps),
            fsuid,
        }
    }

    #[test]
    fn status_gives_the_effective_set_and_the_filesystem_uid() {
        let root = Privileges::parse(ROOT_STATUS).expect("parses");
        assert_eq!(root.fsuid, 0);
        assert_eq!(root.effective.iter().count(), 41);

        let status = "Uid:\t1000\t65534\t65534\t65533\nCapEff:\t000000c000000000\n";
        let user = Privileges::parse(status).expect("parses");
        assert_eq!(
            user,
            running_as(&[Capability::BPF, Capability::PERFMON], 65533)
        );
        assert_eq!(user.effective.to_string(), "CAP_PERFMON, CAP_BPF");
        assert_eq!(Privileges::parse("Uid:\t0\t0\t0\t0\n"), None);
    }

    #[test]
    fn sys_admin_grants_bpf_and_perfmon_and_dac_override_grants_reading() {
        let admin = CapabilitySet::of(&[Capability::SYS_ADMIN]);
        assert!(admin.grants(Capability::BPF) && admin.grants(Capability::PERFMON));
        assert!(!admin.grants(Capability::SYS_PTRACE));
        let dac = CapabilitySet::of(&[Capability::DAC_OVERRIDE]);
        assert!(dac.grants(Capability::DAC_READ_SEARCH));
        assert!(!CapabilitySet::of(&[Capability::BPF]).grants(Capability::PERFMON));
    }

    #[test]
    fn uprobes_need_sys_admin_and_pool_faults_needs_ptrace() {
        let user = running_as(&[], 65534);
        let capabilities = |detector_type, features: &[Feature]| -> Vec<Capability> {
            let needs = needs(detector_type, features, &user);
            needs.iter().map(|need| need.capability).collect()
        };
        assert_eq!(
            capabilities(detector::FUNCTION_LATENCY, &[Feature::Uprobes]),
            [Capability::BPF, Capability::PERFMON, Capability::SYS_ADMIN]
        );
        assert_eq!(
            capabilities(detector::SYSCALL_LATENCY, &[]),
            [Capability::BPF, Capability::PERFMON]
        );
        let faults = capabilities(detector::POOL_FAULTS, &[Feature::Tracefs]);
        assert!(faults.contains(&Capability::SYS_PTRACE), "{faults:?}");
    }

    #[test]
    fn a_missing_capability_is_named_with_its_reason_and_what_is_held() {
        let held = running_as(&[Capability::BPF, Capability::PERFMON], 65534);
        let needs = needs(detector::POOL_OBJECTS, &[Feature::Uprobes], &held);
        let error = missing(&held, &needs).expect("CAP_SYS_ADMIN is missing");
        let message = error.to_string();
        assert!(
            message.starts_with("needs CAP_SYS_ADMIN to attach uprobes"),
            "{message}"
        );
        assert!(message.ends_with("holds CAP_PERFMON, CAP_BPF"), "{message}");

        let enough = running_as(&[Capability::SYS_ADMIN], 65534);
        assert!(missing(&enough, &needs).is_none());
    }

    #[test]
    fn strict_mode_lists_the_extra_capabilities_and_how_to_drop_them() {
        let root = Privileges::parse(ROOT_STATUS).expect("parses");
        let needs = needs(detector::SYSCALL_LATENCY, &[], &root);
        let message = excess(&root, &needs, &needs)
            .expect("root holds more")
            .to_string();
        assert!(message.contains("CAP_SYS_ADMIN"), "{message}");
        assert!(message.contains("CAP_DAC_OVERRIDE"), "{message}");
        assert!(
            !message.contains("CAP_BPF,"),
            "CAP_BPF is needed: {message}"
        );
        assert!(
            message.contains("AmbientCapabilities=CAP_PERFMON CAP_BPF"),
            "{message}"
        );
        assert!(
            message.contains("--ambient-caps=-all,+perfmon,+bpf "),
            "{message}"
        );

        let exact = running_as(&[Capability::BPF, Capability::PERFMON], 65534);
        assert!(excess(&exact, &needs, &needs).is_none());
    }
}
