//! `wbpf doctor`: for each detector, whether it can run on this machine and, if not, why.
//!
//! The verdict comes from the same checks the probe makes before loading a detector (see
//! `requirements`): kernel BTF, tracefs, uprobes, program and map types, helpers and the
//! tracepoints each detector hooks, plus the binaries and symbols its uprobes attach to, and
//! the Linux capabilities it needs against those this process holds (see `privileges`).
//! Nothing is attached. Without a configuration every detector type is checked in its fullest
//! form.

use std::fmt;
use std::path::{Path, PathBuf};

use wbpf_config::ProbeConfig;

use crate::detector::{self, Detector, Spec};
use crate::features::{Availability, Feature, KernelFeatures};
use crate::privileges::{self, Capability, Need, Privileges};
use crate::requirements;
use crate::symbols;
use crate::ProbeError;

/// Whether one detector can run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Every check passed.
    Ready,
    /// Something it needs is missing: the reason.
    Unavailable(String),
    /// A check could not be made (usually missing privileges): which, and why.
    Unknown(String),
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The configured name, or the type without a configuration.
    pub detector: String,
    pub detector_type: &'static str,
    pub status: Status,
    /// The capabilities it needs, each with whether this process holds it.
    pub capabilities: Vec<(Need, bool)>,
}

/// What `wbpf doctor` prints: the kernel checks and a verdict per detector.
#[derive(Debug, Clone)]
pub struct DoctorReport {
    pub features: Vec<(Feature, Availability)>,
    pub detectors: Vec<Diagnosis>,
    /// This process's privileges; `None` when they cannot be read.
    pub privileges: Option<Privileges>,
}

impl DoctorReport {
    /// Whether every detector can run.
    pub fn all_ready(&self) -> bool {
        self.detectors
            .iter()
            .all(|diagnosis| diagnosis.status == Status::Ready)
    }
}

/// Checks the configured detectors, or every detector type when `config` is `None`.
/// Blocking (a few `bpf()` syscalls and file lookups).
pub fn diagnose(config: Option<&ProbeConfig>) -> Result<DoctorReport, ProbeError> {
    let mut features = KernelFeatures::default();
    let privileges = Privileges::current().ok();
    let detectors = match config {
        Some(config) => {
            let context = config
                .context
                .as_ref()
                .map(|context| (context.binary.clone(), context.symbol.clone()));
            detector::resolve(config)?
                .iter()
                .map(|detector| diagnose_one(&mut features, detector, context.clone()))
                .map(|diagnosis| with_capabilities(diagnosis, privileges.as_ref()))
                .collect()
        }
        None => detector::TYPES
            .iter()
            .map(|&detector_type| {
                let needs = requirements::of_type(detector_type, true);
                let diagnosis = Diagnosis {
                    detector: detector_type.to_owned(),
                    detector_type,
                    status: verdict(&mut features, &needs),
                    capabilities: Vec::new(),
                };
                // Capabilities without the context uprobe: its own line says what it takes.
                let own = requirements::of_type(detector_type, false);
                with_capabilities((diagnosis, own), privileges.as_ref())
            })
            .collect(),
    };
    Ok(DoctorReport {
        features: features.all().to_vec(),
        detectors,
        privileges,
    })
}

/// Adds the capabilities a detector needing the kernel `features` takes; a missing one makes
/// it unavailable, ahead of any kernel check (which may have failed for want of it).
fn with_capabilities(
    (mut diagnosis, features): (Diagnosis, Vec<Feature>),
    privileges: Option<&Privileges>,
) -> Diagnosis {
    let Some(privileges) = privileges else {
        return diagnosis;
    };
    let needs = privileges::needs(diagnosis.detector_type, &features, privileges);
    if let Some(error) = privileges::missing(privileges, &needs) {
        diagnosis.status = Status::Unavailable(error.to_string());
    }
    diagnosis.capabilities = needs
        .into_iter()
        .map(|need| (need, privileges.effective.grants(need.capability)))
        .collect();
    diagnosis
}

