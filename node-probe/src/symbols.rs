//! Whether a binary defines the symbols a uprobe attaches to, read from its ELF symbol tables,
//! so `wbpf doctor` can tell before the probe tries to attach.

use std::path::Path;

use object::{Object, ObjectSymbol};

/// The first of `symbols` that `binary` does not define, or why it could not be read.
pub fn first_missing<'a>(binary: &Path, symbols: &[&'a str]) -> Result<Option<&'a str>, String> {
    let data = std::fs::read(binary).map_err(|err| format!("cannot read it: {err}"))?;
    let file = object::File::parse(&*data).map_err(|err| format!("not an ELF object: {err}"))?;
    let defined = |wanted: &str| {
        let mut all = file.symbols().chain(file.dynamic_symbols());
        all.any(|symbol| symbol.is_definition() && symbol.name() == Ok(wanted))
    };
    Ok(symbols.iter().copied().find(|symbol| !defined(symbol)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_binary_defines_and_names_what_it_does_not() {
        // This test binary defines its own `main`, and certainly no such function as this.
        let me = std::env::current_exe().expect("current exe");
        assert_eq!(first_missing(&me, &["main"]), Ok(None));
        let absent = "wbpf_no_such_symbol_anywhere";
        assert_eq!(first_missing(&me, &["main", absent]), Ok(Some(absent)));
    }

    #[test]
    fn a_file_that_is_not_elf_is_said_to_be_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = dir.path().join("script.sh");
        std::fs::write(&text, "#!/bin/sh\n").expect("write");
        let err = first_missing(&text, &["main"]).expect_err("not ELF");
        assert!(err.starts_with("not an ELF object"), "{err}");
    }
}
