//! The node probe attaches uprobes to these symbols by name: they must survive a release build.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

#[test]
fn hook_symbols_are_exported_functions() {
    let path = env!("CARGO_BIN_EXE_wbpf-workload");
    let bytes = std::fs::read(path).expect("read the workload binary");
    let file = object::File::parse(&*bytes).expect("parse the workload binary");

    let names = [
        "wbpf_trace_context",
        "wbpf_pool_access",
        "wbpf_pool_alloc",
        "wbpf_pool_release",
    ];
    let mut addresses = Vec::new();
    for name in names {
        let symbol = file
            .symbols()
            .find(|symbol| symbol.name() == Ok(name))
            .unwrap_or_else(|| panic!("{name} is missing from {path}"));
        assert_eq!(symbol.kind(), SymbolKind::Text, "{name} is not a function");
        assert!(
            symbol.is_definition(),
            "{name} is not defined in the binary"
        );
        assert!(symbol.is_global(), "{name} is not a global symbol");
        assert!(symbol.size() > 0, "{name} has no body");
        addresses.push(symbol.address());
    }
    addresses.sort_unstable();
    addresses.dedup();
    assert_eq!(addresses.len(), names.len(), "two hooks share an address");
}

/// `nopl 0x0(%rax,%rax,1)`: the probe site the kernel turns into a cheap uprobe.
#[cfg(target_arch = "x86_64")]
const NOP5: [u8; 5] = [0x0f, 0x1f, 0x44, 0x00, 0x00];

#[cfg(target_arch = "x86_64")]
#[test]
fn every_hook_starts_with_a_five_byte_nop() {
    let path = env!("CARGO_BIN_EXE_wbpf-workload");
    let bytes = std::fs::read(path).expect("read the workload binary");
    let file = object::File::parse(&*bytes).expect("parse the workload binary");

    for name in [
        "wbpf_trace_context",
        "wbpf_pool_access",
        "wbpf_pool_alloc",
        "wbpf_pool_release",
    ] {
        let symbol = file
            .symbols()
            .find(|symbol| symbol.name() == Ok(name))
            .unwrap_or_else(|| panic!("{name} is missing from {path}"));
        let section = symbol
            .section_index()
            .and_then(|index| file.section_by_index(index).ok())
            .unwrap_or_else(|| panic!("{name} has no section"));
        let data = section.data().expect("section bytes");
        let start = usize::try_from(symbol.address() - section.address()).expect("offset");
        assert_eq!(
            data[start..start + 5],
            NOP5,
            "{name} does not start with nop5"
        );
    }
}
