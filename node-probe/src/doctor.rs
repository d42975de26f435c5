//! `wbpf doctor`: for each detector, whether it can run on this machine and, if not, why.
//!
//! The verdict comes from the same checks the probe makes before loading a detector (see
//! `requirements`): kernel BTF, tracefs, uprobes, program and map types, helpers and the
//! tracepoints each detector hooks, plus the binaries its uprobes attach to. Nothing is
//! attached. Without a configuration every detector type is checked in its fullest form.

use std::fmt;
use std::path::PathBuf;

use wbpf_config::ProbeConfig;

use crate::detector::{self, Detector, Spec};
use crate::features::{Availability, Feature, KernelFeatures};
use crate::requirements;
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
}

/// What `wbpf doctor` prints: the kernel checks and a verdict per detector.
#[derive(Debug, Clone)]
pub struct DoctorReport {
    pub features: Vec<(Feature, Availability)>,
    pub detectors: Vec<Diagnosis>,
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
    let detectors = match config {
        Some(config) => {
            let context = config
                .context
                .as_ref()
                .map(|context| context.binary.clone());
            detector::resolve(config)?
                .iter()
                .map(|detector| diagnose_one(&mut features, detector, context.clone()))
                .collect()
        }
        None => detector::TYPES
            .iter()
            .map(|&detector_type| Diagnosis {
                detector: detector_type.to_owned(),
                detector_type,
                status: verdict(&mut features, &requirements::of_type(detector_type, true)),
            })
            .collect(),
    };
    Ok(DoctorReport {
        features: features.all().to_vec(),
        detectors,
    })
}

fn diagnose_one(
    features: &mut KernelFeatures,
    detector: &Detector,
    context: Option<PathBuf>,
) -> Diagnosis {
    let needs = requirements::of_detector(features, detector, context.is_some());
    let mut status = verdict(features, &needs);
    if status == Status::Ready {
        let binaries = uprobe_binaries(detector).into_iter().chain(context);
        if let Some(missing) = binaries.into_iter().find(|binary| !binary.is_file()) {
            status = Status::Unavailable(format!(
                "{} (uprobe target) does not exist",
                missing.display()
            ));
        }
    }
    Diagnosis {
        detector: detector.name.clone(),
        detector_type: detector.type_name(),
        status,
    }
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

fn uprobe_binaries(detector: &Detector) -> Vec<PathBuf> {
    match &detector.spec {
        Spec::FunctionLatency(spec) => vec![spec.binary.clone()],
        Spec::PoolObjects(spec) => vec![spec.binary.clone()],
        _ => Vec::new(),
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
        Ok(())
    }
}
