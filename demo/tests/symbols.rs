//! The node probe attaches uprobes to these symbols by name: they must survive a release build.

use object::{Object, ObjectSymbol, SymbolKind};

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
