//! Which HubSpot properties a source requests: the job's mapping of the canonical `leads`
//! columns ([`HubspotProperties`], declared with the other CRMs' in `lead_fields`) and the
//! kept custom properties.

use crate::sources::custom::CustomProperties;
pub use crate::sources::lead_fields::HubspotProperties;
use crate::sources::lead_fields::LeadField;

impl HubspotProperties {
    /// The property feeding each canonical column, in [`LeadField`] order (`""` where
    /// unmapped, or for a column HubSpot has no property for).
    pub fn columns(&self) -> [&str; LeadField::COUNT] {
        std::array::from_fn(|i| self.property(LeadField::ALL[i]))
    }

    /// Every property to request (the canonical columns' and the kept custom ones), in a
    /// stable order, without duplicates.
    pub fn requested<'a>(&'a self, custom: &'a CustomProperties) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::with_capacity(LeadField::COUNT + custom.len());
        let kept = custom.iter().map(|(name, p)| p.property(name));
        for p in self.columns().into_iter().chain(kept) {
            if !p.is_empty() && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }
}
