//! Starts the three services as child processes and stops them, for `wbpf demo` and tests.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::error::DemoError;
use crate::pool::Pool;
use crate::service::PoolFaultRates;
use crate::stats::WorkloadStats;

/// How long a child may take to start listening.
const LISTEN_WAIT: Duration = Duration::from_secs(15);
/// How long a signalled child may take to flush its spans and exit.
const EXIT_WAIT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// What to run. Ports: frontend `base_port`, index `base_port + 1`, store `base_port + 2`,
/// all on 127.0.0.1.
#[derive(Debug, Clone)]
pub struct WorkloadOptions {
    /// The `wbpf-workload` binary.
    pub workload_bin: PathBuf,
    /// The pool file; an existing pool there is deleted first, so each run starts empty.
    pub pool_path: PathBuf,
    /// OTLP/HTTP base endpoint of the gateway, e.g. `http://127.0.0.1:4318`.
    pub otlp_http_endpoint: String,
    pub rate: u32,
    pub duration: Duration,
    pub fault_rate: f64,
    pub stall: Duration,
    /// The frontend's pool faults; all zero for none.
    pub pool_faults: PoolFaultRates,
    pub ground_truth: PathBuf,
    pub stats: PathBuf,
    pub base_port: u16,
    /// `RUST_LOG` of the services; inherited when `None`.
    pub log_filter: Option<String>,
    pub seed: u64,
    /// Whether the services announce their requests through `wbpf_trace_context`.
    pub publish_context: bool,
    /// Whether the services record and export spans (`--no-tracing` when not).
    pub tracing: bool,
}

/// The running services. Dropping it kills whatever still runs (without a flush); call
/// [`Workload::stop`] to end them cleanly.
#[derive(Debug)]
pub struct Workload {
    /// Store, index, frontend, in start order.
    members: Vec<Member>,
    frontend_addr: SocketAddr,
    stats: PathBuf,
}

#[derive(Debug)]
struct Member {
    role: &'static str,
    child: Child,
}

