//! Stage 2, validate: rules over the loaded catalog, each finding a diagnostic with a stable
//! code, the file and position, and a hint. Rules never stop at the first finding.

mod charts;
mod images;
pub mod lock;
mod names;
mod references;
mod repos;
mod v3;
mod values;

use crate::catalog::Catalog;
use crate::diagnostics::Diagnostics;

/// Every rule over the catalog.
pub fn validate(catalog: &Catalog) -> Diagnostics {
    let mut diags = Diagnostics::default();
    names::check(catalog, &mut diags);
    repos::check(catalog, &mut diags);
    charts::check(catalog, &mut diags);
    images::check(catalog, &mut diags);
    images::check_attachment_ids(catalog, &mut diags);
    references::check(catalog, &mut diags);
    values::check(catalog, &mut diags);
    v3::check(catalog, &mut diags);
    diags.extend(crate::compile::standalone_problems(catalog));
    diags
}