fn diagnose_one(
    features: &mut KernelFeatures,
    detector: &Detector,
    context: Option<(PathBuf, String)>,
) -> (Diagnosis, Vec<Feature>) {
    let needs = requirements::of_detector(features, detector, context.is_some());
    let mut status = verdict(features, &needs);
    if status == Status::Ready {
        let targets = uprobe_targets(detector).into_iter().chain(context);
        if let Some(problem) = targets
            .into_iter()
            .find_map(|(b, s)| missing_target(&b, &s))
        {
            status = Status::Unavailable(problem);
        }
    }
    let diagnosis = Diagnosis {
        detector: detector.name.clone(),
        detector_type: detector.type_name(),
        status,
        capabilities: Vec::new(),
    };
    (diagnosis, needs)
}

/// Missing beats unknown: a detector is unavailable as soon as one need is known missing.
fn verdict(features: &mut KernelFeatures, needs: &[Feature]) -> Status {
    if let Some(error) = requirements::missing(features, needs) {
        return Status::Unavailable(error.to_string());
    }
    let unknown = needs.iter().find_map(|need| match features.check(*need) {
        Availability::Unknown(reason) => Some(format!("{need}: {reason}")),
        _ => None,
    });
    unknown.map_or(Status::Ready, Status::Unknown)
}

/// The binary and symbol of each uprobe the detector attaches.
fn uprobe_targets(detector: &Detector) -> Vec<(PathBuf, String)> {
    match &detector.spec {
        Spec::FunctionLatency(spec) => vec![(spec.binary.clone(), spec.symbol.clone())],
        Spec::PoolObjects(spec) => [
            &spec.alloc_symbol,
            &spec.release_symbol,
            &spec.access_symbol,
        ]
        .into_iter()
        .map(|symbol| (spec.binary.clone(), symbol.clone()))
        .collect(),
        _ => Vec::new(),
    }
}

/// Why a uprobe on `symbol` in `binary` could not attach, if it could not.
fn missing_target(binary: &Path, symbol: &str) -> Option<String> {
    if !binary.is_file() {
        return Some(format!(
            "{} (uprobe target) does not exist",
            binary.display()
        ));
    }
    match symbols::first_missing(binary, &[symbol]) {
        Ok(None) => None,
        Ok(Some(_)) => Some(format!(
            "{} (uprobe target) defines no symbol {symbol}",
            binary.display()
        )),
        Err(reason) => Some(format!("{} (uprobe target): {reason}", binary.display())),
    }
}

impl fmt::Display for DoctorReport {
    /// Kernel checks first, then one line per detector: `name (type): ready` or the reason.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "kernel:")?;
        for (feature, availability) in &self.features {
            writeln!(f, "  {feature}: {availability}")?;
        }
        writeln!(f, "detectors:")?;
        for diagnosis in &self.detectors {
            write!(
                f,
                "  {} ({}): ",
                diagnosis.detector, diagnosis.detector_type
            )?;
            match &diagnosis.status {
                Status::Ready => writeln!(f, "ready")?,
                Status::Unavailable(reason) => writeln!(f, "cannot run: {reason}")?,
                Status::Unknown(reason) => {
                    writeln!(f, "not checked: {reason} (run as root for a full answer)")?
                }
            }
        }
        let Some(privileges) = &self.privileges else {
            return writeln!(f, "capabilities: cannot be read from /proc/self/status");
        };
        let held = privileges.effective;
        match held.iter().count() {
            count if count > 8 => writeln!(f, "capabilities (held: {count} of them):")?,
            _ => writeln!(f, "capabilities (held: {held}):")?,
        }
        for diagnosis in &self.detectors {
            let needs: Vec<String> = diagnosis
                .capabilities
                .iter()
                .map(|(need, held)| {
                    let verdict = if *held { "held" } else { "missing" };
                    format!("{} {verdict}", need.capability)
                })
                .collect();
            writeln!(
                f,
                "  {} ({}): {}",
                diagnosis.detector,
                diagnosis.detector_type,
                needs.join(", ")
            )?;
        }
        let context = if held.grants(Capability::SYS_ADMIN) {
            "held"
        } else {
            "missing"
        };
        writeln!(
            f,
            "  trace context (the `context:` uprobe): CAP_SYS_ADMIN {context}"
        )
    }
}
