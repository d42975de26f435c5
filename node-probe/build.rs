//! Compiles the eBPF C programs in `../bpf` into objects embedded by `src/loader.rs`.
//!
//! Steps: generate `vmlinux.h` from the build machine's kernel BTF with bpftool, compile each
//! program with clang for the BPF target (CO-RE, so `-g` is required), then strip the DWARF
//! with llvm-strip when it is installed (the BTF the loader needs survives stripping).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
const PROGRAMS: &[&str] = &[
    "function_latency",
    "syscall_latency",
    "memory_pressure",
    "pool_objects",
    "pool_faults",
];
const HEADERS: &[&str] = &["wbpf.h", "common.h"];
const INSTALL_HINT: &str =
    "install the eBPF toolchain with `apt-get install clang llvm bpftool libbpf-dev`";

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let bpf_dir = manifest_dir.join("../bpf");

    println!("cargo:rerun-if-changed=build.rs");
    for header in HEADERS {
        println!("cargo:rerun-if-changed={}", bpf_dir.join(header).display());
    }
    for program in PROGRAMS {
        println!(
            "cargo:rerun-if-changed={}",
            source_path(&bpf_dir, program).display()
        );
    }

    generate_vmlinux_h(&out_dir);
    let target_arch = bpf_target_arch();
    for program in PROGRAMS {
        let object = out_dir.join(format!("{program}.bpf.o"));
        compile(
            &source_path(&bpf_dir, program),
            &object,
            &out_dir,
            &bpf_dir,
            target_arch,
        );
        strip(&object);
    }
}

fn source_path(bpf_dir: &Path, program: &str) -> PathBuf {
    bpf_dir.join(format!("{program}.bpf.c"))
}

fn generate_vmlinux_h(out_dir: &Path) {
    if !Path::new(KERNEL_BTF).exists() {
        fail(&format!(
            "kernel BTF not found at {KERNEL_BTF}; build on a kernel with CONFIG_DEBUG_INFO_BTF"
        ));
    }
    let output = run(
        Command::new("bpftool").args(["btf", "dump", "file", KERNEL_BTF, "format", "c"]),
        "bpftool",
    );
    let header = out_dir.join("vmlinux.h");
    if let Err(error) = std::fs::write(&header, output) {
        fail(&format!("writing {}: {error}", header.display()));
    }
}

fn bpf_target_arch() -> &'static str {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("set by cargo");
    match arch.as_str() {
        "x86_64" => "x86",
        "aarch64" => "arm64",
        "riscv64" => "riscv",
        "powerpc64" => "powerpc",
        "s390x" => "s390",
        other => fail(&format!("no eBPF register mapping for target arch {other}")),
    }
}

fn compile(source: &Path, object: &Path, out_dir: &Path, bpf_dir: &Path, arch: &str) {
    let mut clang = Command::new("clang");
    clang
        // v3: atomic fetch-and-add and compare-and-swap (kernel 5.12+).
        .args(["-g", "-O2", "-Wall", "-target", "bpf", "-mcpu=v3"])
        .arg(format!("-D__TARGET_ARCH_{arch}"))
        .arg("-I")
        .arg(out_dir)
        .arg("-I")
        .arg(bpf_dir)
        .arg("-c")
        .arg(source)
        .arg("-o")
        .arg(object);
    run(&mut clang, "clang");
}

fn strip(object: &Path) {
    match Command::new("llvm-strip").arg("-g").arg(object).status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!(
            "llvm-strip -g {} exited with {status}",
            object.display()
        )),
        Err(error) => println!(
            "cargo:warning=llvm-strip not usable ({error}); embedding {} unstripped",
            object.display()
        ),
    }
}

/// Runs a tool to completion and returns its stdout, or stops the build saying what failed.
fn run(command: &mut Command, tool: &str) -> Vec<u8> {
    let output = match command.output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            fail(&format!("{tool} not found; {INSTALL_HINT}"))
        }
        Err(error) => fail(&format!("running {tool}: {error}")),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // A missing <bpf/bpf_helpers.h> means libbpf-dev is not installed.
        let hint = if stderr.contains("file not found") {
            INSTALL_HINT
        } else {
            ""
        };
        fail(&format!(
            "{tool} failed ({}): {hint}\n{stderr}",
            output.status
        ));
    }
    output.stdout
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    panic!("building the eBPF programs failed: {message}");
}
