//! The stages joined: what `validate` and `compile` run.

use std::path::Path;

use crate::catalog::Catalog;
use crate::compile::{Compiled, compile};
use crate::diagnostics::Diagnostic;
use crate::load::load;
use crate::validate::validate;

/// Load and validate: the catalog and every diagnostic, sorted.
pub fn check(root: &Path) -> (Catalog, Vec<Diagnostic>) {
    let (catalog, mut diags) = load(root);
    diags.extend(validate(&catalog));
    (catalog, diags.into_sorted())
}

/// Load, validate and compile. Errors mean nothing was compiled; warnings come with the result.
pub fn build(root: &Path) -> Result<(Compiled, Vec<Diagnostic>), Vec<Diagnostic>> {
    let (catalog, diags) = check(root);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    Ok((compile(&catalog), diags))
}