/// Starts store, index and frontend, each once the previous one listens; the frontend starts
/// its load run at once.
pub fn spawn(opts: &WorkloadOptions) -> Result<Workload, DemoError> {
    let port = |offset: u16| {
        let port = opts
            .base_port
            .checked_add(offset)
            .ok_or_else(|| DemoError::Options {
                reason: format!(
                    "base port {} leaves no room for three services",
                    opts.base_port
                ),
            })?;
        Ok::<_, DemoError>(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    };
    let (frontend, index, store) = (port(0)?, port(1)?, port(2)?);
    for addr in [frontend, index, store] {
        ensure_free(addr)?;
    }
    if Pool::remove_file(&opts.pool_path)? {
        info!(path = %opts.pool_path.display(), "deleted the previous run's pool");
    }
    remove_if_present(&opts.stats)?;

    let mut workload = Workload {
        members: Vec::with_capacity(3),
        frontend_addr: frontend,
        stats: opts.stats.clone(),
    };
    let mut store_cmd = service_command(opts, "store", store);
    workload.start("store", &mut store_cmd, store)?;

    let mut index_cmd = service_command(opts, "index", index);
    index_cmd.arg("--next").arg(store.to_string());
    workload.start("index", &mut index_cmd, index)?;

    let mut frontend_cmd = service_command(opts, "frontend", frontend);
    frontend_cmd
        .arg("--next")
        .arg(index.to_string())
        .arg("--rate")
        .arg(opts.rate.to_string())
        .arg("--duration")
        .arg(humantime::format_duration(opts.duration).to_string())
        .arg("--fault-rate")
        .arg(opts.fault_rate.to_string())
        .arg("--leak-rate")
        .arg(opts.pool_faults.leak.to_string())
        .arg("--stale-rate")
        .arg(opts.pool_faults.stale_access.to_string())
        .arg("--double-release-rate")
        .arg(opts.pool_faults.double_release.to_string())
        .arg("--fault-storm-rate")
        .arg(opts.pool_faults.fault_storm.to_string())
        .arg("--ground-truth")
        .arg(&opts.ground_truth)
        .arg("--stats")
        .arg(&opts.stats)
        .arg("--seed")
        .arg(opts.seed.to_string());
    workload.start("frontend", &mut frontend_cmd, frontend)?;
    Ok(workload)
}

impl Workload {
    /// Process ids of store, index and frontend.
    pub fn pids(&self) -> Vec<u32> {
        self.members
            .iter()
            .map(|member| member.child.id())
            .collect()
    }

    /// Where the frontend accepts `REQ` lines of its own (see `protocol`).
    pub fn frontend_addr(&self) -> SocketAddr {
        self.frontend_addr
    }

    /// Waits for the frontend's load run to end and returns the stats it wrote.
    pub fn wait_frontend(&mut self) -> Result<WorkloadStats, DemoError> {
        let Some(member) = self.members.iter_mut().find(|m| m.role == "frontend") else {
            return WorkloadStats::read(&self.stats);
        };
        let status = member
            .child
            .wait()
            .map_err(DemoError::child("frontend", "wait for"))?;
        if !status.success() {
            return Err(DemoError::ChildFailed {
                role: "frontend",
                status,
            });
        }
        WorkloadStats::read(&self.stats)
    }

    /// Sends SIGTERM to every service still running (frontend first) and waits for each to
    /// flush its spans and exit.
    pub fn stop(mut self) -> Result<(), DemoError> {
        let mut members = std::mem::take(&mut self.members);
        members.reverse();
        let mut first_error = None;
        for mut member in members {
            if let Err(error) = member.terminate() {
                warn!(role = member.role, %error, "service did not stop cleanly");
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn start(
        &mut self,
        role: &'static str,
        command: &mut Command,
        addr: SocketAddr,
    ) -> Result<(), DemoError> {
        let child = command.spawn().map_err(DemoError::child(role, "start"))?;
        info!(role, pid = child.id(), %addr, "started service");
        self.members.push(Member { role, child });
        let member = self.members.last_mut().expect("just pushed");
        member.wait_listening(addr)
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for member in &mut self.members {
            if matches!(member.child.try_wait(), Ok(None)) {
                warn!(role = member.role, "killing service without a flush");
                let _ = member.child.kill();
                let _ = member.child.wait();
            }
        }
    }
}

impl Member {
    fn wait_listening(&mut self, addr: SocketAddr) -> Result<(), DemoError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited()? {
                return Err(DemoError::ChildFailed {
                    role: self.role,
                    status,
                });
            }
            if TcpStream::connect_timeout(&addr, POLL).is_ok() {
                return Ok(());
            }
            if started.elapsed() > LISTEN_WAIT {
                return Err(DemoError::NotListening {
                    role: self.role,
                    addr,
                    waited: LISTEN_WAIT,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM, then wait for exit (SIGKILL after `EXIT_WAIT`).
    fn terminate(&mut self) -> Result<(), DemoError> {
        let status = match self.exited()? {
            Some(status) => status,
            None => {
                self.signal(libc::SIGTERM)?;
                self.wait_exit()?
            }
        };
        // Exiting on SIGTERM after a flush is success (status 0).
        if status.success() {
            Ok(())
        } else {
            Err(DemoError::ChildFailed {
                role: self.role,
                status,
            })
        }
    }

    fn wait_exit(&mut self) -> Result<ExitStatus, DemoError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.exited()? {
                return Ok(status);
            }
            if started.elapsed() > EXIT_WAIT {
                warn!(role = self.role, "service ignored SIGTERM; killing it");
                self.child
                    .kill()
                    .map_err(DemoError::child(self.role, "kill"))?;
                return self
                    .child
                    .wait()
                    .map_err(DemoError::child(self.role, "wait for"));
            }
            std::thread::sleep(POLL);
        }
    }

    fn exited(&mut self) -> Result<Option<ExitStatus>, DemoError> {
        self.child
            .try_wait()
            .map_err(DemoError::child(self.role, "poll"))
    }

    fn signal(&self, signal: libc::c_int) -> Result<(), DemoError> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(|_| DemoError::Child {
            role: self.role,
            operation: "signal",
            source: std::io::ErrorKind::InvalidInput.into(),
        })?;
        // SAFETY: kill(2) has no memory-safety preconditions. The child has not been reaped
        // (`exited` just returned None), so its pid still names it and not a recycled process.
        let result = unsafe { libc::kill(pid, signal) };
        if result == 0 {
            Ok(())
        } else {
            Err(DemoError::child(self.role, "signal")(
                std::io::Error::last_os_error(),
            ))
        }
    }
}

fn service_command(opts: &WorkloadOptions, role: &str, listen: SocketAddr) -> Command {
    let mut command = Command::new(&opts.workload_bin);
    command
        .arg("--role")
        .arg(role)
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--pool")
        .arg(&opts.pool_path)
        .arg("--otlp-endpoint")
        .arg(&opts.otlp_http_endpoint)
        .arg("--stall")
        .arg(humantime::format_duration(opts.stall).to_string())
        .stdin(Stdio::null());
    if !opts.publish_context {
        command.arg("--no-context");
    }
    if !opts.tracing {
        command.arg("--no-tracing");
    }
    if let Some(filter) = &opts.log_filter {
        command.env("RUST_LOG", filter);
    }
    command
}

/// Fails if something already listens on `addr`: the readiness check could not tell it apart
/// from the service.
fn ensure_free(addr: SocketAddr) -> Result<(), DemoError> {
    TcpListener::bind(addr)
        .map(drop)
        .map_err(DemoError::net("reserve", addr))
}

fn remove_if_present(path: &std::path::Path) -> Result<(), DemoError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(DemoError::file("delete", path)(error)),
    }
}
